"""Request and response bodies of the schema registry API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec

from app.registry.service import SchemaVersion
from app.registry.validation import NAME_PATTERN
from app.schema.grammar import post_decoding_keywords
from app.schema.patterns import PatternEngine, PatternError, PatternUse, pattern_engines
from app.schema.walk import iter_subschemas

# What the registry checks (422 invalid-schema-name, invalid-schema), also stated in the OpenAPI
# spec (``extra``: documented, not enforced by the decoder, which would answer a generic 400).
Name = Annotated[
    str,
    msgspec.Meta(
        description="1-64 of a-z, 0-9, _ and -, starting with a letter or digit.",
        extra_json_schema={"extra": {"pattern": NAME_PATTERN.pattern, "minLength": 1, "maxLength": 64}},
    ),
]
JsonSchema = Annotated[
    dict[str, Any],
    msgspec.Meta(
        description='A JSON Schema 2020-12 document: `"type": "object"` at the root, only local `$ref`s.',
        extra_json_schema={"extra": {"required": ["type"], "properties": {"type": {"const": "object"}}}},
    ),
]
Description = Annotated[str | None, msgspec.Meta(description="What the schema is for, shown in listings.")]


class SchemaCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    schema: JsonSchema
    description: Description = None


class VersionCreate(msgspec.Struct, forbid_unknown_fields=True):
    schema: JsonSchema
    description: Description = None


class PostDecodingKeywordOut(msgspec.Struct):
    pointer: str
    keyword: str
    reason: str


class PatternOut(msgspec.Struct):
    pointer: str
    engine: Annotated[
        PatternEngine,
        msgspec.Meta(
            description="`re2`: linear time. `backtracking`: RE2 cannot express it (lookaround, "
            "backreferences), so it runs with a time limit per value; a value that runs out of time "
            "does not match."
        ),
    ]
    reason: str | None
    """Why RE2 could not take it."""


def _patterns(schema: dict[str, Any]) -> list[PatternOut]:
    try:
        uses: list[PatternUse] = pattern_engines(iter_subschemas(schema))
    except PatternError:  # refused at registration since; stored before
        return []
    return [PatternOut(u.pointer, u.engine, u.reason) for u in uses]


class SchemaVersionOut(msgspec.Struct):
    name: str
    version: int
    ref: str
    latest_version: int
    description: str | None
    sha256: str
    source: str
    created_at: datetime
    deprecated: bool
    deprecated_at: datetime | None
    post_decoding_keywords: list[PostDecodingKeywordOut]
    """Keywords constrained decoding cannot enforce; jsonschema checks them after decoding."""
    patterns: list[PatternOut]
    """Every pattern of the schema and the regular-expression engine that runs it."""
    schema: dict[str, Any]

    @classmethod
    def of(cls, v: SchemaVersion) -> SchemaVersionOut:
        return cls(
            name=v.name,
            version=v.version,
            ref=v.ref,
            latest_version=v.latest_version,
            description=v.description,
            sha256=v.sha256,
            source=v.source,
            created_at=v.created_at,
            deprecated=v.deprecated_at is not None,
            deprecated_at=v.deprecated_at,
            post_decoding_keywords=[PostDecodingKeywordOut(**k) for k in post_decoding_keywords(v.schema)],
            patterns=_patterns(v.schema),
            schema=v.schema,
        )


class SchemaPage(msgspec.Struct):
    items: list[SchemaVersionOut]
    total: int
    limit: int
    offset: int
