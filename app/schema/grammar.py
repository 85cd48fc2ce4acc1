"""What constrained decoding can enforce, and what must be checked only after decoding.

The grammar backends behind SGLang (xgrammar, llguidance) enforce a subset of JSON Schema; see
DESIGN.md §5. The registry reports the rest with every schema version, so users know which
constraints the model cannot be held to and that jsonschema validation will check them instead.
The list is deliberately conservative: a keyword is named here unless every backend enforces it.
"""

from __future__ import annotations

from typing import Any, TypedDict

from app.lib.jsonpointer import pointer
from app.schema.walk import iter_subschemas

POST_DECODING_KEYWORDS: dict[str, str] = {
    "allOf": "grammar backends ignore allOf; every branch is validated after decoding",
    "oneOf": "decoded as anyOf; exclusivity is validated after decoding",
    "not": "negation cannot be compiled into a grammar",
    "if": "conditional schemas cannot be compiled into a grammar",
    "then": "conditional schemas cannot be compiled into a grammar",
    "else": "conditional schemas cannot be compiled into a grammar",
    "dependentRequired": "cross-property rules are validated after decoding",
    "dependentSchemas": "cross-property rules are validated after decoding",
    "uniqueItems": "item uniqueness is validated after decoding",
    "contains": "contains/minContains/maxContains are validated after decoding",
    "minContains": "contains/minContains/maxContains are validated after decoding",
    "maxContains": "contains/minContains/maxContains are validated after decoding",
    "multipleOf": "numeric multiples are validated after decoding",
    "propertyNames": "property-name constraints are validated after decoding",
    "patternProperties": "pattern-keyed properties are validated after decoding",
    "unevaluatedProperties": "unevaluated* keywords are validated after decoding",
    "unevaluatedItems": "unevaluated* keywords are validated after decoding",
    "$dynamicRef": "dynamic references are validated after decoding",
}
# String formats the grammar backends compile; any other format is checked after decoding.
GRAMMAR_FORMATS = frozenset(
    {"date", "date-time", "time", "duration", "email", "uuid", "ipv4", "ipv6", "uri", "hostname"}
)
_LENGTH_KEYWORDS = ("minLength", "maxLength")
_SHAPE_KEYWORDS = ("pattern", "format")


class PostDecodingKeyword(TypedDict):
    pointer: str
    keyword: str
    reason: str


def post_decoding_keywords(schema: dict[str, Any]) -> list[PostDecodingKeyword]:
    """Each keyword (with its JSON Pointer) that decoding will not enforce."""
    found: list[PostDecodingKeyword] = []
    for path, sub in iter_subschemas(schema):
        for keyword, reason in POST_DECODING_KEYWORDS.items():
            if keyword in sub:
                found.append({"pointer": pointer((*path, keyword)), "keyword": keyword, "reason": reason})
        if isinstance(sub.get("format"), str) and sub["format"] not in GRAMMAR_FORMATS:
            found.append(
                {
                    "pointer": pointer((*path, "format")),
                    "keyword": "format",
                    "reason": f"format {sub['format']!r} is not in the grammar; validated after decoding",
                }
            )
        if any(k in sub for k in _LENGTH_KEYWORDS):
            found.extend(
                {
                    "pointer": pointer((*path, keyword)),
                    "keyword": keyword,
                    "reason": f"{keyword} combined with a length limit is validated after decoding",
                }
                for keyword in _SHAPE_KEYWORDS
                if keyword in sub
            )
    return found
