"""Click commands of the reports: ``leaderboard``, ``plot``, ``regress`` and ``report`` (added to the main CLI group).

Errors are raised as :class:`textbench.errors.TextbenchError` (one-line message); the main group prints them.
``regress`` exits with status 1 when a check fails (``--fail-on-missing``: also when one is missing).
"""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import TextbenchError
from .leaderboard import DEFAULT_OUT as LEADERBOARD_OUT
from .leaderboard import DEFAULT_RUNS

PLOTS_OUT = Path("results/plots")

_runs_option = click.option(
    "--runs", "runs_dir", type=click.Path(path_type=Path, file_okay=False), default=DEFAULT_RUNS,
    show_default=True, help="Runs directory (<suite>/<algo>/<profile>-seed<N>/).")
_suite_option = click.option("--suite", default=None, help="Only this suite (default: every suite found).")


@click.command("leaderboard")
@_runs_option
@_suite_option
@click.option("--format", "fmt", type=click.Choice(["md", "csv", "both"]), default="both", show_default=True,
              help="Write markdown, CSV or both.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), default=LEADERBOARD_OUT,
              show_default=True, help="Output directory.")
def leaderboard_cmd(runs_dir: Path, suite: str | None, fmt: str, out_dir: Path) -> None:
    """Aggregate complete runs over seeds into the paper's tables (Table 1-3) beside the published numbers."""
    from .leaderboard import write_leaderboard

    written = write_leaderboard(runs_dir, out_dir, fmt, suite)
    for p in written:
        click.echo(str(p))


@click.command("plot")
@_runs_option
@_suite_option
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), default=PLOTS_OUT,
              show_default=True, help="Output directory for the PNG files.")
def plot_cmd(runs_dir: Path, suite: str | None, out_dir: Path) -> None:
    """Training curves (against generator updates and wall time; CoT BNLL vs JSD) and temperature sweeps as PNGs."""
    from .plots import plot_all

    for p in plot_all(runs_dir, out_dir, suite):
        click.echo(str(p))


@click.command("report")
@click.option("--results", "results_dir", type=click.Path(path_type=Path, file_okay=False), default=DEFAULT_RUNS.parent,
              show_default=True, help="Results folder (the one holding runs/ and sweeps/).")
@click.option("--out", "out_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="The page to write  [default: <results>/report.html].")
def report_cmd(results_dir: Path, out_path: Path | None) -> None:
    """One self-contained HTML page: Tables 1-3, the curves, and every run's status, settings and samples."""
    from .html import write_report

    click.echo(str(write_report(results_dir, out_path)))


@click.command("regress")
@_runs_option
@_suite_option
@click.option("--replay-evals", "replay_evals", type=int, default=2, show_default=True,
              help="Replay each run's first K evaluation intervals from its config.json (0 = the whole run).")
@click.option("--no-replay", is_flag=True, help="Skip the replay of committed runs.")
@click.option("--replay-mode", "replay_mode", type=click.Choice(["auto", "exact", "tolerance"]), default="auto",
              show_default=True,
              help="How replayed rows are compared: 'exact' (bit-identical; holds only on the recording machine's "
                   "CPU kernels and torch version), 'tolerance' (each metric within k standard errors of Monte-Carlo "
                   "error; metrics without one are compared at step 0 only), 'auto' (exact where this machine "
                   "matches the one recorded in config.json, tolerance elsewhere).")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Replays run at once, each in its own process with its run's recorded thread count (their "
                   "numbers do not depend on it; on a 2-core machine --jobs 2 halves the replay's wall time).")
@click.option("--replay-budget", "replay_budget", type=click.FloatRange(min=0, min_open=True), default=None,
              metavar="MINUTES",
              help="No replay starts after this many minutes; the runs left are listed as missing (not replayed), "
                   "never as passed. Each setting's first seed is replayed before any second seed, paper runs "
                   "first. Replays already running finish. Default: replay every complete run.")
@click.option("--profile", default="paper", show_default=True,
              help="Runs of this profile are checked: 'paper' against the published numbers and the paper's "
                   "claims; others (e.g. 'quick') only against the claims meaningful at that scale.")
@click.option("--fail-on-missing", is_flag=True, help="Exit non-zero when a check is missing, too.")
@click.option("--csv", "csv_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Also write the table of checks to this CSV file.")
@click.pass_context
def regress_cmd(ctx: click.Context, runs_dir: Path, suite: str | None, replay_evals: int, no_replay: bool,
                replay_mode: str, jobs: int, replay_budget: float | None, profile: str, fail_on_missing: bool,
                csv_path: Path | None) -> None:
    """Compare the committed results with the published numbers, the paper's claims and a replay of the runs."""
    from ..io import atomic_write_text
    from .regress import regress

    if replay_evals < 0:
        raise TextbenchError(f"--replay-evals must be >= 0 (0 = the whole run), not {replay_evals}")
    def replayed(run, check, seconds: float) -> None:  # progress on stderr: where the replay's time goes
        if check.ours == "not replayed":
            click.echo(f"not replayed {run.name} ({run.path.name}): --replay-budget spent", err=True)
        else:
            click.echo(f"replayed {run.name} ({run.path.name}): {check.status} in {seconds:.0f} s", err=True)

    report = regress(runs_dir, profile=profile, suite=suite, replay_evals=replay_evals, do_replay=not no_replay,
                     replay_mode=replay_mode, jobs=jobs, on_replayed=replayed,
                     replay_budget_min=replay_budget)
    click.echo(report.format(), nl=False)
    if csv_path is not None:
        atomic_write_text(csv_path, report.frame().to_csv(index=False))
    code = report.exit_code(fail_on_missing)
    if code:
        ctx.exit(code)
