"""Tables on a page: a header row that names the item's fields, the rows under it cell by cell, and
quantity x unit price = amount as a check on each row."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from app.engines.layout.fields import FieldSpec, TableSpec
from app.engines.layout.labels import phrase_at
from app.engines.layout.page import PageLayout, Segment
from app.engines.layout.values import Candidate, parse
from app.lexicon import BY_KEY
from app.lexicon import fold_phrase as fold


class TableReader:
    """Reads the rows of one table (an array of objects in the schema) from a page."""

    def __init__(self, layout: PageLayout, tokens: dict[int, list[tuple[str, int, int]]]) -> None:
        self.layout = layout
        self.tokens = tokens

    def read(self, table: TableSpec) -> list[dict[tuple[str, ...], Candidate]]:
        """Rows under a header row that names two or more of the item's fields; each cell goes to
        the column whose header it lies under. Rows without a number in an amount-like column
        continue the previous row's text; a totals row or a wide gap ends the table."""
        header = self._table_header(table)
        if header is None:
            return []
        row_number, columns = header
        columns.sort(key=lambda c: c[1])
        bounds = [(columns[i - 1][2] + columns[i][1]) / 2 if i else -math.inf for i in range(len(columns))]
        numeric = [i for i, (spec, _, _) in enumerate(columns) if spec.numeric]
        text_column = next((i for i, (spec, _, _) in enumerate(columns) if not spec.numeric), None)
        stop_labels = tuple(
            label
            for key in ("total", "subtotal", "tax_total")
            for label in BY_KEY[key].labels
            if len(label) >= 3
        )
        unit = self.layout.line_height
        items: list[dict[tuple[str, ...], Candidate]] = []
        last_bottom = self.layout.rows[row_number][0].box[3]
        for row in self.layout.rows[row_number + 1 :]:
            top = min(s.box[1] for s in row)
            if top - last_bottom > 4 * unit:
                break
            first = fold(row[0].text)
            if any(first.startswith(label) for label in stop_labels):
                break
            cells: dict[int, list[Any]] = {}
            for segment in row:
                for word in segment.words:
                    x0 = word.bbox[0] * self.layout.width
                    x1 = word.bbox[2] * self.layout.width
                    column = max(i for i in range(len(columns)) if bounds[i] <= (x0 + x1) / 2)
                    cells.setdefault(column, []).append((word, segment.index))
            values: dict[tuple[str, ...], Candidate] = {}
            for column, entries in cells.items():
                spec = columns[column][0]
                text = " ".join(w.text for w, _ in entries)
                parsed = parse(text, spec)
                if parsed:
                    value, norm, fit = parsed[0]
                    values[spec.path] = Candidate(value, norm, 0.85 * fit, entries[0][1])
            has_number = any(columns[i][0].path in values for i in numeric)
            if has_number:
                items.append(values)
                last_bottom = max(s.box[3] for s in row)
            elif items and text_column is not None and top - last_bottom < 1.5 * unit:
                path = columns[text_column][0].path
                extra = values.get(path)
                if extra is not None and path in items[-1]:
                    previous = items[-1][path]
                    joined = f"{previous.value} {extra.value}"
                    items[-1][path] = Candidate(joined, joined, previous.score * 0.95, previous.segment)
                last_bottom = max(s.box[3] for s in row)
        for item in items:
            self._check_item(table, item)
        return items

    def _table_header(self, table: TableSpec) -> tuple[int, list[tuple[FieldSpec, float, float]]] | None:
        best: tuple[int, list[tuple[FieldSpec, float, float]]] | None = None
        for number, row in enumerate(self.layout.rows):
            found: list[tuple[FieldSpec, float, float]] = []
            used: set[tuple[int, int]] = set()
            for spec in sorted(table.columns, key=lambda s: -max((len(x) for x in s.labels), default=0)):
                for segment in row:
                    tokens = self.tokens[segment.index]
                    words = [t for t, _, _ in tokens]
                    match = phrase_at(words, spec.labels)
                    if match is None:
                        continue
                    start, end = match
                    span = (segment.index, start)
                    if any(u[0] == segment.index and start <= u[1] < end for u in used):
                        continue
                    used.update((segment.index, k) for k in range(start, end))
                    x0, x1 = self._span_x(segment, tokens[start][1], tokens[end - 1][2])
                    found.append((spec, x0, x1))
                    del span
                    break
            if (
                len(found) >= 2
                and any(s.numeric for s, _, _ in found)
                and (best is None or len(found) > len(best[1]))
            ):
                best = (number, found)
        return best

    def _span_x(self, segment: Segment, start: int, end: int) -> tuple[float, float]:
        offset, xs = 0, []
        for word in segment.words:
            if offset < end and offset + len(word.text) > start:
                xs += [word.bbox[0] * self.layout.width, word.bbox[2] * self.layout.width]
            offset += len(word.text) + 1
        return (min(xs), max(xs)) if xs else (segment.box[0], segment.box[2])

    def _check_item(self, table: TableSpec, item: dict[tuple[str, ...], Candidate]) -> None:
        """quantity x unit price = amount, by the columns' concepts: agreement raises all three."""
        by_concept = {
            spec.concept.key: spec.path
            for spec in table.columns
            if spec.concept is not None and spec.path in item
        }
        keys = ("item_quantity", "item_unit_price", "item_amount")
        if not all(k in by_concept for k in keys):
            return
        q, p, a = (item[by_concept[k]].parsed for k in keys)
        if all(isinstance(v, Decimal) for v in (q, p, a)):
            agree = abs(q * p - a) <= Decimal("0.02") + abs(a) * Decimal("0.001")
            for k in keys:
                candidate = item[by_concept[k]]
                candidate.score = 1 - (1 - candidate.score) * 0.4 if agree else candidate.score * 0.8
