"""Where an extracted value came from, as the trust layer receives it: its page and how certain
the engine's tokens were. Extraction builds these (``app.extraction.spans``, ``.merge``); they are
defined here so the trust layer depends on nothing above it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.pages import BBox
from app.schema.kinds import Kind


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


@dataclass(frozen=True, slots=True)
class Remembered:
    """A value found where an approved document of the same sender printed this field (sender
    memory, :mod:`app.memory`): the layout engine reads it as its strongest candidate, the trust
    layer cross-checks every engine's value with it."""

    text: str
    """The words at the remembered place, as printed."""
    page: int
    bbox: BBox
    score: float
    """How sure the recall is: the label found again, the value where it stood, in the format."""
    kind: Kind
    day_first: bool | None = None
    """The sender's day/month order, when its approved document settled it."""
    anchor: str = "label"
    """``label`` (found beside or under its label), ``page`` (where it stood on the page)."""
