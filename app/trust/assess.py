"""The trust layer over a merged extraction: normalise, check, ground, score, route to review.

Input: the registered schema, the merged data, where each value came from (page and token
evidence), and the document's text map. Output: the data with normalised values, and per field
its raw text, normalisation status, evidence, confidence components and checks; the checks; the
review reasons; a document confidence (the weakest field's).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from app.documents.textmap import DocumentMap
from app.extraction.decoding import resolve_local_refs
from app.extraction.merge import FieldSource
from app.lib.jsonpointer import assign, escape
from app.lib.patterns import SchemaValidator
from app.trust.checks import CheckResult, evaluate, parse_checks
from app.trust.confidence import CHECK_FAILED, UNPARSED, Calibration, Components
from app.trust.grounding import Evidence, Grounder
from app.trust.normalize import Normalized, infer_day_first, json_value, kind_for, normalize, printed_forms

DEFAULT_MIN_CONFIDENCE = 0.7
_NUMERIC_DATE = re.compile(r"\b\d{1,2}[/.\-]\d{1,2}[/.\-]\d{2,4}\b")


@dataclass(frozen=True)
class ReviewPolicy:
    """``x-review`` in the schema, overridable per request: the confidence below which a field
    needs review, the fields that must be present and grounded, the checks that must pass."""

    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    require: tuple[str, ...] = ()
    checks: tuple[str, ...] | None = None
    """None: every declared check must pass."""

    @classmethod
    def of(
        cls,
        schema: dict[str, Any],
        min_confidence: float | None = None,
        require: list[str] | None = None,
        checks: list[str] | None = None,
    ) -> ReviewPolicy:
        """The schema's ``x-review``, with what a request overrides."""
        review = schema.get("x-review")
        declared: dict[str, Any] = review if isinstance(review, dict) else {}
        threshold = min_confidence if min_confidence is not None else declared.get("min_confidence")
        required = require if require is not None else declared.get("require", _required_not_nullable(schema))
        must_pass = checks if checks is not None else declared.get("checks")
        return cls(
            min_confidence=float(threshold) if threshold is not None else DEFAULT_MIN_CONFIDENCE,
            require=tuple(required),
            checks=tuple(must_pass) if must_pass is not None else None,
        )


def _required_not_nullable(schema: dict[str, Any]) -> list[str]:
    """By default a field must be present when the schema requires it and does not admit null."""
    validator = SchemaValidator(schema)
    properties = schema.get("properties", {})
    return [
        f"/{escape(name)}"
        for name in schema.get("required", [])
        if not validator.evolve(schema=resolve_local_refs(properties.get(name, {}), schema)).is_valid(None)
    ]


@dataclass
class Assessment:
    data: Any
    fields: dict[str, dict[str, Any]]
    checks: list[dict[str, Any]]
    reasons: list[str]
    confidence: float | None
    calibrated: bool
    day_first: bool | None = field(default=None)


def _leaves(
    data: Any, schema: Any, root: dict[str, Any], pointer: str = "", name: str = ""
) -> Iterator[tuple[str, str, dict[str, Any], Any]]:
    schema = resolve_local_refs(schema, root)
    schema = schema if isinstance(schema, dict) else {}
    if isinstance(data, dict):
        properties = schema.get("properties", {})
        for key, value in data.items():
            yield from _leaves(value, properties.get(key, {}), root, f"{pointer}/{escape(key)}", key)
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _leaves(value, schema.get("items", {}), root, f"{pointer}/{index}", name)
    else:
        yield pointer, name, schema, data


def assess(
    schema: dict[str, Any],
    data: Any,
    sources: dict[str, FieldSource | None],
    document: DocumentMap,
    *,
    policy: ReviewPolicy,
    calibration: Calibration | None = None,
) -> Assessment:
    leaves = list(_leaves(data, schema, schema))
    kinds = {pointer: kind_for(name, sub) for pointer, name, sub, _ in leaves}
    printed_dates = [w.text for page in document.pages for w in page.words if _NUMERIC_DATE.search(w.text)]
    raw_dates = [str(v) for p, _, _, v in leaves if kinds[p] == "date" and isinstance(v, str)]
    day_first = infer_day_first(raw_dates + printed_dates)

    normalized: dict[str, Normalized] = {}
    for pointer, _, sub, raw in leaves:
        result = normalize(raw, kinds[pointer], day_first=day_first)
        normalized[pointer] = result
        if result.status == "ok":
            assign(data, pointer, json_value(result, sub))

    check_results: list[CheckResult] = evaluate(parse_checks(schema), data) if isinstance(data, dict) else []
    by_pointer: dict[str, list[CheckResult]] = {}
    for check in check_results:
        for pointer in check.pointers:
            by_pointer.setdefault(pointer, []).append(check)

    grounder = Grounder(document)
    fields = {
        pointer: _field(
            grounder,
            pointer,
            raw,
            normalized[pointer],
            sources.get(pointer),
            by_pointer.get(pointer, []),
            calibration,
        )
        for pointer, _, _, raw in leaves
    }
    reasons = _reasons(fields, normalized, check_results, policy)
    present = [
        f["confidence"]
        for p, f in fields.items()
        if f["confidence"] is not None and normalized[p].status != "absent"
    ]
    return Assessment(
        data=data,
        fields=fields,
        checks=[_check_dict(c) for c in check_results],
        reasons=reasons,
        confidence=round(min(present), 4) if present else None,
        calibrated=calibration is not None,
        day_first=day_first,
    )


def _reasons(
    fields: dict[str, dict[str, Any]],
    normalized: dict[str, Normalized],
    checks: list[CheckResult],
    policy: ReviewPolicy,
) -> list[str]:
    """Why a person should look: ungrounded, unparsed or unsure values, missing required fields,
    failed checks (those the policy names; all by default)."""
    reasons: list[str] = []
    for pointer, entry in fields.items():
        if entry["raw_text"] is None:
            continue
        if not entry["evidence"]:
            reasons.append(f"ungrounded:{pointer}")
        if normalized[pointer].status == "unparsed":
            reasons.append(f"unparsed:{pointer}")
        if entry["confidence"] is not None and entry["confidence"] < policy.min_confidence:
            reasons.append(f"low_confidence:{pointer}")
    reasons += [
        f"missing:{pointer}"
        for pointer in policy.require
        if pointer not in fields or normalized[pointer].status == "absent"
    ]
    reasons += [
        f"check_failed:{check.rule}"
        for check in checks
        if check.status == "failed" and (policy.checks is None or check.rule.split("[")[0] in policy.checks)
    ]
    return list(dict.fromkeys(reasons))


def _field(
    grounder: Grounder,
    pointer: str,
    raw: Any,
    normalized: Normalized,
    source: FieldSource | None,
    checks: list[CheckResult],
    calibration: Calibration | None,
) -> dict[str, Any]:
    evidence: Evidence | None = None
    if raw is not None:
        # The text as read first (most values are printed exactly so); the printed forms of the
        # normalised value, and fuzzy search, only when that is not found exactly.
        evidence = grounder.ground([str(raw)], pointer, fuzzy=False)
        if evidence is None or evidence.score < 1.0:
            forms = [str(raw)]
            if normalized.status == "ok":
                forms += printed_forms(normalized.value, normalized.kind)
            evidence = grounder.ground(forms, pointer)
    token = source.evidence.min if source and source.evidence else 1.0
    components = Components(
        token_prob=token,
        grounded=evidence.score if evidence else 0.0,
        normalized=UNPARSED if normalized.status == "unparsed" else 1.0,
        checks=CHECK_FAILED if any(c.status == "failed" for c in checks) else 1.0,
        ocr=evidence.ocr_confidence if evidence and evidence.ocr_confidence is not None else 1.0,
    )
    score = components.score()
    confidence = None if raw is None else round(calibration(score) if calibration else score, 4)
    return {
        "confidence": confidence,
        "page": source.page if source else None,
        "raw_text": None if raw is None else str(raw),
        "normalized": {"kind": normalized.kind, "status": normalized.status},
        "evidence": [evidence.to_dict()] if evidence else [],
        "components": {
            "token_prob": {
                "min": round(source.evidence.min, 4),
                "mean": round(source.evidence.mean, 4),
                "tokens": source.evidence.tokens,
            }
            if source and source.evidence
            else None,
            "grounded": round(components.grounded, 4),
            "normalized": components.normalized,
            "checks": components.checks,
            "ocr": round(components.ocr, 4),
            "score": round(score, 4),
        },
        "checks": [c.rule for c in checks],
    }


def _check_dict(check: CheckResult) -> dict[str, Any]:
    return {
        "rule": check.rule,
        "status": check.status,
        "expected": None if check.expected is None else str(check.expected),
        "actual": None if check.actual is None else str(check.actual),
        "pointers": check.pointers,
        "detail": check.detail,
    }
