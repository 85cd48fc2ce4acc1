"""OASIS UBL 2.1 Invoice and CreditNote, the syntax of Peppol BIS Billing 3.0 and XRechnung-UBL:
``read`` maps a document to the EN 16931 model, ``write`` builds a Peppol BIS Billing 3.0 document
from it, its elements in the XSD's order and every amount with its ``currencyID`` (UBL requires one).

The paths follow the EN 16931-3-2 syntax binding for UBL.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal, InvalidOperation

from lxml import etree

from app.einvoice.model import BUYER, SELLER, EInvoice, PartyTerms, Terms, Value, in_catalogue_order
from app.einvoice.xml import UBL_CREDIT_NOTE_NS, UBL_CREDIT_NOTE_ROOT, UBL_INVOICE_NS, TermReader, sub

CAC_NS = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC_NS = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
NAMESPACES = {"cac": CAC_NS, "cbc": CBC_NS}
PEPPOL_CUSTOMIZATION = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
PEPPOL_PROFILE = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"

_TOTAL = "cac:LegalMonetaryTotal"
_HEADER = {
    "BT-1": "cbc:ID",
    "BT-2": "cbc:IssueDate",
    "BT-3": "(cbc:InvoiceTypeCode | cbc:CreditNoteTypeCode)",
    "BT-5": "cbc:DocumentCurrencyCode",
    # A CreditNote (UBL 2.1) has no DueDate: EN 16931 puts its due date in the payment means.
    "BT-9": "(cbc:DueDate | cac:PaymentMeans/cbc:PaymentDueDate)",
    "BT-10": "cbc:BuyerReference",
    "BT-12": "cac:ContractDocumentReference/cbc:ID",
    "BT-13": "cac:OrderReference/cbc:ID",
    "BT-20": "cac:PaymentTerms/cbc:Note",
    "BT-24": "cbc:CustomizationID",
    "BT-72": "cac:Delivery/cbc:ActualDeliveryDate",
    "BT-106": f"{_TOTAL}/cbc:LineExtensionAmount",
    "BT-107": f"{_TOTAL}/cbc:AllowanceTotalAmount",
    "BT-108": f"{_TOTAL}/cbc:ChargeTotalAmount",
    "BT-109": f"{_TOTAL}/cbc:TaxExclusiveAmount",
    "BT-112": f"{_TOTAL}/cbc:TaxInclusiveAmount",
    "BT-113": f"{_TOTAL}/cbc:PrepaidAmount",
    "BT-114": f"{_TOTAL}/cbc:PayableRoundingAmount",
    "BT-115": f"{_TOTAL}/cbc:PayableAmount",
}
_ADDRESS = (
    "cac:PostalAddress/cbc:StreetName",
    "cac:PostalAddress/cbc:AdditionalStreetName",
    "cac:PostalAddress/cbc:PostalZone",
    "cac:PostalAddress/cbc:CityName",
    "cac:PostalAddress/cbc:CountrySubentity",
    "cac:PostalAddress/cac:Country/cbc:IdentificationCode",
)
_VAT_SCHEME = "normalize-space(cac:TaxScheme/cbc:ID)='VAT'"
_PAYMENT_MEANS = {
    "BT-81": "cbc:PaymentMeansCode",
    "BT-83": "cbc:PaymentID",
    "BT-84": "cac:PayeeFinancialAccount/cbc:ID",
    "BT-85": "cac:PayeeFinancialAccount/cbc:Name",
    "BT-86": "cac:PayeeFinancialAccount/cac:FinancialInstitutionBranch/cbc:ID",
}
_VAT = {
    "BT-116": "cbc:TaxableAmount",
    "BT-117": "cbc:TaxAmount",
    "BT-118": "cac:TaxCategory/cbc:ID",
    "BT-119": "cac:TaxCategory/cbc:Percent",
    "BT-120": "cac:TaxCategory/cbc:TaxExemptionReason",
    "BT-121": "cac:TaxCategory/cbc:TaxExemptionReasonCode",
}
_QUANTITY = "(cbc:InvoicedQuantity | cbc:CreditedQuantity)"
_LINE = {
    "BT-126": "cbc:ID",
    "BT-127": "cbc:Note",
    "BT-129": _QUANTITY,
    "BT-131": "cbc:LineExtensionAmount",
    "BT-146": "cac:Price/cbc:PriceAmount",
    "BT-149": "cac:Price/cbc:BaseQuantity",
    "BT-151": "cac:Item/cac:ClassifiedTaxCategory/cbc:ID",
    "BT-152": "cac:Item/cac:ClassifiedTaxCategory/cbc:Percent",
    "BT-153": "cac:Item/cbc:Name",
    "BT-154": "cac:Item/cbc:Description",
    "BT-155": "cac:Item/cac:SellersItemIdentification/cbc:ID",
    "BT-157": "cac:Item/cac:StandardItemIdentification/cbc:ID",
}


def read(root: etree._Element) -> EInvoice:
    """The business terms ``root`` (a UBL ``Invoice`` or ``CreditNote``) has, each with its path."""
    reader = TermReader(NAMESPACES)
    terms: Terms = {}
    for code, xpath in _HEADER.items():
        reader.put(terms, code, root, xpath)
    reader.put_joined(terms, "BT-22", root, "cbc:Note")
    _read_party(reader, terms, reader.first(root, "cac:AccountingSupplierParty/cac:Party"), SELLER)
    _read_party(reader, terms, reader.first(root, "cac:AccountingCustomerParty/cac:Party"), BUYER)
    means = reader.first(root, "cac:PaymentMeans[cac:PayeeFinancialAccount]", "cac:PaymentMeans")
    for code, xpath in _PAYMENT_MEANS.items():
        reader.put(terms, code, means, xpath)
    reader.put_in_invoice_currency(terms, "BT-110", reader.all(root, "cac:TaxTotal/cbc:TaxAmount"))

    invoice = EInvoice(syntax="UBL", terms=in_catalogue_order(terms))
    if root.tag == UBL_CREDIT_NOTE_ROOT:
        invoice.document = "CreditNote"
    for subtotal in reader.all(root, "cac:TaxTotal/cac:TaxSubtotal"):
        row: Terms = {}
        for code, xpath in _VAT.items():
            reader.put(row, code, subtotal, xpath)
        invoice.vat_breakdown.append(in_catalogue_order(row))
    for item in reader.all(root, "cac:InvoiceLine | cac:CreditNoteLine"):
        line: Terms = {}
        for code, xpath in _LINE.items():
            reader.put(line, code, item, xpath)
        reader.put(line, "BT-130", item, _QUANTITY, attribute="unitCode")
        invoice.lines.append(in_catalogue_order(line))
    return invoice


def _read_party(reader: TermReader, terms: Terms, party: etree._Element | None, codes: PartyTerms) -> None:
    """A ``cac:Party``'s terms. Without a legal registration name, the party name stands for the
    name (as older UBL writes it) rather than leave the mandatory name empty."""
    reader.put(terms, codes.name, party, "cac:PartyLegalEntity/cbc:RegistrationName")
    if codes.name in terms:
        if codes.trading_name:
            reader.put(terms, codes.trading_name, party, "cac:PartyName/cbc:Name")
    else:
        reader.put(terms, codes.name, party, "cac:PartyName/cbc:Name")
    reader.put(terms, codes.identifier, party, "cac:PartyIdentification/cbc:ID")
    reader.put(terms, codes.legal_id, party, "cac:PartyLegalEntity/cbc:CompanyID")
    reader.put(terms, codes.vat_id, party, f"cac:PartyTaxScheme[{_VAT_SCHEME}]/cbc:CompanyID")
    if codes.tax_id:
        reader.put(terms, codes.tax_id, party, f"cac:PartyTaxScheme[not({_VAT_SCHEME})]/cbc:CompanyID")
    reader.put(terms, codes.electronic_address, party, "cbc:EndpointID")
    for code, xpath in zip(codes.address, _ADDRESS, strict=True):
        reader.put(terms, code, party, xpath)
    for code, xpath in (
        (codes.contact, "cbc:Name"),
        (codes.phone, "cbc:Telephone"),
        (codes.email, "cbc:ElectronicMail"),
    ):
        if code:
            reader.put(terms, code, party, f"cac:Contact/{xpath}")


def write(invoice: EInvoice) -> bytes:
    """A Peppol BIS Billing 3.0 ``Invoice`` (or ``CreditNote``) of ``invoice``'s terms (``value``
    only). What is absent is left out; the caller checks ``invoice.missing()`` first."""
    terms = invoice.terms
    credit_note = invoice.document == "CreditNote"
    namespace = UBL_CREDIT_NOTE_NS if credit_note else UBL_INVOICE_NS
    root = etree.Element(
        f"{{{namespace}}}{invoice.document}", nsmap={None: namespace, "cac": CAC_NS, "cbc": CBC_NS}
    )
    currency = {"currencyID": terms["BT-5"].value} if "BT-5" in terms else {}

    sub(root, _cbc("CustomizationID"), PEPPOL_CUSTOMIZATION)
    sub(root, _cbc("ProfileID"), PEPPOL_PROFILE)
    _text(root, "ID", terms, "BT-1")
    _text(root, "IssueDate", terms, "BT-2")
    if not credit_note:
        _text(root, "DueDate", terms, "BT-9")
    type_code = terms["BT-3"].value if "BT-3" in terms else ("381" if credit_note else "380")
    sub(root, _cbc("CreditNoteTypeCode" if credit_note else "InvoiceTypeCode"), type_code)
    _text(root, "Note", terms, "BT-22")
    _text(root, "DocumentCurrencyCode", terms, "BT-5")
    _text(root, "BuyerReference", terms, "BT-10")
    if "BT-13" in terms:
        _text(sub(root, _cac("OrderReference")), "ID", terms, "BT-13")
    if "BT-12" in terms:
        _text(sub(root, _cac("ContractDocumentReference")), "ID", terms, "BT-12")
    _write_party(sub(sub(root, _cac("AccountingSupplierParty")), _cac("Party")), terms, SELLER)
    _write_party(sub(sub(root, _cac("AccountingCustomerParty")), _cac("Party")), terms, BUYER)
    if "BT-72" in terms:
        _text(sub(root, _cac("Delivery")), "ActualDeliveryDate", terms, "BT-72")
    _write_payment(root, terms, credit_note=credit_note)

    tax_total = sub(root, _cac("TaxTotal"))
    total_vat = (
        terms["BT-110"].value
        if "BT-110" in terms
        else _sum(row.get("BT-117") for row in invoice.vat_breakdown)
    )
    if total_vat is not None:
        sub(tax_total, _cbc("TaxAmount"), total_vat, **currency)
    for row in invoice.vat_breakdown:
        subtotal = sub(tax_total, _cac("TaxSubtotal"))
        _text(subtotal, "TaxableAmount", row, "BT-116", **currency)
        _text(subtotal, "TaxAmount", row, "BT-117", **currency)
        category = sub(subtotal, _cac("TaxCategory"))
        _text(category, "ID", row, "BT-118")
        _text(category, "Percent", row, "BT-119")
        _text(category, "TaxExemptionReasonCode", row, "BT-121")
        _text(category, "TaxExemptionReason", row, "BT-120")
        _vat_scheme(category)
    total = sub(root, _cac("LegalMonetaryTotal"))
    for tag, code in (
        ("LineExtensionAmount", "BT-106"),
        ("TaxExclusiveAmount", "BT-109"),
        ("TaxInclusiveAmount", "BT-112"),
        ("AllowanceTotalAmount", "BT-107"),
        ("ChargeTotalAmount", "BT-108"),
        ("PrepaidAmount", "BT-113"),
        ("PayableRoundingAmount", "BT-114"),
        ("PayableAmount", "BT-115"),
    ):
        _text(total, tag, terms, code, **currency)
    for line in invoice.lines:
        _write_line(
            sub(root, _cac("CreditNoteLine" if credit_note else "InvoiceLine")),
            line,
            currency,
            credit_note=credit_note,
        )
    xml_bytes: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return xml_bytes


def _write_party(party: etree._Element, terms: Terms, codes: PartyTerms) -> None:
    """A ``cac:Party`` in its XSD order."""
    if codes.electronic_address in terms:
        address = terms[codes.electronic_address].value
        endpoint_scheme = {"schemeID": "EM"} if "@" in address else {}  # EM: e-mail (EAS code list)
        sub(party, _cbc("EndpointID"), address, **endpoint_scheme)
    if codes.identifier in terms:
        _text(sub(party, _cac("PartyIdentification")), "ID", terms, codes.identifier)
    if codes.trading_name in terms:
        _text(sub(party, _cac("PartyName")), "Name", terms, codes.trading_name)
    if any(code in terms for code in codes.address):
        address_element = sub(party, _cac("PostalAddress"))
        line_one, line_two, postcode, city, subdivision, country = codes.address
        _text(address_element, "StreetName", terms, line_one)
        _text(address_element, "AdditionalStreetName", terms, line_two)
        _text(address_element, "CityName", terms, city)
        _text(address_element, "PostalZone", terms, postcode)
        _text(address_element, "CountrySubentity", terms, subdivision)
        if country in terms:
            _text(sub(address_element, _cac("Country")), "IdentificationCode", terms, country)
    for code, scheme_id in ((codes.vat_id, "VAT"), (codes.tax_id, "FC")):
        if code in terms:
            scheme = sub(party, _cac("PartyTaxScheme"))
            _text(scheme, "CompanyID", terms, code)
            sub(sub(scheme, _cac("TaxScheme")), _cbc("ID"), scheme_id)
    if codes.name in terms or codes.legal_id in terms:
        entity = sub(party, _cac("PartyLegalEntity"))
        _text(entity, "RegistrationName", terms, codes.name)
        _text(entity, "CompanyID", terms, codes.legal_id)
    if any(code in terms for code in (codes.contact, codes.phone, codes.email) if code):
        contact = sub(party, _cac("Contact"))
        _text(contact, "Name", terms, codes.contact)
        _text(contact, "Telephone", terms, codes.phone)
        _text(contact, "ElectronicMail", terms, codes.email)


def _write_payment(root: etree._Element, terms: Terms, *, credit_note: bool) -> None:
    """Payment means and terms. The XSD requires a means code: without BT-81 it is 1 ("instrument
    not defined"), also where a credit note's due date alone needs the means to sit in."""
    due_in_means = credit_note and "BT-9" in terms
    if due_in_means or any(code in terms for code in _PAYMENT_MEANS):
        means = sub(root, _cac("PaymentMeans"))
        sub(means, _cbc("PaymentMeansCode"), terms["BT-81"].value if "BT-81" in terms else "1")
        if credit_note:
            _text(means, "PaymentDueDate", terms, "BT-9")
        _text(means, "PaymentID", terms, "BT-83")
        if any(code in terms for code in ("BT-84", "BT-85", "BT-86")):
            account = sub(means, _cac("PayeeFinancialAccount"))
            _text(account, "ID", terms, "BT-84")
            _text(account, "Name", terms, "BT-85")
            if "BT-86" in terms:
                _text(sub(account, _cac("FinancialInstitutionBranch")), "ID", terms, "BT-86")
    if "BT-20" in terms:
        _text(sub(root, _cac("PaymentTerms")), "Note", terms, "BT-20")


def _write_line(element: etree._Element, line: Terms, currency: dict[str, str], *, credit_note: bool) -> None:
    unit = {"unitCode": line["BT-130"].value} if "BT-130" in line else {}
    _text(element, "ID", line, "BT-126")
    _text(element, "Note", line, "BT-127")
    _text(element, "CreditedQuantity" if credit_note else "InvoicedQuantity", line, "BT-129", **unit)
    _text(element, "LineExtensionAmount", line, "BT-131", **currency)
    item = sub(element, _cac("Item"))
    _text(item, "Description", line, "BT-154")
    _text(item, "Name", line, "BT-153")
    if "BT-155" in line:
        _text(sub(item, _cac("SellersItemIdentification")), "ID", line, "BT-155")
    if "BT-157" in line:
        _text(sub(item, _cac("StandardItemIdentification")), "ID", line, "BT-157")
    category = sub(item, _cac("ClassifiedTaxCategory"))
    _text(category, "ID", line, "BT-151")
    _text(category, "Percent", line, "BT-152")
    _vat_scheme(category)
    price = sub(element, _cac("Price"))
    _text(price, "PriceAmount", line, "BT-146", **currency)
    _text(price, "BaseQuantity", line, "BT-149", **unit)


def _sum(amounts: Iterable[Value | None]) -> str | None:
    """BT-110 where the invoice leaves it out: UBL requires a total VAT amount and EN 16931 defines
    it as the sum of the VAT breakdown's amounts (BR-CO-14). None without rows or numbers to add."""
    total: Decimal | None = None
    for amount in amounts:
        if amount is None:
            return None
        try:
            total = Decimal(amount.value) + (total or 0)
        except InvalidOperation:
            return None
    return None if total is None else str(total)


def _vat_scheme(parent: etree._Element) -> None:
    sub(sub(parent, _cac("TaxScheme")), _cbc("ID"), "VAT")


def _text(parent: etree._Element, tag: str, terms: Terms, code: str, **attributes: str) -> None:
    """``cbc:<tag>`` with the term's value, if the term is there."""
    if code in terms:
        sub(parent, _cbc(tag), terms[code].value, **attributes)


def _cbc(name: str) -> str:
    return f"{{{CBC_NS}}}{name}"


def _cac(name: str) -> str:
    return f"{{{CAC_NS}}}{name}"
