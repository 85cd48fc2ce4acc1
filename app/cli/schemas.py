"""``docextract schemas``: list, show and add schemas in the registry."""

# ruff: noqa: PLC0415 - commands import what they need when run: `--help` stays fast (app.cli)

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
import orjson

from app.cli.common import cli_settings, run_with_database

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from app.registry.service import SchemaVersion


@click.group()
def schemas() -> None:
    """The schema registry."""


@schemas.command("list")
@click.option("--all", "include_deprecated", is_flag=True, help="Include deprecated schemas.")
def schemas_list(include_deprecated: bool) -> None:
    """List schemas with their latest version."""
    from app.registry.service import SchemaRegistry
    from app.registry.validation import schema_limits

    async def work(session: AsyncSession) -> list[SchemaVersion]:
        registry = SchemaRegistry(session, schema_limits(settings))
        return (
            await registry.list_latest(limit=10_000, offset=0, include_deprecated=include_deprecated)
        ).items

    settings = cli_settings()
    click.echo(f"{'NAME':<24}{'LATEST':<8}{'SOURCE':<9}{'DEPRECATED':<11}DESCRIPTION")
    for v in run_with_database(settings, work):
        click.echo(
            f"{v.name:<24}{v.version:<8}{v.source:<9}{'yes' if v.deprecated_at else '':<11}"
            f"{(v.description or '')[:60]}"
        )


@schemas.command("show")
@click.argument("ref")
def schemas_show(ref: str) -> None:
    """Print a schema version (REF is `name` or `name@version`) as JSON."""
    from app.registry.refs import parse_ref
    from app.registry.service import SchemaRegistry
    from app.registry.validation import schema_limits

    settings = cli_settings()
    version = run_with_database(
        settings, lambda s: SchemaRegistry(s, schema_limits(settings)).get(parse_ref(ref))
    )
    click.echo(orjson.dumps(version.schema, option=orjson.OPT_INDENT_2).decode())


@schemas.command("add")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", help="Schema name [default: the file name without .json].")
@click.option("--description", help="Description [default: the schema's own description].")
def schemas_add(file: Path, name: str | None, description: str | None) -> None:
    """Register FILE as a new schema, or as a new version of an existing one.

    FILE holds a JSON Schema, or an object {"name", "description", "schema"} as POST /schemas takes.
    """
    from app.lib.errors import SchemaError
    from app.lib.problems import SCHEMA_EXISTS, Problem
    from app.registry.service import SchemaRegistry
    from app.registry.validation import schema_limits
    from app.schema.grammar import post_decoding_keywords

    try:
        document = orjson.loads(file.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise click.ClickException(f"{file} is not valid JSON: {exc}") from exc
    if isinstance(document, dict) and "schema" in document and "name" in document:
        name = name or document["name"]
        description = description or document.get("description")
        document = document["schema"]
    name = name or file.stem
    if description is None and isinstance(document, dict):
        description = document.get("description")
    settings = cli_settings()

    async def work(session: AsyncSession) -> tuple[SchemaVersion, bool]:
        registry = SchemaRegistry(session, schema_limits(settings))
        try:
            return await registry.create(name, document, description, source="cli"), True
        except (Problem, SchemaError) as exc:  # SCHEMA_EXISTS, as a Problem or a SchemaError
            if exc.kind is not SCHEMA_EXISTS:
                raise
        return await registry.add_version(name, document, description, source="cli")

    version, created = run_with_database(settings, work)
    click.echo(f"{'added' if created else 'unchanged, already'} {version.ref} (sha256 {version.sha256[:12]})")
    for item in post_decoding_keywords(version.schema):
        click.echo(f"  checked after decoding: {item['pointer']} ({item['reason']})")
