"""Recognise a document by its first bytes; names and Content-Type headers are not trusted."""

from __future__ import annotations

import re
from typing import Literal

DocumentType = Literal["pdf", "png", "jpeg", "tiff", "webp", "xml"]
XML_START = re.compile(rb"^(?:\xef\xbb\xbf)?\s*<(?:\?xml\b|!--|!DOCTYPE\b|[A-Za-z_])")
"""An XML declaration, a comment, a document type (refused later) or an element first: an e-invoice
upload (UBL, CII); what it is exactly is for ``app.einvoice`` to say."""


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
    return "xml" if XML_START.match(head) else None
