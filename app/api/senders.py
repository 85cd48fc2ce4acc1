"""``GET /senders`` and ``DELETE /senders/{id}``: what sender memory has learnt, and forgetting it.

A memory belongs to the team of the key whose extraction was approved (or to the key alone): a
key sees and forgets its team's memories only, admin keys every one. Another owner's memory is
"not found", as if it did not exist.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get
from litestar.di import NamedDependency
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.common import problem_responses
from app.auth.keys import Principal, Scope
from app.auth.middleware import requires
from app.lib.problems import SENDER_NOT_FOUND, Problem
from app.memory import store

DbSession = NamedDependency[AsyncSession]


class SenderOut(msgspec.Struct):
    id: int
    sender: Annotated[
        str,
        msgspec.Meta(description="What it is named by: `vat:…`, `iban:…`, `name:…` or `layout:…`."),
    ]
    identities: Annotated[
        list[str], msgspec.Meta(description="Every identity its documents printed; any strong one finds it.")
    ]
    schema: str
    documents: Annotated[int, msgspec.Meta(description="Approved documents it learnt from.")]
    fields: Annotated[list[str], msgspec.Meta(description="The JSON Pointers it knows a place for.")]
    created_at: datetime
    updated_at: datetime


class SenderList(msgspec.Struct):
    items: list[SenderOut]


def _owner(principal: Principal) -> str | None:
    """Whose memories the caller sees: its own (its team's); every owner's for admin keys."""
    return None if principal.is_admin else principal.memory_owner


class SenderController(Controller):
    path = "/senders"
    tags = ["senders"]
    guards = [requires(Scope.EXTRACT, Scope.REVIEW)]

    @get("/", summary="List the senders memory has learnt")
    async def list_senders(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        schema: Annotated[str | None, Parameter(description="Only this schema's memories.")] = None,
    ) -> SenderList:
        """The caller's (team's) sender memories, most recently taught first: each learnt from
        approved reviews, read with the next document of that sender (`components.source:
        sender_memory`)."""
        records = await store.listing(db_session, _owner(request.user), schema)
        return SenderList([SenderOut(**store.summary(r)) for r in records])

    @delete(
        "/{sender_id:int}",
        summary="Forget a sender",
        responses=problem_responses(SENDER_NOT_FOUND),
    )
    async def forget_sender(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        sender_id: Annotated[
            int, Parameter(ge=1, le=2**63 - 1, description="The memory's `id` in `GET /senders`.")
        ],
    ) -> None:
        """Delete what was learnt about the sender: its next documents are read without memory
        until a review is approved again."""
        if not await store.forget(db_session, _owner(request.user), sender_id):
            raise Problem(SENDER_NOT_FOUND, f"No sender memory has the id {sender_id}.")
        await db_session.commit()
