"""The llguidance grammar on the tiny byte-level tokenizer: masks admit only valid continuations, stop
tokens only after a complete document, compiled grammars are cached per (tokenizer, schema), and
log-probabilities are taken after the mask (a forced token comes out at log-probability 0)."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("llguidance")

from jsonschema import Draft202012Validator  # noqa: E402

from app.engines.constrained import (  # noqa: E402
    GrammarCompiler,
    GrammarError,
    GrammarMatcher,
    compiler_for,
    masked_logprobs,
    schema_key,
)
from tests.tiny_glm import build_tokenizer, stop_token_ids  # noqa: E402

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "n": {"type": ["integer", "null"], "minimum": 0, "maximum": 12},
        "größe": {"enum": ["ü€中", "x"]},
        "ok": {"type": "boolean"},
    },
    "required": ["n", "größe", "ok"],
    "additionalProperties": False,
}
# Every document SCHEMA admits in compact JSON, keys in schema order.
DOCUMENTS = {
    json.dumps({"n": n, "größe": e, "ok": ok}, ensure_ascii=False, separators=(",", ":")).encode()
    for n in [None, *range(13)]
    for e in ("ü€中", "x")
    for ok in (True, False)
}


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return build_tokenizer()


@pytest.fixture(scope="module")
def compiler(tokenizer: Any) -> GrammarCompiler:
    return GrammarCompiler(tokenizer, stop_token_ids=stop_token_ids(tokenizer))


def _allowed(matcher: GrammarMatcher) -> list[int]:
    return [int(i) for i in torch.nonzero(matcher.allowed_mask()).flatten()]


def test_masks_allow_only_valid_continuations(compiler: GrammarCompiler) -> None:
    """Random walks through the mask: every allowed token extends a prefix of some valid document, a stop
    token is allowed exactly when the bytes so far are a whole document, and every walk ends in one."""
    stops = compiler.stop_token_ids
    rng = random.Random(7)
    reached = set()
    for _ in range(60):
        matcher = compiler.compile(SCHEMA).matcher()
        prefix = b""
        for _step in range(64):
            allowed = _allowed(matcher)
            assert allowed, prefix
            for token in allowed:
                if token in stops:
                    assert prefix in DOCUMENTS
                else:
                    extended = prefix + compiler.token_bytes(token)
                    assert any(doc.startswith(extended) for doc in DOCUMENTS), extended
            if prefix in DOCUMENTS:
                assert stops <= set(allowed)
            choice = rng.choice([t for t in allowed if t not in stops] or allowed)
            if choice in stops:
                break
            matcher.consume(choice)
            prefix += compiler.token_bytes(choice)
            if matcher.is_stopped():
                assert matcher.is_accepting()
                assert set(_allowed(matcher)) == stops
                break
        assert prefix in DOCUMENTS
        Draft202012Validator(SCHEMA).validate(json.loads(prefix))
        reached.add(prefix)
    assert len(reached) > 10  # the walks explored the choices, not one path


def test_disallowed_token_is_masked_and_rejected(compiler: GrammarCompiler, tokenizer: Any) -> None:
    matcher = compiler.compile(SCHEMA).matcher()
    close = tokenizer.convert_tokens_to_ids("}")
    assert not matcher.allowed_mask()[close]
    for stop in compiler.stop_token_ids:
        assert not matcher.allowed_mask()[stop]
    with pytest.raises(GrammarError):
        matcher.consume(close)
    assert matcher.is_error()


def test_apply_masks_logits_beyond_the_tokenizer(tokenizer: Any) -> None:
    """The model's logits may be wider than the tokenizer (GLM-OCR pads to 59,392): never allowed."""
    compiler = GrammarCompiler(
        tokenizer, vocab_size=len(tokenizer) + 40, stop_token_ids=stop_token_ids(tokenizer)
    )
    assert compiler.vocab_size == len(tokenizer) + 40
    matcher = compiler.compile(SCHEMA).matcher()
    logits = torch.zeros(compiler.vocab_size)
    matcher.apply(logits)
    assert torch.isinf(logits[len(tokenizer) :]).all()
    allowed = torch.isfinite(logits)
    assert allowed.sum() >= 1
    assert [compiler.token_bytes(int(t)) for t in torch.nonzero(allowed).flatten()] == [b'{"']


def test_compile_cache_hits_per_tokenizer_and_schema(tokenizer: Any) -> None:
    compiler = GrammarCompiler(tokenizer, stop_token_ids=stop_token_ids(tokenizer), cache_size=2)
    first = compiler.compile(SCHEMA)
    assert compiler.compile(copy.deepcopy(SCHEMA)) is first
    assert compiler.cache_info().hits == 1
    assert compiler.cache_info().misses == 1
    # Key order is part of the grammar (keys are emitted in schema order): a different grammar.
    reordered = {**SCHEMA, "properties": dict(reversed(list(SCHEMA["properties"].items())))}
    assert schema_key(reordered) != schema_key(SCHEMA)
    other = compiler.compile(reordered)
    assert other is not first
    # Least recently used goes first once the cache is full.
    compiler.compile({"type": "object"})
    assert compiler.compile(SCHEMA) is not first
    # One shared compiler per tokenizer object (and vocabulary/stop tokens).
    shared = compiler_for(tokenizer, stop_token_ids=stop_token_ids(tokenizer))
    assert compiler_for(tokenizer, stop_token_ids=stop_token_ids(tokenizer)) is shared
    assert shared.compile(SCHEMA) is shared.compile(copy.deepcopy(SCHEMA))
    assert compiler_for(build_tokenizer(), stop_token_ids=stop_token_ids(tokenizer)) is not shared


def test_logprobs_after_the_mask(compiler: GrammarCompiler, tokenizer: Any) -> None:
    """Along a valid document: masked log-probabilities normalise over the allowed tokens, disallowed
    ones are -inf, and a token the grammar forces has log-probability 0 whatever the logits say."""
    generator = torch.Generator().manual_seed(0)
    matcher = compiler.compile(SCHEMA).matcher()
    forced = 0
    for token in tokenizer.encode('{"n":7,"größe":"ü€中","ok":true}'):
        allowed = matcher.allowed_mask()
        logits = torch.randn(compiler.vocab_size, generator=generator) * 5
        logprobs = masked_logprobs(logits, allowed)
        assert allowed[token]
        assert torch.isinf(logprobs[~allowed]).all()
        assert float(torch.logsumexp(logprobs[allowed], dim=0)) == pytest.approx(0.0, abs=1e-5)
        if int(allowed.sum()) == 1:
            forced += 1
            assert float(logprobs[token]) == pytest.approx(0.0, abs=1e-6)
            assert float(torch.log_softmax(logits, dim=0)[token]) < -1.0  # unmasked, it was unlikely
        matcher.consume(token)
    assert matcher.is_stopped()
    assert forced >= 5


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "array", "uniqueItems": True},
        {"type": "object", "not": {"required": ["a"]}},
        {"type": "string", "format": "no-such-format"},
    ],
)
def test_unsupported_schemas_raise(compiler: GrammarCompiler, schema: dict[str, Any]) -> None:
    with pytest.raises(GrammarError):
        compiler.compile(schema)
