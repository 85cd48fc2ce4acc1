"""The trust layer over a merged extraction: normalise, check, ground, score, route to review.

Input: the registered schema, the merged data, where each value came from (page and token
evidence), and the document's text map. Output: the data with normalised values, and per field
its raw text, normalisation status, evidence, confidence components and checks; the checks; the
review reasons; a document confidence (the weakest field's).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from app.documents.textmap import DocumentMap
from app.lexicon import label_phrases, name_words
from app.lib.jsonpointer import assign, escape
from app.schema.compiled import CompiledSchema
from app.schema.kinds import ITEM
from app.schema.review import ReviewPolicy
from app.schema.tree import SchemaTree
from app.trust.checks import CheckResult, evaluate
from app.trust.confidence import CHECK_FAILED, UNPARSED, Calibration, Components
from app.trust.corroboration import corroborate
from app.trust.grounding import Evidence, Grounder
from app.trust.normalize import Normalized, infer_day_first, json_value, normalize, printed_forms
from app.trust.sources import FieldSource

__all__ = ["Assessment", "ReviewPolicy", "assess"]  # ReviewPolicy: from app.schema.review
_NUMERIC_DATE = re.compile(r"\b\d{1,2}[/.\-]\d{1,2}[/.\-]\d{2,4}\b")


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
    data: Any, schema: Any, tree: SchemaTree, pointer: str = "", name: str = "", path: tuple[str, ...] = ()
) -> Iterator[tuple[str, str, dict[str, Any], Any, tuple[str, ...]]]:
    """Each scalar of ``data`` with its pointer, property name, (resolved) schema and schema path."""
    if isinstance(data, dict):
        properties = tree.properties(schema)
        for key, value in data.items():
            yield from _leaves(
                value, properties.get(key, {}), tree, f"{pointer}/{escape(key)}", key, (*path, key)
            )
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _leaves(value, tree.items(schema), tree, f"{pointer}/{index}", name, (*path, ITEM))
    else:
        yield pointer, name, tree.object(schema), data, path


def assess(
    compiled: CompiledSchema,
    data: Any,
    sources: dict[str, FieldSource | None],
    document: DocumentMap,
    *,
    policy: ReviewPolicy,
    calibration: Calibration | None = None,
) -> Assessment:
    leaves = list(_leaves(data, compiled.schema, compiled.tree))
    kinds = {pointer: compiled.kind_of(path, name, sub) for pointer, name, sub, _, path in leaves}
    printed_dates = [w.text for page in document.pages for w in page.words if _NUMERIC_DATE.search(w.text)]
    raw_dates = [str(v) for p, _, _, v, _ in leaves if kinds[p] == "date" and isinstance(v, str)]
    day_first = infer_day_first(raw_dates + printed_dates)

    normalized: dict[str, Normalized] = {}
    for pointer, _, sub, raw, _ in leaves:
        result = normalize(raw, kinds[pointer], day_first=day_first)
        normalized[pointer] = result
        if result.status == "ok":
            assign(data, pointer, json_value(result, sub))

    check_results: list[CheckResult] = (
        evaluate(compiled.parsed_checks(), data) if isinstance(data, dict) else []
    )
    by_pointer: dict[str, list[CheckResult]] = {}
    for check in check_results:
        for pointer in check.pointers:
            by_pointer.setdefault(pointer, []).append(check)

    grounder = Grounder(document)
    fields: dict[str, dict[str, Any]] = {}
    evidence_of: dict[str, Evidence | None] = {}
    for pointer, _, _, raw, _ in leaves:
        fields[pointer], evidence_of[pointer] = _field(
            grounder,
            pointer,
            raw,
            normalized[pointer],
            sources.get(pointer),
            by_pointer.get(pointer, []),
            calibration,
        )
    doubts: dict[str, str] = {}
    amounts = Counter(
        normalized[p].value
        for p, _, _, _, path in leaves
        if kinds[p] == "amount" and normalized[p].status == "ok" and ITEM not in path
    )
    for pointer, name, _, raw, path in leaves:
        entry = fields[pointer]
        if raw is None or normalized[pointer].status == "absent":
            entry["corroborated_by"] = []
            continue
        verdict = corroborate(
            kinds[pointer],
            raw,
            normalized[pointer],
            evidence_of[pointer],
            by_pointer.get(pointer, []),
            evidence_of,
            grounder,
            labels=_labels(compiled, path, name),
            in_item=ITEM in path,
            shared=kinds[pointer] == "amount" and amounts[normalized[pointer].value] > 1,
        )
        entry["corroborated_by"] = list(verdict.support) if verdict.doubt is None else []
        if verdict.doubt is not None and evidence_of[pointer] is not None:
            doubts[pointer] = verdict.doubt  # ungrounded and unparsed values have their own reasons
    reasons = _reasons(fields, normalized, doubts, check_results, policy)
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
    doubts: dict[str, str],
    checks: list[CheckResult],
    policy: ReviewPolicy,
) -> list[str]:
    """Why a person should look: ungrounded, unparsed or unsure values, values nothing
    independent corroborates (:mod:`app.trust.corroboration`), missing required fields, failed
    checks (those the policy names; all by default)."""
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
        if pointer in doubts and normalized[pointer].status == "ok":
            reasons.append(f"{doubts[pointer]}:{pointer}")
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
) -> tuple[dict[str, Any], Evidence | None]:
    """The field's report, and where its value is printed."""
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
    }, evidence


def _labels(compiled: CompiledSchema, path: tuple[str, ...], name: str) -> frozenset[str]:
    leaf = compiled.leaves.get(path)
    return label_phrases(tuple(name_words(name)), leaf.aliases if leaf else ())


def _check_dict(check: CheckResult) -> dict[str, Any]:
    return {
        "rule": check.rule,
        "status": check.status,
        "expected": None if check.expected is None else str(check.expected),
        "actual": None if check.actual is None else str(check.actual),
        "pointers": check.pointers,
        "detail": check.detail,
    }
