"""The ``docextract`` command: serve the API, migrate the database, manage keys and schemas.

The commands live in the modules of this package, one concern each. This one names them, and
imports a command's module only when that command is used: ``docextract --help`` must not pay for
PyMuPDF, SQLAlchemy or the web framework (``bench/bench_cli.py``). For the same reason the command
modules import what their commands need inside the commands, not at the top."""

from __future__ import annotations

import importlib
from typing import Any

import click

from app import __version__

COMMANDS: dict[str, str] = {
    "serve": "app.cli.serve:serve",
    "worker": "app.cli.serve:worker",
    "db": "app.cli.db:db",
    "keys": "app.cli.keys:keys",
    "schemas": "app.cli.schemas:schemas",
    "analyze": "app.cli.documents:analyze",
    "extract": "app.cli.documents:extract",
    "eval": "app.cli.evaluation:evaluate_command",
    "calibrate": "app.cli.evaluation:calibrate",
    "loso": "app.cli.evaluation:leave_one_set_out_command",
}
"""Each command's name and where it is defined, ``module:attribute``."""


class LazyGroup(click.Group):
    """A group whose subcommands are imported from ``COMMANDS`` when asked for by name."""

    def __init__(self, *args: Any, lazy_commands: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = lazy_commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.lazy_commands:
            return super().get_command(ctx, cmd_name)
        module, attribute = self.lazy_commands[cmd_name].split(":")
        command = getattr(importlib.import_module(module), attribute)
        if not isinstance(command, click.Command):  # pragma: no cover - a wrong COMMANDS entry
            raise TypeError(f"{self.lazy_commands[cmd_name]} is not a click command")
        return command


@click.group(cls=LazyGroup, lazy_commands=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="docextract")
def main() -> None:
    """docextract: schema-valid JSON from business documents.

    Configuration comes from DOCEXTRACT_* environment variables (see the README).
    """
