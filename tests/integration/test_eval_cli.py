"""``docextract eval`` and ``docextract calibrate`` on generated documents with ground truth,
replayed through the replay engine (no model needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pymupdf
from click.testing import CliRunner, Result
from PIL import Image

from app.cli import main

SCHEMA = {
    "type": "object",
    "properties": {
        "invoice_number": {"type": ["string", "null"], "x-compare": "id"},
        "date": {"type": ["string", "null"], "format": "date"},
        "seller": {"type": ["string", "null"]},
        "currency": {"type": ["string", "null"]},
        "subtotal": {"type": ["number", "null"]},
        "tax": {"type": ["number", "null"]},
        "total": {"type": ["number", "null"]},
        "iban": {"type": ["string", "null"]},
    },
    "required": ["invoice_number", "date", "seller", "currency", "subtotal", "tax", "total", "iban"],
    "x-checks": [{"name": "sum", "expr": "subtotal + tax == total", "tolerance": 0.01}],
}


def make_document(folder: Path, number: int) -> None:
    total = 100 + number
    lines = [
        f"ACME Supplies {number} GmbH",
        f"Invoice No. INV-{number:04d}",
        f"Date {number + 1:02d}.03.2024",
        f"Net EUR {total - 19:.2f}",
        "VAT EUR 19.00",
        f"Total EUR {total:,.2f}",
        "IBAN DE89 3704 0044 0532 0130 00",
    ]
    doc = pymupdf.open()
    page = doc.new_page()
    for i, text in enumerate(lines):
        page.insert_text((60, 80 + 18 * i), text, fontsize=11)
    (folder / f"inv{number}.pdf").write_bytes(doc.tobytes())
    truth = {
        "invoice_number": f"INV-{number:04d}",
        "date": f"2024-03-{number + 1:02d}",
        "seller": f"ACME Supplies {number} GmbH",
        "currency": "EUR",
        "subtotal": total - 19.0,
        "tax": 19.0,
        "total": float(total),
        "iban": "DE89370400440532013000",
    }
    (folder / f"inv{number}.json").write_text(json.dumps(truth))


def schema_file(tmp_path: Path) -> Path:
    path = tmp_path / "invoice.schema.json"
    path.write_text(json.dumps(SCHEMA))
    return path


def run(tmp_path: Path, *args: str) -> Result:
    env = {
        "DOCEXTRACT_DATA_DIR": str(tmp_path / "data"),
        "DOCEXTRACT_LOG_LEVEL": "WARNING",
        "DOCEXTRACT_OCR_EXECUTOR": "thread",
    }
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_eval_and_calibrate_with_the_replay_engine(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for number in range(1, 4):
        make_document(docs, number)
    out, diagram = tmp_path / "report.json", tmp_path / "reliability.png"
    result = run(
        tmp_path,
        "eval",
        str(docs),
        "--schema",
        str(schema_file(tmp_path)),
        "--engine",
        "replay",
        "--out",
        str(out),
        "--diagram",
        str(diagram),
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    summary = report["summary"]
    assert summary["documents"] == 3 and summary["fields"] == 24
    assert (
        summary["accuracy"] == 1.0
        and summary["document_accuracy"] == 1.0
        and summary["schema_valid_rate"] == 1.0
    )
    assert summary["evidence_recall"] == 1.0
    # 7 of 8 fields: the seller's name, printed with no label, always goes to a person
    assert summary["auto_accepted_share"] == 0.875 and summary["auto_accepted_error_rate"] == 0.0
    assert set(summary["per_field"]) == {f"/{name}" for name in SCHEMA["properties"]}
    assert all(d["status"] == "needs_review" for d in report["documents"].values())
    with Image.open(diagram) as image:
        assert image.size[0] > 100
    calibrated = run(tmp_path, "calibrate", str(out))
    assert calibrated.exit_code == 0, calibrated.output
    assert (tmp_path / "data" / "calibration" / "replay.json").is_file()
    assert "ECE" in calibrated.output


def test_eval_catches_a_corrupted_value(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    make_document(docs, 1)
    truth = json.loads((docs / "inv1.json").read_text())
    recordings = tmp_path / "recorded"
    recordings.mkdir()
    (recordings / "inv1.json").write_text(json.dumps({**truth, "total": 109.0}))  # printed: 101.00
    result = run(
        tmp_path,
        "eval",
        str(docs),
        "--schema",
        str(schema_file(tmp_path)),
        "--engine",
        "replay",
        "--replay-dir",
        str(recordings),
        "--out",
        str(tmp_path / "r.json"),
        "--diagram",
        str(tmp_path / "d.png"),
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    total = next(f for f in report["fields"] if f["pointer"] == "/total")
    assert total["correct"] is False and total["flagged"] is True
    reasons = report["documents"]["inv1"]["reasons"]
    assert "ungrounded:/total" in reasons and "check_failed:sum" in reasons


def test_eval_over_several_sets_leaves_each_one_out(tmp_path: Path) -> None:
    """Two families in one run: a report per set, and the leave-one-set-out table, each set
    replaying its own recordings."""
    folders = []
    for name, numbers in (("invoices_a", range(1, 4)), ("invoices_b", range(4, 6))):
        folder = tmp_path / name
        folder.mkdir()
        for number in numbers:
            make_document(folder, number)
        folders.append(str(folder))
    schema = str(schema_file(tmp_path))
    out_dir = tmp_path / "reports"
    args = ["eval", *folders, "--schema", schema, "--engine", "replay", "--out-dir", str(out_dir)]
    result = run(tmp_path, *args)
    assert result.exit_code == 0, result.output
    a = json.loads((out_dir / "invoices_a.json").read_text())
    b = json.loads((out_dir / "invoices_b.json").read_text())
    assert (a["summary"]["documents"], b["summary"]["documents"]) == (3, 2)
    assert a["summary"]["accuracy"] == b["summary"]["accuracy"] == 1.0
    assert (out_dir / "invoices_b.png").is_file()
    rows = [line for line in result.output.splitlines() if line.startswith("| invoices_")]
    assert [row.split(" | ")[0] for row in rows] == ["| invoices_a", "| invoices_b"]
    assert rows[1].split(" | ")[1:3] == ["16", "1.0"]  # 2 documents x 8 fields, all right
    wrong = run(tmp_path, "eval", *folders, "--schema", schema, "--schema", schema, "--schema", schema)
    assert wrong.exit_code == 2 and "once per DOCS_DIR" in wrong.output
