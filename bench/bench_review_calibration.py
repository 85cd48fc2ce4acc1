"""Calibration learnt from reviews, measured on labelled sets.

Each document is extracted (the engine of DOCEXTRACT_ENGINE, e.g. ``layout``), then reviewed the
way a person would through ``POST /extractions/{id}/review``: every field that differs from the
truth is corrected, then approved (``app.extraction.review.apply_review``, the route's own code).
The labelled fields (``labelled_fields``, what ``docextract calibrate --from-reviews`` reads) are
then fitted (``fit_from_reviews``), and the ECE of the reported confidences is compared with:
 - within a set: calibrated by 5-fold cross-validation over its documents;
 - across sets: calibrated on the reviews of the other sets only (a family nobody reviewed yet).

    DOCEXTRACT_ENGINE=layout python bench/bench_review_calibration.py \\
        ../shared/corpus/sroie:../shared/corpus/schemas/sroie.schema.json \\
        ../shared/corpus/wildreceipt:../shared/corpus/schemas/wildreceipt.schema.json ...
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import orjson

from app.auth.keys import Principal
from app.cli.common import cli_settings, schema_from_file
from app.db.models import utcnow
from app.documents.service import DocumentAnalyzer
from app.extraction.calibration import Sample, fit_from_reviews
from app.extraction.review import Correction, apply_review, labelled_fields
from app.jobs.services import build_extractor, close_extractor
from app.lib.errors import RequestError
from app.trust.confidence import expected_calibration_error, fit_isotonic
from app.trust.evaluate import documents_in, truth_corrections, truth_leaves

REVIEWER = Principal(key_id="bench", name="bench", scopes=frozenset({"review"}))


async def reviewed_set(
    docs_dir: Path, schema_file: Path, limit: int | None
) -> tuple[str, list[list[Sample]]]:
    settings = cli_settings()
    version = schema_from_file(settings, schema_file)
    extractor = build_extractor(settings, DocumentAnalyzer(settings))
    documents: list[list[Sample]] = []
    try:
        for path in documents_in(docs_dir)[:limit]:
            result = (await extractor.extract(path.read_bytes(), version, document_id=path.stem)).result
            truth = orjson.loads(path.with_suffix(".json").read_bytes())
            corrections = [
                Correction(pointer, value)
                for pointer, value in truth_corrections(result.get("data") or {}, truth, version.schema)
            ]
            try:
                outcome = apply_review(
                    result,
                    version.compiled,
                    corrections,
                    "approve",
                    None,
                    REVIEWER,
                    result["status"],
                    utcnow(),
                )
            except RequestError:  # the truth names something the schema cannot hold: not a review
                continue
            # Fields without a truth value say nothing either way (as in `docextract eval`).
            known = {pointer for pointer, value in truth_leaves(truth) if value is not None}
            reviewed = {
                **outcome.result,
                "fields": {p: f for p, f in outcome.result["fields"].items() if p in known},
            }
            documents.append(labelled_fields(reviewed))
        return extractor.engine.name, documents
    finally:
        await close_extractor(extractor)


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--limit=")]
    limit = next((int(a.split("=")[1]) for a in sys.argv[1:] if a.startswith("--limit=")), None)
    sets: dict[str, list[list[Sample]]] = {}
    engine = "unknown"
    for arg in args:
        docs, schema = arg.split(":")
        engine, sets[Path(docs).name] = asyncio.run(reviewed_set(Path(docs), Path(schema), limit))
    print(f"engine {engine}; ECE of field confidences (reported -> calibrated from reviews)")
    print(f"{'set':<16}{'docs':>6}{'fields':>8}{'reported':>10}{'5-fold':>9}{'other sets':>12}")
    for name, documents in sets.items():
        fit = fit_from_reviews(documents, engine)
        others = [s for other, docs in sets.items() if other != name for d in docs for s in d]
        own = [s for d in documents for s in d]
        across = float("nan")
        if others and own:
            calibration = fit_isotonic([s for s, _, _ in others], [ok for _, _, ok in others], engine)
            across = expected_calibration_error([calibration(s) for s, _, _ in own], [ok for _, _, ok in own])
        after = f"{fit.ece_after:.3f}" if fit.calibration is not None else "-"
        print(f"{name:<16}{len(documents):>6}{fit.fields:>8}{fit.ece_before:>10.3f}{after:>9}{across:>12.3f}")


if __name__ == "__main__":
    main()
