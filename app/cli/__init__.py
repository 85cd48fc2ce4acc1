"""The ``docextract`` command: serve the API, migrate the database, manage keys and schemas."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson
import uvicorn
from sqlalchemy.ext.asyncio import AsyncSession

from app import __version__
from app.auth.keys import ApiKeys, Scope
from app.db.engine import create_engine, create_session_maker
from app.db.migrate import (
    DatabaseBehind,
    DatabaseNewerThanCode,
    ensure_current,
    migration_state,
    upgrade,
)
from app.db.models import utcnow
from app.documents.analyze import AnalyzeOptions
from app.documents.overlay import draw_overlay, page_text
from app.documents.service import DocumentAnalyzer
from app.engines.unavailable import UnavailableEngine
from app.jobs.services import build_extractor, close_extractor
from app.jobs.worker import run_worker
from app.lib.canonical import canonical_sha256
from app.lib.errors import DocextractError
from app.lib.logging import configure_logging
from app.lib.problems import SCHEMA_EXISTS, Problem
from app.lib.settings import ConfigurationError, Settings, load_settings
from app.pages import Page, Region
from app.regions.factory import build_region_detector
from app.registry.builtins import default_builtin_dir, load_builtin_schemas
from app.registry.refs import parse_ref
from app.registry.service import SchemaRegistry, SchemaVersion
from app.registry.validation import schema_limits, validate_schema
from app.schema.grammar import post_decoding_keywords
from app.server.startup import prepare
from app.trust.assess import ReviewPolicy
from app.trust.confidence import expected_calibration_error, fit_isotonic
from app.trust.evaluate import Report, documents_in, record, reliability_diagram

T = TypeVar("T")


def _settings() -> Settings:
    try:
        settings = load_settings()
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc
    configure_logging(settings.app.log_level, settings.app.log_format)
    return settings


def _run(settings: Settings, work: Callable[[Any], Awaitable[T]], *, migrate: bool = True) -> T:
    """Run ``work(engine_or_session)`` with a fresh engine, turning known failures into messages."""

    async def main() -> T:
        engine = create_engine(settings)
        try:
            if not migrate:
                return await work(engine)
            await ensure_current(engine, auto_migrate=settings.database.auto_migrate)
            sessions = create_session_maker(engine)
            if settings.registry.load_builtins:  # `extract --schema invoice` works before any `serve`
                directory = settings.registry.builtin_dir or default_builtin_dir()
                await load_builtin_schemas(sessions, directory, schema_limits(settings))
            async with sessions() as session:
                return await work(session)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except (DatabaseNewerThanCode, DatabaseBehind) as exc:
        raise click.ClickException(str(exc)) from exc
    except (Problem, DocextractError) as exc:
        raise click.ClickException(_problem_text(exc)) from exc
    except OSError as exc:
        raise click.ClickException(f"Cannot reach the database: {exc}") from exc


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="docextract")
def main() -> None:
    """docextract: schema-valid JSON from business documents.

    Configuration comes from DOCEXTRACT_* environment variables (see the README).
    """


@main.command()
@click.option("--host", help="Interface to bind [DOCEXTRACT_SERVER_HOST, default 127.0.0.1].")
@click.option("--port", type=int, help="Port [DOCEXTRACT_SERVER_PORT, default 8000].")
@click.option("--workers", type=int, help="Worker processes [DOCEXTRACT_SERVER_WORKERS, default 1].")
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Run the API with uvicorn (migrates, loads built-in schemas, issues the first key)."""
    settings = _settings()
    try:
        build_region_detector(settings.layout)  # fail here, not in every worker, when layout cannot work
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc

    async def once(engine: Any) -> None:
        await prepare(settings, engine, create_session_maker(engine))

    _run(settings, once, migrate=False)
    uvicorn.run(
        "app.server.core:create_app",
        factory=True,
        host=host or settings.server.host,
        port=port or settings.server.port,
        workers=workers or settings.server.workers,
        log_config=None,
        access_log=False,
        proxy_headers=True,
    )


@main.command()
def worker() -> None:
    """Run jobs from the Redis queue (DOCEXTRACT_JOBS_RUNNER=redis) and deliver webhooks.

    Stops on SIGTERM/SIGINT after the jobs in hand finish (or their leases let another worker
    take them over)."""
    settings = _settings()
    try:
        asyncio.run(run_worker(settings))
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc
    except (DatabaseNewerThanCode, DatabaseBehind) as exc:
        raise click.ClickException(str(exc)) from exc


@main.group()
def db() -> None:
    """Database migrations."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply migrations."""
    state = _run(_settings(), lambda engine: upgrade(engine, revision), migrate=False)
    click.echo(f"database at migration {state.current} (newest: {state.head})")


@db.command("current")
def db_current() -> None:
    """Show the database's migration and whether it is current."""
    state = _run(_settings(), migration_state, migrate=False)
    click.echo(
        f"database at migration {state.current} (newest: {state.head})"
        + ("" if state.is_current else "; run `docextract db upgrade`")
    )
    if not state.is_current:
        sys.exit(1)


@main.group()
def keys() -> None:
    """API keys."""


@keys.command("create")
@click.option("--name", required=True, help="What the key is for (shown in lists and logs).")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    type=click.Choice([s.value for s in Scope]),
    default=[Scope.EXTRACT.value],
    show_default=True,
    help="Repeat for several scopes.",
)
def keys_create(name: str, scopes: tuple[str, ...]) -> None:
    """Create a key and print it (the only time it is shown)."""
    issued = _run(_settings(), lambda s: ApiKeys(s).create(name, list(scopes)))
    click.echo(f"id:     {issued.record.id}\nscopes: {','.join(issued.record.scopes)}\nkey:    {issued.key}")
    click.echo("Store the key now: it cannot be shown again.", err=True)


@keys.command("list")
@click.option("--all", "include_revoked", is_flag=True, help="Include revoked keys.")
def keys_list(include_revoked: bool) -> None:
    """List keys (ids, never secrets)."""
    records = _run(_settings(), lambda s: ApiKeys(s).list(include_revoked=include_revoked))
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
    record = _run(_settings(), lambda s: ApiKeys(s).revoke(key_id))
    click.echo(f"revoked {record.id} ({record.name}) at {_when(record.revoked_at)}")


@main.group()
def schemas() -> None:
    """The schema registry."""


@schemas.command("list")
@click.option("--all", "include_deprecated", is_flag=True, help="Include deprecated schemas.")
def schemas_list(include_deprecated: bool) -> None:
    """List schemas with their latest version."""

    async def work(session: AsyncSession) -> list[SchemaVersion]:
        registry = SchemaRegistry(session, schema_limits(settings))
        return (
            await registry.list_latest(limit=10_000, offset=0, include_deprecated=include_deprecated)
        ).items

    settings = _settings()
    click.echo(f"{'NAME':<24}{'LATEST':<8}{'SOURCE':<9}{'DEPRECATED':<11}DESCRIPTION")
    for v in _run(settings, work):
        click.echo(
            f"{v.name:<24}{v.version:<8}{v.source:<9}{'yes' if v.deprecated_at else '':<11}"
            f"{(v.description or '')[:60]}"
        )


@schemas.command("show")
@click.argument("ref")
def schemas_show(ref: str) -> None:
    """Print a schema version (REF is `name` or `name@version`) as JSON."""
    settings = _settings()
    version = _run(settings, lambda s: SchemaRegistry(s, schema_limits(settings)).get(parse_ref(ref)))
    click.echo(orjson.dumps(version.schema, option=orjson.OPT_INDENT_2).decode())


@schemas.command("add")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", help="Schema name [default: the file name without .json].")
@click.option("--description", help="Description [default: the schema's own description].")
def schemas_add(file: Path, name: str | None, description: str | None) -> None:
    """Register FILE as a new schema, or as a new version of an existing one.

    FILE holds a JSON Schema, or an object {"name", "description", "schema"} as POST /schemas takes.
    """
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
    settings = _settings()

    async def work(session: AsyncSession) -> tuple[SchemaVersion, bool]:
        registry = SchemaRegistry(session, schema_limits(settings))
        try:
            return await registry.create(name, document, description, source="cli"), True
        except Problem as exc:
            if exc.kind is not SCHEMA_EXISTS:
                raise
        return await registry.add_version(name, document, description, source="cli")

    version, created = _run(settings, work)
    click.echo(f"{'added' if created else 'unchanged, already'} {version.ref} (sha256 {version.sha256[:12]})")
    for item in post_decoding_keywords(version.schema):
        click.echo(f"  checked after decoding: {item['pointer']} ({item['reason']})")


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--pages", help="Pages to analyze, e.g. 1-3,7 [default: all].")
@click.option("--password", help="Password of an encrypted PDF.")
@click.option("--ocr/--no-ocr", default=True, show_default=True, help="OCR pages without a text layer.")
@click.option("--layout/--no-layout", default=True, show_default=True, help="Find layout regions.")
@click.option("--text", "as_text", is_flag=True, help="Print the text per page instead of JSON.")
@click.option(
    "--overlay",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Draw regions and words on the pages: OUT.png (OUT-<page>.png for several pages).",
)
def analyze(
    file: Path,
    pages: str | None,
    password: str | None,
    ocr: bool,
    layout: bool,
    as_text: bool,
    overlay: Path | None,
) -> None:
    """Print the text map of FILE (words with boxes, layout regions) as JSON."""
    settings = _settings()
    try:
        analyzer = DocumentAnalyzer(settings)
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc
    drawn: list[Path] = []

    def draw(page: Page, regions: list[Region]) -> None:
        if overlay is not None:
            target = overlay.with_name(f"{overlay.stem}-{page.number}{overlay.suffix or '.png'}")
            draw_overlay(page, regions).save(target)
            drawn.append(target)

    data = file.read_bytes()
    options = AnalyzeOptions(pages=pages, password=password, ocr=ocr, layout=layout)
    try:
        analysis = asyncio.run(analyzer.analyze(data, options, on_page=draw))
    except (Problem, DocextractError) as exc:
        raise click.ClickException(_problem_text(exc)) from exc
    finally:
        analyzer.close()
    if as_text:
        for page in analysis.map.pages:
            click.echo(
                f"--- page {page.number} ({page.kind}, {len(page.words)} words, {len(page.regions)} regions)"
            )
            click.echo(page_text(page.words))
    else:
        click.echo(orjson.dumps(analysis.map.to_dict() | {"timings_ms": analysis.timings_ms}).decode())
    if analysis.ocr_skipped_pages:
        click.echo(
            f"note: pages {analysis.ocr_skipped_pages} have no text layer and were not OCRed "
            "(pip install 'docextract[ocr]')",
            err=True,
        )
    if overlay is not None and len(drawn) == 1:  # one page: exactly the name asked for
        drawn = [drawn[0].replace(overlay)]
    for path in drawn:
        click.echo(f"overlay: {path}", err=True)


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--schema", "schema_ref", required=True, help="Schema name, or name@version.")
@click.option("--pages", help="Pages to read, e.g. 1-3,7 [default: all].")
@click.option("--password", help="Password of an encrypted PDF.")
@click.option(
    "--engine",
    type=click.Choice(["auto", "sglang", "transformers", "layout"]),
    help="Override DOCEXTRACT_ENGINE for this run.",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the result here.")
def extract(
    file: Path, schema_ref: str, pages: str | None, password: str | None, engine: str | None, out: Path | None
) -> None:
    """Extract FILE against a registered schema and print the result JSON."""
    settings = _settings()
    if engine is not None:
        settings = replace(settings, engine=settings.engine.model_copy(update={"engine": engine}))
    try:
        extractor = build_extractor(settings, DocumentAnalyzer(settings))
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc
    version = _run(settings, lambda s: SchemaRegistry(s, schema_limits(settings)).get(parse_ref(schema_ref)))
    data = file.read_bytes()
    with click.progressbar(length=1, label=f"{file.name}: pages", file=sys.stderr, show_pos=True) as bar:

        def progress(done: int, total: int) -> None:
            bar.length = max(total, 1)
            bar.update(done - bar.pos)

        async def run() -> dict[str, Any]:
            try:
                return (
                    await extractor.extract(
                        data,
                        version,
                        pages=pages,
                        password=password,
                        on_progress=progress,
                        document_id=file.stem,
                    )
                ).result
            finally:
                await close_extractor(extractor)

        try:
            result = asyncio.run(run())
        except (Problem, DocextractError) as exc:
            raise click.ClickException(_problem_text(exc)) from exc
    text = orjson.dumps(result, option=orjson.OPT_INDENT_2).decode()
    if out is not None:
        out.write_text(text + "\n")
        click.echo(f"{result['status']}: wrote {out}", err=True)
    else:
        click.echo(text)


@main.command("eval")
@click.argument("docs_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--schema",
    "schema_ref",
    required=True,
    help="A registered schema (name or name@version), or a JSON Schema file.",
)
@click.option(
    "--engine",
    type=click.Choice(["auto", "sglang", "transformers", "layout", "replay"]),
    help="Override DOCEXTRACT_ENGINE for this run.",
)
@click.option(
    "--replay-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="With --engine replay: recorded outputs (default: DOCS_DIR, i.e. replay the ground truth).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("eval-report.json"),
    show_default=True,
    help="The JSON report.",
)
@click.option(
    "--diagram",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("reliability.png"),
    show_default=True,
    help="The reliability diagram.",
)
@click.option("--limit", type=int, help="Only the first N documents.")
def evaluate_command(
    docs_dir: Path,
    schema_ref: str,
    engine: str | None,
    replay_dir: Path | None,
    out: Path,
    diagram: Path,
    limit: int | None,
) -> None:
    """Extract every document in DOCS_DIR that has <id>.json ground truth beside it, and report
    accuracy, evidence recall, calibration (ECE) and the error rate of auto-accepted fields."""
    settings = _settings()
    updates: dict[str, Any] = {}
    if engine is not None:
        updates["engine"] = engine
    if (engine or settings.engine.engine) == "replay":
        updates["replay_dir"] = replay_dir or settings.engine.replay_dir or docs_dir
    if updates:
        settings = replace(settings, engine=settings.engine.model_copy(update=updates))
    try:
        extractor = build_extractor(settings, DocumentAnalyzer(settings))
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc
    version = _schema_for_eval(settings, schema_ref)
    documents = documents_in(docs_dir)[:limit]
    report = Report()

    async def run() -> None:
        try:
            with click.progressbar(documents, label="documents", file=sys.stderr) as bar:
                for path in bar:
                    extraction = await extractor.extract(path.read_bytes(), version, document_id=path.stem)
                    truth = orjson.loads(path.with_suffix(".json").read_bytes())
                    record(report, path.stem, truth, extraction.result, version.schema)
        finally:
            await close_extractor(extractor)

    try:
        asyncio.run(run())
    except (Problem, DocextractError) as exc:
        raise click.ClickException(_problem_text(exc)) from exc
    summary = report.summary(ReviewPolicy.of(version.schema).min_confidence)
    out.write_bytes(
        orjson.dumps(
            {
                "summary": summary,
                "engine": None if isinstance(extractor.engine, UnavailableEngine) else extractor.engine.name,
                "fields": [o.__dict__ for o in report.outcomes],
                "documents": report.documents,
            },
            option=orjson.OPT_INDENT_2,
            default=str,
        )
    )
    reliability_diagram(report.outcomes, diagram)
    click.echo(
        orjson.dumps(
            {k: v for k, v in summary.items() if k != "per_field"}, option=orjson.OPT_INDENT_2
        ).decode()
    )
    click.echo(f"report: {out}  diagram: {diagram}", err=True)


@main.command()
@click.argument("report_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def calibrate(report_file: Path) -> None:
    """Fit the confidence calibration of an engine from a `docextract eval` report (isotonic)."""
    settings = _settings()
    report = orjson.loads(report_file.read_bytes())
    engine = report.get("engine") or "unknown"
    pairs = [(f["score"], f["correct"]) for f in report["fields"] if f.get("score") is not None]
    if len(pairs) < 20:
        raise click.ClickException(
            f"{len(pairs)} scored fields in the report; calibration needs at least 20."
        )
    calibration = fit_isotonic([s for s, _ in pairs], [c for _, c in pairs], engine)
    target = settings.app.data_dir / "calibration" / f"{engine}.json"
    calibration.save(target)
    before = expected_calibration_error([s for s, _ in pairs], [c for _, c in pairs])
    after = expected_calibration_error([calibration(s) for s, _ in pairs], [c for _, c in pairs])
    click.echo(
        f"calibration for {engine!r} from {len(pairs)} fields: ECE {before:.3f} -> {after:.3f} "
        f"(on the fitted data); saved {target}"
    )


def _schema_for_eval(settings: Settings, ref: str) -> SchemaVersion:
    path = Path(ref)
    if path.is_file():
        schema = orjson.loads(path.read_bytes())
        validate_schema(schema, schema_limits(settings))
        return SchemaVersion(
            name=path.stem.split(".")[0],
            version=0,
            description=None,
            schema=schema,
            sha256=canonical_sha256(schema),
            source="file",
            created_at=utcnow(),
            deprecated_at=None,
            latest_version=0,
        )
    return _run(settings, lambda s: SchemaRegistry(s, schema_limits(settings)).get(parse_ref(ref)))


def _problem_text(exc: Problem | DocextractError) -> str:
    lines = [str(exc.detail)]
    extra = exc.extra if isinstance(exc.extra, dict) else {}
    lines += [f"  {e['pointer'] or '/'}: {e['detail']}" for e in extra.get("errors", [])]
    return "\n".join(lines)


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"
