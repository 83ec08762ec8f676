"""The one training loop every algorithm runs in.

    for step in 1..steps:  algorithm.train_step(step)
    evaluate after step 0, every ``eval_every`` steps and at the end; checkpoint at each evaluation.

Randomness: training draws from one ``torch.Generator`` seeded with ``seed`` (plus torch's global RNG,
seeded likewise, for dropout); both are checkpointed. An evaluation at step k draws from its own
generator seeded by (seed, k), so evaluating never perturbs training and a resumed or replayed run
scores exactly what an uninterrupted one does.
"""

from __future__ import annotations

import math
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from ..config import ENGINE_DEFAULTS, apply_overrides, merge_defaults
from ..errors import TextbenchError
from ..io import atomic_torch_save, atomic_write_json, atomic_write_text, read_json, safe_torch_load
from ..registry import ALGORITHMS, SUITES
from . import rundir


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
    return apply_overrides(settings, overrides or {})


@dataclass
class Run:
    """A training run: resolved identity and settings, and where it writes."""

    algo: str
    suite: str
    profile: str = "quick"
    seed: int = 0
    overrides: dict[str, Any] | list[str] = field(default_factory=dict)
    run_dir: Path | None = None
    results_root: Path = Path("results")

    def __post_init__(self):
        self.settings = resolve_settings(self.algo, self.suite, self.profile, self.overrides)
        self.overrides = {k: v for k, v in self.settings.items() if k in _override_keys(self.overrides)}
        if self.run_dir is None:
            self.run_dir = rundir.default_run_dir(self.results_root, self.suite, self.algo, self.profile, self.seed)
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


def train(
    run: Run,
    resume: bool = False,
    force: bool = False,
    progress: bool = True,
    stop_at_step: int | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train (or resume) ``run`` to completion, or until ``stop_at_step``; returns the summary."""
    log = log or (lambda msg: print(msg, flush=True))
    d: Path = run.run_dir
    ckpt_path = d / "checkpoints" / "last.pt"
    settings = run.settings
    if (d / "config.json").exists():
        if resume:
            stored = read_json(d / "config.json")
            if (stored["algo"], stored["suite"], stored["seed"]) != (run.algo, run.suite, run.seed):
                raise TextbenchError(f"{d}: holds a run of {stored['algo']}/{stored['suite']} seed {stored['seed']}, not this one")
            diff = {k: (stored["settings"].get(k), v) for k, v in run.settings.items() if stored["settings"].get(k) != v and k in run.overrides}
            if diff:
                raise TextbenchError(f"{d}: --resume with different settings {diff}; resume with the run's own settings")
            settings = stored["settings"]
        elif force:
            shutil.rmtree(d)
        else:
            raise TextbenchError(f"{d} already holds a run; use --resume to continue it or --force to start over")
    elif resume and d.exists() and any(d.iterdir()):
        raise TextbenchError(f"{d}: no config.json, nothing to resume")

    suite, algorithm = build(run.algo, run.suite, settings, run.seed)
    modules, optimizers = algorithm.modules(), algorithm.optimizers()
    steps, eval_every = int(settings["steps"]), int(settings["eval_every"])
    ckpt_every = int(settings["checkpoint_every"]) or eval_every

    rows: list[dict[str, float]] = []
    accum: dict[str, list[float]] = {}  # training scalars since the last evaluation: name -> [sum, count]
    start, wall_before = 0, 0.0
    if resume and ckpt_path.exists():
        state = safe_torch_load(ckpt_path)
        try:
            for k, m in modules.items():
                m.load_state_dict(state["modules"][k])
            for k, o in optimizers.items():
                o.load_state_dict(state["optimizers"][k])
            algorithm.rng.set_state(state["rng"]["train"])
            torch.set_rng_state(state["rng"]["torch"])
            algorithm.load_extra_state(state["extra"])
            start, wall_before = int(state["step"]), float(state["wall_s"])
            rows, accum = list(state["rows"]), {k: list(v) for k, v in state["accum"].items()}
        except (KeyError, RuntimeError, ValueError, TypeError) as e:
            raise TextbenchError(f"{ckpt_path}: checkpoint does not match this run ({type(e).__name__}: {e})") from None
        log(f"resuming {d} from step {start}")
    else:
        d.mkdir(parents=True, exist_ok=True)
        atomic_write_json(
            d / "config.json",
            rundir.make_config(run.algo, run.suite, run.profile, run.seed, settings, run.overrides, suite.signature()),
        )

    if start >= steps and (d / "summary.json").exists():
        log(f"{d}: run already complete ({steps} steps)")
        return read_json(d / "summary.json")

    t0 = time.perf_counter() - wall_before
    generator = modules["generator"]

    def evaluate(step: int) -> None:
        row: dict[str, float] = {"step": step}
        row.update(suite.evaluate(generator, eval_seed(run.seed, step), int(settings["eval_samples"])))
        for k, (total, count) in accum.items():
            row[k] = total / count
        accum.clear()
        row["wall_s"] = time.perf_counter() - t0
        rows.append(row)
        rundir.write_metrics(d, rows)
        shown = " | ".join(f"{k} {v:.4f}" for k, v in row.items() if k not in ("step", "wall_s", "jsd_se"))
        log(f"step {step:>7} | {shown} | {row['wall_s']:.1f}s")
        bar.set_postfix({k: f"{row[k]:.3f}" for k in ("nll_oracle", "nll_test", "jsd", "bleu-2") if k in row})

    def checkpoint(step: int) -> None:
        state = {
            "step": step,
            "wall_s": time.perf_counter() - t0,
            "modules": {k: m.state_dict() for k, m in modules.items()},
            "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
            "rng": {"train": algorithm.rng.get_state(), "torch": torch.get_rng_state()},
            "extra": algorithm.extra_state(),
            "rows": rows,
            "accum": accum,
        }
        atomic_torch_save(state, ckpt_path)

    from tqdm import tqdm

    bar = tqdm(total=steps, initial=start, disable=not progress, file=sys.stderr, dynamic_ncols=True, desc=f"{run.algo}/{run.suite}")
    if start == 0:
        evaluate(0)
        checkpoint(0)
    last = stop_at_step if stop_at_step is not None else steps
    for step in range(start + 1, min(steps, last) + 1):
        logs = algorithm.train_step(step)
        for k, v in logs.items():
            if not math.isfinite(v):
                bar.close()
                raise TextbenchError(
                    f"non-finite {k} = {v} at step {step}; the checkpoint of step {step - step % ckpt_every} is kept in "
                    f"{ckpt_path} (try a smaller learning rate)"
                )
            acc = accum.setdefault(k, [0.0, 0])
            acc[0] += v
            acc[1] += 1
        bar.update(1)
        if step % eval_every == 0 or step == steps:
            evaluate(step)
        if step % ckpt_every == 0 or step % eval_every == 0 or step == steps:
            checkpoint(step)
    bar.close()

    done = min(steps, last)
    wall = time.perf_counter() - t0
    complete = done >= steps
    extra = {"suite_signature": suite.signature(), "eval_samples": int(settings["eval_samples"])}
    if complete:
        final_rng = torch.Generator().manual_seed(eval_seed(run.seed, -1))
        samples = generator.sample(int(settings["final_samples"]), final_rng)
        atomic_write_text(d / "samples.txt", "\n".join(suite.format_samples(samples)) + "\n")
        atomic_torch_save({k: v.detach().cpu() for k, v in generator.state_dict().items()}, d / "generator.pt")
    summary = rundir.summarize(rows, done, wall, complete, extra)
    rundir.write_summary(d, summary)
    return summary


def load_generator(run_dir: Path, checkpoint: Path | None = None):
    """Rebuild a run's suite and generator from its config.json and a checkpoint (weights only)."""
    run_dir = Path(run_dir)
    cfg = read_json(run_dir / "config.json")
    suite, algorithm = build(cfg["algo"], cfg["suite"], cfg["settings"], cfg["seed"])
    generator = algorithm.modules()["generator"]
    path = checkpoint or (run_dir / "checkpoints" / "last.pt")
    if not Path(path).exists():
        path = run_dir / "generator.pt"
    state = safe_torch_load(path)
    weights = state["modules"]["generator"] if "modules" in state else state
    try:
        generator.load_state_dict(weights)
    except (RuntimeError, KeyError) as e:
        raise TextbenchError(f"{path}: weights do not fit this run's generator ({e})") from None
    return suite, generator.eval(), cfg
