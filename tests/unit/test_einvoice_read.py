"""Reading e-invoices as senders make them (CII by drafthorse, UBL by hand): every business term
back equal to what was put in, with the path it came from, in every Factur-X profile, XRechnung and
Peppol; plus the factory's Factur-X PDFs."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import facturx  # type: ignore[import-untyped]
import pymupdf
import pytest
from lxml import etree

from app.einvoice.model import ALL_TERMS, INVOICE_TERMS, LINE_TERMS, VAT_TERMS, EInvoice, Terms, normalise
from app.einvoice.read import read_einvoice
from app.einvoice.xml import EInvoiceXmlError, parse_xml
from tests.einvoice_factory import (
    GUIDELINES,
    PEPPOL,
    XRECHNUNG_UBL,
    Expected,
    SampleInvoice,
    cii_xml,
    credit_note_sample,
    expected,
    facturx_pdf,
    french_sample,
    german_sample,
    pdf_with_attachment,
    samples,
    ubl_xml,
)

SAMPLES = {"german": german_sample(), "french": french_sample(), "credit-note": credit_note_sample()}


def values(terms: Terms) -> dict[str, str]:
    return {code: value.value for code, value in terms.items()}


def assert_reads_as(invoice: EInvoice, wanted: Expected) -> None:
    assert values(invoice.terms) == wanted.terms
    assert [values(row) for row in invoice.vat_breakdown] == wanted.vat_breakdown
    assert [values(line) for line in invoice.lines] == wanted.lines


def assert_paths_resolve(document: bytes, invoice: EInvoice) -> None:
    """Every value's path selects exactly the node (or attribute) it was read from, with that text."""
    root = etree.fromstring(document)
    namespaces = {prefix or "d": uri for prefix, uri in root.nsmap.items()}
    for terms in [invoice.terms, *invoice.vat_breakdown, *invoice.lines]:
        for code, value in terms.items():
            steps = [
                step if ":" in step or step.startswith("@") or not step else f"d:{step}"
                for step in value.path.split("/")
            ]
            found = root.xpath("/".join(steps), namespaces=namespaces)
            assert isinstance(found, list)
            texts = [node if isinstance(node, str) else node.text for node in found]
            assert texts == [value.text], (code, value.path)


# --- CII ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["minimum", "basicwl", "basic", "en16931", "extended", "xrechnung"])
@pytest.mark.parametrize("name", list(SAMPLES))
def test_cii_of_every_profile_reads_back_every_term(profile: str, name: str) -> None:
    document = cii_xml(SAMPLES[name], profile)
    invoice = read_einvoice(document)
    assert invoice.syntax == "CII"
    assert invoice.profile == GUIDELINES[profile]
    assert_reads_as(invoice, expected(SAMPLES[name], profile))
    assert_paths_resolve(document, invoice)


def test_minimum_and_basic_wl_have_no_lines_but_the_totals() -> None:
    minimum = read_einvoice(cii_xml(german_sample(), "minimum"))
    assert (minimum.lines, minimum.vat_breakdown) == ([], [])
    assert values(minimum.terms) | {} == {
        "BT-1": "RE-2024-0815",
        "BT-2": "2024-03-15",
        "BT-3": "380",
        "BT-5": "EUR",
        "BT-10": "04011000-12345-67",
        "BT-13": "PO-2024-117",
        "BT-24": "urn:factur-x.eu:1p0:minimum",
        "BT-27": "Müller & Söhne Werkzeugbau GmbH",
        "BT-30": "HRB 123456",
        "BT-31": "DE123456788",
        "BT-32": "99/815/08150",
        "BT-40": "DE",
        "BT-44": "Stadtwerke Musterstadt AöR",
        "BT-47": "HRA 4711",
        "BT-109": "860.70",
        "BT-110": "155.83",
        "BT-112": "1016.53",
        "BT-115": "916.50",
    }
    basic_wl = read_einvoice(cii_xml(german_sample(), "basicwl"))
    assert basic_wl.lines == []
    assert [values(row) for row in basic_wl.vat_breakdown] == [
        {"BT-116": "796.50", "BT-117": "151.34", "BT-118": "S", "BT-119": "19"},
        {"BT-116": "64.20", "BT-117": "4.49", "BT-118": "S", "BT-119": "7"},
    ]
    assert basic_wl.missing() == ["BG-25"]


def test_cii_paths_are_absolute_with_the_documents_prefixes() -> None:
    invoice = read_einvoice(cii_xml(german_sample()))
    settlement = (
        "/rsm:CrossIndustryInvoice/rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement"
    )
    account = "ram:PayeePartyCreditorFinancialAccount"
    transaction = "/rsm:CrossIndustryInvoice/rsm:SupplyChainTradeTransaction"
    seller = f"{transaction}/ram:ApplicableHeaderTradeAgreement/ram:SellerTradeParty"
    line = f"{transaction}/ram:IncludedSupplyChainTradeLineItem[2]"
    assert invoice.terms["BT-1"].path == "/rsm:CrossIndustryInvoice/rsm:ExchangedDocument/ram:ID"
    assert (
        invoice.terms["BT-2"].path
        == "/rsm:CrossIndustryInvoice/rsm:ExchangedDocument/ram:IssueDateTime/udt:DateTimeString"
    )
    assert (invoice.terms["BT-2"].text, invoice.terms["BT-2"].value) == ("20240315", "2024-03-15")
    assert invoice.terms["BT-31"].path == f"{seller}/ram:SpecifiedTaxRegistration[1]/ram:ID"
    assert invoice.terms["BT-32"].path == f"{seller}/ram:SpecifiedTaxRegistration[2]/ram:ID"
    assert invoice.terms["BT-35"].path == f"{seller}/ram:PostalTradeAddress/ram:LineOne"
    assert (
        invoice.terms["BT-84"].path
        == f"{settlement}/ram:SpecifiedTradeSettlementPaymentMeans/{account}/ram:IBANID"
    )
    assert (
        invoice.vat_breakdown[1]["BT-116"].path == f"{settlement}/ram:ApplicableTradeTax[2]/ram:BasisAmount"
    )
    assert invoice.lines[1]["BT-129"].path == f"{line}/ram:SpecifiedLineTradeDelivery/ram:BilledQuantity"
    assert (
        invoice.lines[1]["BT-130"].path
        == f"{line}/ram:SpecifiedLineTradeDelivery/ram:BilledQuantity/@unitCode"
    )


def test_a_cii_credit_note_is_a_credit_note() -> None:
    invoice = read_einvoice(cii_xml(credit_note_sample()))
    assert (invoice.document, invoice.terms["BT-3"].value) == ("CreditNote", "381")
    assert read_einvoice(cii_xml(german_sample())).document == "Invoice"


# --- UBL ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SAMPLES))
@pytest.mark.parametrize("customization", [PEPPOL, XRECHNUNG_UBL])
def test_ubl_reads_back_every_term(name: str, customization: str) -> None:
    sample = SAMPLES[name]
    document = ubl_xml(sample, customization=customization)
    invoice = read_einvoice(document)
    assert invoice.syntax == "UBL"
    assert invoice.document == ("CreditNote" if sample.credit_note else "Invoice")
    assert_reads_as(invoice, expected(sample, "ubl", customization=customization))
    assert_paths_resolve(document, invoice)


def test_ubl_paths_and_the_credit_notes_lines() -> None:
    invoice = read_einvoice(ubl_xml(german_sample()))
    assert invoice.terms["BT-1"].path == "/Invoice/cbc:ID"
    assert invoice.lines[1]["BT-129"].path == "/Invoice/cac:InvoiceLine[2]/cbc:InvoicedQuantity"
    assert invoice.lines[1]["BT-130"].path == "/Invoice/cac:InvoiceLine[2]/cbc:InvoicedQuantity/@unitCode"
    seller = "/Invoice/cac:AccountingSupplierParty/cac:Party"
    assert invoice.terms["BT-31"].path == f"{seller}/cac:PartyTaxScheme[1]/cbc:CompanyID"
    assert invoice.terms["BT-32"].path == f"{seller}/cac:PartyTaxScheme[2]/cbc:CompanyID"
    assert invoice.terms["BT-40"].path == f"{seller}/cac:PostalAddress/cac:Country/cbc:IdentificationCode"
    assert (
        invoice.terms["BT-86"].path
        == "/Invoice/cac:PaymentMeans/cac:PayeeFinancialAccount/cac:FinancialInstitutionBranch/cbc:ID"
    )
    assert invoice.vat_breakdown[1]["BT-117"].path == "/Invoice/cac:TaxTotal/cac:TaxSubtotal[2]/cbc:TaxAmount"

    credit = read_einvoice(ubl_xml(credit_note_sample()))
    assert credit.document == "CreditNote"
    assert credit.lines[0]["BT-129"].path == "/CreditNote/cac:CreditNoteLine[1]/cbc:CreditedQuantity"
    assert credit.terms["BT-9"].path == "/CreditNote/cac:PaymentMeans/cbc:PaymentDueDate"
    assert values(credit.vat_breakdown[1]) == {
        "BT-116": "120.00",
        "BT-117": "0.00",
        "BT-118": "E",
        "BT-119": "0",
        "BT-120": "Steuerfreie Bildungsleistung nach § 4 Nr. 21 UStG",
        "BT-121": "VATEX-EU-132-1I",
    }


def test_ubl_without_a_registration_name_takes_the_party_name() -> None:
    document = ubl_xml(german_sample()).replace(b"cbc:RegistrationName", b"cbc:CompanyLegalForm")
    invoice = read_einvoice(document)
    assert invoice.terms["BT-27"].value == "Müller Werkzeugbau"
    assert (
        invoice.terms["BT-27"].path == "/Invoice/cac:AccountingSupplierParty/cac:Party/cac:PartyName/cbc:Name"
    )
    assert "BT-28" not in invoice.terms


# --- across documents ----------------------------------------------------------------------------------


def test_the_samples_cover_every_term_of_the_catalogue() -> None:
    """So that the tests above check every term: the German sample has every invoice and line term,
    the credit note the VAT exemption terms."""
    german = expected(german_sample())
    assert set(german.terms) == set(INVOICE_TERMS)
    assert set().union(*german.lines) == set(LINE_TERMS)
    assert set().union(*expected(credit_note_sample()).vat_breakdown) == set(VAT_TERMS)
    assert set(ALL_TERMS) == set(INVOICE_TERMS) | set(VAT_TERMS) | set(LINE_TERMS)


def test_random_samples_read_back_in_both_syntaxes() -> None:
    for sample in samples(7, 25):
        assert_reads_as(read_einvoice(cii_xml(sample)), expected(sample))
        assert_reads_as(read_einvoice(ubl_xml(sample)), expected(sample, "ubl"))


def test_values_are_normalised_and_text_kept_as_written() -> None:
    document = (
        ubl_xml(german_sample())
        .replace(b">860.70</cbc:LineExtensionAmount>", b"> 860.70 </cbc:LineExtensionAmount>")
        .replace(b">1016.53</cbc:TaxInclusiveAmount>", b">1.01653E+3</cbc:TaxInclusiveAmount>")
        .replace(
            b"<cbc:IssueDate>2024-03-15</cbc:IssueDate>", b"<cbc:IssueDate>2024-03-15+01:00</cbc:IssueDate>"
        )
        .replace(b"<cbc:ID>RE-2024-0815</cbc:ID>", b"<cbc:ID>\n  RE-2024-0815\n</cbc:ID>", 1)
    )
    terms = read_einvoice(document).terms
    assert (terms["BT-106"].value, terms["BT-106"].text) == ("860.70", " 860.70 ")
    assert (terms["BT-112"].value, terms["BT-112"].text) == ("1016.53", "1.01653E+3")
    assert terms["BT-2"].value == "2024-03-15"
    assert terms["BT-1"].value == "RE-2024-0815"


@pytest.mark.parametrize(
    ("kind", "text", "value"),
    [
        ("amount", "1190.00", "1190.00"),
        ("amount", " 1 190.00 ", "1190.00"),
        ("amount", "1.19E+3", "1190"),
        ("amount", "+5", "5"),
        ("amount", "-0.50", "-0.50"),
        ("amount", "12,50", "12,50"),
        ("quantity", "3.5000", "3.5000"),
        ("percent", "19", "19"),
        ("date", "20240315", "2024-03-15"),
        ("date", "2024-03-15", "2024-03-15"),
        ("date", "2024-03-15Z", "2024-03-15"),
        ("date", "202403", "202403"),
        ("code", " EUR\n", "EUR"),
        ("text", "  Müller & Söhne  ", "Müller & Söhne"),
    ],
)
def test_normalise(kind: str, text: str, value: str) -> None:
    assert normalise(kind, text) == value  # type: ignore[arg-type]


def test_several_notes_are_joined_and_their_path_selects_them_all() -> None:
    ubl = ubl_xml(german_sample()).replace(b"</cbc:Note>", b"</cbc:Note><cbc:Note>Second note</cbc:Note>", 1)
    note = read_einvoice(ubl).terms["BT-22"]
    assert note.value == "Es gelten unsere Allgemeinen Geschäftsbedingungen.\nSecond note"
    assert note.path == "/Invoice/cbc:Note"
    cii = cii_xml(german_sample()).replace(
        b"</ram:IncludedNote>",
        b"</ram:IncludedNote><ram:IncludedNote><ram:Content>Zweite</ram:Content></ram:IncludedNote>",
        1,
    )
    note = read_einvoice(cii).terms["BT-22"]
    assert note.value == "Es gelten unsere Allgemeinen Geschäftsbedingungen.\nZweite"
    assert note.path == "/rsm:CrossIndustryInvoice/rsm:ExchangedDocument/ram:IncludedNote/ram:Content"
    assert_paths_resolve(cii, replace(read_einvoice(cii), terms={}))


def test_the_total_vat_is_the_one_in_the_invoice_currency() -> None:
    document = cii_xml(german_sample()).replace(
        b'<ram:TaxTotalAmount currencyID="EUR">',
        b'<ram:TaxTotalAmount currencyID="USD">170.00</ram:TaxTotalAmount>'
        b'<ram:TaxTotalAmount currencyID="EUR">',
    )
    terms = read_einvoice(document).terms
    assert terms["BT-110"].value == "155.83"
    assert terms["BT-110"].path.endswith(
        "ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:TaxTotalAmount[2]"
    )


def test_the_payment_means_with_an_account_gives_the_payment_account() -> None:
    document = ubl_xml(german_sample()).replace(
        b"<cac:PaymentMeans>",
        b"<cac:PaymentMeans><cbc:PaymentMeansCode>10</cbc:PaymentMeansCode></cac:PaymentMeans><cac:PaymentMeans>",
    )
    terms = read_einvoice(document).terms
    assert (terms["BT-81"].value, terms["BT-84"].value) == ("58", "DE89370400440532013000")
    assert terms["BT-81"].path == "/Invoice/cac:PaymentMeans[2]/cbc:PaymentMeansCode"


def test_what_is_not_an_invoice_is_refused() -> None:
    zugferd_1 = b'<rsm:CrossIndustryDocument xmlns:rsm="urn:ferd:CrossIndustryDocument:invoice:1p0"/>'
    with pytest.raises(EInvoiceXmlError) as caught:
        read_einvoice(zugferd_1)
    assert (caught.value.reason, caught.value.message) == ("not_an_invoice", "ZUGFeRD 1.0 is not supported")
    with pytest.raises(EInvoiceXmlError) as caught:
        read_einvoice(b'<Order xmlns="urn:oasis:names:specification:ubl:schema:xsd:Order-2"/>')
    assert caught.value.reason == "not_an_invoice"
    assert "Order-2}Order" in caught.value.message
    with pytest.raises(EInvoiceXmlError) as caught:
        read_einvoice(b"<!DOCTYPE r><r/>")
    assert caught.value.reason == "dtd_forbidden"


def test_an_empty_element_is_no_value() -> None:
    document = ubl_xml(german_sample()).replace(
        b"<cbc:BuyerReference>04011000-12345-67</cbc:BuyerReference>",
        b"<cbc:BuyerReference> </cbc:BuyerReference>",
    )
    assert "BT-10" not in read_einvoice(document).terms


# --- the factory's PDFs ----------------------------------------------------------------------------------


def _page_text(pdf: bytes) -> str:
    with pymupdf.open(stream=pdf, filetype="pdf") as doc:
        return str(doc[0].get_text())


def test_a_facturx_pdf_carries_the_xml_where_the_factur_x_library_finds_it() -> None:
    sample = german_sample()
    pdf = facturx_pdf(sample)
    filename, xml = facturx.get_xml_from_pdf(pdf, check_xsd=True)
    assert filename == "factur-x.xml"
    assert_reads_as(read_einvoice(xml), expected(sample))
    text = _page_text(pdf)
    for printed in (
        "RE-2024-0815",
        "Müller & Söhne Werkzeugbau GmbH",
        "Total EUR 1016.53",
        "IBAN DE89370400440532013000",
    ):
        assert printed in text


def test_the_page_can_disagree_with_the_xml() -> None:
    sample = german_sample()
    pdf = facturx_pdf(sample, page_text={"total": "1234.56"})
    assert "Total EUR 1234.56" in _page_text(pdf)
    assert read_einvoice(facturx.get_xml_from_pdf(pdf, check_xsd=False)[1]).terms["BT-112"].value == "1016.53"


def test_other_attachments() -> None:
    sample: SampleInvoice = french_sample()
    pdf = facturx_pdf(sample, xml=ubl_xml(sample), filename="xrechnung.xml")
    with pymupdf.open(stream=pdf, filetype="pdf") as doc:
        assert doc.embfile_names() == ["xrechnung.xml"]
        assert doc.xref_get_key(doc.pdf_catalog(), "AF")[0] == "array"
        assert read_einvoice(doc.embfile_get(0)).syntax == "UBL"
    plain = pdf_with_attachment(sample, "notes.txt", b"hello")
    with pymupdf.open(stream=plain, filetype="pdf") as doc:
        assert (doc.embfile_names(), doc.embfile_get(0)) == (["notes.txt"], b"hello")
        assert doc.xref_get_key(doc.pdf_catalog(), "AF") == ("null", "null")


def test_random_samples_vary_and_repeat() -> None:
    first, again = samples(3, 40), samples(3, 40)
    assert first == again
    assert {len(sample.lines) for sample in first} == {1, 2, 3, 4, 5, 6}
    assert {len({line.vat_rate for line in sample.lines}) for sample in first} == {1, 2}
    assert any(sample.credit_note for sample in first)
    assert any(sample.due_date is None for sample in first) and any(sample.due_date for sample in first)
    assert all(parse_xml(cii_xml(sample)) is not None for sample in first[:5])
    assert sum((sample.grand_total for sample in first), Decimal(0)) > 0
