"""Grammar-constrained decoding for the in-process engine, with llguidance.

A JSON Schema is compiled once per (tokenizer, schema) into an llguidance matcher in its initial
state; each generation works on a cheap deep copy of it. Per step the matcher fills a token bitmask
(on the CPU, in Rust, without the GIL), the mask is applied to the logits (disallowed -> -inf) and
log-probabilities are taken from the masked distribution, as SGLang reports them: a token the grammar
forces comes out with log-probability 0, and only free choices carry information.

The stop tokens are llguidance's end-of-sequence tokens, so it allows them only where the JSON is
complete; once the JSON is closed (the matcher is stopped) nothing but a stop token is allowed.

llguidance rejects schema keywords it cannot enforce (``not``, ``uniqueItems``, unknown formats...):
compilation raises ``GrammarError`` instead of silently decoding a looser grammar.
"""

from __future__ import annotations

import json
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import llguidance
import llguidance.hf
import numpy as np
import torch
from llguidance import LLMatcher, LLTokenizer

CACHE_SIZE = 64


class GrammarError(ValueError):
    """The schema cannot be compiled into a grammar, or decoding left the grammar."""


@dataclass(frozen=True)
class CacheInfo:
    hits: int
    misses: int
    size: int


def schema_key(schema: Mapping[str, Any] | str, whitespace_pattern: str | None = None) -> str:
    """The cache key of a schema: compact JSON that keeps key order. Not RFC 8785: sorting keys would
    merge schemas whose ``properties`` differ only in order, yet the grammar emits keys in schema
    order, so their grammars differ."""
    text = (
        schema if isinstance(schema, str) else json.dumps(schema, ensure_ascii=False, separators=(",", ":"))
    )
    return text if whitespace_pattern is None else f"{text}\x00{whitespace_pattern}"


class CompiledGrammar:
    """One schema compiled for one tokenizer; ``matcher()`` starts a generation."""

    def __init__(self, compiler: GrammarCompiler, key: str, grammar: str, template: LLMatcher) -> None:
        self.compiler = compiler
        self.key = key
        self.grammar = grammar
        self._template = template
        # The initial mask is the same for every generation: computed once, here, which also moves the
        # first mask's warm-up (building lexer states, milliseconds for a large schema) to the cache miss.
        self.initial_bitmask = torch.zeros((compiler.vocab_size + 31) // 32, dtype=torch.int32)
        template.unsafe_compute_mask_ptr(self.initial_bitmask.data_ptr(), self.initial_bitmask.numel() * 4)
        if template.is_error():
            raise GrammarError(template.get_error())

    def matcher(self) -> GrammarMatcher:
        return GrammarMatcher(self)

    def _fresh(self) -> LLMatcher:
        return self._template.deep_copy()


class GrammarMatcher:
    """The grammar state of one generation: the next token's mask, then ``consume`` the chosen one."""

    def __init__(self, compiled: CompiledGrammar) -> None:
        self.compiled = compiled
        self.compiler = compiled.compiler
        self._matcher = compiled._fresh()
        self._bitmask = compiled.initial_bitmask.clone()
        self._started = False

    def fill_bitmask(self) -> torch.Tensor:
        """The next token's allowed set as llguidance's packed bitmask (int32 words, bit i of word w =
        token 32*w+i), on the CPU. The tensor is reused: copy it before the next call."""
        if self._matcher.is_error():
            raise GrammarError(self._matcher.get_error())
        if not self._started:
            return self._bitmask  # the compiled grammar's initial mask
        self._matcher.unsafe_compute_mask_ptr(self._bitmask.data_ptr(), self._bitmask.numel() * 4)
        return self._bitmask

    def allowed_mask(self, device: torch.device | str | None = None) -> torch.Tensor:
        """A bool tensor over the vocabulary: True where the grammar allows the token next."""
        return self.compiler.unpack(self.fill_bitmask(), device)

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        """Set the logits of disallowed tokens to -inf, in place (1-D logits over the model's vocabulary;
        positions past the grammar's vocabulary are disallowed too)."""
        allowed = self.allowed_mask(logits.device)
        if logits.shape[-1] > allowed.shape[0]:
            logits[allowed.shape[0] :] = float("-inf")
            logits = logits[: allowed.shape[0]]
        logits.masked_fill_(~allowed[: logits.shape[-1]], float("-inf"))
        return logits

    def consume(self, token_id: int) -> None:
        self._started = True
        if not self._matcher.consume_token(token_id):
            raise GrammarError(f"token {token_id} rejected: {self._matcher.get_error()}")

    def is_stopped(self) -> bool:
        """Nothing but a stop token may follow (the JSON is complete), or the matcher failed."""
        return self._matcher.is_stopped()

    def is_accepting(self) -> bool:
        """What was consumed so far is a complete document: a stop token is allowed."""
        return self._matcher.is_accepting()

    def is_error(self) -> bool:
        return self._matcher.is_error()

    def error(self) -> str:
        return self._matcher.get_error()

    def is_stop_token(self, token_id: int) -> bool:
        return token_id in self.compiler.stop_token_ids


class GrammarCompiler:
    """llguidance's view of one Hugging Face tokenizer, and the compiled schemas for it (LRU).

    ``vocab_size`` is the width of the model's logits, which may exceed the tokenizer's (GLM-OCR pads
    its embedding to 59,392); ids without a token are never allowed. ``stop_token_ids`` end generation
    and are allowed only when the JSON is complete.
    """

    def __init__(
        self,
        tokenizer: Any,
        *,
        vocab_size: int | None = None,
        stop_token_ids: Iterable[int] | None = None,
        cache_size: int = CACHE_SIZE,
    ) -> None:
        stops = sorted({int(t) for t in stop_token_ids}) if stop_token_ids is not None else None
        self.ll_tokenizer: LLTokenizer = llguidance.hf.from_tokenizer(
            tokenizer, n_vocab=vocab_size, eos_token=stops
        )
        self.vocab_size: int = self.ll_tokenizer.vocab_size
        self.stop_token_ids: frozenset[int] = frozenset(self.ll_tokenizer.eos_tokens)
        self.cache_size = cache_size
        self._cache: OrderedDict[str, CompiledGrammar] = OrderedDict()
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0
        self._shifts: dict[torch.device, torch.Tensor] = {}

    def compile(
        self, schema: Mapping[str, Any] | str, *, whitespace_pattern: str | None = None
    ) -> CompiledGrammar:
        """The compiled grammar of ``schema`` (JSON output without whitespace unless ``whitespace_pattern``
        allows some between tokens), from the cache when this tokenizer has seen the schema before."""
        key = schema_key(schema, whitespace_pattern)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                self._hits += 1
                return hit
            self._misses += 1
        compiled = self._compile(schema, key, whitespace_pattern)  # outside the lock: may take 100s of ms
        with self._lock:
            compiled = self._cache.setdefault(key, compiled)
            self._cache.move_to_end(key)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return compiled

    def _compile(
        self, schema: Mapping[str, Any] | str, key: str, whitespace_pattern: str | None
    ) -> CompiledGrammar:
        options: dict[str, Any] = {"whitespace_flexible": False}
        if whitespace_pattern is not None:
            options = {"whitespace_flexible": True, "whitespace_pattern": whitespace_pattern}
        try:
            grammar = LLMatcher.grammar_from_json_schema(
                schema if isinstance(schema, str) else dict(schema),
                defaults=options,  # type: ignore[arg-type]
            )
        except ValueError as exc:
            raise GrammarError(f"not a JSON schema: {exc}") from exc
        template = LLMatcher(self.ll_tokenizer, grammar, log_level=0)
        if template.is_error():
            raise GrammarError(template.get_error())
        return CompiledGrammar(self, key, grammar, template)

    def clear(self) -> None:
        """Forget the compiled schemas (the tokenizer setup is kept)."""
        with self._lock:
            self._cache.clear()

    def cache_info(self) -> CacheInfo:
        with self._lock:
            return CacheInfo(self._hits, self._misses, len(self._cache))

    def token_bytes(self, token_id: int) -> bytes:
        """The exact bytes a token stands for (part of a UTF-8 character for some byte-level tokens)."""
        return self.ll_tokenizer.decode_bytes([token_id])

    def unpack(self, bitmask: torch.Tensor, device: torch.device | str | None = None) -> torch.Tensor:
        """Packed int32 words -> bool per token id, on ``device``. On a GPU the packed words travel
        (vocab/8 bytes) and are unpacked there; on the CPU numpy unpacks them in a few microseconds
        (torch's threaded shift ops stall for milliseconds when the cores are busy)."""
        target = torch.device(device) if device is not None else bitmask.device
        if target.type == "cpu":
            packed = bitmask.cpu().numpy().view(np.uint8)
            bits = np.unpackbits(packed, bitorder="little")[: self.vocab_size]
            return torch.from_numpy(bits.view(np.bool_))
        shifts = self._shifts.get(target)
        if shifts is None:
            shifts = self._shifts.setdefault(target, torch.arange(32, dtype=torch.int32, device=target))
        words = bitmask.to(target, non_blocking=True)
        return ((words.unsqueeze(-1) >> shifts) & 1).reshape(-1)[: self.vocab_size].bool()


def masked_logprobs(logits: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """Log-probabilities (float32) of the distribution restricted to ``allowed`` tokens."""
    masked = logits.float().masked_fill(~allowed, float("-inf"))
    return torch.log_softmax(masked, dim=-1)


_COMPILERS: weakref.WeakKeyDictionary[Any, dict[tuple[int | None, tuple[int, ...] | None], GrammarCompiler]]
_COMPILERS = weakref.WeakKeyDictionary()
_COMPILERS_LOCK = threading.Lock()


def compiler_for(
    tokenizer: Any, *, vocab_size: int | None = None, stop_token_ids: Sequence[int] | None = None
) -> GrammarCompiler:
    """The shared compiler of this tokenizer object (building llguidance's tokenizer takes about a
    second for a real vocabulary), so that its schema cache is shared by everyone using the tokenizer."""
    key = (vocab_size, tuple(sorted(stop_token_ids)) if stop_token_ids is not None else None)
    with _COMPILERS_LOCK:
        per_tokenizer = _COMPILERS.setdefault(tokenizer, {})
        compiler = per_tokenizer.get(key)
        if compiler is None:
            compiler = GrammarCompiler(tokenizer, vocab_size=vocab_size, stop_token_ids=stop_token_ids)
            per_tokenizer[key] = compiler
        return compiler
