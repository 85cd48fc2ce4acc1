"""Sender memory, measured: how the second and later documents of a sender come out once its
first one was approved, against the same documents read without memory.

    .venv/bin/python bench/generate_eval_set.py /tmp/senders79 --senders 24 --count 4 --seed 79
    .venv/bin/python bench/bench_sender_memory.py /tmp/senders79 --schema /tmp/senders79/schema.json \\
        ../shared/corpus/invoice2data --schema ../shared/corpus/schemas/invoice2data.schema.json

Each DOCS_DIR is a set with ground truth beside each document (as for ``docextract eval``); its
documents are grouped by sender: the manifest's ``sender`` (``generate_eval_set.py --senders``),
else the truth's ``--group-field`` (``issuer`` for invoice2data). For every sender with two
documents or more, the first (by name) is extracted and approved with the ground truth as the
reviewer's corrections, and learnt exactly as ``POST /extractions/{id}/review`` does after an
approval (the document analysed again, ``app.memory.service``), into a real memory store (SQLite,
one owner for every sender, so a document must find its own sender's memory among all of them).
Then every later document is extracted twice with the ``layout`` engine: without memory (before)
and with the lookup (after). Printed per set: accuracy, auto-accepted share, wrong among
auto-accepted (``app.trust.evaluate``: threshold ``x-review``'s, 0.7 by default), fields read from
memory and memory disagreements (``sender_memory:`` reasons), documents whose sender was found.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from app.auth.keys import Principal
from app.cli.common import schema_from_file
from app.db.models import ApiKeyRecord, Base, ExtractionRecord, utcnow
from app.documents.analyze import AnalyzeOptions
from app.documents.service import DocumentAnalyzer
from app.extraction.review import Correction, apply_review
from app.extraction.service import Extractor
from app.jobs.services import build_extractor, close_extractor
from app.lib.errors import RequestError
from app.lib.logging import configure_logging
from app.lib.settings import AppSettings, DatabaseSettings, EngineSettings, load_settings
from app.memory import store
from app.memory.identity import identify
from app.memory.service import learn_from_approved, memory_lookup
from app.registry.service import SchemaVersion
from app.trust.assess import ReviewPolicy
from app.trust.evaluate import Report, documents_in, record, truth_corrections

REVIEWER = Principal(key_id="bench", name="bench", scopes=frozenset({"review"}))
KEY = ApiKeyRecord(id="bench", name="bench", secret_sha256="0" * 64, scopes=["extract"], team="bench")
OWNER = "team:bench"
"""Every sender's memory has one owner: each document must find its own sender's among them."""


@dataclass
class Outcome:
    before: Report = field(default_factory=Report)
    after: Report = field(default_factory=Report)
    from_memory: int = 0
    disagreements: int = 0
    found: int = 0
    later: int = 0
    senders: int = 0
    learnt: int = 0
    wrong_sender: int = 0
    """Documents whose lookup found another sender's memory."""


def groups(folder: Path, group_field: str) -> dict[str, list[Path]]:
    """The set's documents by sender, each sender's in name order."""
    manifest_path = folder / "_manifest.json"
    senders: dict[str, Any] = {}
    if manifest_path.is_file():
        manifest = orjson.loads(manifest_path.read_bytes())
        senders = {
            Path(d.get("file", d["id"])).stem: d["sender"]
            for d in manifest.get("documents", [])
            if "sender" in d
        }
    found: dict[str, list[Path]] = defaultdict(list)
    for path in documents_in(folder):
        if senders:
            key = senders.get(path.stem)
        else:
            key = orjson.loads(path.with_suffix(".json").read_bytes()).get(group_field)
        if key is not None:
            found[str(key)].append(path)
    return dict(sorted(found.items()))


def approved(result: dict[str, Any], truth: dict[str, Any], version: SchemaVersion) -> dict[str, Any] | None:
    """The result as a reviewer leaves it: every value that differs from the truth corrected
    (``source: reviewer``, no evidence: learning locates it on the page), then approved, by the
    review route's own code. None when the truth does not fit the schema."""
    corrections = [
        Correction(pointer, value)
        for pointer, value in truth_corrections(result.get("data") or {}, truth, version.schema)
    ]
    try:
        outcome = apply_review(
            result, version.compiled, corrections, "approve", None, REVIEWER, result["status"], utcnow()
        )
    except RequestError:
        return None
    return outcome.result


async def run_set(
    extractor: Extractor,
    sessions: async_sessionmaker[AsyncSession],
    folder: Path,
    version: SchemaVersion,
    group_field: str,
) -> Outcome:
    outcome = Outcome()
    every = groups(folder, group_field)
    by_sender = {k: v for k, v in every.items() if len(v) >= 2}
    outcome.senders = len(by_sender)
    learnt: dict[str, str] = {}
    for group, paths in every.items():  # first, every sender's first document approved and learnt
        first = paths[0]
        data = first.read_bytes()
        extraction = await extractor.extract(data, version, document_id=first.stem)
        truth = orjson.loads(first.with_suffix(".json").read_bytes())
        reviewed = approved(extraction.result, truth, version)
        if reviewed is None:
            continue
        row = ExtractionRecord(schema_name=version.name, created_by=KEY.id)
        async with sessions() as session:
            sender = await learn_from_approved(session, extractor.analyzer, row, reviewed, data)
        if sender is not None:
            learnt[sender] = group
    outcome.learnt = len(learnt)
    for group, paths in every.items():  # no document may find another sender's memory
        for path in paths:
            analysis = await extractor.analyzer.analyze(
                path.read_bytes(), AnalyzeOptions(pages="1", layout=False)
            )
            async with sessions() as session:
                memory = await store.find(session, OWNER, version.name, identify(analysis.map.pages))
            if memory is not None and learnt.get(memory.sender) != group:
                outcome.wrong_sender += 1
                print(f"  {path.stem} found the memory of {memory.sender}", file=sys.stderr)
    for paths in by_sender.values():
        for path in paths[1:]:
            data = path.read_bytes()
            truth = orjson.loads(path.with_suffix(".json").read_bytes())
            plain = await extractor.extract(data, version, document_id=path.stem)
            record(outcome.before, path.stem, truth, plain.result, version.schema)
            lookup = memory_lookup(OWNER, version.name, sessions=sessions)
            found: list[bool] = []

            async def observed(page: Any, lookup: Any = lookup, found: list[bool] = found) -> Any:
                profile = await lookup(page)
                found.append(profile is not None)
                return profile

            read = await extractor.extract(data, version, document_id=path.stem, memory=observed)
            record(outcome.after, path.stem, truth, read.result, version.schema)
            outcome.later += 1
            outcome.found += any(found)
            fields = read.result["fields"].values()
            outcome.from_memory += sum(f["components"].get("source") == "sender_memory" for f in fields)
            reasons = read.result["review"]["reasons"]
            outcome.disagreements += sum(r.startswith("sender_memory:") for r in reasons)
    return outcome


def _errors(outcome: Outcome) -> None:
    """What stays wrong or reviewed with memory, and what memory changed, per field."""
    before = {(o.document, o.pointer): o for o in outcome.before.outcomes}
    for o in outcome.after.outcomes:
        b = before[(o.document, o.pointer)]
        reasons = [r for r in outcome.after.documents[o.document]["reasons"] if r.endswith(o.pointer)]
        if not o.correct or o.flagged or b.correct != o.correct or b.flagged != o.flagged:
            print(
                f"  {o.document} {o.pointer}: truth {o.truth!r} before {b.value!r} "
                f"({'ok' if b.correct else 'WRONG'}{', flagged' if b.flagged else ''}) after {o.value!r} "
                f"({'ok' if o.correct else 'WRONG'}{', flagged' if o.flagged else ''}) {reasons}",
                file=sys.stderr,
            )


def row(name: str, report: Report, threshold: float) -> str:
    s = report.summary(threshold)
    return (
        f"| {name} | {s['fields']} | {s['accuracy']} | {s['auto_accepted_share']} "
        f"| {s['auto_accepted_error_rate']} |"
    )


async def main_async(args: argparse.Namespace) -> None:
    folders: list[Path] = args.docs_dirs
    schemas: list[Path] = args.schema * (len(folders) // len(args.schema))
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(
            app=AppSettings(data_dir=Path(tmp), log_level="WARNING"),
            database=DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp}/memory.db"),
            engine=EngineSettings(engine="layout"),
        )
        database = create_async_engine(settings.database_url)
        async with database.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
        sessions = async_sessionmaker(database, expire_on_commit=False)
        async with sessions() as session:
            session.add(KEY)
            await session.commit()
        extractor = build_extractor(settings, DocumentAnalyzer(settings))
        try:
            print("| set | fields | accuracy | auto-accepted | wrong among auto-accepted |")
            print("|---|---:|---:|---:|---:|")
            for folder, schema_path in zip(folders, schemas, strict=True):
                version = schema_from_file(settings, schema_path)
                started = time.perf_counter()
                outcome = await run_set(extractor, sessions, folder, version, args.group_field)
                threshold = ReviewPolicy.of(version.schema).min_confidence
                name = folder.resolve().name
                print(row(f"{name}: before (no memory)", outcome.before, threshold))
                print(row(f"{name}: after one approval", outcome.after, threshold))
                if args.errors:
                    _errors(outcome)
                print(
                    f"<!-- {name}: {outcome.learnt} senders learnt, {outcome.senders} with later documents, "
                    f"{outcome.later} later documents, sender found for {outcome.found}, "
                    f"another sender's memory found for {outcome.wrong_sender} documents (of all), "
                    f"{outcome.from_memory} fields read from memory, "
                    f"{outcome.disagreements} memory disagreements, "
                    f"{time.perf_counter() - started:.0f} s -->"
                )
        finally:
            await close_extractor(extractor)
            await database.dispose()
    print(f"\ncommand: .venv/bin/python {shlex.join(sys.argv)}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("docs_dirs", nargs="+", type=Path)
    parser.add_argument("--schema", type=Path, action="append", required=True, help="once, or per DOCS_DIR")
    parser.add_argument("--group-field", default="issuer", help="without a manifest's senders")
    parser.add_argument("--errors", action="store_true", help="list each field memory changed or left wrong")
    args = parser.parse_intermixed_args()  # DOCS_DIR --schema S DOCS_DIR --schema S
    if len(args.schema) not in (1, len(args.docs_dirs)):
        parser.error("give --schema once, or once per DOCS_DIR")
    configure_logging("WARNING", "console")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
