"""Normalisation of extracted values: real-world prints of every kind, the ambiguity rules, round trips."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.trust.normalize import (
    KINDS,
    Kind,
    Normalized,
    infer_day_first,
    json_value,
    kind_for,
    normalize,
    printed_forms,
)

D = Decimal

# --------------------------------------------------------------------------------------------------------
# table: (raw, kind, expected value or None when unparsed)

DATES: list[tuple[Any, str | None]] = [
    ("2024-03-15", "2024-03-15"),
    ("2024/03/15", "2024-03-15"),
    ("20240315", "2024-03-15"),
    ("2024.3.5", "2024-03-05"),
    ("15/03/2024", "2024-03-15"),
    ("03/15/2024", "2024-03-15"),
    ("15.03.24", "2024-03-15"),
    ("15-03-2024", "2024-03-15"),
    ("15 03 2024", "2024-03-15"),
    ("1/2/02", "2002-02-01"),
    ("31.12.99", "1999-12-31"),
    ("01.01.69", "2069-01-01"),
    ("01.01.70", "1970-01-01"),
    ("15 March 2024", "2024-03-15"),
    ("March 15, 2024", "2024-03-15"),
    ("15-Mar-24", "2024-03-15"),
    ("15-MAR-2024", "2024-03-15"),
    ("Sept. 3, 2021", "2021-09-03"),
    ("7. Mai 2014", "2014-05-07"),
    ("den 7. März 2014", "2014-03-07"),
    ("29 maart 2014", "2014-03-29"),
    ("02 Juillet 2015", "2015-07-02"),
    ("1er août 2015", "2015-08-01"),
    ("1 Januari 2018", "2018-01-01"),
    ("15 Mac 2018", "2018-03-15"),
    ("3 Ogos 2019", "2019-08-03"),
    ("15 de marzo de 2024", "2024-03-15"),
    ("lunedì 15 marzo 2024", "2024-03-15"),
    ("Tuesday, 1st March 2022", "2022-03-01"),
    ("March 2nd, 2022", "2022-03-02"),
    ("Mon 15/01/2018", "2018-01-15"),
    ("15/01/2018 1:48:36PM", "2018-01-15"),
    ("2018-01-15T10:00:00", "2018-01-15"),
    ("2018-01-15T10:00:00+01:00", "2018-01-15"),
    ("2018-01-15 10:00", "2018-01-15"),
    (date(2024, 3, 15), "2024-03-15"),
    ("31/02/2024", None),
    ("29.02.2023", None),
    ("2024-13-01", None),
    ("Mar 2024", None),
    ("15 Foo 2024", None),
    ("next Tuesday", None),
    ("15/03/124", None),
    (12.5, None),
]

AMOUNTS: list[tuple[Any, Decimal | None]] = [
    ("1,234.50", D("1234.50")),
    ("1.234,50", D("1234.50")),
    ("1 234,50", D("1234.50")),
    ("1\u202f234,50", D("1234.50")),
    ("1\u00a0234.50", D("1234.50")),
    ("1234,50", D("1234.50")),
    ("1234.5", D("1234.5")),
    ("1'234.50", D("1234.50")),
    ("1\u2019234.50", D("1234.50")),
    ("1,234,567.89", D("1234567.89")),
    ("1.234.567", D("1234567")),
    ("12,34,567.00", D("1234567.00")),
    ("1,234", D("1234")),  # a single separator with three digits: thousands
    ("1.234", D("1234")),
    ("0.125", D("0.125")),  # ... unless the integer part is 0
    ("1234.567", D("1234.567")),  # ... or longer than a group
    ("1 234,567", D("1234.567")),  # ... or another grouping character is present
    ("12,5", D("12.5")),
    ("€12.50", D("12.50")),
    ("12,50 €", D("12.50")),
    ("EUR 1.234,50", D("1234.50")),
    ("1,234.50 USD", D("1234.50")),
    ("$1,000", D("1000")),
    ("£ 9.99", D("9.99")),
    ("¥1,000", D("1000")),
    ("₹ 1,23,456.00", D("123456.00")),
    ("RM 12.50", D("12.50")),
    ("Rs. 250", D("250")),
    ("CHF 1'234.50", D("1234.50")),
    ("12.50EUR", D("12.50")),
    ("-12.50", D("-12.50")),
    ("\u221212.50", D("-12.50")),
    ("(12.50)", D("-12.50")),
    ("(€12.50)", D("-12.50")),
    ("12.50-", D("-12.50")),
    ("-€ 1.234,50", D("-1234.50")),
    ("12.50 CR", D("-12.50")),
    ("12.50 DR", D("12.50")),
    ("12.50 CR EUR", D("-12.50")),
    ("12.50 Cr.", D("-12.50")),
    ("+12.50", D("12.50")),
    (12.5, D("12.5")),
    (1234, D("1234")),
    (D("3.10"), D("3.10")),
    ("Total 12.50", None),
    ("12.50 %", None),
    ("1,2,3", None),
    ("1.234.5,6,7", None),  # the decimal separator repeated: unparsed, not a crash
    ("12 50", None),
    ("-(12.50)", None),
    ("abc", None),
    (True, None),
    (float("nan"), None),
]

CURRENCIES: list[tuple[Any, str | None]] = [
    ("EUR", "EUR"),
    ("eur", "EUR"),
    (" usd ", "USD"),
    ("€", "EUR"),
    ("£", "GBP"),
    ("¥", "JPY"),
    ("CN¥", "CNY"),
    ("₹", "INR"),
    ("$", "USD"),
    ("US$", "USD"),
    ("RM", "MYR"),
    ("Rs", "INR"),
    ("Rs.", "INR"),
    ("CHF", "CHF"),
    ("Fr.", "CHF"),
    ("zł", "PLN"),
    ("kr", "SEK"),
    ("Euro", "EUR"),
    ("dollars", "USD"),
    ("ringgit", "MYR"),
    ("XYZ", None),
    ("money", None),
    (978, None),
]

PERCENTS: list[tuple[Any, Decimal | None]] = [
    ("19%", D("19")),
    ("19 %", D("19")),
    ("19,5 %", D("19.5")),
    ("7.7%", D("7.7")),
    ("%18", D("18")),
    ("-5%", D("-5")),
    ("0.19", D("0.19")),  # never multiplied
    (19, D("19")),
    (0.07, D("0.07")),
    ("19%%", None),
    ("nineteen", None),
]

IBANS: list[tuple[Any, str | None]] = [
    ("DE89 3704 0044 0532 0130 00", "DE89370400440532013000"),
    ("de89370400440532013000", "DE89370400440532013000"),
    ("GB29 NWBK 6016 1331 9268 19", "GB29NWBK60161331926819"),
    ("FR14 2004 1010 0505 0001 3M02 606", "FR1420041010050500013M02606"),
    ("NL91ABNA0417164300", "NL91ABNA0417164300"),
    ("IBAN: CH93 0076 2011 6238 5295 7", "CH9300762011623852957"),
    ("DE89 3704 0044 0532 0130 01", None),  # check digits fail
    ("DE89 3704 0044 0532 0130", None),  # too short for DE
    ("GB82 WEST 1234 5698 7654 32", "GB82WEST12345698765432"),
    ("BE71 0961 2345 6769", "BE71096123456769"),
    ("BE71 0961 2345 6770", None),  # the IBAN check digits fail
    ("BE44 0961 2345 6770", None),  # mod 97 holds, Belgium's own check digits (70) do not
    ("FR76 3000 6000 0112 3456 7890 189", "FR7630006000011234567890189"),
    ("ES91 2100 0418 4502 0005 1332", "ES9121000418450200051332"),
    ("ES46 2100 0418 4512 0005 1332", None),  # mod 97 holds, Spain's control digits do not
    ("XX89370400440532013000", None),
    ("not an iban", None),
]

VAT_IDS: list[tuple[Any, str | None]] = [
    ("DE136695976", "DE136695976"),
    ("de 136 695 976", "DE136695976"),
    ("ATU13585627", "ATU13585627"),
    ("FR 40 303 265 045", "FR40303265045"),
    ("NL815254295B01", "NL815254295B01"),
    ("GB 980.7806.84", "GB980780684"),
    ("CHE-116.281.710 MWST", "CHE116281710"),
    ("NO 995 525 828 MVA", "NO995525828MVA"),
    ("NO 995 525 828", "NO995525828"),
    ("EL-094259216", "EL094259216"),
    ("DE136695977", None),  # the check digit fails: a misread digit
    ("DE123456789", None),  # a placeholder, not a German VAT id
    ("ATU12345678", None),
    ("NL003335996B98", None),
    ("CHE-123.456.789 MWST", None),
    ("NO 995 525 829 MVA", None),
    ("US123456789", None),
    ("DEUTSCHLAND", None),
    ("DE1", None),
    ("123456789", None),
]

TEXTS: list[tuple[Any, str | None]] = [
    ("  ACME   GmbH\n Berlin ", "ACME GmbH Berlin"),
    ("INV-2024-0042", "INV-2024-0042"),
    (42, "42"),
    ({"a": 1}, None),
]

PHONES: list[tuple[Any, Any]] = [
    ("(905)889-8000", "9058898000"),
    ("+1 214 528-0197", "+12145280197"),
    ("+49 (0)30 1234567", "+49301234567"),
    ("089/12345-0", "089123450"),
    ("03-1234567 ext. 12", "031234567"),
    ("0192370692", "0192370692"),
    ("Check: 37820", None),  # a neighbouring label and number read as the phone
    ("12/05/2019 10", None),  # a date and an hour
    ("41.50", None),
    ("1234", None),
    ("Hamburger Blue-cheddar", None),
]

CASES: list[tuple[Any, Kind, Any]] = [
    *((raw, "date", v) for raw, v in DATES),
    *((raw, "amount", v) for raw, v in AMOUNTS),
    *((raw, "currency", v) for raw, v in CURRENCIES),
    *((raw, "percent", v) for raw, v in PERCENTS),
    *((raw, "iban", v) for raw, v in IBANS),
    *((raw, "vat_id", v) for raw, v in VAT_IDS),
    *((raw, "text", v) for raw, v in TEXTS),
    *((raw, "phone", v) for raw, v in PHONES),
]


@pytest.mark.parametrize(("raw", "kind", "expected"), CASES, ids=[f"{k}:{r!r}" for r, k, _ in CASES])
def test_real_world_prints(raw: Any, kind: Kind, expected: Any) -> None:
    result = normalize(raw, kind)
    assert result.raw is raw and result.kind == kind
    if expected is None:
        assert (result.status, result.value) == ("unparsed", None)
    else:
        assert result.status == "ok"
        assert result.value == expected
        assert type(result.value) is type(expected)
        if isinstance(expected, Decimal):  # exact, including the printed precision
            assert str(result.value) == str(expected)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("raw", [None, "", "   ", "\u00a0\n"])
def test_absent(raw: Any, kind: Kind) -> None:
    assert normalize(raw, kind) == Normalized(None, raw, "absent", kind)


@pytest.mark.parametrize(
    ("raw", "day_first", "expected"),
    [
        ("03/04/2024", True, "2024-04-03"),
        ("03/04/2024", False, "2024-03-04"),
        ("03/04/2024", None, "2024-04-03"),  # no evidence: day-first, like most of the world
        ("3.4.24", False, "2024-03-04"),
        ("15/03/2024", False, "2024-03-15"),  # a part > 12 beats the flag
        ("03/15/2024", True, "2024-03-15"),
        ("12/12/2024", False, "2024-12-12"),
        ("2024-03-04", False, "2024-03-04"),  # ISO is never ambiguous
        ("4 March 2024", False, "2024-03-04"),
    ],
)
def test_ambiguous_numeric_dates(raw: str, day_first: bool | None, expected: str) -> None:
    assert normalize(raw, "date", day_first=day_first).value == expected


@pytest.mark.parametrize(
    ("raw_dates", "expected"),
    [
        (["15/03/2024"], True),
        (["03/15/2024"], False),
        (["03/04/2024", "25.12.2023"], True),
        (["03/04/2024", "12-25-2023 10:00"], False),
        (["15/03/2024", "03/15/2024"], None),  # contradiction
        (["03/04/2024", "01/02/2024"], None),  # nothing unambiguous
        (["2024-03-15", "15 March 2024"], None),  # ISO and spelled dates say nothing about the order
        (["Due 31/01/2024"], True),
        (["44/55/2024", "99.99.99"], None),  # not dates
        ([], None),
    ],
)
def test_infer_day_first(raw_dates: list[str], expected: bool | None) -> None:
    assert infer_day_first(raw_dates) is expected


@pytest.mark.parametrize(
    ("name", "schema", "expected"),
    [
        ("issue_date", {"type": "string", "format": "date"}, "date"),
        ("total", {"type": "number"}, "amount"),
        ("quantity", {"type": ["integer", "null"]}, "amount"),
        ("tax_rate", {"type": "number"}, "percent"),
        ("discount_percent", {"type": ["number", "null"]}, "percent"),
        ("currency", {"type": "string"}, "currency"),
        ("invoice_currency", {"type": ["string", "null"]}, "currency"),
        ("code", {"type": "string", "pattern": "^[A-Z]{3}$"}, "currency"),
        ("supplier_iban", {"type": "string"}, "iban"),
        ("vat_id", {"type": "string"}, "vat_id"),
        ("supplier_vat_number", {"type": "string"}, "vat_id"),
        ("vat_rate", {"type": "string"}, "text"),
        ("vendor_name", {"type": "string"}, "text"),
        ("phone", {"type": ["string", "null"]}, "phone"),
        ("fax_number", {"type": "string"}, "phone"),
        ("tel", {"type": "string"}, "phone"),
        ("telephone_count", {"type": "integer"}, "amount"),
        ("paid", {"type": "boolean"}, "text"),
        ("reference", {"type": "string", "x-normalize": "amount"}, "amount"),
        ("total", {"type": "number", "x-normalize": "nonsense"}, "amount"),
    ],
)
def test_kind_for(name: str, schema: dict[str, Any], expected: Kind) -> None:
    assert kind_for(name, schema) == expected


@pytest.mark.parametrize(
    ("raw", "kind", "schema", "expected"),
    [
        ("1.234,50", "amount", {"type": "number"}, 1234.5),
        ("1.234", "amount", {"type": ["integer", "null"]}, 1234),
        ("12.50", "amount", {"type": ["number", "integer"]}, 12.5),
        ("12.00", "amount", {"type": "integer"}, 12),
        ("12.50", "amount", {"type": "integer"}, "12.50"),  # does not fit: raw kept
        ("1.234,50", "amount", {"type": "string"}, "1234.50"),
        ("19 %", "percent", {"type": "number"}, 19.0),
        ("15/03/2024", "date", {"type": "string", "format": "date"}, "2024-03-15"),
        ("eur", "currency", {"type": "string"}, "EUR"),
        ("DE89 3704 0044 0532 0130 00", "iban", {"type": "string"}, "DE89370400440532013000"),
        ("31/02/2024", "date", {"type": "string"}, "31/02/2024"),  # unparsed: raw
        (None, "amount", {"type": ["number", "null"]}, None),
    ],
)
def test_json_value(raw: Any, kind: Kind, schema: dict[str, Any], expected: Any) -> None:
    value = json_value(normalize(raw, kind), schema)
    assert value == expected and type(value) is type(expected)


def test_printed_forms_examples() -> None:
    dates = printed_forms("2024-03-04", "date")
    assert dates[0] == "2024-03-04"
    expected = ["04/03/2024", "03/04/2024", "4.3.24", "4 March 2024", "March 4, 2024", "04-Mar-24"]
    expected += ["4. März 2024", "4 mars 2024", "4 maart 2024", "4 de marzo de 2024", "4 Mac 2024"]
    assert set(expected) <= set(dates)
    assert "03/04/2024" not in printed_forms("2024-03-04", "date", day_first=True)
    assert "04/03/2024" not in printed_forms("2024-03-04", "date", day_first=False)
    amounts = printed_forms(D("1234.50"), "amount")
    for form in ("1,234.50", "1.234,50", "1 234,50", "1234.50", "1234,50", "1'234.50"):
        assert form in amounts
    assert {"1,234", "1234", "1.234,00"} <= set(printed_forms(1234, "amount"))
    assert "-12.50" in printed_forms(D("-12.5"), "amount")
    assert "1.234" not in printed_forms(D("1.234"), "amount")  # would read back as 1234
    assert printed_forms("19", "percent")[:2] == ["19%", "19 %"]
    assert "19,0 %" in printed_forms(D("19"), "percent")
    assert printed_forms("EUR", "currency")[:2] == ["EUR", "€"]
    assert printed_forms("DE89370400440532013000", "iban") == [
        "DE89370400440532013000",
        "DE89 3704 0044 0532 0130 00",
    ]
    assert printed_forms("ACME  GmbH", "text") == ["ACME GmbH"]
    assert printed_forms("31/02/2024", "date") == []
    samples: list[tuple[Any, Kind]] = [
        ("2024-03-04", "date"), ("1.50", "amount"), ("$", "currency"), ("7%", "percent"),
        ("NL91ABNA0417164300", "iban"), ("DE136695976", "vat_id"), ("ACME", "text"),
    ]  # fmt: skip
    for value, kind in samples:
        forms = printed_forms(value, kind)
        assert forms and len(forms) == len(set(forms))


# --------------------------------------------------------------------------------------------------------
# properties

# The test's own month names (not the implementation's), one full spelling per language.
MONTH_NAMES = {
    "en": "January February March April May June July August September October November December",
    "de": "Januar Februar März April Mai Juni Juli August September Oktober November Dezember",
    "fr": "janvier février mars avril mai juin juillet août septembre octobre novembre décembre",
    "nl": "januari februari maart april mei juni juli augustus september oktober november december",
    "es": "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre",
    "it": "gennaio febbraio marzo aprile maggio giugno luglio agosto settembre ottobre novembre dicembre",
    "ms": "Januari Februari Mac April Mei Jun Julai Ogos September Oktober November Disember",
}
EN_ABBR = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

NUMERIC_FORMS: list[tuple[Callable[[date], str], bool | None]] = [
    (lambda d: d.strftime("%Y-%m-%d"), None),
    (lambda d: d.strftime("%Y/%m/%d"), None),
    (lambda d: d.strftime("%Y%m%d"), None),
    (lambda d: d.strftime("%d/%m/%Y"), True),
    (lambda d: d.strftime("%d.%m.%y"), True),
    (lambda d: f"{d.day}-{d.month}-{d.year}", True),
    (lambda d: f"{d.day} {d.month} {d.year % 100:02d}", True),
    (lambda d: d.strftime("%m/%d/%Y"), False),
    (lambda d: f"{d.month}/{d.day}/{d.year % 100:02d}", False),
    (lambda d: d.strftime("%m-%d-%Y 10:30:00 AM"), False),
]
dates = st.dates(min_value=date(1990, 1, 1), max_value=date(2040, 12, 31))


@settings(max_examples=150, deadline=None)
@given(dates)
def test_numeric_dates_round_trip(d: date) -> None:
    for form, day_first in NUMERIC_FORMS:
        assert normalize(form(d), "date", day_first=day_first).value == d.isoformat(), form(d)


@settings(max_examples=150, deadline=None)
@given(dates, st.sampled_from(sorted(MONTH_NAMES)))
def test_spelled_dates_round_trip(d: date, language: str) -> None:
    name = MONTH_NAMES[language].split()[d.month - 1]
    short = EN_ABBR[d.month - 1]
    forms = [
        f"{d.day} {name} {d.year}",
        f"{d.day:02d}. {name} {d.year}",
        f"{name} {d.day}, {d.year}",
        f"{d.day} de {name} de {d.year}",
        f"{name.upper()} {d.day}th {d.year}",
        f"{d.day:02d}-{short}-{d.year % 100:02d}",
        f"{d.strftime('%A')}, {short} {d.day}, {d.year}",
    ]
    for form in forms:
        assert normalize(form, "date", day_first=False).value == d.isoformat(), form


CONVENTIONS = [(",", "."), (".", ","), (" ", ","), ("\u00a0", ","), ("'", "."), ("", "."), ("", ",")]


def _format(value: Decimal, thousands: str, decimal: str) -> str:
    whole, frac = f"{abs(value):.2f}".split(".")
    groups = [whole[max(i - 3, 0) : i] for i in range(len(whole), 0, -3)][::-1]
    return thousands.join(groups) + decimal + frac


amounts = st.decimals(min_value=-(10**7), max_value=10**7, places=2, allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(amounts, st.sampled_from(["{}", "€{}", "{} EUR", "USD {}", "{} zł"]))
def test_amounts_round_trip(value: Decimal, template: str) -> None:
    for thousands, decimal in CONVENTIONS:
        printed = _format(value, thousands, decimal)
        negatives = [f"-{printed}", f"({printed})", f"{printed}-", f"{printed} CR"]
        for signed in negatives if value < 0 else [printed]:
            parsed = normalize(template.format(signed), "amount").value
            assert parsed == value and parsed.as_tuple().exponent == -2, signed


@settings(max_examples=60, deadline=None)
@given(dates)
def test_printed_dates_read_back(d: date) -> None:
    iso = d.isoformat()
    for day_first in (True, False):
        for form in printed_forms(iso, "date", day_first=day_first):
            assert normalize(form, "date", day_first=day_first).value == iso, form
    for form in printed_forms(iso, "date"):
        assert iso in {normalize(form, "date", day_first=f).value for f in (True, False)}, form


@settings(max_examples=150, deadline=None)
@given(st.one_of(amounts, st.decimals(min_value=-(10**6), max_value=10**6, places=3)))
def test_printed_amounts_read_back(value: Decimal) -> None:
    forms = printed_forms(value, "amount")
    assert len(forms) == len(set(forms))
    # 1.234 (three decimals, integer part 1-999) reads as thousands in every print: no form reads back.
    assert forms or (value.as_tuple().exponent == -3 and 1 <= abs(value) < 1000)
    for form in forms:
        assert normalize(form, "amount").value == value, form


@settings(max_examples=100, deadline=None)
@given(st.decimals(min_value=-100, max_value=100, places=2))
def test_printed_percents_read_back(value: Decimal) -> None:
    for form in printed_forms(value, "percent"):
        assert normalize(form, "percent").value == value, form


@pytest.mark.parametrize(("raw", "kind"), [(raw, k) for raw, k, v in CASES if v is not None])
def test_printed_forms_of_every_case_read_back(raw: Any, kind: Kind) -> None:
    value = normalize(raw, kind).value
    for form in printed_forms(value, kind):
        readings = {normalize(form, kind, day_first=f).value for f in (True, False)}
        assert value in readings, form


# Text that looks like what OCR and engines print (digits, separators, signs, currency, letters), and any
# text at all: reading is total, an unreadable value is unparsed, never an exception.
printish = st.text(alphabet="0123456789.,' -()%€$£:/CRDEUAPMIBNTVX\u00a0\u2212", max_size=30)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(printish, st.text(max_size=40)), st.sampled_from(KINDS), st.sampled_from([None, True, False])
)
def test_normalize_never_raises(raw: str, kind: Kind, day_first: bool | None) -> None:
    n = normalize(raw, kind, day_first=day_first)
    assert n.status in ("ok", "unparsed", "absent")
    assert (n.value is None) == (n.status != "ok")
