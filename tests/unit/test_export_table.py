"""app.extraction.export_table: columns in schema order, rows per document or line item, CSV and
JSON Lines, and the export options (what ``GET /batches/{id}/export`` streams)."""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson
import pytest

from app.extraction.export_table import (
    FIXED,
    BatchDocument,
    ExportOptions,
    export_options,
    format_date,
    header_bytes,
    json_rows,
    rows_bytes,
    table_for,
)
from app.lib.errors import RequestError
from app.lib.problems import INVALID_EXPORT_OPTION, NO_LINE_ITEMS
from app.schema.compiled import compile_schema

SCHEMA: dict[str, Any] = {
    "type": "object",
    "$defs": {
        "party": {"type": "object", "properties": {"name": {"type": "string"}, "vat_id": {"type": "string"}}},
    },
    "properties": {
        "invoice_number": {"type": "string"},
        "issue_date": {"type": "string", "format": "date"},
        "seller": {"$ref": "#/$defs/party"},
        "delivery_dates": {"type": "array", "items": {"type": "string", "format": "date"}},
        "taxes": {"type": "array", "items": {"type": "object", "properties": {"rate": {"type": "number"}}}},
        "line_items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "description": {"type": "string"},
                    "amount": {"type": "number"},
                    "shipped": {"type": "string", "format": "date"},
                },
            },
        },
        "total": {"type": "number"},
        "paid": {"type": "boolean"},
        "extra": {"type": "object"},
    },
}
DATA: dict[str, Any] = {
    "invoice_number": "INV-1",
    "issue_date": "2024-03-15",
    "seller": {"name": "ACME; Supplies", "vat_id": "DE136695976"},
    "delivery_dates": ["2024-03-01", "2024-03-02"],
    "taxes": [{"rate": 19.0}],
    "line_items": [
        {"description": "Widget", "amount": 20.0, "shipped": "2024-03-10"},
        {"description": 'Gadget "small"\nblue', "amount": 1234.5},
    ],
    "total": 1254.5,
    "paid": False,
    "extra": {"note": "x"},
}
DONE = BatchDocument(
    "a.pdf", "needs_review", "ext_1", 0.8125, ("low_confidence:/total", "rival:/total"), DATA
)
FAILED = BatchDocument("b.pdf", "failed")


def parse(text: bytes, options: ExportOptions) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.decode()), delimiter=options.delimiter))


def test_columns_follow_the_schema_flattened_with_dots() -> None:
    table = table_for(compile_schema(SCHEMA))
    assert table.header == [
        *FIXED,
        "invoice_number",
        "issue_date",
        "seller.name",
        "seller.vat_id",
        "delivery_dates",
        "taxes.count",
        "line_items.count",
        "total",
        "paid",
        "extra",
    ]
    dates = {column.name for column in table.columns if column.date}
    assert dates == {"issue_date", "delivery_dates"}


def test_line_item_columns_take_the_place_of_the_count() -> None:
    table = table_for(compile_schema(SCHEMA), "line_items")
    assert table.array == ("line_items",)
    assert table.header[len(FIXED) :] == [
        "line",
        "invoice_number",
        "issue_date",
        "seller.name",
        "seller.vat_id",
        "delivery_dates",
        "taxes.count",
        "line_items.description",
        "line_items.amount",
        "line_items.shipped",
        "total",
        "paid",
        "extra",
    ]
    assert table_for(compile_schema(SCHEMA), "taxes").array == ("taxes",)


def test_line_items_means_the_first_array_of_objects_when_none_has_that_name() -> None:
    schema = {"type": "object", "properties": {"items": SCHEMA["properties"]["line_items"]}}
    assert table_for(compile_schema(schema), "line_items").array == ("items",)
    nested = {
        "type": "object",
        "properties": {"payment": {"type": "object", "properties": schema["properties"]}},
    }
    assert table_for(compile_schema(nested), "payment.items").array == ("payment", "items")


@pytest.mark.parametrize("rows", ["line_items", "seller", "delivery_dates", "nope"])
def test_rows_of_what_is_no_array_of_objects_are_refused(rows: str) -> None:
    schema = {
        "type": "object",
        "properties": {k: SCHEMA["properties"][k] for k in ("seller", "delivery_dates")},
    }
    with pytest.raises(RequestError) as caught:
        table_for(compile_schema(schema), rows)
    assert caught.value.kind is NO_LINE_ITEMS
    assert caught.value.extra["available"] == []
    assert caught.value.extra["errors"][0]["pointer"] == "/rows"


def test_a_property_named_like_a_fixed_column_is_prefixed() -> None:
    schema = {"type": "object", "properties": {"status": {"type": "string"}, "line": {"type": "integer"}}}
    table = table_for(compile_schema(schema))
    assert table.header[len(FIXED) :] == ["data.status", "data.line"]
    row = json_rows(table, BatchDocument("a.pdf", "succeeded", "ext_1", 1.0, (), {"status": "paid"}))[0]
    assert row["status"] == "succeeded" and row["data.status"] == "paid" and row["data.line"] is None


def test_document_rows_as_csv() -> None:
    options = export_options()
    table = table_for(compile_schema(SCHEMA))
    header, done, failed = parse(
        header_bytes(table, options) + rows_bytes(table, [DONE, FAILED], options), options
    )
    assert header == table.header
    assert dict(zip(header, done, strict=True)) == {
        "document": "a.pdf",
        "extraction_id": "ext_1",
        "status": "needs_review",
        "confidence": "0.8125",
        "review_reasons": "low_confidence:/total; rival:/total",
        "invoice_number": "INV-1",
        "issue_date": "2024-03-15",
        "seller.name": "ACME; Supplies",
        "seller.vat_id": "DE136695976",
        "delivery_dates": "2024-03-01; 2024-03-02",
        "taxes.count": "1",
        "line_items.count": "2",
        "total": "1254.5",
        "paid": "false",
        "extra": '{"note":"x"}',
    }
    assert failed == ["b.pdf", "", "failed", "", "", *[""] * (len(header) - len(FIXED))]


def test_line_item_rows_repeat_the_document_columns() -> None:
    options = export_options(rows="line_items")
    table = table_for(compile_schema(SCHEMA), options.rows)
    empty = BatchDocument("c.pdf", "succeeded", "ext_3", 1.0, (), {"invoice_number": "INV-3"})
    text = header_bytes(table, options) + rows_bytes(table, [DONE, FAILED, empty], options)
    header, *rows = parse(text, options)
    lines = [dict(zip(header, row, strict=True)) for row in rows]
    assert [(line["document"], line["line"]) for line in lines] == [
        ("a.pdf", "1"),
        ("a.pdf", "2"),
        ("b.pdf", ""),  # failed: still a row
        ("c.pdf", ""),  # no line items: still a row, with its header values
    ]
    assert all(
        line["invoice_number"] == "INV-1" and line["seller.name"] == "ACME; Supplies" for line in lines[:2]
    )
    assert lines[1]["line_items.description"] == 'Gadget "small"\nblue'
    assert lines[1]["line_items.amount"] == "1234.5" and lines[1]["line_items.shipped"] == ""
    assert lines[0]["line_items.shipped"] == "2024-03-10"
    assert lines[3]["invoice_number"] == "INV-3" and lines[3]["line_items.description"] == ""
    assert lines[2]["status"] == "failed" and lines[2]["invoice_number"] == ""


def test_decimal_comma_semicolons_and_day_month_year() -> None:
    options = export_options(decimal=",", date_format="dmy", rows="line_items")
    assert options.delimiter == ";"
    table = table_for(compile_schema(SCHEMA), options.rows)
    text = header_bytes(table, options) + rows_bytes(table, [DONE], options)
    assert text.decode().splitlines()[0].startswith("document;extraction_id;status;")
    header, first, second = parse(text, options)
    line = dict(zip(header, second, strict=True))
    assert (
        line["total"] == "1254,5" and line["line_items.amount"] == "1234,5" and line["confidence"] == "0,8125"
    )
    assert line["issue_date"] == "15.03.2024" and line["delivery_dates"] == "01.03.2024; 02.03.2024"
    assert dict(zip(header, first, strict=True))["line_items.shipped"] == "10.03.2024"


@pytest.mark.parametrize(
    ("date_format", "decimal", "expected"),
    [
        ("iso", ".", "2024-03-15"),
        ("dmy", ".", "15/03/2024"),
        ("dmy", ",", "15.03.2024"),
        ("mdy", ",", "03/15/2024"),
    ],
)
def test_date_formats(date_format: str, decimal: str, expected: str) -> None:
    options = export_options(date_format=date_format, decimal=decimal)
    assert format_date("2024-03-15", options) == expected
    assert format_date("March 2024", options) == "March 2024"  # not an ISO date: as it is


def test_numbers_are_never_in_exponent_notation() -> None:
    schema = {"type": "object", "properties": {"small": {"type": "number"}, "big": {"type": "number"}}}
    table = table_for(compile_schema(schema))
    document = BatchDocument("a.pdf", "succeeded", "ext_1", None, (), {"small": 1e-05, "big": 1e16})
    row = parse(rows_bytes(table, [document], export_options()), export_options())[0]
    assert row[-2:] == ["0.00001", "10000000000000000"]


def test_tab_delimiter_and_bom() -> None:
    options = export_options(delimiter="tab", decimal=",", bom="true")
    assert options.delimiter == "\t"
    head = header_bytes(table_for(compile_schema(SCHEMA)), options)
    assert head.startswith(b"\xef\xbb\xbfdocument\textraction_id\t")
    assert export_options(decimal=",", delimiter=",").delimiter == ","


def test_json_lines_keep_the_data_as_it_is() -> None:
    options = export_options(format="jsonl")
    table = table_for(compile_schema(SCHEMA))
    assert header_bytes(table, options) == b""
    done, failed = (orjson.loads(line) for line in rows_bytes(table, [DONE, FAILED], options).splitlines())
    assert list(done) == [*FIXED, *SCHEMA["properties"]]
    assert done["review_reasons"] == ["low_confidence:/total", "rival:/total"]
    assert {k: done[k] for k in SCHEMA["properties"]} == DATA
    assert failed == dict.fromkeys(done) | {"document": "b.pdf", "status": "failed", "review_reasons": []}


def test_json_lines_of_line_items_carry_the_item_and_the_header() -> None:
    options = export_options(format="jsonl", rows="line_items")
    table = table_for(compile_schema(SCHEMA), options.rows)
    rows = [orjson.loads(line) for line in rows_bytes(table, [DONE, FAILED], options).splitlines()]
    assert [(r["document"], r["line"]) for r in rows] == [("a.pdf", 1), ("a.pdf", 2), ("b.pdf", None)]
    assert list(rows[0]) == [*FIXED, "line", "item", "header"]
    assert rows[1]["item"] == DATA["line_items"][1]
    assert rows[0]["header"] == {k: v for k, v in DATA.items() if k != "line_items"}
    assert rows[2]["item"] is None and rows[2]["header"] is None
    assert "line_items" in DATA  # the document's data is left as it is


def test_unknown_options_are_refused_all_at_once() -> None:
    with pytest.raises(RequestError) as caught:
        export_options(format="xlsx", decimal="'", delimiter="|", date_format="ymd", bom="yes", rows="")
    assert caught.value.kind is INVALID_EXPORT_OPTION
    pointers = [error["pointer"] for error in caught.value.extra["errors"]]
    assert pointers == ["/format", "/rows", "/decimal", "/delimiter", "/date_format", "/bom"]
    assert export_options() == ExportOptions()
