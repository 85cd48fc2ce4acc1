"""A tiny, randomly initialised GLM-OCR built entirely in code: a byte-level BPE tokenizer with the GLM
special tokens and GLM-OCR's chat template, the real ``Glm46VProcessor`` with small images, and a
``GlmOcrForConditionalGeneration`` of about 120 thousand parameters. Nothing is read from disk or
downloaded, so any test (or benchmark) can build the whole stack in about a second on a CPU.

Random weights say nothing about documents: these builders exist to drive the engine's contract
(prompt format, image tokens, M-RoPE positions, KV cache, grammar masking, byte offsets).
"""

from __future__ import annotations

import functools
import random
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    Glm46VImageProcessor,
    Glm46VProcessor,
    Glm46VVideoProcessor,
    GlmOcrConfig,
    GlmOcrForConditionalGeneration,
    PreTrainedTokenizerFast,
)

# GLM's special tokens in the order of the real vocabulary (59246 = <|endoftext|> ... 59281 = <|video|>
# there); here they come first, so their ids are small but their roles are the same.
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "[MASK]",
    "[gMASK]",
    "[sMASK]",
    "<sop>",
    "<eop>",
    "<|system|>",
    "<|user|>",
    "<|assistant|>",
    "<|observation|>",
    "<|begin_of_image|>",
    "<|end_of_image|>",
    "<|begin_of_video|>",
    "<|end_of_video|>",
    "<|image|>",
    "<|video|>",
)
STOP_TOKENS = ("<|endoftext|>", "<|user|>")
"""GLM-OCR stops on either (its generation config's eos_token_id is [59246, 59253])."""

# GLM-OCR's chat template (GLM-4.1V family): `[gMASK]<sop>`, then `<|user|>` and a newline, the image
# placeholder, the prompt text, and `<|assistant|>` plus a newline as the generation prompt.
CHAT_TEMPLATE = (
    "[gMASK]<sop>"
    "{%- for msg in messages %}"
    "{%- if msg.role == 'system' %}<|system|>\n{{ msg.content }}"
    "{%- elif msg.role == 'user' %}<|user|>{{ '\\n' }}"
    "{%- if msg.content is string %}{{ msg.content }}"
    "{%- else %}{%- for item in msg.content %}"
    "{%- if item.type == 'video' or 'video' in item %}<|begin_of_video|><|video|><|end_of_video|>"
    "{%- elif item.type == 'image' or 'image' in item %}<|begin_of_image|><|image|><|end_of_image|>"
    "{%- elif item.type == 'text' %}{{ item.text }}"
    "{%- endif %}{%- endfor %}{%- endif %}"
    "{%- elif msg.role == 'assistant' %}<|assistant|>\n{{ msg.content }}"
    "{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

_CORPUS = (
    '{"invoice_number": "INV-2024-0042", "issue_date": "2024-03-15", "due_date": null, "total": 1234.50}',
    '{"seller": {"name": "Müller GmbH", "address": "Hauptstraße 1, 10115 Berlin", "vat_id": "DE123456789"}}',
    '{"line_items": [{"description": "Beratung", "quantity": 2.5, "unit_price": 100.0, "amount": 250.0}]}',
    '{"currency": "EUR", "tax_rate": 19, "iban": "DE89370400440532013000", "bic": "COBADEFFXXX"}',
    '{"buyer": {"name": "中文公司", "email": "info@example.com", "phone": "+49 30 1234567"}}',
    '{"price": "€ 12,50", "größe": "groß", "naïve": true, "ok": false, "id": -17, "ratio": 0.5e-3}',
    "请按下列JSON格式输出图中信息: Text Recognition: Table Recognition: Formula Recognition:",
    "0123456789 0.00 1.5 -3 100 2024-01-31 1999-12-31 [] {} [{}] null true false",
    "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ ü € 中 ä ö ß é ñ",
)
VOCAB_SIZE = 640


@functools.cache
def _backend_tokenizer_json() -> str:
    """Train once per process (tens of milliseconds) and keep the serialised result."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(list(_CORPUS) * 4, trainer=trainer)
    return tokenizer.to_str()


def build_tokenizer() -> PreTrainedTokenizerFast:
    """A fresh byte-level BPE tokenizer (every byte is a token, so any UTF-8 text can be encoded)."""
    backend = Tokenizer.from_str(_backend_tokenizer_json())
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=backend,
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        chat_template=CHAT_TEMPLATE,
        extra_special_tokens={},
    )


def build_processor(tokenizer: PreTrainedTokenizerFast | None = None) -> Glm46VProcessor:
    """The real GLM-OCR processor class with images capped near 112x112 pixels, i.e. a dozen or so image
    tokens (28x28 pixels per token after the 2x2 merge)."""
    tokenizer = tokenizer if tokenizer is not None else build_tokenizer()
    size = {"shortest_edge": 28 * 28, "longest_edge": 2 * 112 * 112}
    image_processor = Glm46VImageProcessor(size=size)
    video_processor = Glm46VVideoProcessor(size=size)
    return Glm46VProcessor(  # type: ignore[no-untyped-call]
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=CHAT_TEMPLATE,
    )


def build_config(tokenizer: PreTrainedTokenizerFast) -> GlmOcrConfig:
    """Smallest GLM-OCR the architecture allows (DESIGN.md §4), with the tokenizer's special-token ids."""
    ids = {token: token_id(tokenizer, token) for token in SPECIAL_TOKENS}
    hidden = 32
    text_config: dict[str, Any] = {
        "vocab_size": len(tokenizer),
        "hidden_size": hidden,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 8,
        "max_position_embeddings": 4096,
        # mrope sections (temporal, height, width) sum to head_dim / 2.
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 1, 1]},
        "eos_token_id": [ids[token] for token in STOP_TOKENS],
        "pad_token_id": ids["<|endoftext|>"],
    }
    vision_config: dict[str, Any] = {
        "depth": 1,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_heads": 2,
        "out_hidden_size": hidden,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
    }
    return GlmOcrConfig(
        text_config=text_config,
        vision_config=vision_config,
        image_token_id=ids["<|image|>"],
        video_token_id=ids["<|video|>"],
        image_start_token_id=ids["<|begin_of_image|>"],
        image_end_token_id=ids["<|end_of_image|>"],
        video_start_token_id=ids["<|begin_of_video|>"],
        video_end_token_id=ids["<|end_of_video|>"],
    )


def build_model(tokenizer: PreTrainedTokenizerFast, seed: int = 0) -> GlmOcrForConditionalGeneration:
    """Random weights from a fixed seed, in eval mode, float32 on the CPU."""
    torch.manual_seed(seed)
    model = GlmOcrForConditionalGeneration(build_config(tokenizer))
    model.generation_config.eos_token_id = stop_token_ids(tokenizer)
    model.eval()  # type: ignore[no-untyped-call]
    return model


def build_tiny_glm(seed: int = 0) -> tuple[GlmOcrForConditionalGeneration, Glm46VProcessor]:
    """Model and processor sharing one tokenizer: what ``TransformersEngine.from_components`` takes."""
    processor = build_processor()
    return build_model(processor.tokenizer, seed=seed), processor


def token_id(tokenizer: PreTrainedTokenizerFast, token: str) -> int:
    found = tokenizer.convert_tokens_to_ids(token)
    assert isinstance(found, int), token
    return found


def stop_token_ids(tokenizer: PreTrainedTokenizerFast) -> list[int]:
    return [token_id(tokenizer, token) for token in STOP_TOKENS]


# -- a tokenizer with GLM-OCR's vocabulary size and special-token ids, for timing at full scale ----------

GLM_VOCAB_SIZE = 59392
"""Rows of GLM-OCR's embedding and lm_head (the tokenizer itself ends at 59,3xx; the rest is padding)."""
GLM_SPECIAL_IDS = {
    "<|endoftext|>": 59246,
    "[MASK]": 59247,
    "[gMASK]": 59248,
    "[sMASK]": 59249,
    "<sop>": 59250,
    "<eop>": 59251,
    "<|system|>": 59252,
    "<|user|>": 59253,
    "<|assistant|>": 59254,
    "<|observation|>": 59255,
    "<|begin_of_image|>": 59256,
    "<|end_of_image|>": 59257,
    "<|begin_of_video|>": 59258,
    "<|end_of_video|>": 59259,
    "<|image|>": 59280,
    "<|video|>": 59281,
}


def _byte_to_unicode() -> dict[int, str]:
    """GPT-2's printable stand-ins for the 256 byte values (what byte-level BPE vocabularies store)."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


def _synthetic_words(rng: random.Random) -> Any:
    """An endless stream of word-like strings: Latin syllables (with a leading space, capitalised),
    umlauts, digit groups, JSON punctuation runs and CJK pairs, roughly the mix of a real vocabulary."""
    onsets = [
        "",
        "b",
        "c",
        "d",
        "f",
        "g",
        "h",
        "k",
        "l",
        "m",
        "n",
        "p",
        "r",
        "s",
        "t",
        "v",
        "w",
        "z",
        "st",
        "ch",
    ]
    vowels = ["a", "e", "i", "o", "u", "ä", "ö", "ü", "ei", "ou"]
    codas = ["", "n", "r", "s", "t", "l", "m", "ng", "ck", "ß"]
    punctuation = ['"', ":", ",", "{", "}", "[", "]", " ", "-", ".", "/", "\n"]
    while True:
        kind = rng.random()
        if kind < 0.6:
            word = "".join(
                rng.choice(onsets) + rng.choice(vowels) + rng.choice(codas) for _ in range(rng.randint(1, 3))
            )
            if rng.random() < 0.3:
                word = word.capitalize()
            yield (" " + word) if rng.random() < 0.6 else word
        elif kind < 0.75:
            yield "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 3)))
        elif kind < 0.85:
            yield "".join(rng.choice(punctuation) for _ in range(rng.randint(2, 4)))
        else:
            yield "".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(rng.randint(1, 2)))


@functools.cache
def _glm_scale_backend_json() -> str:
    """A byte-level BPE whose ordinary tokens fill ids 0..59245 and whose specials sit at GLM-OCR's ids.

    Built directly (every token is a longer prefix of a synthetic word, merged from the prefix before it
    and one byte), not trained: deterministic and well under a second, with a vocabulary as large and as
    varied as the real one, which is what the grammar's mask cost and the lm_head size depend on."""
    stand_in = _byte_to_unicode()
    vocab: dict[str, int] = {stand_in[b]: b for b in range(256)}
    merges: list[tuple[str, str]] = []
    first_special = min(GLM_SPECIAL_IDS.values())
    words = _synthetic_words(random.Random(0))
    while len(vocab) < first_special:
        encoded = "".join(stand_in[b] for b in next(words).encode("utf-8"))
        for end in range(2, len(encoded) + 1):
            if len(vocab) >= first_special:
                break
            token = encoded[:end]
            if token not in vocab:
                vocab[token] = len(vocab)
                merges.append((encoded[: end - 1], encoded[end - 1 : end]))
    # Prefix merges may split a multi-byte character, so both halves are in the vocabulary already.
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    by_id = {i: token for token, i in GLM_SPECIAL_IDS.items()}
    last = max(GLM_SPECIAL_IDS.values())
    specials = [by_id.get(i, f"<|reserved_{i}|>") for i in range(first_special, last + 1)]
    tokenizer.add_special_tokens(specials)
    return tokenizer.to_str()


def build_glm_scale_tokenizer() -> PreTrainedTokenizerFast:
    """A synthetic stand-in for GLM-OCR's tokenizer: 59,282 tokens, the GLM special tokens at their real
    ids (``<|endoftext|>`` 59246, ``<|user|>`` 59253, ``<|image|>`` 59280, ...), and the chat template."""
    backend = Tokenizer.from_str(_glm_scale_backend_json())
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=backend,
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        chat_template=CHAT_TEMPLATE,
        extra_special_tokens={},
    )
    for token, expected in GLM_SPECIAL_IDS.items():
        assert token_id(tokenizer, token) == expected, token
    return tokenizer
