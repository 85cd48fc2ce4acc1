"""Where an extracted value came from, as the trust layer receives it: its page and how certain
the engine's tokens were. Extraction builds these (``app.extraction.spans``, ``.merge``); they are
defined here so the trust layer depends on nothing above it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class TokenEvidence:
    """The minimum and mean probability over a value's free tokens, and how many there were."""

    min: float
    mean: float
    tokens: int


@dataclass(frozen=True, slots=True)
class Rival:
    """Another value the engine read for the field (a runner-up on the page, or another page's
    reading), with its certainty on the scale of ``TokenEvidence.min``."""

    value: Any
    score: float
    page: int


@dataclass(frozen=True)
class FieldSource:
    page: int
    pointer: str
    """Where the value was in its page's output."""
    evidence: TokenEvidence | None
    rivals: tuple[Rival, ...] = ()
