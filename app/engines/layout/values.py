"""Reading a field's value from the text after its label, by kind: amounts, dates, codes, identifiers
and text, each reading with how well it fits (0..1); the trust layer's normalisers decide what parses."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from app.engines.layout.fields import FieldSpec
from app.lexicon import fold_phrase as fold
from app.trust.kinds.codes import read_phone
from app.trust.normalize import normalize

_AMOUNT = re.compile(r"(?<![\w.,])[-(]?\d(?:[\d.,' ]*\d)?(?:\)|-)?(?![\w]|[.,]\d)")


@dataclass
class Candidate:
    """A reading of a field on the page, scored."""

    value: Any
    """The JSON value to output: the number, or the text as printed."""
    parsed: Any
    """The normalised value (for checks and for comparing candidates)."""
    score: float
    segment: int
    memory: bool = False
    """Read where an approved document of the same sender printed the field (sender memory)."""


TOKEN = re.compile(r"\S+")
PHONE_SHAPE = re.compile(r"(?<![\w.,/])\+?\(?\d[\d\s().\-/]{4,}\d(?![\w.,/])")
_GLUED_CURRENCY = re.compile(r"(?i)(?<![a-z])(rm|myr|usd|eur|sgd|gbp|chf|inr)(?=\d)")
SEPARATORS = " \t:;#.-\u2013\u2014=|"
_IBAN = re.compile(r"[A-Z]{2}\d{2}[A-Z0-9 ]{8,34}")
HAS_DIGIT = re.compile(r"\d")
_MONEY = re.compile(r"[-(]?[$€£¥]?\d{1,3}(?:[.,' ]?\d{3})*[.,]\d{2}\)?")
# Dates glued to their neighbours by OCR; a trailing [./-]digit means a phone number (05.22.95.66).
_GLUED_DATES = (
    re.compile(r"(?<!\d)(?P<year>\d{4})([/.-])(\d{1,2})\2(\d{2})"),
    re.compile(r"(\d{1,2})([/.-])(\d{1,2})\2(?P<year>\d{4}|\d{2}(?!\d))(?![./-]\d)"),
    re.compile(r"(?<!\d)\d{1,2} ?[A-Za-z]{3,9}\.? ?(?P<year>\d{4})"),
)
_YEARS = (1990, 2099)


_SINGLE_LETTER_AMOUNT = re.compile(r"[A-Za-z]\s?\d[\d.,' ]*[.,]\d\d")


def currency_token(token: str) -> str | None:
    """The currency code or sign in a printed token ("EUR", "RM5.90" -> "RM", "€12,00" -> "€"), or
    None. A single letter counts only before an amount with cents ("R12.50"): "R691" in an IBAN
    or "RE-2020-05621" is no rand."""
    bare = token.strip(SEPARATORS + "0123456789,()")
    if not bare or len(bare) > 4:
        return None
    if len(bare) == 1 and bare.isalpha() and not _SINGLE_LETTER_AMOUNT.fullmatch(token.strip(SEPARATORS)):
        return None
    return bare


def parse(text: str, spec: FieldSpec) -> list[tuple[Any, Any, float]]:  # noqa: PLR0911, PLR0912 - one branch per kind
    """Readings of ``text`` as the field's value: (JSON value, normalised value, fit 0..1)."""
    negative = bool(re.match(r"\s*-\d", text))  # "-1.73": a credit, not a separator
    printed = text.strip()
    text = printed.strip(SEPARATORS).strip()
    if not text:
        return []
    if spec.kind == "text" and printed.endswith(".") and "." in text.split()[-1]:
        text += "."  # an abbreviation keeps its last period: "S.r.l.", "B.V.", "U.A."
    if negative and spec.kind in {"amount", "percent"}:
        text = "-" + text
    if spec.enum is not None:
        folded = fold(text)
        return [(v, v, 1.0) for v in spec.enum if isinstance(v, str) and fold(v) and fold(v) in folded][:1]
    kind = spec.kind
    if kind in {"amount", "percent"}:
        return _amounts(text, spec)
    if kind == "date":
        return parse_dates(text)
    if kind == "currency":
        for token in TOKEN.findall(text)[:4]:
            bare = currency_token(token)
            n = normalize(bare, "currency") if bare else None
            if n is not None and n.status == "ok":
                return [(bare, n.value, 1.0)]
        return []
    if kind == "iban":
        compact = re.sub(r"[^A-Z0-9 ]", "", text.upper())
        match = _IBAN.search(compact)
        if match:
            raw = match.group(0).strip()
            n = normalize(raw, "iban")
            return [(raw.replace(" ", ""), n.value, 1.0 if n.status == "ok" else 0.6)]
        token = next((t for t in TOKEN.findall(text) if sum(c.isdigit() for c in t) >= 6), None)
        return [(token.strip(SEPARATORS), token, 0.5)] if token else []
    if kind == "vat_id":
        tokens = TOKEN.findall(text)
        for size in (6, 5, 4, 3, 2, 1):
            for i in range(min(len(tokens) - size + 1, 3)):
                window = " ".join(tokens[i : i + size]).strip(SEPARATORS)
                n = normalize(window, "vat_id")
                if n.status == "ok" and HAS_DIGIT.search(window):
                    return [(window, n.value, 1.0)]
        return [(v, p, f * 0.6) for v, p, f in _identifier(text) if sum(c.isdigit() for c in str(v)) >= 8]
    if kind == "phone":
        return phones(text)[:2]
    if spec.identifier:
        return _identifier(text)
    if spec.numeric:
        return _amounts(text, spec)
    letters = sum(c.isalpha() for c in text)
    return [(text, text, 0.9 if letters >= 2 else 0.5)]


def phones(text: str) -> list[tuple[Any, Any, float]]:
    """The phone numbers in ``text``, as printed, each with its digits; a short one fits less."""
    found = []
    for match in PHONE_SHAPE.finditer(text):
        number = read_phone(match.group())
        if number is not None:
            found.append((match.group(), number, 1.0 if len(number.lstrip("+")) >= 8 else 0.7))
    return found


def _identifier(text: str) -> list[tuple[Any, Any, float]]:
    tokens = [
        t.strip(SEPARATORS.replace("#", "").replace("-", "")).rstrip(".,:;") for t in TOKEN.findall(text)
    ]
    for token in tokens[:3]:
        if _MONEY.fullmatch(token) or parse_dates(token):
            return []
        if HAS_DIGIT.search(token) and len(token) >= 2:
            return [(token, token, 1.0)]
    for token in tokens[:1]:
        if len(token) >= 4 and token.isupper():
            return [(token, token, 0.5)]
    return []


def _amounts(text: str, spec: FieldSpec) -> list[tuple[Any, Any, float]]:
    found: list[tuple[Any, Any, float]] = []
    if parse_dates(text):
        return []
    text = _GLUED_CURRENCY.sub(r"\1 ", text)
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


def parse_dates(text: str) -> list[tuple[Any, Any, float]]:
    """The first date printed in ``text``: as whole words, else glued to a time, a word or a number
    by OCR ("15/01/20181:48PM", "09Apr201818:26", "Date:2016/05/0114:11"). A year outside
    ``_YEARS`` is a misreading (a time glued to a two-digit year), not a date."""
    tokens = TOKEN.findall(re.sub(r"\s+,", ",", text))
    for start in range(min(len(tokens), 8)):
        for size in (4, 3, 2, 1):
            window = " ".join(tokens[start : start + size]).strip(SEPARATORS + ",")
            if not HAS_DIGIT.search(window) or len(window) < 6:
                continue
            n = normalize(window, "date")
            if n.status == "ok" and _plausible(n.value):
                return [(window, n.value, 1.0)]
    for pattern in _GLUED_DATES:
        for match in pattern.finditer(text):
            for raw in _year_readings(match):
                n = normalize(raw, "date")
                if n.status == "ok" and _plausible(n.value):
                    return [(raw, n.value, 0.9)]
    return []


def _year_readings(match: re.Match[str]) -> list[str]:
    """For a four-digit "year" directly followed by ":" ("28.03.2009:51Uhr", "23/06/1812:46"), the
    two-digit year first: its last two digits are the hour of a glued time, since a time has an
    hour before its ":" and "2009" would leave ":51" without one."""
    raw = match.group(0)
    year = match.group("year")
    if len(year) == 4 and match.string[match.end() : match.end() + 1] == ":":
        return [raw[:-2], raw]
    return [raw]


def _plausible(value: Any) -> bool:
    return isinstance(value, str) and _YEARS[0] <= int(value[:4]) <= _YEARS[1]
