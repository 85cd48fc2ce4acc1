"""The trust layer over a merged extraction: normalise, check, ground, score, route to review.

Input: the registered schema, the merged data, where each value came from (page and token
evidence), and the document's text map. Output: the data with normalised values, and per field
its raw text, normalisation status, evidence, confidence components and checks; the checks; the
review reasons; a document confidence (the weakest field's).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from app.documents.textmap import DocumentMap
from app.lexicon import concepts_named, expected_on_every_document, label_phrases, name_words
from app.lib.jsonpointer import assign, escape
from app.schema.compiled import CompiledSchema
from app.schema.kinds import ITEM, Kind, declared_types
from app.schema.review import ReviewPolicy
from app.schema.tree import SchemaTree
from app.trust.checks import CheckResult, evaluate
from app.trust.confidence import CHECK_FAILED, UNPARSED, Calibration, Components
from app.trust.corroboration import Verdict, corroborate
from app.trust.facts import DocumentFacts, read_facts
from app.trust.grounding import Evidence, Grounder
from app.trust.normalize import Normalized, json_value, normalize, printed_forms
from app.trust.sources import FieldSource, Remembered, Rival

__all__ = ["Assessment", "ReviewPolicy", "assess"]  # ReviewPolicy: from app.schema.review
RIVAL_CLOSE = 0.7
"""A rival at this share of the chosen value's certainty or more makes the choice a guess."""
MAX_REPORTED_RIVALS = 3
UNFAMILIAR_FACTOR = 0.8
"""Confidence kept on a document unlike those the scores were calibrated on."""
MIN_WORDS_FOR_LANGUAGE = 30
MIN_KNOWN_WORDS = 3
MIN_VALUES_FOR_LABELS = 3
SURE_MEMORY = 0.8
"""A value sender memory recalled this surely (its label found again, its format kept) settles a
field's doubt when it agrees with the engine's, and is a review reason when it does not."""
PARTY_IDENTIFIERS = frozenset({"vat_id", "iban"})
"""Kinds whose value names one party: the same value in two fields is one field read twice."""
SETTLED_BY_MEMORY = frozenset(["unlabelled", "uncorroborated", "rival", "ambiguous_date"])
"""Doubts that a value found where the sender's approved documents print the field settles; the
others (glued, inexact, a label read as the value, a lost decimal point) it does not."""


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


def leaves_of(
    compiled: CompiledSchema, data: Any
) -> Iterator[tuple[str, str, dict[str, Any], Any, tuple[str, ...]]]:
    """Each scalar of ``data``: pointer, property name, schema, value, schema path."""
    return _leaves(data, compiled.schema, compiled.tree)


def assess(
    compiled: CompiledSchema,
    data: Any,
    sources: dict[str, FieldSource | None],
    document: DocumentMap,
    *,
    policy: ReviewPolicy,
    calibration: Calibration | None = None,
    memory: dict[str, Remembered] | None = None,
    from_memory: frozenset[str] = frozenset(),
) -> Assessment:
    """``memory``: what sender memory recalled on the document, by pointer (the cross-check);
    ``from_memory``: the pointers whose value the engine read from it (``components.source``)."""
    memory = {p: r for p, r in (memory or {}).items() if r.score >= SURE_MEMORY}
    leaves = list(_leaves(data, compiled.schema, compiled.tree))
    kinds = {pointer: compiled.kind_of(path, name, sub) for pointer, name, sub, _, path in leaves}
    raw_dates = [str(v) for p, _, _, v, _ in leaves if kinds[p] == "date" and isinstance(v, str)]
    facts = read_facts(document, raw_dates)
    day_first = facts.day_first

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
    components: dict[str, Components] = {}
    for pointer, _, _, raw, _ in leaves:
        fields[pointer], evidence_of[pointer], components[pointer] = _field(
            grounder,
            pointer,
            raw,
            normalized[pointer],
            sources.get(pointer),
            by_pointer.get(pointer, []),
            calibration,
            day_first,
        )
        if pointer in from_memory and raw is not None:
            fields[pointer]["components"]["source"] = "sender_memory"
    doubts, understood = _corroborate_all(
        _Reading(compiled, leaves, kinds, normalized, fields, evidence_of, components, by_pointer),
        grounder,
        facts,
        sources,
        calibration,
        memory,
    )
    reasons = _reasons(fields, normalized, doubts, check_results, policy)
    reasons += [
        f"sender_memory:{pointer}"  # the sender prints a value there; the engine read none
        for pointer in memory
        if pointer not in fields or normalized[pointer].status == "absent"
    ]
    reasons += [f"not_found:{pointer}" for pointer in _not_found(compiled, data, policy)]
    unfamiliar = _unfamiliar(facts, understood)
    if unfamiliar is not None:
        reasons.append(f"unfamiliar_document:{unfamiliar}")
        for entry in fields.values():
            if entry["confidence"] is not None:
                entry["confidence"] = round(entry["confidence"] * UNFAMILIAR_FACTOR, 4)
    present = [
        f["confidence"]
        for p, f in fields.items()
        if f["confidence"] is not None and normalized[p].status != "absent"
    ]
    return Assessment(
        data=data,
        fields=fields,
        checks=[check_report(c) for c in check_results],
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


@dataclass(frozen=True)
class _Reading:
    """A document's values as the trust layer has read them so far, by pointer."""

    compiled: CompiledSchema
    leaves: list[tuple[str, str, dict[str, Any], Any, tuple[str, ...]]]
    kinds: dict[str, Kind]
    normalized: dict[str, Normalized]
    fields: dict[str, dict[str, Any]]
    evidence_of: dict[str, Evidence | None]
    components: dict[str, Components]
    checks_of: dict[str, list[CheckResult]]


def _corroborate_all(
    reading: _Reading,
    grounder: Grounder,
    facts: DocumentFacts,
    sources: dict[str, FieldSource | None],
    calibration: Calibration | None,
    memory: dict[str, Remembered],
) -> tuple[dict[str, str], dict[str, bool]]:
    """Each present value's verdict (:func:`corroborate`) written into its report (a corroborated
    value's score and confidence rise); the doubts by pointer, and for document-level values
    whether the document explains them: corroborated, or beside a label of their field. Sender
    memory cross-checks the verdict (:func:`_with_memory`)."""
    doubts: dict[str, str] = {}
    understood: dict[str, bool] = {}
    normalized, evidence_of = reading.normalized, reading.evidence_of
    amounts = Counter(
        normalized[p].value
        for p, _, _, _, path in reading.leaves
        if reading.kinds[p] == "amount" and normalized[p].status == "ok" and ITEM not in path
    )
    identifiers = Counter(
        (reading.kinds[p], normalized[p].value)
        for p, _, _, _, path in reading.leaves
        if reading.kinds[p] in PARTY_IDENTIFIERS and normalized[p].status == "ok" and ITEM not in path
    )
    for pointer, name, sub, raw, path in reading.leaves:
        entry = reading.fields[pointer]
        entry["corroborated_by"] = []
        if raw is None or normalized[pointer].status == "absent":
            continue
        verdict = corroborate(
            reading.kinds[pointer],
            raw,
            normalized[pointer],
            evidence_of[pointer],
            reading.checks_of.get(pointer, []),
            evidence_of,
            grounder,
            facts,
            labels=_labels(reading.compiled, path, name),
            in_item=ITEM in path,
            shared=reading.kinds[pointer] == "amount" and amounts[normalized[pointer].value] > 1,
            rival=_close_rival(entry, sources.get(pointer)),
            money=_money(name, sub),
        )
        if identifiers[(reading.kinds[pointer], normalized[pointer].value)] > 1:
            # One VAT id or IBAN in two fields (the seller's and the buyer's): it names one party.
            verdict = Verdict(verdict.support, "shared_identifier")
        if pointer in memory:
            grounded = evidence_of[pointer] is not None
            verdict = _with_memory(verdict, memory[pointer], normalized[pointer], grounded=grounded)
        if verdict.doubt is None:
            entry["corroborated_by"] = list(verdict.support)
            score = replace(reading.components[pointer], corroborated=True).score()
            entry["components"].update(corroborated=True, score=round(score, 4))
            entry["confidence"] = _confidence(score, calibration)
        elif evidence_of[pointer] is not None:
            doubts[pointer] = verdict.doubt  # ungrounded and unparsed values have their own reasons
        if ITEM not in path:
            understood[pointer] = verdict.doubt is None or "labelled" in verdict.support
    return doubts, understood


def _with_memory(verdict: Verdict, remembered: Remembered, value: Normalized, *, grounded: bool) -> Verdict:
    """The value the sender's approved documents print at this place agrees: it corroborates
    (``sender_memory``) and settles the doubts a place settles (of a value found on the page); it
    disagrees: a person looks (``sender_memory:<pointer>``). A date's order counts only when the
    sender's is known."""
    recalled = normalize(remembered.text, value.kind, day_first=remembered.day_first)
    if recalled.status != "ok" or value.status != "ok":
        return verdict
    if _same_key(recalled) != _same_key(value):
        return Verdict(verdict.support, "sender_memory")
    support = (*verdict.support, "sender_memory")
    settles = (
        grounded
        and verdict.doubt in SETTLED_BY_MEMORY
        and (verdict.doubt != "ambiguous_date" or remembered.day_first is not None)
    )
    return Verdict(support, None if settles or verdict.doubt is None else verdict.doubt)


def _money(name: str, schema: dict[str, Any]) -> bool:
    """Whether an amount is money, printed with cents where the page prints cents: not an integer,
    not a quantity ("quantity", "qty", "units")."""
    if declared_types(schema) - {"null"} == {"integer"}:
        return False
    return not any(c.key == "item_quantity" for c in concepts_named(tuple(name_words(name))))


def _unfamiliar(facts: DocumentFacts, understood: dict[str, bool]) -> str | None:
    """Why the document is unlike those the reading and its calibration were built on, if it is:
    almost no word the lexicon knows in any of its languages (``language``), or none of its values
    explained by it, neither corroborated nor beside a label of their field (``labels``: a form or
    a layout the lexicon does not describe, or a page the OCR could barely read)."""
    if facts.words >= MIN_WORDS_FOR_LANGUAGE and facts.known_words < MIN_KNOWN_WORDS:
        return "language"
    if len(understood) >= MIN_VALUES_FOR_LABELS and not any(understood.values()):
        return "labels"
    return None


def _not_found(compiled: CompiledSchema, data: Any, policy: ReviewPolicy) -> list[str]:
    """Top-level properties for what every document prints (its total, its date) that came back
    null: a value the reader did not find is for a person to look for, not proof of absence.
    (Those the policy requires are reported as ``missing``.)"""
    if not isinstance(data, dict):
        return []
    properties = compiled.tree.properties(compiled.schema)
    return [
        pointer
        for name, sub in properties.items()
        if (data[name] is None if name in data else not compiled.tree.admits_null(sub))  # null, or dropped
        and (pointer := f"/{escape(name)}") not in policy.require
        and expected_on_every_document(tuple(name_words(name)))
    ]


def _field(
    grounder: Grounder,
    pointer: str,
    raw: Any,
    normalized: Normalized,
    source: FieldSource | None,
    checks: list[CheckResult],
    calibration: Calibration | None,
    day_first: bool | None,
) -> tuple[dict[str, Any], Evidence | None, Components]:
    """The field's report, where its value is printed, and its confidence components (before
    corroboration, which needs every field's evidence)."""
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
    return (
        {
            "confidence": None if raw is None else _confidence(score, calibration),
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
                "corroborated": False,
                "source": "engine",
            },
            "checks": [c.rule for c in checks],
            "corroborated_by": [],
            "rivals": _rivals(source, normalized, day_first) if raw is not None else [],
            "source": "engine",
            "einvoice": None,
        },
        evidence,
        components,
    )


def _confidence(score: float, calibration: Calibration | None) -> float:
    return round(calibration(score) if calibration else score, 4)


def _rivals(source: FieldSource | None, chosen: Normalized, day_first: bool | None) -> list[dict[str, Any]]:
    """The other values the engine read for the field, best first: those that are not the chosen
    value in another spelling."""
    if source is None:
        return []
    seen = {_same_key(chosen)}
    out: list[dict[str, Any]] = []
    for rival in source.rivals:
        key = _same_key(normalize(rival.value, chosen.kind, day_first=day_first))
        if key not in seen and len(out) < MAX_REPORTED_RIVALS:
            seen.add(key)
            out.append(_rival_dict(rival))
    return out


def _same_key(n: Normalized) -> Any:
    if n.status != "ok":
        return ("raw", " ".join(str(n.raw).casefold().split()))
    return " ".join(n.value.casefold().split()) if isinstance(n.value, str) else n.value


def _rival_dict(rival: Rival) -> dict[str, Any]:
    return {"value": rival.value, "score": round(rival.score, 4), "page": rival.page}


def _close_rival(entry: dict[str, Any], source: FieldSource | None) -> bool:
    """Whether the best rival is nearly as certain as the chosen value."""
    chosen = source.evidence.min if source is not None and source.evidence is not None else 1.0
    return any(r["score"] >= RIVAL_CLOSE * chosen for r in entry["rivals"][:1])


def _labels(compiled: CompiledSchema, path: tuple[str, ...], name: str) -> frozenset[str]:
    leaf = compiled.leaves.get(path)
    return label_phrases(tuple(name_words(name)), leaf.aliases if leaf else ())


def check_report(check: CheckResult) -> dict[str, Any]:
    """A check's result as the result JSON carries it (numbers as exact decimal strings)."""
    return {
        "rule": check.rule,
        "status": check.status,
        "expected": None if check.expected is None else str(check.expected),
        "actual": None if check.actual is None else str(check.actual),
        "pointers": check.pointers,
        "detail": check.detail,
    }
