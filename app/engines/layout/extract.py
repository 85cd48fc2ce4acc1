"""Values for a schema from one page's words: labels, the values beside or below them, tables, and
the header block.

For every field, candidates come from labels that name it (the value after the label in the same
segment, in the next segment to its right, or in the segment below it), and, for party names and
addresses, from the header block. Each candidate is parsed as the field's kind with the trust
layer's normalisers; its score is the product of how well the label matched, where the value sits
relative to it, and how well it parsed. The declared checks (``x-checks``) then choose among the
best candidates of the fields they relate (``subtotal + tax == total``), and move the scores of
the chosen values up or down. A field without a candidate is null: nothing is guessed.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from app.engines.layout.fields import FieldSpec, SchemaPlan, TableSpec, fold
from app.engines.layout.lexicon import BY_KEY, LEGAL_SUFFIXES, TITLE_WORDS
from app.engines.layout.page import PageLayout, Segment
from app.trust.checks import Check, evaluate
from app.trust.normalize import Kind, Normalized
from app.trust.normalize import normalize as _trust_normalize

_AMOUNT = re.compile(r"(?<![\w.,])[-(]?\d(?:[\d.,' ]*\d)?(?:\)|-)?(?![\w]|[.,]\d)")
_TOKEN = re.compile(r"\S+")
_SEPARATORS = " \t:;#.-\u2013\u2014=|"
_IBAN = re.compile(r"[A-Z]{2}\d{2}[A-Z0-9 ]{8,34}")
_HAS_DIGIT = re.compile(r"\d")
_STOP_ADDRESS = re.compile(
    r"\b(tel|telephone|phone|fax|hp|h/p|email|e-mail|gst|sst|vat|reg|co\.? ?no|company no|invoice|"
    r"receipt|date|cashier|table|www|http|tax)\b",
    re.IGNORECASE,
)
_MONEY = re.compile(r"[-(]?[$€£¥]?\d{1,3}(?:[.,' ]?\d{3})*[.,]\d{2}\)?")
_PART_BREAK = re.compile(r"\s[-\u2013\u2014|•\u2212]\s|;|\|")
_CURRENCY_CODES = frozenset(
    ("EUR", "USD", "GBP", "CHF", "INR", "MYR", "RM", "SGD", "JPY", "CNY", "AUD", "CAD")
)
_REGISTRATION = re.compile(
    r"[(\uff08]?\s*(?:co\.?\s*(?:reg\.?)?\s*no\.?[:\s]*)?[A-Z]{0,3}\d[\d\s-]{3,}-?\s*[A-Z]?\s*[)\uff09]?",
    re.IGNORECASE,
)
_TRAILING_REGISTRATION = re.compile(r"\s*[(\uff08][^()\uff08\uff09]*\d[^()\uff08\uff09]*[)\uff09]\s*$")
_NUMERIC_DATE = re.compile(r"(?<!\d)(\d{1,2})([/.-])(\d{1,2})\2(\d{4}|\d{2})")
_STOP_WORDS = frozenset(
    [
        "tel",
        "te1",
        "tei",
        "fax",
        "phone",
        "hp",
        "email",
        "gst",
        "gstid",
        "gstno",
        "sst",
        "invoice",
        "taxinvoice",
        "receipt",
        "served",
        "cashier",
        "date",
        "doc",
        "bill",
        "cash",
        "table",
        "counter",
    ]
)
MAX_BELOW_ROWS = 3
CHECK_CANDIDATES = 3
MAX_CHECK_FIELDS = 6


@dataclass
class Candidate:
    value: Any
    """The JSON value to output: the number, or the text as printed."""
    parsed: Any
    """The normalised value (for checks and for comparing candidates)."""
    score: float
    segment: int


@dataclass
class Label:
    field: int
    segment: Segment
    start: int
    """Character offset in the segment's text where the value may start."""
    coverage: float
    length: int
    token_span: tuple[int, int]


@dataclass
class PageValues:
    values: dict[tuple[str, ...], Candidate] = field(default_factory=dict)
    tables: dict[tuple[str, ...], list[dict[tuple[str, ...], Candidate]]] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------------
# tokens and labels


def char_tokens(text: str) -> list[tuple[str, int, int]]:
    """Folded tokens of ``text`` with their character spans (so a value can be cut after a label)."""
    tokens: list[tuple[str, int, int]] = []
    current, start = "", 0
    for i, ch in enumerate(text):
        folded = fold(ch) if ch.isalnum() else ""
        if folded:
            if not current:
                start = i
            current += folded.replace(" ", "")
        elif current:
            tokens.append((current, start, i))
            current = ""
    if current:
        tokens.append((current, start, len(text)))
    return tokens


def find_label(segment: Segment, labels: tuple[str, ...], tokens: list[tuple[str, int, int]]) -> Label | None:
    """The best of ``labels`` in the segment: near its start, covering most of the label part."""
    tokens = [
        t for t in tokens if t[0].upper() not in _CURRENCY_CODES or not segment.text[t[1] : t[2]].isupper()
    ]
    words = [t for t, _, _ in tokens]
    part_starts = _part_starts(segment.text, tokens)
    best: Label | None = None
    present = set(words)
    for phrase in labels:
        parts = phrase.split()
        compact = "".join(parts)
        if parts[0] not in present and compact not in present:
            continue
        for start in range(len(words)):
            if words[start : start + len(parts)] == parts:
                end = start + len(parts)
            elif len(parts) > 1 and words[start] == compact:
                end = start + 1
            else:
                continue
            char_end = tokens[end - 1][2]
            before = segment.text[max(tokens[start][1] - 1, 0) : tokens[start][1]]
            if segment.text[char_end : char_end + 1] in ("_", "@") or before in ("_", "@"):
                continue
            prefix = start - max((p for p in part_starts if p <= start), default=0)
            if prefix > 3:
                continue
            colon = segment.text.find(":", char_end)
            extra = 0
            if colon != -1:
                extra = sum(1 for _, s, _ in tokens if char_end <= s < colon)
                if extra <= 3:
                    char_end = colon + 1
                else:
                    extra = 0
            coverage = len(parts) / (prefix + len(parts) + extra)
            if best is None or (coverage, len(phrase)) > (best.coverage, best.length):
                best = Label(-1, segment, char_end, coverage, len(phrase), (start, end))
            break
    return best


def normalize(raw: str, kind: Kind) -> Normalized:
    """The trust layer's reading, with odd digit runs (1.234.5,6) that it cannot split as unparsed:
    a page must never fail because one candidate is strange."""
    try:
        return _trust_normalize(raw, kind)
    except ValueError:
        return Normalized(None, raw, "unparsed", kind)


def _part_starts(text: str, tokens: list[tuple[str, int, int]]) -> list[int]:
    """Indexes of the tokens that begin a part of the segment (after " - ", "|" or ";")."""
    starts = [0]
    for match in _PART_BREAK.finditer(text):
        following = next((i for i, (_, s, _) in enumerate(tokens) if s >= match.end()), None)
        if following is not None:
            starts.append(following)
    return starts


# ------------------------------------------------------------------------------------------------------
# parsing by kind


def parse(text: str, spec: FieldSpec) -> list[tuple[Any, Any, float]]:  # noqa: PLR0911, PLR0912 - one branch per kind
    """Readings of ``text`` as the field's value: (JSON value, normalised value, fit 0..1)."""
    text = text.strip().strip(_SEPARATORS).strip()
    if not text:
        return []
    if spec.enum is not None:
        folded = fold(text)
        return [(v, v, 1.0) for v in spec.enum if isinstance(v, str) and fold(v) and fold(v) in folded][:1]
    kind = spec.kind
    if kind in {"amount", "percent"}:
        return _amounts(text, spec)
    if kind == "date":
        return _dates(text)
    if kind == "currency":
        for token in _TOKEN.findall(text)[:4]:
            n = normalize(token.strip(_SEPARATORS + "0123456789,"), "currency")
            if n.status == "ok":
                return [(token.strip(_SEPARATORS + "0123456789,"), n.value, 1.0)]
        return []
    if kind == "iban":
        compact = re.sub(r"[^A-Z0-9 ]", "", text.upper())
        match = _IBAN.search(compact)
        if match:
            raw = match.group(0).strip()
            n = normalize(raw, "iban")
            return [(raw.replace(" ", ""), n.value, 1.0 if n.status == "ok" else 0.6)]
        token = next((t for t in _TOKEN.findall(text) if sum(c.isdigit() for c in t) >= 6), None)
        return [(token.strip(_SEPARATORS), token, 0.5)] if token else []
    if kind == "vat_id":
        tokens = _TOKEN.findall(text)
        for size in (6, 5, 4, 3, 2, 1):
            for i in range(min(len(tokens) - size + 1, 3)):
                window = " ".join(tokens[i : i + size]).strip(_SEPARATORS)
                n = normalize(window, "vat_id")
                if n.status == "ok" and _HAS_DIGIT.search(window):
                    return [(window, n.value, 1.0)]
        return [(v, p, f * 0.6) for v, p, f in _identifier(text) if sum(c.isdigit() for c in str(v)) >= 8]
    if spec.identifier:
        return _identifier(text)
    if spec.numeric:
        return _amounts(text, spec)
    letters = sum(c.isalpha() for c in text)
    return [(text, text, 0.9 if letters >= 2 else 0.5)]


def _identifier(text: str) -> list[tuple[Any, Any, float]]:
    tokens = [
        t.strip(_SEPARATORS.replace("#", "").replace("-", "")).rstrip(".,:;") for t in _TOKEN.findall(text)
    ]
    for token in tokens[:3]:
        if _MONEY.fullmatch(token) or _dates(token):
            return []
        if _HAS_DIGIT.search(token) and len(token) >= 2:
            return [(token, token, 1.0)]
    for token in tokens[:1]:
        if len(token) >= 4 and token.isupper():
            return [(token, token, 0.5)]
    return []


def _amounts(text: str, spec: FieldSpec) -> list[tuple[Any, Any, float]]:
    found: list[tuple[Any, Any, float]] = []
    if _dates(text):
        return []
    for match in _AMOUNT.finditer(text):
        raw = match.group(0).strip()
        after = text[match.end() : match.end() + 2].strip()
        is_percent = after.startswith("%")
        if (spec.kind == "percent") != is_percent and spec.kind == "percent":
            continue
        if is_percent and spec.kind != "percent":
            continue
        digits = sum(c.isdigit() for c in raw)
        if digits > 13:
            continue
        n = normalize(raw, "percent" if spec.kind == "percent" else "amount")
        if n.status != "ok" or not isinstance(n.value, Decimal):
            continue
        value: Decimal = n.value
        decimals = re.search(r"[.,](\d{1,2})\)?-?$", raw)
        fit = (
            1.0
            if decimals or spec.kind == "percent" or spec.concept is None or "integer" in spec.types
            else 0.75
        )
        out: Any = (
            (int(value) if value == value.to_integral_value() else float(value))
            if "integer" in spec.types
            else float(value)
        )
        if not spec.numeric:
            out = raw
        found.append((out, value, fit))
    if len(found) > 1:  # several numbers after one label: the last is usually the amount
        found = [(v, p, f * (1.0 if i == len(found) - 1 else 0.7)) for i, (v, p, f) in enumerate(found)]
    return found[::-1]


def _dates(text: str) -> list[tuple[Any, Any, float]]:
    tokens = _TOKEN.findall(re.sub(r"\s+,", ",", text))
    for start in range(min(len(tokens), 8)):
        for size in (4, 3, 2, 1):
            window = " ".join(tokens[start : start + size]).strip(_SEPARATORS + ",")
            if not _HAS_DIGIT.search(window) or len(window) < 6:
                continue
            n = normalize(window, "date")
            if n.status == "ok":
                return [(window, n.value, 1.0)]
    for match in _NUMERIC_DATE.finditer(text):  # glued to a time or a word by OCR: 15/01/20181:48PM
        n = normalize(match.group(0), "date")
        if n.status == "ok":
            return [(match.group(0), n.value, 0.9)]
    return []


# ------------------------------------------------------------------------------------------------------
# the page


class PageReader:
    """Reads one page for one schema plan."""

    def __init__(self, layout: PageLayout, plan: SchemaPlan, checks: list[Check], page: int) -> None:
        self.layout = layout
        self.plan = plan
        self.checks = checks
        self.page = page
        self.tokens = {s.index: char_tokens(s.text) for s in layout.segments}
        self.labels: dict[int, list[Label]] = {}
        self._find_labels()

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
            if spec.role == "party" and spec.concept is not None and spec.concept.party == "seller":
                found += self._header_name()
            options[index] = sorted(found, key=lambda c: -c.score)
        self._unlabelled_dates(options)
        self._addresses(options)
        self._currency(options)
        self._apply_checks(options)
        for index, spec in enumerate(self.plan.fields):
            if options[index]:
                result.values[spec.path] = options[index][0]
        for table in self.plan.tables:
            rows = self._table(table)
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
            inline = segment.text[label.start :]
            places: list[tuple[str, float, int]] = []
            if inline.strip(_SEPARATORS):
                places.append((inline, 1.0, segment.index))
            right = [s for s in self.layout.rows[segment.row] if s.box[0] >= segment.box[2] - 1]
            for rank, neighbour in enumerate(right[:2]):
                distance = (neighbour.box[0] - segment.box[2]) / self.layout.line_height
                places.append(
                    (neighbour.text, (0.95 if distance < 20 else 0.8) * (0.75**rank), neighbour.index)
                )
            below_factor = 0.4 if segment.row in header_rows and self._column_of_values(segment) else 1.0
            for rank, neighbour in enumerate(self._below(segment)):
                places.append((neighbour.text, (0.85 - 0.15 * rank) * below_factor, neighbour.index))
            for text, position, source in places:
                for value, parsed, fit in parse(text, spec)[:2]:
                    found.append(Candidate(value, parsed, 0.97 * quality * position * fit, source))
        if spec.concept is not None and spec.concept.key == "total":
            amounts = [c.parsed for c in found if isinstance(c.parsed, Decimal) and c.score > 0.5]
            if amounts:
                top = max(amounts)
                for c in found:
                    if c.parsed != top:
                        c.score *= 0.9
        return found

    def _below(self, segment: Segment) -> list[Segment]:
        unit = self.layout.line_height
        out: list[Segment] = []
        for row in self.layout.rows[segment.row + 1 : segment.row + 1 + MAX_BELOW_ROWS]:
            for other in row:
                if other.box[1] - segment.box[3] > 3 * unit:
                    return out
                overlaps = other.box[0] < segment.box[2] + unit and other.box[2] > segment.box[0] - unit
                if overlaps:
                    out.append(other)
                    break
            if len(out) >= 2:
                break
        return out

    def _column_of_values(self, segment: Segment) -> bool:
        """Whether three rows or more under this cell hold values: a table column, not a form."""
        count = 0
        for row in self.layout.rows[segment.row + 1 : segment.row + 5]:
            if any(o.box[0] < segment.box[2] and o.box[2] > segment.box[0] for o in row):
                count += 1
        return count >= 3

    def _unlabelled_dates(self, options: dict[int, list[Candidate]]) -> None:
        """The issue date when no label names it: the first date printed on the page (documents
        print their own date first), unless another date field claimed it; a modest score."""
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
            rank = 0
            for segment in self.layout.segments:
                if segment.index in claimed:
                    continue
                readings = _dates(segment.text)
                if readings:
                    value, parsed, fit = readings[0]
                    options[index].append(Candidate(value, parsed, 0.55 * fit * (0.8**rank), segment.index))
                    rank += 1
                    if rank >= 3:
                        break
            options[index].sort(key=lambda c: -c.score)

    def _header_rows(self) -> set[int]:
        """Rows that look like a table's header: three or more short label-like cells."""
        rows = set()
        for number, row in enumerate(self.layout.rows):
            cells = [s for s in row if not _HAS_DIGIT.search(s.text) and len(s.text) <= 30]
            if len(cells) >= 3 and len(cells) == len(row):
                rows.add(number)
        return rows

    # -- parties and addresses

    def _header_name(self) -> list[Candidate]:
        """The issuer's name: a line near the top that reads like a company (a legal form helps),
        not a document title, a label, a date or a number."""
        if self.page != 1:
            return []
        found: list[Candidate] = []
        tall = self.layout.line_height
        rank = 0
        for segment in sorted(self.layout.segments, key=lambda s: (s.row, s.box[0])):
            if segment.box[1] > 0.4 * self.layout.height or rank >= 6:
                break
            text = segment.text.strip()
            folded = fold(text)
            letters = sum(c.isalpha() for c in text)
            if (
                letters < 3
                or folded in TITLE_WORDS
                or any(
                    segment.index == lab.segment.index
                    for labs in self.labels.values()
                    for lab in labs
                    if lab.coverage >= 0.5
                )
            ):
                continue
            if "@" in text or "www" in folded or (_STOP_ADDRESS.search(text) and not _legal(folded)):
                continue
            if letters < 0.5 * len(text.replace(" ", "")):
                continue
            score = 0.55 * (0.85**rank)
            if _legal(folded):
                score = 0.9 * (0.95**rank)
            if segment.height > 1.3 * tall:
                score = min(0.95, score * 1.15)
            name = party_name(text)
            previous = list(self.layout.rows[segment.row - 1]) if segment.row else []
            if name and previous and _legal(fold(name)) and _starts_with_legal_form(name):
                # "POPULAR BOOK" / "CO. (M) SDN BHD": the legal form wrapped onto its own line
                name = f"{previous[0].text.strip()} {name}"
            if name:
                found.append(Candidate(name, name, score, segment.index))
                rank += 1
        return found

    def _addresses(self, options: dict[int, list[Candidate]]) -> None:
        """An address is the block of lines under its party's name (the header block for the
        issuer), up to a line with a phone, a registration number or a label."""
        names = {
            spec.concept.party: options[i][0]
            for i, spec in enumerate(self.plan.fields)
            if spec.role == "party" and spec.concept is not None and options[i]
        }
        for index, spec in enumerate(self.plan.fields):
            if spec.role != "address" or spec.concept is None or options[index]:
                continue
            name = names.get(spec.concept.party)
            if name is None and spec.concept.party == "seller":
                header = self._header_name()
                name = header[0] if header else None
            if name is None:
                continue
            lines = self._block_after(self.layout.segments[name.segment])
            if lines:
                text = " ".join(s.text.strip() for s in lines)
                options[index] = [
                    Candidate(
                        text, text, min(0.85, name.score) * (0.9 if len(lines) > 1 else 0.8), lines[0].index
                    )
                ]

    def _block_after(self, start: Segment) -> list[Segment]:
        unit = self.layout.line_height
        lines: list[Segment] = []
        last = start
        for row in self.layout.rows[start.row + 1 : start.row + 8]:
            below = [s for s in row if s.box[0] < last.box[2] + unit and s.box[2] > start.box[0] - 2 * unit]
            if not below or below[0].box[1] - last.box[3] > 1.5 * unit:
                break
            segment = below[0]
            if _REGISTRATION.fullmatch(segment.text.strip()) and not lines:
                last = segment  # a company registration number between the name and the address
                continue
            stops = {t for t, _, _ in self.tokens[segment.index][:3]} & _STOP_WORDS
            if (
                stops
                or _STOP_ADDRESS.search(segment.text)
                or _dates(segment.text)
                or any(segment.index == lab.segment.index for labs in self.labels.values() for lab in labs)
            ):
                break
            lines.append(segment)
            last = segment
        return lines[:5]

    def _currency(self, options: dict[int, list[Candidate]]) -> None:
        """Without a labelled currency, the code or symbol printed beside the amounts, when the page
        uses just one."""
        for index, spec in enumerate(self.plan.fields):
            if spec.kind != "currency" or options[index]:
                continue
            seen: dict[str, tuple[str, int, int]] = {}
            numeric_rows = {s.row for s in self.layout.segments if _HAS_DIGIT.search(s.text)}
            for segment in self.layout.segments:
                if segment.row not in numeric_rows:
                    continue
                for token in _TOKEN.findall(segment.text):
                    bare = token.strip(_SEPARATORS + "0123456789,()")
                    if not bare or len(bare) > 4:
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

    # -- tables

    def _table(self, table: TableSpec) -> list[dict[tuple[str, ...], Candidate]]:
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
                    match = _phrase_at(words, spec.labels)
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


def _phrase_at(words: list[str], labels: tuple[str, ...]) -> tuple[int, int] | None:
    for phrase in labels:
        parts = phrase.split()
        for start in range(len(words) - len(parts) + 1):
            if words[start : start + len(parts)] == parts:
                return start, start + len(parts)
    return None


def _legal(folded: str) -> bool:
    padded = f" {folded} "
    return any(f" {fold(suffix)} " in padded for suffix in LEGAL_SUFFIXES)


def party_name(text: str) -> str:
    """A company name as printed, without the document title beside it ("ACME Ltd Invoice") or the
    address after a dash or bar ("QualityHosting AG - Uferweg 40")."""
    parts = [p.strip(" ,") for p in _PART_BREAK.split(text) if p.strip(" ,")]
    text = next((p for p in parts if _legal(fold(p))), parts[0] if parts else "")
    words = text.split()
    while words and fold(words[-1]) in TITLE_WORDS:
        words.pop()
    while words and fold(words[0]) in TITLE_WORDS:
        words.pop(0)
    return _TRAILING_REGISTRATION.sub("", " ".join(words)).strip(" ,")


def _starts_with_legal_form(name: str) -> bool:
    folded = fold(name)
    return any(folded.startswith(fold(suffix)) for suffix in LEGAL_SUFFIXES) or folded.startswith("co ")
