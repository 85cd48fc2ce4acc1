"""An extraction as an EN 16931 invoice, for the UBL and CII exports.

The data gives the business terms the schema holds (``mapping``); what an invoice must have and an
extraction rarely says is derived where the data settles it, and only there: the country from the
VAT id or the address, line ids, the unit "C62" (one) when none is printed, the net price from
amount and quantity, the VAT breakdown from the lines' rates (or from the totals when all lines share
one rate or there are none), the sums. Anything still missing is listed (``EInvoice.missing``),
never invented.
"""

from __future__ import annotations

import re
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from app.einvoice import cii, ubl, xsd
from app.einvoice.identifiers import identifier_problem
from app.einvoice.mapping import SchemaMap, schema_map
from app.einvoice.model import ADDRESS_GROUPS, ADDRESS_PARTS, EInvoice, Syntax, Terms, Value
from app.einvoice.xml import parse_xml
from app.lib.jsonpointer import get, pointer
from app.schema.compiled import CompiledSchema

CENT = Decimal("0.01")
UNIT_ONE = "C62"
"""UN/ECE Recommendation 20 "one": the unit of a line that prints no unit."""
COUNTRY_NAMES = {
    "germany": "DE",
    "deutschland": "DE",
    "france": "FR",
    "austria": "AT",
    "österreich": "AT",
    "switzerland": "CH",
    "schweiz": "CH",
    "suisse": "CH",
    "belgium": "BE",
    "belgique": "BE",
    "belgië": "BE",
    "netherlands": "NL",
    "nederland": "NL",
    "luxembourg": "LU",
    "italy": "IT",
    "italia": "IT",
    "spain": "ES",
    "españa": "ES",
    "united kingdom": "GB",
    "uk": "GB",
    "ireland": "IE",
    "poland": "PL",
    "polska": "PL",
    "denmark": "DK",
    "sweden": "SE",
    "norway": "NO",
    "finland": "FI",
    "portugal": "PT",
    "united states": "US",
    "usa": "US",
    "malaysia": "MY",
}
"""Country names an address line ends with, as ISO 3166 codes (BT-40, BT-55)."""
POSTCODE_CITY = re.compile(r"^(?:[A-Z]{1,2}-)?(\d{4,5})\s+(.+)$")


def from_data(data: dict[str, Any], mapping: SchemaMap) -> EInvoice:
    """The invoice the extraction's ``data`` describes (values only: no XML paths)."""
    invoice = EInvoice("CII")
    for path, codes in mapping.fields.items():
        value = get(data, pointer(path))
        if value is None or value == "":
            continue
        code = codes[0]
        if code in ADDRESS_GROUPS:
            invoice.terms.update(split_address(str(value), code))
        else:
            invoice.terms[code] = _value(value)
    for path, table in mapping.tables.items():
        rows = get(data, pointer(path))
        if not isinstance(rows, list):
            continue
        target = invoice.lines if table.group == "BG-25" else invoice.vat_breakdown
        for row in rows:
            if not isinstance(row, dict):
                continue
            terms: Terms = {}
            for column, codes in table.columns.items():
                value = get(row, pointer(column))
                if value is not None and value != "":
                    terms[codes[0]] = _value(value)
            if terms:
                target.append(terms)
    _complete(invoice)
    return invoice


def split_address(text: str, group: str) -> Terms:
    """ "Musterstr. 1, 10115 Berlin, Germany" -> street, post code, city, country code."""
    street_code, line2_code, postcode_code, city_code, subdivision_code, country_code = ADDRESS_PARTS[group]
    parts = [p.strip() for p in text.split(",") if p.strip()]
    terms: Terms = {}
    if parts and (country := _country(parts[-1])) is not None:
        terms[country_code] = _value(country)
        parts.pop()
    for index, part in enumerate(parts):
        match = POSTCODE_CITY.match(part)
        if match and index > 0:
            terms[postcode_code] = _value(match.group(1))
            terms[city_code] = _value(match.group(2))
            if index + 1 < len(parts):  # "..., 70565 Stuttgart, Baden-Württemberg, DE"
                terms[subdivision_code] = _value(", ".join(parts[index + 1 :]))
            parts = parts[:index]
            break
    if parts:
        terms[street_code] = _value(parts[0])
    if len(parts) > 1:
        terms[line2_code] = _value(", ".join(parts[1:]))
    return terms


def _country(text: str) -> str | None:
    if re.fullmatch(r"[A-Z]{2}", text):
        return text
    return COUNTRY_NAMES.get(text.casefold())


def _complete(invoice: EInvoice) -> None:
    terms = invoice.terms
    terms.setdefault("BT-3", _value("380"))
    for vat_id, country in (("BT-31", "BT-40"), ("BT-48", "BT-55")):
        if country not in terms and vat_id in terms and re.match(r"[A-Z]{2}", terms[vat_id].value):
            terms[country] = _value(terms[vat_id].value[:2])
    for index, line in enumerate(invoice.lines, start=1):
        _complete_line(line, index)
    amounts = [_decimal(line.get("BT-131")) for line in invoice.lines]
    line_sum = sum((a for a in amounts if a is not None), Decimal(0)) if invoice.lines else None
    if "BT-106" not in terms and invoice.lines and all(a is not None for a in amounts):
        terms["BT-106"] = _amount(line_sum)
    if "BT-109" not in terms and "BT-106" in terms:
        terms["BT-109"] = terms["BT-106"]
    if "BT-106" not in terms and "BT-109" in terms and not invoice.lines:
        terms["BT-106"] = terms["BT-109"]
    if not invoice.vat_breakdown:
        invoice.vat_breakdown = _vat_breakdown(invoice)
    net, tax = _decimal(terms.get("BT-109")), _decimal(terms.get("BT-110"))
    if "BT-110" not in terms and invoice.vat_breakdown:
        taxes = [t for row in invoice.vat_breakdown if (t := _decimal(row.get("BT-117"))) is not None]
        if len(taxes) == len(invoice.vat_breakdown):
            tax = sum(taxes, Decimal(0))
            terms["BT-110"] = _amount(tax)
    if "BT-112" not in terms and net is not None and tax is not None:
        terms["BT-112"] = _amount(net + tax)
    if "BT-115" not in terms and "BT-112" in terms:
        paid = _decimal(terms.get("BT-113")) or Decimal(0)
        total = _decimal(terms["BT-112"])
        if total is not None:
            terms["BT-115"] = _amount(total - paid)


def _complete_line(line: Terms, index: int) -> None:
    line.setdefault("BT-126", _value(str(index)))
    line.setdefault("BT-130", _value(UNIT_ONE))
    quantity, price, amount = (_decimal(line.get(c)) for c in ("BT-129", "BT-146", "BT-131"))
    if quantity is None and price is None and amount is not None:
        line["BT-129"], line["BT-146"] = _value("1"), _amount(amount)
    elif price is None and quantity and amount is not None:
        line["BT-146"] = _amount(amount / quantity)
    elif amount is None and quantity is not None and price is not None:
        line["BT-131"] = _amount(quantity * price)
    elif quantity is None and price and amount is not None:
        line["BT-129"] = _value(str((amount / price).normalize()))
    rate = _decimal(line.get("BT-152"))
    if "BT-151" not in line and rate is not None:
        line["BT-151"] = _value("S" if rate > 0 else "Z")


def _vat_breakdown(invoice: EInvoice) -> list[Terms]:
    """BG-23 from the lines' rates; from the totals when no line states a rate and the totals show
    one rate (a rate like 19 %, 5.5 % or 8.1 %, not the 18.11 % of 19 % and 7 % mixed)."""
    terms = invoice.terms
    by_rate: dict[Decimal, Decimal] = defaultdict(Decimal)
    for line in invoice.lines:
        rate, amount = _decimal(line.get("BT-152")), _decimal(line.get("BT-131"))
        if rate is None or amount is None:
            by_rate.clear()
            break
        by_rate[rate] += amount
    net, tax = _decimal(terms.get("BT-109")), _decimal(terms.get("BT-110"))
    if not by_rate and net and tax is not None:
        rate = (tax * 100 / net).quantize(Decimal("0.1"), ROUND_HALF_UP)
        if abs((net * rate / 100).quantize(CENT, ROUND_HALF_UP) - tax) > CENT:
            return []  # 18.11 %: several rates mixed; which line has which is not in the data
        for line in invoice.lines:  # every line then has the one rate the totals show
            line.setdefault("BT-152", _amount(rate))
            line.setdefault("BT-151", _value("S" if rate > 0 else "Z"))
        return [_vat_row(net, tax, rate)]
    rows = []
    for rate, taxable in sorted(by_rate.items()):
        tax_amount = (taxable * rate / 100).quantize(CENT, ROUND_HALF_UP)
        rows.append(_vat_row(taxable, tax_amount, rate))
    return rows


def _vat_row(taxable: Decimal, tax: Decimal, rate: Decimal) -> Terms:
    return {
        "BT-116": _amount(taxable),
        "BT-117": _amount(tax),
        "BT-118": _value("S" if rate > 0 else "Z"),
        "BT-119": _amount(rate),
    }


def _value(value: Any) -> Value:
    text = _plain(value)
    return Value(text, text, "")


def _plain(value: Any) -> str:
    if isinstance(value, float):
        return format(Decimal(repr(value)).normalize(), "f")
    return str(value)


def _amount(value: Decimal | None) -> Value:
    assert value is not None
    return _value(str(value.quantize(CENT, ROUND_HALF_UP)))


def _decimal(value: Value | None) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(value.value)
    except InvalidOperation:
        return None


class ExportError(Exception):
    """The data does not make the document: ``missing`` business terms, or the XSD's ``violations``."""

    def __init__(
        self, message: str, *, missing: list[str] | None = None, violations: list[str] | None = None
    ):
        super().__init__(message)
        self.missing = missing or []
        self.violations = violations or []


def export_xml(data: Any, compiled: CompiledSchema, syntax: Syntax) -> bytes:
    """The extraction ``data`` as a UBL 2.1 invoice (Peppol BIS Billing 3.0) or a Factur-X EN 16931
    CII document, checked against its XSD. ``NotAnInvoice``: the schema holds no invoice;
    ``ExportError``: mandatory terms are missing or the values break the XSD."""
    mapping = schema_map(compiled)
    if not {"BT-1", "BT-112"} <= mapping.terms() and not {"BT-1", "BT-115"} <= mapping.terms():
        raise NotAnInvoice("The schema holds no invoice number and total (BT-1, BT-112).")
    invoice = from_data(data if isinstance(data, dict) else {}, mapping)
    invoice.syntax = syntax
    invoice.terms["BT-24"] = _value(ubl.PEPPOL_CUSTOMIZATION if syntax == "UBL" else cii.EN16931_GUIDELINE)
    missing = invoice.missing()
    if missing:
        raise ExportError("Mandatory business terms are missing.", missing=missing)
    wrong = [p for code, value in invoice.terms.items() if (p := identifier_problem(code, value.value))]
    if wrong:
        raise ExportError("Identifiers are not valid.", violations=wrong)
    document = ubl.write(invoice) if syntax == "UBL" else cii.write(invoice)
    violations = xsd.validate(parse_xml(document))
    if violations:
        raise ExportError(
            "The values do not make a valid document.",
            violations=[f"line {v.line}: {v.message}" for v in violations],
        )
    return document


class NotAnInvoice(Exception):
    """The schema has no business terms of an invoice (``x-en16931`` or matched by name)."""
