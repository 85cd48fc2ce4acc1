"""Structured e-invoices (EN 16931): Factur-X / ZUGFeRD PDFs with their XML, XRechnung, UBL and CII."""
