"""``POST /documents/analyze`` over HTTP: the text map, its options, and every refusal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.lib.settings import IngestSettings, OcrSettings
from app.server.core import create_app
from tests.conftest import make_settings
from tests.documents import (
    ZERO_PAGE_PDF,
    encrypted_pdf,
    invoice_pdf,
    pdf_with_text_picture,
    pdf_with_xml_attachment,
    png_header_only,
    rasterise,
)
from tests.helpers import assert_problem

Client = AsyncTestClient[Litestar]
PDF, DRAWN = invoice_pdf(pages=3)


@pytest.fixture
async def client(tmp_path: Path) -> Any:
    """SQLite only: these tests are about documents, not the database."""
    settings = make_settings(
        tmp_path,
        f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
        ingest=IngestSettings(max_bytes=2 * 1024 * 1024, max_pages=5, max_pixels=20_000_000),
        ocr=OcrSettings(executor="thread"),
    )
    async with AsyncTestClient(create_app(settings), timeout=120) as client:
        yield client


@pytest.fixture
async def headers(client: Client) -> dict[str, str]:
    from app.auth.keys import ApiKeys, Scope

    async with client.app.state.sessions() as session:  # same loop: the client runs the app here
        key = (await ApiKeys(session).create("docs", [Scope.EXTRACT])).key
    return {"Authorization": f"Bearer {key}"}


async def analyze(client: Client, headers: dict[str, str], data: bytes, query: str = "", **extra: str) -> Any:
    return await client.post(
        f"/documents/analyze{query}",
        content=data,
        headers={**headers, "Content-Type": "application/octet-stream", **extra},
    )


async def test_born_digital_text_map(client: Client, headers: dict[str, str]) -> None:
    response = await analyze(client, headers, PDF, "?pages=1,3")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["document"] == {"type": "pdf", "page_count": 3}
    assert [p["number"] for p in body["pages"]] == [1, 3]
    page = body["pages"][0]
    assert page["kind"] == "born_digital" and (page["width"], page["height"]) == (595, 842)
    assert [w["text"] for w in page["words"]] == [d.text for d in DRAWN if d.page == 1]
    assert {r["label"] for r in page["regions"]} >= {"text"}
    assert [r["order"] for r in page["regions"]] == list(range(len(page["regions"])))
    assert set(body["timings_ms"]) == {"ingest", "ocr", "layout"} and body["warnings"] == []


async def test_multipart_upload_and_options(client: Client, headers: dict[str, str]) -> None:
    response = await client.post(
        "/documents/analyze?layout=false",
        files={"file": ("inv.pdf", PDF, "application/pdf")},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    assert all(p["regions"] == [] for p in response.json()["pages"])
    empty_form = await client.post(
        "/documents/analyze", files={"other": ("x", b"x", "text/plain")}, headers=headers
    )
    assert_problem(empty_form, 400, "bad-request")


@pytest.mark.slow
async def test_scans_are_ocred(client: Client, headers: dict[str, str]) -> None:
    pytest.importorskip("rapidocr_onnxruntime")
    pdf, drawn = invoice_pdf()
    response = await analyze(client, headers, rasterise(pdf))
    assert response.status_code == 200, response.text
    (page,) = response.json()["pages"]
    assert page["kind"] == "image" and all(w["source"] == "ocr" for w in page["words"])
    text = " ".join(w["text"] for w in page["words"]).lower()
    found = [d.text for d in drawn if d.text.lower().strip(",:") in text]
    assert len(found) >= 0.9 * len(drawn)


async def test_scans_without_ocr_say_so(client: Client, headers: dict[str, str]) -> None:
    pdf, _ = invoice_pdf()
    response = await analyze(client, headers, rasterise(pdf, 72), "?ocr=false")
    body = response.json()
    assert body["pages"][0]["words"] == []
    assert body["warnings"] == [
        {"code": "ocr_disabled", "pages": [1], "detail": body["warnings"][0]["detail"]}
    ]


async def test_attachments_are_not_read(client: Client, headers: dict[str, str]) -> None:
    pdf, drawn = invoice_pdf()
    response = await analyze(client, headers, pdf_with_xml_attachment(pdf, b"<x>HIDDEN-XML</x>"))
    words = [w["text"] for w in response.json()["pages"][0]["words"]]
    assert words == [d.text for d in drawn] and "HIDDEN-XML" not in " ".join(words)


async def test_encrypted_pdf_with_password_header(client: Client, headers: dict[str, str]) -> None:
    locked = encrypted_pdf(PDF, "pw")
    assert_problem(await analyze(client, headers, locked), 422, "document-encrypted")
    assert_problem(
        await analyze(client, headers, locked, **{"X-Document-Password": "no"}),
        422,
        "document-password-incorrect",
    )
    ok = await analyze(client, headers, locked, "?pages=2", **{"X-Document-Password": "pw"})
    assert ok.status_code == 200 and ok.json()["pages"][0]["number"] == 2


@pytest.mark.parametrize(
    ("data", "query", "status", "slug"),
    [
        (b"", "", 400, "bad-request"),
        (b"just some text", "", 415, "unsupported-document-type"),
        (ZERO_PAGE_PDF, "", 422, "document-empty"),
        (PDF[:400], "", 422, "document-corrupt"),
        (invoice_pdf(pages=6)[0], "", 413, "too-many-pages"),
        (png_header_only(50_000, 50_000), "", 413, "image-too-large"),
        (b"%PDF-1.7\n" + b"x" * (2 * 1024 * 1024), "", 413, "document-too-large"),
        (
            b"%PDF-1.7\n" + b"x" * (3 * 1024 * 1024),
            "",
            413,
            "document-too-large",
        ),  # beyond the body limit too
        (PDF, "?pages=4", 422, "invalid-page-selection"),
        (PDF, "?pages=two", 422, "invalid-page-selection"),
    ],
)
async def test_refusals(
    client: Client, headers: dict[str, str], data: bytes, query: str, status: int, slug: str
) -> None:
    assert_problem(await analyze(client, headers, data, query), status, slug)


async def test_needs_a_key(client: Client) -> None:
    assert_problem(await analyze(client, {}, PDF), 401, "unauthenticated")


@pytest.mark.slow
async def test_text_in_pictures_of_born_digital_pages_is_found(
    client: Client, headers: dict[str, str]
) -> None:
    pytest.importorskip("rapidocr_onnxruntime")
    response = await analyze(client, headers, pdf_with_text_picture("Issuer Picture Company"))
    words = response.json()["pages"][0]["words"]
    ocr_text = " ".join(w["text"] for w in words if w["source"] == "ocr").lower().replace(" ", "")
    assert "picturecompany" in ocr_text
    assert sum(w["source"] == "pdf" for w in words) == len(DRAWN) // 3  # the text layer is untouched
