"""Party names and addresses as printed in a document's header block: legal forms, document titles
beside the name, and the lines that still belong to an address."""

from __future__ import annotations

import re

from app.engines.layout.fields import fold
from app.engines.layout.labels import PART_BREAK
from app.engines.layout.lexicon import ADDRESS_WORDS, LEGAL_SUFFIXES, REGIONS, TITLE_WORDS
from app.engines.layout.values import HAS_DIGIT

_TRAILING_REGISTRATION = re.compile(r"\s*[(\uff08][^()\uff08\uff09]*\d[^()\uff08\uff09]*[)\uff09]?\s*$")


POSTCODE = re.compile(r"(?<![\d-])\d{5}(?![\d-])")


def is_legal(folded: str) -> bool:
    padded = f" {folded} "
    return any(f" {fold(suffix)} " in padded for suffix in LEGAL_SUFFIXES)


def party_name(text: str) -> str:
    """A company name as printed, without the document title beside it ("ACME Ltd Invoice") or the
    address after a dash or bar ("QualityHosting AG - Uferweg 40")."""
    parts = [p.strip(" ,") for p in PART_BREAK.split(text) if p.strip(" ,")]
    text = next((p for p in parts if is_legal(fold(p))), parts[0] if parts else "")
    words = text.split()
    while words and fold(words[-1]) in TITLE_WORDS:
        words.pop()
    while words and fold(words[0]) in TITLE_WORDS:
        words.pop(0)
    return _TRAILING_REGISTRATION.sub("", " ".join(words)).strip(" ,")


def addressy(text: str) -> bool:
    """Whether a line reads as part of an address: a street word with a number, or a postcode."""
    folded = f" {fold(text)} "
    return bool(POSTCODE.search(text)) or (
        bool(HAS_DIGIT.search(text)) and any(f" {w} " in folded for w in ADDRESS_WORDS)
    )


def region_line(text: str) -> bool:
    """A line after the postcode that still belongs to the address: the state or the country."""
    words = fold(text).split()
    return bool(words) and not HAS_DIGIT.search(text) and sum(w in REGIONS for w in words) * 2 >= len(words)


def starts_with_legal_form(name: str) -> bool:
    folded = fold(name)
    return any(folded.startswith(fold(suffix)) for suffix in LEGAL_SUFFIXES) or folded.startswith("co ")
