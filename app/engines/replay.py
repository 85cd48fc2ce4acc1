"""An engine that answers from recordings: ``<folder>/<document id>.json`` per document.

A recording is either the engine's page outputs (``{"pages": {"1": "<json text>", ...}}``) or a plain
data object, such as a ground-truth file, served as the first page's output (later pages answer
``{}``). Every token is certain (log-probability 0), so re-running the trust layer on recordings
measures normalisation, grounding, checks and review alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from app.engines.base import Engine, EngineError, EngineRequest, EngineResult, TokenLogprob, Usage


class ReplayEngine(Engine):
    name = "replay"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.model = f"replay:{folder}"

    def recording(self, document_id: str) -> dict[str, Any]:
        path = self.folder / f"{document_id}.json"
        if not path.is_file():
            raise EngineError(f"no recording {path}", category="engine_rejected", retryable=False)
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise EngineError(f"{path} is not a JSON object", category="engine_rejected", retryable=False)
        return data

    async def generate(self, request: EngineRequest) -> EngineResult:
        if request.document_id is None:
            raise EngineError(
                "the replay engine needs a document id", category="engine_rejected", retryable=False
            )
        recorded = self.recording(request.document_id)
        if isinstance(recorded.get("pages"), dict):
            text = recorded["pages"].get(str(request.page), "{}")
        else:
            data = recorded if request.page == 1 else {}
            text = json.dumps(complete(data, request.decoding_schema), ensure_ascii=False)
        return EngineResult(
            text=text,
            tokens=_tokens(text),
            finish_reason="stop",
            usage=Usage(prompt_tokens=0, completion_tokens=len(text)),
            model=self.model,
        )

    async def ready(self) -> dict[str, Any]:
        if not self.folder.is_dir():
            raise EngineError(
                f"{self.folder} is not a folder", category="engine_unavailable", retryable=False
            )
        return {"engine": self.name, "model": self.model}


def complete(data: Any, schema: Any) -> Any:
    """The data in the shape the grammar would force: every declared key present, null when the
    recording has no value for it (a ground-truth file omits what the document does not show)."""
    if not isinstance(schema, dict) or not isinstance(data, dict | type(None)):
        return data
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return data
    data = data or {}
    out = {
        key: complete(data.get(key), sub) if isinstance(data.get(key), dict) else data.get(key)
        for key, sub in properties.items()
    }
    out.update({k: v for k, v in data.items() if k not in properties and not k.startswith("$")})
    return out


def _tokens(text: str) -> list[TokenLogprob]:
    """One certain token per character (byte offsets exact)."""
    tokens, at = [], 0
    for ch in text:
        size = len(ch.encode("utf-8"))
        tokens.append(TokenLogprob(ch, at, at + size, 0.0))
        at += size
    return tokens
