"""E-invoices made the way senders make them, independently of the service's own writers: CII through
``drafthorse`` (a ZUGFeRD/Factur-X generator), UBL through a small hand-written ``lxml`` builder
below, Factur-X PDFs through the ``factur-x`` library over a page drawn with PyMuPDF.

Everything starts from a plain ``SampleInvoice``; ``expected`` says which business term values a
reader must find in what was made from it (per profile: MINIMUM and BASIC WL carry fewer terms).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import facturx  # type: ignore[import-untyped]
import pymupdf
from drafthorse.models.accounting import ApplicableTradeTax  # type: ignore[import-untyped]
from drafthorse.models.document import Document  # type: ignore[import-untyped]
from drafthorse.models.note import IncludedNote  # type: ignore[import-untyped]
from drafthorse.models.party import TaxRegistration, TradeParty  # type: ignore[import-untyped]
from drafthorse.models.payment import PaymentMeans, PaymentTerms  # type: ignore[import-untyped]
from drafthorse.models.trade import TradeSettlement  # type: ignore[import-untyped]
from drafthorse.models.tradelines import LineItem  # type: ignore[import-untyped]
from lxml import etree
from lxml.builder import ElementMaker

CENT = Decimal("0.01")
GUIDELINES = {
    "minimum": "urn:factur-x.eu:1p0:minimum",
    "basicwl": "urn:factur-x.eu:1p0:basicwl",
    "basic": "urn:cen.eu:en16931:2017#compliant#urn:factur-x.eu:1p0:basic",
    "en16931": "urn:cen.eu:en16931:2017",
    "extended": "urn:cen.eu:en16931:2017#conformant#urn:factur-x.eu:1p0:extended",
    "xrechnung": "urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0",
}
DRAFTHORSE_SCHEMA = {
    "minimum": "FACTUR-X_MINIMUM",
    "basicwl": "FACTUR-X_BASIC-WL",
    "basic": "FACTUR-X_BASIC",
    "en16931": "FACTUR-X_EN16931",
    "extended": "FACTUR-X_EXTENDED",
    "xrechnung": "FACTUR-X_EN16931",
}
PEPPOL = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
XRECHNUNG_UBL = "urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0"
PEPPOL_PROFILE = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"

# What each Factur-X profile can carry (the XSDs): MINIMUM a handful of header terms, BASIC WL no
# lines, contacts, account name, BIC or rounding; BASIC lines without description or seller's id.
_MINIMUM = {
    "BT-1", "BT-2", "BT-3", "BT-5", "BT-10", "BT-13", "BT-24", "BT-27", "BT-30", "BT-31", "BT-32", "BT-40",
    "BT-44", "BT-47", "BT-109", "BT-110", "BT-112", "BT-115",
}  # fmt: skip
_NOT_IN_BASICWL = {"BT-41", "BT-42", "BT-43", "BT-85", "BT-86", "BT-114"}
_NOT_IN_BASIC_LINES = {"BT-154", "BT-155"}
_WITHOUT_LINES = ("minimum", "basicwl")


@dataclass(frozen=True)
class Party:
    name: str
    street: str
    postcode: str
    city: str
    country: str
    vat_id: str | None = None
    additional_street: str | None = None
    subdivision: str | None = None
    identifier: str | None = None  # BT-29 / BT-46
    legal_id: str | None = None  # BT-30 / BT-47
    electronic_address: str | None = None  # BT-34 / BT-49, an e-mail address here
    # The seller's only:
    trading_name: str | None = None
    tax_id: str | None = None  # BT-32, e.g. a German Steuernummer
    contact: str | None = None
    phone: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class Line:
    name: str
    quantity: Decimal
    unit_code: str
    unit_price: Decimal
    vat_rate: Decimal
    vat_category: str = "S"
    description: str | None = None
    seller_id: str | None = None
    standard_id: str | None = None  # a GTIN
    note: str | None = None
    base_quantity: Decimal | None = None

    @property
    def net(self) -> Decimal:
        return (self.quantity * self.unit_price / (self.base_quantity or 1)).quantize(CENT, ROUND_HALF_UP)


@dataclass(frozen=True)
class VatRow:
    category: str
    rate: Decimal
    basis: Decimal
    tax: Decimal


@dataclass(frozen=True)
class SampleInvoice:
    number: str
    issue_date: date
    currency: str
    seller: Party
    buyer: Party
    lines: tuple[Line, ...]
    due_date: date | None = None
    credit_note: bool = False
    iban: str | None = None
    bic: str | None = None
    account_name: str | None = None
    payment_means_code: str = "58"  # SEPA credit transfer
    payment_reference: str | None = None
    payment_terms: str | None = None
    po_ref: str | None = None
    contract_ref: str | None = None
    buyer_reference: str | None = None
    note: str | None = None
    delivery_date: date | None = None
    prepaid: Decimal | None = None
    rounding: Decimal | None = None
    allowance_charge_totals: bool = False  # BT-107/BT-108 written as 0.00
    exemption_reason: str | None = None  # for the breakdown rows of categories other than S
    exemption_reason_code: str | None = None

    @property
    def type_code(self) -> str:
        return "381" if self.credit_note else "380"

    @property
    def line_total(self) -> Decimal:
        return sum((line.net for line in self.lines), Decimal("0.00"))

    def vat_breakdown(self) -> list[VatRow]:
        """One row per (category, rate), in the order the lines first use them."""
        bases: dict[tuple[str, Decimal], Decimal] = {}
        for line in self.lines:
            key = (line.vat_category, line.vat_rate)
            bases[key] = bases.get(key, Decimal("0.00")) + line.net
        return [
            VatRow(category, rate, basis, (basis * rate / 100).quantize(CENT, ROUND_HALF_UP))
            for (category, rate), basis in bases.items()
        ]

    @property
    def tax_total(self) -> Decimal:
        return sum((row.tax for row in self.vat_breakdown()), Decimal("0.00"))

    @property
    def grand_total(self) -> Decimal:
        return self.line_total + self.tax_total

    @property
    def due_amount(self) -> Decimal:
        return self.grand_total - (self.prepaid or 0) + (self.rounding or 0)


@dataclass(frozen=True)
class Expected:
    """The values (normalised as the model holds them) a reader must find, by business term."""

    terms: dict[str, str]
    vat_breakdown: list[dict[str, str]] = field(default_factory=list)
    lines: list[dict[str, str]] = field(default_factory=list)


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def expected(
    sample: SampleInvoice, profile: str = "en16931", *, customization: str | None = None
) -> Expected:
    """What ``cii_xml(sample, profile)`` (or, with ``profile="ubl"``, ``ubl_xml``) holds, as terms."""
    seller, buyer = sample.seller, sample.buyer
    rows = sample.vat_breakdown()
    guideline = customization or GUIDELINES.get(profile, PEPPOL)
    everything: dict[str, str | None] = {
        "BT-1": sample.number,
        "BT-2": _iso(sample.issue_date),
        "BT-3": sample.type_code,
        "BT-5": sample.currency,
        "BT-9": _iso(sample.due_date),
        "BT-10": sample.buyer_reference,
        "BT-12": sample.contract_ref,
        "BT-13": sample.po_ref,
        "BT-20": sample.payment_terms,
        "BT-22": sample.note,
        "BT-24": guideline,
        "BT-27": seller.name,
        "BT-28": seller.trading_name,
        "BT-29": seller.identifier,
        "BT-30": seller.legal_id,
        "BT-31": seller.vat_id,
        "BT-32": seller.tax_id,
        "BT-34": seller.electronic_address,
        "BT-35": seller.street,
        "BT-36": seller.additional_street,
        "BT-37": seller.city,
        "BT-38": seller.postcode,
        "BT-39": seller.subdivision,
        "BT-40": seller.country,
        "BT-41": seller.contact,
        "BT-42": seller.phone,
        "BT-43": seller.email,
        "BT-44": buyer.name,
        "BT-46": buyer.identifier,
        "BT-47": buyer.legal_id,
        "BT-48": buyer.vat_id,
        "BT-49": buyer.electronic_address,
        "BT-50": buyer.street,
        "BT-51": buyer.additional_street,
        "BT-52": buyer.city,
        "BT-53": buyer.postcode,
        "BT-54": buyer.subdivision,
        "BT-55": buyer.country,
        "BT-72": _iso(sample.delivery_date),
        "BT-81": sample.payment_means_code if sample.iban else None,
        "BT-83": sample.payment_reference,
        "BT-84": sample.iban,
        "BT-85": sample.account_name if sample.iban else None,
        "BT-86": sample.bic if sample.iban else None,
        "BT-106": str(sample.line_total),
        "BT-107": "0.00" if sample.allowance_charge_totals else None,
        "BT-108": "0.00" if sample.allowance_charge_totals else None,
        "BT-109": str(sample.line_total),
        "BT-110": str(sample.tax_total),
        "BT-112": str(sample.grand_total),
        "BT-113": str(sample.prepaid) if sample.prepaid is not None else None,
        "BT-114": str(sample.rounding) if sample.rounding is not None else None,
        "BT-115": str(sample.due_amount),
    }
    if profile == "ubl" and sample.credit_note and not sample.iban:
        everything["BT-9"] = None  # a UBL 2.1 credit note's due date sits in its payment means
    terms = {
        code: value for code, value in everything.items() if value is not None and in_profile(profile, code)
    }
    if profile == "minimum":
        return Expected(terms)
    vat = []
    for row in rows:
        exempt = row.category != "S"
        cells = {
            "BT-116": str(row.basis),
            "BT-117": str(row.tax),
            "BT-118": row.category,
            "BT-119": str(row.rate),
            "BT-120": sample.exemption_reason if exempt else None,
            "BT-121": sample.exemption_reason_code if exempt else None,
        }
        vat.append({code: value for code, value in cells.items() if value is not None})
    if profile in _WITHOUT_LINES:
        return Expected(terms, vat)
    lines = []
    for number, line in enumerate(sample.lines, start=1):
        cells = {
            "BT-126": str(number),
            "BT-127": line.note,
            "BT-129": str(line.quantity),
            "BT-130": line.unit_code,
            "BT-131": str(line.net),
            "BT-146": str(line.unit_price),
            "BT-149": str(line.base_quantity) if line.base_quantity is not None else None,
            "BT-151": line.vat_category,
            "BT-152": str(line.vat_rate),
            "BT-153": line.name,
            "BT-154": line.description,
            "BT-155": line.seller_id,
            "BT-157": line.standard_id,
        }
        lines.append(
            {code: value for code, value in cells.items() if value is not None and in_profile(profile, code)}
        )
    return Expected(terms, vat, lines)


def in_profile(profile: str, code: str) -> bool:
    """Whether a Factur-X ``profile`` can carry term ``code`` (every term for EN 16931 and up, UBL)."""
    if profile == "minimum":
        return code in _MINIMUM
    if profile == "basicwl":
        return code not in _NOT_IN_BASICWL
    if profile == "basic":
        return code not in _NOT_IN_BASICWL | _NOT_IN_BASIC_LINES
    return True


# --- CII through drafthorse ---------------------------------------------------------------------


def cii_xml(sample: SampleInvoice, profile: str = "en16931") -> bytes:
    """A Factur-X / ZUGFeRD 2.x CII document of ``sample`` in ``profile`` (minimum, basicwl, basic,
    en16931, extended, or xrechnung: EN 16931 with XRechnung's guideline id), made by drafthorse,
    which checks it against its own copy of the profile's XSD."""
    doc = Document()
    doc.context.guideline_parameter.id = GUIDELINES[profile]
    doc.header.id = sample.number
    doc.header.type_code = sample.type_code
    doc.header.issue_date_time = sample.issue_date
    if sample.note and profile != "minimum":
        note = IncludedNote()
        note.content = sample.note
        doc.header.notes.add(note)

    agreement = doc.trade.agreement
    if sample.buyer_reference:
        agreement.buyer_reference = sample.buyer_reference
    _cii_party(agreement.seller, sample.seller, profile, seller=True)
    _cii_party(agreement.buyer, sample.buyer, profile, seller=False)
    if sample.po_ref:
        agreement.buyer_order.issuer_assigned_id = sample.po_ref
    if sample.contract_ref and profile != "minimum":
        agreement.contract.issuer_assigned_id = sample.contract_ref
    if sample.delivery_date and profile != "minimum":
        doc.trade.delivery.event.occurrence = sample.delivery_date

    settlement = doc.trade.settlement
    settlement.currency_code = sample.currency
    if profile != "minimum":
        _cii_settlement(settlement, sample, profile)
    summation = settlement.monetary_summation
    if profile != "minimum":
        summation.line_total = sample.line_total
        if sample.allowance_charge_totals:
            summation.charge_total = Decimal("0.00")
            summation.allowance_total = Decimal("0.00")
    summation.tax_basis_total = sample.line_total
    summation.tax_total = (sample.tax_total, sample.currency)
    if sample.rounding is not None and in_profile(profile, "BT-114"):
        summation.rounding_amount = sample.rounding
    summation.grand_total = sample.grand_total
    if sample.prepaid is not None and profile != "minimum":
        summation.prepaid_total = sample.prepaid
    summation.due_amount = sample.due_amount

    if profile not in _WITHOUT_LINES:
        for number, line in enumerate(sample.lines, start=1):
            doc.trade.items.add(_cii_line(number, line, profile))
    result: bytes = doc.serialize(schema=DRAFTHORSE_SCHEMA[profile])
    return result


def _cii_party(party: TradeParty, data: Party, profile: str, *, seller: bool) -> None:
    party.name = data.name
    minimum = profile == "minimum"
    if data.identifier and not minimum:
        party.id = data.identifier
    if data.legal_id:
        party.legal_organization.id = data.legal_id
    if seller and data.trading_name and not minimum:
        party.legal_organization.trade_name = data.trading_name
    if seller and in_profile(profile, "BT-41"):
        _cii_contact(party, data)
    if minimum:
        if seller:
            party.address.country_id = data.country
    else:
        _cii_address(party, data)
    if data.vat_id and (seller or not minimum):
        party.tax_registrations.add(TaxRegistration(id=("VA", data.vat_id)))
    if seller and data.tax_id:
        party.tax_registrations.add(TaxRegistration(id=("FC", data.tax_id)))


def _cii_contact(party: TradeParty, data: Party) -> None:
    if data.contact:
        party.contact.person_name = data.contact
    if data.phone:
        party.contact.telephone.number = data.phone
    if data.email:
        party.contact.email.address = data.email


def _cii_address(party: TradeParty, data: Party) -> None:
    party.address.line_one = data.street
    if data.additional_street:
        party.address.line_two = data.additional_street
    party.address.postcode = data.postcode
    party.address.city_name = data.city
    party.address.country_id = data.country
    if data.subdivision:
        party.address.country_subdivision = data.subdivision
    if data.electronic_address:
        party.electronic_address.uri_ID = ("EM", data.electronic_address)


def _cii_settlement(settlement: TradeSettlement, sample: SampleInvoice, profile: str) -> None:
    if sample.payment_reference:
        settlement.payment_reference = sample.payment_reference
    if sample.iban:
        means = PaymentMeans()
        means.type_code = sample.payment_means_code
        means.payee_account.iban = sample.iban
        if sample.account_name and in_profile(profile, "BT-85"):
            means.payee_account.account_name = sample.account_name
        if sample.bic and in_profile(profile, "BT-86"):
            means.payee_institution.bic = sample.bic
        settlement.payment_means.add(means)
    for row in sample.vat_breakdown():
        tax = ApplicableTradeTax()
        tax.calculated_amount = row.tax
        tax.type_code = "VAT"
        if row.category != "S" and sample.exemption_reason:
            tax.exemption_reason = sample.exemption_reason
        tax.basis_amount = row.basis
        tax.category_code = row.category
        if row.category != "S" and sample.exemption_reason_code:
            tax.exemption_reason_code = sample.exemption_reason_code
        tax.rate_applicable_percent = row.rate
        settlement.trade_tax.add(tax)
    if sample.payment_terms or sample.due_date:
        terms = PaymentTerms()
        if sample.payment_terms:
            terms.description = sample.payment_terms
        if sample.due_date:
            terms.due = sample.due_date
        settlement.terms.add(terms)


def _cii_line(number: int, line: Line, profile: str) -> LineItem:
    item = LineItem()
    item.document.line_id = str(number)
    if line.note:
        note = IncludedNote()
        note.content = line.note
        item.document.notes.add(note)
    if line.standard_id:
        item.product.global_id = ("0160", line.standard_id)
    if line.seller_id and in_profile(profile, "BT-155"):
        item.product.seller_assigned_id = line.seller_id
    item.product.name = line.name
    if line.description and in_profile(profile, "BT-154"):
        item.product.description = line.description
    item.agreement.net.amount = line.unit_price
    if line.base_quantity is not None:
        item.agreement.net.basis_quantity = (line.base_quantity, line.unit_code)
    item.delivery.billed_quantity = (line.quantity, line.unit_code)
    item.settlement.trade_tax.type_code = "VAT"
    item.settlement.trade_tax.category_code = line.vat_category
    item.settlement.trade_tax.rate_applicable_percent = line.vat_rate
    item.settlement.monetary_summation.total_amount = line.net
    return item


# --- UBL by hand ----------------------------------------------------------------------------------

CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"


def ubl_xml(sample: SampleInvoice, credit_note: bool = False, *, customization: str = PEPPOL) -> bytes:
    """A UBL 2.1 Invoice (or CreditNote, when asked or the sample is one) of ``sample``, built
    element by element in the order of the UBL XSD, as a Peppol BIS 3.0 sender writes it."""
    credit = credit_note or sample.credit_note
    kind = "CreditNote" if credit else "Invoice"
    namespace = f"urn:oasis:names:specification:ubl:schema:xsd:{kind}-2"
    root_maker = ElementMaker(namespace=namespace, nsmap={None: namespace, "cac": CAC, "cbc": CBC})
    cac = ElementMaker(namespace=CAC)
    cbc = ElementMaker(namespace=CBC)

    def money(tag: str, amount: Decimal) -> etree._Element:
        return cbc(tag, str(amount), currencyID=sample.currency)

    def optional(value: object, make: object) -> list[etree._Element]:
        return [make(value)] if value is not None else []  # type: ignore[operator]

    def party(data: Party, seller: bool) -> etree._Element:
        children: list[etree._Element] = []
        children += optional(data.electronic_address, lambda v: cbc.EndpointID(v, schemeID="EM"))
        children += optional(data.identifier, lambda v: cac.PartyIdentification(cbc.ID(v)))
        if seller:
            children += optional(data.trading_name, lambda v: cac.PartyName(cbc.Name(v)))
        address = [cbc.StreetName(data.street)]
        address += optional(data.additional_street, cbc.AdditionalStreetName)
        address += [cbc.CityName(data.city), cbc.PostalZone(data.postcode)]
        address += optional(data.subdivision, cbc.CountrySubentity)
        address += [cac.Country(cbc.IdentificationCode(data.country))]
        children.append(cac.PostalAddress(*address))
        children += optional(
            data.vat_id, lambda v: cac.PartyTaxScheme(cbc.CompanyID(v), cac.TaxScheme(cbc.ID("VAT")))
        )
        if seller:
            children += optional(
                data.tax_id, lambda v: cac.PartyTaxScheme(cbc.CompanyID(v), cac.TaxScheme(cbc.ID("FC")))
            )
        entity = [cbc.RegistrationName(data.name), *optional(data.legal_id, cbc.CompanyID)]
        children.append(cac.PartyLegalEntity(*entity))
        if seller and (data.contact or data.phone or data.email):
            contact = optional(data.contact, cbc.Name) + optional(data.phone, cbc.Telephone)
            contact += optional(data.email, cbc.ElectronicMail)
            children.append(cac.Contact(*contact))
        return cac.Party(*children)

    header: list[etree._Element] = [
        cbc.CustomizationID(customization),
        cbc.ProfileID(PEPPOL_PROFILE),
        cbc.ID(sample.number),
        cbc.IssueDate(sample.issue_date.isoformat()),
    ]
    if not credit:
        header += optional(sample.due_date, lambda v: cbc.DueDate(v.isoformat()))
    header.append(cbc(f"{kind}TypeCode", "381" if credit else sample.type_code))
    header += optional(sample.note, cbc.Note)
    header.append(cbc.DocumentCurrencyCode(sample.currency))
    header += optional(sample.buyer_reference, cbc.BuyerReference)
    header += optional(sample.po_ref, lambda v: cac.OrderReference(cbc.ID(v)))
    header += optional(sample.contract_ref, lambda v: cac.ContractDocumentReference(cbc.ID(v)))
    header.append(cac.AccountingSupplierParty(party(sample.seller, seller=True)))
    header.append(cac.AccountingCustomerParty(party(sample.buyer, seller=False)))
    header += optional(sample.delivery_date, lambda v: cac.Delivery(cbc.ActualDeliveryDate(v.isoformat())))
    if sample.iban:
        means = [cbc.PaymentMeansCode(sample.payment_means_code)]
        if credit:
            means += optional(sample.due_date, lambda v: cbc.PaymentDueDate(v.isoformat()))
        means += optional(sample.payment_reference, cbc.PaymentID)
        account = [cbc.ID(sample.iban), *optional(sample.account_name, cbc.Name)]
        account += optional(sample.bic, lambda v: cac.FinancialInstitutionBranch(cbc.ID(v)))
        means.append(cac.PayeeFinancialAccount(*account))
        header.append(cac.PaymentMeans(*means))
    header += optional(sample.payment_terms, lambda v: cac.PaymentTerms(cbc.Note(v)))

    subtotals = []
    for row in sample.vat_breakdown():
        category = [cbc.ID(row.category), cbc.Percent(str(row.rate))]
        if row.category != "S":
            category += optional(sample.exemption_reason_code, cbc.TaxExemptionReasonCode)
            category += optional(sample.exemption_reason, cbc.TaxExemptionReason)
        category.append(cac.TaxScheme(cbc.ID("VAT")))
        subtotals.append(
            cac.TaxSubtotal(
                money("TaxableAmount", row.basis), money("TaxAmount", row.tax), cac.TaxCategory(*category)
            )
        )
    header.append(cac.TaxTotal(money("TaxAmount", sample.tax_total), *subtotals))
    totals = [
        money("LineExtensionAmount", sample.line_total),
        money("TaxExclusiveAmount", sample.line_total),
        money("TaxInclusiveAmount", sample.grand_total),
    ]
    if sample.allowance_charge_totals:
        totals += [
            money("AllowanceTotalAmount", Decimal("0.00")),
            money("ChargeTotalAmount", Decimal("0.00")),
        ]
    totals += optional(sample.prepaid, lambda v: money("PrepaidAmount", v))
    totals += optional(sample.rounding, lambda v: money("PayableRoundingAmount", v))
    totals.append(money("PayableAmount", sample.due_amount))
    header.append(cac.LegalMonetaryTotal(*totals))

    for number, line in enumerate(sample.lines, start=1):
        item = [*optional(line.description, cbc.Description), cbc.Name(line.name)]
        item += optional(line.seller_id, lambda v: cac.SellersItemIdentification(cbc.ID(v)))
        item += optional(
            line.standard_id, lambda v: cac.StandardItemIdentification(cbc.ID(v, schemeID="0160"))
        )
        item.append(
            cac.ClassifiedTaxCategory(
                cbc.ID(line.vat_category), cbc.Percent(str(line.vat_rate)), cac.TaxScheme(cbc.ID("VAT"))
            )
        )
        price = [money("PriceAmount", line.unit_price)]
        if line.base_quantity is not None:
            price.append(cbc.BaseQuantity(str(line.base_quantity), unitCode=line.unit_code))
        header.append(
            cac(
                f"{kind}Line",
                cbc.ID(str(number)),
                *optional(line.note, cbc.Note),
                cbc(
                    "CreditedQuantity" if credit else "InvoicedQuantity",
                    str(line.quantity),
                    unitCode=line.unit_code,
                ),
                money("LineExtensionAmount", line.net),
                cac.Item(*item),
                cac.Price(*price),
            )
        )
    root = root_maker(kind, *header)
    xml_bytes: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return xml_bytes


# --- PDFs ------------------------------------------------------------------------------------------


def page_values(sample: SampleInvoice) -> dict[str, str]:
    """What the visible page prints, by key; ``facturx_pdf(page_text=...)`` overrides any of them."""
    seller, buyer = sample.seller, sample.buyer
    rows = sample.vat_breakdown()
    return {
        "title": "Credit Note" if sample.credit_note else "Invoice",
        "seller": seller.name,
        "seller_address": f"{seller.street}, {seller.postcode} {seller.city}, {seller.country}",
        "seller_vat": seller.vat_id or "",
        "buyer": buyer.name,
        "buyer_address": f"{buyer.street}, {buyer.postcode} {buyer.city}, {buyer.country}",
        "number": sample.number,
        "issue_date": sample.issue_date.isoformat(),
        "due_date": _iso(sample.due_date) or "",
        "po_ref": sample.po_ref or "",
        "net": str(sample.line_total),
        "vat": " ".join(f"{row.rate}% {row.tax}" for row in rows),
        "total": str(sample.grand_total),
        "due": str(sample.due_amount),
        "iban": sample.iban or "",
        "bic": sample.bic or "",
        "payment_terms": sample.payment_terms or "",
        "note": sample.note or "",
    }


def invoice_page_pdf(sample: SampleInvoice, page_text: Mapping[str, str] | None = None) -> bytes:
    """A born-digital page of the invoice (Helvetica text), what a page reader would see."""
    shown = page_values(sample) | dict(page_text or {})
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    rows: list[tuple[float, float, str]] = [
        (60, 60, shown["seller"]),
        (60, 76, shown["seller_address"]),
        (60, 92, f"VAT ID {shown['seller_vat']}" if shown["seller_vat"] else ""),
        (360, 60, f"{shown['title']} No. {shown['number']}"),
        (360, 76, f"Date {shown['issue_date']}"),
        (360, 92, f"Due date {shown['due_date']}" if shown["due_date"] else ""),
        (360, 108, f"Order {shown['po_ref']}" if shown["po_ref"] else ""),
        (60, 140, f"Bill to: {shown['buyer']}"),
        (60, 156, shown["buyer_address"]),
    ]
    columns = (60, 260, 320, 400, 460)  # a table as invoices print one: each column at its own x
    for left, title in zip(columns, ("Description", "Qty", "Unit price", "VAT", "Amount"), strict=True):
        rows.append((left, 200, title))
    y = 216.0
    for line in sample.lines:
        cells = (line.name, str(line.quantity), str(line.unit_price), f"{line.vat_rate}%", str(line.net))
        rows += [(left, y, cell) for left, cell in zip(columns, cells, strict=True)]
        y += 16
    y += 16
    rows += [
        (360, y, f"Subtotal {shown['net']}"),
        (360, y + 16, f"VAT {shown['vat']}"),
        (360, y + 32, f"Total {sample.currency} {shown['total']}"),
        (360, y + 48, f"Amount due {sample.currency} {shown['due']}"),
        (60, y + 80, f"IBAN {shown['iban']}" if shown["iban"] else ""),
        (60, y + 96, f"BIC {shown['bic']}" if shown["bic"] else ""),
        (60, y + 112, shown["payment_terms"]),
        (60, y + 128, shown["note"]),
    ]
    for x, top, text in rows:
        if text:
            page.insert_text((x, top), text, fontsize=10, fontname="helv")
    data: bytes = doc.tobytes()
    doc.close()
    return data


def facturx_pdf(
    sample: SampleInvoice,
    *,
    xml: bytes | None = None,
    filename: str = "factur-x.xml",
    page_text: Mapping[str, str] | None = None,
) -> bytes:
    """A Factur-X PDF: the visible page and ``xml`` (default: the sample's EN 16931 CII) embedded as
    the factur-x library does it (``/AF``, XMP metadata). Another ``filename`` (``xrechnung.xml``,
    ``zugferd-invoice.xml``) or a non-CII ``xml`` is embedded with PyMuPDF and an ``/AF`` entry, since
    the library only writes ``factur-x.xml``. The XML is not checked: tests embed broken ones too."""
    page = invoice_page_pdf(sample, page_text)
    data = xml if xml is not None else cii_xml(sample)
    if filename != "factur-x.xml" or b"CrossIndustryInvoice" not in data[:4096]:
        return _embed(page, filename, data, associated=True)
    metadata = {
        "author": sample.seller.name,
        "keywords": "Factur-X, Invoice",
        "title": f"{sample.seller.name}: Invoice {sample.number}",
        "subject": f"Factur-X invoice {sample.number} dated {sample.issue_date.isoformat()}",
    }
    result: bytes = facturx.generate_from_binary(page, data, check_xsd=False, pdf_metadata=metadata)
    return result


def pdf_with_attachment(sample: SampleInvoice, name: str, data: bytes) -> bytes:
    """The invoice's page with a plain embedded file (no ``/AF``, no Factur-X metadata): a sender's
    non-standard attachment."""
    return _embed(invoice_page_pdf(sample), name, data, associated=False)


def _embed(pdf: bytes, name: str, data: bytes, *, associated: bool) -> bytes:
    """``data`` as embedded file ``name``; ``associated``: also in the catalog's ``/AF`` with
    ``/AFRelationship /Data`` (what PDF/A-3 readers look for), which needs an indirect file spec."""
    doc = pymupdf.open(stream=pdf, filetype="pdf")
    if not associated:
        doc.embfile_add(name, data, filename=name, desc="Invoice XML")
    else:
        stream = doc.get_new_xref()
        doc.update_object(stream, "<< /Type /EmbeddedFile /Subtype /text#2Fxml >>")
        doc.update_stream(stream, data)
        spec = doc.get_new_xref()
        doc.update_object(
            spec,
            f"<< /Type /Filespec /F ({name}) /UF ({name}) /Desc (Invoice XML) /AFRelationship /Data"
            f" /EF << /F {stream} 0 R /UF {stream} 0 R >> >>",
        )
        catalog = doc.pdf_catalog()
        doc.xref_set_key(catalog, "Names", f"<< /EmbeddedFiles << /Names [({name}) {spec} 0 R] >> >>")
        doc.xref_set_key(catalog, "AF", f"[{spec} 0 R]")
    result: bytes = doc.tobytes()
    doc.close()
    return result


# --- Samples --------------------------------------------------------------------------------------


def german_sample() -> SampleInvoice:
    """An XRechnung-style invoice of a German seller in EUR with every invoice and line term of the
    catalogue: 2 VAT rates (19 % and 7 %), 3 lines, addresses, IBAN/BIC, due date, note, PO reference,
    delivery date, prepaid and rounding amounts."""
    return SampleInvoice(
        number="RE-2024-0815",
        issue_date=date(2024, 3, 15),
        due_date=date(2024, 4, 14),
        currency="EUR",
        seller=Party(
            name="Müller & Söhne Werkzeugbau GmbH",
            street="Industriestraße 12",
            additional_street="Halle 3",
            postcode="70565",
            city="Stuttgart",
            country="DE",
            subdivision="Baden-Württemberg",
            vat_id="DE123456788",
            tax_id="99/815/08150",
            identifier="4000001123452",
            legal_id="HRB 123456",
            electronic_address="rechnung@mueller-werkzeugbau.de",
            trading_name="Müller Werkzeugbau",
            contact="Erika Mustermann",
            phone="+49 711 123456",
            email="erika.mustermann@mueller-werkzeugbau.de",
        ),
        buyer=Party(
            name="Stadtwerke Musterstadt AöR",
            street="Am Markt 1",
            additional_street="Einkauf, Zimmer 204",
            postcode="12345",
            city="Musterstadt",
            country="DE",
            subdivision="Niedersachsen",
            vat_id="DE987654328",
            identifier="K-10042",
            legal_id="HRA 4711",
            electronic_address="eingangsrechnung@stadtwerke-musterstadt.de",
        ),
        lines=(
            Line(
                "Fräskopf HM 50 mm",
                Decimal("2"),
                "H87",
                Decimal("249.50"),
                Decimal("19"),
                description="Hartmetall, 6 Schneiden",
                seller_id="FK-50-HM",
                standard_id="4012345000016",
                note="Lieferung gemäß Rahmenvertrag",
            ),
            Line(
                "Montage vor Ort",
                Decimal("3.5"),
                "HUR",
                Decimal("85.00"),
                Decimal("19"),
                seller_id="SRV-MONT",
            ),
            Line(
                "Fachbuch Zerspanungstechnik",
                Decimal("1"),
                "H87",
                Decimal("64.20"),
                Decimal("7"),
                base_quantity=Decimal("1"),
            ),
        ),
        iban="DE89370400440532013000",
        bic="COBADEFFXXX",
        account_name="Müller & Söhne Werkzeugbau GmbH",
        payment_reference="RE-2024-0815",
        payment_terms="Zahlbar innerhalb von 30 Tagen ohne Abzug",
        po_ref="PO-2024-117",
        contract_ref="RV-2023-09",
        buyer_reference="04011000-12345-67",  # a Leitweg-ID
        note="Es gelten unsere Allgemeinen Geschäftsbedingungen.",
        delivery_date=date(2024, 3, 12),
        prepaid=Decimal("100.00"),
        rounding=Decimal("-0.03"),
        allowance_charge_totals=True,
    )


def french_sample() -> SampleInvoice:
    """A French seller's invoice (20 % and 5.5 %), SIRET as legal id, fewer optional terms."""
    return SampleInvoice(
        number="FA-2024-00042",
        issue_date=date(2024, 6, 3),
        due_date=date(2024, 7, 3),
        currency="EUR",
        seller=Party(
            name="Boulangerie Dupont SARL",
            street="12 rue de la République",
            postcode="69002",
            city="Lyon",
            country="FR",
            vat_id="FR11123456782",
            legal_id="12345678900017",
        ),
        buyer=Party(
            name="Hôtel des Célestins",
            street="4 rue des Célestins",
            postcode="69002",
            city="Lyon",
            country="FR",
            vat_id="FR14987654324",
        ),
        lines=(
            Line("Croissants", Decimal("120"), "H87", Decimal("0.95"), Decimal("5.5")),
            Line("Pain de campagne", Decimal("30"), "H87", Decimal("3.20"), Decimal("5.5")),
            Line("Livraison", Decimal("1"), "C62", Decimal("15.00"), Decimal("20")),
        ),
        iban="FR7630006000011234567890189",
        bic="AGRIFRPP",
        payment_terms="Paiement à 30 jours",
        po_ref="CMD-8841",
    )


def credit_note_sample() -> SampleInvoice:
    """A credit note for a returned item, with a VAT-exempt (category E) line."""
    return SampleInvoice(
        number="GS-2024-0007",
        issue_date=date(2024, 5, 2),
        due_date=date(2024, 5, 16),
        currency="EUR",
        credit_note=True,
        seller=Party(
            name="Nordlicht Elektronik GmbH",
            street="Hafenstraße 7",
            postcode="20457",
            city="Hamburg",
            country="DE",
            vat_id="DE111222339",
        ),
        buyer=Party(
            name="Kappa Consulting BV",
            street="Keizersgracht 100",
            postcode="1015 AA",
            city="Amsterdam",
            country="NL",
            vat_id="NL123456782B01",
        ),
        lines=(
            Line("Monitor 27 Zoll, Rücknahme", Decimal("1"), "H87", Decimal("289.00"), Decimal("19")),
            Line(
                "Schulung (steuerfrei)", Decimal("2"), "HUR", Decimal("60.00"), Decimal("0"), vat_category="E"
            ),
        ),
        iban="DE02120300000000202051",
        bic="BYLADEM1001",
        payment_terms="Gutschrift wird mit der nächsten Rechnung verrechnet",
        exemption_reason="Steuerfreie Bildungsleistung nach § 4 Nr. 21 UStG",
        exemption_reason_code="VATEX-EU-132-1I",
    )


_SELLERS = [
    ("Alpha Bürobedarf GmbH", "Lindenallee 4", "10115", "Berlin", "DE", "DE100200309"),
    ("Société Générale de Services", "3 avenue Foch", "75016", "Paris", "FR", "FR40303265045"),
    ("Van Dijk Logistiek BV", "Havenweg 21", "3011 AB", "Rotterdam", "NL", "NL004495445B01"),
    ("Rossi Forniture S.r.l.", "Via Roma 15", "20121", "Milano", "IT", "IT12345670017"),
    ("García y Asociados S.L.", "Calle Mayor 8", "28013", "Madrid", "ES", "ESB12345674"),
]
_BUYERS = [
    ("Beta Handels AG", "Marktplatz 2", "80331", "München", "DE", "DE300400508"),
    ("Omega Industries SA", "10 rue Royale", "1000", "Bruxelles", "BE", "BE0123456749"),
    ("Nordic Supplies AB", "Storgatan 5", "111 51", "Stockholm", "SE", "SE556677889901"),
]
_ITEMS = [
    ("Kopierpapier A4", "H87", "4.99"),
    ("Beratung", "HUR", "120.00"),
    ("Transport", "C62", "75.50"),
    ("Software-Lizenz", "C62", "1499.00"),
    ("Toner schwarz", "H87", "89.90"),
    ("Wartungsvertrag", "MON", "250.00"),
    ("Schrauben M6", "KGM", "12.35"),
    ("Installation", "HUR", "95.00"),
]


def samples(seed: int, count: int = 20) -> list[SampleInvoice]:
    """``count`` varied invoices for benches and accuracy runs (same seed, same invoices): sellers
    and buyers of several countries, 1-6 lines, 1-2 VAT rates, optional terms present or not."""
    rng = random.Random(seed)
    made = []
    for index in range(count):
        seller = Party(*rng.choice(_SELLERS))
        buyer = Party(*rng.choice(_BUYERS))
        rates = rng.sample(
            [Decimal("19"), Decimal("7"), Decimal("20"), Decimal("10"), Decimal("21")], rng.randint(1, 2)
        )
        lines = []
        for _ in range(rng.randint(1, 6)):
            name, unit, price = rng.choice(_ITEMS)
            quantity = Decimal(rng.choice(["1", "2", "3", "5", "10", "0.5", "12.5"]))
            lines.append(Line(name, quantity, unit, Decimal(price), rng.choice(rates)))
        issued = date(2024, 1, 1) + timedelta(days=rng.randint(0, 365))

        def maybe(value: str) -> str | None:
            return value if rng.random() < 0.5 else None

        made.append(
            SampleInvoice(
                number=f"INV-{seed}-{index:04d}",
                issue_date=issued,
                due_date=issued + timedelta(days=rng.choice([14, 30, 60])) if rng.random() < 0.7 else None,
                currency="EUR",
                seller=replace(seller, legal_id=maybe(f"REG-{rng.randint(1000, 9999)}")),
                buyer=buyer,
                lines=tuple(lines),
                credit_note=rng.random() < 0.1,
                iban=(iban := rng.choice(["DE89370400440532013000", "FR7630006000011234567890189", None])),
                bic=maybe("COBADEFFXXX") if iban else None,  # BT-86 belongs to an account (BG-17)
                payment_terms=maybe("Zahlbar innerhalb von 14 Tagen"),
                po_ref=maybe(f"PO-{rng.randint(100, 999)}"),
                note=maybe("Vielen Dank für Ihren Auftrag."),
                delivery_date=issued - timedelta(days=rng.randint(0, 10)) if rng.random() < 0.5 else None,
            )
        )
    return made


def address(party: Party) -> str:
    """How the built-in schema holds BG-5 / BG-8: one line."""
    parts = [party.street, party.additional_street, f"{party.postcode} {party.city}", party.subdivision]
    return ", ".join(p for p in [*parts, party.country] if p)


def invoice_data(sample: SampleInvoice) -> dict[str, Any]:
    """The built-in invoice schema's data for ``sample``, written from the sample (not the reader)."""
    seller, buyer = sample.seller, sample.buyer
    data: dict[str, Any] = {
        "invoice_number": sample.number,
        "purchase_order_number": sample.po_ref,
        "issue_date": sample.issue_date.isoformat(),
        "due_date": sample.due_date.isoformat() if sample.due_date else None,
        "delivery_date": sample.delivery_date.isoformat() if sample.delivery_date else None,
        "seller": {
            "name": seller.name,
            "address": address(seller),
            "vat_id": seller.vat_id,
            "tax_id": seller.tax_id,
            "email": seller.email,
            "phone": seller.phone.replace(" ", "") if seller.phone else None,  # normalised as a phone
        },
        "buyer": {"name": buyer.name, "address": address(buyer), "vat_id": buyer.vat_id},
        "currency": sample.currency,
        "line_items": [
            {
                "description": line.name,
                "quantity": float(line.quantity),
                "unit": line.unit_code,
                "unit_price": float(line.unit_price),
                "amount": float(line.net),
                "tax_rate": float(line.vat_rate),
            }
            for line in sample.lines
        ],
        "subtotal": float(sample.line_total),
        "tax_total": float(sample.tax_total),
        "total": float(sample.grand_total),
        "payment_terms": sample.payment_terms,
        "iban": sample.iban,
        "bic": sample.bic,
    }
    without: dict[str, Any] = _without_none(data)
    return without


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value
