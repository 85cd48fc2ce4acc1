"""Schema references: ``name`` (the latest version) or ``name@version``."""

from __future__ import annotations

from dataclasses import dataclass

from app.lib.problems import INVALID_SCHEMA_REFERENCE, Problem


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
        raise Problem(
            INVALID_SCHEMA_REFERENCE,
            f"{text!r}: this route takes a schema name without a version.",
            errors=[{"pointer": "", "detail": "drop the @version part"}],
        )
    if not version.isdigit() or int(version) < 1:
        raise Problem(
            INVALID_SCHEMA_REFERENCE,
            f"{text!r}: the version after '@' must be a positive integer.",
            errors=[{"pointer": "", "detail": f"{version!r} is not a positive integer"}],
        )
    return SchemaRef(name, int(version))
