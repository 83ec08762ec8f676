"""The HTML report: one self-contained page of a results folder (``textbench report``), and its one owner.

The page holds, in order: the title, when it was generated and from which code (git commit); the
leaderboard's tables — Table 1 (synthetic), the COCO table, Tables 2–3 (EMNLP) and the temperature dominance
table — exactly as ``textbench leaderboard`` lays them out (its markdown rendered to HTML: paper-scale rows
first, in-progress runs as "step k of N" and never as results, quick rows marked not comparable, the
published values beside); every figure ``textbench plot`` draws, with a caption; and one row per run (status,
steps, wall time, its settings and links to its files, relative to the page).

Nothing is fetched: the figures are embedded as ``data:`` URIs, the style is inline, there is no script and
the page's Content-Security-Policy (:data:`CSP`) makes a browser refuse anything else. Runs are read with
:func:`leaderboard.load_runs` (through ``RunDir``), numbers and labels come from the leaderboard and the
metric catalogue, figures from :mod:`plots`.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import textbench

from ..engine.rundir import RunDir, git_info
from ..errors import TextbenchError
from ..io import atomic_write_text
from . import plots
from .leaderboard import DEFAULT_RUNS, Run, _finite, _rel, build_leaderboard, fmt_num, load_runs, progress_line

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_RESULTS = DEFAULT_RUNS.parent  # the folder `leaderboard` reads runs/ from
REPORT_NAME = "report.html"
#: the leaderboard's tables, in the order of the page
TABLES = ("table1", "coco", "table2", "table3", "temperature")
#: only inline style and data: images; a browser blocks (and logs) anything the page would fetch
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
#: what each figure of plots.py shows, by the end of its file name
CAPTIONS = {
    "vs-updates": "metrics against cumulative generator updates (the comparable axis); line = mean over seeds, "
                  "band = min–max, dashed = in progress, dotted = the paper's final values",
    "vs-wall": "the same metrics against wall-clock time",
    "cot-bnll-vs-jsd": "CoT's mediator balanced NLL and JSD estimate, during training and against each other "
                       "(the paper's Figure 3)",
    "temperature": "quality against diversity over sampling temperatures (★ = T 1; diamonds = published values)",
}

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; color: #1b1b1b; margin: 16px auto; max-width: 1500px; padding: 0 12px; }
h1 { font-size: 24px; margin-bottom: 4px; }
h2 { font-size: 20px; border-bottom: 2px solid #d8dde3; padding-bottom: 3px; margin-top: 36px; }
h3 { font-size: 16px; margin-top: 22px; } h4 { font-size: 14px; margin: 16px 0 6px; }
p, li { max-width: 1100px; }
.meta { color: #555; margin-top: 0; }
.wide { overflow-x: auto; margin: 6px 0 14px; }
table { border-collapse: collapse; font-size: 11.5px; }
th, td { border: 1px solid #cfd5dc; padding: 2px 4px; vertical-align: top; }
th { background: #eef2f6; text-align: left; font-weight: 600; font-size: 11px; }
tbody tr:nth-child(even) { background: #f8f9fb; }
td.r { text-align: right; font-variant-numeric: tabular-nums; }
td.nowrap { white-space: nowrap; } td.status { min-width: 16em; }
code { font: 12px ui-monospace, monospace; background: #f1f3f5; padding: 0 3px; border-radius: 3px; }
figure { margin: 18px 0 26px; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid #e1e4e8; }
figcaption { font-size: 13px; color: #444; margin-top: 4px; }
.in-progress { color: #8a4b00; } .error { color: #a40000; }
h4.in-progress + ul, td.in-progress { background: #fff4dc; }
.note { background: #eaf2fb; border-left: 4px solid #5b8fc9; padding: 6px 10px; }
details summary { cursor: pointer; }
details table { margin-top: 4px; } details td { overflow-wrap: anywhere; }
"""


# ------------------------------------------------------------------------------------------------
# The page
# ------------------------------------------------------------------------------------------------


def write_report(results: str | os.PathLike = DEFAULT_RESULTS, out: str | os.PathLike | None = None,
                 dpi: int = plots.DPI) -> Path:
    """Write the page (atomically) to ``out`` (default ``<results>/report.html``); returns its path."""
    out = Path(out) if out is not None else Path(results) / REPORT_NAME
    atomic_write_text(out, build_report(results, out, dpi))
    return out


def build_report(results: str | os.PathLike, out: str | os.PathLike, dpi: int = plots.DPI) -> str:
    """The whole page for the runs under ``<results>/runs``; links are relative to the page's place ``out``."""
    results, out_dir = Path(results), Path(out).parent
    runs_dir = results / "runs"
    if not results.is_dir():
        raise TextbenchError(f"results directory {results} not found (pass --results DIR)")
    if not runs_dir.is_dir():
        raise TextbenchError(f"{results} holds no runs/ folder (pass the folder that holds runs/ with --results)")
    runs = load_runs(runs_dir)
    tables = build_leaderboard(runs_dir, out_dir=out_dir, runs=runs)
    commit, dirty = git_info()
    code = f"textbench {textbench.__version__}, git commit {commit or 'unknown'}" + (
        " with uncommitted changes in textbench/" if dirty else "")
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    sections = [("tables", "Tables", "".join(render_table(tables[name].markdown, runs, tables[name].frame)
                                              for name in TABLES if name in tables)),
                ("curves", "Curves", render_figures(runs, runs_dir, dpi)),
                ("runs", "Runs", render_runs(runs, out_dir))]
    toc = " · ".join(f'<a href="#{key}">{title}</a>' for key, title, _ in sections)
    body = "".join(f'<section id="{key}">{body}</section>' for key, _, body in sections)
    e = html.escape
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{e(CSP)}">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>textbench report — {e(str(results))}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
            f"<h1>textbench results</h1>\n"
            f'<p class="meta">Generated {e(now)} by <code>textbench report</code> from <code>{e(str(results))}</code> '
            f"({len(runs)} run{'s' if len(runs) != 1 else ''}); code: {e(code)}.</p>\n"
            f"<p>{toc}</p>\n{body}\n</body>\n</html>\n")


def render_table(markdown: str, runs: list[Run], frame: pd.DataFrame) -> str:
    """One leaderboard table (its markdown as HTML, its title a section heading), with a note when none of its
    suites has a run (its rows are then the published values alone)."""
    title, _, rest = markdown.partition("\n")
    suites = set(frame["suite"]) if "suite" in frame.columns else set()
    note = ""
    if suites and not any(r.suite in suites for r in runs):
        note = (f'<p class="note">No runs of {", ".join(sorted(suites))} yet: the rows below show the published '
                "values only.</p>\n")
    return markdown_to_html(title, level=1) + note + markdown_to_html(rest, level=1)


def render_figures(runs: list[Run], runs_dir: Path, dpi: int = plots.DPI) -> str:
    """Every PNG ``plots.plot_all`` draws (drawn into a temporary folder), embedded as a data: URI with a caption."""
    with tempfile.TemporaryDirectory(prefix="textbench-report-") as tmp:
        try:
            paths = plots.plot_all(runs_dir, tmp, runs=runs, dpi=dpi)
        except TextbenchError as err:  # no complete runs
            return f"<h2>Curves</h2>\n<p>No figures: {html.escape(str(err))}.</p>\n"
        images = [(p.stem, p.read_bytes()) for p in paths]
    pairs = {(r.suite, r.profile) for r in runs}
    parts = ["<h2>Curves</h2>\n<p>The figures of <code>textbench plot</code>; axis labels carry the units.</p>\n"]
    for stem, png in images:
        caption = figure_caption(stem, pairs)
        uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        parts.append(f'<figure id="fig-{html.escape(stem)}"><img src="{uri}" alt="{html.escape(caption)}">'
                     f"<figcaption>{html.escape(caption)}</figcaption></figure>\n")
    return "".join(parts)


def figure_caption(stem: str, pairs: set[tuple[str, str]]) -> str:
    """``<suite>-<profile>-<kind>`` → "Suite 'synthetic', profile 'paper': <what the kind shows>"."""
    for kind, text in CAPTIONS.items():
        for suite, profile in sorted(pairs):
            if stem == f"{suite}-{profile}-{kind}":
                return f"Suite '{suite}', profile '{profile}': {text}."
    return stem


def render_runs(runs: list[Run], out_dir: Path) -> str:
    """One row per run directory: identity, status, steps, wall time, links to its samples and config (relative
    to the page's folder ``out_dir``) and its settings (collapsed)."""
    e = html.escape
    head = ["run", "algorithm", "suite", "profile", "seed", "status", "steps", "wall time", "files", "settings"]
    rows = []
    for r in runs:
        rd, rel = RunDir(r.path), e(_rel(r.path, out_dir))
        files = [f'<a href="{rel}/{p.name}">{p.name}</a>' for p in (rd.samples_path, rd.config_path) if p.is_file()]
        status = "complete" if r.complete else r.status if r.errors else f"in progress: {progress_line(r)}"
        cls = "status" + ("" if r.complete else " error" if r.errors else " in-progress")
        cells = [f"<code>{e(f'{r.suite}/{r.algo}/{r.path.name}')}</code>", e(r.algo), e(r.suite), e(r.profile),
                 e(str(r.seed))]
        row = "".join(f"<td>{c}</td>" for c in cells) + f'<td class="{cls}">{e(status)}</td>'
        row += f'<td class="r nowrap">{e(_steps(r))}</td><td class="r nowrap">{e(_duration(r.wall_s))}</td>'
        row += f'<td class="nowrap">{" · ".join(files) or "—"}</td><td>{render_settings(r)}</td>'
        rows.append(f"<tr>{row}</tr>")
    if not rows:
        return "<h2>Runs</h2>\n<p>No run directories found.</p>\n"
    return ("<h2>Runs</h2>\n<p>Every run directory, complete or not; only complete runs are counted in the tables. "
            "Links open the run's final samples and its <code>config.json</code>.</p>\n"
            f'<div class="wide"><table><thead><tr>{"".join(f"<th>{h}</th>" for h in head)}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>\n")


def render_settings(run: Run) -> str:
    """The run's resolved settings (and command, commit) as a collapsed table; ``--set`` overrides in the summary."""
    cfg, settings = run.config or {}, run.settings
    if not settings:
        return "—"
    overrides = cfg.get("overrides") or {}
    summary = f"{len(settings)} settings" + ("; --set " + ", ".join(f"{k}={_value(v)}" for k, v in overrides.items())
                                            if overrides else "")
    extra = [("command", cfg.get("command")), ("git commit", cfg.get("git_commit")), ("created", cfg.get("created"))]
    rows = [(k, _value(v)) for k, v in sorted(settings.items())] + [(k, str(v)) for k, v in extra if v]
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f"<details><summary>{html.escape(summary)}</summary><table>{body}</table></details>"


def _value(v) -> str:
    """A setting's value as text: strings as they are, anything else as JSON."""
    return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)


def _steps(run: Run) -> str:
    """Steps done (:attr:`Run.steps_done`), "k of N" for an unfinished run."""
    done, total = run.steps_done, _finite(run.settings.get("steps"))
    if done is None:
        return "—"
    return f"{done:,.0f}" if run.complete or total is None else f"{done:,.0f} of {total:,.0f}"


def _duration(seconds: float | None) -> str:
    """Seconds as "98 s", "52 min" or "2.2 h"."""
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{fmt_num(seconds, 0)} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


# ------------------------------------------------------------------------------------------------
# The leaderboard's markdown as HTML
# ------------------------------------------------------------------------------------------------


def markdown_to_html(md: str, level: int = 0) -> str:
    """The markdown the leaderboard writes as HTML: headings (``level`` deeper), paragraphs, pipe tables, lists
    (two levels), ``code``, **bold**, *italic* and [links](url); all text is escaped."""
    lines, out, i = md.splitlines(), [], 0
    while i < len(lines):
        kind, j = _kind(lines[i]), i + 1
        if kind == "heading":
            hashes, text = lines[i].split(" ", 1)
            n = min(len(hashes) + level, 6)
            cls = ' class="in-progress"' if text.startswith("In progress") else ""
            out.append(f"<h{n}{cls}>{inline(text)}</h{n}>")
        elif kind != "blank":
            while j < len(lines) and _kind(lines[j]) == kind:
                j += 1
            block = lines[i:j]
            out.append(_table(block) if kind == "table" else _list(block) if kind == "list"
                       else f"<p>{inline(' '.join(block))}</p>")
        i = j
    return "\n".join(out) + "\n"


def _kind(line: str) -> str:
    """What a markdown line is part of: a heading, a table, a list, a paragraph, or a blank line between them."""
    if not line.strip():
        return "blank"
    if re.match(r"#{1,6} ", line):
        return "heading"
    return "table" if line.startswith("|") else "list" if re.match(r"\s*- ", line) else "paragraph"


def _table(lines: list[str]) -> str:
    """A pipe table (header, alignment rule, rows; ``\\|`` is a literal bar) in a horizontally scrolling box."""
    cells = [[c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", ln.strip()[1:-1])] for ln in lines]
    head, rule, body = cells[0], cells[1], cells[2:]
    right = [c.endswith(":") for c in rule]
    head = [c.replace("/", "/\u200b") for c in head]  # a header may break after "/" ("nats/token")
    th = "".join(f"<th>{inline(c)}</th>" for c in head)
    attr = [' class="r"' if r else "" for r in right]
    rows = "".join("<tr>" + "".join(f"<td{attr[k]}>{inline(_keep_together(c) if right[k] else c)}</td>"
                                    for k, c in enumerate(r)) + "</tr>" for r in body)
    return f'<div class="wide"><table><thead><tr>{th}</tr></thead><tbody>{rows}</tbody></table></div>'


def _keep_together(cell: str) -> str:
    """A number cell may wrap between values ("a + b", "a / b"), never inside "mean ± std", "(n=k)" or "+0.02 ✓"."""
    for old in (" ± ", " ✓", " ✗", " (n="):
        cell = cell.replace(old, old.replace(" ", "\u00a0"))
    return cell


def _list(lines: list[str]) -> str:
    """``- item`` lines, items indented by two spaces nested in the item above."""
    out, nested = ["<ul>"], False
    for ln in lines:
        sub = ln.startswith("  ")
        if sub and not nested:
            out[-1] = out[-1].removesuffix("</li>") + "<ul>"
        elif not sub and nested:
            out.append("</ul></li>")
        nested = sub
        out.append(f"<li>{inline(ln.strip()[2:])}</li>")
    return "".join(out + (["</ul></li>"] if nested else []) + ["</ul>"])


def inline(text: str) -> str:
    """Escape ``text`` and render its ``code`` spans, **bold**, *italic* and [links](url)."""
    parts = re.split(r"(`[^`]*`)", text)
    for k, part in enumerate(parts):
        if k % 2:
            parts[k] = f"<code>{html.escape(part[1:-1])}</code>"
            continue
        s = html.escape(part)
        s = re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r'<a href="\2">\1</a>', s)
        s = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", s)
        parts[k] = re.sub(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])", r"<em>\1</em>", s)
    return "".join(parts)
