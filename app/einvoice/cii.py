"""UN/CEFACT Cross Industry Invoice (CII D16B), the syntax of Factur-X, ZUGFeRD 2.x and XRechnung-CII:
``read`` maps a document to the EN 16931 model (every profile, MINIMUM's few terms to EXTENDED's
many: a term is read where the document has it), ``write`` builds a Factur-X EN 16931 profile
document from the model, its elements in the XSD's order.

The paths follow the EN 16931-3-3 syntax binding for CII.
"""

from __future__ import annotations

from lxml import etree

from app.einvoice.model import (
    BUYER,
    CREDIT_NOTE_TYPE_CODES,
    SELLER,
    EInvoice,
    PartyTerms,
    Terms,
    in_catalogue_order,
)
from app.einvoice.xml import CII_NS, TermReader, sub

RAM_NS = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT_NS = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
QDT_NS = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
NAMESPACES = {"rsm": CII_NS, "ram": RAM_NS, "udt": UDT_NS, "qdt": QDT_NS}
EN16931_GUIDELINE = "urn:cen.eu:en16931:2017"

_TRANSACTION = "rsm:SupplyChainTradeTransaction"
_AGREEMENT = f"{_TRANSACTION}/ram:ApplicableHeaderTradeAgreement"
_DELIVERY = f"{_TRANSACTION}/ram:ApplicableHeaderTradeDelivery"
_SETTLEMENT = f"{_TRANSACTION}/ram:ApplicableHeaderTradeSettlement"
_SUMMATION = f"{_SETTLEMENT}/ram:SpecifiedTradeSettlementHeaderMonetarySummation"
_DATE = "udt:DateTimeString"

_HEADER = {
    "BT-1": "rsm:ExchangedDocument/ram:ID",
    "BT-2": f"rsm:ExchangedDocument/ram:IssueDateTime/{_DATE}",
    "BT-3": "rsm:ExchangedDocument/ram:TypeCode",
    "BT-5": f"{_SETTLEMENT}/ram:InvoiceCurrencyCode",
    "BT-9": f"{_SETTLEMENT}/ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime/{_DATE}",
    "BT-10": f"{_AGREEMENT}/ram:BuyerReference",
    "BT-12": f"{_AGREEMENT}/ram:ContractReferencedDocument/ram:IssuerAssignedID",
    "BT-13": f"{_AGREEMENT}/ram:BuyerOrderReferencedDocument/ram:IssuerAssignedID",
    "BT-20": f"{_SETTLEMENT}/ram:SpecifiedTradePaymentTerms/ram:Description",
    "BT-24": "rsm:ExchangedDocumentContext/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID",
    "BT-72": f"{_DELIVERY}/ram:ActualDeliverySupplyChainEvent/ram:OccurrenceDateTime/{_DATE}",
    "BT-83": f"{_SETTLEMENT}/ram:PaymentReference",
    "BT-106": f"{_SUMMATION}/ram:LineTotalAmount",
    "BT-107": f"{_SUMMATION}/ram:AllowanceTotalAmount",
    "BT-108": f"{_SUMMATION}/ram:ChargeTotalAmount",
    "BT-109": f"{_SUMMATION}/ram:TaxBasisTotalAmount",
    "BT-112": f"{_SUMMATION}/ram:GrandTotalAmount",
    "BT-113": f"{_SUMMATION}/ram:TotalPrepaidAmount",
    "BT-114": f"{_SUMMATION}/ram:RoundingAmount",
    "BT-115": f"{_SUMMATION}/ram:DuePayableAmount",
}
_ADDRESS = (
    "ram:LineOne",
    "ram:LineTwo",
    "ram:PostcodeCode",
    "ram:CityName",
    "ram:CountrySubDivisionName",
    "ram:CountryID",
)
_SELLER = {
    "BT-27": "ram:Name",
    "BT-28": "ram:SpecifiedLegalOrganization/ram:TradingBusinessName",
    "BT-29": "(ram:ID | ram:GlobalID)",
    "BT-30": "ram:SpecifiedLegalOrganization/ram:ID",
    "BT-31": "ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']",
    "BT-32": "ram:SpecifiedTaxRegistration/ram:ID[@schemeID='FC']",
    "BT-34": "ram:URIUniversalCommunication/ram:URIID",
    "BT-41": "(ram:DefinedTradeContact/ram:PersonName | ram:DefinedTradeContact/ram:DepartmentName)",
    "BT-42": "ram:DefinedTradeContact/ram:TelephoneUniversalCommunication/ram:CompleteNumber",
    "BT-43": "ram:DefinedTradeContact/ram:EmailURIUniversalCommunication/ram:URIID",
    **{
        code: f"ram:PostalTradeAddress/{part}"
        for code, part in zip(("BT-35", "BT-36", "BT-38", "BT-37", "BT-39", "BT-40"), _ADDRESS, strict=True)
    },
}
_BUYER = {
    "BT-44": "ram:Name",
    "BT-46": "(ram:ID | ram:GlobalID)",
    "BT-47": "ram:SpecifiedLegalOrganization/ram:ID",
    "BT-48": "ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']",
    "BT-49": "ram:URIUniversalCommunication/ram:URIID",
    **{
        code: f"ram:PostalTradeAddress/{part}"
        for code, part in zip(("BT-50", "BT-51", "BT-53", "BT-52", "BT-54", "BT-55"), _ADDRESS, strict=True)
    },
}
_ACCOUNT = "ram:PayeePartyCreditorFinancialAccount"
_MEANS = "ram:SpecifiedTradeSettlementPaymentMeans"
_PAYMENT_MEANS = {
    "BT-81": "ram:TypeCode",
    "BT-84": f"({_ACCOUNT}/ram:IBANID | {_ACCOUNT}/ram:ProprietaryID)",
    "BT-85": f"{_ACCOUNT}/ram:AccountName",
    "BT-86": "ram:PayeeSpecifiedCreditorFinancialInstitution/ram:BICID",
}
_VAT = {
    "BT-116": "ram:BasisAmount",
    "BT-117": "ram:CalculatedAmount",
    "BT-118": "ram:CategoryCode",
    "BT-119": "ram:RateApplicablePercent",
    "BT-120": "ram:ExemptionReason",
    "BT-121": "ram:ExemptionReasonCode",
}
_LINE_SETTLEMENT = "ram:SpecifiedLineTradeSettlement"
_LINE = {
    "BT-126": "ram:AssociatedDocumentLineDocument/ram:LineID",
    "BT-127": "ram:AssociatedDocumentLineDocument/ram:IncludedNote/ram:Content",
    "BT-129": "ram:SpecifiedLineTradeDelivery/ram:BilledQuantity",
    "BT-131": f"{_LINE_SETTLEMENT}/ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount",
    "BT-146": "ram:SpecifiedLineTradeAgreement/ram:NetPriceProductTradePrice/ram:ChargeAmount",
    "BT-149": "ram:SpecifiedLineTradeAgreement/ram:NetPriceProductTradePrice/ram:BasisQuantity",
    "BT-151": f"{_LINE_SETTLEMENT}/ram:ApplicableTradeTax/ram:CategoryCode",
    "BT-152": f"{_LINE_SETTLEMENT}/ram:ApplicableTradeTax/ram:RateApplicablePercent",
    "BT-153": "ram:SpecifiedTradeProduct/ram:Name",
    "BT-154": "ram:SpecifiedTradeProduct/ram:Description",
    "BT-155": "ram:SpecifiedTradeProduct/ram:SellerAssignedID",
    "BT-157": "ram:SpecifiedTradeProduct/ram:GlobalID",
}


def read(root: etree._Element) -> EInvoice:
    """The business terms ``root`` (a ``rsm:CrossIndustryInvoice``) has, each with its path. A credit
    note type code (381...) makes the document a ``CreditNote``: CII has one root for both."""
    reader = TermReader(NAMESPACES)
    terms: Terms = {}
    for code, xpath in _HEADER.items():
        reader.put(terms, code, root, xpath)
    reader.put_joined(terms, "BT-22", root, "rsm:ExchangedDocument/ram:IncludedNote/ram:Content")
    for party, mapping in (("ram:SellerTradeParty", _SELLER), ("ram:BuyerTradeParty", _BUYER)):
        element = reader.first(root, f"{_AGREEMENT}/{party}")
        for code, xpath in mapping.items():
            reader.put(terms, code, element, xpath)
    means = reader.first(root, f"{_SETTLEMENT}/{_MEANS}[{_ACCOUNT}]", f"{_SETTLEMENT}/{_MEANS}")
    for code, xpath in _PAYMENT_MEANS.items():
        reader.put(terms, code, means, xpath)
    reader.put_in_invoice_currency(terms, "BT-110", reader.all(root, f"{_SUMMATION}/ram:TaxTotalAmount"))

    invoice = EInvoice(syntax="CII", terms=in_catalogue_order(terms))
    if "BT-3" in terms and terms["BT-3"].value in CREDIT_NOTE_TYPE_CODES:
        invoice.document = "CreditNote"
    for tax in reader.all(root, f"{_SETTLEMENT}/ram:ApplicableTradeTax"):
        row: Terms = {}
        for code, xpath in _VAT.items():
            reader.put(row, code, tax, xpath)
        invoice.vat_breakdown.append(in_catalogue_order(row))
    for item in reader.all(root, f"{_TRANSACTION}/ram:IncludedSupplyChainTradeLineItem"):
        line: Terms = {}
        for code, xpath in _LINE.items():
            reader.put(line, code, item, xpath)
        reader.put(line, "BT-130", item, _LINE["BT-129"], attribute="unitCode")
        invoice.lines.append(in_catalogue_order(line))
    return invoice


def write(invoice: EInvoice) -> bytes:
    """A Factur-X EN 16931 profile document of ``invoice``'s terms (``value`` only). What is absent
    is left out; the caller checks ``invoice.missing()`` first, or the result fails the XSD."""
    terms = invoice.terms
    root = etree.Element(
        _rsm("CrossIndustryInvoice"), nsmap={"rsm": CII_NS, "qdt": QDT_NS, "ram": RAM_NS, "udt": UDT_NS}
    )
    context = sub(root, _rsm("ExchangedDocumentContext"))
    sub(sub(context, _ram("GuidelineSpecifiedDocumentContextParameter")), _ram("ID"), EN16931_GUIDELINE)

    document = sub(root, _rsm("ExchangedDocument"))
    _text(document, "ID", terms, "BT-1")
    sub(
        document,
        _ram("TypeCode"),
        _value(terms, "BT-3") or ("381" if invoice.document == "CreditNote" else "380"),
    )
    _date(document, "IssueDateTime", terms, "BT-2")
    if "BT-22" in terms:
        sub(sub(document, _ram("IncludedNote")), _ram("Content"), terms["BT-22"].value)

    transaction = sub(root, _rsm("SupplyChainTradeTransaction"))
    for line in invoice.lines:
        _write_line(transaction, line, terms)
    _write_agreement(sub(transaction, _ram("ApplicableHeaderTradeAgreement")), terms)
    delivery = sub(transaction, _ram("ApplicableHeaderTradeDelivery"))
    if "BT-72" in terms:
        _date(sub(delivery, _ram("ActualDeliverySupplyChainEvent")), "OccurrenceDateTime", terms, "BT-72")
    _write_settlement(sub(transaction, _ram("ApplicableHeaderTradeSettlement")), invoice)
    xml_bytes: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return xml_bytes


def _write_line(transaction: etree._Element, line: Terms, terms: Terms) -> None:
    item = sub(transaction, _ram("IncludedSupplyChainTradeLineItem"))
    document = sub(item, _ram("AssociatedDocumentLineDocument"))
    _text(document, "LineID", line, "BT-126")
    if "BT-127" in line:
        sub(sub(document, _ram("IncludedNote")), _ram("Content"), line["BT-127"].value)
    product = sub(item, _ram("SpecifiedTradeProduct"))
    _text(product, "GlobalID", line, "BT-157")
    _text(product, "SellerAssignedID", line, "BT-155")
    _text(product, "Name", line, "BT-153")
    _text(product, "Description", line, "BT-154")
    unit = {"unitCode": line["BT-130"].value} if "BT-130" in line else {}
    price = sub(sub(item, _ram("SpecifiedLineTradeAgreement")), _ram("NetPriceProductTradePrice"))
    _text(price, "ChargeAmount", line, "BT-146")
    _text(price, "BasisQuantity", line, "BT-149", **unit)
    _text(sub(item, _ram("SpecifiedLineTradeDelivery")), "BilledQuantity", line, "BT-129", **unit)
    settlement = sub(item, _ram("SpecifiedLineTradeSettlement"))
    tax = sub(settlement, _ram("ApplicableTradeTax"))
    sub(tax, _ram("TypeCode"), "VAT")
    _text(tax, "CategoryCode", line, "BT-151")
    _text(tax, "RateApplicablePercent", line, "BT-152")
    _text(
        sub(settlement, _ram("SpecifiedTradeSettlementLineMonetarySummation")),
        "LineTotalAmount",
        line,
        "BT-131",
    )


def _write_agreement(agreement: etree._Element, terms: Terms) -> None:
    _text(agreement, "BuyerReference", terms, "BT-10")
    _write_party(sub(agreement, _ram("SellerTradeParty")), terms, SELLER)
    _write_party(sub(agreement, _ram("BuyerTradeParty")), terms, BUYER)
    if "BT-13" in terms:
        _text(sub(agreement, _ram("BuyerOrderReferencedDocument")), "IssuerAssignedID", terms, "BT-13")
    if "BT-12" in terms:
        _text(sub(agreement, _ram("ContractReferencedDocument")), "IssuerAssignedID", terms, "BT-12")


def _write_party(party: etree._Element, terms: Terms, codes: PartyTerms) -> None:
    """A ``ram:TradePartyType`` in its XSD order."""
    _text(party, "ID", terms, codes.identifier)
    _text(party, "Name", terms, codes.name)
    if _has(terms, codes.legal_id, codes.trading_name):
        organization = sub(party, _ram("SpecifiedLegalOrganization"))
        _text(organization, "ID", terms, codes.legal_id)
        _text(organization, "TradingBusinessName", terms, codes.trading_name)
    if _has(terms, codes.contact, codes.phone, codes.email):
        contact = sub(party, _ram("DefinedTradeContact"))
        _text(contact, "PersonName", terms, codes.contact)
        if codes.phone in terms:
            _text(sub(contact, _ram("TelephoneUniversalCommunication")), "CompleteNumber", terms, codes.phone)
        if codes.email in terms:
            _text(sub(contact, _ram("EmailURIUniversalCommunication")), "URIID", terms, codes.email)
    line_one, line_two, postcode, city, subdivision, country = codes.address
    if _has(terms, *codes.address):
        postal = sub(party, _ram("PostalTradeAddress"))
        _text(postal, "PostcodeCode", terms, postcode)
        _text(postal, "LineOne", terms, line_one)
        _text(postal, "LineTwo", terms, line_two)
        _text(postal, "CityName", terms, city)
        _text(postal, "CountryID", terms, country)
        _text(postal, "CountrySubDivisionName", terms, subdivision)
    if codes.electronic_address in terms:
        address = terms[codes.electronic_address].value
        scheme = {"schemeID": "EM"} if "@" in address else {}  # EM: an e-mail address (EAS code list)
        sub(sub(party, _ram("URIUniversalCommunication")), _ram("URIID"), address, **scheme)
    for code, scheme_id in ((codes.vat_id, "VA"), (codes.tax_id, "FC")):
        if code in terms:
            sub(
                sub(party, _ram("SpecifiedTaxRegistration")),
                _ram("ID"),
                terms[code].value,
                schemeID=scheme_id,
            )


def _write_settlement(settlement: etree._Element, invoice: EInvoice) -> None:
    terms = invoice.terms
    _text(settlement, "PaymentReference", terms, "BT-83")
    _text(settlement, "InvoiceCurrencyCode", terms, "BT-5")
    if _has(terms, "BT-81", "BT-84", "BT-85", "BT-86"):
        means = sub(settlement, _ram("SpecifiedTradeSettlementPaymentMeans"))
        sub(means, _ram("TypeCode"), _value(terms, "BT-81") or "1")  # 1: instrument not defined
        if _has(terms, "BT-84", "BT-85"):
            account = sub(means, _ram("PayeePartyCreditorFinancialAccount"))
            _text(account, "IBANID", terms, "BT-84")
            _text(account, "AccountName", terms, "BT-85")
        if "BT-86" in terms:
            _text(sub(means, _ram("PayeeSpecifiedCreditorFinancialInstitution")), "BICID", terms, "BT-86")
    for row in invoice.vat_breakdown:
        tax = sub(settlement, _ram("ApplicableTradeTax"))
        _text(tax, "CalculatedAmount", row, "BT-117")
        sub(tax, _ram("TypeCode"), "VAT")
        _text(tax, "ExemptionReason", row, "BT-120")
        _text(tax, "BasisAmount", row, "BT-116")
        _text(tax, "CategoryCode", row, "BT-118")
        _text(tax, "ExemptionReasonCode", row, "BT-121")
        _text(tax, "RateApplicablePercent", row, "BT-119")
    if _has(terms, "BT-20", "BT-9"):
        payment_terms = sub(settlement, _ram("SpecifiedTradePaymentTerms"))
        _text(payment_terms, "Description", terms, "BT-20")
        _date(payment_terms, "DueDateDateTime", terms, "BT-9")
    summation = sub(settlement, _ram("SpecifiedTradeSettlementHeaderMonetarySummation"))
    for tag, code in (
        ("LineTotalAmount", "BT-106"),
        ("ChargeTotalAmount", "BT-108"),
        ("AllowanceTotalAmount", "BT-107"),
        ("TaxBasisTotalAmount", "BT-109"),
    ):
        _text(summation, tag, terms, code)
    currency = {"currencyID": terms["BT-5"].value} if "BT-5" in terms else {}
    _text(summation, "TaxTotalAmount", terms, "BT-110", **currency)
    for tag, code in (
        ("RoundingAmount", "BT-114"),
        ("GrandTotalAmount", "BT-112"),
        ("TotalPrepaidAmount", "BT-113"),
        ("DuePayableAmount", "BT-115"),
    ):
        _text(summation, tag, terms, code)


def _text(parent: etree._Element, tag: str, terms: Terms, code: str, **attributes: str) -> None:
    """``ram:<tag>`` with the term's value, if the term is there."""
    if code in terms:
        sub(parent, _ram(tag), terms[code].value, **attributes)


def _date(parent: etree._Element, tag: str, terms: Terms, code: str) -> None:
    """``ram:<tag>/udt:DateTimeString format="102"`` (``YYYYMMDD``), if the term is there."""
    if code in terms:
        sub(
            sub(parent, _ram(tag)),
            f"{{{UDT_NS}}}DateTimeString",
            terms[code].value.replace("-", ""),
            format="102",
        )


def _value(terms: Terms, code: str) -> str | None:
    return terms[code].value if code in terms else None


def _has(terms: Terms, *codes: str) -> bool:
    return any(code in terms for code in codes if code)


def _rsm(name: str) -> str:
    return f"{{{CII_NS}}}{name}"


def _ram(name: str) -> str:
    return f"{{{RAM_NS}}}{name}"
