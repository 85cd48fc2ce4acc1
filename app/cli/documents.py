"""``docextract analyze`` and ``docextract extract``: read one document from the command line."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
import orjson

from app.cli.common import cli_settings, problem_text, run_with_database
from app.documents.analyze import AnalyzeOptions
from app.documents.overlay import draw_overlay, page_text
from app.documents.service import DocumentAnalyzer
from app.einvoice.export import ExportError, NotAnInvoice, export_xml
from app.jobs.services import build_extractor, close_extractor
from app.lib.errors import DocextractError
from app.lib.problems import Problem
from app.lib.settings import ConfigurationError
from app.pages import Page, Region
from app.registry.refs import parse_ref
from app.registry.service import SchemaRegistry, SchemaVersion
from app.registry.validation import schema_limits


@click.command()
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
    settings = cli_settings()
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
        raise click.ClickException(problem_text(exc)) from exc
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


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--schema", "schema_ref", required=True, help="Schema name, or name@version.")
@click.option("--pages", help="Pages to read, e.g. 1-3,7 [default: all].")
@click.option("--password", help="Password of an encrypted PDF.")
@click.option(
    "--engine",
    type=click.Choice(["auto", "sglang", "transformers", "layout"]),
    help="Override DOCEXTRACT_ENGINE for this run.",
)
@click.option(
    "--export",
    "export_format",
    type=click.Choice(["json", "ubl", "cii"]),
    help="Print (or write) the data as JSON, a UBL 2.1 invoice or a Factur-X CII invoice instead of "
    "the whole result; the result's status goes to stderr.",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the result here.")
def extract(
    file: Path,
    schema_ref: str,
    pages: str | None,
    password: str | None,
    engine: str | None,
    export_format: str | None,
    out: Path | None,
) -> None:
    """Extract FILE (PDF, image, or UBL / CII XML) against a registered schema and print the result
    JSON; with --export, the data as JSON, UBL or CII (what an ERP imports)."""
    settings = cli_settings()
    if engine is not None:
        settings = replace(settings, engine=settings.engine.model_copy(update={"engine": engine}))
    try:
        extractor = build_extractor(settings, DocumentAnalyzer(settings))
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc
    version = run_with_database(
        settings, lambda s: SchemaRegistry(s, schema_limits(settings)).get(parse_ref(schema_ref))
    )
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
            raise click.ClickException(problem_text(exc)) from exc
    text = (
        exported(result, version, export_format)
        if export_format is not None
        else orjson.dumps(result, option=orjson.OPT_INDENT_2).decode()
    )
    if export_format is not None:
        reasons = ", ".join(result["review"]["reasons"])
        click.echo(f"{result['status']}" + (f" ({reasons})" if reasons else ""), err=True)
    if out is not None:
        out.write_text(text + "\n")
        click.echo(f"{result['status']}: wrote {out}", err=True)
    else:
        click.echo(text)


def exported(result: dict[str, Any], version: SchemaVersion, export_format: str) -> str:
    """The result's data as ``json``, ``ubl`` or ``cii`` (as ``GET /extractions/{id}/export``)."""
    if export_format == "json":
        return orjson.dumps(result["data"], option=orjson.OPT_INDENT_2).decode()
    try:
        document = export_xml(result["data"], version.compiled, "UBL" if export_format == "ubl" else "CII")
    except NotAnInvoice as exc:
        raise click.ClickException(f"{version.ref} cannot be exported as {export_format}: {exc}") from exc
    except ExportError as exc:
        found = exc.missing or exc.violations
        raise click.ClickException(f"{exc} {'; '.join(found)}") from exc
    return document.decode()
