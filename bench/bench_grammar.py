"""What the llguidance grammar costs the transformers engine, on this machine, from one run.

    python bench/bench_grammar.py [--steps 3] [--hits 2000] [--threads 1]

For the built-in invoice schema, translated to its decoding schema (every leaf nullable, keys in
order, all required): compile time on a cache miss and on a hit, and the grammar's cost per generated
token (mask computed, unpacked and applied, log_softmax, the token consumed) against the forward pass
of the tiny GLM-OCR with its KV cache. The token sequence is a realistic filled invoice fed in as if
generated (teacher forcing), so keys, numbers, dates, strings and arrays all occur. Masks are timed on
the tiny vocabulary (624 tokens) and on a synthetic vocabulary of GLM-OCR's size (59,392 logits), since
mask cost grows with the vocabulary while the tiny model's forward pass does not.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from app.engines.constrained import GrammarCompiler, masked_logprobs
from app.engines.transformers_engine import TransformersConfig, TransformersEngine
from app.extraction.prompt import extraction_prompt
from app.schema.decoding import decoding_schema
from tests.tiny_glm import (
    GLM_SPECIAL_IDS,
    GLM_VOCAB_SIZE,
    build_glm_scale_tokenizer,
    build_tiny_glm,
    stop_token_ids,
)

ROOT = Path(__file__).resolve().parents[1]

INVOICE = {
    "invoice_number": "INV-2024-0042",
    "purchase_order_number": "PO-7781",
    "issue_date": "2024-03-15",
    "due_date": "2024-04-14",
    "delivery_date": None,
    "seller": {
        "name": "Müller & Söhne GmbH",
        "address": "Hauptstraße 12, 10115 Berlin, Deutschland",
        "vat_id": "DE123456789",
        "tax_id": None,
        "email": "rechnung@mueller-soehne.de",
        "phone": "+49 30 1234567",
    },
    "buyer": {
        "name": "北京科技有限公司",
        "address": "Chaoyang District, Beijing",
        "vat_id": None,
        "tax_id": None,
    },
    "currency": "EUR",
    "line_items": [
        {
            "description": "Beratung (Stunden)",
            "quantity": 12.5,
            "unit": "h",
            "unit_price": 95.0,
            "amount": 1187.5,
            "tax_rate": 19,
        },
        {
            "description": "Lizenz Software €",
            "quantity": 1,
            "unit": "pcs",
            "unit_price": 450.0,
            "amount": 450.0,
            "tax_rate": 19,
        },
        {
            "description": "Versand",
            "quantity": 1,
            "unit": None,
            "unit_price": 12.9,
            "amount": 12.9,
            "tax_rate": 7,
        },
    ],
    "subtotal": 1650.4,
    "tax_total": 312.43,
    "total": 1962.83,
    "payment_terms": "14 Tage 2 % Skonto, 30 Tage netto",
    "iban": "DE89370400440532013000",
    "bic": "COBADEFFXXX",
}


def median_us(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6


def compile_times(
    build: Any, schema: dict[str, Any], hits: int
) -> tuple[GrammarCompiler, float, float, float]:
    """(compiler, tokenizer setup s, median miss s, mean hit s): a miss is timed after clearing the
    cache, a hit on a copy of the schema (the key is built from its JSON each time)."""
    started = time.perf_counter()
    compiler: GrammarCompiler = build()
    setup = time.perf_counter() - started
    misses = []
    for _ in range(5):
        compiler.clear()
        started = time.perf_counter()
        compiler.compile(schema)
        misses.append(time.perf_counter() - started)
    same = copy.deepcopy(schema)
    started = time.perf_counter()
    for _ in range(hits):
        compiler.compile(same)
    hit = (time.perf_counter() - started) / hits
    return compiler, setup, statistics.median(misses), hit


def mask_costs(
    compiler: GrammarCompiler, schema: dict[str, Any], token_ids: list[int], steps: int
) -> tuple[list[float], list[float]]:
    """Seconds per token for everything the grammar adds to a decoding step, over the whole document:
    (mask computed and unpacked + token consumed, masked log_softmax over the logits)."""
    masks: list[float] = []
    softmaxes: list[float] = []
    generator = torch.Generator().manual_seed(0)
    for _ in range(steps):
        matcher = compiler.compile(schema).matcher()
        for token in token_ids:
            logits = torch.randn(compiler.vocab_size, generator=generator)
            started = time.perf_counter()
            allowed = matcher.allowed_mask()
            matcher.consume(token)
            middle = time.perf_counter()
            scores = masked_logprobs(logits, allowed)
            softmaxes.append(time.perf_counter() - middle)
            masks.append(middle - started)
            assert torch.isfinite(scores[token])
        assert matcher.is_stopped()
    return masks, softmaxes


def forward_costs(model: Any, processor: Any, token_ids: list[int], steps: int) -> list[float]:
    """Seconds per decoding step of the tiny model on its KV cache, teacher-forced on ``token_ids``."""
    engine = TransformersEngine.from_components(model, processor, TransformersConfig())
    loaded = engine._loaded
    assert loaded is not None
    from PIL import Image

    from app.engines.base import EngineRequest

    inputs = engine._inputs(
        loaded, EngineRequest(Image.new("RGB", (112, 140), "white"), "Text Recognition:", {})
    )
    samples: list[float] = []
    with torch.inference_mode():
        for _ in range(steps):
            output = model(**inputs, **{loaded.cache_kwarg: None}, use_cache=True, logits_to_keep=1)
            cache = output.cache if getattr(output, "cache", None) is not None else output.past_key_values
            for token in token_ids:
                started = time.perf_counter()
                output = model(
                    input_ids=torch.tensor([[token]]),
                    **{loaded.cache_kwarg: cache},
                    use_cache=True,
                    logits_to_keep=1,
                )
                output.logits[0, -1].float()
                samples.append(time.perf_counter() - started)
                cache = output.cache if getattr(output, "cache", None) is not None else output.past_key_values
    return samples


def main(steps: int, hits: int, threads: int) -> None:
    torch.set_num_threads(threads)
    registered = json.loads((ROOT / "schemas" / "invoice.json").read_text(encoding="utf-8"))
    schema = decoding_schema(registered)
    document = json.dumps(INVOICE, ensure_ascii=False, separators=(",", ":"))
    model, processor = build_tiny_glm()
    tiny_tokenizer = processor.tokenizer
    print(
        f"invoice decoding schema: {len(json.dumps(schema))} bytes; document {len(document.encode())} bytes; "
        f"prompt {len(extraction_prompt(registered))} chars; torch threads {torch.get_num_threads()}"
    )

    tiny_ids = tiny_tokenizer.encode(document)
    tiny_compiler, setup, miss, hit = compile_times(
        lambda: GrammarCompiler(tiny_tokenizer, stop_token_ids=stop_token_ids(tiny_tokenizer)), schema, hits
    )
    tiny_mask, tiny_softmax = (median_us(c) for c in mask_costs(tiny_compiler, schema, tiny_ids, steps))
    forward = median_us(forward_costs(model, processor, tiny_ids, steps))

    glm_tokenizer = build_glm_scale_tokenizer()
    glm_ids = glm_tokenizer.encode(document)
    stops = [GLM_SPECIAL_IDS["<|endoftext|>"], GLM_SPECIAL_IDS["<|user|>"]]
    glm_compiler, glm_setup, glm_miss, glm_hit = compile_times(
        lambda: GrammarCompiler(glm_tokenizer, vocab_size=GLM_VOCAB_SIZE, stop_token_ids=stops), schema, hits
    )
    glm_mask, glm_softmax = (median_us(c) for c in mask_costs(glm_compiler, schema, glm_ids, steps))

    print(f"tiny vocabulary ({len(tiny_tokenizer)} tokens, document = {len(tiny_ids)} tokens):")
    print(f"  llguidance tokenizer setup  {setup * 1e3:8.1f} ms (once per tokenizer)")
    print(f"  compile, cache miss         {miss * 1e3:8.2f} ms")
    print(f"  compile, cache hit          {hit * 1e6:8.1f} us   miss/hit = {miss / hit:,.0f}x")
    print(f"  mask + consume (median)     {tiny_mask:8.1f} us")
    print(f"  masked log_softmax (median) {tiny_softmax:8.1f} us")
    ratio = (tiny_mask + tiny_softmax) / forward
    print(f"  tiny model forward (median) {forward:8.1f} us   grammar/forward = {ratio:.3f}")
    print(f"GLM-OCR-size vocabulary ({GLM_VOCAB_SIZE} logits, synthetic; document = {len(glm_ids)} tokens):")
    print(f"  llguidance tokenizer setup  {glm_setup * 1e3:8.1f} ms (once per tokenizer)")
    print(f"  compile, cache miss         {glm_miss * 1e3:8.2f} ms")
    print(f"  compile, cache hit          {glm_hit * 1e6:8.1f} us   miss/hit = {glm_miss / glm_hit:,.0f}x")
    print(
        f"  mask + consume (median)     {glm_mask:8.1f} us   vs tiny vocabulary = {glm_mask / tiny_mask:.1f}x"
    )
    print(
        f"  masked log_softmax (median) {glm_softmax:8.1f} us   "
        f"grammar/tiny forward = {(glm_mask + glm_softmax) / forward:.3f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="passes over the document per measurement")
    parser.add_argument("--hits", type=int, default=2000, help="cache hits to time")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (the tiny model gains nothing from more)"
    )
    args = parser.parse_args()
    main(args.steps, args.hits, args.threads)
