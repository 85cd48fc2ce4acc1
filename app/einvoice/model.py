"""The EN 16931 semantic model, as far as the service reads and writes it: business terms (BT-n)
by code, in three places: the invoice itself (``terms``), its VAT breakdown (BG-23) and its lines
(BG-25). CII and UBL readers fill it, with the XML path of every value; the writers build XML from
it. Keys are the standard's codes so that a schema's ``x-en16931`` annotation names them directly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

Syntax = Literal["CII", "UBL"]
TermKind = Literal["text", "date", "amount", "quantity", "percent", "code"]


@dataclass(frozen=True)
class BusinessTerm:
    code: str
    name: str
    kind: TermKind
    group: Literal["invoice", "vat", "line"] = "invoice"
    mandatory: bool = False


def _terms(group: Literal["invoice", "vat", "line"], rows: str) -> dict[str, BusinessTerm]:
    """``code | name | kind | mandatory`` per line."""
    terms = {}
    for row in rows.strip().splitlines():
        code, name, kind, mandatory = (part.strip() for part in row.split("|"))
        terms[code] = BusinessTerm(code, name, kind, group, mandatory == "1")  # type: ignore[arg-type]
    return terms


INVOICE_TERMS = _terms(
    "invoice",
    """
    BT-1   | Invoice number                         | text     | 1
    BT-2   | Invoice issue date                     | date     | 1
    BT-3   | Invoice type code                      | code     | 1
    BT-5   | Invoice currency code                  | code     | 1
    BT-9   | Payment due date                       | date     | 0
    BT-10  | Buyer reference                        | text     | 0
    BT-12  | Contract reference                     | text     | 0
    BT-13  | Purchase order reference               | text     | 0
    BT-20  | Payment terms                          | text     | 0
    BT-22  | Invoice note                           | text     | 0
    BT-24  | Specification identifier               | text     | 1
    BT-27  | Seller name                            | text     | 1
    BT-28  | Seller trading name                    | text     | 0
    BT-29  | Seller identifier                      | text     | 0
    BT-30  | Seller legal registration identifier   | text     | 0
    BT-31  | Seller VAT identifier                  | text     | 0
    BT-32  | Seller tax registration identifier     | text     | 0
    BT-34  | Seller electronic address              | text     | 0
    BT-35  | Seller address line 1                  | text     | 0
    BT-36  | Seller address line 2                  | text     | 0
    BT-37  | Seller city                            | text     | 0
    BT-38  | Seller post code                       | text     | 0
    BT-39  | Seller country subdivision             | text     | 0
    BT-40  | Seller country code                    | code     | 1
    BT-41  | Seller contact point                   | text     | 0
    BT-42  | Seller contact telephone number        | text     | 0
    BT-43  | Seller contact email address           | text     | 0
    BT-44  | Buyer name                             | text     | 1
    BT-46  | Buyer identifier                       | text     | 0
    BT-47  | Buyer legal registration identifier    | text     | 0
    BT-48  | Buyer VAT identifier                   | text     | 0
    BT-49  | Buyer electronic address               | text     | 0
    BT-50  | Buyer address line 1                   | text     | 0
    BT-51  | Buyer address line 2                   | text     | 0
    BT-52  | Buyer city                             | text     | 0
    BT-53  | Buyer post code                        | text     | 0
    BT-54  | Buyer country subdivision              | text     | 0
    BT-55  | Buyer country code                     | code     | 1
    BT-72  | Actual delivery date                   | date     | 0
    BT-81  | Payment means type code                | code     | 0
    BT-83  | Remittance information                 | text     | 0
    BT-84  | Payment account identifier (IBAN)      | text     | 0
    BT-85  | Payment account name                   | text     | 0
    BT-86  | Payment service provider identifier    | text     | 0
    BT-106 | Sum of invoice line net amount         | amount   | 1
    BT-107 | Sum of allowances on document level    | amount   | 0
    BT-108 | Sum of charges on document level       | amount   | 0
    BT-109 | Invoice total amount without VAT       | amount   | 1
    BT-110 | Invoice total VAT amount               | amount   | 0
    BT-112 | Invoice total amount with VAT          | amount   | 1
    BT-113 | Paid amount                            | amount   | 0
    BT-114 | Rounding amount                        | amount   | 0
    BT-115 | Amount due for payment                 | amount   | 1
    """,
)
VAT_TERMS = _terms(
    "vat",
    """
    BT-116 | VAT category taxable amount            | amount   | 1
    BT-117 | VAT category tax amount                | amount   | 1
    BT-118 | VAT category code                      | code     | 1
    BT-119 | VAT category rate                      | percent  | 0
    BT-120 | VAT exemption reason text              | text     | 0
    BT-121 | VAT exemption reason code              | code     | 0
    """,
)
LINE_TERMS = _terms(
    "line",
    """
    BT-126 | Invoice line identifier                | text     | 1
    BT-127 | Invoice line note                      | text     | 0
    BT-129 | Invoiced quantity                      | quantity | 1
    BT-130 | Invoiced quantity unit of measure code | code     | 1
    BT-131 | Invoice line net amount                | amount   | 1
    BT-146 | Item net price                         | amount   | 1
    BT-149 | Item price base quantity               | quantity | 0
    BT-151 | Invoiced item VAT category code        | code     | 1
    BT-152 | Invoiced item VAT rate                 | percent  | 0
    BT-153 | Item name                              | text     | 1
    BT-154 | Item description                       | text     | 0
    BT-155 | Item Seller's identifier               | text     | 0
    BT-157 | Item standard identifier               | text     | 0
    """,
)
ALL_TERMS: dict[str, BusinessTerm] = {**INVOICE_TERMS, **VAT_TERMS, **LINE_TERMS}
GROUPS = {
    "BG-4": "Seller",
    "BG-5": "Seller postal address",
    "BG-7": "Buyer",
    "BG-8": "Buyer postal address",
    "BG-23": "VAT breakdown",
    "BG-25": "Invoice line",
}
ADDRESS_PARTS = {
    "BG-5": ("BT-35", "BT-36", "BT-38", "BT-37", "BT-39", "BT-40"),
    "BG-8": ("BT-50", "BT-51", "BT-53", "BT-52", "BT-54", "BT-55"),
}
"""A postal address as one line (street, line 2, post code and city, subdivision, country): how the
built-in schemas hold an address."""


@dataclass(frozen=True)
class PartyTerms:
    """The codes of one party's terms, so that readers and writers treat seller and buyer alike;
    ``""`` where the party has no such term (here a buyer has no trading name, tax number or contact).
    ``address`` is in ``ADDRESS_PARTS`` order: line 1, line 2, post code, city, subdivision, country."""

    name: str
    identifier: str
    legal_id: str
    vat_id: str
    electronic_address: str
    address: tuple[str, str, str, str, str, str]
    trading_name: str = ""
    tax_id: str = ""
    contact: str = ""
    phone: str = ""
    email: str = ""


SELLER = PartyTerms(
    name="BT-27",
    identifier="BT-29",
    legal_id="BT-30",
    vat_id="BT-31",
    electronic_address="BT-34",
    address=ADDRESS_PARTS["BG-5"],
    trading_name="BT-28",
    tax_id="BT-32",
    contact="BT-41",
    phone="BT-42",
    email="BT-43",
)
BUYER = PartyTerms(
    name="BT-44",
    identifier="BT-46",
    legal_id="BT-47",
    vat_id="BT-48",
    electronic_address="BT-49",
    address=ADDRESS_PARTS["BG-8"],
)


@dataclass(frozen=True)
class Value:
    """One business term's value: ``value`` normalised (dates ``YYYY-MM-DD``, amounts and
    quantities as decimal strings such as ``1190.00``, codes and text as written), ``text`` as the
    XML has it, ``path`` the absolute XPath of the element or attribute (with the document's own
    prefixes, positions from 1)."""

    value: str
    text: str
    path: str


Terms = dict[str, Value]

CREDIT_NOTE_TYPE_CODES = frozenset({"81", "83", "381", "396", "532"})
"""Invoice type codes (BT-3, UNTDID 1001) of credit notes: UBL writes them as a ``CreditNote``."""


def in_catalogue_order(terms: Terms) -> Terms:
    """``terms`` ordered as the catalogues list them (BT-1 first), however a reader found them."""
    return {code: terms[code] for code in ALL_TERMS if code in terms}


def normalise(kind: TermKind, text: str) -> str:
    """A term's value as the model holds it, whichever syntax wrote it: dates ``YYYY-MM-DD`` (CII's
    ``YYYYMMDD`` and UBL's ``YYYY-MM-DD`` with a time zone alike), decimals without spaces or exponent
    but with the digits written (``1190.00`` stays), codes and text stripped. What does not parse
    stays as written (stripped), so that a reviewer sees it rather than nothing."""
    stripped = text.strip()
    if kind == "date":
        if re.fullmatch(r"\d{8}", stripped):
            return f"{stripped[:4]}-{stripped[4:6]}-{stripped[6:]}"
        if re.match(r"\d{4}-\d{2}-\d{2}(?!\d)", stripped):
            return stripped[:10]
        return stripped
    if kind in ("amount", "quantity", "percent"):
        compact = "".join(stripped.split())
        try:
            number = Decimal(compact)
        except InvalidOperation:
            return compact
        return format(number, "f") if number.is_finite() else compact
    return stripped


@dataclass
class EInvoice:
    syntax: Syntax
    document: Literal["Invoice", "CreditNote"] = "Invoice"
    terms: Terms = field(default_factory=dict)
    vat_breakdown: list[Terms] = field(default_factory=list)
    lines: list[Terms] = field(default_factory=list)

    @property
    def profile(self) -> str | None:
        """BT-24, the specification identifier (e.g. ``urn:cen.eu:en16931:2017``, an XRechnung or
        Factur-X profile URN)."""
        value = self.terms.get("BT-24")
        return value.value if value else None

    def missing(self) -> list[str]:
        """The mandatory business terms without a value (EN 16931 cardinality 1..n), each once:
        ``BT-44``, ``BG-23`` (no VAT breakdown at all), ``BG-25/BT-153`` (some line lacks it)."""
        missing = [code for code, term in INVOICE_TERMS.items() if term.mandatory and code not in self.terms]
        for group, rows, catalogue in (
            ("BG-23", self.vat_breakdown, VAT_TERMS),
            ("BG-25", self.lines, LINE_TERMS),
        ):
            if not rows:
                missing.append(group)
                continue
            for code, term in catalogue.items():
                if term.mandatory and any(code not in row for row in rows):
                    missing.append(f"{group}/{code}")
        return missing


ANNOTATION = "x-en16931"
"""The schema keyword that names the business term a property holds (``app.einvoice.mapping``)."""
ADDRESS_GROUPS = frozenset(ADDRESS_PARTS)
TABLE_GROUPS = {"BG-25": LINE_TERMS, "BG-23": VAT_TERMS}


def annotation_error(value: Any, *, in_group: str | None) -> str | None:
    """Why ``value`` is not a valid ``x-en16931`` annotation here (``in_group``: the table group
    the property's object is an item of), or None."""
    if value is False:
        return None
    codes = [value] if isinstance(value, str) else value if isinstance(value, list) else None
    if not codes or not all(isinstance(c, str) for c in codes):
        return "a business term like BT-1, a list of them, a group (BG-5, BG-8, BG-23, BG-25) or false"
    unknown = [c for c in codes if c not in ALL_TERMS and c not in ADDRESS_GROUPS and c not in TABLE_GROUPS]
    if unknown:
        return f"unknown business term {unknown[0]} (known: BT-1 ... BT-157, BG-5, BG-8, BG-23, BG-25)"
    groups = [c for c in codes if c in ADDRESS_GROUPS or c in TABLE_GROUPS]
    if groups and len(codes) > 1:
        return f"{groups[0]} names a whole group; it cannot be listed with other terms"
    expected = TABLE_GROUPS.get(in_group or "", {})
    for code in codes:
        misplaced = (
            code not in expected if in_group else code in ALL_TERMS and ALL_TERMS[code].group != "invoice"
        )
        if misplaced:
            where = f"in the items of a {in_group} array" if in_group else "outside a BG-25 or BG-23 array"
            name = ALL_TERMS[code].name if code in ALL_TERMS else GROUPS[code]
            return f"{code} ({name}) cannot be used {where}"
    return None
