"""The one training loop every algorithm runs in.

    for step in 1..steps:  algorithm.train_step(step)
    evaluate after step 0, every ``eval_every`` steps and at the end; checkpoint at each evaluation.

Randomness: training draws from one ``torch.Generator`` seeded with ``seed`` (plus torch's global RNG,
seeded likewise, for dropout); both are checkpointed. An evaluation at step k draws from its own
generator seeded by (seed, k), so evaluating never perturbs training and a resumed or replayed run
scores exactly what an uninterrupted one does.
"""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from ..config import ENGINE_DEFAULTS, apply_overrides, merge_defaults, validate_settings
from ..errors import TextbenchError
from ..registry import ALGORITHMS, SUITES
from . import rundir
from .rundir import RunDir


def eval_seed(seed: int, step: int) -> int:
    """Seed of the evaluation after ``step`` training steps (independent of the training RNG)."""
    return (seed * 1_000_003 + (step + 1) * 7_919 + 12_345) % (2**63 - 1)


def resolve_settings(algo: str, suite: str, profile: str, overrides: dict | list | None = None) -> dict[str, Any]:
    """engine defaults < suite defaults < algorithm defaults < suite profile < algorithm profile < overrides."""
    algo_cls, suite_cls = ALGORITHMS.get(algo), SUITES.get(suite)
    if profile not in algo_cls.profiles:
        raise TextbenchError(f"unknown profile {profile!r} for {algo}; known: {', '.join(algo_cls.profiles)}")
    settings = merge_defaults(("engine", ENGINE_DEFAULTS), (f"suite {suite}", suite_cls.defaults), (f"algorithm {algo}", algo_cls.defaults))
    settings.update(suite_cls.profiles.get(profile, {}))
    settings.update(algo_cls.profiles[profile])
    settings.update(algo_cls.suite_profiles.get((profile, suite), {}))
    settings = apply_overrides(settings, overrides or {})
    validate_settings(settings)  # every value's type and range, and the rules across settings
    return settings


def settings_sources(algo: str, suite: str, profile: str, overrides: dict | list | None = None) -> dict[str, tuple[Any, str]]:
    """For each resolved setting: (its default before any profile, the layer its resolved value comes from),
    the layers of :func:`resolve_settings` ('engine', 'suite <name>', 'algorithm <name>', 'profile <name>',
    'profile <name> on <suite>', '--set')."""
    algo_cls, suite_cls = ALGORITHMS.get(algo), SUITES.get(suite)
    resolve_settings(algo, suite, profile, overrides)  # the same errors for unknown names and bad values
    out: dict[str, tuple[Any, str]] = {}
    for layer, values in (("engine", ENGINE_DEFAULTS), (f"suite {suite}", suite_cls.defaults), (f"algorithm {algo}", algo_cls.defaults)):
        for k, v in values.items():
            out[k] = (v, layer)
    for layer, values in ((f"profile {profile}", suite_cls.profiles.get(profile, {})), (f"profile {profile}", algo_cls.profiles[profile]),
                          (f"profile {profile} on {suite}", algo_cls.suite_profiles.get((profile, suite), {})),
                          ("--set", {k: None for k in _override_keys(overrides or {})})):
        for k in values:
            out[k] = (out[k][0] if k in out else None, layer)
    return out


@dataclass
class Run:
    """A training run: resolved identity and settings, and where it writes."""

    algo: str
    suite: str
    profile: str = "quick"
    seed: int = 0
    overrides: dict[str, Any] | list[str] = field(default_factory=dict)
    run_dir: Path | None = None
    results_root: Path | None = None  # None: $TEXTBENCH_RESULTS or the user data dir (see rundir)

    def __post_init__(self):
        self.settings = resolve_settings(self.algo, self.suite, self.profile, self.overrides)
        self.overrides = {k: v for k, v in self.settings.items() if k in _override_keys(self.overrides)}
        if self.run_dir is None:
            root = self.results_root if self.results_root is not None else rundir.user_results_dir()
            self.run_dir = rundir.default_run_dir(root, self.suite, self.algo, self.profile, self.seed, self.overrides)
        self.run_dir = Path(self.run_dir)


def _override_keys(overrides) -> set[str]:
    if isinstance(overrides, dict):
        return set(overrides)
    return {o.split("=", 1)[0].strip() for o in overrides}


def build(algo: str, suite_name: str, settings: dict, seed: int):
    """Construct the suite and the algorithm (models initialised from ``seed``)."""
    torch.manual_seed(seed)
    suite = SUITES.get(suite_name)(settings)
    rng = torch.Generator().manual_seed(seed)
    algorithm = ALGORITHMS.get(algo)(suite, settings, rng)
    return suite, algorithm


class RunInterrupted(TextbenchError):
    """SIGINT / SIGTERM during training: the state was checkpointed and the run can be resumed."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum


def _differences(a: dict, b: dict, keys=None) -> dict:
    keys = sorted(set(a) | set(b)) if keys is None else keys
    return {k: (a.get(k), b.get(k)) for k in keys if a.get(k) != b.get(k)}


def _fmt_diff(diff: dict, left: str, right: str) -> str:
    k, (x, y) = next(iter(diff.items()))
    more = f" and {len(diff) - 1} more" if len(diff) > 1 else ""
    return f"{k}: {x!r} {left}, {y!r} {right}{more}"


def _prepare(run: Run, rd: RunDir, resume: bool, force: bool) -> tuple[dict, str]:
    """Decide what to do with the run directory: (settings, ``new`` | ``replace`` | ``resume`` | ``complete``);
    reads only (``train`` deletes a replaced run once it holds the lock). See ``train``."""
    d = rd.path
    state = rd.status()
    if state == "foreign":
        raise TextbenchError(f"{d} holds files but no config.json: not a textbench run directory; choose another --run-dir")
    if state == "absent":
        if resume:
            raise TextbenchError(f"{d}: nothing to resume (no run there); run without --resume to start it")
        return run.settings, "new"
    stored = rd.read_config()
    ident = {"algo": run.algo, "suite": run.suite, "profile": run.profile, "seed": run.seed}
    other = _differences({k: stored[k] for k in ident}, ident)
    if force:
        return run.settings, "replace"
    if other:
        raise TextbenchError(f"{d} holds a run of another kind ({_fmt_diff(other, 'there', 'asked')}); choose another --run-dir")
    if state == "complete":
        diff = _differences(stored["settings"], run.settings, [k for k in run.settings if k in run.overrides or k not in stored["settings"]])
        if diff:
            raise TextbenchError(f"{d} holds a complete run with other settings ({_fmt_diff(diff, 'there', 'asked')}); "
                                 "use another --run-dir, or --force to replace it")
        return stored["settings"], "complete"
    if not resume:
        raise TextbenchError(f"{d} holds an unfinished run; use --resume to continue it or --force to start over")
    if not rd.has_checkpoint():
        raise TextbenchError(f"{d}: no checkpoint to resume from (checkpoints/last.pt is missing); use --force to start over")
    diff = _differences(stored["settings"], run.settings, [k for k in run.overrides])
    if diff:
        raise TextbenchError(f"{d}: --resume with other settings ({_fmt_diff(diff, 'in the run', 'asked')}); resume with the run's own")
    return stored["settings"], "resume"


def train(
    run: Run,
    resume: bool = False,
    force: bool = False,
    progress: bool = True,
    stop_at_step: int | None = None,
    log: Callable[[str], None] | None = None,
    checkpoint_every_s: float = 300.0,
) -> dict[str, Any]:
    """Train (or resume) ``run`` to completion, or until ``stop_at_step``; returns the summary.

    The run directory decides what happens: none → a new run; a complete run → reported, never retrained
    (``force`` replaces it); an unfinished one → an error unless ``resume`` (continue from its checkpoint,
    which must exist and agree with config.json) or ``force``. ``force`` deletes only a textbench run
    directory holding nothing else, and only once it holds the directory's lock. One process at a time holds
    a run directory (a lock); a directory holding only that lock file (and temporary files) is no run.

    Checkpoints are written at every evaluation, every ``checkpoint_every`` steps (setting), every
    ``checkpoint_every_s`` seconds of wall time, at ``stop_at_step`` and on SIGINT / SIGTERM; a SIGKILL loses
    at most that interval, and a resumed run writes the same metrics.csv (apart from ``wall_s``) as an
    uninterrupted one.
    """
    log = log or (lambda msg: print(msg, flush=True))
    if resume and force:
        raise TextbenchError("give --resume or --force, not both")
    if stop_at_step is not None and stop_at_step < 0:
        raise TextbenchError(f"--stop-at-step must be >= 0, not {stop_at_step}")
    if not checkpoint_every_s > 0:
        raise TextbenchError(f"the checkpoint interval must be > 0 seconds, not {checkpoint_every_s}")
    rd = RunDir(run.run_dir)
    settings, action = _prepare(run, rd, resume, force)
    created = not rd.path.exists()
    if action == "complete":
        log(f"{rd.path}: run already complete; its results stand (use --force to replace it, or another --run-dir)")
        return rd.read_summary()
    try:
        with rd.lock():  # held by another process: a one-line error, nothing touched
            if action == "replace":
                rd.remove()
                log(f"--force: removed the previous run in {rd.path}")
            try:
                rd.clean_tmp()
                return _train_locked(run, rd, settings, action == "resume", progress, stop_at_step, log, checkpoint_every_s)
            except BaseException:
                if action != "resume" and not rd.has_checkpoint():
                    rd.clear()  # a new run that failed before its first checkpoint leaves nothing behind
                raise
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                rd.path.rmdir()  # the directory it made, if now empty
        raise


def _load_checkpoint(rd: RunDir, cfg: dict, modules, optimizers, algorithm) -> dict:
    path = rd.checkpoint_path
    state = rd.read_checkpoint()
    if not isinstance(state, dict) or not {"step", "modules", "optimizers", "rng", "rows", "accum"} <= set(state):
        raise TextbenchError(f"{path}: not a textbench training checkpoint")
    ident = state.get("identity")
    if isinstance(ident, dict):
        other = _differences({k: ident.get(k) for k in ("algo", "suite", "seed")}, {k: cfg[k] for k in ("algo", "suite", "seed")})
        if other:
            raise TextbenchError(f"{path}: checkpoint of another run ({_fmt_diff(other, 'in the checkpoint', 'in config.json')})")
        diff = _differences(ident.get("settings") or {}, cfg["settings"])
        if diff:
            raise TextbenchError(f"{rd.config_path} was edited after the checkpoint ({_fmt_diff(diff, 'in the checkpoint', 'in config.json')}); "
                                 "restore it or start over with --force")
    try:
        for k, m in modules.items():
            m.load_state_dict(state["modules"][k])
        for k, o in optimizers.items():
            o.load_state_dict(state["optimizers"][k])
        algorithm.rng.set_state(state["rng"]["train"])
        torch.set_rng_state(state["rng"]["torch"])
        algorithm.load_extra_state(state["extra"])
    except (KeyError, RuntimeError, ValueError, TypeError, AttributeError) as e:
        raise TextbenchError(f"{path}: checkpoint does not match this run ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    return state


def _train_locked(run: Run, rd: RunDir, settings: dict, resuming: bool, progress: bool, stop_at_step, log, checkpoint_every_s):
    d, ckpt_path = rd.path, rd.checkpoint_path
    suite, algorithm = build(run.algo, run.suite, settings, run.seed)
    modules, optimizers = algorithm.modules(), algorithm.optimizers()
    steps, eval_every = int(settings["steps"]), int(settings["eval_every"])
    full_every = int(settings.get("full_eval_every") or 0)
    ckpt_every = int(settings["checkpoint_every"]) or eval_every

    rows: list[dict[str, float]] = []
    accum: dict[str, list[float]] = {}  # training scalars since the last evaluation: name -> [sum, count]
    start, wall_before = 0, 0.0
    if resuming:
        cfg = rd.read_config()
        _check_rebuilt_suite(rd, cfg, suite)
        state = _load_checkpoint(rd, cfg, modules, optimizers, algorithm)
        start, wall_before = int(state["step"]), float(state["wall_s"])
        rows, accum = list(state["rows"]), {k: list(v) for k, v in state["accum"].items()}
        log(f"resuming {d} from step {start}")
    else:
        d.mkdir(parents=True, exist_ok=True)
        cfg = rundir.make_config(run.algo, run.suite, run.profile, run.seed, settings, run.overrides, suite.signature())
        cfg["segments"] = []
    if "progress" not in cfg:  # the comparable cost of each step (runs begun before it was stored get it on resume)
        cfg["progress"] = algorithm.progress()
    # one segment per process that trained this run; a killed one got as far as the checkpoint resumed from
    segments = [s for s in cfg.get("segments", []) if s.get("start_step", 0) <= start]
    for s in segments:
        if s.get("end_step") is None or s["end_step"] > start:
            s["end_step"] = start
    segments.append(rundir.segment(start))
    cfg["segments"] = segments
    rd.write_config(cfg)

    t0 = time.perf_counter() - wall_before
    generator = modules["generator"]
    last_ckpt = {"step": start if resuming else None, "time": time.monotonic()}

    def evaluate(step: int) -> None:
        row: dict[str, float] = {"step": step}
        full = full_every == 0 or step % full_every == 0 or step in (0, steps)
        row.update(suite.evaluate(generator, eval_seed(run.seed, step), int(settings["eval_samples"]), full=full))
        for k, (total, count) in accum.items():
            row[k] = total / count
        accum.clear()
        row["wall_s"] = time.perf_counter() - t0
        rows.append(row)
        rd.write_metrics(rows)
        shown = " | ".join(f"{k} {v:.4f}" for k, v in row.items() if k not in ("step", "wall_s") and not k.endswith("_se"))
        log(f"step {step:>7} | {shown} | {row['wall_s']:.1f}s")
        bar.set_postfix({k: f"{row[k]:.3f}" for k in ("nll_oracle", "nll_test", "jsd", "bleu-2") if k in row})

    def checkpoint(step: int) -> None:
        for name, m in modules.items():
            if not all(torch.isfinite(p).all() for p in m.parameters()):
                kept = f"the checkpoint of step {last_ckpt['step']} is kept" if last_ckpt["step"] is not None else "no checkpoint was kept"
                raise TextbenchError(f"non-finite weights in {name} after step {step}; {kept} in {ckpt_path} (try a smaller learning rate)")
        state = {
            "step": step,
            "wall_s": time.perf_counter() - t0,
            "identity": {"algo": run.algo, "suite": run.suite, "seed": run.seed, "settings": settings},
            "modules": {k: m.state_dict() for k, m in modules.items()},
            "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
            "rng": {"train": algorithm.rng.get_state(), "torch": torch.get_rng_state()},
            "extra": algorithm.extra_state(),
            "rows": rows,
            "accum": accum,
        }
        rd.write_checkpoint(state)
        last_ckpt.update(step=step, time=time.monotonic())

    def finish(done: int) -> dict:
        wall = time.perf_counter() - t0
        complete = done >= steps
        extra = {"suite_signature": suite.signature(), "eval_samples": int(settings["eval_samples"])}
        if complete:
            final_rng = torch.Generator().manual_seed(eval_seed(run.seed, -1))
            samples = generator.sample(int(settings["final_samples"]), final_rng)
            rd.write_samples(suite.format_samples(samples))
            rd.write_generator(generator.state_dict())
        cfg["segments"][-1]["end_step"] = done
        rd.write_config(cfg)
        summary = rundir.summarize(rows, done, wall, complete, extra)
        rd.write_summary(summary)
        return summary

    from tqdm import tqdm

    bar = tqdm(total=steps, initial=start, disable=not progress, file=sys.stderr, dynamic_ncols=True, desc=f"{run.algo}/{run.suite}")
    if not rows:
        evaluate(0)
        checkpoint(0)
    last = min(steps, stop_at_step) if stop_at_step is not None else steps
    step = start
    with _catch_signals() as caught:
        for step in range(start + 1, last + 1):
            logs = algorithm.train_step(step)
            for k, v in logs.items():
                if not math.isfinite(v):
                    bar.close()
                    raise TextbenchError(
                        f"non-finite {k} = {v} at step {step}; the checkpoint of step {last_ckpt['step']} is kept in "
                        f"{ckpt_path} (try a smaller learning rate)"
                    )
                acc = accum.setdefault(k, [0.0, 0])
                acc[0] += v
                acc[1] += 1
            bar.update(1)
            if step % eval_every == 0 or step == steps:
                evaluate(step)
            due = time.monotonic() - last_ckpt["time"] >= checkpoint_every_s
            if step % ckpt_every == 0 or step % eval_every == 0 or step == last or due or caught:
                checkpoint(step)
            if caught:
                bar.close()
                finish(step)
                name = signal.Signals(caught[0]).name
                raise RunInterrupted(f"{name} at step {step}: checkpoint saved in {ckpt_path}; continue with --resume", caught[0])
    bar.close()
    return finish(max(step, start))


@contextlib.contextmanager
def _catch_signals():
    """Turn SIGINT / SIGTERM into a flag the loop checks after each step (main thread only)."""
    caught: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in previous:
        signal.signal(s, lambda signum, _frame: caught.append(signum))
    try:
        yield caught
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def load_generator(run_dir: Path, checkpoint: Path | None = None):
    """Rebuild a run's suite and generator from its config.json and weights (:meth:`RunDir.read_weights`:
    ``checkpoint``, default checkpoints/last.pt, else generator.pt). Returns (suite, generator in eval mode, config)."""
    rd = RunDir(run_dir)
    cfg = rd.read_config()  # one-line error unless a dict with algo, suite, profile, seed, settings
    suite, algorithm = build(cfg["algo"], cfg["suite"], cfg["settings"], cfg["seed"])
    _check_rebuilt_suite(rd, cfg, suite)
    generator = algorithm.modules()["generator"]
    path, state = rd.read_weights(checkpoint)
    modules = state.get("modules") if isinstance(state, dict) else None
    weights = modules.get("generator") if isinstance(modules, dict) else state
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise TextbenchError(f"{path}: not a textbench checkpoint (expected generator weights or a checkpoint with modules.generator)")
    try:
        generator.load_state_dict(weights)
    except (RuntimeError, KeyError, ValueError) as e:
        first = " ".join(str(e).split())[:300]
        raise TextbenchError(f"{path}: weights do not fit this run's generator ({first})") from None
    return suite, generator.eval(), cfg


def check_same_data(where, cfg: dict, now: dict) -> None:
    """Raise unless the suite signature ``now`` has the data fingerprints (``train_sha256`` / ``test_sha256``)
    of the run ``cfg`` (its config.json, at ``where``); keys either side lacks are not compared."""
    stored = cfg.get("suite_signature")
    for key in ("train_sha256", "test_sha256"):
        a, b = (stored or {}).get(key), (now or {}).get(key)
        if a is not None and b is not None and a != b:
            part = key.split("_")[0]
            raise TextbenchError(f"{where}: the run's {part} data has fingerprint {a}, the data made here now has {b} "
                                 f"({now.get(part)}): this code draws other oracle samples than the code of the run "
                                 f"({str(cfg.get('git_commit') or '?')[:12]}); resume or replay it with that version")


def _check_rebuilt_suite(rd: RunDir, cfg: dict, suite) -> None:
    """The data rebuilt now must be the data the run was trained and scored on (on resume and on replay).

    A synthetic run's oracle samples are made from seeds on each machine: refuse them when their fingerprints
    (``train_sha256`` / ``test_sha256``) differ from the run's (another code version drew other tokens; a
    resumed run would silently continue on other data). A text run's ids mean the words of the vocabulary it
    was trained with: refuse a suite rebuilt from a training file that has changed since (another vocabulary
    or sequence length would decode other words)."""
    stored = cfg.get("suite_signature")
    if not isinstance(stored, dict):
        return
    if "train_sha256" in stored or "test_sha256" in stored:
        check_same_data(rd.config_path, cfg, suite.signature())
    if "vocab" not in stored:
        return
    now = suite.signature()
    for label, get in (("vocabulary fingerprint", lambda s: (s.get("vocab") or {}).get("sha256")), ("seq_len", lambda s: s.get("seq_len"))):
        a, b = get(stored), get(now)
        if a is not None and b is not None and a != b:
            info = stored.get("train")
            train = cfg["settings"].get("text_train_path") or (info.get("file") if isinstance(info, dict) else None)
            raise TextbenchError(f"{rd.config_path}: the run's {label} is {a}, the one rebuilt now from its training file "
                                 f"({train}) is {b}: the file changed since the run, so its ids would decode to other words")
