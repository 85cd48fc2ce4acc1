"""E-invoices in an extraction: the XML is the invoice, the page is its picture.

``find`` reads the structured invoice of a document (the standard attachment of a Factur-X /
ZUGFeRD / XRechnung PDF, or an XML upload). ``overlay`` puts its values into the data the pages
gave (XML wins), and ``settle`` turns the trust layer's report on those values into what the XML
warrants: ``source: "e-invoice"`` with the XML path, confidence from the XML, and a review reason
where the visible page prints something else (fraud-relevant: the page is what a person approved).
"""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from app.documents.detect import detect_type
from app.documents.ingest import IngestLimits
from app.documents.pdf_thread import run_in_pdf_thread
from app.einvoice import xsd
from app.einvoice.attachments import invoice_attachment
from app.einvoice.identifiers import identifier_problem
from app.einvoice.mapping import Mapped, schema_map, to_data
from app.einvoice.model import EInvoice
from app.einvoice.read import read_root
from app.einvoice.xml import EInvoiceXmlError, parse_xml
from app.extraction.models import EInvoiceReport
from app.lib.errors import DocumentError
from app.lib.jsonpointer import escape, get
from app.lib.jsonpointer import pointer as to_pointer
from app.lib.problems import EINVOICE_INVALID
from app.schema.compiled import CompiledSchema
from app.schema.kinds import Kind
from app.trust.assess import Assessment
from app.trust.normalize import normalize

CENT = Decimal("0.01")
SURE = 0.99
"""An XML value the page prints too (or an XML upload: there is no page)."""
NOT_ON_PAGE = 0.95
"""An XML value the page does not print (codes, identifiers pages often leave out)."""
MISMATCH = 0.3
"""An XML value the page contradicts."""
COMPARED = frozenset(
    {
        "BT-1",
        "BT-2",
        "BT-5",
        "BT-9",
        "BT-31",
        "BT-48",
        "BT-84",
        "BT-86",
        "BT-109",
        "BT-110",
        "BT-112",
        "BT-115",
    }
)
"""The business terms compared with the page: what a changed copy would change (number, dates,
currency, VAT ids, where the money goes, the amounts). Names, addresses and lines are printed in too
many ways (a page may shorten an address) for a difference to mean anything."""
KEPT_REASONS = frozenset({"invalid", "missing", "check_failed", "not_found", "unparsed"})
"""Reasons that still hold for XML values: they are about the invoice (a failed check, a value that
is not what its kind says, e.g. a VAT id whose checksum fails), not about reading it."""


@dataclass
class Found:
    """What ``find`` found: the invoice, or why its XML could not be read."""

    invoice: EInvoice | None
    report: dict[str, Any]
    pages: bool = True
    """False for an XML upload: nothing to render, OCR or ground on."""
    provenance: dict[str, Mapped] = field(default_factory=dict)


def _read(data: bytes, max_bytes: int) -> tuple[EInvoice, dict[str, Any]]:
    root = parse_xml(data, max_bytes=max_bytes)
    invoice = read_root(root)
    violations = xsd.validate(root)
    return invoice, {
        "syntax": invoice.syntax,
        "profile": invoice.profile,
        "xsd": xsd.schema_profile(root),
        "valid": not violations,
        "violations": [{"line": v.line, "message": v.message} for v in violations],
        "error": None,
    }


def _unreadable(reason: str) -> dict[str, Any]:
    return {"syntax": None, "profile": None, "xsd": None, "valid": False, "violations": [], "error": reason}


def _report(found: dict[str, Any], attachment: str | None, relationship: str | None) -> dict[str, Any]:
    """``EInvoiceReport``'s fields in its order (the stored JSON is the typed result's)."""
    where = {"attachment": attachment, "relationship": relationship}
    return {key: {**found, **where}[key] for key in EInvoiceReport.__struct_fields__}


async def find(data: bytes, limits: IngestLimits, password: str | None = None) -> Found | None:
    """The document's e-invoice; None when it has none (or reading them is off). An XML upload that
    cannot be read is a 422 (nothing else to read); a PDF's broken XML is reported, and the
    document is read from its pages."""
    if not limits.einvoice:
        return None
    kind = detect_type(data[:1024])
    if kind == "xml":
        try:
            invoice, report = await asyncio.to_thread(_read, data, limits.max_xml_bytes)
        except EInvoiceXmlError as exc:
            raise DocumentError(EINVOICE_INVALID, str(exc), reason=exc.reason) from exc
        return Found(invoice, _report(report, None, None), pages=False)
    return await _in_pdf(data, limits, password) if kind == "pdf" else None


async def _in_pdf(data: bytes, limits: IngestLimits, password: str | None) -> Found | None:
    attachment = await run_in_pdf_thread(invoice_attachment, data, password, max_bytes=limits.max_xml_bytes)
    if attachment is None:
        return None
    name, relationship = attachment.name, attachment.relationship
    if attachment.data is None:
        return Found(None, _report(_unreadable("too_large"), name, relationship))
    try:
        invoice, report = await asyncio.to_thread(_read, attachment.data, limits.max_xml_bytes)
    except EInvoiceXmlError as exc:
        return Found(None, _report(_unreadable(exc.reason), name, relationship))
    return Found(invoice, _report(report, name, relationship))


def overlay(
    found: Found, compiled: CompiledSchema, data: Any, sources: dict[str, Any]
) -> tuple[Any, dict[str, Any], Any]:
    """The XML's values over what the pages gave: ``(data, sources, page_data)``; the pages'
    readings of the fields the XML holds are dropped from ``sources`` (kept in ``page_data`` for
    ``settle`` to compare). Lists the XML holds (lines) replace the pages' lists whole. A complete
    invoice (one with lines: not a MINIMUM or BASIC WL summary) that leaves a term empty says it has
    none, so the page's reading of a field holding that term is dropped too: the page may print a
    phone number the XML lacks, but a page reader's guess there is no reason to hold the invoice."""
    assert found.invoice is not None
    mapping = schema_map(compiled)
    xml_data, provenance = to_data(found.invoice, compiled, mapping)
    found.provenance = provenance
    page_data = copy.deepcopy(data) if isinstance(data, dict) else {}
    merged = copy.deepcopy(page_data)
    replaced: list[str] = []

    def put(target: dict[str, Any], values: dict[str, Any], at: str) -> None:
        for key, value in values.items():
            pointer = f"{at}/{escape(key)}"
            if isinstance(value, dict) and isinstance(target.get(key), dict):
                put(target[key], value, pointer)
            else:
                target[key] = value
                replaced.append(pointer)

    put(merged, xml_data, "")
    if found.invoice.lines:
        for path in mapping.fields:
            at = to_pointer(path)
            if at not in provenance and _drop(merged, path):
                replaced.append(at)
    kept = {p: s for p, s in sources.items() if not any(p == r or p.startswith(r + "/") for r in replaced)}
    return merged, kept, page_data


def _drop(data: dict[str, Any], path: tuple[str, ...]) -> bool:
    """Remove the value at ``path``; whether there was one."""
    for name in path[:-1]:
        inner = data.get(name)
        if not isinstance(inner, dict):
            return False
        data = inner
    return data.pop(path[-1], None) is not None


def settle(trust: Assessment, found: Found, page_data: Any, *, has_pages: bool) -> list[str]:
    """Rewrite the trust layer's report on the XML's values (in place); returns the review reasons
    that hold after it: the XML's own problems, pages that contradict it, and every reason about
    values the pages gave."""
    mismatched: list[str] = []
    others = _values_of(found.invoice) if found.invoice is not None else []
    for pointer, mapped in found.provenance.items():
        entry = trust.fields.get(pointer)
        if entry is None:
            continue
        page_value = get(page_data, pointer)
        printed = bool(entry["evidence"])
        kind = entry["normalized"]["kind"]
        if (
            mapped.code in COMPARED
            and not printed
            and _contradicts(page_value, mapped.value.value, kind, trust.day_first, others)
        ):
            mismatched.append(pointer)
            confidence = MISMATCH
            entry["rivals"] = [{"value": page_value, "score": 1.0, "page": entry.get("page") or 1}]
        else:
            confidence = SURE if printed or not has_pages else NOT_ON_PAGE
            entry["rivals"] = []
        entry["confidence"] = confidence
        entry["raw_text"] = mapped.value.text
        entry["source"] = "e-invoice"
        entry["corroborated_by"] = ["e-invoice", *(["printed"] if printed else [])]
        entry["components"] = {
            **entry["components"],
            "token_prob": None,
            "score": confidence,
            "corroborated": True,
        }
        entry["einvoice"] = {
            "business_term": mapped.code,
            "path": mapped.value.path,
            "text": mapped.value.text,
            "page_value": page_value if pointer in mismatched else None,
        }
    from_xml = set(found.provenance)
    reasons = [r for r in trust.reasons if _kind(r) in KEPT_REASONS or not _about(r, from_xml)]
    if not _any_page_values(trust, from_xml):
        reasons = [r for r in reasons if not r.startswith("unfamiliar_document:")]
    reasons += [f"einvoice_mismatch:{pointer}" for pointer in mismatched]
    reasons += [
        f"invalid_identifier:{pointer}"
        for pointer, mapped in found.provenance.items()
        if identifier_problem(mapped.code, mapped.value.value) is not None
        and f"unparsed:{pointer}" not in reasons
    ]
    if not found.report["valid"]:
        reasons.append(f"einvoice_invalid:{len(found.report['violations'])}")
    present = [f["confidence"] for f in trust.fields.values() if f["confidence"] is not None]
    trust.confidence = round(min(present), 4) if present else None
    return reasons


def _values_of(invoice: EInvoice) -> list[str]:
    rows = [invoice.terms, *invoice.vat_breakdown, *invoice.lines]
    return [value.value for row in rows for value in row.values()]


def _contradicts(page: Any, xml: str, kind: Kind, day_first: bool | None, others: list[str]) -> bool:
    """The page's reading is another value than the XML's, and not one the XML holds elsewhere
    (then the page reader took the wrong line, e.g. one VAT rate's tax for the total)."""
    read = normalize(page, kind, day_first=day_first)
    if read.status != "ok":  # nothing, or nothing readable: no evidence against the XML
        return False
    key = _key(read.value)
    same = [_key(normalize(value, kind).value) for value in (xml, *others)]
    return key != same[0] and key not in same[1:]


def _key(value: Any) -> Any:
    if isinstance(value, Decimal):
        return value.quantize(CENT)
    if isinstance(value, str):
        return "".join(value.split()).casefold()
    return value


def _kind(reason: str) -> str:
    return reason.partition(":")[0]


def _about(reason: str, pointers: set[str]) -> bool:
    _, _, detail = reason.partition(":")
    return any(detail == p or detail.startswith(p + ":") for p in pointers)


def _any_page_values(trust: Assessment, from_xml: set[str]) -> bool:
    return any(p not in from_xml and f["raw_text"] is not None for p, f in trust.fields.items())
