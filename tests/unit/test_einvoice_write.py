"""Writing e-invoices from the model: a Factur-X EN 16931 CII and a Peppol BIS 3.0 UBL document, valid
against their XSDs, that read back to the same values (within and across the two syntaxes)."""

from __future__ import annotations

import pytest
from lxml import etree

from app.einvoice import cii, ubl, xsd
from app.einvoice.model import INVOICE_TERMS, LINE_TERMS, VAT_TERMS, EInvoice, Terms, Value
from app.einvoice.read import read_einvoice
from app.einvoice.xml import parse_xml
from tests.einvoice_factory import (
    Expected,
    SampleInvoice,
    cii_xml,
    credit_note_sample,
    expected,
    french_sample,
    german_sample,
    samples,
    ubl_xml,
)

WRITERS = {"CII": cii.write, "UBL": ubl.write}
PROFILES = {
    "CII": ("factur-x-en16931", cii.EN16931_GUIDELINE),
    "UBL": ("ubl-2.1-invoice", ubl.PEPPOL_CUSTOMIZATION),
}
CBC = "{urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2}"


def values(terms: Terms) -> dict[str, str]:
    return {code: value.value for code, value in terms.items()}


def model_of(wanted: Expected, document: str = "Invoice") -> EInvoice:
    """An ``EInvoice`` built from values alone (no reader involved; text and path meaningless)."""

    def terms(cells: dict[str, str]) -> Terms:
        return {code: Value(value, "ignored", "/ignored") for code, value in cells.items()}

    return EInvoice(
        syntax="CII",
        document=document,  # type: ignore[arg-type]
        terms=terms(wanted.terms),
        vat_breakdown=[terms(row) for row in wanted.vat_breakdown],
        lines=[terms(line) for line in wanted.lines],
    )


def assert_same(read: EInvoice, wanted: Expected, *, profile: str) -> None:
    """``read`` has ``wanted``'s values, the specification identifier being the writer's own."""
    assert values(read.terms) == {**wanted.terms, "BT-24": profile}
    assert [values(row) for row in read.vat_breakdown] == wanted.vat_breakdown
    assert [values(line) for line in read.lines] == wanted.lines


def elements(root: etree._Element, xpath: str, namespaces: dict[str, str]) -> list[etree._Element]:
    found = root.xpath(xpath, namespaces=namespaces)
    assert isinstance(found, list)
    return [node for node in found if isinstance(node, etree._Element)]


def written(syntax: str, invoice: EInvoice) -> tuple[bytes, EInvoice]:
    """The writer's output, checked against its XSD, and what reading it gives."""
    document = WRITERS[syntax](invoice)
    root = parse_xml(document)
    schema = (
        "ubl-2.1-creditnote" if syntax == "UBL" and invoice.document == "CreditNote" else PROFILES[syntax][0]
    )
    assert xsd.schema_profile(root) == schema
    assert xsd.validate(root) == []
    return document, read_einvoice(document)


@pytest.mark.parametrize("syntax", ["CII", "UBL"])
def test_a_full_invoice_round_trips(syntax: str) -> None:
    """2 VAT rates, 3 lines, both addresses, IBAN/BIC, due date, note, PO reference, delivery date:
    every term of the catalogue but the VAT exemption ones (see the credit note)."""
    wanted = expected(german_sample())
    assert set(wanted.terms) == set(INVOICE_TERMS)
    assert (len(wanted.vat_breakdown), len(wanted.lines)) == (2, 3)
    _, read = written(syntax, model_of(wanted))
    assert read.syntax == syntax
    assert read.document == "Invoice"
    assert_same(read, wanted, profile=PROFILES[syntax][1])
    assert read.missing() == []


@pytest.mark.parametrize("syntax", ["CII", "UBL"])
def test_a_credit_note_round_trips(syntax: str) -> None:
    wanted = expected(credit_note_sample())
    assert set().union(*wanted.vat_breakdown) == set(VAT_TERMS)
    document, read = written(syntax, model_of(wanted, "CreditNote"))
    assert read.document == "CreditNote"
    assert_same(read, wanted, profile=PROFILES[syntax][1])
    root = etree.fromstring(document)
    if syntax == "UBL":
        assert etree.QName(root).localname == "CreditNote"
        assert root.xpath("count(//cac:CreditNoteLine/cbc:CreditedQuantity)", namespaces=ubl.NAMESPACES) == 2
        assert root.findtext(f"{CBC}CreditNoteTypeCode") == "381"
        assert read.terms["BT-9"].path == "/CreditNote/cac:PaymentMeans/cbc:PaymentDueDate"
    else:
        assert read.terms["BT-3"].path == "/rsm:CrossIndustryInvoice/rsm:ExchangedDocument/ram:TypeCode"


@pytest.mark.parametrize("source", ["CII", "UBL"])
@pytest.mark.parametrize("target", ["CII", "UBL"])
def test_what_was_read_writes_back_in_either_syntax(source: str, target: str) -> None:
    for sample in (german_sample(), french_sample(), credit_note_sample(), *samples(11, 10)):
        original = read_einvoice(cii_xml(sample) if source == "CII" else ubl_xml(sample))
        _, read = written(target, original)
        assert read.document == original.document
        wanted = Expected(
            values(original.terms),
            [values(r) for r in original.vat_breakdown],
            [values(r) for r in original.lines],
        )
        if (
            target == "UBL"
            and original.document == "CreditNote"
            and "BT-9" in wanted.terms
            and "BT-81" not in wanted.terms
        ):
            wanted.terms["BT-81"] = "1"  # a UBL 2.1 credit note's due date needs payment means to sit in
        assert_same(read, wanted, profile=PROFILES[target][1])


@pytest.mark.parametrize("syntax", ["CII", "UBL"])
def test_only_the_mandatory_terms_make_a_valid_document(syntax: str) -> None:
    sample: SampleInvoice = french_sample()
    full = expected(sample)
    mandatory = Expected(
        {code: value for code, value in full.terms.items() if INVOICE_TERMS[code].mandatory},
        [
            {code: value for code, value in row.items() if VAT_TERMS[code].mandatory}
            for row in full.vat_breakdown
        ],
        [{code: value for code, value in line.items() if LINE_TERMS[code].mandatory} for line in full.lines],
    )
    invoice = model_of(mandatory)
    assert invoice.missing() == []
    assert "BT-110" not in mandatory.terms
    _, read = written(syntax, invoice)
    if syntax == "UBL":  # UBL requires the total VAT: the sum of the breakdown's (BR-CO-14)
        mandatory.terms["BT-110"] = "14.55"
    assert_same(read, mandatory, profile=PROFILES[syntax][1])


def test_ubl_amounts_carry_the_currency_and_quantities_their_unit() -> None:
    root = etree.fromstring(ubl.write(model_of(expected(german_sample()))))
    amounts = [element for element in root.iter() if str(element.tag).endswith("Amount")]
    assert len(amounts) == 1 + 2 * 2 + 8 + 3 * 2  # total VAT, breakdown, totals, lines
    assert {element.get("currencyID") for element in amounts} == {"EUR"}
    quantities = elements(root, "//cbc:InvoicedQuantity | //cbc:BaseQuantity", ubl.NAMESPACES)
    assert [element.get("unitCode") for element in quantities] == ["H87", "HUR", "H87", "H87"]
    first = [etree.QName(child).localname for child in root][:8]
    assert first == [
        "CustomizationID",
        "ProfileID",
        "ID",
        "IssueDate",
        "DueDate",
        "InvoiceTypeCode",
        "Note",
        "DocumentCurrencyCode",
    ]
    assert root.findtext(f"{CBC}ProfileID") == ubl.PEPPOL_PROFILE


def test_cii_dates_are_format_102_and_the_vat_total_has_its_currency() -> None:
    root = etree.fromstring(cii.write(model_of(expected(german_sample()))))
    dates = elements(root, "//udt:DateTimeString", cii.NAMESPACES)
    assert [(element.get("format"), element.text) for element in dates] == [
        ("102", "20240315"),
        ("102", "20240312"),
        ("102", "20240414"),
    ]
    (tax_total,) = elements(root, "//ram:TaxTotalAmount", cii.NAMESPACES)
    assert (tax_total.get("currencyID"), tax_total.text) == ("EUR", "155.83")


def test_the_writers_use_only_values() -> None:
    invoice = model_of(expected(french_sample()))
    invoice.terms["BT-1"] = Value("FA-1", "<b>not this</b>", "/not/this")
    for write in WRITERS.values():
        assert read_einvoice(write(invoice)).terms["BT-1"].value == "FA-1"


def test_payment_means_without_a_code_are_written_as_not_defined() -> None:
    wanted = expected(french_sample())
    del wanted.terms["BT-81"]
    for syntax in WRITERS:
        _, read = written(syntax, model_of(wanted))
        assert read.terms["BT-81"].value == "1"
        assert read.terms["BT-84"].value == "FR7630006000011234567890189"
