"""Real e-invoices without ground truth: the same invoice in both syntaxes, read by the two readers.

    git clone https://github.com/itplr-kosit/xrechnung-testsuite /tmp/xrechnung-testsuite
    .venv/bin/python bench/check_einvoice_pairs.py /tmp/xrechnung-testsuite/src/test/business-cases

Public test suites (KoSIT's XRechnung suite) give each business case as UBL (``*_ubl.xml``) and as
CII (``*_uncefact.xml``). Each file is extracted against the built-in ``invoice`` schema (no page:
XML uploads), and for every pair the two results' fields are compared: the UBL and CII readers share
no code path beyond the model, so a field the two read alike is very likely read right, and one they
read differently is wrong in at least one. Also printed: files valid against their XSD, files that
could not be read, and exports: each result written as UBL and as CII, checked against the XSD and
extracted again (the round trip must give the same data).
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

from app.cli.common import schema_from_file
from app.documents.service import DocumentAnalyzer
from app.einvoice import export
from app.einvoice.export import ExportError, export_xml
from app.jobs.services import build_extractor, close_extractor
from app.lib.errors import DocextractError
from app.lib.logging import configure_logging
from app.lib.settings import EngineSettings, OcrSettings, load_settings
from app.trust.evaluate import truth_leaves

SCHEMA = Path(__file__).resolve().parents[1] / "schemas" / "invoice.json"
SUFFIXES = {"ubl": "_ubl.xml", "cii": "_uncefact.xml"}


def compare_pairs(results: dict[Path, dict[str, Any]]) -> tuple[int, int, int, Counter[str]]:
    """Pairs compared, fields compared, fields equal, and the differing fields by name."""
    agree, fields, pairs = 0, 0, 0
    differing: Counter[str] = Counter()
    for ubl_path, ubl in results.items():
        if not ubl_path.name.endswith(SUFFIXES["ubl"]):
            continue
        cii_path = ubl_path.with_name(ubl_path.name.replace(SUFFIXES["ubl"], SUFFIXES["cii"]))
        if cii_path not in results:
            continue
        pairs += 1
        left, right = dict(truth_leaves(ubl["data"])), dict(truth_leaves(results[cii_path]["data"]))
        for pointer in left.keys() | right.keys():
            fields += 1
            if left.get(pointer) == right.get(pointer):
                agree += 1
            else:
                differing[pointer.split("/")[1] if pointer.count("/") > 1 else pointer] += 1
    return pairs, fields, agree, differing


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument(
        "--placeholder-ids",
        action="store_true",
        help="Export even with identifiers that fail their checksums (test suites use DE123456789).",
    )
    args = parser.parse_args()
    if args.placeholder_ids:
        setattr(export, "identifier_problem", lambda code, value: None)  # noqa: B010
    configure_logging("WARNING", "console")
    settings = load_settings(engine=EngineSettings(engine="layout"), ocr=OcrSettings(enabled=False))
    extractor = build_extractor(settings, DocumentAnalyzer(settings))
    version = schema_from_file(settings, SCHEMA)
    files = sorted(p for p in args.folder.rglob("*.xml") if p.name.endswith(tuple(SUFFIXES.values())))
    results: dict[Path, dict[str, Any]] = {}
    unreadable: list[str] = []
    counts: Counter[str] = Counter()
    try:
        for path in files:
            try:
                result = (await extractor.extract(path.read_bytes(), version)).result
            except DocextractError as exc:
                unreadable.append(f"{path.name}: {exc}")
                continue
            results[path] = result
            counts["valid"] += result["einvoice"]["valid"]
            counts[result["status"]] += 1
            for syntax in ("UBL", "CII"):
                try:
                    exported = export_xml(result["data"], version.compiled, syntax)
                except ExportError as exc:
                    counts[f"export {syntax} refused"] += 1
                    print(f"  {path.name}: {syntax} export refused: {exc.missing or exc.violations}")
                    continue
                again = (await extractor.extract(exported, version)).result
                counts[f"export {syntax} round trip"] += again["data"] == result["data"]
    finally:
        await close_extractor(extractor)
    pairs, fields, agree, differing = compare_pairs(results)
    print(f"files: {len(files)} read: {len(results)} unreadable: {len(unreadable)}")
    for line in unreadable:
        print(f"  {line}")
    print(f"valid against their XSD: {counts['valid']}/{len(results)}")
    print(f"status: succeeded {counts['succeeded']}, needs_review {counts['needs_review']}")
    for syntax in ("UBL", "CII"):
        print(
            f"export {syntax}: round trip equal {counts[f'export {syntax} round trip']}/{len(results)}, "
            f"refused {counts[f'export {syntax} refused']}"
        )
    print(f"UBL/CII pairs: {pairs}, fields compared: {fields}, equal: {agree} ({agree / max(fields, 1):.4f})")
    print(f"differing, by field: {dict(differing.most_common())}")


if __name__ == "__main__":
    asyncio.run(main())
