"""A person's review of an extraction: corrections read like extracted values, the decision, and
the revision that records both. Pure functions over the stored result; the route stores them."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.auth.keys import Principal
from app.lib.errors import RequestError
from app.lib.jsonpointer import PointerNotFound, escape, resolve, unescape
from app.lib.jsonpointer import pointer as to_pointer
from app.lib.problems import INVALID_CORRECTION, ErrorItem
from app.schema.compiled import CompiledSchema
from app.schema.kinds import ITEM
from app.trust.assess import check_report, leaves_of
from app.trust.checks.evaluate import evaluate
from app.trust.normalize import json_value, normalize

NO_READING = {
    "token_prob": None,
    "grounded": 0.0,
    "normalized": 0.0,
    "checks": 0.0,
    "ocr": 0.0,
    "score": 0.0,
    "corroborated": False,
    "source": "engine",
}
DECISION_STATUS = {"approve": "approved", "reject": "rejected"}
MAX_CORRECTIONS = 500


@dataclass(frozen=True)
class Correction:
    pointer: str
    value: Any
    evidence: dict[str, Any] | None = None
    """Where the reviewer found the value (``{"page", "bbox"}``: the words clicked on the page)."""


@dataclass(frozen=True)
class ReviewOutcome:
    result: dict[str, Any]
    """The stored result with the corrections and the decision applied."""
    revision: dict[str, Any]
    status: str
    """The extraction's status after the review (``approved``/``rejected`` after a decision)."""


def apply_review(
    result: dict[str, Any],
    compiled: CompiledSchema,
    corrections: list[Correction],
    decision: str | None,
    note: str | None,
    reviewer: Principal,
    status: str,
    now: datetime,
) -> ReviewOutcome:
    """The result after a reviewer's ``corrections`` and ``decision``, or an invalid-correction
    problem naming every correction that names no field, cannot be read as its field's kind, or
    makes the data break the schema. The input is not changed."""
    data = copy.deepcopy(result["data"]) if result["data"] is not None else {}
    errors: list[ErrorItem] = []
    changes: list[dict[str, Any]] = []
    for index, correction in enumerate(corrections):
        problem = _apply(data, compiled, correction, changes, result["fields"])
        if problem is not None:
            field, detail = problem
            errors.append({"pointer": f"/corrections/{index}/{field}", "detail": detail})
    corrected = [change["pointer"] for change in changes]
    for finding in compiled.validator.iter_errors(data):
        at = to_pointer(finding.absolute_path)
        errors.extend(
            {"pointer": f"/corrections/{index}/value", "detail": f"{at}: {finding.message}"}
            for index, c in enumerate(corrections)
            if _related(c.pointer, at)
        )
    if errors:
        raise RequestError(
            INVALID_CORRECTION,
            f"{len({e['pointer'] for e in errors})} correction(s) cannot be applied; nothing was saved.",
            errors=errors,
        )
    updated = copy.deepcopy(result)
    updated["data"] = data
    _mark_reviewed(updated, compiled, corrections, corrected)
    review = updated["review"]
    number = review.get("revision", 0) + 1
    revision = {
        "number": number,
        "reviewer": reviewer.key_id,
        "reviewer_name": reviewer.name,
        "created_at": now.isoformat().replace("+00:00", "Z"),
        "decision": decision,
        "note": note,
        "changes": changes,
    }
    review["revision"] = number
    review["revisions"] = [*review.get("revisions", []), revision]
    if decision is not None:
        review["status"] = DECISION_STATUS[decision]
        status = DECISION_STATUS[decision]
    return ReviewOutcome(updated, revision, status)


def _apply(
    data: Any,
    compiled: CompiledSchema,
    correction: Correction,
    changes: list[dict[str, Any]],
    fields: dict[str, Any],
) -> tuple[str, str] | None:
    """Write one correction into ``data``; the problem (which part, why) when it cannot be."""

    def confidence_of(pointer: str) -> float | None:
        field = fields.get(pointer)
        return field["confidence"] if field is not None else None

    pointer = correction.pointer
    if not pointer.startswith("/"):
        return "pointer", f"{pointer!r} is not a JSON Pointer into `data` (e.g. /total)."
    schema = compiled.subschema_at(pointer)
    if schema is None:
        return "pointer", f"The schema has no field at {pointer}."
    try:
        value = _read(compiled, pointer, schema, correction.value)
    except _Unreadable as exc:
        return "value", str(exc)
    try:
        old = resolve(data, pointer)
    except PointerNotFound:
        old = None
    problem = _write(data, pointer, value)
    if problem is None and old != value:
        changes.append({"pointer": pointer, "old": old, "new": value, "confidence": confidence_of(pointer)})
    return problem


class _Unreadable(ValueError):
    """A corrected value that cannot be read as its field's kind."""


def _read(compiled: CompiledSchema, pointer: str, schema: dict[str, Any] | None, value: Any) -> Any:
    """``value`` with every scalar read as its field's kind, as the trust layer reads an engine's
    ("1.234,50" for a number becomes 1234.5); members the schema does not declare stay as given
    (validation judges them)."""
    if isinstance(value, dict):
        return {
            key: _read(
                compiled, f"{pointer}/{escape(key)}", compiled.subschema_at(f"{pointer}/{escape(key)}"), item
            )
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [
            _read(compiled, f"{pointer}/{i}", compiled.subschema_at(f"{pointer}/{i}"), item)
            for i, item in enumerate(value)
        ]
    if value is None or schema is None or not _is_leaf(schema):
        return value
    path = _schema_path(pointer)
    kind = compiled.kind_of(path, path[-1], schema)
    read = normalize(value, kind)
    if read.status == "unparsed":
        raise _Unreadable(f"{pointer}: {value!r} cannot be read as a {kind}.")
    return json_value(read, schema)


def _write(data: Any, pointer: str, value: Any) -> tuple[str, str] | None:
    """Set the value at ``pointer``: an object's member (new or not), a list's item, or one item
    past a list's end (a new line item)."""
    parent_pointer, _, last = pointer.rpartition("/")
    try:
        parent = resolve(data, parent_pointer)
    except PointerNotFound:
        return "pointer", f"{parent_pointer} is not in the data: correct the enclosing value instead."
    if isinstance(parent, dict):
        parent[unescape(last)] = value
    elif isinstance(parent, list) and last.isdigit() and int(last) <= len(parent):
        if int(last) == len(parent):
            parent.append(value)
        else:
            parent[int(last)] = value
    elif isinstance(parent, list):
        return "pointer", f"{pointer}: the list has {len(parent)} items (index {len(parent)} adds one)."
    else:
        return "pointer", f"{parent_pointer} is a {type(parent).__name__}, not an object or a list."
    return None


def _mark_reviewed(
    result: dict[str, Any], compiled: CompiledSchema, corrections: list[Correction], corrected: list[str]
) -> None:
    """Fields under a corrected pointer become the reviewer's (confidence 1, their evidence);
    fields that no longer exist go; reasons about corrected fields are settled; checks run again."""
    data = result["data"]
    leaves = {pointer for pointer, *_ in leaves_of(compiled, data)}
    fields: dict[str, Any] = result["fields"]
    for pointer in list(fields):
        if pointer not in leaves:
            del fields[pointer]
    evidence_at = {c.pointer: c.evidence for c in corrections if c.evidence is not None}
    for pointer in sorted(leaves):
        owner = next((c for c in corrected if _under(pointer, c)), None)
        if owner is None:
            continue
        value = resolve(data, pointer)
        fields[pointer] = _reviewer_field(pointer, value, fields.get(pointer), evidence_at.get(owner))
    checks = evaluate(compiled.parsed_checks(), data) if isinstance(data, dict) else []
    result["checks"] = [check_report(c) for c in checks]
    review = result["review"]
    review["reasons"] = [
        reason
        for reason in review["reasons"]
        if not any(_under(p, c) for c in corrected for p in _reason_pointers(reason))
    ]
    present = [f["confidence"] for f in fields.values() if f["confidence"] is not None]
    result["confidence"] = round(min(present), 4) if present else None


def _reviewer_field(
    pointer: str, value: Any, before: dict[str, Any] | None, evidence: dict[str, Any] | None
) -> dict[str, Any]:
    kind = before["normalized"]["kind"] if before else "text"
    return {
        "confidence": None if value is None else 1.0,
        "page": evidence["page"] if evidence else None,
        "raw_text": None if value is None else str(value),
        "normalized": {"kind": kind, "status": "absent" if value is None else "ok"},
        "evidence": [
            {
                "page": evidence["page"],
                "bbox": evidence["bbox"],
                "text": str(value),
                "score": 1.0,
                "method": "reviewer",
            }
        ]
        if evidence and value is not None
        else [],
        # How the engine's reading scored stays (what calibration learns from); a value the
        # engine never read scores 0.
        "components": before["components"] if before else NO_READING,
        "checks": before.get("checks", []) if before else [],
        "corroborated_by": [],
        "rivals": before.get("rivals", []) if before else [],
        "source": "reviewer",
        "einvoice": before.get("einvoice") if before else None,
    }


def _reason_pointers(reason: str) -> list[str]:
    """The JSON Pointers a reason names (``low_confidence:/total``, ``invalid:/date:format``)."""
    _, _, detail = reason.partition(":")
    return [part for part in detail.split(":") if part.startswith("/")][:1]


def _under(pointer: str, parent: str) -> bool:
    return pointer == parent or pointer.startswith(parent + "/")


def _related(a: str, b: str) -> bool:
    return _under(a, b) or _under(b, a)


def _is_leaf(schema: dict[str, Any]) -> bool:
    types = schema.get("type")
    names = set(types) if isinstance(types, list) else {types}
    return not names & {"object", "array"}


def _schema_path(pointer: str) -> tuple[str, ...]:
    """The schema path of a data pointer (``*`` for array items), as ``CompiledSchema.leaves`` keys it."""
    return tuple(ITEM if part.isdigit() else unescape(part) for part in pointer.split("/")[1:])


def labelled_fields(result: dict[str, Any]) -> list[tuple[float, float, bool]]:
    """An approved result's fields as calibration data: (engine score, reported confidence,
    correct). A field the reviewer left is correct; one they changed was wrong (its score and
    confidence are the engine's, kept by the first change). Values the engine never read, and
    absent ones, say nothing about confidence."""
    first_change: dict[str, dict[str, Any]] = {}
    for revision in result["review"].get("revisions", []):
        for change in revision["changes"]:
            first_change.setdefault(change["pointer"], change)
    samples: list[tuple[float, float, bool]] = []
    for pointer, field in result["fields"].items():
        score = field["components"]["score"]
        change = first_change.get(pointer)
        if field.get("source", "engine") == "engine" and change is None:
            if field["confidence"] is not None:
                samples.append((score, field["confidence"], True))
        elif change is not None and change["old"] is not None and change.get("confidence") is not None:
            samples.append((score, change["confidence"], False))
    return samples
