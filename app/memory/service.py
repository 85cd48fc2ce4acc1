"""Sender memory at work: learning from an approved review, and the lookup an extraction reads
the next document of that sender with."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import ApiKeyRecord, ExtractionRecord
from app.documents.analyze import AnalyzeOptions
from app.documents.detect import detect_type
from app.documents.service import DocumentAnalyzer
from app.documents.textmap import PageMap
from app.lexicon import concepts_named, fold_phrase, name_words
from app.memory import store
from app.memory.identity import identify
from app.memory.profile import Profile, learn
from app.trust.normalize import normalize

logger = structlog.get_logger(__name__)

MemoryLookup = Callable[[PageMap], Awaitable[Profile | None]]
"""Given the first analysed page of a document, the sender's remembered profile (or None)."""


async def memory_owner_of(session: AsyncSession, key_id: str | None) -> str:
    """Who owns what an extraction made by ``key_id`` teaches: its key's team, or the key alone
    (``Principal.memory_owner`` for a key that is not the caller)."""
    record = await session.get(ApiKeyRecord, key_id) if key_id else None
    if record is not None and record.team:
        return f"team:{record.team}"
    return f"key:{key_id or '-'}"


def memory_lookup(
    owner: str,
    schema_name: str,
    *,
    session: AsyncSession | None = None,
    sessions: async_sessionmaker[AsyncSession] | None = None,
) -> MemoryLookup:
    """The lookup ``Extractor.extract`` takes, bound to the owner and the schema: in the request's
    ``session``, or in a session of its own from ``sessions`` (jobs). A database error costs the
    memory, not the extraction."""

    async def lookup(page: PageMap) -> Profile | None:
        identities = await asyncio.to_thread(identify, [page])
        if not identities:
            return None
        try:
            if session is not None:
                record = await store.find(session, owner, schema_name, identities)
            else:
                assert sessions is not None
                async with sessions() as own:
                    record = await store.find(own, owner, schema_name, identities)
        except SQLAlchemyError:
            logger.warning("sender_memory_unavailable", exc_info=True)
            if session is not None:
                await session.rollback()  # the request's session goes on to store the result
            return None
        if record is None:
            return None
        logger.info("sender_memory_found", sender=record.sender, documents=record.documents)
        profile: Profile = record.profile
        return profile

    return lookup


async def learn_from_approved(
    session: AsyncSession,
    analyzer: DocumentAnalyzer,
    record: ExtractionRecord,
    result: dict[str, Any],
    document: bytes,
) -> str | None:
    """After a person approved an extraction: remember where its sender prints each field (the
    document analysed again, its OCR answered from the cache), merged into what earlier approvals
    of that sender taught. Commits. The sender learnt, or None when the document names no sender
    or none of its values could be placed."""
    if detect_type(document[:1024]) == "xml":  # an e-invoice upload: no page to learn positions on
        return None
    numbers = [int(p["page"]) for p in result.get("pages") or [] if "page" in p]
    options = AnalyzeOptions(pages=",".join(map(str, numbers)) if numbers else None, ocr=True, layout=False)
    analysis = await analyzer.analyze(document, options)
    pages = analysis.map.pages
    identities, profile = await asyncio.to_thread(_teach, pages, result)
    if not identities or not profile["fields"]:
        return None
    owner = await memory_owner_of(session, record.created_by)
    memory = await store.remember(session, owner, record.schema_name, identities, profile)
    sender = memory.sender
    await session.commit()
    logger.info("sender_memory_learnt", sender=sender, fields=len(profile["fields"]))
    return sender


def _teach(pages: list[PageMap], result: dict[str, Any]) -> tuple[list[str], Profile]:
    """The sender's identities (the page's, with the seller's name from the result, confirmed as
    ``seller:`` when the header prints it, without codes the result says are the buyer's) and the
    profile."""
    identities = identify(pages)
    for pointer, value in _leaves(result.get("data")):
        words = tuple(w for part in pointer.split("/") for w in name_words(part))
        parties = {c.party for c in concepts_named(words) if c.party is not None}
        kind = ((result.get("fields") or {}).get(pointer) or {}).get("normalized", {}).get("kind")
        if parties == {"seller"} and kind == "text" and isinstance(value, str) and fold_phrase(value):
            name = fold_phrase(value)[:150]
            if f"name:{name}" in identities:  # the header's name is the seller's, a person said so
                identities.append(f"seller:{name}")
            identities.append(f"name:{name}")
        if parties == {"buyer"} and kind in ("vat_id", "iban"):
            code = normalize(value, kind).value
            prefix = "vat" if kind == "vat_id" else "iban"
            identities = [i for i in identities if i != f"{prefix}:{code}"]
    return list(dict.fromkeys(identities)), learn(pages, result)


def _leaves(data: Any, pointer: str = "") -> list[tuple[str, Any]]:
    if isinstance(data, dict):
        return [leaf for key, value in data.items() for leaf in _leaves(value, f"{pointer}/{key}")]
    return [] if isinstance(data, list) or data is None else [(pointer, data)]
