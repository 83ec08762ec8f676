"""Every ``textbench`` command the README shows parses against the real CLI, and every ``--set`` key it
uses (in commands and in prose such as ``--set text_train_path=...``) is a setting: a renamed option or
setting fails here, not in a new user's first hour. Commands are parsed, not run."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from textbench.cli import main
from textbench.engine.loop import resolve_settings
from textbench.registry import ALGORITHMS, SUITES

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_commands() -> list[list[str]]:
    """``textbench ...`` invocations in the README's code blocks (comments dropped, ``&&`` chains split)."""
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"```(?:bash)?\n(.*?)```", text, flags=re.S)
    cmds = []
    for block in blocks:
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            for part in line.split("&&"):
                words = shlex.split(part.strip())
                while words and "=" in words[0] and not words[0].startswith("-"):  # VAR=value prefixes
                    words = words[1:]
                if words and words[0] == "textbench":
                    cmds.append(words[1:])
    return cmds


COMMANDS = readme_commands()


def test_the_readme_shows_commands():
    assert len(COMMANDS) >= 10 and ["run", "--algo", "cot", "--suite", "synthetic", "--profile", "quick"] in COMMANDS


@pytest.mark.parametrize("args", COMMANDS, ids=[" ".join(c)[:60] for c in COMMANDS])
def test_readme_command_parses(args):
    sub, rest = args[0], list(args[1:])
    cmd = main.commands.get(sub)
    assert cmd is not None, f"README command {sub!r} does not exist"
    if isinstance(cmd, click.Group):  # e.g. `data verify`
        assert rest and rest[0] in cmd.commands, f"README command {sub} {rest[:1]} does not exist"
        return
    with cmd.make_context(sub, rest) as ctx:  # unknown options or bad values raise here
        params = ctx.params
    if sub == "run":
        sets = [s.split("=", 1)[0] for s in params.get("overrides", ())]
        settings = resolve_settings(params["algo"], params["suite"], params["profile"])
        assert set(sets) <= set(settings), f"README --set keys {set(sets) - set(settings)} are not settings"


def test_every_set_key_in_the_readme_prose_is_a_setting():
    keys = set(re.findall(r"--set ([a-z_0-9]+)=", README.read_text(encoding="utf-8")))
    assert keys
    known = set()
    for algo in [e.name for e in ALGORITHMS.entries()]:
        for suite in [e.name for e in SUITES.entries()]:
            try:
                known |= set(resolve_settings(algo, suite, "quick"))
            except Exception:  # a suite that needs data absent here still has its defaults below
                known |= set(SUITES.get(suite).defaults)
    assert keys <= known, f"README names --set keys that are not settings: {sorted(keys - known)}"
