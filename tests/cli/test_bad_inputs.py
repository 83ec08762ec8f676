"""Every bad input is one ``error: ...`` line on stderr, a non-zero exit, no traceback and no file written.

One table of cases, each run through the real CLI (``CliRunner``; one through a subprocess), plus the
coverage of the settings schema: every resolved key of every algorithm x suite x profile has a spec.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from conftest import TINY
from textbench.cli import main
from textbench.config import ENGINE_SPECS, spec_for, validate_settings
from textbench.engine.loop import resolve_settings
from textbench.errors import TextbenchError
from textbench.registry import ALGORITHMS, SUITES

SUITE_KEYS = ("oracle", "oracle_vocab", "oracle_len", "n_train", "n_test")
GOOD_LINE = " ".join(["1"] * TINY["oracle_len"])


def sets(d: dict) -> list[str]:
    return sum((["--set", f"{k}={v}"] for k, v in d.items()), [])


def run_args(algo: str = "mle", suite: str = "synthetic", **over) -> list[str]:
    """A tiny run into <tmp>/run and <tmp>/results, with ``over`` as the last --set (it wins)."""
    tiny = {k: v for k, v in TINY.items() if k != "oracle"} if suite == "synthetic" else {}
    extra = ["--oracle", "seeded"] if suite == "synthetic" else []
    return ["run", "--algo", algo, "--suite", suite, "--no-progress", "--run-dir", "{tmp}/run",
            "--results", "{tmp}/results", *extra, *sets(tiny), *sets(over)]


def eval_args(*lines: str, **over) -> list[str]:
    """eval of a samples file holding ``lines`` against the tiny seeded oracle."""
    return ["eval", "--suite", "synthetic", "--samples", "{samples:" + "\n".join(lines) + "\n}",
            *sets({k: TINY[k] for k in SUITE_KEYS}), *sets(over)]


def gen_args(*args: str) -> list[str]:
    return ["generate", "--run", "{tmp}/trained", "--out", "{tmp}/out.txt", *args]


no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")

# (id, argv, phrase the one error line must contain, damage to {tmp}/trained: None or (file, content)[, marks])
CASES = [
    # -- settings, through `run` (validated before the run directory exists) --------------------------
    ("batch_size=0", run_args(batch_size=0), "setting batch_size=0: expected int >= 1", None),
    ("batch_size>n_train", run_args(batch_size=20000), "batch_size=20000: larger than the training set (n_train=256)", None),
    ("n_train=0", run_args(n_train=0), "setting n_train=0: expected int >= 1", None),
    ("g_hidden=0", run_args(g_hidden=0), "setting g_hidden=0: expected int >= 1", None),
    ("g_lr=nan", run_args(g_lr="nan"), "setting g_lr='nan': expected finite float > 0", None),
    ("g_lr=inf", run_args(g_lr="inf"), "setting g_lr='inf': expected finite float > 0", None),
    ("g_lr=-1", run_args(g_lr=-1), "setting g_lr=-1.0: expected finite float > 0", None),
    ("g_betas=2,3", run_args(g_betas="2,3"), "g_betas=[2.0, 3.0]: expected list[float]: 2 values, each in [0, 1)", None),
    ("g_betas one value", run_args(g_betas="0.9"), "g_betas=[0.9]: expected list[float]: 2 values", None),
    ("eval_every=0", run_args(eval_every=0), "setting eval_every=0: expected int >= 1", None),
    ("steps=-5", run_args(steps=-5), "setting steps=-5: expected int >= 1", None),
    ("eval_samples=0", run_args(eval_samples=0), "setting eval_samples=0: expected int >= 1", None),
    ("final_samples=0", run_args(final_samples=0), "setting final_samples=0", None),
    ("device=banana", run_args(device="banana"), "setting device='banana': expected cpu, cuda, cuda:N (N >= 0) or mps", None),
    ("device=cuda:-1", run_args(device="cuda:-1"), "setting device='cuda:-1'", None),
    ("device=cuda", run_args(device="cuda"), "device=cuda: this PyTorch build has no CUDA device (torch ", None, no_cuda),
    ("m_dropout=1.5", run_args("cot", m_dropout=1.5), "setting m_dropout=1.5: expected finite float in [0, 1)", None),
    ("unknown key", run_args(lr=1), "unknown setting 'lr'", None),
    ("steps=1_0", run_args(steps="1_0"), "setting steps='1_0': expected int >= 1", None),
    ("steps=arabic 3", run_args(steps="٣"), "setting steps='٣': expected int >= 1", None),
    ("shuffle=maybe", run_args(shuffle="maybe"), "setting shuffle='maybe': expected true or false", None),
    ("filters unequal", run_args("seqgan", d_num_filters=100), "expected one filter count per filter width", None),
    ("gcn_top_p=0", run_args("gcn", gcn_top_p=0), "setting gcn_top_p=0.0: expected finite float in (0, 1]", None),
    ("pg_reduction", run_args("seqgan", pg_reduction="median"), "pg_reduction='median': expected one of: sum, mean", None),
    ("text_max_len=1", run_args("mle", "coco", text_max_len=1), "text_max_len=1: expected int 0 or >= 2", None),
    ("text_bleu_refs=1_0", run_args("mle", "coco", text_bleu_refs="1_0"), "text_bleu_refs='1_0'", None),
    ("--set no =", ["run", "--algo", "mle", "--suite", "synthetic", "--run-dir", "{tmp}/run", "--set", "steps"], "--set expects key=value", None),
    # -- settings / list commands ------------------------------------------------------------------------
    ("settings unknown algo", ["settings", "--algo", "nope", "--suite", "synthetic"], "unknown algorithm 'nope'", None),
    ("settings unknown profile", ["settings", "--algo", "cot", "--suite", "synthetic", "--profile", "huge"], "unknown profile 'huge'", None),
    ("list bad option", ["list", "--bogus"], "No such option '--bogus'", None),
    # -- generate ------------------------------------------------------------------------------------------
    ("temperature nan", gen_args("--temperature", "nan"), "--temperature nan: expected a finite number > 0", None),
    ("temperature inf", gen_args("--temperature", "inf"), "--temperature inf: expected a finite number > 0", None),
    ("temperature 0", gen_args("--temperature", "0"), "--temperature 0.0: expected a finite number > 0", None),
    ("temperature -1", gen_args("--temperature", "-1"), "--temperature -1.0: expected a finite number > 0", None),
    ("-n huge", gen_args("-n", "20000000"), "-n 20000000: expected 1 to 10,000,000 samples", None),
    ("-n 0", gen_args("-n", "0"), "-n 0: expected 1 to 10,000,000 samples", None),
    ("-n text", gen_args("-n", "many"), "'many' is not a valid integer", None),
    ("config {}", gen_args(), "config.json is not a textbench run config (missing 'algo')", ("config.json", "{}")),
    ("config list", gen_args(), "config.json is not a textbench run config", ("config.json", "[1, 2]")),
    ("config no seed", gen_args(), "config.json is not a textbench run config (missing 'seed')", ("config.json", "drop:seed")),
    ("config not json", gen_args(), "config.json: not valid JSON", ("config.json", "{nope")),
    ("checkpoint int", gen_args("--checkpoint", "{tmp}/trained/bad.pt"), "bad.pt: not a textbench checkpoint", ("bad.pt", 5)),
    ("checkpoint dict", gen_args("--checkpoint", "{tmp}/trained/bad.pt"), "bad.pt: not a textbench checkpoint", ("bad.pt", {"step": 3})),
    ("checkpoint wrong weights", gen_args("--checkpoint", "{tmp}/trained/bad.pt"), "bad.pt: weights do not fit this run's generator",
     ("bad.pt", {"modules": {"generator": {"w": torch.zeros(2)}}})),
    ("checkpoint garbage", gen_args("--checkpoint", "{tmp}/trained/bad.pt"), "corrupt or unreadable checkpoint", ("bad.pt", b"\x00" * 64)),
    # -- eval: samples files and suite settings -----------------------------------------------------------
    ("token ²", eval_args(GOOD_LINE, "1 2 3 4 5 6 7 ²"), "samples.txt:2: not an integer token id: '²'", None),
    ("token --5", eval_args("1 2 3 4 5 6 7 --5"), "samples.txt:1: not an integer token id: '--5'", None),
    ("token 1_0", eval_args("1 2 3 4 5 6 7 1_0"), "samples.txt:1: not an integer token id: '1_0'", None),
    ("token arabic 3", eval_args("1 2 3 4 5 6 7 ٣"), "samples.txt:1: not an integer token id: '٣'", None),
    ("token -3", eval_args("1 2 3 4 5 6 7 -3"), "samples.txt:1: token id -3 out of range [0, 50)", None),
    ("token 5000", eval_args(GOOD_LINE, GOOD_LINE, "5000 2 3 4 5 6 7 8"), "samples.txt:3: token id 5000 out of range [0, 50)", None),
    ("empty line", eval_args(GOOD_LINE, "", GOOD_LINE), "samples.txt:2: empty line, expected 8 token ids", None),
    ("short line", eval_args(GOOD_LINE, "1 2"), "samples.txt:2: expected 8 token ids, got 2", None),
    ("eval n_train=0", eval_args(GOOD_LINE, n_train=0), "setting n_train=0: expected int >= 1", None),
    ("eval oracle=banana", eval_args(GOOD_LINE, oracle="banana"), "setting oracle='banana': expected one of: seqgan, seeded", None),
    ("eval oracle_len=1_0", eval_args(GOOD_LINE, oracle_len="1_0"), "setting oracle_len='1_0'", None),
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A tiny complete MLE run (about a second), copied by the generate cases before they damage it."""
    base = tmp_path_factory.mktemp("trained")
    out = CliRunner().invoke(main, [fill(a, base) for a in run_args(steps=10, eval_every=10, final_samples=8)])
    assert out.exit_code == 0, out.output
    return base / "run"


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def fill(arg: str, tmp: Path) -> str:
    """{tmp} -> the test's folder; {samples:TEXT} -> a file tmp/samples.txt holding TEXT."""
    if arg.startswith("{samples:"):
        path = tmp / "samples.txt"
        path.write_text(arg[len("{samples:") : -1], encoding="utf-8")
        return str(path)
    return arg.replace("{tmp}", str(tmp))


def damage(run_dir: Path, setup) -> None:
    name, content = setup
    path = run_dir / name
    if name == "config.json" and content.startswith("drop:"):
        cfg = json.loads(path.read_text())
        del cfg[content[len("drop:"):]]
        path.write_text(json.dumps(cfg))
    elif isinstance(content, str):
        path.write_text(content)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)


def assert_one_error_line(res, phrase: str) -> None:
    assert isinstance(res.exception, SystemExit), f"uncaught {res.exception!r}: {res.output}"
    assert res.exit_code != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert phrase in lines[0], lines[0]
    assert [ln for ln in res.output.splitlines() if ln.startswith("error:")] == lines
    assert "Traceback" not in res.output


@pytest.mark.parametrize("argv, phrase, setup", [pytest.param(*c[1:4], id=c[0], marks=c[4:]) for c in CASES])
def test_bad_input_is_one_error_line_and_writes_nothing(argv, phrase, setup, tmp_path, request):
    if any("{tmp}/trained" in a for a in argv):
        shutil.copytree(request.getfixturevalue("trained"), tmp_path / "trained")
        if setup:
            damage(tmp_path / "trained", setup)
    args = [fill(a, tmp_path) for a in argv]
    before = snapshot(tmp_path)
    res = CliRunner().invoke(main, args)
    assert_one_error_line(res, phrase)
    assert snapshot(tmp_path) == before  # no run/results directory, no --out file, nothing changed


def test_table_is_large_enough():
    assert len(CASES) >= 30


def test_bad_setting_through_a_real_process(tmp_path):
    args = [fill(a, tmp_path) for a in run_args(steps="1_0")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-m", "textbench", *args], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == ["error: setting steps='1_0': expected int >= 1"]
    assert not list(tmp_path.iterdir())


def test_data_verify_says_corrupt_not_missing(tmp_path, monkeypatch):
    from textbench import data

    monkeypatch.setenv("TEXTBENCH_DATA", str(tmp_path))
    monkeypatch.setattr(data, "user_data_dir", lambda: tmp_path / "user")
    (tmp_path / "coco").mkdir()
    (tmp_path / "coco" / "test.txt").write_text("a tampered file\n")
    res = CliRunner().invoke(main, ["data", "verify"])
    assert res.exit_code == 1 and "Traceback" not in res.output
    line = next(ln for ln in res.output.splitlines() if "coco/test.txt" in ln)
    assert line.startswith("corrupt ") and "corrupt (SHA-256 mismatch" in line
    assert sum(ln.startswith("missing ") for ln in res.output.splitlines()) == len(data.FILES) - 1


# -- the schema covers every setting -------------------------------------------------------------------------
def test_every_resolved_setting_has_a_spec_and_its_default_passes():
    for algo in ALGORITHMS.names():
        for suite in SUITES.names():
            for profile in ALGORITHMS.get(algo).profiles:
                settings = resolve_settings(algo, suite, profile)  # validates them too
                missing = [k for k in settings if spec_for(k) is None]
                assert not missing, f"{algo}/{suite}/{profile}: no spec for {missing}"


def test_a_key_declared_twice_has_one_spec():
    seen = dict(ENGINE_SPECS)
    for cls in [e.obj for e in SUITES.entries()] + [e.obj for e in ALGORITHMS.entries()]:
        for key, spec in cls.specs.items():
            assert seen.setdefault(key, spec) == spec, f"{cls.__name__}.specs[{key!r}] differs from another declaration"


def test_validate_settings_rejects_typed_values():
    ok = resolve_settings("cot", "synthetic", "quick")
    for key, bad in [("steps", True), ("steps", 2.5), ("g_lr", float("nan")), ("m_betas", [0.9]), ("device", "cuda:x"),
                     ("oracle_vocab", 1), ("g_betas", "0.9,0.99")]:
        with pytest.raises(TextbenchError, match=f"setting {key}="):
            validate_settings({**ok, key: bad})
    validate_settings(ok)
