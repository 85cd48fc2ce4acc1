"""Codes: currencies (ISO 4217 code, symbol or name), IBANs and VAT ids, checked with python-stdnum;
phone numbers by their shape."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Any

from stdnum import iban
from stdnum.ch import uid as ch_uid
from stdnum.eu import vat as eu_vat
from stdnum.gb import vat as gb_vat
from stdnum.no import orgnr

from app.trust.kinds.text import SPACES, fold

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


def read_currency(raw: Any) -> str | None:
    """ISO code (known codes only), symbol or English name -> ISO 4217 code; anything else unparsed."""
    if not isinstance(raw, str):
        return None
    text = SPACES.sub(" ", unicodedata.normalize("NFC", raw)).strip()
    if text.upper() in _ISO_CODES:
        return text.upper()
    compact = text.replace(" ", "")
    if compact in _SYMBOLS:
        return _SYMBOLS[compact]
    return _CURRENCY_NAMES.get(fold(text).rstrip("."))


def currency_forms(code: str) -> list[str]:
    """The code, then its symbols and names as printed."""
    symbols = [symbol for symbol, c in _SYMBOLS.items() if c == code]
    return [code, *symbols, *(name for name, c in _CURRENCY_NAMES.items() if c == code)]


def read_iban(raw: Any) -> str | None:
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


def read_vat_id(raw: Any) -> str | None:
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


def iban_forms(compact: str) -> list[str]:
    """Compact, and in groups of four as printed."""
    return [compact, " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))]


def vat_forms(compact: str) -> list[str]:
    """Compact, and with a space after the country prefix."""
    return [compact, f"{compact[:2]} {compact[2:]}"]


_PHONE = re.compile(r"\+?[\d(][\d\s().\-/]*\d")
_PHONE_EXTENSION = re.compile(r"(?i)\s*(?:ext\.?|x)\s*\d{1,5}$")
MIN_PHONE_DIGITS = 6
MAX_PHONE_DIGITS = 15


def read_phone(raw: Any) -> str | None:
    """A telephone number as its digits, with the leading ``+`` of an international one ("+1 214
    528-0197" -> "+12145280197", "(905)889-8000" -> "9058898000"): the whole text must be one
    number of 6 to 15 digits in a phone's characters (an extension is dropped). A date, an amount
    with cents or text with letters ("Check: 37820") is not a phone number."""
    if not isinstance(raw, str | int) or isinstance(raw, bool):
        return None
    text = _PHONE_EXTENSION.sub("", SPACES.sub(" ", str(raw)).strip())
    if _PHONE.fullmatch(text) is None or re.fullmatch(r"\d{1,3}(?:[.,]\d{3})*[.,]\d{2}", text):
        return None
    if re.search(r"(?<!\d)\d{1,4}[./\-]\d{1,2}[./\-]\d{2,4}(?!\d)", text):  # a date, maybe with more
        return None
    if text.startswith("+"):
        text = text.replace("(0)", "")  # +49 (0)30 ...: the trunk prefix is not dialled from abroad
    digits = re.sub(r"\D", "", text)
    if not MIN_PHONE_DIGITS <= len(digits) <= MAX_PHONE_DIGITS:
        return None
    return ("+" if text.startswith("+") else "") + digits


def phone_forms(number: str) -> list[str]:
    return [number]
