"""The trust layer measured on the corpus with the replay engine, and its speed.

    python bench/bench_trust.py ../shared/corpus [--datasets invoice2data sroie] [--limit N]

1. Ground truth replayed as the engine's output (the values are right, so this measures grounding
   and normalisation alone): evidence recall, and the share of documents flagged for review (every
   flag is a false alarm here).
2. Corrupted ground truth (per document one field: a digit changed in an amount, a date shifted,
   or a text value taken from another document): the share of corrupted fields caught (flagged for
   review, or confidence below the review threshold).
3. Time of the trust layer alone for a 3-page invoice with 50 line items.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.documents.analyze import AnalyzeOptions, analyze_document
from app.documents.ingest import IngestLimits
from app.documents.service import DocumentAnalyzer
from app.engines.replay import ReplayEngine
from app.extraction.merge import PageOutput, merge_pages
from app.extraction.service import Extractor
from app.lib.settings import OcrSettings
from app.registry.service import SchemaVersion
from app.schema.compiled import compile_schema
from app.trust.assess import ReviewPolicy, assess
from app.trust.evaluate import Report, documents_in, record
from tests.conftest import make_settings
from tests.documents import invoice_pdf


def schema_version(path: Path) -> SchemaVersion:
    from app.db.models import utcnow

    schema = json.loads(path.read_text())
    return SchemaVersion(path.stem, 0, None, schema, "", "file", utcnow(), None, 0)


def corrupt(
    truth: dict[str, Any], others: list[dict[str, Any]], rng: random.Random
) -> tuple[dict[str, Any], str]:
    """One field changed the way extraction goes wrong; returns the copy and the changed field."""
    fields = [k for k, v in truth.items() if v is not None and not k.startswith("$")]
    field = rng.choice(fields)
    value = truth[field]
    changed = dict(truth)
    if isinstance(value, int | float):
        text = f"{value:.2f}"
        digits = [i for i, c in enumerate(text) if c.isdigit()]
        i = rng.choice(digits)
        text = text[:i] + str((int(text[i]) + rng.randint(1, 9)) % 10) + text[i + 1 :]
        changed[field] = float(text)
    elif isinstance(value, str) and len(value) == 10 and value[4] == "-" and value[7] == "-":
        changed[field] = (
            date.fromisoformat(value) + timedelta(days=rng.choice([-40, -9, 3, 11, 31]))
        ).isoformat()
    else:
        pool = [o[field] for o in others if o.get(field) not in (None, value)]
        changed[field] = rng.choice(pool) if pool else f"{value} X"
    return changed, field


async def replay(folder: Path, recordings: Path, schema: SchemaVersion, limit: int | None) -> Report:
    settings = make_settings(Path(tempfile.mkdtemp()), None, ocr=OcrSettings(executor="thread"))
    extractor = Extractor(
        ReplayEngine(recordings), DocumentAnalyzer(settings), max_tokens=4096, page_concurrency=4
    )
    report = Report()
    try:
        for path in documents_in(folder)[:limit]:
            extraction = await extractor.extract(path.read_bytes(), schema, document_id=path.stem)
            record(
                report,
                path.stem,
                json.loads((recordings / f"{path.stem}.json").read_text()),
                extraction.result,
                schema.schema,
            )
    finally:
        extractor.analyzer.close()
    return report


async def corpus(root: Path, datasets: list[str], limit: int | None) -> None:
    rng = random.Random(7)
    for dataset in datasets:
        folder = root / dataset
        schema = schema_version(root / "schemas" / f"{dataset}.schema.json")
        threshold = ReviewPolicy.of(schema.schema).min_confidence
        clean = await replay(folder, folder, schema, limit)
        summary = clean.summary(threshold)
        flagged = sum(d["status"] != "succeeded" for d in clean.documents.values())
        print(
            f"{dataset}: {summary['documents']} documents, evidence recall {summary['evidence_recall']:.1%}, "
            f"false alarms {flagged / summary['documents']:.1%} ({flagged}), "
            f"accuracy {summary['accuracy']:.1%}"
        )
        misses = [
            f"{o.document}{o.pointer}={o.truth!r}" for o in clean.outcomes if o.correct and not o.grounded
        ]
        if misses:
            print("  ungrounded:", "; ".join(misses[:8]))
        reasons = [r for d in clean.documents.values() for r in d["reasons"]]
        if reasons:
            print("  review reasons on clean documents:", sorted({r.split(":")[0] for r in reasons}))
        truths = {
            p.stem: json.loads(p.with_suffix(".json").read_text()) for p in documents_in(folder)[:limit]
        }
        with tempfile.TemporaryDirectory() as tmp:
            changed_fields = {}
            for stem, truth in truths.items():
                changed, field = corrupt(truth, [t for s, t in truths.items() if s != stem], rng)
                (Path(tmp) / f"{stem}.json").write_text(json.dumps(changed))
                changed_fields[stem] = "/" + field
            broken = await replay(folder, Path(tmp), schema, limit)
        caught = 0
        for outcome in broken.outcomes:
            if changed_fields.get(outcome.document) == outcome.pointer:
                caught += outcome.flagged or (outcome.confidence or 0) < threshold
        print(
            f"  corrupted values caught: {caught / len(changed_fields):.1%} ({caught}/{len(changed_fields)})"
        )


def speed(repeat: int = 20) -> None:
    lines = [(60.0, 40.0 + 14 * i, f"Item {i:02d} steel bolt {i}.50") for i in range(50)]
    pdf, _ = invoice_pdf(pages=3, lines=lines)
    analysis = asyncio.run(
        analyze_document(
            pdf, AnalyzeOptions(layout=False), limits=IngestLimits(dpi=72), layout=None, ocr=None
        )
    )
    schema = json.loads((Path(__file__).resolve().parents[1] / "schemas" / "invoice.json").read_text())
    items = [
        {"description": f"Item {i:02d} steel bolt", "quantity": 1, "unit_price": i + 0.5, "amount": i + 0.5}
        for i in range(50)
    ]
    data = {
        "invoice_number": "INV-1",
        "issue_date": "2024-03-15",
        "line_items": items,
        "subtotal": sum(i + 0.5 for i in range(50)),
        "total": sum(i + 0.5 for i in range(50)),
    }
    outputs = [PageOutput(1, data, {})]
    best, first = float("inf"), 0.0
    for run in range(repeat):
        merged, sources = merge_pages(outputs)
        started = time.perf_counter()
        assess(compile_schema(schema), merged, sources, analysis.map, policy=ReviewPolicy.of(schema))
        elapsed = time.perf_counter() - started
        first = elapsed if run == 0 else first
        best = min(best, elapsed)
    print(
        f"trust layer, 3-page invoice, 50 line items: {first * 1000:.1f} ms first run (cold caches), "
        f"{best * 1000:.1f} ms best of {repeat} (goal < 20 ms)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--datasets", nargs="+", default=["invoice2data", "sroie"])
    parser.add_argument("--limit", type=int)
    args = parser.parse_args()
    speed()
    asyncio.run(corpus(args.corpus, args.datasets, args.limit))
