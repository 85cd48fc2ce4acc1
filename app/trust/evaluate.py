"""``docextract eval``: extraction over a folder of documents with ground truth beside them.

For every document ``<id>.<pdf|png|jpg|...>`` with ``<id>.json`` (a flat or nested object of true
values), the extracted data is compared field by field with the truth after normalisation (dates,
amounts, currencies, ... by the field's kind; identifiers marked ``"x-compare": "id"`` on
letters and digits only). Reported per field and overall: exact-match accuracy, document accuracy
(every field right), schema-valid rate, evidence recall (right values with a place on the page),
expected calibration error, and among fields auto-accepted (confidence at or above the review
threshold and no review reason on them) the share accepted and their error rate.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from app.lib.jsonpointer import escape, get
from app.schema.compiled import compile_schema
from app.schema.kinds import kind_for
from app.trust.confidence import expected_calibration_error, fit_isotonic
from app.trust.normalize import normalize

DOCUMENT_SUFFIXES = (".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".xml")


@dataclass
class FieldOutcome:
    document: str
    pointer: str
    truth: Any
    value: Any
    correct: bool
    confidence: float | None
    score: float | None
    grounded: bool
    flagged: bool


@dataclass
class Report:
    outcomes: list[FieldOutcome] = field(default_factory=list)
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)

    def summary(self, threshold: float) -> dict[str, Any]:
        per_field: dict[str, list[FieldOutcome]] = defaultdict(list)
        for outcome in self.outcomes:
            per_field[re.sub(r"/\d+", "/*", outcome.pointer)].append(outcome)
        scored = [o for o in self.outcomes if o.confidence is not None]
        accepted = [o for o in scored if not o.flagged and (o.confidence or 0) >= threshold]
        right = [o for o in self.outcomes if o.correct]
        return {
            "documents": len(self.documents),
            "fields": len(self.outcomes),
            "accuracy": _share(right, self.outcomes),
            "document_accuracy": _share(
                [d for d in self.documents.values() if d["all_correct"]], list(self.documents.values())
            ),
            "schema_valid_rate": _share(
                [d for d in self.documents.values() if d["schema_valid"]], list(self.documents.values())
            ),
            "evidence_recall": _share([o for o in right if o.grounded], right),
            "ece": round(
                expected_calibration_error(
                    [o.confidence or 0.0 for o in scored], [o.correct for o in scored]
                ),
                4,
            ),
            "auto_accepted_share": _share(accepted, scored),
            "auto_accepted_error_rate": _share([o for o in accepted if not o.correct], accepted),
            "review_threshold": threshold,
            "per_field": {
                name: {
                    "accuracy": _share([o for o in items if o.correct], items),
                    "count": len(items),
                    "evidence_recall": _share(
                        [o for o in items if o.correct and o.grounded], [o for o in items if o.correct]
                    ),
                }
                for name, items in sorted(per_field.items())
            },
        }


def _share(part: list[Any], whole: list[Any]) -> float | None:
    return round(len(part) / len(whole), 4) if whole else None


def documents_in(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        if p.suffix.lower() in DOCUMENT_SUFFIXES and p.with_suffix(".json").is_file()
    )


def truth_leaves(truth: Any, pointer: str = "") -> list[tuple[str, Any]]:
    if isinstance(truth, dict):
        return [
            leaf
            for k, v in truth.items()
            if not k.startswith("$")
            for leaf in truth_leaves(v, f"{pointer}/{escape(k)}")
        ]
    if isinstance(truth, list):
        return [leaf for i, v in enumerate(truth) for leaf in truth_leaves(v, f"{pointer}/{i}")]
    return [(pointer, truth)]


def field_name(pointer: str) -> str:
    """The property a pointer ends at (``/line_items/0/amount`` -> ``amount``)."""
    return next((p for p in reversed(pointer.split("/")) if p and not p.isdigit()), "")


def truth_corrections(
    data: Any, truth: Any, schema: dict[str, Any], pointer: str = ""
) -> list[tuple[str, Any]]:
    """What a reviewer holding the truth would change, as (pointer, value): each value that is not
    the truth's (by :func:`same`); a list (line items) as a whole when any of it differs; an object
    the data lacks as a whole. Values the truth leaves null or out are left alone."""
    if isinstance(truth, dict):
        if not isinstance(data, dict):
            return [(pointer, truth)] if pointer else truth_corrections({}, truth, schema)
        return [
            correction
            for key, value in truth.items()
            if not key.startswith("$")
            for correction in truth_corrections(data.get(key), value, schema, f"{pointer}/{escape(key)}")
        ]
    if isinstance(truth, list):
        differs = not isinstance(data, list) or len(data) != len(truth)
        differs = differs or any(
            truth_corrections(item, expected, schema, f"{pointer}/{i}")
            for i, (item, expected) in enumerate(zip(data, truth, strict=True))
        )
        return [(pointer, truth)] if differs else []
    if truth is None or same(truth, data, field_name(pointer), leaf_schema(schema, pointer)):
        return []
    return [(pointer, truth)]


def same(truth: Any, value: Any, name: str, schema: dict[str, Any]) -> bool:
    """Equal after normalising both by the field's kind."""
    if value is None:
        return truth is None
    if schema.get("x-compare") == "id" or "compare=id" in str(schema.get("$comment", "")):  # the old spelling
        return _alnum(truth) == _alnum(value)
    kind = kind_for(name, schema)
    a, b = normalize(truth, kind), normalize(value, kind)
    if a.status == "ok" and b.status == "ok":
        return bool(a.value == b.value) if kind != "text" else _text(a.value) == _text(b.value)
    return _text(truth) == _text(value)


def _alnum(value: Any) -> str:
    return "".join(c for c in str(value).casefold() if c.isalnum())


def _text(value: Any) -> str:
    return " ".join(str(value).casefold().split())


def leaf_schema(schema: dict[str, Any], pointer: str) -> dict[str, Any]:
    tree = compile_schema(schema).tree
    current: Any = schema
    for part in pointer.split("/")[1:]:
        if not isinstance(tree.resolve(current), dict):
            return {}
        current = tree.items(current) if part.isdigit() else tree.properties(current).get(part, {})
    return tree.object(current)


def record(
    report: Report, document: str, truth: dict[str, Any], result: dict[str, Any], schema: dict[str, Any]
) -> None:
    """Compare one document's result with its truth and add the outcomes to ``report``."""
    flagged = flagged_pointers(result)
    data = result.get("data") or {}
    outcomes = []
    for pointer, true_value in truth_leaves(truth):
        if true_value is None:
            continue
        value = get(data, pointer)
        entry = result["fields"].get(pointer, {})
        name = field_name(pointer)
        outcomes.append(
            FieldOutcome(
                document=document,
                pointer=pointer,
                truth=true_value,
                value=value,
                correct=same(true_value, value, name, leaf_schema(schema, pointer)),
                confidence=entry.get("confidence"),
                score=entry.get("components", {}).get("score"),
                grounded=bool(entry.get("evidence")),
                flagged=flagged is None or pointer in flagged,
            )
        )
    report.outcomes += outcomes
    report.documents[document] = {
        "all_correct": all(o.correct for o in outcomes),
        "schema_valid": not result["validation"],
        "status": result["status"],
        "reasons": result["review"]["reasons"],
    }


def flagged_pointers(result: dict[str, Any]) -> set[str] | None:
    """The fields a person is asked to look at: those a reason names (`kind:/pointer`), those of a
    failed check it names (`check_failed:rule`); None (every field) when a reason is about the
    whole document (`unfamiliar_document:…`, `page_truncated:2`, `engine_fallback:1`)."""
    checks: dict[str, list[str]] = {}
    for check in result.get("checks", []):
        checks.setdefault(check["rule"], []).extend(check["pointers"])
    flagged: set[str] = set()
    for reason in result["review"]["reasons"]:
        kind, _, detail = reason.partition(":")
        if detail.startswith("/"):
            flagged.add(detail.split(":")[0])
        elif kind == "check_failed":
            flagged.update(checks.get(detail, []))
        else:
            return None
    return flagged


def reliability_diagram(outcomes: list[FieldOutcome], path: Path, bins: int = 10) -> None:
    """Accuracy per confidence bin against the diagonal, as a PNG (no plotting library needed)."""
    size, margin = 400, 40
    image = Image.new("RGB", (size + 2 * margin, size + 2 * margin), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((margin, margin, margin + size, margin + size), outline="black")
    draw.line((margin, margin + size, margin + size, margin), fill=(150, 150, 150))
    scored = [o for o in outcomes if o.confidence is not None]
    for b in range(bins):
        members = [
            o
            for o in scored
            if b / bins <= (o.confidence or 0) < (b + 1) / bins or (b == bins - 1 and o.confidence == 1.0)
        ]
        if not members:
            continue
        accuracy = sum(o.correct for o in members) / len(members)
        x0 = margin + b * size / bins
        draw.rectangle(
            (x0 + 2, margin + size * (1 - accuracy), x0 + size / bins - 2, margin + size),
            fill=(70, 130, 180),
            outline="black",
        )
        draw.text((x0 + 4, margin + size + 4), str(len(members)), fill="black")
    draw.text((margin, 10), "reliability: accuracy per confidence bin (n below)", fill="black")
    image.save(path)


def leave_one_set_out(sets: dict[str, list[FieldOutcome]], threshold: float) -> dict[str, dict[str, Any]]:
    """For each set: calibration fitted on every *other* set, applied to this one's scores, and the
    numbers a user of an unseen document family would see (accuracy, auto-accepted share, wrong
    among auto-accepted, ECE), beside the uncalibrated ones. A field flagged for another reason
    stays flagged; the calibrated confidence decides the threshold."""
    results: dict[str, dict[str, Any]] = {}
    for held_out, outcomes in sets.items():
        training = [o for name, rest in sets.items() if name != held_out for o in rest if o.score is not None]
        calibration = (
            fit_isotonic([o.score or 0.0 for o in training], [o.correct for o in training], "loso")
            if len(training) >= 20
            else None
        )
        scored = [o for o in outcomes if o.score is not None]
        calibrated = [
            replace(o, confidence=round(calibration(o.score or 0.0), 4) if calibration else o.confidence)
            for o in scored
        ]
        accepted = [o for o in calibrated if not o.flagged and (o.confidence or 0) >= threshold]
        results[held_out] = {
            "fields": len(outcomes),
            "calibrated_on": len(training),
            "accuracy": _share([o for o in outcomes if o.correct], outcomes),
            "auto_accepted_share": _share(accepted, calibrated),
            "auto_accepted_error_rate": _share([o for o in accepted if not o.correct], accepted),
            "ece_uncalibrated": round(
                expected_calibration_error(
                    [o.confidence or 0.0 for o in scored], [o.correct for o in scored]
                ),
                4,
            ),
            "ece": round(
                expected_calibration_error(
                    [o.confidence or 0.0 for o in calibrated], [o.correct for o in calibrated]
                ),
                4,
            ),
        }
    return results
