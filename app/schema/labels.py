"""``x-aliases``: the labels (in any language) that may name a property on a page."""

from __future__ import annotations

from typing import Any


def label_aliases(schema: dict[str, Any]) -> list[str]:
    """A property's declared aliases: a list, or lists by language (``{"de": [...], "fr": [...]}``)."""
    aliases = schema.get("x-aliases")
    if isinstance(aliases, list):
        return [str(a) for a in aliases]
    if isinstance(aliases, dict):
        return [str(a) for values in aliases.values() if isinstance(values, list) for a in values]
    return []
