"""The eval set generator (bench/generate_eval_set.py): its truth must be right, or every accuracy it
measures is wrong. Six PDFs (no scans: fast), one of each language, three invoices and three receipts."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pymupdf
import pytest

from bench.generate_eval_set import INVOICE_CLASSES, LAYOUTS, RECEIPT_CLASSES, generate, iban_valid


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    out = tmp_path_factory.mktemp("genset")
    generate(out, 6, seed=7, images=False)
    return out, json.loads((out / "_manifest.json").read_text())["documents"]


def _truth(out: Path, entry: dict[str, Any]) -> dict[str, Any]:
    truth: dict[str, Any] = json.loads((out / f"{entry['id']}.json").read_text())
    return truth


def _page_text(path: Path) -> str:
    with pymupdf.open(path) as doc:
        return re.sub(r"\s+", " ", " ".join(page.get_text() for page in doc))


def test_every_truth_validates_against_the_written_schema(
    generated: tuple[Path, list[dict[str, Any]]],
) -> None:
    out, entries = generated
    schema = json.loads((out / "schema.json").read_text())
    assert schema["x-checks"] == [
        {"name": "sum_ok", "expr": "subtotal + tax_total == total", "tolerance": 0.01}
    ]
    assert schema["properties"]["iban"]["x-compare"] == "id"
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    assert len(entries) == 6
    for entry in entries:
        truth = _truth(out, entry)
        validator.validate(truth)
        assert set(truth) <= set(schema["properties"])
        assert None not in truth.values()  # a field not on the page is left out, not null


def test_subtotal_plus_tax_is_the_total_to_the_cent(generated: tuple[Path, list[dict[str, Any]]]) -> None:
    out, entries = generated
    for entry in entries:
        truth = _truth(out, entry)
        subtotal, tax, total = (Decimal(str(truth[k])) for k in ("subtotal", "tax_total", "total"))
        assert subtotal + tax == total, entry["id"]
        assert tax > 0 and subtotal > 0


def test_every_truth_value_is_printed_on_its_page(generated: tuple[Path, list[dict[str, Any]]]) -> None:
    out, entries = generated
    for entry in entries:
        truth, text = _truth(out, entry), _page_text(out / entry["file"])
        assert set(entry["printed"]) == set(truth), entry["id"]
        for name, printed in entry["printed"].items():
            assert printed in text, (entry["id"], name, printed)
        if "iban" in truth:
            assert iban_valid(truth["iban"])


def test_printed_forms_follow_the_language(generated: tuple[Path, list[dict[str, Any]]]) -> None:
    out, entries = generated
    by_lang = {e["lang"]: e for e in entries}
    assert set(by_lang) == {"en", "de", "fr", "es", "it", "nl"}
    assert sorted(e["kind"] for e in entries) == ["invoice"] * 3 + ["receipt"] * 3
    for lang, entry in by_lang.items():
        truth, printed = _truth(out, entry), entry["printed"]
        cents = f"{Decimal(str(truth['total'])):.2f}"[-3:]
        assert printed["total"].endswith(cents if lang == "en" else cents.replace(".", ","))
        year, month, day = truth["issue_date"].split("-")
        assert {year, month, day} <= set(re.split(r"[./-]", printed["issue_date"]))


def test_the_manifest_lists_one_to_three_classes_one_label_placement_first(
    generated: tuple[Path, list[dict[str, Any]]],
) -> None:
    out, entries = generated
    for entry in entries:
        classes = entry["classes"]
        assert 1 <= len(classes) <= 3 and len(set(classes)) == len(classes)
        assert classes[0] in LAYOUTS and not set(classes[1:]) & set(LAYOUTS)
        pool = RECEIPT_CLASSES if entry["kind"] == "receipt" else INVOICE_CLASSES
        assert set(classes[1:]) <= set(pool)  # no 'image': --no-images
        assert entry["file"].endswith(".pdf") and (out / entry["file"]).is_file()
        truth = _truth(out, entry)
        assert ("due_date" in truth) == ("due_date" in classes)
        assert ("iban" in truth) == ("iban" in classes)


def test_the_same_seed_gives_the_same_files_and_another_seed_other_ones(tmp_path: Path) -> None:
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        generate(tmp_path / name, 2, seed=seed, images=False)
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files)
    truths = [json.loads((tmp_path / d / "000-invoice-en.json").read_text()) for d in ("a", "c")]
    assert truths[0] != truths[1]


VAT_LINE = re.compile(r"(?:VAT No\.|USt-IdNr\.|N° TVA|NIF|P\. IVA|BTW-nr\.) (\S+)")


def test_senders_print_their_documents_alike_with_other_values(tmp_path: Path) -> None:
    """``--senders``: each sender's documents share its name, VAT id and labels; their values (and
    so where the totals stand) differ."""
    entries = generate(tmp_path, 3, seed=5, images=False, senders=2)
    assert [e["sender"] for e in entries] == [0, 0, 0, 1, 1, 1]
    for sender in (0, 1):
        mine = [e for e in entries if e["sender"] == sender]
        truths = [_truth(tmp_path, e) for e in mine]
        assert len({t["seller_name"] for t in truths}) == 1
        assert len({t["total"] for t in truths}) == 3
        texts = [_page_text(tmp_path / e["file"]) for e in mine]
        vat_ids = {m[1] if (m := VAT_LINE.search(text)) else None for text in texts}
        assert len(vat_ids) == 1  # the same on every document, or none on any
    assert _truth(tmp_path, entries[0])["seller_name"] != _truth(tmp_path, entries[3])["seller_name"]
