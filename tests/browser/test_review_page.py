"""The review page in a real browser: Chromium driven by Playwright against the app served by uvicorn.

An ERP key extracts a receipt that needs review (the layout engine, no model: it takes the greeting
"WELCOME" for the merchant's name and the name into the address) and subscribes a webhook receiver
to ``extraction.reviewed``. A reviewer of the same team signs in on the page with a review-scope key,
opens the receipt from the queue, finds the first flagged field selected, fixes it with one click on
a word of the page image, fixes the next one by dragging over two lines, and approves with ``a``.
The API then shows the new data, the revision with both changes and the approval, the ERP's
receiver got the signed event, and every request the browser made went to the app itself.

Skips when Playwright (the Python package) or Chromium is missing, unless CI=true: then it fails.
Screenshots go to ``$DOCEXTRACT_TEST_ARTIFACTS`` (default ``test-artifacts/``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import orjson
import pymupdf
import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from app.auth.keys import ApiKeys, Scope
from app.lib.settings import EngineSettings, JobSettings, WebhookSettings
from app.server.core import create_app
from app.webhooks.signing import verify
from tests.browser.conftest import screenshot, unavailable
from tests.conftest import make_settings
from tests.documents import invoice_pdf
from tests.helpers import served
from tests.webhook_receiver import Receiver

if TYPE_CHECKING:
    from playwright.sync_api import Page

RECEIPT_LINES: list[tuple[float, float, str]] = [
    (20, 20, "WELCOME"),
    (20, 34, "BAKEHOUSE"),
    (20, 46, "12 Market Street"),
    (20, 58, "Springfield IL 62701"),
    (20, 70, "Tel. +1 217 555 0142"),
    (20, 80, "Receipt No. 4711"),
    (20, 94, "Date 14/03/2024 08:15"),
    (20, 120, "Croissant 2 x 1.80 3.60"),
    (20, 134, "Coffee large 3.20"),
    (20, 148, "Orange juice 2.90"),
    (20, 170, "Subtotal 8.08"),
    (20, 184, "VAT 20% 1.62"),
    (20, 198, "TOTAL 9.70"),
    (20, 220, "Paid by card"),
]
ADDRESS = "12 Market Street Springfield IL 62701"
pytestmark = pytest.mark.slow  # a browser and a server per test: about 10 s each; runs in `pytest`


def receipt_pdf() -> bytes:
    """A till receipt, 80 mm wide, with a text layer."""
    doc = pymupdf.open()
    page = doc.new_page(width=226, height=260)
    for x, y, line in RECEIPT_LINES:
        page.insert_text((x, y), line, fontsize=9, fontname="helv")
    return bytes(doc.tobytes())


@dataclass(frozen=True)
class Live:
    base: str
    erp_key: str
    reviewer_key: str
    reviewer_id: str


async def team_keys(url: str) -> tuple[str, str, str]:
    """An ERP key that extracts and a reviewer's key of the same team (it sees the ERP's extractions)."""
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with async_sessionmaker(engine, expire_on_commit=False)() as session:
            keys = ApiKeys(session)
            erp = await keys.create("erp connector", [Scope.EXTRACT], team="accounts")
            reviewer = await keys.create("Rita Reviewer", [Scope.REVIEW], team="accounts")
            return erp.key, reviewer.key, reviewer.record.id
    finally:
        await engine.dispose()


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    """The app on a free loopback port: SQLite, the layout engine, webhooks allowed to loopback."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    settings = make_settings(
        tmp_path / "data",
        url,
        engine=EngineSettings(engine="layout"),
        jobs=JobSettings(poll_s=0.2),
        webhooks=WebhookSettings(allow_networks=["127.0.0.0/8"], retry_base_s=0.2),
    )
    with served(create_app(settings)) as base:
        erp, reviewer, reviewer_id = asyncio.run(team_keys(url))
        yield Live(base, erp, reviewer, reviewer_id)


@pytest.fixture
def page(chromium: Path, live: Live) -> Iterator[Page]:
    """A headless Chromium page (Debian's chromium; Playwright downloads no browser). Started after
    the server: Playwright's sync API holds an event loop in this thread while it runs."""
    from playwright.sync_api import Error, sync_playwright

    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=str(chromium), headless=True)
        except Error as exc:
            unavailable(f"Chromium at {chromium} does not start: {exc}")
            raise
        context = browser.new_context(viewport={"width": 1200, "height": 760}, device_scale_factor=1)
        context.set_default_timeout(20_000)
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()


def drag_over(page: Page, first: str, last: str) -> None:
    """Drag from just above-left of the word ``first`` to just below-right of the word ``last``."""
    start = page.locator(f'.word[data-text="{first}"]').first
    end = page.locator(f'.word[data-text="{last}"]').first
    start.scroll_into_view_if_needed()
    a, b = start.bounding_box(), end.bounding_box()
    assert a is not None and b is not None
    page.mouse.move(a["x"] - 2, a["y"] - 1)
    page.mouse.down()
    page.mouse.move(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2, steps=6)
    page.mouse.move(b["x"] + b["width"] + 2, b["y"] + b["height"] + 1, steps=3)
    page.mouse.up()


def test_a_reviewer_fixes_two_fields_on_the_page_and_approves(page: Page, live: Live) -> None:
    started = time.monotonic()
    erp = {"X-API-Key": live.erp_key}
    origin = urlsplit(live.base)
    with Receiver() as receiver, httpx.Client(base_url=live.base, timeout=60) as api:
        hook = api.post(
            "/webhooks", json={"url": receiver.url("/erp"), "events": ["extraction.reviewed"]}, headers=erp
        )
        assert hook.status_code == 201, hook.text
        extracted = api.post(
            "/extract/receipt",
            params={"filename": "bakehouse-receipt.pdf"},
            content=receipt_pdf(),
            headers=erp,
        )
        assert extracted.status_code == 200, extracted.text
        result = extracted.json()
        extraction_id = result["id"]
        assert result["status"] == "needs_review", result["review"]
        assert result["data"]["merchant"]["name"] != "BAKEHOUSE"  # what the reviewer will fix

        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        page.goto(f"{live.base}/review")
        page.fill("#api-key", live.reviewer_key)
        page.click("#sign-in-form button[type=submit]")
        row = page.locator(f'#queue-rows tr[data-id="{extraction_id}"]')
        row.wait_for()
        assert "needs review 1" in page.locator("#counts").inner_text()
        opened = time.monotonic()

        row.click()
        # The first flagged field is selected on opening, and its words are clickable on the image.
        page.locator('.field.selected[data-pointer="/merchant/name"]').wait_for()
        page.locator('.word[data-text="BAKEHOUSE"]').wait_for()
        page.wait_for_function("() => document.getElementById('page-image').naturalWidth > 0")
        assert page.locator(".box.low, .box.mid").count() >= 2  # flagged fields' evidence, coloured
        screenshot(page, "review-document.png")

        page.locator('.word[data-text="BAKEHOUSE"]').click()  # 1: the name
        name_input = page.locator('input.value[data-pointer="/merchant/name"]')
        assert name_input.input_value() == "BAKEHOUSE"
        page.locator('.field.selected[data-pointer="/merchant/address"]').wait_for()  # moved on by itself
        drag_over(page, "12", "62701")  # 2: the address, two lines
        assert page.locator('input.value[data-pointer="/merchant/address"]').input_value() == ADDRESS
        screenshot(page, "review-corrected.png")
        page.keyboard.press("a")  # 3: approve
        page.locator("#doc-status.approved, #message.error").first.wait_for()
        assert page.locator("#doc-status").inner_text() == "approved", page.locator("#message").inner_text()
        page.locator('.field[data-pointer="/merchant/name"] .source.reviewer').wait_for()
        review_s = time.monotonic() - opened
        screenshot(page, "review-approved.png")
        page.keyboard.press("n")  # the next document: none left, back to the queue
        page.locator("#queue-empty").wait_for()
        assert "approved 1" in page.locator("#counts").inner_text()

        answer = api.get(f"/extractions/{extraction_id}", headers=erp)
        assert answer.status_code == 200, answer.text
        reviewed = answer.json()
        assert answer.headers["etag"] == '"r1"'
        assert reviewed["data"]["merchant"]["name"] == "BAKEHOUSE"
        assert reviewed["data"]["merchant"]["address"] == ADDRESS
        assert reviewed["fields"]["/merchant/name"]["source"] == "reviewer"
        assert reviewed["review"]["status"] == "approved" and reviewed["review"]["revision"] == 1
        [revision] = reviewed["review"]["revisions"]
        assert revision["decision"] == "approve" and revision["reviewer"] == live.reviewer_id
        changes = {change["pointer"]: change for change in revision["changes"]}
        assert set(changes) == {"/merchant/name", "/merchant/address"}
        assert changes["/merchant/name"]["old"] == result["data"]["merchant"]["name"]
        assert changes["/merchant/name"]["new"] == "BAKEHOUSE"
        assert changes["/merchant/address"]["new"] == ADDRESS
        listed = api.get("/extractions", params={"status": "approved"}, headers=erp).json()
        assert [item["id"] for item in listed["items"]] == [extraction_id]

        event = wait_for_event(receiver, hook.json()["secret"])
        assert event["type"] == "extraction.reviewed"
        assert event["data"]["extraction_id"] == extraction_id and event["data"]["decision"] == "approve"

    foreign = [url for url in requests if urlsplit(url)[:2] != (origin.scheme, origin.netloc)]
    assert requests and foreign == [], foreign
    print(f"\nreview page: opened to approved in {review_s:.2f} s; test {time.monotonic() - started:.1f} s")


def test_line_items_a_conflicting_review_and_signing_out(page: Page, live: Live) -> None:
    """A line item edited by keyboard; a review saved meanwhile by someone else is a clear message
    (nothing overwritten) and a reload shows it; signing out ends the session."""
    erp = {"X-API-Key": live.erp_key}
    with httpx.Client(base_url=live.base, timeout=60) as api:
        pdf, _ = invoice_pdf()
        extracted = api.post("/extract/invoice", params={"filename": "acme.pdf"}, content=pdf, headers=erp)
        assert extracted.status_code == 200, extracted.text
        result = extracted.json()
        assert result["status"] == "needs_review" and len(result["data"]["line_items"]) == 2

        page.goto(f"{live.base}/review#{result['id']}")  # a link straight to the document
        page.fill("#api-key", live.reviewer_key)
        page.keyboard.press("Enter")
        page.locator(".field.selected").wait_for()
        cell = page.locator('#line-items input[data-pointer="/line_items/1/description"]')
        assert cell.input_value() == "Gadget small"
        cell.click()  # selects the cell's field
        page.keyboard.press("Escape")  # leaves the input: the keys are shortcuts again
        page.keyboard.press("e")  # edit: the value selected in its input
        page.keyboard.type("Gadget small (blue)")  # typed, not shortcuts ("a", "e", "r", "n" in it)
        page.keyboard.press("Enter")  # keeps it and moves on
        assert cell.input_value() == "Gadget small (blue)"
        assert page.locator("#doc-status").inner_text() == "needs review"
        assert page.locator("#line-items td.edited").count() == 1

        # Meanwhile the ERP approves the document through the API.
        other = api.post(f"/extractions/{result['id']}/review", json={"decision": "approve"}, headers=erp)
        assert other.status_code == 200, other.text
        page.keyboard.press("a")
        page.locator("#message.error").wait_for()
        assert "Someone else reviewed this document" in page.locator("#message").inner_text()
        screenshot(page, "review-conflict.png")
        unchanged = api.get(f"/extractions/{result['id']}", headers=erp).json()
        assert unchanged["data"]["line_items"][1]["description"] == "Gadget small"
        assert unchanged["review"]["revision"] == 1
        page.click("#message-action")  # Reload
        page.locator("#doc-status.approved").wait_for()

        page.click("#sign-out")
        page.locator("#sign-in").wait_for()
        cookies = page.context.cookies()
        assert not [c for c in cookies if c["name"] == "docextract_session" and c["value"]]
        assert page.evaluate("fetch('/review/session').then((r) => r.status)") == 401


def wait_for_event(receiver: Receiver, secret: str, within_s: float = 20.0) -> dict[str, Any]:
    """The first delivery, its signature checked."""
    deadline = time.monotonic() + within_s
    while not receiver.requests:
        assert time.monotonic() < deadline, "the webhook was not delivered"
        time.sleep(0.05)
    request = receiver.requests[0]
    verify(secret, request.headers, request.body)
    event: dict[str, Any] = orjson.loads(request.body)
    return event
