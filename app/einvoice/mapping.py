"""Business terms onto a registered schema and back.

Which property holds which business term: its ``x-en16931`` annotation (``"BT-1"``; a list such as
``["BT-153", "BT-154"]`` takes the first the invoice has; ``"BG-5"`` / ``"BG-8"`` on a string is the
postal address on one line; ``"BG-25"`` / ``"BG-23"`` on an array of objects are the lines / the VAT
breakdown, whose items' properties name that group's terms; ``false`` keeps a property out) and,
for a property without one, the concept the layout engine matches it to by name, description and
``x-aliases`` (``app.engines.layout.fields``): ``amount_due`` described as "total including taxes"
is BT-112 without any annotation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from app.einvoice.model import (
    ADDRESS_GROUPS,
    ADDRESS_PARTS,
    ANNOTATION,
    TABLE_GROUPS,
    EInvoice,
    Terms,
    Value,
)
from app.engines.layout.fields import FieldSpec, default_matcher, plan
from app.lib.jsonpointer import pointer
from app.schema.compiled import CompiledSchema
from app.schema.kinds import declared_types
from app.schema.tree import SchemaTree

Codes = tuple[str, ...]

CONCEPT_TERMS: dict[str, Codes] = {
    "invoice_number": ("BT-1",),
    "order_number": ("BT-13",),
    "issue_date": ("BT-2",),
    "due_date": ("BT-9",),
    "delivery_date": ("BT-72",),
    "total": ("BT-112",),
    "subtotal": ("BT-109",),
    "tax_total": ("BT-110",),
    "currency": ("BT-5",),
    "iban": ("BT-84",),
    "bic": ("BT-86",),
    "payment_terms": ("BT-20",),
    "seller_name": ("BT-27",),
    "seller_address": ("BG-5",),
    "buyer_name": ("BT-44",),
    "buyer_address": ("BG-8",),
    "item_description": ("BT-153", "BT-154"),
    "item_number": ("BT-155",),
    "item_quantity": ("BT-129",),
    "item_unit": ("BT-130",),
    "item_unit_price": ("BT-146",),
    "item_amount": ("BT-131",),
    "item_tax_rate": ("BT-152",),
}
"""The layout engine's concepts (``app.lexicon``) as business terms."""
PARTY_TERMS: dict[str, dict[str, Codes]] = {
    "vat_id": {"seller": ("BT-31",), "buyer": ("BT-48",)},
    "tax_id": {"seller": ("BT-32",)},
    "email": {"seller": ("BT-43",)},
    "phone": {"seller": ("BT-42",)},
}
"""Concepts whose term depends on the party the property sits in (seller unless the path says buyer)."""
BUYER_WORDS = frozenset({"buyer", "customer", "client", "recipient", "bill", "billing", "ship", "to"})


@dataclass
class Table:
    group: str
    """``BG-25`` (lines) or ``BG-23`` (VAT breakdown)."""
    columns: dict[tuple[str, ...], Codes] = field(default_factory=dict)
    """Path inside an item -> the terms it holds."""


@dataclass
class SchemaMap:
    fields: dict[tuple[str, ...], Codes] = field(default_factory=dict)
    tables: dict[tuple[str, ...], Table] = field(default_factory=dict)

    def terms(self) -> set[str]:
        """Every business term (and group) the schema holds."""
        found = {c for codes in self.fields.values() for c in codes}
        for table in self.tables.values():
            found.add(table.group)
            found.update(c for codes in table.columns.values() for c in codes)
        return found


def schema_map(compiled: CompiledSchema) -> SchemaMap:
    """Where the schema holds each business term: annotations first, the concept matcher for the rest."""
    tree = compiled.tree
    matched = plan(compiled.schema, default_matcher(), tree)
    concepts = {spec.path: _concept_terms(spec) for spec in matched.fields}
    table_concepts = {
        table.path: {column.path: _concept_terms(column) for column in table.columns}
        for table in matched.tables
    }
    result = SchemaMap()

    def walk(node: Any, path: tuple[str, ...], table: Table | None, base: tuple[str, ...]) -> None:
        for name, declared in tree.properties(node).items():
            sub = tree.object(declared)
            here = (*path, name)
            annotation = sub.get(ANNOTATION)
            if annotation is False:
                continue
            codes: Codes | None = (
                (annotation,) if isinstance(annotation, str) else tuple(annotation) if annotation else None
            )
            types = declared_types(sub)
            if "properties" in sub or types == {"object"}:
                walk(sub, here, table, base)
                continue
            if "array" in types or "items" in sub:
                items = tree.object(sub.get("items"))
                if table is not None or "properties" not in items:
                    continue
                group = codes[0] if codes and codes[0] in TABLE_GROUPS else None
                if codes is None and (
                    any((table_concepts.get(here) or {}).values()) or _annotated(tree, items)
                ):
                    group = "BG-25"  # an array of line items: so the matcher reads it, or its terms say
                if group is not None:
                    result.tables[here] = Table(group)
                    walk(items, (), result.tables[here], here)
                continue
            if table is not None:
                concept = table_concepts.get(base, {}).get(here) if table.group == "BG-25" else None
                if found := codes or concept:
                    table.columns[here] = found
            elif found_codes := codes or concepts.get(here):
                result.fields[here] = found_codes

    walk(compiled.schema, (), None, ())
    return result


def _annotated(tree: SchemaTree, node: dict[str, Any]) -> bool:
    return any(ANNOTATION in tree.object(sub) for sub in tree.properties(node).values())


def _concept_terms(spec: FieldSpec) -> Codes | None:
    if spec.concept is None:
        return None
    key = spec.concept.key
    if key in PARTY_TERMS:
        buyer = any(word in BUYER_WORDS for part in spec.path[:-1] for word in part.lower().split("_"))
        return PARTY_TERMS[key].get("buyer" if buyer else "seller")
    return CONCEPT_TERMS.get(key)


@dataclass(frozen=True)
class Mapped:
    """One value of the data read from the e-invoice, and where it came from."""

    code: str
    value: Value


def to_data(
    invoice: EInvoice, compiled: CompiledSchema, mapping: SchemaMap
) -> tuple[dict[str, Any], dict[str, Mapped]]:
    """The invoice's values shaped by the schema (only what the invoice has), and per JSON Pointer
    the business term and XML value each came from."""
    tree = compiled.tree
    data: dict[str, Any] = {}
    provenance: dict[str, Mapped] = {}
    for path, codes in mapping.fields.items():
        found = _first(invoice.terms, codes)
        if found is not None and (value := _typed(found[1].value, _leaf(tree, path))) is not None:
            _put(data, path, value)
            provenance[pointer(path)] = Mapped(found[0], found[1])
    for path, table in mapping.tables.items():
        rows = invoice.lines if table.group == "BG-25" else invoice.vat_breakdown
        if not rows or not table.columns:
            continue
        items: list[dict[str, Any]] = []
        item_schema = tree.items(_leaf(tree, path))
        for index, row in enumerate(rows):
            item: dict[str, Any] = {}
            for column, codes in table.columns.items():
                found = _first(row, codes)
                if found is None:
                    continue
                value = _typed(found[1].value, _leaf(tree, column, item_schema))
                if value is not None:
                    _put(item, column, value)
                    provenance[pointer((*path, index, *column))] = Mapped(found[0], found[1])
            items.append(item)
        _put(data, path, items)
    return data, provenance


def _first(terms: Terms, codes: Codes) -> tuple[str, Value] | None:
    for code in codes:
        if code in ADDRESS_GROUPS:
            address = one_line_address(terms, code)
            if address is not None:
                return code, address
        elif code in terms:
            return code, terms[code]
    return None


def one_line_address(terms: Terms, group: str) -> Value | None:
    """BG-5 / BG-8 as one line: "street, line 2, post code city, subdivision, country"."""
    street, line2, postcode, city, subdivision, country = (terms.get(c) for c in ADDRESS_PARTS[group])
    place = " ".join(v.value for v in (postcode, city) if v is not None)
    parts = [v.value for v in (street, line2) if v] + ([place] if place else [])
    parts += [v.value for v in (subdivision, country) if v]
    present = [v for v in (street, line2, postcode, city, subdivision, country) if v is not None]
    if not present:
        return None
    text = ", ".join(parts)
    parent = present[0].path.rsplit("/", 1)[0]
    return Value(text, text, parent)


def _leaf(tree: SchemaTree, path: tuple[str, ...], root: Any = None) -> dict[str, Any]:
    node: Any = tree.root if root is None else root
    for name in path:
        node = tree.properties(node).get(name, {})
    return tree.object(node)


def _typed(value: str, schema: dict[str, Any]) -> Any:
    """The XML's value as the property's JSON type; None when it cannot be one."""
    types = declared_types(schema) or {"string"}
    if types & {"number", "integer"}:
        try:
            number = Decimal(value)
        except InvalidOperation:
            return value if "string" in types else None
        if "integer" in types and number == number.to_integral_value():
            return int(number)
        return float(number) if "number" in types else (value if "string" in types else None)
    return value if "string" in types else None


def _put(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for name in path[:-1]:
        data = data.setdefault(name, {})
    data[path[-1]] = value
