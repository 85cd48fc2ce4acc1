"""The layout engine on scanned receipts drawn in code as OCR words: spaces OCR dropped put back in
names and addresses, the company and address read from the header block, the total owed chosen
among several totals, dates glued to times, and scores that say how much of a value was guessed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from app.documents.textmap import PageMap
from app.engines.layout import LayoutEngine
from app.engines.layout.engine import read_page
from app.engines.layout.extract import Candidate, PageValues
from app.engines.layout.fields import ConceptMatcher, FieldSpec
from app.engines.layout.spacing import guesses, respace
from app.engines.layout.values import currency_token, parse, parse_dates
from app.pages import Word, WordSource

WIDTH, HEIGHT, LINE = 600.0, 1200.0, 20.0
Row = Sequence[tuple[float, str]]
"""(x in page units, text) of the words of one printed line."""

RECEIPT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "company": {
            "type": ["string", "null"],
            "description": "Name of the business that issued the receipt",
        },
        "date": {"type": ["string", "null"], "format": "date", "description": "Date of the purchase"},
        "address": {"type": ["string", "null"], "description": "Postal address of the business"},
        "total": {"type": ["number", "null"], "description": "Total amount paid"},
    },
}


def ocr_page(rows: Sequence[Row], source: WordSource = "ocr") -> PageMap:
    """One word per (x, text), a line every 1.5 text heights, boxes as wide as the text."""
    words: list[Word] = []
    for line, row in enumerate(rows):
        top = 40 + line * 1.5 * LINE
        for x, text in row:
            box = (x / WIDTH, top / HEIGHT, (x + 9 * len(text)) / WIDTH, (top + LINE) / HEIGHT)
            words.append(Word(text, box, 0.95, source, line))
    return PageMap(1, WIDTH, HEIGHT, "image" if source == "ocr" else "born_digital", words)


def read(
    rows: Sequence[Row], schema: dict[str, Any] = RECEIPT_SCHEMA, source: WordSource = "ocr"
) -> PageValues:
    engine = LayoutEngine(ConceptMatcher(None))
    return read_page(ocr_page(rows, source), *engine._plan(schema))


def value(values: PageValues, name: str) -> Candidate:
    return values.values[(name,)]


RECEIPT: list[Row] = [
    [(150, "SINAR HARAPANTRADINGSDNBHD")],
    [(200, "(123456-X)")],
    [(120, "NO.12,JALANMELATI3,")],
    [(120, "TAMAN BUNGA,43000KAJANG,SELANGOR.")],
    [(150, "TEL:03-87654321")],
    [(150, "GST ID:001234567890")],
    [(200, "TAX INVOICE")],
    [(20, "Date: 05/03/2019 10:15"), (350, "Cashier: 02")],
    [(20, "NOTEBOOK A5"), (400, "12.00")],
    [(20, "PEN BLUE"), (400, "8.00")],
    [(20, "SUBTOTAL"), (400, "20.00")],
    [(20, "GST 6%"), (400, "1.20")],
    [(20, "TOTAL"), (400, "RM21.20")],
    [(20, "CASH"), (400, "RM50.00")],
    [(20, "CHANGE"), (400, "RM28.80")],
    [(20, "GST SUMMARY"), (300, "Amount"), (420, "Tax")],
    [(20, "TOTAL"), (300, "20.00"), (420, "1.20")],
]


def test_a_receipt_header_gives_company_and_address_with_their_spaces_back() -> None:
    values = read(RECEIPT)
    assert value(values, "company").value == "SINAR HARAPAN TRADING SDN BHD"
    # the registration number between name and address is passed over; the phone ends the block
    assert value(values, "address").value == "NO.12, JALAN MELATI 3, TAMAN BUNGA, 43000 KAJANG, SELANGOR."
    assert value(values, "date").parsed == "2019-03-05"
    assert value(values, "total").value == pytest.approx(21.2)  # "RM21.20", above CASH; not the summary


def test_scores_rank_what_was_read_above_what_was_guessed() -> None:
    values = read(RECEIPT)
    total, date = value(values, "total").score, value(values, "date").score
    company, address = value(values, "company").score, value(values, "address").score
    assert min(total, date) > 0.8
    # taken from the layout alone, with spaces put back: well below what was read beside a label
    assert address < company < 0.75 * min(total, date)


def test_a_name_without_legal_form_or_with_misread_letters_scores_lower() -> None:
    clean = value(read([[(150, "MAJU JAYA HARDWARE SDN BHD")], *RECEIPT[2:]]), "company")
    plain = value(read([[(150, "KEDAI MAJU JAYA")], *RECEIPT[2:]]), "company")
    misread = value(read([[(150, "MAJU 1AYA HARDWARE SDN BHD")], *RECEIPT[2:]]), "company")
    assert clean.value == "MAJU JAYA HARDWARE SDN BHD"
    assert plain.value == "KEDAI MAJU JAYA"
    assert plain.score < 0.7 * clean.score
    assert misread.score < 0.7 * clean.score


def test_a_name_wrapped_before_its_legal_form_is_joined() -> None:
    rows = [[(150, "SINAR HARAPAN")], [(150, "(M) SDN BHD")], *RECEIPT[2:]]
    assert value(read(rows), "company").value == "SINAR HARAPAN (M) SDN BHD"


def test_the_address_ends_after_the_postcode_line_but_keeps_the_state() -> None:
    rows = [
        [(150, "MAJU JAYA HARDWARE SDN BHD")],
        [(120, "LOT 5, JALAN INDAH 2,")],
        [(120, "43000 KAJANG,")],
        [(120, "SELANGOR")],
        [(120, "OPEN DAILY 9AM")],
        [(20, "TOTAL"), (400, "9.90")],
    ]
    assert value(read(rows), "address").value == "LOT 5, JALAN INDAH 2, 43000 KAJANG, SELANGOR"


def test_a_text_layer_keeps_its_own_spacing() -> None:
    rows = [[(150, "MAINSTREETTRADING LTD")], [(20, "TOTAL"), (400, "9.90")]]
    assert value(read(rows, source="pdf"), "company").value == "MAINSTREETTRADING LTD"
    assert value(read(rows, source="ocr"), "company").value == "MAIN STREET TRADING LTD"


@pytest.mark.parametrize(
    ("printed", "spaced"),
    [
        ("GOLDENPAPERTRADINGSDNBHD", "GOLDEN PAPER TRADING SDN BHD"),
        ("KawasanPerindustrian", "Kawasan Perindustrian"),
        ("NO.7,JALANMAWAR2,", "NO.7, JALAN MAWAR 2,"),
        ("47000SUNGAIBULOH,SELANGOR", "47000 SUNGAI BULOH, SELANGOR"),
        ("SRIMURNI(KL)SDNBHD(12345-A)", "SRIMURNI (KL) SDN BHD (12345-A)"),
        ("BEST BUY.SDN.BHD", "BEST BUY. SDN. BHD"),
        ("ROSE FLORIST&GIFT", "ROSE FLORIST & GIFT"),
        ("L0T 12,JALAN 4", "LOT 12, JALAN 4"),
        ("MAJU(M)SDNEHD", "MAJU (M) SDN BHD"),
        ("JALANKPB6", "JALAN KPB 6"),
        ("JALAN SS6/5A", "JALAN SS6/5A"),  # a short code stays whole
        ("UNIT L1-044B, 3RD FLR", "UNIT L1-044B, 3RD FLR"),
        ("PASARAYA", "PASARAYA"),  # no stray short piece ("PASAR AYA")
        ("THEODORE", "THEODORE"),  # a short word beside an unknown one is part of it
        ("TOTAL 1,234.50", "TOTAL 1,234.50"),  # a thousands separator is no comma between words
    ],
)
def test_respace_puts_back_the_spaces_ocr_dropped(printed: str, spaced: str) -> None:
    assert respace(printed) == spaced


def test_guesses_count_word_boundaries_and_letters_not_commas() -> None:
    assert guesses("TAMAN BUNGA,43000 KAJANG", respace("TAMAN BUNGA,43000 KAJANG")) == 0
    assert guesses("TRADINGSDNBHD", respace("TRADINGSDNBHD")) == 2
    assert guesses("L0T 5", respace("L0T 5")) == 1


@pytest.mark.parametrize(
    ("printed", "iso"),
    [
        ("15/01/20181:48PM", "2018-01-15"),
        ("09Apr201818:26", "2018-04-09"),
        ("Date:2016/05/0114:11:20", "2016-05-01"),
        ("[Sales]2018-01-05 22:55:25", "2018-01-05"),
        ("23/06/1812:46:33PM", "2018-06-23"),  # a two-digit year glued to the time
        ("28.03.2009:51Uhr", "2020-03-28"),  # "28.03.20" + "09:51 Uhr", not 2009
        ("Order 100007017/04/2018 07:13 PM", "2018-04-17"),
    ],
)
def test_dates_glued_to_their_neighbours(printed: str, iso: str) -> None:
    assert [parsed for _, parsed, _ in parse_dates(printed)] == [iso]


@pytest.mark.parametrize("printed", ["Tel.:05.22.95.66.66", "INV/2023/03/0008"])
def test_numbers_that_only_look_like_dates(printed: str) -> None:
    assert parse_dates(printed) == []


def test_the_total_owed_beats_larger_and_qualified_totals() -> None:
    rows = [
        [(150, "ANY SHOP SDN BHD")],
        [(20, "Total 0% supplies:"), (400, "12.98")],
        [(20, "Total 6% supplies (excl. GST):"), (400, "-13.87")],
        [(20, "Total Payable:"), (400, "-1.73")],
        [(20, "E.&.O.E.")],
    ]
    assert value(read(rows), "total").value == pytest.approx(-1.73)


def test_a_label_misread_with_a_digit_still_names_its_field() -> None:
    rows = [
        [(150, "ANY SHOP SDN BHD")],
        [(20, "Grand Tota1"), (300, "RM51.30")],
        [(20, "Cash"), (300, "RM60.00")],
    ]
    assert value(read(rows), "total").value == pytest.approx(51.3)


def test_a_total_with_an_equal_rival_scores_lower() -> None:
    single = [[(150, "ANY SHOP SDN BHD")], [(20, "TOTAL"), (400, "30.00")]]
    rivals = [[(150, "ANY SHOP SDN BHD")], [(20, "TOTAL"), (400, "30.00")], [(20, "TOTAL"), (400, "25.00")]]
    assert value(read(rivals), "total").score < 0.8 * value(read(single), "total").score


def test_a_single_unlabelled_date_is_trusted_more_than_one_of_several() -> None:
    one = [[(150, "ANY SHOP SDN BHD")], [(20, "05/03/2019 10:15")], [(20, "TOTAL"), (400, "9.90")]]
    two = [*one, [(20, "Valid until 05/04/2019")]]
    assert value(read(one), "date").score >= 0.8
    assert value(read(two), "date").score < 0.6
    assert value(read(two), "date").parsed == "2019-03-05"


def test_the_value_under_a_table_header_label_is_the_one_most_under_it() -> None:
    schema = {"type": "object", "properties": {"tax_amount": {"type": "number", "description": "VAT amount"}}}
    rows = [
        [(100, "VAT %"), (200, "Net"), (300, "VAT amount"), (450, "Gross")],
        [(105, "21 %"), (190, "41.31"), (320, "8.68"), (450, "49.99")],
    ]
    assert value(read(rows, schema, source="pdf"), "tax_amount").value == pytest.approx(8.68)


def test_the_customers_vat_number_is_not_the_issuers() -> None:
    schema = {
        "type": "object",
        "properties": {"vat": {"type": "string", "description": "VAT number of the seller"}},
    }
    rows = [[(20, "VAT number: NL815254295B01")], [(20, "Your VAT number: NL003335996B98")]]
    assert value(read(rows, schema, source="pdf"), "vat").value == "NL815254295B01"


@pytest.mark.parametrize(
    ("printed", "value"),
    [
        ("Caffè Città S.r.l.", "Caffè Città S.r.l."),
        ("Bakkerij Van Dijk B.V.", "Bakkerij Van Dijk B.V."),
        ("Müller GmbH.", "Müller GmbH"),  # a sentence's period, not an abbreviation's
        ("ACME Supplies:", "ACME Supplies"),
    ],
)
def test_a_name_keeps_the_last_period_of_its_abbreviated_legal_form(printed: str, value: str) -> None:
    spec = FieldSpec(
        path=("seller_name",),
        name="seller_name",
        kind="text",
        types=frozenset({"string"}),
        enum=None,
        labels=(),
        concept=None,
        identifier=False,
    )
    assert [raw for raw, _, _ in parse(printed, spec)][:1] == [value]


@pytest.mark.parametrize(
    ("token", "currency"),
    [
        ("EUR", "EUR"),
        ("RM5.90", "RM"),
        ("€12,00", "€"),
        ("R12.50", "R"),  # a rand amount with its cents
        ("R691", None),  # a block of an IBAN: "IT68 R691 3751 ..."
        ("R", None),  # a lone letter (a tax code column) is no currency
    ],
)
def test_a_single_letter_is_a_currency_only_before_an_amount_with_cents(
    token: str, currency: str | None
) -> None:
    assert currency_token(token) == currency


PHONE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"store_name": {"type": ["string", "null"]}, "phone": {"type": ["string", "null"]}},
}


def test_an_unlabelled_phone_in_the_header_is_read_as_a_guess() -> None:
    """A receipt prints the store's number under its name without "Tel": read it, scored low."""
    rows = [
        [(200, "BLUE"), (250, "BOTTLE"), (320, "CAFE")],
        [(180, "(415)"), (230, "398-3173")],
        [(40, "Check:"), (110, "37820")],
        [(40, "TOTAL"), (400, "12.50")],
    ]
    phone = value(read(rows, PHONE_SCHEMA), "phone")
    assert phone.value == "(415) 398-3173" and phone.parsed == "4153983173"
    assert phone.score < 0.5


def test_a_labelled_phone_wins_over_the_fax_and_is_sure() -> None:
    rows = [
        [(200, "ACME"), (260, "SDN"), (300, "BHD")],
        [(40, "Fax:"), (100, "03-1234568")],
        [(40, "Tel:"), (100, "03-1234567")],
    ]
    phone = value(read(rows, PHONE_SCHEMA), "phone")
    assert phone.parsed == "031234567" and phone.score > 0.8


def test_no_phone_number_is_no_phone() -> None:
    rows = [
        [(200, "BLUE"), (250, "CAFE")],
        [(40, "Check:"), (110, "37820")],
        [(40, "Date"), (100, "12/05/2019")],
    ]
    assert ("phone",) not in read(rows, PHONE_SCHEMA).values


def test_the_address_under_a_party_label_is_no_close_rival_of_its_name() -> None:
    """ "Seller:" over the name, the street and the town: the lines after the name are its address,
    so the name is chosen without a rival nearly as likely (which would send it to review)."""
    rows = [
        [(40, "Seller:")],
        [(40, "Greenleaf"), (140, "Stationers")],
        [(40, "221"), (80, "Baker"), (140, "Street")],
        [(40, "Currency:"), (140, "GBP")],
    ]
    schema = {"type": "object", "properties": {"seller_name": {"type": ["string", "null"]}}}
    values = read(rows, schema, source="pdf")
    name = value(values, "seller_name")
    assert name.value == "Greenleaf Stationers"
    assert all(r.score < 0.7 * name.score for r in values.rivals.get(("seller_name",), []))
