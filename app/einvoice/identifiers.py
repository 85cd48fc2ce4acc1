"""The identifiers of an invoice checked with python-stdnum: VAT ids (each country's checksum),
IBANs (mod 97 and national check digits) and BICs (ISO 9362 form, a known country). A wrong digit in
any of them sends money or tax to the wrong place, so an e-invoice carrying one goes to review and an
export refuses it."""

from __future__ import annotations

from stdnum import bic

from app.trust.kinds.codes import read_iban, read_vat_id

CHECKS = {
    "BT-31": ("a valid VAT id", read_vat_id),
    "BT-48": ("a valid VAT id", read_vat_id),
    "BT-84": ("a valid IBAN", read_iban),
    "BT-86": ("a valid BIC", lambda value: value if bic.is_valid(value) else None),
}


def identifier_problem(code: str, value: str) -> str | None:
    """Why ``value`` is not the identifier business term ``code`` holds; None when it is (or the
    term is not an identifier). IBANs in the XML that are not IBANs (BT-84 may hold a national
    account number) are not checked."""
    if code not in CHECKS:
        return None
    what, read = CHECKS[code]
    if code == "BT-84" and not value[:2].isalpha():
        return None
    return None if read(value) is not None else f"{code} {value!r} is not {what}"
