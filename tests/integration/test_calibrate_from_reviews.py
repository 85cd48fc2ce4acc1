"""``docextract calibrate --from-reviews``: approved reviews are labelled data, fitted per engine
and schema, and the extractor then uses that schema's calibration."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import create_async_engine

from app.auth.keys import Principal
from app.cli import main
from app.db.models import ExtractionRecord, utcnow
from app.extraction.calibration import fit_from_reviews
from app.extraction.review import Correction, apply_review, labelled_fields
from app.schema.compiled import compile_schema
from app.trust.confidence import Calibrations

SCHEMA = {
    "type": "object",
    "properties": {name: {"type": ["string", "null"]} for name in ("a", "b", "c", "d")},
}
REVIEWER = Principal(key_id="k1", name="alice", scopes=frozenset({"review"}))


def engine_result(number: int, scores: list[float]) -> dict[str, Any]:
    """A result whose every field claims 0.9, however it scored: confidence that needs fixing."""
    fields = {
        f"/{name}": {
            "confidence": 0.9,
            "page": 1,
            "raw_text": f"{name}{number}",
            "normalized": {"kind": "text", "status": "ok"},
            "evidence": [],
            "components": {
                "token_prob": None,
                "grounded": 1.0,
                "normalized": 1.0,
                "checks": 1.0,
                "ocr": 1.0,
                "score": score,
            },
            "checks": [],
        }
        for name, score in zip("abcd", scores, strict=True)
    }
    return {
        "id": f"ext_{number}",
        "status": "needs_review",
        "schema": {"name": "bill", "version": 1, "sha256": "0" * 64},
        "model": {"engine": "replay", "name": "replay"},
        "data": {name: f"{name}{number}" for name in "abcd"},
        "confidence": 0.9,
        "confidence_calibrated": False,
        "fields": fields,
        "checks": [],
        "validation": [],
        "review": {"required": True, "reasons": [], "min_confidence": 0.5, "status": "pending"},
        "pages": [],
        "timings_ms": {},
    }


def reviewed(number: int) -> dict[str, Any]:
    """Fields scoring under 0.5 were wrong: the reviewer corrects them, then approves."""
    scores = [round(0.2 + 0.15 * ((number + i) % 5), 2) for i in range(4)]
    corrections = [
        Correction(f"/{name}", f"right {name}")
        for name, score in zip("abcd", scores, strict=True)
        if score < 0.5
    ]
    compiled = compile_schema(SCHEMA)
    outcome = apply_review(
        engine_result(number, scores),
        compiled,
        corrections,
        "approve",
        None,
        REVIEWER,
        "needs_review",
        utcnow(),
    )
    return outcome.result


def test_labelled_fields_are_right_when_left_and_wrong_when_changed() -> None:
    result = reviewed(0)  # scores 0.2, 0.35, 0.5, 0.65: a and b corrected
    assert sorted(labelled_fields(result)) == [
        (0.2, 0.9, False),
        (0.35, 0.9, False),
        (0.5, 0.9, True),
        (0.65, 0.9, True),
    ]
    assert result["fields"]["/a"]["source"] == "reviewer"
    assert result["fields"]["/a"]["components"]["score"] == 0.2  # the engine's score stays


def test_a_fit_from_reviews_fixes_overconfidence_on_documents_it_did_not_see() -> None:
    documents = [labelled_fields(reviewed(n)) for n in range(20)]
    fit = fit_from_reviews(documents, "replay")
    assert fit.calibration is not None and fit.fields == 80 and fit.folds == 5
    assert fit.ece_before > 0.25  # 0.9 claimed, 60 % right
    assert fit.ece_after < 0.1 and fit.ece_fitted < 0.05
    assert fit_from_reviews(documents[:3], "replay").calibration is None  # 12 fields: too few


def run(tmp_path: Path, *args: str) -> Result:
    env = {"DOCEXTRACT_DATA_DIR": str(tmp_path / "data"), "DOCEXTRACT_LOG_LEVEL": "WARNING"}
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_calibrate_from_reviews_writes_a_calibration_per_engine_and_schema(tmp_path: Path) -> None:
    empty = run(tmp_path, "calibrate", "--from-reviews")  # also creates and migrates the database
    assert empty.exit_code != 0 and "No approved reviews" in empty.output
    assert run(tmp_path, "calibrate").exit_code != 0  # neither a report nor --from-reviews

    async def store() -> None:
        engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'data' / 'docextract.db'}")
        async with engine.begin() as connection:
            for number in range(20):
                result = reviewed(number)
                await connection.execute(
                    insert(ExtractionRecord).values(
                        id=result["id"],
                        schema_name="bill",
                        schema_version=1,
                        status="approved" if number < 15 else "needs_review",  # pending ones are not data
                        document_sha256="0" * 64,
                        review_reasons="",
                        revision=1,
                        result=__import__("orjson").dumps(result).decode(),
                        created_at=utcnow(),
                        expires_at=utcnow() + timedelta(days=1),
                    )
                )
        await engine.dispose()

    asyncio.run(store())
    fitted = run(tmp_path, "calibrate", "--from-reviews")
    assert fitted.exit_code == 0, fitted.output
    assert "'replay' / schema 'bill': 60 fields of 15 approved documents" in fitted.output
    before, after = map(float, re.search(r"ECE ([0-9.]+) .* -> ([0-9.]+)", fitted.output).groups())  # type: ignore[union-attr]
    assert before > 0.25 and after < before
    directory = tmp_path / "data" / "calibration"
    assert (directory / "replay.bill.json").is_file()
    calibrations = Calibrations(directory, "replay")
    bill = calibrations.for_schema("bill")
    assert bill is not None and bill(0.2) < 0.2 and bill(0.8) > 0.9
    assert calibrations.for_schema("receipt") is None  # no engine-wide file: other schemas untouched
    assert run(tmp_path, "calibrate", "--from-reviews", "--schema", "receipt").exit_code != 0
