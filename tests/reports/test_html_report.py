"""The HTML report: its content from a fabricated results tree, and the page rendered by a real headless Chromium."""

from __future__ import annotations

import base64
import html
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_leaderboard import make_runs, synthetic_curve, text_curve, write_run  # noqa: E402

from textbench.errors import TextbenchError  # noqa: E402
from textbench.reports import html as report  # noqa: E402
from textbench.reports.commands import report_cmd  # noqa: E402
from textbench.reports.leaderboard import load_runs  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NASTY = "<script>alert(1)</script> & \"q\""
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> tuple[Path, str]:
    """make_runs' tree (paper and quick synthetic runs, an unfinished run, EMNLP runs) and one run with a --set
    value that holds markup, under <results>/runs; the report at its default place <results>/report.html."""
    results = tmp_path_factory.mktemp("results")
    make_runs(results / "runs")
    write_run(results / "runs", "synthetic", "mle", "quick", 7, synthetic_curve("mle", 7, steps=400, every=50),
              settings={"note": NASTY}, config={"overrides": {"note": NASTY}})
    path = report.write_report(results, dpi=40)  # low resolution: faster
    return path, path.read_text(encoding="utf-8")


def _section(text: str, start: str, end: str) -> str:
    return text[text.index(start): text.index(end, text.index(start))]


def test_the_tables_in_the_leaderboards_layout(page):
    _, text = page
    assert text.startswith("<!DOCTYPE html>") and "git commit" in text and "Generated " in text
    for title in ("Table 1 — synthetic Turing test", "Image COCO captions", "Table 2 — BLEU", "Table 3 — RS-BLEU",
                  "Quality against diversity over sampling temperature"):
        assert f"<h2>{html.escape(title)}" in text, title
    t1 = _section(text, "<h2>Table 1", "<h2>Image COCO")
    paper, quick = t1.index("Paper-scale runs"), t1.index("Quick and other runs — not comparable with the paper")
    assert paper < quick
    assert "<th>paper</th>" in t1 and ">9.08<" in t1  # MLE's published NLL_oracle beside ours
    assert "NLL_oracle final (nats/\u200btoken)" in t1  # units from the metric catalogue
    assert '<p class="note">No runs of coco yet' in text  # the COCO table: published values only
    assert '<p class="note">' not in _section(text, "<h2>Table 2", "<h2>Table 3")  # EMNLP has runs
    assert text.count("<table>") >= 8


def test_an_unfinished_run_is_shown_in_progress_never_as_a_result(page):
    _, text = page
    t1 = _section(text, "<h2>Table 1", "<h2>Image COCO")
    progress = _section(t1, '<h4 class="in-progress">In progress — not results</h4>', "</ul>")
    assert "synthetic/cot/paper-seed4" in progress and "step 400 of 200000" in progress
    rows = _section(text, '<section id="runs">', "</section>")
    row = _section(rows, "synthetic/cot/paper-seed4", "</tr>")
    assert '<td class="status in-progress">in progress: step 400 of 200000' in row and "400 of 200,000" in row
    cot_paper = _section(t1, "<tr><td>cot</td><td>paper</td>", "</tr>")
    assert cot_paper.startswith('<tr><td>cot</td><td>paper</td><td class="r">3</td>')  # seeds 1-3, not the 4th


def test_text_is_escaped_and_the_page_fetches_nothing(page):
    _, text = page
    assert "alert(1)" in text and "<script" not in text  # the markup of a --set value: in Table 1 and the run's row
    t1 = _section(text, "<h2>Table 1", "<h2>Image COCO")
    assert f"<td>quick · set note={html.escape(NASTY)}</td>" in t1
    assert f"--set note={html.escape(NASTY)}</summary>" in text and f"<td>{html.escape(NASTY)}</td>" in text
    assert f'content="{html.escape(report.CSP)}"' in text
    assert not re.search(r'(src|href)="(https?:)?//', text) and "<link" not in text and "url(" not in text


def test_every_figure_is_an_embedded_png_with_a_caption(page):
    _, text = page
    figures = re.findall(r'<figure id="fig-([^"]+)"><img src="data:image/png;base64,([^"]+)" alt="[^"]+">'
                         r"<figcaption>([^<]+)</figcaption></figure>", text)
    names = {name for name, _, _ in figures}
    assert {"synthetic-paper-vs-updates", "synthetic-paper-vs-wall", "synthetic-paper-cot-bnll-vs-jsd",
            "synthetic-quick-vs-updates", "emnlp-paper-vs-updates", "emnlp-paper-vs-wall"} <= names
    assert len(figures) == text.count("<img ")
    for name, data, caption in figures:
        assert base64.b64decode(data)[:8] == PNG_MAGIC, name
        assert caption.startswith("Suite &#x27;"), caption


def test_samples_links_resolve_relative_to_the_page(page, tmp_path):
    path, text = page
    links = re.findall(r'href="([^"]+/samples\.txt)"', text)
    runs = load_runs(path.parent / "runs")
    assert len(links) == len(runs) == 15
    assert all((path.parent / link).is_file() for link in links)
    elsewhere = tmp_path / "site" / "deep"  # a page written elsewhere links back with ../
    links = re.findall(r'href="([^"]+/samples\.txt)"', report.render_runs(runs, elsewhere))
    assert links and all(link.startswith("../") and (elsewhere / link).resolve().is_file() for link in links)


def test_markdown_subset():
    md = ("# Title `a|b`\n\npara *em* **strong** [link](runs/x/) <b>raw</b>\nmore\n\n"
          "### In progress — not results\n\n- [r](r/): step 1\n- top\n  - nested *x*\n- last\n\n"
          "| h1 | nats/token |\n| --- | ---: |\n| a \\| b | 1.0 ± 0.1 |\n")
    out = report.markdown_to_html(md, level=1)
    assert "<h2>Title <code>a|b</code></h2>" in out
    assert '<p>para <em>em</em> <strong>strong</strong> <a href="runs/x/">link</a> &lt;b&gt;raw&lt;/b&gt; more</p>' in out
    assert '<h4 class="in-progress">In progress — not results</h4>' in out
    assert ('<ul><li><a href="r/">r</a>: step 1</li><li>top<ul><li>nested <em>x</em></li></ul></li><li>last</li></ul>'
            in out)
    assert "<th>nats/\u200btoken</th>" in out
    assert '<td>a | b</td><td class="r">1.0\u00a0±\u00a00.1</td>' in out


def test_cli_report_default_place_and_errors(tmp_path):
    write_run(tmp_path / "res" / "runs", "emnlp", "cot", "paper", 1, text_curve("cot", 1))
    res = CliRunner().invoke(report_cmd, ["--results", str(tmp_path / "res")])
    assert res.exit_code == 0, res.output
    assert res.output.strip() == str(tmp_path / "res" / "report.html")
    assert "Table 2 — BLEU" in (tmp_path / "res" / "report.html").read_text(encoding="utf-8")
    res = CliRunner().invoke(report_cmd, ["--results", str(tmp_path / "missing")])
    assert isinstance(res.exception, TextbenchError) and "results directory" in str(res.exception)
    (tmp_path / "empty").mkdir()
    res = CliRunner().invoke(report_cmd, ["--results", str(tmp_path / "empty"), "--out", str(tmp_path / "r.html")])
    assert isinstance(res.exception, TextbenchError) and "no runs/ folder" in str(res.exception)
    assert not (tmp_path / "r.html").exists()


# ------------------------------------------------------------------------------------------------
# A real browser
# ------------------------------------------------------------------------------------------------

#: added to a copy of the page only: records what the browser made of it (the report itself has no script)
CHECK_SCRIPT = """<script>
window.addEventListener("load", () => {
  for (const img of document.images) img.setAttribute("data-natural-width", img.naturalWidth);
  const shown = [...document.querySelectorAll("table")].filter(t => t.offsetWidth > 0 && t.offsetHeight > 0);
  document.body.setAttribute("data-tables-shown", shown.length);
  console.log("textbench-report-check");
});
</script>"""


def _browser() -> str:
    exe = next((p for p in map(shutil.which, BROWSERS) if p), None)
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail("no Chromium found (chromium, chromium-browser, google-chrome): CI must install one (.ci/run)")
        pytest.skip("no Chromium installed (apt-get install chromium)")
    return exe


def _chromium(exe: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}", "--enable-logging=stderr",
           "--v=0", *args]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr[-2000:]
    return res


def _console(stderr: str) -> list[str]:
    """The page's console messages and uncaught errors (Chromium logs them as ``INFO:CONSOLE:<line>] "..."``)."""
    return [ln for ln in stderr.splitlines() if ":CONSOLE" in ln or "Uncaught" in ln]


def test_the_page_renders_in_headless_chromium(page, tmp_path):
    import matplotlib.image

    exe = _browser()
    path, text = page
    shot = tmp_path / "report.png"
    res = _chromium(exe, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,2000", path.as_uri())
    assert _console(res.stderr) == []
    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.shape[:2] == (2000, 1280)
    colours = np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 50 and pixels.std() > 0.05  # text, table rules and shading, not a blank page
    assert (pixels[:400] < 0.5).any(axis=2).mean() > 0.01  # the title and the first paragraphs in dark ink

    check = path.with_name("report-browser-check.html")  # beside the page: the same relative links
    check.write_text(text.replace(html.escape(report.CSP), html.escape(report.CSP + "; script-src 'unsafe-inline'"))
                     .replace("</body>", CHECK_SCRIPT + "</body>"), encoding="utf-8")
    res = _chromium(exe, tmp_path / "profile", "--window-size=1280,2000", "--dump-dom", check.as_uri())
    dom = res.stdout
    assert [m for m in _console(res.stderr) if "textbench-report-check" not in m] == []
    assert any("textbench-report-check" in m for m in _console(res.stderr))  # console messages are captured
    assert int(re.search(r'data-tables-shown="(\d+)"', dom).group(1)) == text.count("<table>")
    widths = [int(w) for w in re.findall(r'data-natural-width="(\d+)"', dom)]
    assert len(widths) == text.count("<img ") >= 6 and min(widths) > 0
