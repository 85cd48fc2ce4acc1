"""E-invoice XML in, safely: a parser that never loads a DTD, an entity or anything from the network,
with limits on size, depth and element count checked while parsing (an upload is untrusted input);
which syntax a root is; and where a node is, as a readable XPath a reviewer can follow.

Any DOCTYPE is refused outright (no e-invoice syntax uses one): before parsing, by reading the prolog,
and after, from the parsed document's ``docinfo``, so that neither XXE nor entity expansion ("billion
laughs") ever gets a chance.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from collections.abc import Iterator
from typing import Literal

from lxml import etree

from app.documents.detect import prolog_text
from app.einvoice.model import ALL_TERMS, Syntax, Terms, Value, normalise

CII_NS = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
UBL_INVOICE_NS = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
UBL_CREDIT_NOTE_NS = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
ZUGFERD_1_NS = "urn:ferd:CrossIndustryDocument:invoice:1p0"
CII_ROOT = f"{{{CII_NS}}}CrossIndustryInvoice"
UBL_INVOICE_ROOT = f"{{{UBL_INVOICE_NS}}}Invoice"
UBL_CREDIT_NOTE_ROOT = f"{{{UBL_CREDIT_NOTE_NS}}}CreditNote"

Reason = Literal["too_large", "dtd_forbidden", "malformed", "too_deep", "too_many_elements", "not_an_invoice"]


class EInvoiceXmlError(Exception):
    """The XML cannot be read as an e-invoice; ``reason`` says why (for the caller to branch on),
    ``message`` says it to a person."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason: Reason = reason
        self.message = message


def parse_xml(
    data: bytes, *, max_bytes: int = 5 * 1024 * 1024, max_depth: int = 64, max_elements: int = 200_000
) -> etree._Element:
    """The root element of ``data``, or ``EInvoiceXmlError``. Comments and processing instructions
    are dropped (no business term lives in them); the limits stop the parse as soon as one is passed."""
    if len(data) > max_bytes:
        raise EInvoiceXmlError(
            "too_large", f"The XML is {len(data)} bytes, more than the {max_bytes} allowed."
        )
    if _declares_dtd(data):
        raise EInvoiceXmlError("dtd_forbidden", "The XML declares a DOCTYPE; e-invoices must not have one.")
    events = etree.iterparse(
        io.BytesIO(data),
        events=("start", "end"),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_pis=True,
        remove_comments=True,
    )
    depth = elements = 0
    try:
        for event, _ in events:
            if event == "end":
                depth -= 1
                continue
            depth += 1
            elements += 1
            if depth > max_depth:
                raise EInvoiceXmlError("too_deep", f"The XML nests elements deeper than {max_depth} levels.")
            if elements > max_elements:
                raise EInvoiceXmlError("too_many_elements", f"The XML has more than {max_elements} elements.")
    except etree.XMLSyntaxError as error:
        if "excessive depth" in str(error).lower():  # libxml2's own nesting limit, should it come first
            raise EInvoiceXmlError("too_deep", f"The XML nests elements too deep: {error.msg}") from None
        raise EInvoiceXmlError("malformed", _malformed(error)) from None
    root = events.root
    if root is None:
        raise EInvoiceXmlError("malformed", "The XML has no root element.")
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise EInvoiceXmlError("dtd_forbidden", "The XML declares a DOCTYPE; e-invoices must not have one.")
    return root


def _malformed(error: etree.XMLSyntaxError) -> str:
    """The parser's message with its position once, in front (libxml2 repeats it at the end)."""
    line, column = error.position
    detail = re.sub(r"(, line \d+)?, column \d+$", "", error.msg or "syntax error")
    if not line:
        return f"The XML is malformed: {detail}"
    return f"The XML is malformed at line {line}, column {column}: {detail}"


def _declares_dtd(data: bytes) -> bool:
    """Whether the prolog (after a BOM, the XML declaration, comments and processing instructions)
    has a DOCTYPE. Reads the text in the encoding its BOM or first bytes say, so UTF-16 cannot hide one."""
    text = prolog_text(data)
    position = 0
    while True:
        while position < len(text) and text[position] in " \t\r\n":
            position += 1
        for opening, closing in (("<?", "?>"), ("<!--", "-->")):
            if text.startswith(opening, position):
                end = text.find(closing, position + len(opening))
                if end < 0:
                    return False  # unterminated: the parser reports it as malformed
                position = end + len(closing)
                break
        else:
            return text[position : position + 9].upper() == "<!DOCTYPE"


def syntax_of(root: etree._Element) -> Syntax | None:
    """``CII`` for a (Factur-X, ZUGFeRD 2, XRechnung) Cross Industry Invoice, ``UBL`` for a UBL 2.1
    Invoice or CreditNote, else None (ZUGFeRD 1.0 included: its own, older vocabulary)."""
    if root.tag == CII_ROOT:
        return "CII"
    if root.tag in (UBL_INVOICE_ROOT, UBL_CREDIT_NOTE_ROOT):
        return "UBL"
    return None


class Paths:
    """Absolute XPaths of a document's nodes, with the document's own prefixes (none for the default
    namespace) and a 1-based position where siblings share a name: ``/Invoice/cac:InvoiceLine[2]/cbc:ID``.
    Positions are counted once per parent, so paths for a thousand lines stay linear."""

    def __init__(self) -> None:
        self._steps: dict[etree._Element, str] = {}

    def of(self, node: etree._Element, attribute: str | None = None) -> str:
        steps = [self._step(element) for element in _ancestry(node)]
        path = "/" + "/".join(reversed(steps))
        return f"{path}/@{attribute}" if attribute else path

    def _step(self, node: etree._Element) -> str:
        if node not in self._steps:
            parent = node.getparent()
            if parent is None:
                self._steps[node] = _name(node)
            else:
                siblings = [
                    (child, etree.QName(child).text) for child in parent if isinstance(child.tag, str)
                ]
                counts = Counter(tag for _, tag in siblings)
                seen: Counter[str] = Counter()
                for child, tag in siblings:
                    seen[tag] += 1
                    position = f"[{seen[tag]}]" if counts[tag] > 1 else ""
                    self._steps[child] = _name(child) + position
        return self._steps[node]


def _ancestry(node: etree._Element) -> Iterator[etree._Element]:
    current: etree._Element | None = node
    while current is not None:
        yield current
        current = current.getparent()


def _name(node: etree._Element) -> str:
    local = etree.QName(node).localname
    return f"{node.prefix}:{local}" if node.prefix else local


class TermReader:
    """Reads business terms out of one document for a syntax's reader: the first element an XPath
    finds (in the reader's namespace map), its text normalised by the term's kind, and its path."""

    def __init__(self, namespaces: dict[str, str]) -> None:
        self.namespaces = namespaces
        self.paths = Paths()

    def all(self, context: etree._Element, xpath: str) -> list[etree._Element]:
        found = context.xpath(xpath, namespaces=self.namespaces)
        assert isinstance(found, list)
        return [node for node in found if isinstance(node, etree._Element)]

    def first(self, context: etree._Element | None, *xpaths: str) -> etree._Element | None:
        """The first element the first of ``xpaths`` that finds any finds (an order of preference)."""
        if context is None:
            return None
        for xpath in xpaths:
            found = self.all(context, xpath)
            if found:
                return found[0]
        return None

    def put(
        self,
        terms: Terms,
        code: str,
        context: etree._Element | None,
        xpath: str,
        attribute: str | None = None,
    ) -> None:
        """``terms[code]`` from the first non-empty node ``xpath`` finds (or its ``attribute``)."""
        if context is not None:
            for node in self.all(context, xpath):
                if self.put_node(terms, code, node, attribute):
                    return

    def put_node(self, terms: Terms, code: str, node: etree._Element, attribute: str | None = None) -> bool:
        """``terms[code]`` from ``node`` (or its ``attribute``) unless that is empty; whether it was."""
        text = node.get(attribute) if attribute else node.text
        if text is None or not text.strip():
            return False
        terms[code] = Value(normalise(ALL_TERMS[code].kind, text), text, self.paths.of(node, attribute))
        return True

    def put_in_invoice_currency(self, terms: Terms, code: str, nodes: list[etree._Element]) -> None:
        """``terms[code]`` from the first of ``nodes`` whose ``currencyID`` is the invoice's (BT-5),
        else the first: the total VAT may come twice, once in the VAT accounting currency (BT-111)."""
        currency = terms["BT-5"].value if "BT-5" in terms else None
        preferred = [node for node in nodes if (node.get("currencyID") or "").strip() == currency]
        for node in preferred + nodes:
            if self.put_node(terms, code, node):
                return

    def put_joined(self, terms: Terms, code: str, context: etree._Element, xpath: str) -> None:
        """``terms[code]`` from every node ``xpath`` finds, one per line (an invoice's several notes);
        the path then names them all (no position) when there is more than one."""
        nodes = [node for node in self.all(context, xpath) if node.text and node.text.strip()]
        if not nodes:
            return
        if len(nodes) == 1:
            self.put(terms, code, context, xpath)
            return
        texts = [node.text or "" for node in nodes]
        value = "\n".join(normalise(ALL_TERMS[code].kind, text) for text in texts)
        terms[code] = Value(
            value, "\n".join(texts), _without_positions([self.paths.of(node) for node in nodes])
        )


def _without_positions(paths: list[str]) -> str:
    """One XPath selecting all of ``paths``: the steps where they differ lose their position."""
    split = [path.split("/") for path in paths]
    steps = [
        column[0] if len(set(column)) == 1 else column[0].split("[")[0] for column in zip(*split, strict=True)
    ]
    return "/".join(steps)


def sub(parent: etree._Element, tag: str, text: str | None = None, **attributes: str) -> etree._Element:
    """A child element for the writers, in document order: they call it in the XSD's sequence."""
    element = etree.SubElement(parent, tag, attributes)
    if text is not None:
        element.text = text
    return element
