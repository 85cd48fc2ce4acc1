"""Normalisation of extracted values: what a raw string from the engine *means* as a date, amount, currency...

The trust layer compares values with the page, runs arithmetic checks and writes clean JSON back, so each
leaf is read as its kind once, here. Reading never guesses silently: a value that cannot be read as its
kind is ``unparsed`` (kept raw, flagged for review), never coerced into something plausible.

Ambiguity rules (each also documented where it is applied):

- Numeric dates whose two first parts are both <= 12 (03/04/2024) follow ``day_first``; when it is None
  they are read day-first, the convention of most of the world (and of the EU/Asian invoices we see).
  A part > 12 is evidence that overrides the flag (15/03/2024 is 15 March even with ``day_first=False``).
- Two-digit years: 00-69 are 2000-2069, 70-99 are 1970-1999.
- Amounts: the last of ``.``/``,`` is the decimal separator when both occur. A single separator followed
  by exactly three digits (1,234 / 1.234) is a thousands separator, unless the integer part is 0
  (0.125), is longer than three digits (1234.567), or another grouping character (space, apostrophe) is
  also present (1 234,567): invoices print money with two decimals, three-digit tails are groups.
- Percent: "0.19" without a % sign stays 0.19 (never multiplied by 100): we cannot know whether the
  engine meant a fraction or a percentage and the schema's checks decide how to use it.
- Currency symbols shared by several currencies map to the most common: ``$`` -> USD, ``¥`` -> JPY
  (CNY is written CN¥/RMB/元), ``kr`` -> SEK (NOK/DKK/ISK also print kr), ``Rs`` -> INR (PKR/LKR too).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Literal, get_args

from stdnum import iban
from stdnum.ch import uid as ch_uid
from stdnum.eu import vat as eu_vat
from stdnum.gb import vat as gb_vat
from stdnum.no import orgnr

Kind = Literal["date", "amount", "currency", "percent", "iban", "vat_id", "text"]
Status = Literal["ok", "unparsed", "absent"]
KINDS: tuple[Kind, ...] = get_args(Kind)


@dataclass(frozen=True, slots=True)
class Normalized:
    """A leaf read as its kind: ``value`` is the normalised value (None unless ``status`` is ok), ``raw``
    what the engine gave."""

    value: Any
    raw: Any
    status: Status
    kind: Kind


# --------------------------------------------------------------------------------------------------------
# kinds


def kind_for(name: str, schema: dict[str, Any]) -> Kind:
    """The kind of a schema leaf named ``name``: an explicit ``x-normalize`` wins (an unknown one is
    ignored rather than failing a running extraction), then format, type and name conventions."""
    explicit = schema.get("x-normalize")
    if isinstance(explicit, str) and explicit in KINDS:
        return explicit
    lowered = name.lower()
    types = _types(schema)
    kind: Kind = "text"
    if schema.get("format") == "date":
        kind = "date"
    elif types & {"number", "integer"}:
        kind = "percent" if "rate" in lowered or "percent" in lowered else "amount"
    elif types and "string" not in types:
        kind = "text"
    elif (
        lowered == "currency"
        or lowered.endswith(("currency", "currency_code"))
        or schema.get("pattern") == "^[A-Z]{3}$"
    ):
        kind = "currency"
    elif "iban" in lowered:
        kind = "iban"
    # "vat_rate"/"vat_amount" typed as strings are numbers about VAT, not VAT ids.
    elif "vat" in lowered and not any(word in lowered for word in ("rate", "percent", "amount", "total")):
        kind = "vat_id"
    return kind


def _types(schema: dict[str, Any]) -> set[str]:
    declared = schema.get("type")
    if isinstance(declared, str):
        return {declared}
    if isinstance(declared, list):
        return {t for t in declared if isinstance(t, str)}
    return set()


# --------------------------------------------------------------------------------------------------------
# entry point


def normalize(raw: Any, kind: Kind, *, day_first: bool | None = None) -> Normalized:
    """Read ``raw`` as ``kind``. None, empty and blank strings are ``absent``; anything that cannot be read
    (including booleans, lists and objects) is ``unparsed`` with value None."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return Normalized(None, raw, "absent", kind)
    value: Any
    if isinstance(raw, bool | list | dict):
        value = None
    elif kind == "date":
        value = _date(raw, day_first)
    elif kind == "amount":
        value = _amount(raw)
    elif kind == "currency":
        value = _currency(raw)
    elif kind == "percent":
        value = _percent(raw)
    elif kind == "iban":
        value = _iban(raw)
    elif kind == "vat_id":
        value = _vat_id(raw)
    else:
        value = _text(raw)
    return Normalized(value, raw, "unparsed" if value is None else "ok", kind)


def json_value(n: Normalized, schema: dict[str, Any]) -> Any:
    """The value to write back into the JSON data for this schema leaf: Decimals become int (integral
    value, ``integer`` allowed) or float (``number``) or a plain decimal string (``string``); dates the ISO
    string. The raw is returned when the value is not ok or does not fit the leaf's declared type, so
    writing back never turns valid data invalid."""
    types = _types(schema)
    value = n.value
    result: Any = n.raw
    if n.status != "ok":
        pass
    elif isinstance(value, Decimal):
        if "integer" in types and value == value.to_integral_value():
            result = int(value)
        elif "number" in types:
            result = float(value)
        elif "string" in types or not types:
            result = format(value, "f")
    elif isinstance(value, str) and (not types or "string" in types):
        result = value
    return result


# --------------------------------------------------------------------------------------------------------
# dates


def _fold(word: str) -> str:
    """Lower-case without accents, so März/Marz/MÄRZ and août/aout are one key."""
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


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
    **{_fold(name): i + 1 for full, abbr in _MONTHS.values() for names in (full, abbr) for i, name in
       enumerate(names)},
    **_MONTH_ALIASES,
}  # fmt: skip

_WEEKDAYS = frozenset(
    _fold(w)
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
    text = re.sub(r"[^\W\d_]+", lambda m: " " if _fold(m.group()) in _WEEKDAYS else m.group(), text)
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


def _date(raw: Any, day_first: bool | None) -> str | None:
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
        folded = _fold(token)
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


# --------------------------------------------------------------------------------------------------------
# amounts and percent

_SPACES = re.compile(r"[\s\u00a0\u2007\u2009\u202f]+")
_NUMBER_CORE = re.compile(r"\d(?:[\d.,' \u2019]*\d)?")
_GROUPING = frozenset(" '\u2019")


def _parse_number(core: str) -> Decimal | None:
    """Digits with grouping and decimal separators -> Decimal (see the module docstring for the rule that
    decides between a decimal and a thousands separator). Groups must be well formed: 1,234,567 or the
    Indian 12,34,567; 12,34 with a thousands reading is refused."""
    if not re.fullmatch(r"\d[\d.,' \u2019]*", core) or not core[-1].isdigit():
        return None
    decimal_sep = _decimal_separator(core)
    # partition, not split: a repeated decimal separator (1.234.5,6,7) is refused below, not a crash
    int_part, _, frac = core.partition(decimal_sep) if decimal_sep else (core, "", "")
    if (decimal_sep and (core.count(decimal_sep) != 1 or not frac.isdigit())) or not int_part[-1].isdigit():
        return None
    grouping = {c for c in int_part if not c.isdigit()}
    if len(grouping) > 1:
        return None
    if grouping:
        groups = int_part.split(grouping.pop())
        if not _well_grouped(groups):
            return None
        int_part = "".join(groups)
    try:
        return Decimal(f"{int_part}.{frac}" if frac else int_part)
    except InvalidOperation:  # pragma: no cover  # only digits reach here
        return None


def _decimal_separator(core: str) -> str | None:
    """Which of ``.``/``,`` is the decimal separator, if any: the last one when both occur; a single one
    unless exactly three digits follow it and it could be a group (the module docstring has the rule)."""
    dots, commas = core.count("."), core.count(",")
    if dots and commas:
        return "." if core.rfind(".") > core.rfind(",") else ","
    if dots + commas != 1:
        return None  # none, or repeated: 1.234.567
    sep = "." if dots else ","
    int_part, frac = core.split(sep)
    if len(frac) != 3 or any(c in _GROUPING for c in int_part) or int_part == "0" or len(int_part) > 3:
        return sep
    return None


def _well_grouped(groups: list[str]) -> bool:
    if not all(g.isdigit() for g in groups) or not 1 <= len(groups[0]) <= 3:
        return False
    if all(len(g) == 3 for g in groups[1:]):
        return True
    # Indian grouping: last group of three, two-digit groups before it (1,23,45,678).
    return len(groups[-1]) == 3 and all(len(g) == 2 for g in groups[1:-1]) and len(groups[0]) <= 2


def _number_input(raw: Any) -> Decimal | None:
    if isinstance(raw, Decimal):
        return raw if raw.is_finite() else None
    if isinstance(raw, int | float):
        value = Decimal(str(raw))
        return value if value.is_finite() else None
    return None


def _amount(raw: Any) -> Decimal | None:
    """Money in any common print: currency before or after, grouping, decimal comma, and negatives as
    -12.50, (12.50), 12.50- or 12.50 CR (credit; DR is the positive default). More than one negative
    marker, or text that is not a currency, is unparsed."""
    if not isinstance(raw, str):
        return _number_input(raw)
    text = _SPACES.sub(" ", unicodedata.normalize("NFC", raw)).strip()
    m = _NUMBER_CORE.search(text)
    value = _parse_number(m.group()) if m else None
    if m is None or value is None:
        return None
    negative = _negative(text[: m.start()], text[m.end() :])
    if negative is None:
        return None
    return -value if negative else value


def _negative(prefix: str, suffix: str) -> bool | None:
    """Whether the text around an amount makes it negative; None when it is not a sign/currency affix."""
    credit = False
    if cr := re.search(r"(?<![^\W\d_])(cr|dr)\.?(?![^\W\d_])", suffix, re.IGNORECASE):
        suffix, credit = suffix[: cr.start()] + " " + suffix[cr.end() :], cr[1].lower() == "cr"
    pre = re.fullmatch(r"([-\u2212+(\s]*)(.*?)([-\u2212+(\s]*)", prefix)
    post = re.fullmatch(r"([-\u2212)\s]*)(.*?)([-\u2212)\s]*)", suffix)
    if pre is None or post is None:  # pragma: no cover  # both patterns match any string
        return None
    currencies = [c for c in (pre[2].strip(), post[2].strip()) if c]
    signs = pre[1] + pre[3] + post[1] + post[3]
    minus = signs.count("-") + signs.count("\u2212")
    opened, closed = signs.count("("), signs.count(")")
    if opened != closed or opened > 1 or signs.count("+") > 1 or minus + opened + credit > 1:
        return None
    if any(_currency(c) is None for c in currencies):
        return None
    return bool(minus or opened or credit)


def _percent(raw: Any) -> Decimal | None:
    """19%, 19 %, %19 (Turkish), 19,5 %, -5%, 0.19. A bare fraction is kept as printed (0.19 stays 0.19,
    not 19): whether the engine meant a fraction is for the schema's checks to say, not for us to guess."""
    if not isinstance(raw, str):
        return _number_input(raw)
    text = _SPACES.sub(" ", raw).strip()
    m = re.fullmatch(r"([-\u2212+]?)\s*%?\s*([\d.,' \u2019]+?)\s*%?", text)
    if m is None or text.count("%") > 1:
        return None
    value = _parse_number(m[2])
    if value is None:
        return None
    return -value if m[1] in ("-", "\u2212") else value


# --------------------------------------------------------------------------------------------------------
# currency

_ISO_CODES = frozenset(
    (  # noqa: SIM905  # a code list reads best as words
        "EUR USD GBP JPY CNY CHF CAD AUD NZD SEK NOK DKK ISK PLN CZK HUF RON BGN HRK RSD RUB UAH TRY ILS AED "
        "SAR QAR KWD BHD OMR EGP MAD NGN KES ZAR INR PKR LKR BDT IDR MYR SGD HKD THB PHP VND KRW TWD BRL MXN "
        "ARS CLP COP PEN"
    ).split()
)
# Symbols as printed (compared case-sensitively, spaces removed). Ambiguous ones: see the module docstring.
_SYMBOLS: dict[str, str] = {
    "€": "EUR", "£": "GBP", "¥": "JPY", "￥": "JPY", "円": "JPY", "CN¥": "CNY", "RMB": "CNY", "元": "CNY",
    "₹": "INR", "Rs": "INR", "Rs.": "INR", "$": "USD", "US$": "USD", "USD$": "USD", "A$": "AUD",
    "AU$": "AUD", "C$": "CAD", "CA$": "CAD", "NZ$": "NZD", "HK$": "HKD", "S$": "SGD", "SG$": "SGD",
    "R$": "BRL", "RM": "MYR", "Fr.": "CHF", "SFr.": "CHF", "Fr": "CHF", "zł": "PLN", "kr": "SEK",
    "kr.": "SEK", "Kč": "CZK", "Ft": "HUF", "₩": "KRW", "₽": "RUB", "₺": "TRY", "₫": "VND", "฿": "THB",
    "₱": "PHP", "₪": "ILS", "Rp": "IDR", "Rp.": "IDR", "lei": "RON", "₴": "UAH", "₦": "NGN", "R": "ZAR",
}  # fmt: skip
_CURRENCY_NAMES: dict[str, str] = {
    "euro": "EUR", "euros": "EUR", "dollar": "USD", "dollars": "USD", "us dollar": "USD",
    "us dollars": "USD", "pound": "GBP", "pounds": "GBP", "pound sterling": "GBP", "sterling": "GBP",
    "yen": "JPY", "yuan": "CNY", "renminbi": "CNY", "rupee": "INR", "rupees": "INR",
    "indian rupee": "INR", "ringgit": "MYR", "swiss franc": "CHF", "swiss francs": "CHF", "franken": "CHF",
    "zloty": "PLN", "zlotych": "PLN", "swedish krona": "SEK", "kronor": "SEK", "norwegian krone": "NOK",
    "danish krone": "DKK", "forint": "HUF", "koruna": "CZK", "rand": "ZAR", "baht": "THB",
    "rupiah": "IDR", "singapore dollar": "SGD", "australian dollar": "AUD", "canadian dollar": "CAD",
    "hong kong dollar": "HKD", "won": "KRW", "real": "BRL", "peso": "MXN", "dirham": "AED",
}  # fmt: skip


def _currency(raw: Any) -> str | None:
    """ISO code (known codes only), symbol or English name -> ISO 4217 code; anything else unparsed."""
    if not isinstance(raw, str):
        return None
    text = _SPACES.sub(" ", unicodedata.normalize("NFC", raw)).strip()
    if text.upper() in _ISO_CODES:
        return text.upper()
    compact = text.replace(" ", "")
    if compact in _SYMBOLS:
        return _SYMBOLS[compact]
    return _CURRENCY_NAMES.get(_fold(text).rstrip("."))


# --------------------------------------------------------------------------------------------------------
# IBAN, VAT id, text


def _iban(raw: Any) -> str | None:
    """Compact upper-case IBAN that python-stdnum accepts: the country's length and format, the mod-97
    check digits and, where a country has them, its national check digits (a misread digit fails).
    A leading "IBAN" label is tolerated."""
    if not isinstance(raw, str):
        return None
    compact = re.sub(r"[\s\u00a0\u202f-]", "", raw).upper()
    compact = re.sub(r"^IBAN:?", "", compact)
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]+", compact):
        return None
    return compact if iban.is_valid(compact) else None


def _norwegian_vat(compact: str) -> bool:
    """NO + the organisation number (mod-11 check), printed with or without the MVA suffix."""
    return orgnr.is_valid(compact[2:].removesuffix("MVA"))


# Per-country checksums from python-stdnum: EU member states (EL/GR for Greece, XI for Northern
# Ireland) through its EU module, and the non-EU countries whose ids our invoices carry.
_VAT_CHECKS: dict[str, Callable[[str], bool]] = {
    **dict.fromkeys(("EL", "XI", *(code.upper() for code in eu_vat.MEMBER_STATES)), eu_vat.is_valid),
    "GB": gb_vat.is_valid,
    "CH": ch_uid.is_valid,
    "NO": _norwegian_vat,
}


def _vat_id(raw: Any) -> str | None:
    """Compact upper-case VAT id with a country prefix (EU, GB, CH, NO) whose per-country checksum holds
    (python-stdnum), so a misread digit or a word like "DEUTSCHLAND" is not an id. Swiss MWST/TVA/IVA
    suffixes are dropped."""
    if not isinstance(raw, str):
        return None
    compact = re.sub(r"[\s\u00a0\u202f.\-]", "", raw).upper()
    if compact.startswith("CH"):
        compact = re.sub(r"(MWST|TVA|IVA)$", "", compact)
    m = re.fullmatch(r"([A-Z]{2})([A-Z0-9]{2,13})", compact)
    check = _VAT_CHECKS.get(m[1]) if m else None
    return compact if check is not None and check(compact) else None


def _text(raw: Any) -> str | None:
    """Stripped text with whitespace runs collapsed; numbers are written as text (str)."""
    if isinstance(raw, int | float | Decimal):
        return str(raw)
    if not isinstance(raw, str):
        return None
    return _SPACES.sub(" ", raw).strip() or None


# --------------------------------------------------------------------------------------------------------
# printed forms


def printed_forms(value: Any, kind: Kind, *, day_first: bool | None = None) -> list[str]:
    """The strings ``value`` may be printed as (see ``_printed_forms``); cached, since line items
    repeat values and each form is verified by reading it back."""
    try:
        return list(_cached_forms(value, kind, day_first))
    except TypeError:  # an unhashable value
        return _printed_forms(value, kind, day_first=day_first)


@lru_cache(maxsize=8192)
def _cached_forms(value: Any, kind: Kind, day_first: bool | None) -> tuple[str, ...]:
    return tuple(_printed_forms(value, kind, day_first=day_first))


def _printed_forms(value: Any, kind: Kind, *, day_first: bool | None = None) -> list[str]:
    """The strings ``value`` may be printed as, for grounding it on the page. Every form reads back as
    the value (forms that would not, such as 1.234 for 1.234 with its thousands reading, are left out).
    For dates, ``day_first`` True/False keeps numeric forms that read back under that flag; None (the
    default) keeps both orders. Deterministic order, no duplicates; [] when the value is not readable."""
    n = normalize(value, kind, day_first=day_first)
    if n.status != "ok":
        return []
    candidates: list[str]
    if kind == "date":
        candidates = _date_forms(n.value)
    elif kind == "amount":
        candidates = _amount_forms(n.value)
    elif kind == "percent":
        candidates = _percent_forms(n.value)
    elif kind == "currency":
        candidates = [n.value, *(s for s, c in _SYMBOLS.items() if c == n.value)]
        candidates += [name for name, c in _CURRENCY_NAMES.items() if c == n.value]
    elif kind == "iban":
        candidates = [n.value, " ".join(n.value[i : i + 4] for i in range(0, len(n.value), 4))]
    elif kind == "vat_id":
        candidates = [n.value, f"{n.value[:2]} {n.value[2:]}"]
    else:
        candidates = [n.value]
    flags = (True, False) if kind == "date" and day_first is None else (day_first,)
    forms: dict[str, None] = {}
    for form in candidates:
        if form not in forms and any(normalize(form, kind, day_first=f).value == n.value for f in flags):
            forms[form] = None
    return list(forms)


def _date_forms(iso: str) -> list[str]:
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


def _plain(value: Decimal) -> tuple[str, str, list[str]]:
    """Sign, integer digits and the fraction variants of a Decimal (12.50 -> "50", "5"; 12 -> "", "00")."""
    text = format(abs(value), "f")
    int_part, _, frac = text.partition(".")
    stripped = frac.rstrip("0")
    fracs = ["", "00"] if not stripped else list(dict.fromkeys([frac, stripped, stripped.ljust(2, "0")]))
    return ("-" if value < 0 else ""), int_part, fracs


def _group(digits: str, sep: str) -> str:
    if not sep:
        return digits
    head = len(digits) % 3 or 3
    return sep.join([digits[:head], *(digits[i : i + 3] for i in range(head, len(digits), 3))])


def _amount_forms(value: Decimal) -> list[str]:
    sign, int_part, fracs = _plain(value)
    conventions = ((",", "."), (".", ","), (" ", ","), (" ", "."), ("'", "."), ("", "."), ("", ","))
    numbers = [
        _group(int_part, thousands) + (decimal + frac if frac else "")
        for thousands, decimal in conventions
        for frac in fracs
    ]
    if len(int_part) > 5:  # Indian lakh grouping: 12,34,567.00
        head, pairs = int_part[:-3], list[str]()
        while head:
            head, pairs = head[:-2], [head[-2:], *pairs]
        numbers += [",".join([*pairs, int_part[-3:]]) + (f".{f}" if f else "") for f in fracs]
    if not sign:
        return numbers
    return [f"-{n}" for n in numbers] + [f"({n})" for n in numbers]


def _percent_forms(value: Decimal) -> list[str]:
    sign, int_part, fracs = _plain(value)
    if fracs == ["", "00"]:
        fracs = ["", "0", "00"]
    numbers = [sign + int_part + (decimal + frac if frac else "") for frac in fracs for decimal in (".", ",")]
    numbers = list(dict.fromkeys(numbers))
    forms = [f"{n}{space}%" for n in numbers for space in ("", " ")]
    # A bare integer ("19") is too weak to ground on; a bare fraction (0.19, 7,5) is kept.
    if value != value.to_integral_value():
        forms += numbers
    return forms
