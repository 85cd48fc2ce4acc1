"""Text recall of the text map on real documents: how many ground-truth values its search finds.

    python bench/bench_recall.py ../shared/corpus [--datasets sroie invoice2data docile_sample] [--limit N]

For each document the text map is built as the service builds it (PDF text layer, OCR for scans
and photos), then every ground-truth value is searched. Dates and amounts are stored normalised in
the ground truth (ISO dates, JSON numbers), so they are searched in the printed forms documents use
(25/12/2018, 25 Dec 2018, 1,234.50, 1.234,50, ...): the trust layer's ``printed_forms``. A value
counts as found when the best match scores at least --min-score (exact 1.0, normalised 0.95, fuzzy
0.77-0.9; inside a longer token x0.6 on a PDF text layer, x0.85 on OCR text).
Prints recall per dataset and per field, and the misses with --misses. The corpus is read in place.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.documents.analyze import AnalyzeOptions, analyze_document
from app.documents.ingest import IngestLimits
from app.documents.textmap import DocumentMap
from app.ocr.pool import OcrPool
from app.trust.normalize import kind_for, normalize, printed_forms

WEAK_SCORE = 0.5


def search_forms(field: str, value: Any, schema: dict[str, Any]) -> list[str]:
    """The true value as it may be printed: the trust layer's printed forms of its kind."""
    if isinstance(value, bool) or value is None:
        return []
    prop = schema.get("properties", {}).get(field, {})
    kind = kind_for(field, prop)
    normalized = normalize(value, kind)
    if normalized.status != "ok":
        return [str(value)]
    return list(dict.fromkeys([str(value), *printed_forms(normalized.value, kind)]))


async def text_map(path: Path, pool: OcrPool) -> DocumentMap:
    async def ocr(page: Any) -> Any:
        return await pool.words(page)

    analysis = await analyze_document(
        path.read_bytes(), AnalyzeOptions(layout=False), limits=IngestLimits(), layout=None, ocr=ocr
    )
    return analysis.map


async def main(args: argparse.Namespace) -> None:
    corpus: Path = args.corpus
    pool = OcrPool(executor="thread")
    results: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    misses: list[str] = []
    timing: dict[str, float] = {}
    for dataset in args.datasets:
        folder = corpus / dataset
        schema = json.loads((corpus / "schemas" / f"{dataset}.schema.json").read_text())
        docs = sorted(p for p in folder.iterdir() if p.suffix in {".pdf", ".jpg", ".png"})[: args.limit]
        started = time.perf_counter()
        for doc in docs:
            truth = json.loads(doc.with_suffix(".json").read_text())
            found_map = await text_map(doc, pool)
            for field, value in truth.items():
                forms = search_forms(field, value, schema)
                if not forms:
                    continue
                best = max((m.score for form in forms for m in found_map.find(form, limit=1)), default=0.0)
                results[dataset][field].append(best)
                if best < args.min_score:
                    misses.append(f"{dataset}/{doc.name} {field}={value!r} (best {best:.2f})")
        timing[dataset] = (time.perf_counter() - started) / max(1, len(docs))
    pool.close()
    print(
        f"recall: best match >= {args.min_score} | >= {WEAK_SCORE} "
        "(the second also counts values found inside a longer token)"
    )
    for dataset, fields in results.items():
        total = [score for scores in fields.values() for score in scores]
        strict, loose = sum(s >= args.min_score for s in total), sum(s >= WEAK_SCORE for s in total)
        print(
            f"{dataset}: {strict / len(total):.1%} | {loose / len(total):.1%}  "
            f"({strict} | {loose} of {len(total)} values, {timing[dataset]:.1f} s/document)"
        )
        for field, scores in sorted(fields.items()):
            strict, loose = sum(s >= args.min_score for s in scores), sum(s >= WEAK_SCORE for s in scores)
            print(
                f"  {field:<22} {strict / len(scores):6.1%} | {loose / len(scores):6.1%}  "
                f"({len(scores)} values)"
            )
    if args.misses:
        print("misses:")
        for line in misses:
            print("  " + line)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--datasets", nargs="+", default=["invoice2data", "docile_sample", "sroie"])
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--min-score", type=float, default=0.8)
    parser.add_argument("--misses", action="store_true")
    asyncio.run(main(parser.parse_args()))
