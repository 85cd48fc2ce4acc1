"""Calibration from reviews: every approved extraction is labelled data (a field the reviewer
left was right, one they changed was wrong), fitted per engine and schema."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import ExtractionRecord
from app.extraction.review import labelled_fields
from app.trust.confidence import Calibration, expected_calibration_error, fit_isotonic

MIN_CALIBRATION_FIELDS = 20
FOLDS = 5

Sample = tuple[float, float, bool]
"""(engine score, reported confidence, correct)."""


@dataclass(frozen=True)
class ReviewFit:
    calibration: Calibration | None
    """None when there were too few fields to fit."""
    fields: int
    ece_before: float
    """Of the confidences the service reported."""
    ece_after: float
    """Of calibrated confidences, each document scored by a fit that did not see it."""
    ece_fitted: float
    folds: int


async def reviewed_samples(
    session: AsyncSession, schema: str | None = None
) -> dict[tuple[str, str], list[list[Sample]]]:
    """Approved extractions' labelled fields, per (engine, schema), one list per document."""
    query = select(ExtractionRecord.result).where(ExtractionRecord.status == "approved")
    if schema is not None:
        query = query.where(ExtractionRecord.schema_name == schema)
    groups: dict[tuple[str, str], list[list[Sample]]] = defaultdict(list)
    for text in await session.scalars(query.order_by(ExtractionRecord.created_at)):
        result = orjson.loads(text)
        samples = labelled_fields(result)
        if samples:
            groups[result["model"]["engine"], result["schema"]["name"]].append(samples)
    return dict(groups)


def fit_from_reviews(documents: list[list[Sample]], engine: str) -> ReviewFit:
    """An isotonic fit on every field, with its ECE measured honestly: documents split into
    folds, each fold calibrated by a fit on the others (a document's fields stay together)."""
    every = [sample for document in documents for sample in document]
    correct = [ok for _, _, ok in every]
    before = expected_calibration_error([confidence for _, confidence, _ in every], correct)
    if len(every) < MIN_CALIBRATION_FIELDS:
        return ReviewFit(None, len(every), before, before, before, 0)
    calibration = fit_isotonic([score for score, _, _ in every], correct, engine)
    fitted = expected_calibration_error([calibration(score) for score, _, _ in every], correct)
    folds = min(FOLDS, len(documents))
    held_out: list[tuple[float, bool]] = []
    for fold in range(folds):
        train = [s for i, d in enumerate(documents) if i % folds != fold for s in d]
        test = [s for i, d in enumerate(documents) if i % folds == fold for s in d]
        if not train:
            held_out += [(score, ok) for score, _, ok in test]
            continue
        partial = fit_isotonic([score for score, _, _ in train], [ok for _, _, ok in train], engine)
        held_out += [(partial(score), ok) for score, _, ok in test]
    after = expected_calibration_error([c for c, _ in held_out], [ok for _, ok in held_out])
    return ReviewFit(calibration, len(every), before, after, fitted, folds)
