"""RFC 6901 JSON Pointers, built from path parts."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def escape(part: str | int) -> str:
    return str(part).replace("~", "~0").replace("/", "~1")


def pointer(parts: Iterable[str | int]) -> str:
    return "".join("/" + escape(part) for part in parts)


def unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


class PointerNotFound(LookupError):
    """The pointer names no value in the document."""


def resolve(document: Any, pointer: str) -> Any:
    """The value ``pointer`` names in ``document`` (``""`` is the whole document)."""
    target = document
    for token in pointer.split("/")[1:]:
        key = unescape(token)
        if isinstance(target, dict) and key in target:
            target = target[key]
        elif isinstance(target, list) and key.isdigit() and int(key) < len(target):
            target = target[int(key)]
        else:
            raise PointerNotFound(pointer)
    return target


def get(document: Any, pointer: str) -> Any:
    """The value ``pointer`` names in ``document``, or None when it names none."""
    try:
        return resolve(document, pointer)
    except PointerNotFound:
        return None


def assign(document: Any, pointer: str, value: Any) -> None:
    """Replace the value ``pointer`` names (it must exist) in ``document``."""
    parent_pointer, _, last = pointer.rpartition("/")
    parent = resolve(document, parent_pointer)
    if isinstance(parent, list):
        parent[int(last)] = value
    else:
        parent[unescape(last)] = value
