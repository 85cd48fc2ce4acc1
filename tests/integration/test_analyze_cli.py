"""``docextract analyze``: the text map as JSON or text, and overlays a person can look at."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from PIL import Image

from app.cli import main
from tests.documents import invoice_pdf


def run(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    env = {
        "DOCEXTRACT_DATA_DIR": str(tmp_path),
        "DOCEXTRACT_LOG_LEVEL": "WARNING",
        "DOCEXTRACT_OCR_EXECUTOR": "thread",
    }
    result = CliRunner().invoke(main, ["analyze", *args], env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_json_text_and_overlays(tmp_path: Path) -> None:
    pdf, drawn = invoice_pdf(pages=2)
    file = tmp_path / "invoice.pdf"
    file.write_bytes(pdf)
    code, out, _ = run(tmp_path, str(file), "--pages", "2")
    assert code == 0
    data = json.loads(out)
    assert [p["number"] for p in data["pages"]] == [2]
    assert [w["text"] for w in data["pages"][0]["words"]] == [d.text for d in drawn if d.page == 2]

    code, out, _ = run(tmp_path, str(file), "--text", "--pages", "1")
    assert code == 0 and "Invoice No. INV-2024-0042" in out and "--- page 1 (born_digital" in out

    overlay = tmp_path / "look.png"
    code, _, err = run(tmp_path, str(file), "--overlay", str(overlay))
    assert code == 0
    pictures = sorted(tmp_path.glob("look-*.png"))
    assert [p.name for p in pictures] == ["look-1.png", "look-2.png"] and "overlay:" in err
    with Image.open(pictures[0]) as image:
        assert image.size == (1653, 2339)
        # Something was drawn in colour on a black-and-white page.
        _, high = image.convert("HSV").getchannel("S").getextrema()
        assert isinstance(high, int) and high > 100

    code, _, _ = run(tmp_path, str(file), "--pages", "1", "--overlay", str(overlay))
    assert code == 0 and overlay.exists()  # one page: exactly the name asked for


def test_problems_are_messages(tmp_path: Path) -> None:
    file = tmp_path / "notes.txt"
    file.write_text("not a document")
    code, _, err = run(tmp_path, str(file))
    assert code == 1 and "not a PDF, PNG, JPEG, TIFF, WebP or XML" in err
    pdf, _ = invoice_pdf()
    file.write_bytes(pdf)
    code, _, err = run(tmp_path, str(file), "--pages", "5")
    assert code == 1 and "outside the document's pages 1-1" in err
