"""GLM-OCR's information-extraction prompt, built from a registered schema.

GLM-OCR was trained on one extraction format: the line below, then a JSON skeleton of the wanted
keys with empty values (nested objects as objects, arrays as a one-element list of the item's
skeleton). Free-form instructions are ignored by the model; types and formats come from constrained
decoding and the trust layer instead.
"""

from __future__ import annotations

import json
from typing import Any

from app.extraction.decoding import resolve_local_refs

EXTRACTION_LINE = "请按下列JSON格式输出图中信息:"


def skeleton(schema: Any, root: dict[str, Any] | None = None) -> Any:
    """The empty-valued JSON skeleton of ``schema``, keys in schema order."""
    root = root if root is not None else schema
    schema = resolve_local_refs(schema, root)
    if not isinstance(schema, dict):
        return ""
    for keyword in ("anyOf", "oneOf"):
        branches = [b for b in schema.get(keyword, []) if isinstance(b, dict) and b.get("type") != "null"]
        if branches:
            return skeleton(branches[0], root)
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    if "object" in kinds or "properties" in schema:
        return {name: skeleton(sub, root) for name, sub in schema.get("properties", {}).items()}
    if "array" in kinds or "items" in schema:
        return [skeleton(schema.get("items", {}), root)]
    return ""


def extraction_prompt(schema: dict[str, Any]) -> str:
    return EXTRACTION_LINE + "\n" + json.dumps(skeleton(schema), ensure_ascii=False, indent=4)
