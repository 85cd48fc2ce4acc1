"""What a document says about itself as a whole, read once from its text map: the language it is
written in, the order it writes day and month in (and what settled it), the numeric dates it
prints, and the amounts on its payment lines (handed over, given back, rounding) and total lines.

The trust layer corroborates single values with these: a total is the amount paid when the cash
handed over less the change given back equals it, or when a total plus the rounding line does; an
ambiguous date like 04/05/2024 is accepted only when something on the document settles its order.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from app.documents.textmap import DocumentMap
from app.lexicon import (
    CHANGE_WORDS,
    CONCEPTS,
    DAY_FIRST_REGIONS,
    ROUNDING_WORDS,
    TENDER_WORDS,
    document_language,
    fold_phrase,
    known_words,
)
from app.pages import Word, visual_rows
from app.trust.kinds.dates import infer_day_first
from app.trust.kinds.numbers import read_amount

Role = Literal["tender", "change", "rounding", "total", "other"]
DateOrder = Literal["dates", "dotted", "language", "currency", "region", "us_address"]

NUMERIC_DATE = re.compile(
    r"(?<!\d)(\d{1,2})([/.\-])(\d{1,2})\2(\d{4}|\d{2})(?!\d)|(?<!\d)\d{4}-\d{2}-\d{2}(?!\d)"
)
CENTS = re.compile(r"^[-\u2212(]?[^\d]{0,4}\d[\d.,' ]*[.,]\d{2}[)\-]?[^\d]{0,4}$")
_US_STATE_ZIP = re.compile(
    r"\b(?:A[KLRZ]|C[AOT]|D[CE]|FL|GA|HI|I[ADLN]|K[SY]|LA|M[ADEINOST]|N[CDEHJMVY]|O[HKR]|PA|RI|S[CD]|"
    r"T[NX]|UT|V[AT]|W[AIVY]),? \d{5}(?:-\d{4})?\b"
)
_DAY_FIRST_LANGUAGES = frozenset(["de", "fr", "es", "it", "nl", "ms"])
_DAY_FIRST_CURRENCY = re.compile(r"(?i)(?<![a-z])(?:rm|myr|eur|gbp|inr|sgd|aud|nzd|chf)(?![a-z])|[€£₹]")
_TOTAL_LABELS = frozenset(fold_phrase(label) for c in CONCEPTS if c.key == "total" for label in c.labels)
MAX_LANGUAGE_WORDS = 400
MIN_CENTS = 2
MOSTLY_CENTS = 0.5
TOLERANCE = Decimal("0.005")


@dataclass(frozen=True, slots=True)
class PrintedAmount:
    value: Decimal
    page: int
    line: int
    """The text-map line of the amount's word."""
    role: Role
    """What its row is about, from the words before the amount."""


@dataclass(frozen=True)
class DocumentFacts:
    words: int
    known_words: int
    """How many of the first words are in the lexicon, in any of its languages."""
    language: str | None
    day_first: bool | None
    date_order: DateOrder | None
    """What settled ``day_first``; None when nothing did (day-first is then assumed, unsurely)."""
    dates: frozenset[str]
    """Numeric dates as printed."""
    amounts: tuple[PrintedAmount, ...]
    """Amounts printed with cents, on the rows a role could be read for."""
    cents: int
    """How many amounts are printed with two decimals."""
    cents_share: float
    """Of the amount-like words printed, the share printed with two decimals."""

    @property
    def prints_cents(self) -> bool:
        """Whether the document writes money with cents: an amount without them is then suspect."""
        return self.cents >= MIN_CENTS and self.cents_share >= MOSTLY_CENTS

    def paid(self, value: Decimal, here: set[tuple[int, int]]) -> list[str]:
        """The payment arithmetic that makes ``value`` the amount paid, each relation from lines
        other than ``here``: handed over less change (`payment_change`), a total above the rounding
        line plus the rounding, with ``value`` below it (`rounding`; added or taken off: receipts
        print its sign either way, the order of the lines says which total is the rounded one)."""
        others = [a for a in self.amounts if (a.page, a.line) not in here]
        by_role: dict[Role, list[PrintedAmount]] = {}
        for amount in others:
            by_role.setdefault(amount.role, []).append(amount)
        found: list[str] = []
        if any(
            abs(t.value - c.value - value) <= TOLERANCE
            for t in by_role.get("tender", [])
            for c in by_role.get("change", [])
            if (t.page, t.line) != (c.page, c.line) and c.value > 0
        ):
            found.append("payment_change")
        last = max(here, default=(0, 0))
        if any(
            min(abs(t.value + r.value - value), abs(t.value - r.value - value)) <= TOLERANCE
            for r in by_role.get("rounding", [])
            if r.value != 0 and (r.page, r.line) < last
            for t in by_role.get("total", [])
            if (t.page, t.line) < (r.page, r.line)
        ):
            found.append("rounding")
        return found


def read_facts(document: DocumentMap, extracted_dates: Sequence[str] = ()) -> DocumentFacts:
    """The facts of ``document``; ``extracted_dates``: the dates the engine read, which may settle
    the day/month order too."""
    words = [w for page in document.pages for w in page.words]
    folded = [f for w in words[:MAX_LANGUAGE_WORDS] if (f := fold_phrase(w.text))]
    language = document_language(folded)
    known = known_words()
    dates = frozenset(m.group() for w in words for m in NUMERIC_DATE.finditer(w.text))
    day_first, order = _date_order(words, folded, list(extracted_dates) + sorted(dates), dates, language)
    amounts: list[PrintedAmount] = []
    cents = money = 0
    for page in document.pages:
        height = statistics.median(w.bbox[3] - w.bbox[1] for w in page.words) if page.words else 0.0
        for row in visual_rows(page.words, height):
            role: Role | None = None  # from the words before the row's first number
            label: list[str] = []
            for word in row:
                if NUMERIC_DATE.search(word.text):
                    continue
                if not any(c.isdigit() for c in word.text):
                    label.append(word.text)
                    continue
                if role is None:
                    role = _role(fold_phrase(" ".join(label)))
                if CENTS.match(word.text):
                    cents += 1
                    money += 1
                    value = read_amount(word.text) if role != "other" else None
                    if value is not None:
                        value = value if role == "rounding" else abs(value)
                        amounts.append(PrintedAmount(value, page.number, word.line, role))
                elif _looks_like_money(word.text):
                    money += 1
    return DocumentFacts(
        words=len(words),
        known_words=sum(word in known for f in folded for word in f.split()),
        language=language,
        day_first=day_first,
        date_order=order,
        dates=dates,
        amounts=tuple(amounts),
        cents=cents,
        cents_share=cents / money if money else 0.0,
    )


def _role(label: str) -> Role:
    words = set(label.split())
    if words & TENDER_WORDS:
        return "tender"
    if words & CHANGE_WORDS:
        return "change"
    if words & ROUNDING_WORDS:
        return "rounding"
    padded = f" {label} "
    if any(f" {total} " in padded for total in _TOTAL_LABELS):
        return "total"
    return "other"


def _looks_like_money(text: str) -> bool:
    """A number with a separator that is not a date, a time or a percentage ("5.417", "4150,-")."""
    return bool(re.fullmatch(r"[^\d]{0,4}\d{1,3}(?:[.,]\d{3})+[^\d]{0,2}|[^\d]{0,4}\d+,-", text))


def _date_order(
    words: list[Word], folded: list[str], dates: list[str], printed: frozenset[str], language: str | None
) -> tuple[bool | None, DateOrder | None]:
    """Whether the document writes numeric dates day-first, and what says so: its unambiguous dates,
    dotted dates (never month-first), a US address (month-first), its language, a currency or a
    state or country of a day-first country. None when nothing does."""
    inferred = infer_day_first(dates)
    if inferred is not None:
        return inferred, "dates"
    text = " ".join(w.text for w in words)
    separators = {m[2] for d in printed if (m := NUMERIC_DATE.fullmatch(d)) and m[2]}
    signals: list[tuple[DateOrder, bool, Callable[[], bool]]] = [
        ("dotted", True, lambda: separators == {"."}),
        ("us_address", False, lambda: language in (None, "en") and bool(_US_STATE_ZIP.search(text))),
        ("language", True, lambda: language in _DAY_FIRST_LANGUAGES),
        ("currency", True, lambda: bool(_DAY_FIRST_CURRENCY.search(text))),
        ("region", True, lambda: bool({w for f in folded for w in f.split()} & DAY_FIRST_REGIONS)),
    ]
    return next(((day_first, name) for name, day_first, holds in signals if holds()), (None, None))
