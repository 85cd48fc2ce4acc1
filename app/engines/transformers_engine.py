"""The in-process engine: GLM-OCR through transformers, decoding greedily under an llguidance grammar.

For a laptop or a single-GPU box without SGLang, and the engine the tiny-model tests drive. The
decoding loop is written out (prefill, then one token at a time on the KV cache) rather than using
``model.generate``, so that every step applies, in SGLang's order, the repetition penalty over the
generated tokens, the grammar mask, and takes the chosen token's log-probability from the masked
distribution. One model serves one generation at a time: generations run off the event loop on the
engine's own single worker thread, so concurrent calls queue there (in order, holding no other threads)
and the model and its CUDA context are only ever used from that one thread.
"""

from __future__ import annotations

import asyncio
import codecs
import inspect
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import torch
from transformers import AutoModelForImageTextToText, AutoProcessor

from app.engines.base import (
    Engine,
    EngineError,
    EngineRequest,
    EngineResult,
    FinishReason,
    TokenLogprob,
    Usage,
)
from app.engines.constrained import (
    GrammarCompiler,
    GrammarError,
    GrammarMatcher,
    compiler_for,
    masked_logprobs,
)

_T = TypeVar("_T")

# GLM-OCR ends a turn with either token (generation_config eos_token_id = [59246, 59253]).
STOP_TOKENS = ("<|endoftext|>", "<|user|>")


@dataclass(frozen=True)
class TransformersConfig:
    model: str = "zai-org/GLM-OCR"
    """A local folder or a hub id (resolved from the local hub cache unless ``local_files_only`` is off)."""
    device: str = "cpu"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """``auto``: bfloat16 on CUDA, float32 elsewhere."""
    local_files_only: bool = True
    revision: str | None = None
    repetition_penalty: float = 1.1
    """GLM-OCR's SDK decodes with 1.1. Applied as SGLang does: over the generated tokens only (not the
    prompt), dividing positive logits and multiplying negative ones, before the grammar mask."""
    whitespace_pattern: str | None = None
    """Whitespace the grammar allows between JSON tokens; ``None``: compact JSON, no whitespace."""


def resolve_dtype(dtype: str, device: str) -> torch.dtype:
    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    resolved = getattr(torch, dtype)
    assert isinstance(resolved, torch.dtype)
    return resolved


@dataclass
class _Loaded:
    model: Any
    processor: Any
    compiler: GrammarCompiler
    device: torch.device
    dtype: torch.dtype
    cache_kwarg: str


class _Cancelled(Exception):
    """The caller went away; the generation thread stops at the next token."""


class TransformersEngine(Engine):
    name = "transformers"

    def __init__(self, config: TransformersConfig | None = None) -> None:
        self.config = config or TransformersConfig()
        self.model = self.config.model
        self._loaded: _Loaded | None = None
        self._load_lock = threading.Lock()
        self._generate_lock = threading.Lock()  # also serialises direct (synchronous) use
        self._load_error: EngineError | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()

    @classmethod
    def from_components(
        cls, model: Any, processor: Any, config: TransformersConfig | None = None
    ) -> TransformersEngine:
        """An engine around an already built model and processor (tests, benchmarks, notebooks)."""
        engine = cls(config)
        engine._loaded = engine._prepare(model, processor)
        return engine

    # -- loading ---------------------------------------------------------------------------------

    def _prepare(self, model: Any, processor: Any) -> _Loaded:
        device = torch.device(self.config.device)
        dtype = resolve_dtype(self.config.dtype, self.config.device)
        model = model.to(device=device, dtype=dtype).eval()
        tokenizer = processor.tokenizer
        compiler = compiler_for(
            tokenizer,
            vocab_size=int(model.get_output_embeddings().weight.shape[0]),
            stop_token_ids=_stop_token_ids(model, tokenizer),
        )
        parameters = inspect.signature(model.forward).parameters
        cache_kwarg = "cache" if "cache" in parameters else "past_key_values"  # renamed in transformers 5.2x
        return _Loaded(model, processor, compiler, device, dtype, cache_kwarg)

    def _ensure_loaded(self) -> _Loaded:
        loaded = self._loaded
        if loaded is not None:
            return loaded
        with self._load_lock:
            if self._loaded is None:
                if self._load_error is not None:
                    raise self._load_error
                try:
                    self._loaded = self._load()
                except EngineError as exc:
                    self._load_error = exc
                    raise
            return self._loaded

    def _load(self) -> _Loaded:
        config = self.config
        options: dict[str, Any] = {"local_files_only": config.local_files_only, "revision": config.revision}
        try:
            processor = AutoProcessor.from_pretrained(config.model, **options)  # type: ignore[no-untyped-call]
            model = AutoModelForImageTextToText.from_pretrained(
                config.model, dtype=resolve_dtype(config.dtype, config.device), **options
            )
        except (OSError, ValueError) as exc:
            raise EngineError(
                f"cannot load {config.model!r} (local_files_only={config.local_files_only}): {exc}",
                category="model_unavailable",
                retryable=False,
            ) from exc
        return self._prepare(model, processor)

    async def load(self) -> None:
        """Load the model now (otherwise the first ``generate`` does), off the event loop."""
        await self._run(self._ensure_loaded)

    async def _run(self, function: Callable[[], _T]) -> _T:
        """Run on the engine's worker thread. A call cancelled while queued never starts."""
        with self._executor_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="transformers-engine")
            executor = self._executor
        return await asyncio.get_running_loop().run_in_executor(executor, function)

    # -- Engine ----------------------------------------------------------------------------------

    async def generate(self, request: EngineRequest) -> EngineResult:
        cancel = threading.Event()
        try:
            return await self._run(lambda: self._generate_blocking(request, cancel))
        except asyncio.CancelledError:
            cancel.set()  # a running generation stops at its next token
            raise

    async def ready(self) -> dict[str, Any]:
        if self._load_error is not None:
            raise self._load_error
        loaded = self._loaded
        return {
            "engine": self.name,
            "model": self.model,
            "loaded": loaded is not None,
            "device": str(loaded.device) if loaded else self.config.device,
        }

    async def aclose(self) -> None:
        with self._executor_lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)
        with self._load_lock:
            loaded, self._loaded = self._loaded, None
        if loaded is not None and loaded.device.type == "cuda":
            del loaded
            torch.cuda.empty_cache()

    # -- decoding --------------------------------------------------------------------------------

    def _generate_blocking(self, request: EngineRequest, cancel: threading.Event) -> EngineResult:
        loaded = self._ensure_loaded()
        try:
            compiled = loaded.compiler.compile(
                request.decoding_schema, whitespace_pattern=self.config.whitespace_pattern
            )
        except GrammarError as exc:
            raise EngineError(
                f"Failed to compile JSON grammar: {exc}",
                category="schema_not_supported",
                retryable=False,
                status=400,
            ) from exc
        with self._generate_lock:
            if cancel.is_set():
                raise _Cancelled
            try:
                with torch.inference_mode():
                    return self._decode(loaded, request, compiled.matcher(), cancel)
            except GrammarError as exc:
                raise EngineError(
                    f"decoding left the grammar: {exc}", category="engine_error", retryable=False
                ) from exc
            except torch.cuda.OutOfMemoryError as exc:
                torch.cuda.empty_cache()
                raise EngineError(f"out of GPU memory: {exc}", category="overloaded", retryable=True) from exc
            except (RuntimeError, ValueError) as exc:  # the processor or the model refused the input
                raise EngineError(
                    f"generation failed: {exc}", category="engine_error", retryable=False
                ) from exc

    def _inputs(self, loaded: _Loaded, request: EngineRequest) -> dict[str, Any]:
        """GLM-OCR's turn: the image first, then the prompt, through the processor's chat template."""
        messages = [
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": request.prompt}]}
        ]
        text = loaded.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        image = request.image if request.image.mode == "RGB" else request.image.convert("RGB")
        batch = loaded.processor(text=[text], images=[image], return_tensors="pt")
        inputs: dict[str, Any] = {}
        for key, value in batch.items():
            if isinstance(value, torch.Tensor):
                dtype = loaded.dtype if value.is_floating_point() else value.dtype
                inputs[key] = value.to(loaded.device, dtype=dtype)
        inputs.pop("token_type_ids", None)
        return inputs

    def _decode(
        self, loaded: _Loaded, request: EngineRequest, matcher: GrammarMatcher, cancel: threading.Event
    ) -> EngineResult:
        model, device = loaded.model, loaded.device
        inputs = self._inputs(loaded, request)
        prompt_tokens = int(inputs["input_ids"].shape[1])
        penalty = self.config.repetition_penalty
        seen = torch.zeros(loaded.compiler.vocab_size, dtype=torch.bool, device=device)

        tokens: list[int] = []
        logprobs: list[float] = []
        sampled = 0
        finish: FinishReason = "length"
        cache: Any = None
        step_inputs: dict[str, Any] = inputs
        while sampled < request.max_tokens:
            if cancel.is_set():
                raise _Cancelled
            # Launch the forward pass first: on a GPU it runs while the CPU computes the grammar mask,
            # which depends only on the tokens already chosen.
            output = model(**step_inputs, **{loaded.cache_kwarg: cache}, use_cache=True, logits_to_keep=1)
            cache = _cache_of(output)
            allowed = matcher.allowed_mask(device)
            logits = output.logits[0, -1, : allowed.shape[0]].float()
            if penalty != 1.0 and tokens:
                penalised = torch.where(logits < 0, logits * penalty, logits / penalty)
                logits = torch.where(seen[: logits.shape[0]], penalised, logits)
            scores = masked_logprobs(logits, allowed[: logits.shape[0]])
            token = int(torch.argmax(scores).item())
            logprob = float(scores[token].item())
            if logprob == float("-inf"):
                raise GrammarError(f"no token allowed at step {sampled}: {matcher.error()}")
            sampled += 1
            if matcher.is_stop_token(token):
                finish = "stop"
                break
            matcher.consume(token)
            tokens.append(token)
            logprobs.append(logprob)
            if matcher.is_stopped():  # the JSON is closed: only a stop token could follow
                finish = "stop"
                break
            seen[token] = True
            step_inputs = {"input_ids": torch.tensor([[token]], device=device)}

        text, spans = assemble([loaded.compiler.token_bytes(t) for t in tokens])
        return EngineResult(
            text=text,
            tokens=[
                TokenLogprob(token=piece, start=start, end=end, logprob=logprob)
                for (piece, start, end), logprob in zip(spans, logprobs, strict=False)
            ],
            finish_reason=finish,
            usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=sampled),
            model=self.config.model,
            extra={"token_ids": tokens[: len(spans)]},
        )


def assemble(pieces: list[bytes]) -> tuple[str, list[tuple[str, int, int]]]:
    """The text of the token byte strings and each token's (text, start, end) byte span in it.

    The spans tile ``text.encode("utf-8")`` exactly. A token may hold part of a multi-byte character;
    its ``text`` then shows U+FFFD. Only an output cut off by ``max_tokens`` can end inside a
    character: that incomplete tail is dropped from the text, and the spans are cut to match."""
    raw = b"".join(pieces)
    try:
        text = codecs.getincrementaldecoder("utf-8")(errors="strict").decode(raw, final=False)
    except UnicodeDecodeError as exc:
        raise GrammarError(f"generated bytes are not UTF-8: {exc}") from exc
    limit = len(text.encode("utf-8"))
    spans: list[tuple[str, int, int]] = []
    start = 0
    for piece in pieces:
        end = min(start + len(piece), limit)
        if start >= limit and piece:
            break
        spans.append((piece[: end - start].decode("utf-8", errors="replace"), start, end))
        start = end
    return text, spans


def _cache_of(output: Any) -> Any:
    """The KV cache of a forward pass (``cache`` since transformers 5.2x, ``past_key_values`` before)."""
    cache = getattr(output, "cache", None)
    return cache if cache is not None else getattr(output, "past_key_values", None)


def _stop_token_ids(model: Any, tokenizer: Any) -> list[int]:
    """GLM-OCR's stop tokens: the model's eos ids plus ``<|endoftext|>``/``<|user|>`` where the tokenizer
    has them."""
    ids: set[int] = set()
    for source in (getattr(model, "generation_config", None), model.config.get_text_config()):
        ids.update(_as_ids(getattr(source, "eos_token_id", None)))
    vocab = tokenizer.get_vocab()
    ids.update(vocab[token] for token in STOP_TOKENS if token in vocab)
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    return sorted(ids)


def _as_ids(value: int | Iterable[int] | None) -> list[int]:
    if value is None:
        return []
    if isinstance(value, int):
        return [value]
    return [int(v) for v in value]
