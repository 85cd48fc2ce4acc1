"""Recognise a document by its first bytes; names and Content-Type headers are not trusted."""

from __future__ import annotations

import codecs
from typing import Literal

DocumentType = Literal["pdf", "png", "jpeg", "tiff", "webp", "xml"]


def detect_type(head: bytes) -> DocumentType | None:
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    # PDF readers accept the header anywhere in the first KiB (some generators prepend junk).
    if b"%PDF-" in head[:1024]:
        return "pdf"
    return "xml" if looks_like_xml(head) else None


def looks_like_xml(head: bytes) -> bool:
    """Whether an upload's first bytes start an XML document (an e-invoice: UBL, CII; what it is
    exactly is for ``app.einvoice`` to say): after a BOM and white space, ``<?xml``, a comment or a
    document type (refused when parsed), or ``<`` and a name."""
    text = prolog_text(head[:1024]).lstrip(" \t\r\n")
    if text.startswith(("<?xml", "<!--", "<!DOCTYPE")):
        return True
    return len(text) > 1 and text[0] == "<" and (text[1].isalpha() or text[1] in "_:")


def prolog_text(data: bytes) -> str:
    """The start of an XML document as text, in the encoding its BOM or first bytes say (so UTF-16
    cannot hide markup from a check)."""
    for bom, encoding in (
        (codecs.BOM_UTF32_LE, "utf-32-le"),
        (codecs.BOM_UTF32_BE, "utf-32-be"),
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ):
        if data.startswith(bom):
            return data[len(bom) :].decode(encoding, errors="replace")
    if data.startswith(b"<\x00\x00\x00"):
        return data.decode("utf-32-le", errors="replace")
    if data.startswith(b"\x00\x00\x00<"):
        return data.decode("utf-32-be", errors="replace")
    if data.startswith(b"<\x00"):
        return data.decode("utf-16-le", errors="replace")
    if data.startswith(b"\x00<"):
        return data.decode("utf-16-be", errors="replace")
    return data.decode("latin-1")  # markup is ASCII in every ASCII-compatible encoding
