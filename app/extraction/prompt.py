"""GLM-OCR's information-extraction prompt, built from a registered schema.

GLM-OCR was trained on one extraction format: the line below, then a JSON skeleton of the wanted
keys with empty values (nested objects as objects, arrays as a one-element list of the item's
skeleton; see :mod:`app.schema.skeleton`). Free-form instructions are ignored by the model; types
and formats come from constrained decoding and the trust layer instead.
"""

from __future__ import annotations

import json
from typing import Any

from app.schema.compiled import compile_schema

EXTRACTION_LINE = "请按下列JSON格式输出图中信息:"


def extraction_prompt(schema: dict[str, Any]) -> str:
    return prompt_for(compile_schema(schema).skeleton)


def prompt_for(skeleton: Any) -> str:
    """The prompt that asks for ``skeleton`` (a compiled schema's)."""
    return EXTRACTION_LINE + "\n" + json.dumps(skeleton, ensure_ascii=False, indent=4)
