"""Command line: ``textbench run | list | generate | eval | data`` (+ report commands)."""

from __future__ import annotations

import functools
import json
import math
import os
import sys
from pathlib import Path

import click

from .config import split_key_value
from .errors import TextbenchError, one_line


MAX_SAMPLES = 10_000_000  # generate -n: more is a typo, not a request (as textbench.api.MAX_SAMPLES)


def _clean_errors(fn):
    """Every TextbenchError, and every bad option or argument (click's usage errors), becomes one line
    ``error: ...`` on stderr and exit status 2 (never a traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except TextbenchError as e:
            click.echo(f"error: {one_line(e)}", err=True)
            sys.exit(getattr(e, "exit_code", 2))
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as e:
            hint = f" (see {e.ctx.command_path} --help)" if e.ctx else ""
            click.echo(f"error: {one_line(e.format_message())}{hint}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted; resume with --resume", err=True)
            sys.exit(130)

    return wrapper


class _Group(click.Group):
    def invoke(self, ctx):
        return _clean_errors(super().invoke)(ctx)


@click.group(cls=_Group)
@click.option("--data", "data_dir", type=click.Path(file_okay=False), help="data directory (sets TEXTBENCH_DATA)")
@click.version_option(package_name="textbench")
def main(data_dir):
    """textbench: benchmark training algorithms of text generators (CoT, MLE, GANs)."""
    if data_dir:
        os.environ["TEXTBENCH_DATA"] = str(Path(data_dir).resolve())


@main.command()
@click.option("--algo", required=True, help="algorithm name (see `textbench list`)")
@click.option("--suite", required=True, help="suite name (see `textbench list`)")
@click.option("--profile", default="quick", show_default=True, help="quick | paper")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="override any setting (repeatable)")
@click.option("--oracle", type=click.Choice(["seqgan", "seeded"]), help="synthetic suite: shortcut for --set oracle=...")
@click.option("--run-dir", type=click.Path(file_okay=False), help="default: <results>/runs/<suite>/<algo>/<profile>-seed<N>[-set<hash>]")
@click.option("--results", "results_root", type=click.Path(file_okay=False),
              help="results folder (default: $TEXTBENCH_RESULTS, else the user data dir; the committed campaign: results)")
@click.option("--resume", is_flag=True, help="continue the unfinished run from its last checkpoint")
@click.option("--force", is_flag=True, help="delete the run directory's previous run (a textbench run only) and start over")
@click.option("--stop-at-step", type=click.IntRange(min=0), help="stop (resumably) after this many steps")
@click.option("--checkpoint-minutes", default=5.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="also checkpoint after this much wall time (a kill loses at most this)")
@click.option("--threads", type=click.IntRange(min=1), help="intra-op threads of this run (default: torch's, i.e. $OMP_NUM_THREADS "
              "or the core count); recorded per segment in config.json (float sums, hence last bits, depend on it)")
@click.option("--no-progress", is_flag=True, help="no progress bar")
def run(algo, suite, profile, seed, overrides, oracle, run_dir, results_root, resume, force, stop_at_step, checkpoint_minutes, threads, no_progress):
    """Train ALGO on SUITE, evaluating and checkpointing as it goes."""
    from .api import run as run_api

    overrides = list(overrides) + ([f"oracle={oracle}"] if oracle else [])
    result = run_api(algo, suite, profile, seed, overrides, results_root or None, run_dir=run_dir or None, resume=resume,
                     force=force, stop_at_step=stop_at_step, threads=threads, progress=not no_progress,
                     log=lambda msg: click.echo(msg), checkpoint_minutes=checkpoint_minutes)
    summary = result.summary
    final = " | ".join(f"{k} {v:.4f}" for k, v in summary["final"].items() if not k.endswith("_se"))
    state = "complete" if summary["complete"] else f"stopped at step {summary['steps']} (resume with --resume)"
    click.echo(f"{state}: {final}  [{summary['wall_s']:.1f}s]")
    click.echo(f"settings: {json.dumps(summary.get('suite_signature', {}))}; eval_samples {summary.get('eval_samples')}")


@main.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def list_(as_json):
    """Every algorithm, suite, metric (with its unit and direction) and profile, with a one-line description."""
    from .metrics.catalogue import CATALOGUE
    from .registry import ALGORITHMS, METRICS, PROFILES, SUITES

    table = {
        kind: {e.name: e.description for e in reg.entries()}
        for kind, reg in (("algorithms", ALGORITHMS), ("suites", SUITES), ("metrics", METRICS), ("profiles", PROFILES))
    }
    if as_json:
        click.echo(json.dumps(table, indent=2))
        return
    for kind, entries in table.items():
        click.echo(f"{kind}:")
        rows = [[name, desc] for name, desc in entries.items()]
        if kind == "metrics":  # the catalogue's column name (bleu-n), unit and direction
            infos = {name: CATALOGUE.get(name) for name in entries}
            rows = [[i.name, i.unit_text, i.direction_text, i.description] if i else [n, "", "", entries[n]]
                    for n, i in infos.items()]
        widths = [max((len(r[c]) for r in rows), default=0) for c in range(len(rows[0]) - 1)] if rows else []
        for r in rows:
            click.echo("  " + "".join(f"{v:<{w}}  " for v, w in zip(r, widths)) + r[-1])


@main.command()
@click.option("--algo", required=True)
@click.option("--suite", required=True)
@click.option("--profile", default="quick", show_default=True)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="override a setting (as for run)")
@click.option("--json", "as_json", is_flag=True, help="the plain resolved dict")
def settings(algo, suite, profile, overrides, as_json):
    """The fully resolved settings of ALGO on SUITE under PROFILE (what --set can change): the value, where it
    comes from (engine / suite / algorithm default, profile, --set), the default, type, allowed range and meaning."""
    from .config import describe_settings
    from .engine.loop import resolve_settings, settings_sources
    from .registry import ALGORITHMS, SUITES

    resolved = resolve_settings(algo, suite, profile, list(overrides))
    if as_json:
        click.echo(json.dumps(resolved, indent=2, sort_keys=True))
        return
    info = describe_settings(resolved, ALGORITHMS.get(algo), SUITES.get(suite))
    sources = settings_sources(algo, suite, profile, list(overrides))
    header = ("key", "value", "from", "default", "type/range", "help")
    rows = [(k, json.dumps(i.default), sources[k][1], json.dumps(sources[k][0]), f"{i.type} {i.range}", i.help) for k, i in info.items()]
    widths = [max(len(r[c]) for r in rows + [header]) for c in range(5)]
    for r in [header] + rows:
        click.echo("  ".join(f"{v:<{w}}" for v, w in zip(r[:5], widths)) + "  " + r[5])


@main.command()
@click.option("--run", "run_dir", required=True, type=click.Path(exists=True, file_okay=False), help="a run directory")
@click.option("-n", "num", default=100, show_default=True, type=int)
@click.option("--temperature", default=1.0, show_default=True, type=float, help="sample softmax(logits / T)")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False), help="default: the run's last checkpoint")
@click.option("--out", type=click.Path(dir_okay=False), help="write here (atomically) instead of stdout")
def generate(run_dir, num, temperature, seed, checkpoint, out):
    """Sample N sequences from a run's checkpoint."""
    from .api import generate as generate_api, load_run
    from .io import atomic_write_text

    if not 1 <= num <= MAX_SAMPLES:
        raise TextbenchError(f"-n {num}: expected 1 to {MAX_SAMPLES:,} samples")
    if not (math.isfinite(temperature) and temperature > 0):
        raise TextbenchError(f"--temperature {temperature}: expected a finite number > 0")
    if not 0 <= seed < 2**63:
        raise TextbenchError(f"--seed {seed}: expected 0 <= seed < 2**63")
    res = load_run(run_dir)
    samples = generate_api(res, num, temperature=temperature, seed=seed, checkpoint=checkpoint)
    text = "\n".join(res.format_samples(samples)) + "\n"
    if out:
        atomic_write_text(out, text)
        click.echo(f"wrote {num} samples to {out}", err=True)
    else:
        click.echo(text, nl=False)


@main.command(name="eval")
@click.option("--suite", help="score against a suite (synthetic: NLL_oracle; text suites: BLEU, Self-BLEU, ...)")
@click.option("--samples", required=True, type=click.Path(dir_okay=False), help="samples file, one sequence per line")
@click.option("--references", type=click.Path(dir_okay=False), help="reference text file (instead of --suite)")
@click.option("--metrics", default="bleu-2,bleu-3,bleu-4,bleu-5", show_default=True, help="with --references")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="suite settings (e.g. oracle=seeded)")
@click.option("--json", "as_json", is_flag=True)
def eval_(suite, samples, references, metrics, overrides, as_json):
    """Score a samples file."""
    if bool(suite) == bool(references):
        raise TextbenchError("give exactly one of --suite or --references")
    from .api import evaluate

    if references:
        evaluation = evaluate(samples, references, metrics=[m.strip() for m in metrics.split(",") if m.strip()])
    else:
        evaluation = evaluate(samples, suite=suite, settings=list(overrides))
    result, signatures = dict(evaluation), evaluation.signature
    if as_json:
        click.echo(json.dumps({"metrics": result, "signatures": signatures}, indent=2, default=str))
        return
    for k, v in result.items():
        click.echo(f"{k:<16} {v:.6f}" if isinstance(v, float) and math.isfinite(v) else f"{k:<16} {v}")
    click.echo(f"signature: {json.dumps(signatures, default=str)}")


@main.group()
def data():
    """Benchmark data files: verify or fetch."""


@data.command()
def verify():
    """Check every data file's SHA-256: ok, missing or corrupt (SHA-256 mismatch); exit 1 if any is not ok."""
    from . import data as d

    bad = 0
    for rel in d.FILES:
        try:
            click.echo(f"ok       {d.locate(rel)}")
        except d.CorruptDataFile as e:
            bad += 1
            click.echo(f"corrupt  {one_line(e)}")
        except TextbenchError as e:
            bad += 1
            click.echo(f"missing  {rel}: {one_line(e)}")
    sys.exit(1 if bad else 0)


@data.command()
@click.option("--dest", type=click.Path(file_okay=False), help="default: $TEXTBENCH_DATA or the user data dir")
def fetch(dest):
    """Download the upstream files at pinned commits, verify SHA-256, convert the oracle to npz."""
    from . import data as d

    d.fetch(Path(dest) if dest else None, log=click.echo)


@main.group()
def campaign():
    """Long paper runs carried across machines in the repository."""


@campaign.command()
@click.option("--runs", "runs_dir", default="results/runs", show_default=True, type=click.Path(exists=True, file_okay=False))
def stage(runs_dir):
    """git-stage the checkpoint of every unfinished run, unstage those of complete runs."""
    from .engine.campaign import stage as stage_runs

    lines = stage_runs(Path(runs_dir))
    for line in lines:
        click.echo(line)
    if not lines:
        click.echo("nothing to stage")


@campaign.command()
@click.option("--runs", "runs_dir", default="results/runs", show_default=True, type=click.Path(exists=True, file_okay=False))
def status(runs_dir):
    """Each unfinished run: where it stands (step k of N, last metrics, hours left) and the command that continues it."""
    import shlex

    from .engine.campaign import resume_command, unfinished
    from .reports.leaderboard import load_runs, progress_line

    shown = {str(r.path.resolve()): r for r in load_runs(runs_dir)}
    dirs = unfinished(Path(runs_dir))
    for rd in dirs:
        run = shown.get(str(rd.path.resolve()))
        click.echo(f"{rd.path}: {progress_line(run) if run is not None else 'in progress'}")
        if rd.has_checkpoint():
            click.echo(f"  continue: {shlex.join(resume_command(rd))}")
        else:
            click.echo("  no checkpoint: it cannot be continued (start it over with --force)")
    if not dirs:
        click.echo(f"no unfinished runs under {runs_dir}")


@main.command(name="sweep-temperature")
@click.option("--run", "run_dirs", required=True, multiple=True, type=click.Path(exists=True, file_okay=False),
              help="a run directory (repeat for several runs of one suite)")
@click.option("--temperatures", default="0.5:2.0:0.1", show_default=True, help="start:stop:step (stop included) or a list 0.7,1,1.3")
@click.option("-n", "num", default=9984, show_default=True, type=int, help="samples per temperature")
@click.option("--seed", default=0, show_default=True, type=int, help="evaluation seed, the same at every temperature")
@click.option("--out", "out_dir", default="results/sweeps/temperature", show_default=True, type=click.Path(file_okay=False))
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), help="also draw the runs' curves on one figure (PNG)")
def sweep_temperature(run_dirs, temperatures, num, seed, out_dir, plot_path):
    """Quality and diversity of runs' generators over a grid of sampling temperatures."""
    from .reports.temperature import Sweep, dominance, parse_temperatures, plot_sweeps, sweep, write_sweep

    grid = parse_temperatures(temperatures)
    if not 2 <= num <= MAX_SAMPLES:
        raise TextbenchError(f"-n {num}: expected 2 to {MAX_SAMPLES:,} samples")
    if not 0 <= seed < 2**63:
        raise TextbenchError(f"--seed {seed}: expected 0 <= seed < 2**63")
    done = []
    for run_dir in run_dirs:
        table = sweep(Path(run_dir), grid, num, seed, log=lambda m: click.echo(m, err=True))
        path = write_sweep(Path(out_dir), Path(run_dir), table, seed, num)
        click.echo(f"wrote {path} ({table['seconds'].sum():.0f} s for {len(grid)} temperatures)")
        from .io import read_json

        done.append(Sweep(read_json(path.with_suffix(".json")), table))
    for i, a in enumerate(done):
        for b in done[i + 1 :]:
            click.echo(dominance(a, b))
    if plot_path:
        click.echo(f"wrote {plot_sweeps(done, Path(plot_path))}")


@main.command(name="sweep")
@click.option("--algo", "algos", required=True, multiple=True, help="algorithm(s): repeat or comma-separate")
@click.option("--suite", "suites", required=True, multiple=True, help="suite(s): repeat or comma-separate")
@click.option("--profile", "profiles", default=("quick",), multiple=True, show_default=True, help="profile(s)")
@click.option("--seed", "seeds", default=("0",), multiple=True, show_default=True, help="seed(s): 0,1,2 or a range 0-4")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="a setting for every point (as for run)")
@click.option("--grid", "grid", multiple=True, metavar="KEY=VALUE",
              help="one value of a swept setting, parsed as --set; repeat the key for more values (--grid m_lr=0.001 --grid m_lr=0.002)")
@click.option("--results", "results_root", type=click.Path(file_okay=False), help="results folder (as for run)")
@click.option("--executor", default="local", show_default=True, type=click.Choice(["local", "ray", "slurm", "submitit-local"]))
@click.option("--jobs", type=click.IntRange(min=1), help="runs at once (default: the core count; slurm: no limit)")
@click.option("--ray-address", help="a Ray cluster (default: a new local Ray instance)")
@click.option("--slurm-partition", help="SLURM partition")
@click.option("--slurm-time", default=240, show_default=True, type=click.IntRange(min=1), help="minutes per run (SLURM time limit)")
@click.option("--slurm-mem-gb", default=4.0, show_default=True, type=click.FloatRange(min=0, min_open=True), help="memory per run")
@click.option("--slurm-param", multiple=True, metavar="KEY=VALUE", help="any other sbatch option submitit knows (account=..., qos=...)")
@click.option("--dry-run", is_flag=True, help="print the grid and its run directories; run nothing")
def sweep_cmd(algos, suites, profiles, seeds, overrides, grid, results_root, executor, jobs, ray_address, slurm_partition,
              slurm_time, slurm_mem_gb, slurm_param, dry_run):
    """Run a grid of runs (algorithms x suites x profiles x seeds x --grid values) on an executor: complete runs
    are skipped, unfinished ones resumed; exit 1 if any run failed."""
    from .sweeps import format_table, sweep

    slurm = {"partition": slurm_partition, "time": slurm_time, "mem_gb": slurm_mem_gb}
    for item in slurm_param:
        key, value = split_key_value(item, "--slurm-param")
        slurm[key] = int(value) if value.isdigit() else value
    try:
        results = sweep(algos, suites, profiles, seeds, list(overrides), list(grid), results_root or None, executor=executor, jobs=jobs,
                        ray_address=ray_address, slurm=slurm, dry_run=dry_run, log=click.echo)
    except KeyboardInterrupt:  # not the generic hint (--resume is run's option): a sweep continues when run again
        click.echo("interrupted; run the same textbench sweep command again to continue it", err=True)
        sys.exit(130)
    click.echo(format_table(results))
    if not dry_run and not all(r.ok for r in results):
        sys.exit(1)


# Report commands (leaderboard, plot, regress, report) are registered below.
from .reports.commands import leaderboard_cmd, plot_cmd, regress_cmd, report_cmd

main.add_command(leaderboard_cmd, "leaderboard")
main.add_command(plot_cmd, "plot")
main.add_command(regress_cmd, "regress")
main.add_command(report_cmd, "report")


if __name__ == "__main__":
    main()
