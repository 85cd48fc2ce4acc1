"""Sender memory (``app.memory``) on invoices drawn in code: who sent a document (VAT id, IBAN,
name, layout; not the customer's VAT id), what an approved document teaches and how the next
document of the same sender is read with it, by the layout engine (as its strongest candidate) and
as a cross-check of a model engine's answer (here the replay engine)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pymupdf
import pytest

from app.documents.analyze import AnalyzeOptions
from app.documents.service import DocumentAnalyzer
from app.documents.textmap import PageMap
from app.engines.layout import LayoutEngine
from app.engines.replay import ReplayEngine
from app.extraction.service import Extractor
from app.lib.canonical import canonical_sha256
from app.lib.settings import OcrSettings
from app.memory.identity import identify, matches
from app.memory.profile import Profile, learn, recall
from app.memory.service import MemoryLookup
from app.registry.service import SchemaVersion
from tests.conftest import make_settings

SELLER_VAT = "DE136695976"
OTHER_VAT = "DE945807302"
CUSTOMER_VAT = "DE610007018"
IBAN = "DE89 3704 0044 0532 0130 00"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "invoice_number": {"type": ["string", "null"]},
        "issue_date": {"type": ["string", "null"], "format": "date"},
        "total": {"type": ["number", "null"]},
    },
}


def invoice(
    number: str, day: str, items: list[tuple[str, str]], total: str, *, seller: str = "Nordlicht Handels GmbH"
) -> bytes:
    """One page: the seller's letterhead with its VAT id, the customer's VAT id, the number and
    date, an item table, and the total beside a label no lexicon knows ("Remit this sum"), which
    stands lower the more items there are."""
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    vat = SELLER_VAT if seller.startswith("Nordlicht") else OTHER_VAT
    lines = [
        (50, 60, seller),
        (50, 74, "Hafenstrasse 3, 20457 Hamburg"),
        (50, 88, f"USt-IdNr.: {vat}"),
        (350, 60, "Invoice No.:"),
        (450, 60, number),
        (350, 74, "Invoice Date:"),
        (450, 74, day),
        (50, 130, f"Your VAT no.: {CUSTOMER_VAT}"),
        (50, 170, "Description"),
        (450, 170, "Amount"),
    ]
    y = 184
    for text, amount in items:
        lines += [(50, y, text), (450, y, amount)]
        y += 14
    lines += [(300, y + 30, "Remit this sum"), (450, y + 30, total), (50, 780, f"IBAN {IBAN}")]
    for x, line_y, text in lines:
        page.insert_text((x, line_y), text, fontsize=10, fontname="helv")
    return bytes(doc.tobytes())


FIRST = invoice("NL-4711", "14.03.2024", [("Rope, 20 m", "40.00"), ("Hooks", "79.00")], "119.00")
SECOND = invoice(
    "NL-4790",
    "02.05.2024",
    [("Rope, 20 m", "40.00"), ("Hooks", "60.00"), ("Chain", "95.50"), ("Shackle", "12.00")],
    "207.50",
)
STRANGER = invoice("77-1", "02.05.2024", [("Paint", "30.00")], "30.00", seller="Farbenwerk Berger KG")


def version() -> SchemaVersion:
    return SchemaVersion(
        name="memo",
        version=1,
        description=None,
        schema=SCHEMA,
        sha256=canonical_sha256(SCHEMA),  # compiled schemas are cached by it
        source="file",
        created_at=datetime.now(UTC),
        deprecated_at=None,
        latest_version=1,
    )


@pytest.fixture
def analyzer(tmp_path: Path) -> DocumentAnalyzer:
    return DocumentAnalyzer(make_settings(tmp_path, None, ocr=OcrSettings(enabled=False)))


async def pages(analyzer: DocumentAnalyzer, data: bytes) -> list[PageMap]:
    return (await analyzer.analyze(data, AnalyzeOptions(ocr=False, layout=False))).map.pages


async def approved_profile(analyzer: DocumentAnalyzer) -> Profile:
    """The first invoice read by the layout engine, its total corrected by a reviewer (the
    corrected value has no evidence: learning finds it on the page), then learnt."""
    extractor = Extractor(LayoutEngine(), analyzer, max_tokens=4096, page_concurrency=2)
    result = (await extractor.extract(FIRST, version())).result
    result["data"]["total"] = 119.0
    result["fields"]["/total"] = {
        "normalized": {"kind": "amount", "status": "ok"},
        "evidence": [],
        "source": "reviewer",
    }
    return learn(await pages(analyzer, FIRST), result)


def lookup_of(profile: Profile) -> MemoryLookup:
    async def lookup(page: PageMap) -> Profile | None:
        return profile

    return lookup


async def test_identities_are_the_sellers_codes_name_and_layout_not_the_customers(
    analyzer: DocumentAnalyzer,
) -> None:
    first, second = identify(await pages(analyzer, FIRST)), identify(await pages(analyzer, SECOND))
    assert first[:2] == [f"vat:{SELLER_VAT}", "iban:DE89370400440532013000"]  # strong ones first
    assert "name:nordlicht handels gmbh" in first
    assert any(i.startswith("layout:") for i in first)
    assert f"vat:{CUSTOMER_VAT}" not in first  # "Your VAT no.": the customer's
    assert first == second  # same sender, same template, other values
    assert matches(first, second) > 0
    stranger = identify(await pages(analyzer, STRANGER))
    assert f"vat:{OTHER_VAT}" in stranger and "name:farbenwerk berger kg" in stranger
    # Its own VAT id, none shared: another sender, even with the same template and IBAN.
    assert matches(first, stranger) == 0
    # Without a code, a name matches only once an approval confirmed it as the seller's: a receipt's
    # title ("Ticket de caisse") is printed by every shop of a template.
    name, layout = "name:nordlicht handels gmbh", "layout:rechnung@2 kunde@0"
    assert matches(["seller:nordlicht handels gmbh", name, layout], [name, layout]) == 2
    assert matches([name, layout], [name, layout]) == 0
    title = ["name:ticket de caisse", "layout:date@0 fournisseur@0"]
    assert matches(["vat:FR82509498796", *title], title) == 0


def test_a_shared_code_under_another_name_and_layout_is_another_sender() -> None:
    """A customer's own VAT id (or a payment provider's IBAN) on every supplier's invoice must not
    make them one sender."""
    remembered = ["vat:DE1", "name:nordlicht handels gmbh", "layout:a"]
    assert matches(remembered, ["vat:DE1", "name:farbenwerk berger kg", "layout:b"]) == 0
    assert matches(remembered, ["vat:DE1", "name:nordlicht handels gmbh", "layout:b"]) > 0
    assert matches(remembered, ["vat:DE1"]) > 0
    # A receipt with no VAT id and too few labels for a layout: found by its shop's name only when
    # an approved review confirmed that the name at its top is the seller's.
    shop = ["name:ijzerhandel smit"]
    assert matches(["seller:ijzerhandel smit", *shop], shop) == 1
    assert matches(shop, shop) == 0
    assert matches(["seller:ijzerhandel smit", *shop], [*shop, "vat:NL1"]) == 1
    assert matches(["seller:ijzerhandel smit", *shop, "vat:NL2"], [*shop, "vat:NL1"]) == 0


async def test_learnt_places_are_recalled_on_the_next_document_where_the_values_moved(
    analyzer: DocumentAnalyzer,
) -> None:
    profile = await approved_profile(analyzer)
    total = profile["fields"]["/total"]
    assert (total["label"], total["relation"], total["value"]) == ("remit this sum", "right", "119.00")
    assert total["format"] == ".2"
    assert profile["fields"]["/issue_date"]["format"] == "99.99.9999"
    recalled = recall(profile, await pages(analyzer, SECOND))
    assert recalled["/total"].text == "207.50"  # two rows lower, another value: still found
    assert recalled["/total"].score >= 0.9 and recalled["/total"].anchor == "label"
    assert recalled["/invoice_number"].text == "NL-4790"
    assert recalled["/issue_date"].text == "02.05.2024"
    assert recalled["/total"].bbox[1] > 0.27  # where the second invoice prints it, not the first


async def test_the_layout_engine_reads_the_remembered_value_first(analyzer: DocumentAnalyzer) -> None:
    extractor = Extractor(LayoutEngine(), analyzer, max_tokens=4096, page_concurrency=2)
    plain = (await extractor.extract(SECOND, version())).result
    assert plain["data"]["total"] != 207.5  # "Remit this sum" is no label the engine knows
    profile = await approved_profile(analyzer)
    result = (await extractor.extract(SECOND, version(), memory=lookup_of(profile))).result
    assert result["data"]["total"] == 207.5
    total = result["fields"]["/total"]
    assert total["components"]["source"] == "sender_memory"
    assert "sender_memory" in total["corroborated_by"]
    assert not [r for r in result["review"]["reasons"] if r.endswith("/total")]
    assert plain["fields"]["/total"]["components"].get("source", "engine") == "engine"


async def test_a_model_engines_answer_is_cross_checked(analyzer: DocumentAnalyzer, tmp_path: Path) -> None:
    profile = await approved_profile(analyzer)

    async def read(total: float) -> dict[str, Any]:
        answer = {"invoice_number": "NL-4790", "issue_date": "02.05.2024", "total": total}
        (tmp_path / "second.json").write_text(json.dumps(answer))
        extractor = Extractor(ReplayEngine(tmp_path), analyzer, max_tokens=4096, page_concurrency=2)
        extraction = await extractor.extract(
            SECOND, version(), document_id="second", memory=lookup_of(profile)
        )
        return extraction.result

    agreeing = await read(207.5)
    assert "sender_memory" in agreeing["fields"]["/total"]["corroborated_by"]
    assert agreeing["fields"]["/total"]["components"].get("source", "engine") == "engine"
    assert "sender_memory:/total" not in agreeing["review"]["reasons"]
    disagreeing = await read(95.5)  # an item's amount, read as the total
    assert "sender_memory:/total" in disagreeing["review"]["reasons"]
    assert disagreeing["status"] == "needs_review"
    assert "sender_memory" not in disagreeing["fields"]["/total"]["corroborated_by"]
