"""A batch's results as a table for an ERP import: columns read from the schema, one row per
document or per line item, encoded as CSV or JSON Lines.

Pure functions over a compiled schema and stored results, so the export route only pages through
the database and streams what these return, and every formatting rule is tested on its own.

Columns are the fixed ones (``FIXED``, and ``line`` for line-item rows), then the schema's
properties in schema order: nested objects flattened with dots (``seller.name``), arrays of scalars
joined with ``"; "``, and an array of objects as its count (``line_items.count``). In line-item
rows the exploded array's item properties take the place of its count (``line_items.amount``) and
the document's other columns repeat on every line. A schema property named like a fixed column is
exported as ``data.<name>``.

JSON Lines rows carry the fixed keys too; a document row then has the data's top-level properties
as they are (nested objects and arrays kept), a line-item row ``line``, ``item`` (the line item as
it is) and ``header`` (the document's data without the exploded array). Numbers stay numbers and
dates ISO: ``decimal``, ``delimiter``, ``date_format`` and ``bom`` shape CSV only.
"""

from __future__ import annotations

import copy
import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import orjson

from app.lib.errors import RequestError
from app.lib.jsonpointer import get, pointer
from app.lib.problems import INVALID_EXPORT_OPTION, NO_LINE_ITEMS, ErrorItem
from app.schema.compiled import CompiledSchema
from app.schema.kinds import ITEM
from app.schema.tree import declared_types

FIXED = ("document", "extraction_id", "status", "confidence", "review_reasons")
LINE = "line"
JOINER = "; "
DOCUMENTS = "documents"
LINE_ITEMS = "line_items"
MAX_DEPTH = 32
"""Nesting followed into a schema (the registry allows far less)."""

ExportFormat = Literal["csv", "jsonl"]
DateFormat = Literal["iso", "dmy", "mdy"]
FORMATS: tuple[ExportFormat, ...] = ("csv", "jsonl")
DECIMALS = (".", ",")
DELIMITERS = {",": ",", ";": ";", "tab": "\t"}
DATE_FORMATS: tuple[DateFormat, ...] = ("iso", "dmy", "mdy")
BOOLEANS = {"true": True, "1": True, "false": False, "0": False}
BOM = "\ufeff"
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


@dataclass(frozen=True)
class ExportOptions:
    """How one export is shaped (see :func:`export_options`)."""

    format: ExportFormat = "csv"
    rows: str = DOCUMENTS
    """``documents``, ``line_items`` (that array of objects, else the schema's first) or the dotted
    name of an array of objects."""
    decimal: str = "."
    delimiter: str = ","
    """The character itself (``tab`` arrives as ``\\t``)."""
    date_format: DateFormat = "iso"
    bom: bool = False


def export_options(
    *,
    format: str = "csv",
    rows: str = DOCUMENTS,
    decimal: str = ".",
    delimiter: str | None = None,
    date_format: str = "iso",
    bom: str = "false",
) -> ExportOptions:
    """The query parameters read, every wrong one named at once (``invalid-export-option``). With a
    decimal comma the delimiter defaults to ``;``, as spreadsheets in those locales expect."""
    errors: list[ErrorItem] = []

    def refuse(name: str, value: str, allowed: Iterable[str]) -> None:
        choices = ", ".join(f"`{a}`" for a in allowed)
        errors.append({"pointer": f"/{name}", "detail": f"{value!r} is not one of {choices}"})

    if format not in FORMATS:
        refuse("format", format, FORMATS)
    if not rows:
        errors.append({"pointer": "/rows", "detail": "empty: `documents`, `line_items` or an array's name"})
    if decimal not in DECIMALS:
        refuse("decimal", decimal, DECIMALS)
    if delimiter is not None and delimiter not in DELIMITERS:
        refuse("delimiter", delimiter, DELIMITERS)
    if date_format not in DATE_FORMATS:
        refuse("date_format", date_format, DATE_FORMATS)
    if bom.lower() not in BOOLEANS:
        refuse("bom", bom, ("true", "false"))
    if errors:
        raise RequestError(
            INVALID_EXPORT_OPTION,
            "Invalid export options: " + "; ".join(f"{e['pointer'][1:]} {e['detail']}" for e in errors),
            errors=errors,
        )
    if delimiter is None:
        delimiter = ";" if decimal == "," else ","
    return ExportOptions(
        format=format,  # type: ignore[arg-type]  # checked against FORMATS above
        rows=rows,
        decimal=decimal,
        delimiter=DELIMITERS[delimiter],
        date_format=date_format,  # type: ignore[arg-type]  # checked against DATE_FORMATS above
        bom=BOOLEANS[bom.lower()],
    )


@dataclass(frozen=True)
class Column:
    """One CSV column: where its value is and how it is written."""

    name: str
    path: tuple[str, ...]
    """Keys into the document's data, or into the line item for ``item`` columns."""
    shape: Literal["value", "list", "count"]
    """A value as it is, an array of scalars (joined), or an array of objects (counted)."""
    date: bool = False
    """A ``format: date`` value (or ``x-normalize: date``): written as ``date_format`` says."""
    item: bool = False


@dataclass(frozen=True)
class Table:
    """What rows an export has and their columns (after the fixed ones)."""

    columns: tuple[Column, ...]
    array: tuple[str, ...] | None
    """The exploded array of objects (one row per item), or None: one row per document."""
    top: tuple[str, ...]
    """The schema's top-level properties: the keys of a JSON Lines document row."""

    @property
    def header(self) -> list[str]:
        fixed = [*FIXED, LINE] if self.array is not None else list(FIXED)
        return fixed + [column.name for column in self.columns]


@dataclass(frozen=True)
class BatchDocument:
    """One document of a batch: its job's name and status, and its stored result once it has one."""

    name: str | None
    """The batch entry's name (a file part's, a zip entry's): the ``document`` column."""
    status: str
    """The result's (``succeeded``, ``needs_review``, ``approved``, ``rejected``), else the job's."""
    extraction_id: str | None = None
    confidence: float | None = None
    review_reasons: tuple[str, ...] = ()
    data: Any = None
    """The result's data; None while there is none (failed, queued, running, cancelled)."""


@dataclass(frozen=True)
class _Field:
    path: tuple[str, ...]
    shape: Literal["value", "list", "objects"]
    date: bool = False
    items: Any = None
    """The item schema of an array of objects."""


def table_for(compiled: CompiledSchema, rows: str = DOCUMENTS) -> Table:
    """The columns of an export of results of this schema, in schema order; ``rows`` other than
    ``documents`` names the array of objects to make rows of (``no-line-items`` when it has none)."""
    fields = list(_fields(compiled, compiled.schema, (), (), 0))
    array = None if rows == DOCUMENTS else _array(fields, rows)
    columns: list[Column] = []
    for field in fields:
        if field.path == array:
            for inner in _fields(compiled, field.items, (), (*field.path, ITEM), 0):
                name = ".".join((*field.path, *inner.path))
                columns.append(_column(name, inner, item=True))
        else:
            columns.append(_column(_name(field.path), field))
    top = tuple(compiled.tree.properties(compiled.schema))
    return Table(tuple(columns), array, top)


def _array(fields: list[_Field], rows: str) -> tuple[str, ...]:
    arrays = {".".join(f.path): f.path for f in fields if f.shape == "objects"}
    if rows in arrays:
        return arrays[rows]
    if rows == LINE_ITEMS and arrays:
        return next(iter(arrays.values()))
    wanted = "an array of objects" if rows == LINE_ITEMS else f"an array of objects named {rows!r}"
    raise RequestError(
        NO_LINE_ITEMS,
        f"The batch's schema has no {wanted} to make rows of; it has: {', '.join(arrays) or 'none'}.",
        errors=[{"pointer": "/rows", "detail": f"{rows!r} names no array of objects"}],
        available=list(arrays),
    )


def _column(name: str, field: _Field, *, item: bool = False) -> Column:
    if field.shape == "objects":
        return Column(f"{name}.count", field.path, "count", item=item)
    return Column(name, field.path, field.shape, field.date, item)


def _name(path: tuple[str, ...]) -> str:
    name = ".".join(path)
    return f"data.{name}" if name in (*FIXED, LINE) else name


def _fields(
    compiled: CompiledSchema, node: Any, path: tuple[str, ...], at: tuple[str, ...], depth: int
) -> Iterator[_Field]:
    """The schema's places in schema order: objects walked into, arrays and scalars yielded.
    ``at`` is the place's schema path (``*`` for array items), where its kind is looked up."""
    tree = compiled.tree
    resolved = tree.object(node)
    properties = tree.properties(resolved)
    if properties and depth < MAX_DEPTH:
        for key, child in properties.items():
            yield from _fields(compiled, child, (*path, key), (*at, key), depth + 1)
    elif "items" in resolved or "array" in declared_types(resolved):
        items = tree.items(resolved)
        if tree.properties(items):
            yield _Field(path, "objects", items=items)
        else:
            yield _Field(path, "list", _is_date(compiled, (*at, ITEM)))
    else:
        yield _Field(path, "value", _is_date(compiled, at))


def _is_date(compiled: CompiledSchema, at: tuple[str, ...]) -> bool:
    leaf = compiled.leaves.get(at)
    return leaf is not None and leaf.kind == "date"


def header_bytes(table: Table, options: ExportOptions) -> bytes:
    """What an export starts with: the CSV header row (after a BOM if asked); nothing for JSON Lines."""
    if options.format == "jsonl":
        return b""
    return ((BOM if options.bom else "") + _csv_line(table.header, options)).encode()


def rows_bytes(table: Table, documents: Iterable[BatchDocument], options: ExportOptions) -> bytes:
    """The rows of ``documents`` (a page of the batch, in order), encoded."""
    if options.format == "jsonl":
        return b"".join(
            orjson.dumps(row) + b"\n" for document in documents for row in json_rows(table, document)
        )
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=options.delimiter, lineterminator="\r\n")
    for document in documents:
        writer.writerows(csv_rows(table, document, options))
    return buffer.getvalue().encode()


def _csv_line(cells: list[str], options: ExportOptions) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=options.delimiter, lineterminator="\r\n").writerow(cells)
    return buffer.getvalue()


def csv_rows(table: Table, document: BatchDocument, options: ExportOptions) -> list[list[str]]:
    """The document's CSV rows, cells as text: one, or one per item of the exploded array (one with
    ``line`` empty when there is none, so no document goes missing)."""
    fixed = [
        document.name or "",
        document.extraction_id or "",
        document.status,
        _text(document.confidence, options),
        JOINER.join(document.review_reasons),
    ]
    if table.array is None:
        return [fixed + [_cell(document.data, None, column, options) for column in table.columns]]
    return [
        [*fixed, "" if line is None else str(line)]
        + [_cell(document.data, item, column, options) for column in table.columns]
        for line, item in _lines(document.data, table.array)
    ]


def json_rows(table: Table, document: BatchDocument) -> list[dict[str, Any]]:
    """The document's JSON Lines rows (see the module's docstring), values as in the data."""
    fixed: dict[str, Any] = {
        "document": document.name,
        "extraction_id": document.extraction_id,
        "status": document.status,
        "confidence": document.confidence,
        "review_reasons": list(document.review_reasons),
    }
    data = document.data if isinstance(document.data, dict) else None
    if table.array is None:
        values = {_name((key,)): None if data is None else data.get(key) for key in table.top}
        return [fixed | values]
    header = None if data is None else _without(data, table.array)
    return [
        fixed | {LINE: line, "item": item, "header": header}
        for line, item in _lines(document.data, table.array)
    ]


def _lines(data: Any, array: tuple[str, ...]) -> list[tuple[int | None, Any]]:
    items = get(data, pointer(array))
    if not isinstance(items, list) or not items:
        return [(None, None)]
    return [(number, item) for number, item in enumerate(items, start=1)]


def _without(data: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    """``data`` without the value at ``path`` (a copy; ``data`` is left as it is)."""
    header = copy.deepcopy(data)
    parent: Any = get(header, pointer(path[:-1]))
    if isinstance(parent, dict):
        parent.pop(path[-1], None)
    return header


def _cell(data: Any, item: Any, column: Column, options: ExportOptions) -> str:
    value = get(item if column.item else data, pointer(column.path))
    if column.shape == "count":
        if isinstance(value, list):
            return str(len(value))
        return "0" if isinstance(item if column.item else data, dict) else ""
    if column.shape == "list" and isinstance(value, list):
        return JOINER.join(_text(v, options, date=column.date) for v in value)
    return _text(value, options, date=column.date)


def _text(value: Any, options: ExportOptions, *, date: bool = False) -> str:
    """One value as CSV text: numbers with the decimal separator (never in exponent notation),
    dates as ``date_format`` says, anything structured as JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format(Decimal(repr(value)), "f").replace(".", options.decimal)
    if isinstance(value, str):
        return format_date(value, options) if date else value
    return orjson.dumps(value).decode()


def format_date(value: str, options: ExportOptions) -> str:
    """An ISO date (``2024-03-15``) as ``dmy`` (``15/03/2024``; ``15.03.2024`` with a decimal comma)
    or ``mdy`` (``03/15/2024``); anything else (or ``iso``) as it is."""
    match = _ISO_DATE.match(value)
    if match is None or options.date_format == "iso":
        return value
    year, month, day = match.groups()
    if options.date_format == "mdy":
        return f"{month}/{day}/{year}"
    separator = "." if options.decimal == "," else "/"
    return f"{day}{separator}{month}{separator}{year}"
