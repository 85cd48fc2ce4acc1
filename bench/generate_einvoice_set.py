"""Generate seeded, labelled e-invoices for ``docextract eval`` and ``bench/bench_einvoice.py``: the same
invoices four ways, each in its own folder with ground truth (the built-in ``invoice`` schema's data)
beside each document.

    .venv/bin/python bench/generate_einvoice_set.py /tmp/einv --count 40 --seed 7
    .venv/bin/docextract eval /tmp/einv/facturx --schema schemas/invoice.json --engine layout

- ``facturx/``: a PDF with a visible page and its EN 16931 CII embedded by the factur-x library,
- ``ubl/``: a UBL 2.1 invoice (Peppol BIS Billing 3.0) as an XML upload,
- ``cii/``: the CII alone as an XML upload,
- ``page/``: the same visible page without any XML (what reading pixels gets: the baseline).

Invoices vary by seed: German, French, Dutch and other sellers, 1-6 lines, one or two VAT rates,
optional due date, PO reference, IBAN/BIC, payment terms (``tests/einvoice_factory.py``: CII through
drafthorse, UBL built by hand, the page drawn with PyMuPDF; the service's own writers are never
used). The truth is written from the sample, not read back from the XML.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tests.einvoice_factory import cii_xml, facturx_pdf, invoice_data, invoice_page_pdf, samples, ubl_xml

FOLDERS = ("facturx", "ubl", "cii", "page")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    for folder in FOLDERS:
        (args.out / folder).mkdir(parents=True, exist_ok=True)
    for index, sample in enumerate(samples(args.seed, args.count)):
        name = f"{index:03d}-{sample.seller.country.lower()}"
        truth = json.dumps(invoice_data(sample), indent=2, ensure_ascii=False)
        documents = {
            "facturx": (".pdf", facturx_pdf(sample)),
            "ubl": (".xml", ubl_xml(sample, credit_note=sample.credit_note)),
            "cii": (".xml", cii_xml(sample)),
            "page": (".pdf", invoice_page_pdf(sample)),
        }
        for folder, (suffix, data) in documents.items():
            (args.out / folder / f"{name}{suffix}").write_bytes(data)
            (args.out / folder / f"{name}.json").write_text(truth + "\n")
    print(f"{args.count} invoices x {len(FOLDERS)} forms in {args.out}")


if __name__ == "__main__":
    main()
