"""Grounding, confidence and calibration, review routing, and the replay engine."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from app.documents.textmap import DocumentMap, PageMap
from app.engines.base import EngineRequest
from app.engines.replay import ReplayEngine
from app.pages import Word
from app.schema.compiled import compile_schema
from app.trust.assess import ReviewPolicy, assess
from app.trust.confidence import Components, expected_calibration_error, fit_isotonic
from app.trust.grounding import ground
from app.trust.sources import FieldSource, TokenEvidence


def page(*lines: str, source: str = "pdf", confidence: float = 1.0) -> PageMap:
    words = []
    for number, line in enumerate(lines):
        x = 0.05
        for text in line.split():
            width = 0.012 * len(text)
            words.append(
                Word(
                    text,
                    (x, 0.04 * number, x + width, 0.04 * number + 0.02),
                    confidence,
                    source,  # type: ignore[arg-type]
                    number,
                )
            )
            x += width + 0.01
    return PageMap(1, 595, 842, "born_digital" if source == "pdf" else "image", words)


def document(*pages: PageMap) -> DocumentMap:
    for number, p in enumerate(pages, start=1):
        p.number = number
    return DocumentMap(page_count=len(pages), pages=list(pages))


def test_grounding_across_line_breaks() -> None:
    doc = document(page("Bill to:", "742 Evergreen Terrace", "Springfield OR 97403"))
    evidence = ground(doc, ["742 Evergreen Terrace, Springfield OR 97403"], "/buyer/address")
    assert evidence is not None and evidence.text == "742 Evergreen Terrace\nSpringfield OR 97403"


def test_grounding_tolerates_one_wrong_ocr_character() -> None:
    doc = document(page("Company: GL0BEX CORPORATION SDN BHD", source="ocr", confidence=0.8))
    evidence = ground(doc, ["GLOBEX CORPORATION SDN BHD"], "/company")
    assert evidence is not None and evidence.method == "fuzzy" and evidence.ocr_confidence == 0.8


def test_a_value_is_as_sure_as_its_least_sure_ocr_word() -> None:
    """One blurred word (here the amount, as the recogniser scored it) lowers the value built from
    it, however sure its neighbours are: the mean would hide it behind them."""
    doc = document(page("Total due EUR 1.234,56", source="ocr", confidence=0.99))
    words = doc.pages[0].words
    words[-1] = words[-1]._replace(confidence=0.41)
    evidence = ground(doc, ["EUR 1.234,56"], "/total")
    assert evidence is not None and evidence.text == "EUR 1.234,56"
    assert evidence.ocr_confidence == 0.41


def test_a_repeated_value_is_taken_next_to_its_label() -> None:
    doc = document(page("Item A 1 50.00", "Item B 1 50.00", "Subtotal 100.00", "Total 50.00"))
    evidence = ground(doc, ["50.00"], "/total")
    assert evidence is not None and evidence.bbox[1] > 0.11  # the fourth line, not the line items


def test_nothing_invented_is_grounded() -> None:
    assert ground(document(page("Invoice INV-1")), ["INV-999"], "/invoice_number") is None


SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "invoice_number": {"type": "string"},
        "issue_date": {"type": "string", "format": "date"},
        "subtotal": {"type": "number"},
        "tax_total": {"type": "number"},
        "total": {"type": "number"},
    },
    "required": ["invoice_number", "total"],
    "x-checks": [{"name": "sum_ok", "expr": "subtotal + tax_total == total", "tolerance": 0.01}],
}
COMPILED = compile_schema(SCHEMA)


def sources(data: dict[str, Any], prob: float = 0.99) -> dict[str, FieldSource | None]:
    return {f"/{k}": FieldSource(1, f"/{k}", TokenEvidence(prob, prob, 2)) for k in data}


def test_assessment_of_a_right_extraction() -> None:
    doc = document(page("Invoice INV-7", "Date 15.03.2024", "Net 100.00", "VAT 19.00", "Total 119.00"))
    data = {
        "invoice_number": "INV-7",
        "issue_date": "15.03.2024",
        "subtotal": 100.0,
        "tax_total": 19.0,
        "total": 119.0,
    }
    result = assess(COMPILED, data, sources(data), doc, policy=ReviewPolicy.of(SCHEMA))
    assert result.reasons == [] and result.data["issue_date"] == "2024-03-15"
    date = result.fields["/issue_date"]
    assert date["raw_text"] == "15.03.2024" and date["normalized"] == {"kind": "date", "status": "ok"}
    assert date["evidence"][0]["text"] == "15.03.2024" and date["confidence"] > 0.9
    assert result.checks[0]["status"] == "passed" and result.fields["/total"]["checks"] == ["sum_ok"]
    assert result.confidence is not None and result.confidence > 0.9 and not result.calibrated


def test_invented_wrong_and_missing_values_are_routed_to_review() -> None:
    doc = document(page("Invoice INV-7", "Net 100.00", "VAT 19.00", "Total 119.00"))
    data = {"invoice_number": "INV-8", "subtotal": 100.0, "tax_total": 19.0, "total": 129.0}
    result = assess(COMPILED, data, sources(data), doc, policy=ReviewPolicy.of(SCHEMA))
    assert "ungrounded:/invoice_number" in result.reasons and "ungrounded:/total" in result.reasons
    assert "check_failed:sum_ok" in result.reasons
    assert result.fields["/invoice_number"]["confidence"] < 0.5
    missing = assess(
        COMPILED, {"subtotal": 100.0}, sources({"subtotal": 1}), doc, policy=ReviewPolicy.of(SCHEMA)
    )
    assert {"missing:/invoice_number", "missing:/total"} <= set(missing.reasons)


def test_unsure_tokens_lower_confidence_below_the_threshold() -> None:
    doc = document(page("INV-7", "Total 119.00"))
    data = {"invoice_number": "INV-7", "total": 119.0}
    result = assess(
        COMPILED, data, sources(data, prob=0.2), doc, policy=ReviewPolicy.of(SCHEMA, min_confidence=0.6)
    )
    assert "low_confidence:/invoice_number" in result.reasons


def test_corroboration_removes_most_of_the_remaining_doubt() -> None:
    """The same unsure reading beside its label: independent evidence agrees, so 70 % of the doubt
    goes; the reading stays less sure than a sure one."""
    data = {"invoice_number": "INV-7"}
    doc = document(page("Invoice INV-7"))
    unsure = assess(COMPILED, data, sources(data, prob=0.2), doc, policy=ReviewPolicy.of(SCHEMA))
    sure = assess(COMPILED, data, sources(data, prob=0.99), doc, policy=ReviewPolicy.of(SCHEMA))
    field = unsure.fields["/invoice_number"]
    before = Components(token_prob=0.2, grounded=1.0, normalized=1.0, checks=1.0, ocr=1.0).score()
    assert field["components"]["corroborated"] is True
    assert field["confidence"] == round(1 - 0.3 * (1 - before), 4)
    assert field["confidence"] < sure.fields["/invoice_number"]["confidence"]


def test_default_score_orders_the_evidence() -> None:
    sure = Components(token_prob=0.99, grounded=1.0, normalized=1.0, checks=1.0, ocr=1.0).score()
    ungrounded = Components(token_prob=0.99, grounded=0.0, normalized=1.0, checks=1.0, ocr=1.0).score()
    failed = Components(token_prob=0.99, grounded=1.0, normalized=1.0, checks=0.3, ocr=1.0).score()
    unsure = Components(token_prob=0.3, grounded=1.0, normalized=1.0, checks=1.0, ocr=1.0).score()
    assert sure > 0.95 and ungrounded < 0.25 and failed < 0.35 and unsure < sure


def test_calibration_lowers_ece_on_data_with_a_known_relation() -> None:
    rng = random.Random(3)
    scores = [rng.random() for _ in range(4000)]
    correct = [rng.random() < s**2 for s in scores]  # true accuracy is score squared: overconfident
    before = expected_calibration_error(scores, correct)
    calibration = fit_isotonic(scores[:2000], correct[:2000], "test")
    after = expected_calibration_error([calibration(s) for s in scores[2000:]], correct[2000:])
    assert before > 0.1 and after < 0.05 and after < before
    assert all(a <= b + 1e-9 for a, b in zip(calibration.y, calibration.y[1:], strict=False))  # monotone


async def test_replay_engine_serves_recordings(tmp_path: Path) -> None:
    from PIL import Image

    (tmp_path / "doc1.json").write_text(json.dumps({"total": 5.5, "name": "Müller"}))
    (tmp_path / "doc2.json").write_text(json.dumps({"pages": {"1": '{"total": 1}', "2": '{"total": 2}'}}))
    engine = ReplayEngine(tmp_path)
    image = Image.new("RGB", (10, 10))
    first = await engine.generate(EngineRequest(image, "p", {}, document_id="doc1"))
    assert json.loads(first.text) == {"total": 5.5, "name": "Müller"}
    assert first.tokens[-1].end == len(first.text.encode()) and all(t.logprob == 0 for t in first.tokens)
    second = await engine.generate(EngineRequest(image, "p", {}, document_id="doc1", page=2))
    assert second.text == "{}"
    paged = await engine.generate(EngineRequest(image, "p", {}, document_id="doc2", page=2))
    assert json.loads(paged.text) == {"total": 2}


def test_calibration_pools_equal_scores() -> None:
    """Half of the fields scoring 0.9 were right: 0.9 maps to 0.5, not to the first tie's outcome."""
    calibration = fit_isotonic([0.9] * 10, [i % 2 == 0 for i in range(10)], "test")
    assert calibration(0.9) == 0.5
