"""Amounts and percentages: reading numbers in every common print (grouping, decimal comma, signs,
currency affixes) and the forms a number may be printed in. The rule that tells a decimal separator
from a thousands separator is in ``app.trust.normalize``'s docstring."""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation
from typing import Any

from app.trust.kinds.codes import read_currency
from app.trust.kinds.text import SPACES

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


def read_amount(raw: Any) -> Decimal | None:
    """Money in any common print: currency before or after, grouping, decimal comma, and negatives as
    -12.50, (12.50), 12.50- or 12.50 CR (credit; DR is the positive default). More than one negative
    marker, or text that is not a currency, is unparsed."""
    if not isinstance(raw, str):
        return _number_input(raw)
    text = SPACES.sub(" ", unicodedata.normalize("NFC", raw)).strip()
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
    if any(read_currency(c) is None for c in currencies):
        return None
    return bool(minus or opened or credit)


def read_percent(raw: Any) -> Decimal | None:
    """19%, 19 %, %19 (Turkish), 19,5 %, -5%, 0.19. A bare fraction is kept as printed (0.19 stays 0.19,
    not 19): whether the engine meant a fraction is for the schema's checks to say, not for us to guess."""
    if not isinstance(raw, str):
        return _number_input(raw)
    text = SPACES.sub(" ", raw).strip()
    m = re.fullmatch(r"([-\u2212+]?)\s*%?\s*([\d.,' \u2019]+?)\s*%?", text)
    if m is None or text.count("%") > 1:
        return None
    value = _parse_number(m[2])
    if value is None:
        return None
    return -value if m[1] in ("-", "\u2212") else value


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


def amount_forms(value: Decimal) -> list[str]:
    sign, int_part, fracs = _plain(value)
    # With decimals first: an amount is printed "19,00", and a bare "19" also matches "19%".
    fracs = [f for f in fracs if f] + [f for f in fracs if not f]
    conventions = ((",", "."), (".", ","), (" ", ","), (" ", "."), ("'", "."), ("", "."), ("", ","))
    numbers = list(
        dict.fromkeys(
            _group(int_part, thousands) + (decimal + frac if frac else "")
            for frac in fracs
            for thousands, decimal in conventions
        )
    )
    if len(int_part) > 5:  # Indian lakh grouping: 12,34,567.00
        head, pairs = int_part[:-3], list[str]()
        while head:
            head, pairs = head[:-2], [head[-2:], *pairs]
        numbers += [",".join([*pairs, int_part[-3:]]) + (f".{f}" if f else "") for f in fracs]
    if not sign:
        return numbers
    return [f"-{n}" for n in numbers] + [f"({n})" for n in numbers]


def percent_forms(value: Decimal) -> list[str]:
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
