"""Text, and the helpers every kind's reader shares: whitespace runs and accent-free folding."""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal
from typing import Any

SPACES = re.compile(r"[\s\u00a0\u2007\u2009\u202f]+")
"""Whitespace as printed: ordinary, no-break, figure, thin and narrow no-break spaces."""


def fold(word: str) -> str:
    """Lower-case without accents, so März/Marz/MÄRZ and août/aout are one key."""
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def read_text(raw: Any) -> str | None:
    """Stripped text with whitespace runs collapsed; numbers are written as text (str)."""
    if isinstance(raw, int | float | Decimal):
        return str(raw)
    if not isinstance(raw, str):
        return None
    return SPACES.sub(" ", raw).strip() or None
