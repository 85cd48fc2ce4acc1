"""What a schema leaf holds (its kind: date, amount, currency, ...) and which labels name it: read
from the schema alone, so it is decided once per schema version (``CompiledSchema.leaves``) and the
trust layer, the layout engine and eval agree on it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, get_args

from app.schema.labels import label_aliases
from app.schema.tree import SchemaTree

Kind = Literal["date", "amount", "currency", "percent", "iban", "vat_id", "phone", "text"]
KINDS: tuple[Kind, ...] = get_args(Kind)
ITEM = "*"
"""The path step of an array's items in a leaf's schema path."""
MAX_LEAF_DEPTH = 32


@dataclass(frozen=True)
class Leaf:
    """A place in the data that holds a scalar: its schema path (property names, ``*`` for array
    items), the name it is known by (the last property name), its kind and its label aliases."""

    path: tuple[str, ...]
    name: str
    kind: Kind
    aliases: tuple[str, ...]


def kind_for(name: str, schema: dict[str, Any]) -> Kind:
    """The kind of a schema leaf named ``name``: an explicit ``x-normalize`` wins (an unknown one is
    ignored rather than failing a running extraction), then format, type and name conventions."""
    explicit = schema.get("x-normalize")
    if isinstance(explicit, str) and explicit in KINDS:
        return explicit
    lowered = name.lower()
    types = declared_types(schema)
    kind: Kind = "text"
    if schema.get("format") == "date":
        kind = "date"
    elif types & {"number", "integer"}:
        kind = "percent" if "rate" in lowered or "percent" in lowered else "amount"
    elif types and "string" not in types:
        kind = "text"
    elif (
        lowered == "currency"
        or lowered.endswith(("currency", "currency_code"))
        or schema.get("pattern") == "^[A-Z]{3}$"
    ):
        kind = "currency"
    elif "iban" in lowered:
        kind = "iban"
    elif any(word in lowered for word in ("phone", "fax", "mobile")) or lowered in ("tel", "telephone"):
        kind = "phone"
    # "vat_rate"/"vat_amount" typed as strings are numbers about VAT, not VAT ids.
    elif "vat" in lowered and not any(word in lowered for word in ("rate", "percent", "amount", "total")):
        kind = "vat_id"
    return kind


def declared_types(schema: dict[str, Any]) -> set[str]:
    """The ``type`` keyword as a set (empty when absent)."""
    declared = schema.get("type")
    if isinstance(declared, str):
        return {declared}
    if isinstance(declared, list):
        return {t for t in declared if isinstance(t, str)}
    return set()


def leaves(tree: SchemaTree) -> dict[tuple[str, ...], Leaf]:
    """Every scalar place the schema describes (through ``properties`` and ``items``), by path."""
    return {leaf.path: leaf for leaf in _leaves(tree, tree.root, (), "", 0)}


def _leaves(tree: SchemaTree, node: Any, path: tuple[str, ...], name: str, depth: int) -> Iterator[Leaf]:
    node = tree.resolve(node)
    if not isinstance(node, dict) or depth > MAX_LEAF_DEPTH:
        return
    properties = node.get("properties")
    if isinstance(properties, dict):
        for key, child in properties.items():
            yield from _leaves(tree, child, (*path, key), key, depth + 1)
    elif "items" in node or "array" in declared_types(node):
        yield from _leaves(tree, node.get("items", {}), (*path, ITEM), name, depth + 1)
    else:
        yield Leaf(path, name, kind_for(name, node), tuple(label_aliases(node)))
