"""``docextract extract`` as a person or a script runs it: one file or several and folders, a
registered schema or a schema file, stdout for results only, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.cli import documents as cli_documents
from app.cli import main
from app.einvoice import ubl, xsd
from app.einvoice.xml import parse_xml
from tests.documents import invoice_pdf
from tests.einvoice_factory import facturx_pdf, german_sample

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schemas" / "invoice.json"


def run(tmp_path: Path, *args: str, level: str = "INFO") -> tuple[int, str, str]:
    """The command with the layout engine (no model) and logs at INFO: none may reach stdout."""
    env = {
        "DOCEXTRACT_DATA_DIR": str(tmp_path / "data"),
        "DOCEXTRACT_LOG_LEVEL": level,
        "DOCEXTRACT_OCR_EXECUTOR": "thread",
        "DOCEXTRACT_ENGINE": "layout",
    }
    result = CliRunner().invoke(main, ["extract", *args], env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def documents(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Two invoices (one in a folder, beside a file that is no document) and a broken ``.pdf``."""
    pdf, _ = invoice_pdf()
    one = tmp_path / "one.pdf"
    one.write_bytes(pdf)
    folder = tmp_path / "inbox"
    folder.mkdir()
    (folder / "two.pdf").write_bytes(pdf)
    (folder / "notes.txt").write_text("not a document, not picked up")
    broken = tmp_path / "broken.pdf"
    broken.write_text("not a PDF at all")
    return one, folder, broken


def test_one_file_with_a_schema_file_prints_the_result_alone(tmp_path: Path) -> None:
    one, _, _ = documents(tmp_path)
    code, out, err = run(tmp_path, str(one), "--schema", str(SCHEMA_FILE))
    assert code == 0, err
    result = json.loads(out)  # the whole of stdout: no log line mixed in
    assert result["schema"]["name"] == "invoice" and result["data"]["invoice_number"] == "INV-2024-0042"
    assert result["timings_ms"]["total"] >= result["timings_ms"]["trust"]
    assert err == ""  # not a terminal: no progress


def test_a_terminal_sees_each_stage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    one, _, _ = documents(tmp_path)
    monkeypatch.setattr(cli_documents, "_stderr_is_terminal", lambda: True)
    code, out, err = run(tmp_path, str(one), "--schema", str(SCHEMA_FILE), level="WARNING")
    assert code == 0 and json.loads(out)
    shown = [part.removeprefix("\x1b[K") for part in err.split("\r") if part.removeprefix("\x1b[K")]
    assert shown == ["one.pdf: opening", "one.pdf: reading page 1/1", "one.pdf: checking"]


def test_several_files_and_a_folder_as_json_lines(tmp_path: Path) -> None:
    one, folder, broken = documents(tmp_path)
    code, out, err = run(
        tmp_path, str(one), str(folder), str(broken), "--schema", str(SCHEMA_FILE), level="WARNING"
    )
    assert code == 1  # one document failed
    rows = [json.loads(line) for line in out.splitlines()]
    assert [row["file"] for row in rows] == [str(one), str(folder / "two.pdf")]
    assert all(row["data"]["invoice_number"] == "INV-2024-0042" for row in rows)
    lines = err.splitlines()
    assert (
        len(lines) == 3 and lines[0].startswith(f"{one}: ") and lines[1].startswith(f"{folder / 'two.pdf'}: ")
    )
    assert lines[2].startswith(f"{broken}: error: ") and "not a PDF, PNG, JPEG, TIFF, WebP or XML" in lines[2]

    code, out, _ = run(tmp_path, str(one), str(folder), "--schema", str(SCHEMA_FILE), "--export", "json")
    assert code == 0
    assert [set(json.loads(line)) for line in out.splitlines()] == [{"file", "data"}] * 2


def test_out_dir_writes_one_file_per_document(tmp_path: Path) -> None:
    one, folder, _ = documents(tmp_path)
    target = tmp_path / "results"
    code, out, err = run(
        tmp_path, str(one), str(folder), "--schema", str(SCHEMA_FILE), "--out-dir", str(target)
    )
    assert code == 0 and out == ""
    assert sorted(p.name for p in target.iterdir()) == ["one.json", "two.json"]
    assert json.loads((target / "one.json").read_text())["data"]["invoice_number"] == "INV-2024-0042"
    assert f"wrote {target / 'two.json'}" in err
    code, _, err = run(
        tmp_path,
        str(one),
        "--schema",
        str(SCHEMA_FILE),
        "--export",
        "json",
        "--out-dir",
        str(target / "data"),
    )
    assert (
        code == 0
        and json.loads((target / "data" / "one.json").read_text())["invoice_number"] == "INV-2024-0042"
    )


def test_problems_are_one_line_messages(tmp_path: Path) -> None:
    one, folder, broken = documents(tmp_path)
    code, _, err = run(tmp_path, str(one), "--schema", "no_such_schema", level="WARNING")
    assert code == 1 and err.startswith("Error: ") and "no_such_schema" in err and "Traceback" not in err
    code, _, err = run(tmp_path, str(one), "--schema", "./missing.schema.json")
    assert code == 1 and "Cannot read the schema file missing.schema.json" in err
    code, _, err = run(tmp_path, str(broken), "--schema", str(SCHEMA_FILE), level="WARNING")
    assert code == 1 and err.strip().splitlines() == [err.strip()] and "not a PDF" in err
    code, _, err = run(
        tmp_path, str(one), "--schema", str(SCHEMA_FILE), "--engine", "sglang", level="WARNING"
    )
    assert code == 1 and err.startswith("Error: ") and "Traceback" not in err and "engine" in err.lower()
    code, _, err = run(tmp_path, str(one), str(folder), "--schema", str(SCHEMA_FILE), "--out", "x.json")
    assert code == 2 and "--out-dir" in err
    code, _, err = run(tmp_path, str(one), str(folder), "--schema", str(SCHEMA_FILE), "--export", "ubl")
    assert code == 2 and "needs --out-dir" in err
    (tmp_path / "empty").mkdir()
    code, _, err = run(tmp_path, str(tmp_path / "empty"), "--schema", str(SCHEMA_FILE))
    assert code == 2 and "holds no documents" in err


def test_a_registered_schema_by_name(tmp_path: Path) -> None:
    """The default SQLite database in the data directory, with the built-ins loaded on first use."""
    one, _, _ = documents(tmp_path)
    code, out, err = run(tmp_path, str(one), "--schema", "invoice@1")
    assert code == 0, err
    assert all("event" in json.loads(line) for line in err.splitlines())  # not a terminal: JSON logs
    schema = json.loads(out)["schema"]
    assert (schema["name"], schema["version"]) == ("invoice", 1)


def test_an_e_invoice_is_exported_as_ubl_on_stdout(tmp_path: Path) -> None:
    """The issue's own command: ``docextract extract invoice.pdf --schema invoice --export ubl``."""
    sample = german_sample()
    pdf = tmp_path / "rechnung.pdf"
    pdf.write_bytes(facturx_pdf(sample))
    code, out, err = run(tmp_path, str(pdf), "--schema", "invoice", "--export", "ubl", level="WARNING")
    assert code == 0, err
    assert err.strip() == "succeeded"  # the status on stderr, the document alone on stdout
    root = parse_xml(out.encode())
    assert xsd.validate(root) == []
    invoice = ubl.read(root)
    assert invoice.terms["BT-1"].value == sample.number
    assert invoice.terms["BT-112"].value == str(sample.grand_total)
    assert len(invoice.lines) == len(sample.lines)
