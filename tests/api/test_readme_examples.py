"""The README's "Your own corpus" commands and its "Python API" example run as they are, in a fresh folder
(tests/cli/test_readme_commands.py parses every README command; these two examples are executed)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def first_block_after(heading: str) -> str:
    text = README.read_text(encoding="utf-8")
    assert heading in text, f"README has no {heading!r}"
    m = re.search(r"```[a-z]*\n(.*?)```", text[text.index(heading):], flags=re.S)
    assert m, f"no code block after {heading!r}"
    return m.group(1)


def env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


@pytest.mark.slow
def test_own_corpus_commands_run(tmp_path):
    block = first_block_after("## Your own corpus")
    assert "--suite text" in block and "textbench eval" in block
    script = f'textbench() {{ "{sys.executable}" -m textbench "$@"; }}\nset -e\n' + block
    res = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert len((tmp_path / "train.txt").read_text().splitlines()) == 65
    assert len((tmp_path / "test.txt").read_text().splitlines()) == 16
    assert (tmp_path / "my-run" / "summary.json").is_file()
    assert "complete: bleu-2" in res.stdout and "rs-bleu-3" in res.stdout


def test_python_api_example_runs(tmp_path, monkeypatch):
    code = first_block_after("## Python API")
    assert "textbench.run(" in code and "textbench.generate(" in code and "textbench.evaluate(" in code
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, str(README) + ":Python API", "exec"), namespace)
    res = namespace["res"]
    assert res.complete and res.suite == "text" and res.path.parts[0] == "tb-results"
    assert len(namespace["lines"]) == 100 and "nll_generator" in namespace["scores"]
    # the same corpus as the shell example: 65 training and 16 test sentences
    assert len(Path("train.txt").read_text().splitlines()) == 65 and len(Path("test.txt").read_text().splitlines()) == 16
