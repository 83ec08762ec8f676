"""Sweeps: a grid of ordinary runs (algorithms x suites x profiles x seeds x swept settings) on an executor.

::

    textbench sweep --algo mle,cot --suite synthetic --seed 0,1 --set oracle=seeded --grid steps=20 --grid steps=40

Each grid point is one ``textbench run`` (:func:`textbench.run`, one intra-op thread) into its usual run
directory ``<results>/runs/<suite>/<algo>/<profile>-seed<N>[-set<hash>]``. Run again, a sweep skips the
complete points untouched, resumes the unfinished ones from their checkpoints and starts the absent ones, so
an interrupted sweep is continued by running the same command. A failing point is recorded with a one-line
error and the others go on. Every point's settings are validated before anything is launched.

Grid syntax: ``--grid KEY=VALUE`` adds one value of KEY (parsed as ``--set KEY=VALUE``, so a list setting is
``--grid d_filter_sizes=2,3`` for the one value [2, 3]); repeat it for more values; the grid is the product
over keys. ``--set KEY=VALUE`` is the same for every point. Python: ``grid={"m_lr": [1e-3, 2e-3]}``.

Executors: ``local`` (one process per point, ``jobs`` at a time), ``ray`` (a task per point with
``num_cpus=1``; a local Ray instance unless ``ray_address``), ``slurm`` (a submitit job array) and
``submitit-local`` (submitit's local executor). ray and submitit are optional extras, imported when used.
Per-point logs: ``<results>/sweeps/logs/``; submitit's: ``<results>/sweeps/submitit/``.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .config import split_key_value
from .errors import TextbenchError, one_line

__all__ = ["sweep", "make_grid", "run_point", "format_table", "Point", "PointResult", "EXECUTORS"]

EXECUTORS = ("local", "ray", "slurm", "submitit-local")
OK = ("skipped", "trained", "resumed")  # every other status (failed, interrupted, not started) fails the sweep
_ENV = ("TEXTBENCH_DATA", "TEXTBENCH_CACHE")  # passed on to the workers


@dataclass
class Point:
    """One grid point: a run's identity, its ``--set`` overrides (resolved values) and where it writes."""

    algo: str
    suite: str
    profile: str
    seed: int
    overrides: dict[str, Any]
    label: str
    run_dir: str
    results: str
    log: str
    env: dict[str, str]


@dataclass
class PointResult:
    """What became of a point: status (skipped, trained, resumed, failed, interrupted, not started),
    a one-line error for the others, and the seconds it took."""

    point: Point
    status: str
    error: str = ""
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status in OK


# ---------------------------------------------------------------------------------------------------------
# the grid
# ---------------------------------------------------------------------------------------------------------


def _names(values: str | Sequence[str]) -> list[str]:
    """Names given as a string or a list, each possibly comma-separated: 'mle,cot' -> ['mle', 'cot']."""
    items = [values] if isinstance(values, str) else list(values)
    return [n.strip() for item in items for n in str(item).split(",") if n.strip()]


def _seeds(values: int | str | Sequence[int | str]) -> list[int]:
    """Seeds as ints, comma-separated lists or inclusive ranges: [0, '2,3', '5-7'] -> [0, 2, 3, 5, 6, 7]."""
    items = [values] if isinstance(values, (int, str)) else list(values)
    out: list[int] = []
    for item in items:
        for part in [item] if isinstance(item, int) else _names(item):
            m = re.fullmatch(r"(\d+)-(\d+)", str(part))
            try:
                out += list(range(int(m[1]), int(m[2]) + 1)) if m else [int(part)]
            except ValueError:
                raise TextbenchError(f"seed {part!r}: expected an integer or a range such as 0-4") from None
    return out


def _pairs(items: Mapping[str, Any] | Sequence[str] | None, what: str) -> list[tuple[str, Any]]:
    """``{key: value}`` or ``['key=value', ...]`` as (key, value) pairs (values of strings kept as text)."""
    if items is None:
        return []
    if isinstance(items, Mapping):
        return list(items.items())
    if isinstance(items, str):
        raise TextbenchError(f"{what}: expected a dict or a list of 'key=value' strings")
    return [split_key_value(item, what) for item in items]


def _grid_values(grid: Mapping[str, Sequence[Any]] | Sequence[str] | None) -> dict[str, list[Any]]:
    """The swept settings, key -> values: a dict of lists, or '--grid KEY=VALUE' strings (repeats accumulate)."""
    out: dict[str, list[Any]] = {}
    for key, value in _pairs(grid, "--grid"):
        if isinstance(grid, Mapping):
            if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
                raise TextbenchError(f"grid {key}: expected a non-empty list of values, not {value!r}")
            out[key] = list(value)
        else:
            out.setdefault(key, []).append(value)
    return out


def _text(value: Any) -> str:
    """A setting's value as ``--set`` text."""
    return value if isinstance(value, str) else json.dumps(value)


def make_grid(
    algos: str | Sequence[str],
    suites: str | Sequence[str],
    profiles: str | Sequence[str] = "quick",
    seeds: int | str | Sequence[int | str] = 0,
    settings: Mapping[str, Any] | Sequence[str] | None = None,
    grid: Mapping[str, Sequence[Any]] | Sequence[str] | None = None,
    results: str | os.PathLike | None = None,
) -> list[Point]:
    """Every point of the grid, each resolved and validated as ``textbench run`` would (unknown names,
    settings and bad values are one-line errors), with its usual run directory; nothing is written."""
    from .engine.loop import Run
    from .engine.rundir import user_results_dir

    root = Path(results if results is not None else user_results_dir()).absolute()
    fixed, swept = dict(_pairs(settings, "--set")), _grid_values(grid)
    both = sorted(set(fixed) & set(swept))
    if both:
        raise TextbenchError(f"setting {both[0]!r} is given both by --set and by --grid; give it once")
    dims = [_names(algos), _names(suites), _names(profiles), _seeds(seeds)]
    for what, values in zip(("algorithm", "suite", "profile", "seed"), dims):
        if not values:
            raise TextbenchError(f"the grid has no {what}")
    env = {k: os.environ[k] for k in _ENV if os.environ.get(k)}
    points: list[Point] = []
    seen: dict[str, str] = {}
    for algo, suite, profile, seed, *values in itertools.product(*dims, *swept.values()):
        where = f"{algo} on {suite} ({profile}, seed {seed}" + "".join(f", {k}={_text(v)}" for k, v in zip(swept, values)) + ")"
        try:
            run = Run(algo, suite, profile, seed, {**fixed, **dict(zip(swept, values))}, None, root)
        except TextbenchError as e:
            raise TextbenchError(f"{where}: {e}") from None
        label = " ".join([algo, suite, profile, f"seed{seed}"] + [f"{k}={_text(run.overrides[k])}" for k in swept])
        run_dir = str(run.run_dir)
        if run_dir in seen:
            raise TextbenchError(f"grid points '{seen[run_dir]}' and '{label}' are the same run ({run_dir}); give each value once")
        seen[run_dir] = label
        rel = Path(run_dir).relative_to(root / "runs")
        points.append(Point(algo, suite, profile, seed, dict(run.overrides), label, run_dir, str(root),
                            str(root / "sweeps" / "logs" / rel.parent / f"{rel.name}.log"), env))
    return points


# ---------------------------------------------------------------------------------------------------------
# one point (runs in the worker: a subprocess, a Ray task or a submitit job)
# ---------------------------------------------------------------------------------------------------------


def run_point(spec: Point | Mapping[str, Any]) -> dict[str, Any]:
    """Run one grid point through :func:`textbench.run` with one intra-op thread: skip it if complete,
    resume it if unfinished (the engine refuses one without a checkpoint), start it if absent (a foreign
    directory is the engine's error).
    Never raises: returns ``{"status", "error", "wall_s"}``; the run's progress lines (and the traceback of
    an unexpected error) go to the point's log file."""
    from .api import run as run_api
    from .engine.loop import RunInterrupted
    from .engine.rundir import RunDir

    p = spec if isinstance(spec, Point) else Point(**spec)
    t0 = time.perf_counter()
    rd = RunDir(p.run_dir)
    state = rd.status()
    if state == "complete":
        return {"status": "skipped", "error": "", "wall_s": 0.0}
    resume = state == "in progress"
    os.environ.update(p.env)
    Path(p.log).parent.mkdir(parents=True, exist_ok=True)
    argv = sys.argv
    # config.json records sys.argv as the command: the equivalent `textbench run`
    sys.argv = ["textbench", "run", "--algo", p.algo, "--suite", p.suite, "--profile", p.profile, "--seed", str(p.seed),
                *[a for k, v in p.overrides.items() for a in ("--set", f"{k}={_text(v)}")], "--results", p.results, "--threads", "1"]
    status, error = ("resumed" if resume else "trained"), ""
    with open(p.log, "a", encoding="utf-8") as log:
        try:
            res = run_api(p.algo, p.suite, p.profile, p.seed, p.overrides, p.results, resume=resume, threads=1,
                          log=lambda msg: print(msg, file=log, flush=True))
            if not res.complete:
                status, error = "failed", f"stopped at step {res.summary.get('steps')}"
        except (RunInterrupted, KeyboardInterrupt) as e:
            status, error = "interrupted", one_line(e) or "interrupted before the first checkpoint"
        except TextbenchError as e:
            status, error = "failed", one_line(e)
        except Exception as e:  # a bug or an environment problem: the traceback goes to the log
            traceback.print_exc(file=log)
            status, error = "failed", f"{type(e).__name__}: {one_line(e)} (traceback in {p.log})"
        finally:
            sys.argv = argv
        print(f"sweep: {status} {error}".rstrip(), file=log, flush=True)
    return {"status": status, "error": error, "wall_s": time.perf_counter() - t0}


def _worker_main() -> None:
    """The local executor's child process: run the point given as JSON in argv[1], print its result as JSON."""
    out, sys.stdout = sys.stdout, sys.stderr  # anything else printed goes to the log

    def stop(_signum, _frame):  # SIGTERM outside the training loop (which checkpoints on it): stop cleanly, once
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        result = run_point(json.loads(sys.argv[1]))
    except KeyboardInterrupt:
        result = _failed("interrupted before the run began", "interrupted")
    print(json.dumps(result), file=out, flush=True)


# ---------------------------------------------------------------------------------------------------------
# executors: each takes the points and returns one result dict per point, in order
# ---------------------------------------------------------------------------------------------------------


def _failed(error: str, status: str = "failed") -> dict[str, Any]:
    return {"status": status, "error": error, "wall_s": 0.0}


def _run_local(points: list[Point], jobs: int, done: Callable[[int, dict], None]) -> list[dict]:
    """One subprocess per point (``python -c ...``, one thread), ``jobs`` at a time; a crash costs only its
    point. SIGINT / SIGTERM: SIGTERM to the running points (they checkpoint), none started after."""
    worker = "from textbench.sweeps import _worker_main; _worker_main()"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    results: list[dict | None] = [None] * len(points)
    pending, running = list(range(len(points))), {}
    stop: list[int] = []

    def on_signal(signum, _frame):
        if not stop:
            for proc in running:
                proc.send_signal(signal.SIGTERM)
        stop.append(signum)

    main_thread = threading.current_thread() is threading.main_thread()
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)} if main_thread else {}
    try:
        while pending or running:
            while pending and len(running) < jobs and not stop:
                i = pending.pop(0)
                Path(points[i].log).parent.mkdir(parents=True, exist_ok=True)
                with open(points[i].log, "a", encoding="utf-8") as log:  # the child keeps its own descriptor
                    proc = subprocess.Popen([sys.executable, "-c", worker, json.dumps(asdict(points[i]))], stdout=subprocess.PIPE,
                                            stderr=log, env=env, text=True, start_new_session=True)
                running[proc] = i
            if stop:
                for i in pending:
                    results[i] = _failed("the sweep was interrupted first", "not started")
                pending = []
            time.sleep(0.05)
            for proc in [p for p in running if p.poll() is not None]:
                i = running.pop(proc)
                lines = proc.stdout.read().strip().splitlines()
                proc.stdout.close()
                try:
                    results[i] = json.loads(lines[-1])
                except (IndexError, ValueError):
                    results[i] = _failed(f"the worker process exited with status {proc.returncode} (see {points[i].log})")
                done(i, results[i])
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    return results  # type: ignore[return-value]


def _need(module: str, extra: str):
    """Import an optional package, or a one-line error saying how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise TextbenchError(f"the {extra} executor needs {module}: pip install 'textbench[{extra}]'") from None


def _run_ray(points: list[Point], jobs: int, address: str | None, done: Callable[[int, dict], None]) -> list[dict]:
    """One Ray task per point (``num_cpus=1``, no retries), on the running Ray instance, else the one at
    ``address``, else a new local one with ``jobs`` CPUs (shut down at the end)."""
    ray = _need("ray", "ray")
    started = not ray.is_initialized()
    if started:
        try:
            ray.init(**({"address": address} if address else {"num_cpus": jobs}), include_dashboard=False)
        except Exception as e:  # no cluster at that address, ...
            raise TextbenchError(f"ray.init: {type(e).__name__}: {one_line(str(e).splitlines()[0] if str(e) else '')}") from None
    try:
        task = ray.remote(num_cpus=1, max_retries=0)(run_point)
        refs = {task.remote(asdict(p)): i for i, p in enumerate(points)}
        results: list[dict | None] = [None] * len(points)
        try:
            while refs:
                ready, _ = ray.wait(list(refs), num_returns=1)
                i = refs.pop(ready[0])
                try:
                    results[i] = ray.get(ready[0])
                except Exception as e:  # the task's process died, or Ray failed
                    results[i] = _failed(f"ray: {type(e).__name__}: {one_line(e)[:300]}")
                done(i, results[i])
        except KeyboardInterrupt:
            for ref in refs:
                ray.cancel(ref)  # a KeyboardInterrupt in the task: the run checkpoints
            ray.wait(list(refs), num_returns=len(refs), timeout=60)
            for i in refs.values():
                results[i] = _failed("the sweep was interrupted", "interrupted")
        return results  # type: ignore[return-value]
    finally:
        if started:
            ray.shutdown()


def _run_submitit(points: list[Point], cluster: str, jobs: int | None, slurm: Mapping[str, Any],
                  done: Callable[[int, dict], None]) -> list[dict]:
    """The points as submitit jobs: on SLURM one job array (``jobs`` at a time if given); with submitit's local
    executor ``jobs`` (default: the core count) at a time. Its logs and pickles go to ``<results>/sweeps/submitit/``."""
    submitit = _need("submitit", "slurm")
    slurm = dict(slurm)
    params = {"timeout_min": int(slurm.pop("time", 240)), "mem_gb": slurm.pop("mem_gb", 4), "cpus_per_task": 1, "name": "textbench"}
    if cluster == "slurm":
        params.update({f"slurm_{k}": v for k, v in slurm.items() if v is not None}, slurm_array_parallelism=jobs)
    try:
        executor = submitit.AutoExecutor(folder=Path(points[0].results) / "sweeps" / "submitit", cluster=cluster)
        executor.update_parameters(**{k: v for k, v in params.items() if v is not None})
    except (RuntimeError, NameError, ValueError, TypeError, AssertionError) as e:  # no SLURM here, an unknown option
        raise TextbenchError(f"submitit ({cluster}): {one_line(str(e).splitlines()[0])}") from None
    specs = [asdict(p) for p in points]
    size = len(points) if cluster == "slurm" else jobs or os.cpu_count() or 1
    results: list[dict] = []
    for start in range(0, len(points), size):
        batch = executor.map_array(run_point, specs[start : start + size])
        for i, job in enumerate(batch, start):
            try:
                results.append(job.result())
            except Exception as e:  # the job failed outside run_point (killed, out of memory, time limit)
                results.append(_failed(f"submitit job {job.job_id}: {type(e).__name__}: {one_line(e)[:300]}"))
            done(i, results[-1])
    return results


# ---------------------------------------------------------------------------------------------------------
# the sweep
# ---------------------------------------------------------------------------------------------------------


def sweep(
    algos: str | Sequence[str],
    suites: str | Sequence[str],
    profiles: str | Sequence[str] = "quick",
    seeds: int | str | Sequence[int | str] = 0,
    settings: Mapping[str, Any] | Sequence[str] | None = None,
    grid: Mapping[str, Sequence[Any]] | Sequence[str] | None = None,
    results: str | os.PathLike | None = None,
    *,
    executor: str = "local",
    jobs: int | None = None,
    ray_address: str | None = None,
    slurm: Mapping[str, Any] | None = None,
    dry_run: bool = False,
    log: Callable[[str], None] | None = None,
) -> list[PointResult]:
    """Run the grid ``algos x suites x profiles x seeds x grid`` (see :func:`make_grid`) on ``executor``
    (local, ray, slurm or submitit-local; see the module doc); returns one :class:`PointResult` per point.

    * ``settings``: the same overrides for every point (as ``--set``); ``grid``: key -> list of values.
    * ``jobs``: runs at once (default: the core count; on SLURM: no limit); ``ray_address``: a Ray cluster;
      ``slurm``: ``partition``, ``time`` (minutes, default 240), ``mem_gb`` (default 4) and any other
      ``sbatch`` option submitit knows (``account``, ``qos``, ...).
    * ``dry_run``: only the grid (status ``not started``). ``log``: called with a line per finished point.

    Every point is validated before anything is launched. A failed point does not stop the others.
    """
    if executor not in EXECUTORS:
        raise TextbenchError(f"unknown executor {executor!r}; known: {', '.join(EXECUTORS)}")
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise TextbenchError(f"jobs={jobs!r}: expected an integer >= 1")
    say = log or (lambda _msg: None)
    points = make_grid(algos, suites, profiles, seeds, settings, grid, results)
    if dry_run:
        return [PointResult(p, "not started") for p in points]
    if executor == "ray":
        _need("ray", "ray")
    elif executor != "local":
        _need("submitit", "slurm")
    say(f"sweep: {len(points)} runs under {points[0].results}, executor {executor}")
    t0, finished = time.perf_counter(), [0]

    def done(i: int, r: dict) -> None:
        finished[0] += 1
        error = f": {r['error']}" if r.get("error") else ""
        say(f"[{finished[0]}/{len(points)}] {r['status']} {points[i].label}{error}")

    # complete points are reported without launching anything
    todo = [i for i, p in enumerate(points) if not _complete(p)]
    out: dict[int, dict] = {i: {"status": "skipped", "error": "", "wall_s": 0.0} for i in range(len(points)) if i not in todo}
    for i in out:
        done(i, out[i])
    chosen = [points[i] for i in todo]
    if chosen:
        relay = lambda k, r: done(todo[k], r)  # noqa: E731
        if executor == "local":
            got = _run_local(chosen, jobs or os.cpu_count() or 1, relay)
        elif executor == "ray":
            got = _run_ray(chosen, jobs or os.cpu_count() or 1, ray_address, relay)
        else:
            got = _run_submitit(chosen, "slurm" if executor == "slurm" else "local", jobs, slurm or {}, relay)
        out.update(zip(todo, got))
    say(f"sweep: {len(points)} runs in {time.perf_counter() - t0:.1f}s")
    return [PointResult(p, out[i]["status"], out[i].get("error", ""), float(out[i].get("wall_s", 0.0))) for i, p in enumerate(points)]


def _complete(p: Point) -> bool:
    from .engine.rundir import RunDir

    return RunDir(p.run_dir).status() == "complete"


def format_table(results: Sequence[PointResult]) -> str:
    """The sweep's table: point, run directory (under the results folder), status (with the error), wall time."""
    rows = [("point", "run dir", "status", "wall")]
    for r in results:
        status = {"skipped": "skipped (already complete)"}.get(r.status, r.status) + (f": {r.error}" if r.error else "")
        run_dir = os.path.relpath(r.point.run_dir, r.point.results)
        rows.append((r.point.label, run_dir, status, f"{r.wall_s:.1f}s" if r.wall_s else "-"))
    widths = [max(len(row[c]) for row in rows) for c in range(2)]
    return "\n".join(f"{a:<{widths[0]}}  {b:<{widths[1]}}  {d:>7}  {c}" for a, b, c, d in rows)
