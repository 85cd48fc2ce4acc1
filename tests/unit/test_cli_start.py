"""The ``docextract`` command starts fast: its group, every command and their options load without
the heavy modules (PyMuPDF, SQLAlchemy, the web framework, models), which commands import when run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app.auth.keys import Scope
from app.cli.common import is_schema_file
from app.cli.keys import SCOPES
from app.lib.logging import resolved_format

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ["torch", "transformers", "pymupdf", "lxml", "litestar", "numpy", "sqlalchemy", "PIL", "uvicorn"]

EVERY_HELP = """
import sys
import click
from app.cli import main
with click.Context(main) as ctx:
    for name in main.list_commands(ctx):
        command = main.get_command(ctx, name)
        command.get_help(click.Context(command, info_name=name, parent=ctx))
        for sub in getattr(command, "commands", {}).values():
            sub.get_help(click.Context(sub, parent=ctx))
print(" ".join(sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)))
"""


def test_every_help_loads_without_heavy_modules() -> None:
    code = f"HEAVY = {HEAVY!r}\n{EVERY_HELP}"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_help_lists_every_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "app", "--help"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    for name in [
        "serve",
        "worker",
        "db",
        "keys",
        "schemas",
        "analyze",
        "extract",
        "eval",
        "calibrate",
        "loso",
    ]:
        assert f"  {name} " in done.stdout


def test_key_scopes_spelled_out_for_the_cli_match_the_enum() -> None:
    assert tuple(s.value for s in Scope) == SCOPES


def test_a_schema_ref_is_a_file_when_it_looks_like_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.json").write_text("{}")
    assert is_schema_file("mine.json") and is_schema_file("./missing.json") and is_schema_file("dir/x")
    assert not is_schema_file("invoice") and not is_schema_file("invoice@2")
    assert not is_schema_file("missing.json")  # no such file, no separator: a (bad) schema name


class _Stream:
    def __init__(self, tty: bool) -> None:
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize(
    ("fmt", "tty", "expected"),
    [
        ("auto", True, "console"),
        ("auto", False, "json"),
        ("json", True, "json"),
        ("console", False, "console"),
    ],
)
def test_log_format_auto_follows_the_terminal(
    fmt: str, tty: bool, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stderr", _Stream(tty))
    assert resolved_format(fmt) == expected
