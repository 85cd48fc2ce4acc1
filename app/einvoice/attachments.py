"""The one attachment of a PDF the service reads: the invoice XML a Factur-X / ZUGFeRD / XRechnung
PDF declares under its standard name. Every other attachment stays unread (``app.documents.ingest``
never opens any).

PyMuPDF is not thread-safe: call these in the PDF thread (``app.documents.pdf_thread``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pymupdf

STANDARD_NAMES = frozenset(
    {
        "factur-x.xml",  # Factur-X 1.0, ZUGFeRD 2.1+
        "zugferd-invoice.xml",  # ZUGFeRD 2.0 (1.0 wrote ZUGFeRD-invoice.xml)
        "xrechnung.xml",  # XRechnung in a PDF (ZUGFeRD 2.1+ "XRECHNUNG" profile)
    }
)
"""Lower case: names are compared without case."""
RELATIONSHIPS = frozenset({"Data", "Alternative", "Source"})
"""What PDF/A-3 ``/AFRelationship`` values Factur-X allows for the invoice (``Alternative`` in
Germany); an attachment declared as anything else (``Supplement``, ...) is not the invoice."""


@dataclass(frozen=True)
class InvoiceAttachment:
    name: str
    relationship: str | None
    """The declared ``/AFRelationship`` (``Data``, ``Alternative``, ``Source``); None when the PDF
    has no ``/AF`` entry for it (ZUGFeRD 1.0 PDFs often have none)."""
    size: int
    data: bytes | None
    """None when the attachment is larger than the limit (nothing of it was read)."""


def _relationships(document: pymupdf.Document) -> dict[str, str]:
    """File name (lower case) -> ``/AFRelationship`` of the catalogue's associated files."""
    catalog = document.pdf_catalog()
    kind, value = document.xref_get_key(catalog, "AF")
    if kind == "xref":
        value = document.xref_object(int(value.split()[0]))
    elif kind != "array":
        return {}
    found: dict[str, str] = {}
    for xref in (int(x) for x in re.findall(r"(\d+)\s+\d+\s+R", value)):
        relationship = document.xref_get_key(xref, "AFRelationship")
        for key in ("UF", "F"):
            name_kind, name = document.xref_get_key(xref, key)
            if name_kind == "string" and relationship[0] == "name":
                found[name.lower()] = relationship[1].lstrip("/")
    return found


def invoice_attachment(
    data: bytes, password: str | None = None, *, max_bytes: int
) -> InvoiceAttachment | None:
    """The standard invoice attachment of the PDF ``data``, or None (not a PDF the service can
    open, no such attachment, or one declared with another relationship)."""
    try:
        document = pymupdf.open(stream=data, filetype="pdf")
    except Exception:  # the page pipeline reports what is wrong with the file; here it is just "no XML"
        return None
    try:
        if document.needs_pass and not (password and document.authenticate(password)):
            return None
        if not document.embfile_count():
            return None
        relationships = _relationships(document)
        for name in document.embfile_names():
            info = document.embfile_info(name)
            names = {str(info.get(k) or "").lower() for k in ("ufilename", "filename", "name")}
            standard = sorted(names & STANDARD_NAMES)
            if not standard:
                continue
            relationship = next((relationships[n] for n in standard if n in relationships), None)
            if relationship is not None and relationship not in RELATIONSHIPS:
                continue
            size = int(info.get("size") or 0)
            body = document.embfile_get(name) if size <= max_bytes else None
            if body is not None and len(body) > max_bytes:
                body = None
            return InvoiceAttachment(str(info.get("ufilename") or name), relationship, size, body)
        return None
    finally:
        document.close()
