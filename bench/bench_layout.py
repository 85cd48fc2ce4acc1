"""Layout speed on this machine: PyMuPDF's own layout and PP-DocLayoutV3 (full-size architecture).

    python bench/bench_layout.py [--corpus ../shared/corpus] [--pages 8] [--batch 4]

PP-DocLayoutV3's weights cannot be downloaded here, so the model is built from its default
configuration with random weights: the same architecture and input size (800x800), hence the same
compute per page as the real checkpoint. Only speed is measured; the regions are meaningless.
PyMuPDF's layout is timed on the corpus's born-digital PDFs (tables, blocks, titles).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.documents.ingest import IngestLimits, open_document
from app.pages import Page
from tests.documents import invoice_pdf


def native(corpus: Path | None) -> None:
    pdfs = [p.read_bytes() for p in sorted(corpus.rglob("*.pdf"))] if corpus else [invoice_pdf(pages=8)[0]]
    pages, started = 0, time.perf_counter()
    for pdf in pdfs:
        with open_document(pdf, IngestLimits()) as document:
            for _ in document.pages(native_layout=True):
                pages += 1
    layout_and_ingest = time.perf_counter() - started
    started = time.perf_counter()
    for pdf in pdfs:
        with open_document(pdf, IngestLimits()) as document:
            for _ in document.pages():
                pass
    ingest = time.perf_counter() - started
    per_page = (layout_and_ingest - ingest) / pages
    print(
        f"pymupdf layout: {pages} pages, {1 / per_page:.1f} pages/s "
        f"({per_page * 1000:.0f} ms/page, ingest excluded)"
    )


def model(pages: int, batch: int) -> None:
    import torch
    from transformers import PPDocLayoutV3Config, PPDocLayoutV3ForObjectDetection, PPDocLayoutV3ImageProcessor

    from app.regions.ppdoclayout import PPDocLayoutConfig, PPDocLayoutV3Backend

    torch.manual_seed(0)
    started = time.perf_counter()
    network = PPDocLayoutV3ForObjectDetection(PPDocLayoutV3Config()).eval()  # type: ignore[no-untyped-call]
    built = time.perf_counter() - started
    parameters = sum(p.numel() for p in network.parameters()) / 1e6
    backend = PPDocLayoutV3Backend.from_model(
        network, PPDocLayoutV3ImageProcessor(), PPDocLayoutConfig(batch_size=batch)
    )
    pdf, _ = invoice_pdf(pages=pages)
    with open_document(pdf, IngestLimits()) as document:
        rendered: list[Page] = list(document.pages())
    backend.detect(rendered[:1])  # warm-up
    started = time.perf_counter()
    backend.detect(rendered)
    elapsed = time.perf_counter() - started
    print(
        f"pp-doclayoutv3 (random weights, {parameters:.1f} M parameters, built in {built:.1f} s): "
        f"{pages} pages, batch {batch}, {torch.get_num_threads()} threads: {pages / elapsed:.2f} pages/s "
        f"({elapsed * 1000 / pages:.0f} ms/page)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path)
    parser.add_argument("--pages", type=int, default=8)
    parser.add_argument("--batch", type=int, default=4)
    args = parser.parse_args()
    native(args.corpus)
    try:
        model(args.pages, args.batch)
    except ImportError as exc:
        print(f"pp-doclayoutv3: skipped ({exc}); pip install 'docextract[local]'")
