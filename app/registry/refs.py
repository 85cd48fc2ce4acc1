"""Schema references: ``name`` (the latest version) or ``name@version``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.lib.errors import SchemaError
from app.lib.problems import INVALID_SCHEMA_REFERENCE

MAX_VERSION = 999_999_999
"""Versions are 1 to 9 digits: far more than any schema gets, and within PostgreSQL's INTEGER, so
a longer number is refused here (400) rather than by the database driver (500)."""
VERSION_PATTERN = r"^[1-9][0-9]{0,8}$"
"""A version as the OpenAPI spec documents it: exactly what :func:`parse_ref` accepts."""
REF_PATTERN = r"^[^@]+(@[1-9][0-9]{0,8})?$"


@dataclass(frozen=True)
class SchemaRef:
    name: str
    version: int | None = None

    def __str__(self) -> str:
        return self.name if self.version is None else f"{self.name}@{self.version}"


def parse_ref(text: str, *, allow_version: bool = True) -> SchemaRef:
    name, sep, version = text.partition("@")
    if not sep:
        return SchemaRef(name)
    if not allow_version:
        raise SchemaError(
            INVALID_SCHEMA_REFERENCE,
            f"{text!r}: this route takes a schema name without a version.",
            errors=[{"pointer": "", "detail": "drop the @version part"}],
        )
    if not re.fullmatch(VERSION_PATTERN, version):
        raise SchemaError(
            INVALID_SCHEMA_REFERENCE,
            f"{text!r}: the version after '@' must be an integer from 1 to {MAX_VERSION}.",
            errors=[{"pointer": "", "detail": f"{version!r} is not an integer from 1 to {MAX_VERSION}"}],
        )
    return SchemaRef(name, int(version))
