"""``docextract eval`` and ``docextract calibrate``: measure an engine on labelled documents, then
fit its confidence calibration from that report."""

# ruff: noqa: PLC0415 - commands import what they need when run: `--help` stays fast (app.cli)

from __future__ import annotations

import asyncio
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import orjson

from app.cli.common import cli_settings, problem_text, resolve_schema, run_with_database

if TYPE_CHECKING:
    from app.extraction.service import Extractor
    from app.lib.settings import Settings
    from app.registry.service import SchemaVersion
    from app.trust.evaluate import Report


@click.command("eval")
@click.argument(
    "docs_dirs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@click.option(
    "--schema",
    "schema_refs",
    required=True,
    multiple=True,
    help="A registered schema (name or name@version), or a JSON Schema file: once for every set, or "
    "once per DOCS_DIR in the same order.",
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
    help="The JSON report (one set).",
)
@click.option(
    "--diagram",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("reliability.png"),
    show_default=True,
    help="The reliability diagram (one set).",
)
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("eval-reports"),
    show_default=True,
    help="With several sets: where each set's report and diagram go (<set>.json, <set>.png).",
)
@click.option("--limit", type=int, help="Only the first N documents of each set.")
@click.option("--threshold", type=float, default=0.7, show_default=True, help="Auto-accept threshold (loso).")
def evaluate_command(
    docs_dirs: tuple[Path, ...],
    schema_refs: tuple[str, ...],
    engine: str | None,
    replay_dir: Path | None,
    out: Path,
    diagram: Path,
    out_dir: Path,
    limit: int | None,
    threshold: float,
) -> None:
    """Extract every document in each DOCS_DIR that has <id>.json ground truth beside it, and report
    accuracy, evidence recall, calibration (ECE) and the error rate of auto-accepted fields. With
    several sets (document families), also leave one set out: each calibrated on all the others."""
    from app.trust.evaluate import leave_one_set_out

    if len(schema_refs) not in (1, len(docs_dirs)):
        raise click.UsageError(f"give --schema once, or once per DOCS_DIR ({len(docs_dirs)}).")
    names = [d.resolve().name for d in docs_dirs]
    if len(set(names)) != len(names):
        raise click.UsageError("each DOCS_DIR needs its own folder name: it names the set's report.")
    settings = cli_settings()
    if engine is not None:
        settings = replace(settings, engine=settings.engine.model_copy(update={"engine": engine}))
    versions = [resolve_schema(settings, ref) for ref in schema_refs] * (len(docs_dirs) // len(schema_refs))
    sets = list(zip(docs_dirs, versions, strict=True))
    reports, engine_name = _evaluate_sets(settings, sets, replay_dir, limit)
    if len(sets) == 1:
        summary = _write_report(reports[0], sets[0][1], engine_name, out, diagram)
        short = {k: v for k, v in summary.items() if k != "per_field"}
        click.echo(orjson.dumps(short, option=orjson.OPT_INDENT_2).decode())
        click.echo(f"report: {out}  diagram: {diagram}", err=True)
    else:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, (_, version), report in zip(names, sets, reports, strict=True):
            _write_report(report, version, engine_name, out_dir / f"{name}.json", out_dir / f"{name}.png")
        outcomes = {n: r.outcomes for n, r in zip(names, reports, strict=True)}
        _echo_loso(leave_one_set_out(outcomes, threshold))
        click.echo(f"reports: {out_dir}/<set>.json", err=True)


def _evaluate_sets(
    settings: Settings, sets: list[tuple[Path, SchemaVersion]], replay_dir: Path | None, limit: int | None
) -> tuple[list[Report], str | None]:
    """Each set's documents extracted and compared with their truth; and the engine that read them."""
    from app.documents.service import DocumentAnalyzer
    from app.engines.unavailable import UnavailableEngine
    from app.jobs.services import build_extractor, close_extractor
    from app.lib.errors import DocextractError
    from app.lib.problems import Problem
    from app.lib.settings import ConfigurationError
    from app.trust.evaluate import Report, documents_in, record

    replaying = settings.engine.engine == "replay"
    reports = [Report() for _ in sets]
    engine_names: set[str | None] = set()

    def extractor_for(docs_dir: Path) -> Extractor:
        """Replaying without recordings named: each set replays its own ground truth."""
        chosen = settings
        if replaying:
            recordings = replay_dir or settings.engine.replay_dir or docs_dir
            chosen = replace(settings, engine=settings.engine.model_copy(update={"replay_dir": recordings}))
        try:
            return build_extractor(chosen, DocumentAnalyzer(chosen))
        except ConfigurationError as exc:
            raise click.ClickException(str(exc)) from exc

    async def run() -> None:
        extractor = extractor_for(sets[0][0])
        try:
            for index, ((docs_dir, version), report) in enumerate(zip(sets, reports, strict=True)):
                if replaying and index:
                    await close_extractor(extractor)
                    extractor = extractor_for(docs_dir)
                engine = extractor.engine
                engine_names.add(None if isinstance(engine, UnavailableEngine) else engine.name)
                documents = documents_in(docs_dir)[:limit]
                with click.progressbar(documents, label=docs_dir.name, file=sys.stderr) as bar:
                    for path in bar:
                        extraction = await extractor.extract(
                            path.read_bytes(), version, document_id=path.stem
                        )
                        truth = orjson.loads(path.with_suffix(".json").read_bytes())
                        record(report, path.stem, truth, extraction.result, version.schema)
        finally:
            await close_extractor(extractor)

    try:
        asyncio.run(run())
    except (Problem, DocextractError) as exc:
        raise click.ClickException(problem_text(exc)) from exc
    return reports, engine_names.pop() if len(engine_names) == 1 else None


def _write_report(
    report: Report, version: SchemaVersion, engine: str | None, out: Path, diagram: Path
) -> dict[str, Any]:
    from app.trust.assess import ReviewPolicy
    from app.trust.evaluate import reliability_diagram

    summary = report.summary(ReviewPolicy.of(version.schema).min_confidence)
    out.write_bytes(
        orjson.dumps(
            {
                "summary": summary,
                "engine": engine,
                "fields": [o.__dict__ for o in report.outcomes],
                "documents": report.documents,
            },
            option=orjson.OPT_INDENT_2,
            default=str,
        )
    )
    reliability_diagram(report.outcomes, diagram)
    return summary


@click.command()
@click.argument("report_file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--from-reviews",
    is_flag=True,
    help="Fit from approved reviews in the database instead: one calibration per engine and schema.",
)
@click.option("--schema", "schema_name", help="With --from-reviews: only this schema.")
def calibrate(report_file: Path | None, from_reviews: bool, schema_name: str | None) -> None:
    """Fit the confidence calibration of an engine (isotonic): from a `docextract eval` report, or
    from what reviewers approved (fields they left are right, fields they changed were wrong)."""
    settings = cli_settings()
    if (report_file is None) == (not from_reviews):
        raise click.UsageError("Give a REPORT_FILE or --from-reviews (one of them).")
    target_dir = settings.app.data_dir / "calibration"
    if report_file is not None:
        _calibrate_from_report(report_file, target_dir)
    else:
        _calibrate_from_reviews(settings, schema_name, target_dir)


def _calibrate_from_report(report_file: Path, target_dir: Path) -> None:
    from app.extraction.calibration import MIN_CALIBRATION_FIELDS
    from app.trust.confidence import Calibrations, expected_calibration_error, fit_isotonic

    report = orjson.loads(report_file.read_bytes())
    engine = report.get("engine") or "unknown"
    pairs = [(f["score"], f["correct"]) for f in report["fields"] if f.get("score") is not None]
    if len(pairs) < MIN_CALIBRATION_FIELDS:
        raise click.ClickException(
            f"{len(pairs)} scored fields in the report; calibration needs at least {MIN_CALIBRATION_FIELDS}."
        )
    calibration = fit_isotonic([s for s, _ in pairs], [c for _, c in pairs], engine)
    target = target_dir / Calibrations.file_name(engine)
    calibration.save(target)
    before = expected_calibration_error([s for s, _ in pairs], [c for _, c in pairs])
    after = expected_calibration_error([calibration(s) for s, _ in pairs], [c for _, c in pairs])
    click.echo(
        f"calibration for {engine!r} from {len(pairs)} fields: ECE {before:.3f} -> {after:.3f} "
        f"(on the fitted data); saved {target}"
    )


def _calibrate_from_reviews(settings: Settings, schema_name: str | None, target_dir: Path) -> None:
    from app.extraction.calibration import MIN_CALIBRATION_FIELDS, fit_from_reviews, reviewed_samples
    from app.trust.confidence import Calibrations

    groups = run_with_database(settings, lambda session: reviewed_samples(session, schema_name))
    if not groups:
        raise click.ClickException(
            "No approved reviews in the database" + (f" for {schema_name!r}." if schema_name else ".")
        )
    fitted = 0
    for (engine, schema), documents in sorted(groups.items()):
        fit = fit_from_reviews(documents, engine)
        where = f"{engine!r} / schema {schema!r}: {fit.fields} fields of {len(documents)} approved documents"
        if fit.calibration is None:
            click.echo(f"{where}: skipped (calibration needs at least {MIN_CALIBRATION_FIELDS} fields)")
            continue
        target = target_dir / Calibrations.file_name(engine, schema)
        fit.calibration.save(target)
        fitted += 1
        click.echo(
            f"{where}: ECE {fit.ece_before:.3f} (confidence as reported) -> {fit.ece_after:.3f} "
            f"(calibrated, {fit.folds}-fold cross-validated; {fit.ece_fitted:.3f} on the fitted data); "
            f"saved {target}"
        )
    if not fitted:
        raise click.ClickException("Nothing was fitted: too few reviewed fields.")


@click.command("loso")
@click.argument(
    "reports", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--threshold", type=float, default=0.7, show_default=True, help="Auto-accept threshold.")
def leave_one_set_out_command(reports: tuple[Path, ...], threshold: float) -> None:
    """Leave one set out: for each `docextract eval` report (one per document family), calibrate on
    all the others and report that family as an unseen one would fare: accuracy, auto-accepted share,
    wrong among auto-accepted, ECE. A report's name is its file name without .json."""
    from app.trust.evaluate import FieldOutcome, leave_one_set_out

    if len(reports) < 2:
        raise click.ClickException("leave-one-set-out needs reports of at least two sets.")
    sets = {
        path.stem: [FieldOutcome(**f) for f in orjson.loads(path.read_bytes())["fields"]] for path in reports
    }
    _echo_loso(leave_one_set_out(sets, threshold))


def _echo_loso(results: dict[str, dict[str, Any]]) -> None:
    click.echo(
        "| held out | fields | accuracy | auto-accepted | wrong among auto-accepted "
        "| ECE calibrated on the others (uncalibrated) |"
    )
    click.echo("|---|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        click.echo(
            f"| {name} | {r['fields']} | {r['accuracy']} | {r['auto_accepted_share']} "
            f"| {r['auto_accepted_error_rate']} | {r['ece']} ({r['ece_uncalibrated']}) |"
        )
