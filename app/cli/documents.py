"""``docextract analyze`` and ``docextract extract``: read documents from the command line.

stdout carries the result only; progress, statuses and logs go to stderr. On a terminal a status
line names the stage a document is in (opening, OCR, reading, checking); elsewhere nothing moves,
and several documents get one line each when done."""

# ruff: noqa: PLC0415 - commands import what they need when run: `--help` stays fast (app.cli)

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import orjson

from app.cli.common import cli_settings, problem_text, resolve_schema

if TYPE_CHECKING:
    from app.extraction.service import Extractor
    from app.pages import Page, Region
    from app.registry.service import SchemaVersion


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
    from app.documents.analyze import AnalyzeOptions
    from app.documents.overlay import draw_overlay, page_text
    from app.documents.service import DocumentAnalyzer
    from app.lib.errors import DocextractError
    from app.lib.problems import Problem
    from app.lib.settings import ConfigurationError

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

    data = read_document(file)
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
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--schema",
    "schema_ref",
    required=True,
    help="A registered schema (name or name@version), or a JSON Schema file (./my.schema.json).",
)
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
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the result here (one document)."
)
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write each document's result to DIR/<name>.json (with --export ubl or cii: <name>.xml).",
)
def extract(
    files: tuple[Path, ...],
    schema_ref: str,
    pages: str | None,
    password: str | None,
    engine: str | None,
    export_format: str | None,
    out: Path | None,
    out_dir: Path | None,
) -> None:
    """Extract each FILE (PDF, image, or UBL / CII XML; a folder: the documents in it) against a
    schema and print the result JSON; with --export, the data as JSON, UBL or CII (what an ERP
    imports). Several documents: one result per line (JSON Lines), or one file each in --out-dir;
    the exit status is 1 when any failed."""
    from app.documents.service import DocumentAnalyzer
    from app.jobs.services import build_extractor, close_extractor
    from app.lib.settings import ConfigurationError

    documents = documents_of(files)
    single = len(files) == 1 and files[0].is_file()  # one file: the result as before, indented
    lines = not single and out_dir is None
    if out is not None and (not single or out_dir is not None):
        raise click.UsageError("--out writes one document's result; for several, use --out-dir.")
    if not single and out_dir is None and export_format in ("ubl", "cii"):
        raise click.UsageError(f"--export {export_format} of several documents needs --out-dir.")
    if out_dir is not None:
        _refuse_name_clashes(documents)
    settings = cli_settings()
    if engine is not None:
        settings = replace(settings, engine=settings.engine.model_copy(update={"engine": engine}))
    version = resolve_schema(settings, schema_ref)
    try:
        extractor = build_extractor(settings, DocumentAnalyzer(settings))
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc
    status = StatusLine(enabled=_stderr_is_terminal())
    run = Run(extractor, version, pages, password, export_format, status)
    failed = 0
    with asyncio.Runner() as runner:
        try:
            for index, path in enumerate(documents, 1):
                status.prefix = f"{path.name}: " if single else f"[{index}/{len(documents)}] {path.name}: "
                try:
                    result = runner.run(run.extract(path))
                    text = _output(path, result, version, export_format, lines=lines)
                except click.ClickException as exc:
                    status.clear()
                    if single:
                        raise
                    failed += 1
                    click.echo(f"{path}: error: {' '.join(exc.message.split())}", err=True)
                    continue
                status.clear()
                _deliver(path, result, text, export_format, out, out_dir, single)
        finally:
            status.clear()
            runner.run(close_extractor(extractor))
    if failed:
        raise click.exceptions.Exit(1)


@dataclass
class Run:
    """One extractor, one schema and the options of this command, over each document in turn."""

    extractor: Extractor
    version: SchemaVersion
    pages: str | None
    password: str | None
    export_format: str | None
    status: StatusLine

    async def extract(self, path: Path) -> dict[str, Any]:
        """The document's result; anything that stops it becomes a ``ClickException`` with the why."""
        from app.lib.errors import DocextractError
        from app.lib.problems import Problem

        data = read_document(path)
        total = {"pages": 0}

        def opened(_: int, pages: int) -> None:
            total["pages"] = pages

        def stage(name: str, page: int | None) -> None:
            of = f"/{total['pages']}" if total["pages"] else ""
            named = {"ocr": f"OCR page {page}{of}", "reading": f"reading page {page}{of}"}
            self.status.show(named.get(name, name))

        try:
            extraction = await self.extractor.extract(
                data,
                self.version,
                pages=self.pages,
                password=self.password,
                on_progress=opened,
                on_stage=stage,
                document_id=path.stem,
            )
        except (Problem, DocextractError) as exc:
            raise click.ClickException(problem_text(exc)) from exc
        return extraction.result


class StatusLine:
    """One line on stderr, rewritten in place as a document moves through its stages (a terminal
    only: elsewhere it stays silent, so logs and redirected output carry no progress noise)."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self.prefix = ""
        self.shown = False

    def show(self, text: str) -> None:
        if self.enabled:
            click.echo(f"\r\x1b[K{self.prefix}{text}", nl=False, err=True)
            self.shown = True

    def clear(self) -> None:
        if self.shown:
            click.echo("\r\x1b[K", nl=False, err=True)
            self.shown = False


def _stderr_is_terminal() -> bool:
    isatty = getattr(sys.stderr, "isatty", None)
    return isatty is not None and bool(isatty())


def documents_of(paths: tuple[Path, ...]) -> list[Path]:
    """The files given, and the documents (by their type's suffix) directly inside each folder."""
    from app.trust.evaluate import DOCUMENT_SUFFIXES

    documents: list[Path] = []
    for path in paths:
        if not path.is_dir():
            documents.append(path)
            continue
        inside = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in DOCUMENT_SUFFIXES)
        if not inside:
            raise click.UsageError(f"{path} holds no documents ({', '.join(DOCUMENT_SUFFIXES)}).")
        documents += inside
    return documents


def _refuse_name_clashes(documents: list[Path]) -> None:
    """--out-dir names each output after its document: two documents must not share a name."""
    seen: dict[str, Path] = {}
    for path in documents:
        if (other := seen.setdefault(path.stem, path)) != path:
            raise click.UsageError(f"{other} and {path} would both be written as {path.stem} in --out-dir.")


def read_document(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise click.ClickException(f"Cannot read {path}: {exc.strerror or exc}") from exc


def _output(
    path: Path, result: dict[str, Any], version: SchemaVersion, export_format: str | None, *, lines: bool
) -> str:
    """What is printed or written for one result: the whole result, or its data exported. A JSON
    Lines row names its file (``file``): a failed document has no row."""
    if lines:  # --export is json or none here (the command refuses XML rows)
        body = {"data": result["data"]} if export_format == "json" else result
        return orjson.dumps({"file": str(path), **body}).decode()
    if export_format is not None:
        return exported(result, version, export_format)
    return orjson.dumps(result, option=orjson.OPT_INDENT_2).decode()


def _deliver(
    path: Path,
    result: dict[str, Any],
    text: str,
    export_format: str | None,
    out: Path | None,
    out_dir: Path | None,
    single: bool,
) -> None:
    """Print or write one document's output, and say on stderr how it went (one line)."""
    reasons = ", ".join(result["review"]["reasons"])
    summary = result["status"] + (f" ({reasons})" if reasons else "")
    if single and export_format is not None:
        click.echo(summary, err=True)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        out = out_dir / f"{path.stem}{'.xml' if export_format in ('ubl', 'cii') else '.json'}"
    if out is not None:
        out.write_text(text + "\n")
        click.echo(f"{'' if single else f'{path}: '}{result['status']}: wrote {out}", err=True)
        return
    click.echo(text)
    if not single:
        click.echo(f"{path}: {summary}", err=True)


def exported(result: dict[str, Any], version: SchemaVersion, export_format: str) -> str:
    """The result's data as ``json``, ``ubl`` or ``cii`` (as ``GET /extractions/{id}/export``)."""
    from app.einvoice.export import ExportError, NotAnInvoice, export_xml

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
