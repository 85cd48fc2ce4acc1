"""Auto-accept is earned by independent evidence (app/trust/corroboration.py): one generated page per
failure class seen on held-out documents, each value wrong in the way it was wrong there, must go
to review with a reason naming the field; the right value on a page that corroborates it must not."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from app.lexicon import expected_on_every_document, name_words
from app.schema.compiled import compile_schema
from app.trust.assess import Assessment, ReviewPolicy, assess
from app.trust.sources import FieldSource, Rival
from tests.unit.test_trust import document, page, sources

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "invoice_number": {"type": ["string", "null"]},
        "issue_date": {"type": ["string", "null"], "format": "date"},
        "seller_name": {"type": ["string", "null"]},
        "buyer_name": {"type": ["string", "null"]},
        "subtotal": {"type": ["number", "null"]},
        "tax_total": {"type": ["number", "null"]},
        "total": {"type": ["number", "null"]},
        "iban": {"type": ["string", "null"]},
        "currency": {"type": ["string", "null"], "x-normalize": "currency"},
    },
    "x-checks": [{"name": "sum_ok", "expr": "subtotal + tax_total == total", "tolerance": 0.01}],
}
COMPILED = compile_schema(SCHEMA)


def run(
    lines: list[str], data: dict[str, Any], *, source: str = "pdf", confidence: float = 1.0
) -> Assessment:
    doc = document(page(*lines, source=source, confidence=confidence))
    return assess(COMPILED, data, sources(data), doc, policy=ReviewPolicy.of(SCHEMA))


def test_a_total_confirmed_by_lines_printed_apart_is_accepted() -> None:
    result = run(
        ["Rechnung Nr. R-2024-17", "Nettobetrag 100,00", "MwSt 19% 19,00", "Gesamtbetrag 119,00"],
        {"invoice_number": "R-2024-17", "subtotal": 100.0, "tax_total": 19.0, "total": 119.0},
    )
    assert result.reasons == []
    assert result.fields["/total"]["corroborated_by"] == ["exact", "labelled", "check:sum_ok"]
    assert result.fields["/invoice_number"]["corroborated_by"] == ["exact", "labelled"]


def test_a_vat_table_row_consistent_with_itself_does_not_make_the_total() -> None:
    """The 19 % row of a multi-rate table: net + tax = gross holds within the row, which says
    nothing about whether that row is the invoice's total."""
    result = run(
        ["Satz Netto MwSt Brutto", "19% 100,00 19,00 119,00", "7% 50,00 3,50 53,50", "Summe 172,50"],
        {"subtotal": 100.0, "tax_total": 19.0, "total": 119.0},
    )
    assert result.checks[0]["status"] == "passed"
    assert "uncorroborated:/total" in result.reasons
    assert result.fields["/total"]["corroborated_by"] == []


def test_a_total_printed_again_on_the_payment_line_is_accepted() -> None:
    result = run(["Summe EUR 5,47", "Bar EUR 5,47"], {"total": 5.47})
    assert result.reasons == []
    assert "printed_twice" in result.fields["/total"]["corroborated_by"]


def test_cash_handed_over_less_the_change_makes_the_total_paid() -> None:
    lines = ["Summe EUR 5,47", "Bar EUR 10,00", "Rückgeld EUR 4,53"]
    result = run(lines, {"total": 5.47})
    assert result.reasons == []
    assert result.fields["/total"]["corroborated_by"] == ["exact", "labelled", "payment_change"]
    # The pre-payment subtotal, printed once, is not what was paid.
    wrong = run(["Zwischensumme 5,40", *lines], {"total": 5.4})
    assert "uncorroborated:/total" in wrong.reasons


def test_a_total_plus_the_rounding_line_makes_the_rounded_total() -> None:
    """ "Total with GST 41.48 / Rounding 0.02 / Total 41.50": the rounded amount is the one owed,
    whichever sign the receipt prints the rounding with."""
    for rounding in ("0.02", "-0.02"):
        lines = ["Total with GST 41.48", f"Rounding {rounding}", "Total 41.50"]
        result = run(lines, {"total": 41.5}, source="ocr", confidence=0.99)
        assert result.reasons == []
        assert "rounding" in result.fields["/total"]["corroborated_by"]
    unrounded = run(["Total with GST 41.48", "Rounding 0.02", "Total 41.50"], {"total": 41.48})
    assert "uncorroborated:/total" in unrounded.reasons


def test_an_amount_that_lost_its_decimal_point_goes_to_review() -> None:
    """ "41.50" read without its point as 4150 on a page that prints every other amount with cents,
    even when the OCR repeats the mistake on the cash line."""
    lines = ["Subtotal 39.53", "GST 6% 2.37", "Total 4150", "Cash 4150", "Change 8.50"]
    result = run(lines, {"total": 4150.0})
    assert "decimal_place:/total" in result.reasons
    grouped = run(["Subtotal 5,17", "MwSt 0,30", "Summe 5.417", "Bar 5.417"], {"total": 5417.0})
    assert "decimal_place:/total" in grouped.reasons


def test_a_quantity_is_no_money_and_needs_no_cents() -> None:
    schema = {
        "type": "object",
        "properties": {
            "line_items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"quantity": {"type": "number"}, "amount": {"type": "number"}},
                },
            }
        },
    }
    data = {"line_items": [{"quantity": 2.0, "amount": 5.0}]}
    doc = document(page("Bolts 2 2.50 5.00", "Total 5.00", "Cash 5.00"))
    item_sources: dict[str, FieldSource | None] = {
        f"/line_items/0/{k}": FieldSource(1, f"/line_items/0/{k}", None) for k in ("quantity", "amount")
    }
    result = assess(compile_schema(schema), data, item_sources, doc, policy=ReviewPolicy.of(schema))
    assert not any(r.startswith("decimal_place") for r in result.reasons)


def test_an_amount_nothing_corroborates_goes_to_review() -> None:
    result = run(["Total 41.50"], {"total": 41.5})
    assert result.reasons == ["uncorroborated:/total"]


def test_an_ocr_damaged_amount_read_unsurely_goes_to_review() -> None:
    """ "5,47" read as "5.417": the recogniser's least sure character says so."""
    result = run(["Total 5.417", "Cash 5.417"], {"total": 5417.0}, source="ocr", confidence=0.62)
    assert "ocr_unsure:/total" in result.reasons


def test_a_date_glued_to_the_time_goes_to_review() -> None:
    """ "28.03.20" + "09:51 Uhr" read as one word: the date is inside more than the date."""
    result = run(["Datum 28.03.2009:51Uhr"], {"issue_date": "28.03.20"})
    assert "glued:/issue_date" in result.reasons


def test_a_two_digit_year_goes_to_review() -> None:
    result = run(["Datum 28.03.20"], {"issue_date": "28.03.20"})
    assert "two_digit_year:/issue_date" in result.reasons


def test_the_due_date_from_the_payment_terms_is_not_the_issue_date() -> None:
    lines = ["Rechnungsdatum 01.06.2018", "Zahlbar netto bis 04.07.2018"]
    wrong = run(lines, {"issue_date": "04.07.2018"})
    assert "unlabelled:/issue_date" in wrong.reasons
    right = run(lines, {"issue_date": "01.06.2018"})
    assert right.reasons == []
    assert right.fields["/issue_date"]["corroborated_by"] == [
        "exact",
        "labelled",
        "four_digit_year",
        "date_order:dotted",
    ]


def test_the_only_date_on_a_receipt_needs_no_label() -> None:
    result = run(
        ["SAM SAM TRADING CO", "29-12-2017 20:17", "TOTAL 14.10", "CASH 14.10"], {"issue_date": "29-12-2017"}
    )
    assert result.reasons == []
    assert "only_date" in result.fields["/issue_date"]["corroborated_by"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("seller_name", "GmbH"),
        ("buyer_name", "Käufer"),
        ("invoice_number", "Nummer"),
        ("seller_name", "CUSTOMER NO"),
    ],
)
def test_a_label_is_never_a_value(field: str, value: str) -> None:
    """ "Lieferant GmbH" with "Lieferant" eaten as the label, "Käufer" and "Nummer" returned as values,
    and a column header made of role words ("CUSTOMER NO") as the seller."""
    result = run(["Lieferant GmbH", "Käufer", "Nummer 4711", "Sold by CUSTOMER NO"], {field: value})
    assert f"label_as_value:/{field}" in result.reasons


def test_a_name_without_a_label_goes_to_review_and_a_labelled_one_does_not() -> None:
    lines = ["Müller Bürobedarf GmbH", "Käufer: Schmidt AG"]
    unlabelled = run(lines, {"seller_name": "Müller Bürobedarf GmbH"})
    assert "unlabelled:/seller_name" in unlabelled.reasons
    labelled = run(lines, {"buyer_name": "Schmidt AG"})
    assert labelled.reasons == []


def test_an_iban_is_corroborated_by_its_check_digits() -> None:
    result = run(["IBAN DE89 3704 0044 0532 0130 00"], {"iban": "DE89 3704 0044 0532 0130 00"})
    assert result.reasons == []
    assert "check_digits" in result.fields["/iban"]["corroborated_by"]


def test_a_value_read_with_its_label_goes_to_review() -> None:
    """ "Merchant ID 99018211": "Merchant" labels it as the store, and "ID 99018211" is not a name."""
    result = run(["Merchant ID 99018211"], {"seller_name": "ID 99018211"})
    assert "label_in_value:/seller_name" in result.reasons


def test_a_number_printed_twice_is_no_evidence_for_two_fields_sharing_it() -> None:
    """ "Sales Tax Total 27.99": the total printed twice does not make 27.99 the tax as well."""
    lines = ["Subtotal 27.99", "Sales Tax Total 27.99", "Visa 27.99"]
    result = run(lines, {"tax_total": 27.99, "total": 27.99})
    assert "uncorroborated:/tax_total" in result.reasons
    alone = run(lines, {"total": 27.99})
    assert "printed_twice" in alone.fields["/total"]["corroborated_by"]


def test_one_iban_in_two_fields_names_one_party_and_both_go_to_review() -> None:
    """The seller's IBAN, printed once, read for the buyer's as well: one of them is wrong."""
    schema = {"type": "object", "properties": {"seller": IBAN_OF, "buyer": IBAN_OF}}
    data = {"seller": {"iban": "DE89 3704 0044 0532 0130 00"}, "buyer": {"iban": "DE89370400440532013000"}}
    doc = document(page("Bankverbindung IBAN DE89 3704 0044 0532 0130 00"))
    result = assess(compile_schema(schema), data, sources(data), doc, policy=ReviewPolicy.of(schema))
    assert "shared_identifier:/seller/iban" in result.reasons
    assert "shared_identifier:/buyer/iban" in result.reasons
    alone = run(["Bankverbindung IBAN DE89 3704 0044 0532 0130 00"], {"iban": "DE89 3704 0044 0532 0130 00"})
    assert alone.reasons == []


IBAN_OF = {"type": "object", "properties": {"iban": {"type": ["string", "null"]}}}


def test_a_currency_guessed_from_a_letter_prefix_goes_to_review() -> None:
    """ "R" (rand) read from the invoice number "R2024-0017" while "Währung: EUR" is printed."""
    lines = ["Rechnung R2024-0017", "Währung: EUR"]
    guessed = run(lines, {"currency": "R"})
    assert guessed.reasons == ["glued:/currency"]
    printed = run(lines, {"currency": "EUR"})
    assert printed.reasons == []


def test_a_label_above_counts_only_on_a_line_of_its_own() -> None:
    """ "Rechnungsnummer" alone over "R-17" labels it; "Tel 0301234" over "R-17" labels the phone."""
    above = run(["Rechnungsnummer", "R-2024-17"], {"invoice_number": "R-2024-17"})
    assert above.reasons == []
    beside = run(["Rechnungsnummer 4711", "R-2024-17"], {"invoice_number": "R-2024-17"})
    assert "unlabelled:/invoice_number" in beside.reasons


def test_a_rival_nearly_as_sure_goes_to_review_and_is_shown() -> None:
    """Two totals read almost equally surely: the choice is a guess; the reviewer sees the other."""
    data = {"total": 41.5}
    rivals = (Rival(41.48, 0.8, 1), Rival(41.5, 0.9, 1), Rival(0.02, 0.1, 1))
    doc = document(page("Total with GST 41.48", "Total 41.50", "Cash 41.50"))
    result = assess(COMPILED, data, with_rivals(data, rivals), doc, policy=ReviewPolicy.of(SCHEMA))
    assert "rival:/total" in result.reasons  # printed twice, but so might the other be
    # The same value in another spelling is no rival; the order is the engine's.
    assert result.fields["/total"]["rivals"] == [
        {"value": 41.48, "score": 0.8, "page": 1},
        {"value": 0.02, "score": 0.1, "page": 1},
    ]


def test_payment_arithmetic_settles_a_rival() -> None:
    data = {"total": 41.5}
    rivals = (Rival(41.48, 0.9, 1),)
    doc = document(page("Total with GST 41.48", "Rounding 0.02", "Total 41.50", "Cash 50.00", "Change 8.50"))
    result = assess(COMPILED, data, with_rivals(data, rivals), doc, policy=ReviewPolicy.of(SCHEMA))
    assert result.reasons == []
    assert result.fields["/total"]["corroborated_by"] == ["exact", "labelled", "payment_change", "rounding"]


def test_a_distant_rival_is_shown_but_does_not_block_acceptance() -> None:
    data = {"total": 41.5}
    doc = document(page("Total 41.50", "Cash 41.50", "Change 0.00"))
    result = assess(
        COMPILED, data, with_rivals(data, (Rival(0.0, 0.5, 1),)), doc, policy=ReviewPolicy.of(SCHEMA)
    )
    assert result.reasons == []
    assert result.fields["/total"]["rivals"] == [{"value": 0.0, "score": 0.5, "page": 1}]


def test_a_check_from_other_lines_settles_a_rival() -> None:
    data = {"subtotal": 100.0, "tax_total": 19.0, "total": 119.0}
    doc = document(page("Netto 100,00", "MwSt 19,00", "Brutto 119,00", "Zwischensumme 110,00"))
    result = assess(
        COMPILED, data, with_rivals(data, (Rival(110.0, 0.95, 1),)), doc, policy=ReviewPolicy.of(SCHEMA)
    )
    assert "rival:/total" not in result.reasons
    assert "check:sum_ok" in result.fields["/total"]["corroborated_by"]


def with_rivals(data: dict[str, Any], rivals: tuple[Rival, ...]) -> dict[str, FieldSource | None]:
    """Sources at token certainty 0.99, the total's with ``rivals``."""
    return {
        pointer: replace(source, rivals=rivals) if pointer == "/total" and source else source
        for pointer, source in sources(data).items()
    }


@pytest.mark.parametrize(
    ("lines", "order", "iso"),
    [
        (["Invoice date 04/05/2024", "Ship to 500 Oak St, Austin, TX 78701"], "us_address", "2024-04-05"),
        (["Invoice date 04/05/2024", "Total RM 12.50"], "currency", "2024-05-04"),
        (["Rechnungsdatum 04/05/2024", "Summe der Rechnung mit MwSt"], "language", "2024-05-04"),
        (["Invoice date 04/05/2024", "Due date 28/05/2024"], "dates", "2024-05-04"),
        (["Invoice date 04/05/2024", "Jalan Ampang, 50450 Kuala Lumpur"], "region", "2024-05-04"),
    ],
)
def test_what_settles_the_order_of_day_and_month(lines: list[str], order: str, iso: str) -> None:
    result = run(lines, {"issue_date": "04/05/2024"})
    assert result.data["issue_date"] == iso
    assert f"date_order:{order}" in result.fields["/issue_date"]["corroborated_by"]
    assert result.reasons == []


def test_a_date_whose_order_nothing_settles_goes_to_review() -> None:
    """04/05/2024 on an English page with no other clue: 4 May or April 5."""
    result = run(["Invoice date 04/05/2024", "Thank you"], {"issue_date": "04/05/2024"})
    assert "ambiguous_date:/issue_date" in result.reasons
    same_day = run(["Invoice date 05/05/2024", "Thank you"], {"issue_date": "05/05/2024"})
    assert same_day.reasons == []


def test_a_total_or_date_not_found_goes_to_review() -> None:
    """Every invoice prints its total and date: null there means not found, not absent. A due date
    or an IBAN may well be missing from a document."""
    result = run(
        ["Rechnung Nr. R-17"], {"invoice_number": "R-17", "issue_date": None, "total": None, "iban": None}
    )
    assert result.reasons == ["not_found:/issue_date", "not_found:/total"]


def test_a_document_in_no_known_language_is_unfamiliar() -> None:
    """Finnish: nothing the scores were calibrated on; every field loses confidence and the
    document goes to review."""
    finnish = "Kiitos käynnistä tervetuloa uudelleen myyjä kuitti päivämäärä yhteensä alv veroton " * 3
    lines = ["Lasku 17", finnish, "Yhteensä 41,50", "Käteinen 41,50"]
    familiar = run(["Invoice 17", "Thank you for your visit", "Total 41,50", "Cash 41,50"], {"total": 41.5})
    unknown = run(lines, {"total": 41.5})
    assert "unfamiliar_document:language" in unknown.reasons
    assert unknown.fields["/total"]["confidence"] < familiar.fields["/total"]["confidence"]


def test_a_document_whose_values_no_label_names_is_unfamiliar() -> None:
    lines = ["Müller Bürobedarf GmbH", "R-2024-17", "Schmidt AG", "Thank you for the order"]
    data = {
        "seller_name": "Müller Bürobedarf GmbH",
        "invoice_number": "R-2024-17",
        "buyer_name": "Schmidt AG",
    }
    assert "unfamiliar_document:labels" in run(lines, data).reasons
    labelled = ["Verkäufer Müller Bürobedarf GmbH", "Rechnung Nr. R-2024-17", "Käufer Schmidt AG"]
    assert not any(r.startswith("unfamiliar") for r in run(labelled, data).reasons)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("total", True),
        ("invoice_date", True),
        ("amount_due", True),
        ("date_due", False),
        ("total_tax", False),
    ],
)
def test_which_nulls_are_values_not_found(name: str, expected: bool) -> None:
    assert expected_on_every_document(tuple(name_words(name))) is expected
