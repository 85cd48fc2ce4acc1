"""Dates: reading numeric, ISO and spelled-out dates in the languages our invoices use, and the forms a
date may be printed in. The ambiguity rules are in ``app.trust.normalize``'s docstring."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from app.trust.kinds.text import fold

# Per language: full names, then abbreviations as printed (used for printed forms and parsing).
_MONTHS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "en": (
        (
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ),
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
    ),
    "de": (
        (
            "Januar",
            "Februar",
            "März",
            "April",
            "Mai",
            "Juni",
            "Juli",
            "August",
            "September",
            "Oktober",
            "November",
            "Dezember",
        ),
        ("Jan", "Feb", "Mär", "Apr", "Mai", "Jun", "Jul", "Aug", "Sep", "Okt", "Nov", "Dez"),
    ),
    "fr": (
        (
            "janvier",
            "février",
            "mars",
            "avril",
            "mai",
            "juin",
            "juillet",
            "août",
            "septembre",
            "octobre",
            "novembre",
            "décembre",
        ),
        ("janv", "févr", "mars", "avr", "mai", "juin", "juil", "août", "sept", "oct", "nov", "déc"),
    ),
    "nl": (
        (
            "januari",
            "februari",
            "maart",
            "april",
            "mei",
            "juni",
            "juli",
            "augustus",
            "september",
            "oktober",
            "november",
            "december",
        ),
        ("jan", "feb", "mrt", "apr", "mei", "jun", "jul", "aug", "sep", "okt", "nov", "dec"),
    ),
    "es": (
        (
            "enero",
            "febrero",
            "marzo",
            "abril",
            "mayo",
            "junio",
            "julio",
            "agosto",
            "septiembre",
            "octubre",
            "noviembre",
            "diciembre",
        ),
        ("ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sep", "oct", "nov", "dic"),
    ),
    "it": (
        (
            "gennaio",
            "febbraio",
            "marzo",
            "aprile",
            "maggio",
            "giugno",
            "luglio",
            "agosto",
            "settembre",
            "ottobre",
            "novembre",
            "dicembre",
        ),
        ("gen", "feb", "mar", "apr", "mag", "giu", "lug", "ago", "set", "ott", "nov", "dic"),
    ),
    "ms": (
        (
            "Januari",
            "Februari",
            "Mac",
            "April",
            "Mei",
            "Jun",
            "Julai",
            "Ogos",
            "September",
            "Oktober",
            "November",
            "Disember",
        ),
        ("Jan", "Feb", "Mac", "Apr", "Mei", "Jun", "Jul", "Ogo", "Sep", "Okt", "Nov", "Dis"),
    ),
}
_MONTH_ALIASES = {
    "sept": 9, "mrz": 3, "maerz": 3, "janner": 1, "fev": 2, "setiembre": 9, "set": 9, "ogos": 8, "juli": 7,
    "juin": 6, "dez": 12, "okt": 10, "ott": 10,
}  # fmt: skip
_MONTH_NUMBER: dict[str, int] = {
    **{fold(name): i + 1 for full, abbr in _MONTHS.values() for names in (full, abbr) for i, name in
       enumerate(names)},
    **_MONTH_ALIASES,
}  # fmt: skip

_WEEKDAYS = frozenset(
    fold(w)
    for w in (  # noqa: SIM905  # a word list reads best as words
        "monday tuesday wednesday thursday friday saturday sunday mon tue tues wed thu thur thurs fri sat "
        "sun montag dienstag mittwoch donnerstag freitag samstag sonnabend sonntag mo di mi do fr sa so "
        "lundi mardi mercredi jeudi vendredi samedi dimanche lun mer jeu ven sam dim "
        "maandag dinsdag woensdag donderdag vrijdag zaterdag zondag ma wo vr za zo "
        "lunes martes miércoles jueves viernes sábado domingo "
        "lunedì martedì mercoledì giovedì venerdì sabato domenica "
        "isnin selasa rabu khamis jumaat sabtu ahad"
    ).split()
)
# Words that sit between the parts of a spelled-out date: "15 de marzo de 2024", "den 7. Mai", "the 1st of".
_FILLERS = frozenset(("de", "del", "of", "the", "den", "der", "am", "le", "el", "il", "on"))
# Ordinal suffixes, dropped only right after a number: 1st 2nd 3rd 4th, French 1er, Spanish 1º (NFKC: 1o).
_ORDINALS = frozenset(("st", "nd", "rd", "th", "er", "re", "e", "eme", "o", "a"))

_TIME = re.compile(
    r"\b\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:[ap]\.?\s*m\b\.?)?(?:\s*(?:z\b|utc|gmt|[+-]\d{2}:?\d{2}))?",
    re.IGNORECASE,
)
_ISO = re.compile(r"(\d{4})\s*([-/.])\s*(\d{1,2})\s*\2\s*(\d{1,2})\.?")
_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})")
_NUMERIC = re.compile(r"(\d{1,2})\s*([-/.])\s*(\d{1,2})\s*\2\s*(\d{4}|\d{2})\.?")
_NUMERIC_SPACED = re.compile(r"(\d{1,2})\s+(\d{1,2})\s+(\d{4}|\d{2})")


def _clean_date_text(text: str) -> str:
    """Drop what is not the date: times (10:00, 1:48:36PM, T10:00:00Z), weekday names, outer punctuation."""
    text = unicodedata.normalize("NFKC", text)
    text = re.sub(r"(?<=\d)T(?=\d{1,2}:)", " ", text)
    text = _TIME.sub(" ", text)
    text = re.sub(r"[^\W\d_]+", lambda m: " " if fold(m.group()) in _WEEKDAYS else m.group(), text)
    return text.strip(" ,;:\t\n")


def _year(text: str) -> int:
    """Two-digit years pivot at 70: 00-69 -> 2000s, 70-99 -> 1900s (invoices are recent; 19xx are old)."""
    year = int(text)
    if len(text) == 2:
        return year + (2000 if year < 70 else 1900)
    return year


def _make_date(year: int, month: int, day: int) -> str | None:
    try:
        return date(year, month, day).isoformat()
    except ValueError:
        return None


def _day_month(first: int, second: int, day_first: bool | None) -> tuple[int, int]:
    """(day, month) of a numeric date. A part > 12 can only be the day and wins over the flag; otherwise
    ``day_first`` decides and None means day-first (the convention of most of the world)."""
    if first > 12:
        return first, second
    if second > 12:
        return second, first
    return (second, first) if day_first is False else (first, second)


def read_date(raw: Any, day_first: bool | None) -> str | None:
    if isinstance(raw, date):
        return (raw.date() if isinstance(raw, datetime) else raw).isoformat()
    if not isinstance(raw, str | int):
        return None
    return _date_text(_clean_date_text(str(raw)), day_first)


def _date_text(text: str, day_first: bool | None) -> str | None:
    if m := _ISO.fullmatch(text):
        return _make_date(int(m[1]), int(m[3]), int(m[4]))
    if m := _COMPACT.fullmatch(text):
        return _make_date(int(m[1]), int(m[2]), int(m[3]))
    m = _NUMERIC.fullmatch(text) or _NUMERIC_SPACED.fullmatch(text)
    if m:
        first, second, year = int(m[1]), int(m.groups()[-2]), m.groups()[-1]
        day, month = _day_month(first, second, day_first)
        return _make_date(_year(year), month, day)
    return _spelled_date(text)


def _spelled_date(text: str) -> str | None:
    """A date with a month name: any order of day, month name and year, fillers and ordinals dropped.
    With two short numbers the first is the day (15-Mar-24, March 15, 24)."""
    month: int | None = None
    numbers: list[str] = []
    previous_numeric = False
    for token in re.findall(r"[^\W\d_]+|\d+", text):
        if token.isdigit():
            numbers.append(token)
            previous_numeric = True
            continue
        folded = fold(token)
        if folded in _MONTH_NUMBER and month is None:
            month = _MONTH_NUMBER[folded]
        elif not (folded in _FILLERS or (previous_numeric and folded in _ORDINALS)):
            return None
        previous_numeric = False
    if month is None or len(numbers) != 2:
        return None
    long = [n for n in numbers if len(n) == 4]
    if len(long) == 1:
        year, day = long[0], next(n for n in numbers if len(n) != 4)
    elif not long:
        day, year = numbers
    else:
        return None
    if len(day) > 2 or len(year) not in (2, 4):
        return None
    return _make_date(_year(year), month, int(day))


def infer_day_first(raw_dates: Iterable[str]) -> bool | None:
    """Whether this document writes numeric dates day-first, from its unambiguous ones: a first part > 12
    says yes, a second part > 12 says no; both kinds of evidence (a contradiction) or none give None."""
    evidence: set[bool] = set()
    for raw in raw_dates:
        text = _clean_date_text(raw)
        for m in re.finditer(
            r"(?<![\d.,/-])(\d{1,2})\s*([-/.])\s*(\d{1,2})\s*\2\s*(\d{4}|\d{2})(?![\d])", text
        ):
            first, second = int(m[1]), int(m[3])
            if first > 31 or second > 31 or (first > 12 and second > 12):
                continue
            if first > 12:
                evidence.add(True)
            elif second > 12:
                evidence.add(False)
    return evidence.pop() if len(evidence) == 1 else None


def date_forms(iso: str) -> list[str]:
    year, month, day = (int(p) for p in iso.split("-"))
    y4, y2 = f"{year:04d}", f"{year % 100:02d}"
    d, dd, m, mm = str(day), f"{day:02d}", str(month), f"{month:02d}"
    forms = [iso, f"{y4}/{mm}/{dd}", f"{y4}.{mm}.{dd}", f"{y4}{mm}{dd}"]
    for sep in ("/", ".", "-", " "):
        # Padding is not always consistent: US forms such as 1/02/02 (M/DD/YY) are common.
        for a, b in ((dd, mm), (d, m), (mm, dd), (m, d), (m, dd), (d, mm)):
            forms += [f"{a}{sep}{b}{sep}{y4}", f"{a}{sep}{b}{sep}{y2}"]
    ordinal = {1: "st", 2: "nd", 3: "rd", 21: "st", 22: "nd", 23: "rd", 31: "st"}.get(day, "th")
    for language, (full, abbr) in _MONTHS.items():
        name, short = full[month - 1], abbr[month - 1]
        if language == "en":
            forms += [
                f"{d} {name} {y4}", f"{dd} {name} {y4}", f"{name} {d}, {y4}", f"{short} {d}, {y4}",
                f"{d} {short} {y4}", f"{dd}-{short}-{y4}", f"{dd}-{short}-{y2}", f"{d}{ordinal} {name} {y4}",
                f"{name} {d}{ordinal}, {y4}", f"{dd} {short.upper()} {y4}",
            ]  # fmt: skip
        elif language == "de":
            forms += [f"{d}. {name} {y4}", f"{dd}. {name} {y4}", f"{d}. {short}. {y4}"]
        elif language == "fr":
            forms += [f"{'1er' if day == 1 else d} {name} {y4}", f"{dd} {name} {y4}"]
            forms += [f"{d} {short}. {y4}"] if short != name else []
        elif language == "es":
            forms += [f"{d} de {name} de {y4}", f"{d} {name} {y4}", f"{dd}-{short}-{y4}"]
        else:
            forms += [f"{d} {name} {y4}", f"{dd} {name} {y4}", f"{d} {short} {y4}"]
    return forms
