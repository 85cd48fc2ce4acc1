"""``docextract keys``: create, list and revoke API keys."""

# ruff: noqa: PLC0415 - commands import what they need when run: `--help` stays fast (app.cli)

from __future__ import annotations

from typing import Any

import click

from app.cli.common import cli_settings, run_with_database

SCOPES = ("admin", "extract", "review")
"""``app.auth.keys.Scope``'s values, spelled out so that ``--help`` need not import the database
layer (a unit test keeps the two equal)."""


@click.group()
def keys() -> None:
    """API keys."""


@keys.command("create")
@click.option("--name", required=True, help="What the key is for (shown in lists and logs).")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    type=click.Choice(SCOPES),
    default=["extract"],
    show_default=True,
    help="Repeat for several scopes.",
)
@click.option("--team", default=None, help="Keys of one team see each other's extractions (and review them).")
def keys_create(name: str, scopes: tuple[str, ...], team: str | None) -> None:
    """Create a key and print it (the only time it is shown)."""
    from app.auth.keys import ApiKeys

    issued = run_with_database(cli_settings(), lambda s: ApiKeys(s).create(name, list(scopes), team))
    click.echo(f"id:     {issued.record.id}\nscopes: {','.join(issued.record.scopes)}\nkey:    {issued.key}")
    if issued.record.team:
        click.echo(f"team:   {issued.record.team}")
    click.echo("Store the key now: it cannot be shown again.", err=True)


@keys.command("list")
@click.option("--all", "include_revoked", is_flag=True, help="Include revoked keys.")
def keys_list(include_revoked: bool) -> None:
    """List keys (ids, never secrets)."""
    from app.auth.keys import ApiKeys

    records = run_with_database(cli_settings(), lambda s: ApiKeys(s).list(include_revoked=include_revoked))
    click.echo(f"{'ID':<14}{'NAME':<24}{'SCOPES':<16}{'CREATED':<22}{'LAST USED':<22}REVOKED")
    for r in records:
        click.echo(
            f"{r.id:<14}{r.name[:23]:<24}{','.join(r.scopes):<16}{_when(r.created_at):<22}"
            f"{_when(r.last_used_at):<22}{_when(r.revoked_at)}"
        )


@keys.command("revoke")
@click.argument("key_id")
def keys_revoke(key_id: str) -> None:
    """Revoke a key by id; requests with it fail from now on."""
    from app.auth.keys import ApiKeys

    record = run_with_database(cli_settings(), lambda s: ApiKeys(s).revoke(key_id))
    click.echo(f"revoked {record.id} ({record.name}) at {_when(record.revoked_at)}")


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"
