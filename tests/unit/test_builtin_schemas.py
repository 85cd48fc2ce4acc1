from typing import Any

import pytest

from app.registry.builtins import default_builtin_dir, read_builtin_schemas
from app.registry.validation import SchemaLimits, validate_name, validate_schema
from app.schema.walk import iter_subschemas

BUILTINS = read_builtin_schemas(default_builtin_dir())


def test_the_four_builtins_ship() -> None:
    assert set(BUILTINS) == {"invoice", "receipt", "purchase_order", "form"}


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_builtin_is_valid_under_default_limits(name: str) -> None:
    validate_name(name)
    validate_schema(BUILTINS[name], SchemaLimits())


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_every_property_has_a_description(name: str) -> None:
    schema = BUILTINS[name]
    assert schema.get("description")
    for path, sub in iter_subschemas(schema):
        for prop, definition in sub.get("properties", {}).items():
            assert isinstance(definition, dict) and definition.get("description"), (path, prop)


def _leaves(schema: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for _, sub in iter_subschemas(schema):
        found.update(sub.get("properties", {}))
    return found


def test_invoice_covers_what_finance_teams_need() -> None:
    fields = _leaves(BUILTINS["invoice"])
    for required in [
        "invoice_number",
        "issue_date",
        "due_date",
        "seller",
        "buyer",
        "name",
        "address",
        "vat_id",
        "tax_id",
        "currency",
        "line_items",
        "description",
        "quantity",
        "unit_price",
        "amount",
        "tax_rate",
        "subtotal",
        "tax_total",
        "total",
        "payment_terms",
        "iban",
        "bic",
    ]:
        assert required in fields, required
