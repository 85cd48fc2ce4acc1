"""Bytes to the EN 16931 model: the one entry point for an e-invoice's XML, whichever syntax."""

from __future__ import annotations

from lxml import etree

from app.einvoice import cii, ubl
from app.einvoice.model import EInvoice
from app.einvoice.xml import ZUGFERD_1_NS, EInvoiceXmlError, parse_xml, syntax_of


def read_einvoice(data: bytes) -> EInvoice:
    """The business terms of a CII (Factur-X, ZUGFeRD 2.x, XRechnung) or UBL 2.1 document, parsed
    safely (``parse_xml``); ``EInvoiceXmlError`` for anything else."""
    return read_root(parse_xml(data))


def read_root(root: etree._Element) -> EInvoice:
    """``read_einvoice`` of a parsed document."""
    syntax = syntax_of(root)
    if syntax == "CII":
        return cii.read(root)
    if syntax == "UBL":
        return ubl.read(root)
    if etree.QName(root).namespace == ZUGFERD_1_NS:
        raise EInvoiceXmlError("not_an_invoice", "ZUGFeRD 1.0 is not supported")
    raise EInvoiceXmlError(
        "not_an_invoice",
        f"The root element {etree.QName(root).text} is no CII invoice, UBL Invoice or CreditNote.",
    )
