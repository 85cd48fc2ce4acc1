"""The empty-valued JSON skeleton of a schema: the keys the model is asked for, in schema order
(nested objects as objects, arrays as a one-element list of the item's skeleton)."""

from __future__ import annotations

from typing import Any

from app.schema.tree import SchemaTree


def skeleton(schema: Any, root: SchemaTree | None = None) -> Any:
    """The skeleton of ``schema``; ``root``: the document's resolver when ``schema`` is a part of it."""
    tree = root if root is not None else SchemaTree(schema)
    node = tree.resolve(schema)
    if not isinstance(node, dict):
        return ""
    for keyword in ("anyOf", "oneOf"):
        branches = [b for b in node.get(keyword, []) if isinstance(b, dict) and b.get("type") != "null"]
        if branches:
            return skeleton(branches[0], tree)
    kind = node.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    if "object" in kinds or "properties" in node:
        return {name: skeleton(sub, tree) for name, sub in node.get("properties", {}).items()}
    if "array" in kinds or "items" in node:
        return [skeleton(node.get("items", {}), tree)]
    return ""
