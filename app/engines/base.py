"""The extraction engine interface: a page image, a prompt and a decoding schema in; generated JSON
text with per-token log-probabilities out. Every engine passes the same contract tests
(``tests/contract/test_engines.py``).

Token offsets are byte offsets into the UTF-8 encoding of ``EngineResult.text``: tokens can split a
multi-byte character, and byte offsets are what both SGLang (``logprobs.content[].bytes``) and a
byte-level tokenizer report exactly.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Literal

from PIL import Image

from app.documents.textmap import PageMap
from app.trust.sources import Remembered

FinishReason = Literal["stop", "length"]


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    token: str
    start: int
    """Byte offset of the token's first byte in the UTF-8 text."""
    end: int
    """Byte offset one past the token's last byte."""
    logprob: float
    """Natural log of the token's probability after the grammar mask (as SGLang reports it)."""


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class EngineRequest:
    image: Image.Image
    prompt: str
    decoding_schema: dict[str, Any]
    """The JSON Schema the grammar enforces (already translated: see app.schema.decoding)."""
    max_tokens: int = 4096
    document_id: str | None = None
    """Which document the page belongs to (the replay engine looks recordings up by it)."""
    page: int = 1
    schema: dict[str, Any] | None = None
    """The registered schema, with the annotations decoding drops (``x-aliases``, ``x-checks``):
    for engines that read the text map instead of the image."""
    page_map: PageMap | None = None
    """The page's words and regions (text layer or OCR); model engines read the image instead."""
    memory: dict[str, Remembered] | None = None
    """Sender memory: by JSON Pointer, the values this page prints where an approved document of
    the same sender printed them. The layout engine reads them as its strongest candidates; model
    engines ignore them (the trust layer cross-checks their answer)."""


@dataclass(frozen=True, slots=True)
class Alternative:
    """A reading the engine considered for a value and did not choose: the runner-up a reviewer
    sees, and a doubt on the chosen value when it was nearly as likely."""

    value: Any
    score: float
    """On the scale of the chosen value's token probability."""


@dataclass(frozen=True)
class EngineResult:
    text: str
    tokens: list[TokenLogprob]
    finish_reason: FinishReason
    usage: Usage
    model: str
    extra: dict[str, Any] = field(default_factory=dict)
    fallback_from: str | None = None
    """Set when a fallback engine read the page because this engine (its name) could not."""
    alternatives: dict[str, list[Alternative]] = field(default_factory=dict)
    """Runner-up readings by JSON Pointer into the page's output, best first (engines that rank
    candidates report them; a model engine may leave this empty)."""
    from_memory: frozenset[str] = frozenset()
    """The pointers whose value the engine took from ``EngineRequest.memory``."""


class EngineError(Exception):
    """An engine failed. ``category`` is public (problem types map from it); ``retryable`` says whether
    the same request may succeed later (overload, connection loss) or never will (bad schema)."""

    def __init__(self, message: str, *, category: str, retryable: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.category = category
        self.retryable = retryable
        self.status = status


class Engine(ABC):
    name: str
    model: str
    needs_image: bool = True
    """False for engines that read ``EngineRequest.page_map`` only: they get a placeholder image."""

    @abstractmethod
    async def generate(self, request: EngineRequest) -> EngineResult:
        """One page. Raises ``EngineError``; a truncated generation (``finish_reason == "length"``) is
        returned as such and the caller classifies it."""

    async def ready(self) -> dict[str, Any]:
        """Readiness details (reachable, model served). Raises ``EngineError`` when not ready."""
        return {"engine": self.name, "model": self.model}

    async def aclose(self) -> None:  # noqa: B027 - most engines hold nothing to release
        """Release connections, models, workers."""
