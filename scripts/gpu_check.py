"""GLM-OCR at its real size on a GPU, through the transformers engine with the llguidance grammar.

    python scripts/gpu_check.py                       # CUDA, bfloat16, full-size random weights
    python scripts/gpu_check.py --pages 16 --max-tokens 512
    python scripts/gpu_check.py --tiny                # CPU smoke test with the tiny test model

No network and no SGLang: the model is built from a full-size configuration with random weights (the
real checkpoint's shapes: CogViT 24 x 1024 vision encoder, GLM decoder 16 x 1536 with 16/8 heads of
128, vocabulary 59,392; ``GlmOcrConfig()``'s text defaults are smaller, 1024 wide, so they are
overridden), the tokenizer is a synthetic byte-level BPE of the real size with GLM-OCR's special-token
ids, and the processor is the real ``Glm46VProcessor`` with GLM-OCR's image limits. Pages are drawn
invoices at A4/200 DPI (about 4,900 image tokens, as in production). The prompt and decoding schema are
the production ones for the built-in invoice schema. Random weights make the text meaningless and most
pages run to ``--max-tokens``: the numbers are throughput at that length, pages/s and peak GPU memory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Literal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import llguidance
import torch
import transformers
from jsonschema import Draft202012Validator
from PIL import Image, ImageDraw, ImageFont
from transformers import (
    Glm46VImageProcessor,
    Glm46VProcessor,
    Glm46VVideoProcessor,
    GlmOcrConfig,
    GlmOcrForConditionalGeneration,
)

from app.engines.base import EngineRequest, EngineResult
from app.engines.constrained import masked_logprobs
from app.engines.transformers_engine import TransformersConfig, TransformersEngine
from app.extraction.prompt import extraction_prompt
from app.schema.decoding import decoding_schema
from tests.tiny_glm import CHAT_TEMPLATE, build_glm_scale_tokenizer, build_tiny_glm

ROOT = Path(__file__).resolve().parents[1]

# GLM-OCR's checkpoint (zai-org/GLM-OCR config.json): the text model differs from GlmOcrTextConfig's
# defaults (hidden 1024, intermediate 4096, head_dim 64, mrope [8, 12, 12]); the vision defaults match.
TEXT_CONFIG: dict[str, Any] = {
    "vocab_size": 59392,
    "hidden_size": 1536,
    "intermediate_size": 4608,
    "num_hidden_layers": 16,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "max_position_embeddings": 131072,
    "rms_norm_eps": 1e-05,
    "rope_parameters": {
        "rope_type": "default",
        "rope_theta": 10000.0,
        "mrope_section": [16, 24, 24],
        "partial_rotary_factor": 1.0,
    },
    "eos_token_id": [59246, 59253],
    "pad_token_id": 59246,
}
VISION_CONFIG: dict[str, Any] = {
    "depth": 24,
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_heads": 16,
    "out_hidden_size": 1536,
    "patch_size": 14,
    "spatial_merge_size": 2,
    "temporal_patch_size": 2,
}
# GLM-OCR's preprocessor: at least 112x112 pixels, at most 12,288 image tokens (28x28 pixels each).
IMAGE_SIZE = {"shortest_edge": 112 * 112, "longest_edge": 12288 * 28 * 28}


def full_size() -> tuple[Any, Any]:
    """Config and processor of the real model (weights random, tokenizer synthetic)."""
    config = GlmOcrConfig(text_config=TEXT_CONFIG, vision_config=VISION_CONFIG)
    processor = Glm46VProcessor(  # type: ignore[no-untyped-call]
        image_processor=Glm46VImageProcessor(size=IMAGE_SIZE),
        tokenizer=build_glm_scale_tokenizer(),
        video_processor=Glm46VVideoProcessor(),
        chat_template=CHAT_TEMPLATE,
    )
    return config, processor


def build_model(config: Any, device: str, dtype: torch.dtype) -> Any:
    """Random initialisation directly on the device in the target dtype (seconds on a GPU)."""
    torch.manual_seed(0)
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = GlmOcrForConditionalGeneration(config)
    finally:
        torch.set_default_dtype(default)
    model.generation_config.eos_token_id = list(TEXT_CONFIG["eos_token_id"])
    model.eval()  # type: ignore[no-untyped-call]
    return model


def _count(n: int) -> str:
    return f"{n / 1e6:.1f} M" if n >= 1e6 else f"{n / 1e3:.1f} k"


def parameter_report(model: Any) -> str:
    vision = sum(p.numel() for p in model.model.visual.parameters())
    text = sum(p.numel() for p in model.model.language_model.parameters())
    embeddings = model.model.language_model.embed_tokens.weight.numel()
    head = model.lm_head.weight.numel()
    total = vision + text + head
    return (
        f"parameters: vision {_count(vision)}, text decoder {_count(text - embeddings)} "
        f"+ embeddings {_count(embeddings)} + lm_head {_count(head)} = {_count(total)}"
    )


def draw_page(number: int, width: int, height: int) -> Image.Image:
    """An invoice-like page: header, parties, a line-item table and totals, in black on white."""
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    size = max(8, height // 60)
    font = ImageFont.load_default(size=size)
    margin, y = width // 12, height // 14
    lines = [
        f"INVOICE  INV-2024-{number:04d}",
        f"Date: 2024-03-{1 + number % 28:02d}    Due: 2024-04-{1 + number % 28:02d}",
        "Müller & Söhne GmbH, Hauptstraße 12, 10115 Berlin, VAT DE123456789",
        "Bill to: Example Trading Ltd, 1 Market Street, London",
        "",
        "Description                 Qty    Unit price    Amount",
    ]
    lines += [
        f"Item {i + 1} consulting services      {i + 1}      {95 + i}.00      {(i + 1) * (95 + i)}.00"
        for i in range(8)
    ]
    lines += [
        "",
        "Subtotal 4,380.00   VAT 19% 832.20   Total 5,212.20 EUR",
        "IBAN DE89 3704 0044 0532 0130 00",
    ]
    for line in lines:
        draw.text((margin, y), line, fill="black", font=font)
        y += int(size * 1.8)
        if y > height - margin:
            break
    return image


def check(result: EngineResult, schema: dict[str, Any]) -> None:
    """The engine contract: offsets tile the UTF-8 text; a stopped generation is valid JSON."""
    position = 0
    for token in result.tokens:
        assert token.start == position, token
        assert token.end > token.start, token
        position = token.end
    assert position == len(result.text.encode("utf-8"))
    if result.finish_reason == "stop":
        Draft202012Validator(schema).validate(json.loads(result.text))


def grammar_cost_us(engine: TransformersEngine, schema: dict[str, Any], token_ids: list[int]) -> float:
    """Median per-token cost of the grammar path on the engine's device: mask, transfer, unpack,
    masked log_softmax over the full logits, the token read back, consumed."""
    loaded = engine._loaded
    assert loaded is not None
    matcher = loaded.compiler.compile(schema).matcher()
    logits = torch.randn(loaded.compiler.vocab_size, device=loaded.device)
    samples = []
    for token in token_ids:
        if loaded.device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        scores = masked_logprobs(logits, matcher.allowed_mask(loaded.device))
        float(scores[token].item())
        matcher.consume(token)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e6 if samples else float("nan")


async def run(args: argparse.Namespace) -> None:
    device = args.device or ("cpu" if args.tiny else "cuda")
    dtype_name: Literal["float32", "bfloat16", "float16"] = args.dtype or (
        "float32" if device == "cpu" else "bfloat16"
    )
    dtype = getattr(torch, dtype_name)
    cuda = device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        sys.exit("CUDA is not available: run with --tiny (CPU) or on a GPU machine")
    name = torch.cuda.get_device_name(device) if cuda else "cpu"
    print(
        f"torch {torch.__version__}, transformers {transformers.__version__}, "
        f"llguidance {llguidance.__version__}; device {name}, {dtype_name}"
    )

    started = time.perf_counter()
    if args.tiny:
        model, processor = build_tiny_glm()
        width, height = args.page_size or (112, 140)
    else:
        config, processor = full_size()
        model = build_model(config, device, dtype)
        width, height = args.page_size or (1654, 2339)  # A4 at 200 DPI
    print(f"model built in {time.perf_counter() - started:.1f} s; {parameter_report(model)}")

    engine = TransformersEngine.from_components(
        model,
        processor,
        TransformersConfig(
            model="tiny" if args.tiny else "glm-ocr-full-size-random", device=device, dtype=dtype_name
        ),
    )
    registered = json.loads((ROOT / "schemas" / "invoice.json").read_text(encoding="utf-8"))
    schema = decoding_schema(registered)
    prompt = extraction_prompt(registered)
    pages = [draw_page(i, width, height) for i in range(args.pages)]

    started = time.perf_counter()
    warm = await engine.generate(EngineRequest(pages[0], prompt, schema, max_tokens=8))  # compile + warm-up
    print(
        f"warm-up (grammar compile, first prefill): {time.perf_counter() - started:.2f} s; "
        f"prompt {warm.usage.prompt_tokens} tokens for a {width}x{height} page"
    )

    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    requests = [EngineRequest(page, prompt, schema, max_tokens=args.max_tokens) for page in pages]
    started = time.perf_counter()
    results = await asyncio.gather(*(engine.generate(r) for r in requests))
    elapsed = time.perf_counter() - started
    for result in results:
        check(result, schema)

    completion = sum(r.usage.completion_tokens for r in results)
    prompt_tokens = sum(r.usage.prompt_tokens for r in results)
    reasons = {reason: sum(r.finish_reason == reason for r in results) for reason in ("stop", "length")}
    print(
        f"{len(results)} pages in {elapsed:.2f} s: {len(results) / elapsed:.3f} pages/s, "
        f"{completion / elapsed:.1f} generated tokens/s "
        f"({elapsed * 1000 / max(completion, 1):.1f} ms/token incl. prefill); "
        f"prompt {prompt_tokens / len(results):.0f} tokens/page, "
        f"generated {completion / len(results):.0f} tokens/page, finish {reasons}"
    )
    token_ids = results[0].extra.get("token_ids", [])
    print(f"grammar path per token on {device}: {grammar_cost_us(engine, schema, token_ids):.0f} us (median)")
    if cuda:
        gib = 1024**3
        print(
            f"peak GPU memory: {torch.cuda.max_memory_allocated() / gib:.2f} GiB allocated, "
            f"{torch.cuda.max_memory_reserved() / gib:.2f} GiB reserved"
        )
    print(f"sample output ({results[0].finish_reason}): {results[0].text[:160]!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="the tiny test model on the CPU (smoke test)")
    parser.add_argument("--pages", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--device", help="default: cuda (cpu with --tiny)")
    parser.add_argument(
        "--dtype", choices=["float32", "bfloat16", "float16"], help="default: bfloat16 on CUDA"
    )
    parser.add_argument(
        "--page-size",
        type=lambda s: tuple(int(v) for v in s.split("x")),
        help="WIDTHxHEIGHT in pixels (default 1654x2339, A4 at 200 DPI; 112x140 with --tiny)",
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
