"""``docextract db``: apply and inspect database migrations."""

# ruff: noqa: PLC0415 - commands import what they need when run: `--help` stays fast (app.cli)

from __future__ import annotations

import sys

import click

from app.cli.common import cli_settings, run_with_database


@click.group()
def db() -> None:
    """Database migrations."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply migrations."""
    from app.db.migrate import upgrade

    state = run_with_database(cli_settings(), lambda engine: upgrade(engine, revision), migrate=False)
    click.echo(f"database at migration {state.current} (newest: {state.head})")


@db.command("current")
def db_current() -> None:
    """Show the database's migration and whether it is current."""
    from app.db.migrate import migration_state

    state = run_with_database(cli_settings(), migration_state, migrate=False)
    click.echo(
        f"database at migration {state.current} (newest: {state.head})"
        + ("" if state.is_current else "; run `docextract db upgrade`")
    )
    if not state.is_current:
        sys.exit(1)
