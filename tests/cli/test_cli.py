import json

import pytest
from click.testing import CliRunner

from textbench.cli import main


def sets(d):
    return sum((["--set", f"{k}={v}"] for k, v in d.items()), [])


@pytest.fixture
def runner():
    return CliRunner()


def test_list_shows_every_registry(runner):
    out = runner.invoke(main, ["list", "--json"])
    assert out.exit_code == 0, out.output
    table = json.loads(out.output)
    assert {"mle", "cot"} <= set(table["algorithms"])
    assert "synthetic" in table["suites"]
    assert {"nll_oracle", "nll_test", "jsd", "cot_jsd", "bnll"} <= set(table["metrics"])
    assert set(table["profiles"]) == {"quick", "paper"}
    assert all(isinstance(v, str) and v for kind in table.values() for v in kind.values())
    text = runner.invoke(main, ["list"]).output
    assert "cot" in text and "Cooperative Training" in text


def test_run_generate_eval_round_trip(runner, tiny, tmp_path):
    run_dir = tmp_path / "run"
    out = runner.invoke(main, ["run", "--algo", "mle", "--suite", "synthetic", "--no-progress", "--run-dir", str(run_dir), *sets(tiny)])
    assert out.exit_code == 0, out.output
    assert "complete: nll_oracle" in out.output and "settings:" in out.output
    samples = tmp_path / "s.txt"
    out = runner.invoke(main, ["generate", "--run", str(run_dir), "-n", "50", "--temperature", "0.7", "--out", str(samples)])
    assert out.exit_code == 0, out.output
    lines = samples.read_text().splitlines()
    assert len(lines) == 50 and all(len(line.split()) == 8 for line in lines)
    again = runner.invoke(main, ["generate", "--run", str(run_dir), "-n", "50", "--temperature", "0.7"])
    assert again.output.splitlines() == lines  # same seed, same samples
    out = runner.invoke(main, ["eval", "--suite", "synthetic", "--samples", str(samples), "--json", *sets({k: tiny[k] for k in ("oracle", "oracle_vocab", "oracle_len", "n_train", "n_test")})])
    assert out.exit_code == 0, out.output
    result = json.loads(out.output)
    assert result["metrics"]["nll_oracle"] > 0 and "oracle" in result["signatures"]["suite"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "--algo", "nope", "--suite", "synthetic"], "unknown algorithm 'nope'"),
        (["run", "--algo", "mle", "--suite", "nope"], "unknown suite 'nope'"),
        (["run", "--algo", "mle", "--suite", "synthetic", "--set", "lr=1"], "unknown setting 'lr'"),
        (["run", "--algo", "mle", "--suite", "synthetic", "--set", "steps"], "--set expects key=value"),
        (["eval", "--samples", "x.txt"], "exactly one of --suite or --references"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(runner, args, message, tmp_path):
    out = runner.invoke(main, args + ["--run-dir", str(tmp_path / "r")] if args[0] == "run" else args)
    assert out.exit_code == 2
    assert message in out.output
    assert "Traceback" not in out.output
    assert not (tmp_path / "r").exists()


def test_generate_from_corrupt_checkpoint_fails_cleanly(runner, tiny, tmp_path):
    run_dir = tmp_path / "run"
    runner.invoke(main, ["run", "--algo", "mle", "--suite", "synthetic", "--no-progress", "--run-dir", str(run_dir), *sets(tiny)])
    (run_dir / "checkpoints" / "last.pt").write_bytes(b"\x00" * 100)
    out = runner.invoke(main, ["generate", "--run", str(run_dir), "-n", "5"])
    assert out.exit_code == 2 and "corrupt or unreadable checkpoint" in out.output


def test_bad_samples_file_names_file_and_line(runner, tiny, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("1 2 3 4 5 6 7 8\n1 2 3 4 5 6 7 999\n")
    suite_sets = sets({k: tiny[k] for k in ("oracle", "oracle_vocab", "oracle_len", "n_train", "n_test")})
    out = runner.invoke(main, ["eval", "--suite", "synthetic", "--samples", str(bad), *suite_sets])
    assert out.exit_code == 2 and f"{bad}:2: token id 999 out of range [0, 50)" in out.output
