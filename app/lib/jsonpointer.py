"""RFC 6901 JSON Pointers, built from path parts."""

from __future__ import annotations

from collections.abc import Iterable


def escape(part: str | int) -> str:
    return str(part).replace("~", "~0").replace("/", "~1")


def pointer(parts: Iterable[str | int]) -> str:
    return "".join("/" + escape(part) for part in parts)


def unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")
