"""Canonical JSON (RFC 8785) and its SHA-256, so equal schemas hash equal whatever their layout."""

from __future__ import annotations

import hashlib
from typing import Any

import rfc8785


class NotCanonicalizable(ValueError):
    """The value has no canonical form (an integer beyond ±2**53, NaN, a non-JSON type)."""


def canonical_json(value: Any) -> bytes:
    """RFC 8785 bytes: sorted keys, no whitespace, ECMAScript number formatting."""
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError) as exc:
        raise NotCanonicalizable(str(exc)) from exc


def canonical_sha256(value: Any) -> str:
    """Hex SHA-256 of the canonical form: the identity of a schema version's content."""
    return hashlib.sha256(canonical_json(value)).hexdigest()
