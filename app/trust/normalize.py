"""Normalisation of extracted values: what a raw string from the engine *means* as a date, amount, currency...

This module is the entry point (kinds, reading, writing back, printed forms); each family of kinds is
read and printed in ``app.trust.kinds``: ``dates``, ``numbers`` (amounts, percent), ``codes`` (currency,
IBAN, VAT id, phone) and ``text``.

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

from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any, Literal

from app.schema.kinds import KINDS, Kind, declared_types, kind_for
from app.trust.kinds.codes import (
    currency_forms,
    iban_forms,
    phone_forms,
    read_currency,
    read_iban,
    read_phone,
    read_vat_id,
    vat_forms,
)
from app.trust.kinds.dates import date_forms, infer_day_first, read_date
from app.trust.kinds.numbers import amount_forms, percent_forms, read_amount, read_percent
from app.trust.kinds.text import read_text

__all__ = [
    "KINDS",
    "Kind",
    "Normalized",
    "Status",
    "infer_day_first",
    "json_value",
    "kind_for",
    "normalize",
    "printed_forms",
]

Status = Literal["ok", "unparsed", "absent"]


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
        value = read_date(raw, day_first)
    elif kind == "amount":
        value = read_amount(raw)
    elif kind == "currency":
        value = read_currency(raw)
    elif kind == "percent":
        value = read_percent(raw)
    elif kind == "iban":
        value = read_iban(raw)
    elif kind == "vat_id":
        value = read_vat_id(raw)
    elif kind == "phone":
        value = read_phone(raw)
    else:
        value = read_text(raw)
    return Normalized(value, raw, "unparsed" if value is None else "ok", kind)


def json_value(n: Normalized, schema: dict[str, Any]) -> Any:
    """The value to write back into the JSON data for this schema leaf: Decimals become int (integral
    value, ``integer`` allowed) or float (``number``) or a plain decimal string (``string``); dates the ISO
    string. The raw is returned when the value is not ok or does not fit the leaf's declared type, so
    writing back never turns valid data invalid."""
    types = declared_types(schema)
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
        candidates = date_forms(n.value)
    elif kind == "amount":
        candidates = amount_forms(n.value)
    elif kind == "percent":
        candidates = percent_forms(n.value)
    elif kind == "currency":
        candidates = currency_forms(n.value)
    elif kind == "iban":
        candidates = iban_forms(n.value)
    elif kind == "vat_id":
        candidates = vat_forms(n.value)
    elif kind == "phone":
        candidates = phone_forms(n.value)
    else:
        candidates = [n.value]
    flags = (True, False) if kind == "date" and day_first is None else (day_first,)
    forms: dict[str, None] = {}
    for form in candidates:
        if form not in forms and any(normalize(form, kind, day_first=f).value == n.value for f in flags):
            forms[form] = None
    return list(forms)
