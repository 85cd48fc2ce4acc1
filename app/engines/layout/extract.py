"""Values for a schema from one page's words: labels, the values beside or below them, tables, and
the header block.

For every field, candidates come from labels that name it (the value after the label in the same
segment, in the next segment to its right, or in the segment below it), and, for party names and
addresses, from the header block. Each candidate is parsed as the field's kind with the trust
layer's normalisers; its score is the product of how well the label matched, where the value sits
relative to it, and how well it parsed. The declared checks (``x-checks``) then choose among the
best candidates of the fields they relate (``subtotal + tax == total``), and move the scores of
the chosen values up or down. A field without a candidate is null: nothing is guessed.

Scores are meant to be honest, since review routing and calibration rest on them: a value with a
rival nearly as likely (two different totals) is lowered, and so is a value taken from the layout
alone (a receipt's first lines as the company, the lines under it as the address), the more so
for each space or letter the OCR repair (``spacing.py``) had to guess. On receipts the total owed
is the last total above the payment lines (cash, change); totals below them are a tax summary.

The reader is built from: ``labels.py`` (tokens and where a label sits), ``values.py`` (reading a
value by kind), ``tables.py`` (line items), ``parties.py`` (names and addresses as printed) and
``lexicon.py`` (the words).
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from app.engines.layout.fields import FieldSpec, SchemaPlan
from app.engines.layout.labels import Label, char_tokens, find_label
from app.engines.layout.page import PageLayout, Segment
from app.engines.layout.parties import GUESS_FACTOR, HeaderReader, addressy
from app.engines.layout.spacing import guesses
from app.engines.layout.tables import TableReader
from app.engines.layout.values import (
    HAS_DIGIT,
    SEPARATORS,
    TOKEN,
    Candidate,
    currency_token,
    parse,
    parse_dates,
    phones,
)
from app.lexicon import PAYMENT_WORDS, is_label
from app.lib.jsonpointer import escape
from app.trust.checks import Check, evaluate
from app.trust.normalize import normalize
from app.trust.sources import Remembered

__all__ = ["Candidate", "PageReader", "PageValues"]

# A currency glued to its amount ("RM5.90", "TOTAL:USD12.00"): OCR and narrow receipt fonts.
_BARE_CURRENCY = re.compile(r"(?i)rm|myr|usd|eur|sgd|gbp|[$€£¥]")
SINGLE_DATE_SCORE = 0.85
UNLABELLED_PHONE_SCORE = 0.45
HEADER_SHARE = 0.4
"""The top part of a page where a letterhead or a receipt's header prints the issuer's details."""
FAX_WORDS = frozenset(["fax", "facsimile", "telefax", "telecopie"])
# An address is many words read by OCR, each of which may be off by a letter or a space.
ADDRESS_RELIABILITY = 0.35
MAX_NAME_WORDS = 7
MAX_BELOW_ROWS = 3
BELOW_SCORES = (0.85, 0.7)
"""How likely the first and second cell under a label is its value."""
PARTY_BELOW_SCORES = (0.85, 0.425)
MAX_SUM_ROWS = 10
SUM_WORDS = frozenset(
    ["summe", "sum", "total", "totals", "gesamt", "insgesamt", "somme", "totale", "totaal", "suma", "jumlah"]
)
"""Words that start a table's sum row, in the lexicon's languages."""
CHECK_CANDIDATES = 3
MAX_CHECK_FIELDS = 6
MAX_RIVALS = 2
MEMORY_MAX_SCORE = 0.99
MEMORY_MARGIN = 0.02
"""How far a remembered value's score is put above the best reading from labels."""


@dataclass
class PageValues:
    values: dict[tuple[str, ...], Candidate] = field(default_factory=dict)
    tables: dict[tuple[str, ...], list[dict[tuple[str, ...], Candidate]]] = field(default_factory=dict)
    rivals: dict[tuple[str, ...], list[Candidate]] = field(default_factory=dict)
    """Per field, the best candidates of other values than the chosen one, best first."""


class PageReader:
    """Reads one page for one schema plan."""

    def __init__(
        self,
        layout: PageLayout,
        plan: SchemaPlan,
        checks: list[Check],
        page: int,
        memory: dict[str, Remembered] | None = None,
    ) -> None:
        self.layout = layout
        self.plan = plan
        self.checks = checks
        self.page = page
        self.memory = memory or {}
        self.tokens = {s.index: char_tokens(s.text) for s in layout.segments}
        self.labels: dict[int, list[Label]] = {}
        self._find_labels()
        self.header = HeaderReader(layout, self.tokens, self.labels, page)

    def _find_labels(self) -> None:
        """Every field's labels on the page; a label inside a longer label of another field (Date in
        Due Date) is weakened."""
        by_segment: dict[int, list[Label]] = {}
        for index, spec in enumerate(self.plan.fields):
            if not spec.labels:
                continue
            for segment in self.layout.segments:
                found = find_label(segment, spec.labels, self.tokens[segment.index])
                if found is not None:
                    found.field = index
                    by_segment.setdefault(segment.index, []).append(found)
        for labels in by_segment.values():
            for label in labels:
                longer = [
                    other
                    for other in labels
                    if other.length > label.length
                    and other.token_span[0] <= label.token_span[0]
                    and other.token_span[1] >= label.token_span[1]
                    and self.plan.fields[other.field].concept is not self.plan.fields[label.field].concept
                ]
                # "Factuur datum": the rest of the segment is another field's label, so this
                # word only qualifies it.
                compound = [
                    other
                    for other in labels
                    if other.token_span[0] >= label.token_span[1]
                    and self.plan.fields[other.field].concept is not self.plan.fields[label.field].concept
                    and other.token_span[0] <= label.token_span[1] + 1
                ]
                if longer or compound:
                    label.coverage *= 0.3
                self.labels.setdefault(label.field, []).append(label)

    def read(self) -> PageValues:
        result = PageValues()
        options: dict[int, list[Candidate]] = {}
        for index, spec in enumerate(self.plan.fields):
            found = self._labelled(index, spec)
            if spec.role == "party":
                for candidate in found:
                    candidate.score *= _name_likeness(str(candidate.value))
            if spec.role == "party" and spec.concept is not None and spec.concept.party == "seller":
                found += self.header.names()
            options[index] = sorted(found, key=lambda c: -c.score)
        self._unlabelled_dates(options)
        self._unlabelled_phones(options)
        self._addresses(options)
        self._currency(options)
        self._remembered(options)
        self._apply_checks(options)
        for index, spec in enumerate(self.plan.fields):
            found = options[index]
            if not found:
                continue
            result.values[spec.path] = found[0]
            if rivals := _rivals(found):
                result.rivals[spec.path] = rivals
            _weigh_rivals(found, rivals)
        for table in self.plan.tables:
            rows = TableReader(self.layout, self.tokens).read(table)
            if rows:
                result.tables[table.path] = rows
        return result

    # -- labelled values

    def _labelled(self, index: int, spec: FieldSpec) -> list[Candidate]:
        found: list[Candidate] = []
        header_rows = self._header_rows()
        for label in self.labels.get(index, []):
            segment = label.segment
            quality = label.coverage * (1.0 if label.length >= 4 else 0.9)
            if spec.role == "party" and label.coverage < 0.5:
                quality *= 0.3  # "Removed debris from case": a word of a sentence, not a label
            inline = segment.text[label.start :]
            places: list[tuple[str, float, int]] = []
            if inline.strip(SEPARATORS):
                places.append((inline, 1.0, segment.index))
            right = [
                s
                for s in self.layout.rows[segment.row]
                if s.box[0] >= segment.box[2] - 1 and not _BARE_CURRENCY.fullmatch(s.text.strip())
            ]
            for rank, neighbour in enumerate(right[:2]):
                distance = (neighbour.box[0] - segment.box[2]) / self.layout.line_height
                places.append(
                    (neighbour.text, (0.95 if distance < 20 else 0.8) * (0.75**rank), neighbour.index)
                )
            column = segment.row in header_rows and self._column_of_values(segment)
            below_factor = 0.4 if column else 1.0
            # Under a party's label the name comes first; the line after it is its address.
            ranks = PARTY_BELOW_SCORES if spec.role == "party" else BELOW_SCORES
            for position, neighbour in zip(ranks, self._below(segment), strict=False):
                places.append((neighbour.text, position * below_factor, neighbour.index))
            sum_cell = self._sum_row_cell(segment) if column else None
            if sum_cell is not None:  # a VAT table's "Summe" row: the column's total, not a rate's
                places.append((sum_cell.text, 0.9, sum_cell.index))
            for text, position, source in places:
                for value, parsed, fit in parse(text, spec)[:2]:
                    found.append(Candidate(value, parsed, 0.97 * quality * position * fit, source))
        if spec.concept is not None and spec.concept.key == "total":
            self._prefer_final_total(found)
        return found

    def _prefer_final_total(self, found: list[Candidate]) -> None:
        """Of several totals, the amount owed: on a receipt the last total above the payment lines
        (cash, change: a GST summary below them repeats totals, and is no rival); elsewhere the
        largest."""
        strong = [c for c in found if isinstance(c.parsed, Decimal) and c.score > 0.5]
        if not strong:
            return
        rows = {id(c): self.layout.segments[c.segment].row for c in strong}
        first = min(rows.values())
        payment = next(
            (
                number
                for number, row in enumerate(self.layout.rows)
                if number > first and {t for t, _, _ in self.tokens[row[0].index][:2]} & PAYMENT_WORDS
            ),
            None,
        )
        before = [c for c in strong if payment is not None and rows[id(c)] < payment]
        if before:
            last = max(rows[id(c)] for c in before)
            chosen = {c.parsed for c in before if rows[id(c)] == last}
        else:
            chosen = {max(c.parsed for c in strong)}
        for c in found:
            below_payment = payment is not None and self.layout.segments[c.segment].row > payment
            if c.parsed not in chosen:
                c.score *= 0.5 if below_payment and before else 0.85

    def _below(self, segment: Segment) -> list[Segment]:
        """The cells under a label, one per row, each the one most under it (in a table's header
        row the value under "VAT amount" is not the one under the column to its left)."""
        out: list[Segment] = []
        for row in self.layout.rows[segment.row + 1 : segment.row + 1 + MAX_BELOW_ROWS]:
            if row[0].box[1] - segment.box[3] > 3 * self.layout.line_height:
                break
            cell = self._under(row, segment)
            if cell is not None:
                out.append(cell)
            if len(out) >= 2:
                break
        return out

    def _under(self, row: list[Segment], segment: Segment) -> Segment | None:
        """The cell of ``row`` most under ``segment``, if any is."""
        unit = self.layout.line_height
        best: tuple[float, Segment] | None = None
        for other in row:
            shared = min(other.box[2], segment.box[2]) - max(other.box[0], segment.box[0])
            narrower = min(other.box[2] - other.box[0], segment.box[2] - segment.box[0])
            if (shared >= 0.3 * narrower or (shared > -unit and narrower < 2 * unit)) and (
                best is None or shared > best[0]
            ):
                best = (shared, other)
        return best[1] if best is not None else None

    def _sum_row_cell(self, segment: Segment) -> Segment | None:
        """Under a table column's header, the cell on the table's sum row ("Summe", "Total"), whose
        row starts with a sum word: per-rate rows above it are each consistent, only it is the sum."""
        for row in self.layout.rows[segment.row + 1 : segment.row + 1 + MAX_SUM_ROWS]:
            first = self.tokens[row[0].index]
            if first and first[0][0] in SUM_WORDS and row[0] is not segment:
                return self._under(row, segment)
        return None

    def _column_of_values(self, segment: Segment) -> bool:
        """Whether three rows or more under this cell hold values: a table column, not a form."""
        count = 0
        for row in self.layout.rows[segment.row + 1 : segment.row + 5]:
            if any(o.box[0] < segment.box[2] and o.box[2] > segment.box[0] for o in row):
                count += 1
        return count >= 3

    def _unlabelled_dates(self, options: dict[int, list[Candidate]]) -> None:
        """The issue date when no label names it: the first date printed on the page (documents
        print their own date first), unless another date field claimed it; a modest score unless
        it is the only date on the page."""
        for index, spec in enumerate(self.plan.fields):
            if spec.concept is None or spec.concept.key != "issue_date" or spec.kind != "date":
                continue
            if options[index] and options[index][0].score >= 0.5:
                continue
            claimed = {
                options[i][0].segment
                for i, other in enumerate(self.plan.fields)
                if i != index and other.kind == "date" and options[i] and options[i][0].score >= 0.5
            }
            readings: list[tuple[int, Any, Any, float]] = []
            for segment in self.layout.segments:
                if segment.index in claimed or sum(c.isdigit() for c in segment.text) < 4:
                    continue  # a date has four digits or more
                if found := parse_dates(segment.text):
                    readings.append((segment.index, *found[0]))
                    if len(readings) >= 3 and len({r[2] for r in readings}) > 1:
                        break
            # one date printed (however often): the document's; several: the first, a guess
            base = SINGLE_DATE_SCORE if len({parsed for _, _, parsed, _ in readings}) == 1 else 0.55
            for rank, (source, value, parsed, fit) in enumerate(readings[:3]):
                options[index].append(Candidate(value, parsed, base * fit * (0.8**rank), source))
            options[index].sort(key=lambda c: -c.score)

    def _unlabelled_phones(self, options: dict[int, list[Candidate]]) -> None:
        """A phone number no label names: the first one printed in the top part of the page (a
        receipt's or a letterhead's header), not on a fax line; scored as the guess it is."""
        for index, spec in enumerate(self.plan.fields):
            if spec.kind != "phone" or (options[index] and options[index][0].score >= 0.5):
                continue
            for segment in self.layout.segments:
                if segment.box[1] > HEADER_SHARE * self.layout.height:
                    continue
                if {t for t, _, _ in self.tokens[segment.index]} & FAX_WORDS:
                    continue
                if found := phones(segment.text):
                    value, parsed, fit = found[0]
                    options[index].append(
                        Candidate(value, parsed, UNLABELLED_PHONE_SCORE * fit, segment.index)
                    )
                    options[index].sort(key=lambda c: -c.score)
                    break

    def _header_rows(self) -> set[int]:
        """Rows that look like a table's header: three or more short label-like cells."""
        rows = set()
        for number, row in enumerate(self.layout.rows):
            cells = [s for s in row if not HAS_DIGIT.search(s.text) and len(s.text) <= 30]
            if len(cells) >= 3 and len(cells) == len(row):
                rows.add(number)
        return rows

    # -- addresses

    def _addresses(self, options: dict[int, list[Candidate]]) -> None:
        """An address is the block of lines under its party's name (the header block for the
        issuer), up to a line with a phone, a registration number or a label."""
        names = {
            spec.concept.party: options[i][0]
            for i, spec in enumerate(self.plan.fields)
            if spec.role == "party" and spec.concept is not None and options[i]
        }
        for index, spec in enumerate(self.plan.fields):
            if spec.role != "address" or spec.concept is None:
                continue
            for candidate in options[index]:
                if not addressy(str(candidate.value)):
                    candidate.score *= 0.3  # "Address:" beside something that is no address
            name = names.get(spec.concept.party)
            if name is None and spec.concept.party == "seller":
                header = self.header.names()
                name = header[0] if header else None
            if name is None:
                continue
            lines = self.header.block_after(self.layout.segments[name.segment])
            if lines:
                text = " ".join(self.header.spaced(s) for s in lines)
                guessed = sum(guesses(s.text, self.header.spaced(s)) for s in lines)
                score = min(0.85, name.score) * (0.9 if len(lines) > 1 else 0.8) * GUESS_FACTOR**guessed
                score *= ADDRESS_RELIABILITY
                if not addressy(text):
                    score *= 0.6
                options[index].append(Candidate(text, text, score, lines[0].index))
            options[index].sort(key=lambda c: -c.score)

    def _currency(self, options: dict[int, list[Candidate]]) -> None:
        """Without a labelled currency, the code or symbol printed beside the amounts, when the page
        uses just one."""
        for index, spec in enumerate(self.plan.fields):
            if spec.kind != "currency" or options[index]:
                continue
            seen: dict[str, tuple[str, int, int]] = {}
            numeric_rows = {s.row for s in self.layout.segments if HAS_DIGIT.search(s.text)}
            for segment in self.layout.segments:
                if segment.row not in numeric_rows:
                    continue
                for token in TOKEN.findall(segment.text):
                    bare = currency_token(token)
                    if bare is None:
                        continue
                    n = normalize(bare, "currency")
                    if n.status == "ok":
                        code = str(n.value)
                        raw, count, at = seen.get(code, (bare, 0, segment.index))
                        seen[code] = (raw, count + 1, at)
            if len(seen) == 1 or (
                seen and max(c for _, c, _ in seen.values()) >= 3 * sorted(c for _, c, _ in seen.values())[-2]
                if len(seen) > 1
                else False
            ):
                code, (raw, count, at) = max(seen.items(), key=lambda kv: kv[1][1])
                options[index] = [Candidate(raw, code, 0.7 if count > 1 else 0.55, at)]

    # -- sender memory

    def _remembered(self, options: dict[int, list[Candidate]]) -> None:
        """A value found where an approved document of the same sender printed the field is the
        field's strongest candidate (only a check may still prefer another); the reading it
        displaces stays a rival, so a disagreement lowers the score and is reviewed."""
        for index, spec in enumerate(self.plan.fields):
            hint = self.memory.get("".join(f"/{escape(part)}" for part in spec.path))
            if hint is None or hint.page != self.page:
                continue
            readings = parse(hint.text, spec)
            if not readings:
                continue
            value, parsed, fit = readings[0]
            found = [c for c in options[index] if _key(c.parsed) != _key(parsed)]
            best = max((c.score for c in options[index]), default=0.0)
            score = min(MEMORY_MAX_SCORE, max(hint.score * fit, best + MEMORY_MARGIN))
            remembered = Candidate(value, parsed, score, self._segment_at(hint), memory=True)
            options[index] = [remembered, *found]

    def _segment_at(self, hint: Remembered) -> int:
        """The segment that holds most of the remembered value's box."""
        width, height = self.layout.width, self.layout.height
        box = (hint.bbox[0] * width, hint.bbox[1] * height, hint.bbox[2] * width, hint.bbox[3] * height)

        def shared(segment: Segment) -> float:
            width = min(box[2], segment.box[2]) - max(box[0], segment.box[0])
            height = min(box[3], segment.box[3]) - max(box[1], segment.box[1])
            return max(width, 0.0) * max(height, 0.0)

        return max(self.layout.segments, key=shared).index

    # -- checks

    def _apply_checks(self, options: dict[int, list[Candidate]]) -> None:
        """Choose, among the best candidates of the fields the declared checks relate, the
        combination that passes most checks; then raise the scores of values a check confirms and
        lower those it contradicts."""
        simple = [c for c in self.checks if c.for_each is None]
        if not simple:
            return
        top_paths = {spec.path: i for i, spec in enumerate(self.plan.fields) if len(spec.path) == 1}
        involved = [i for i in top_paths.values() if options[i] and self.plan.fields[i].numeric][
            :MAX_CHECK_FIELDS
        ]
        if not involved:
            return
        best: tuple[float, tuple[int, ...]] | None = None
        choices = [range(min(CHECK_CANDIDATES, len(options[i]))) for i in involved]
        for combo in itertools.product(*choices):
            data = self._data(options, dict(zip(involved, combo, strict=True)))
            results = evaluate(simple, data)
            passed = sum(r.status == "passed" for r in results)
            failed = sum(r.status == "failed" for r in results)
            objective = sum(
                math.log(max(options[i][k].score, 1e-6)) for i, k in zip(involved, combo, strict=True)
            )
            objective += 1.5 * passed - 1.5 * failed
            if best is None or objective > best[0]:
                best = (objective, combo)
        assert best is not None
        for i, k in zip(involved, best[1], strict=True):
            options[i].insert(0, options[i].pop(k))
        results = evaluate(simple, self._data(options, {}))
        for result in results:
            for pointer in result.pointers:
                index = top_paths.get((pointer.lstrip("/"),))
                if index is None or not options[index]:
                    continue
                chosen = options[index][0]
                if result.status == "passed":
                    chosen.score = 1 - (1 - chosen.score) * 0.4
                elif result.status == "failed":
                    chosen.score *= 0.6

    def _data(self, options: dict[int, list[Candidate]], pick: dict[int, int]) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for index, spec in enumerate(self.plan.fields):
            if len(spec.path) != 1 or not options[index]:
                continue
            parsed = options[index][pick.get(index, 0)].parsed
            data[spec.path[0]] = float(parsed) if isinstance(parsed, Decimal) else parsed
        return data


def _name_likeness(text: str) -> float:
    """How much a party's candidate reads as a name: a sentence that mentions a label, an address
    line under the name ("221 Baker Street") or a labelled value ("Currency: GBP") is not one."""
    if len(text.split()) > MAX_NAME_WORDS:
        return 0.3
    if addressy(text) or (":" in text and is_label(text.split(":", 1)[0])):
        return 0.5
    return 1.0


def _rivals(found: list[Candidate]) -> list[Candidate]:
    """The best candidate of each other value than the chosen one's (up to ``MAX_RIVALS``)."""
    seen = {_key(found[0].parsed)}
    rivals: list[Candidate] = []
    for candidate in sorted(found[1:], key=lambda c: -c.score):
        if _key(candidate.parsed) not in seen and len(rivals) < MAX_RIVALS:
            seen.add(_key(candidate.parsed))
            rivals.append(candidate)
    return rivals


def _key(parsed: Any) -> Any:
    return " ".join(parsed.casefold().split()) if isinstance(parsed, str) else parsed


def _weigh_rivals(found: list[Candidate], rivals: list[Candidate]) -> None:
    """A value with a rival nearly as likely (another total, another name) is a guess between the
    two: its score says so, so that review catches the wrong half."""
    top = found[0]
    if rivals and rivals[0].score >= 0.7 * top.score:
        top.score *= 0.5 + 5 / 3 * max(0.0, 1 - rivals[0].score / top.score)  # 0.5 for a tie, 1 at 70%
