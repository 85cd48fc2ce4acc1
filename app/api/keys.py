"""HTTP routes to manage API keys (admin scope)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.openapi.spec import Example
from litestar.params import Body, Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.common import json_body, problem_responses
from app.auth.keys import ApiKeys, Scope
from app.auth.middleware import requires
from app.db.models import ApiKeyRecord
from app.lib.problems import API_KEY_NOT_FOUND, BAD_REQUEST, INVALID_REQUEST

DbSession = NamedDependency[AsyncSession]


# The constraints the key store checks (422 invalid-request), documented in the OpenAPI spec only:
# enforced by the decoder they would answer a generic 400 instead.
KeyName = Annotated[
    str,
    msgspec.Meta(extra_json_schema={"extra": {"minLength": 1, "maxLength": 100, "pattern": r"\S"}}),
]
Scopes = Annotated[
    list[str],
    msgspec.Meta(
        extra_json_schema={
            "extra": {
                "minItems": 1,
                "items": {"type": "string", "enum": [s.value for s in Scope]},
                "description": "`admin` (everything), `extract` (read schemas, extract, review) and/or "
                "`review` (list, read and review extractions; the review page).",
            }
        }
    ),
]


TeamName = Annotated[
    str,
    msgspec.Meta(
        extra_json_schema={"extra": {"minLength": 1, "maxLength": 64, "pattern": r"\S"}},
        description="Keys of one team see each other's extractions, jobs and batches (and review them).",
    ),
]


class KeyCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: KeyName
    scopes: Scopes
    team: TeamName | None = None


class KeyOut(msgspec.Struct):
    id: str
    name: str
    scopes: list[str]
    team: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, r: ApiKeyRecord) -> KeyOut:
        return cls(r.id, r.name, list(r.scopes), r.team, r.created_at, r.last_used_at, r.revoked_at)


class KeyPage(msgspec.Struct):
    items: list[KeyOut]


class IssuedKeyOut(msgspec.Struct):
    key: str
    """The secret key. It is shown only in this response; store it now."""
    api_key: KeyOut


class KeyController(Controller):
    path = "/keys"
    tags = ["keys"]
    guards = [requires(Scope.ADMIN)]

    @post(
        "/",
        guards=[json_body],
        summary="Create an API key",
        responses=problem_responses(BAD_REQUEST, INVALID_REQUEST),
    )
    async def create_key(
        self,
        db_session: DbSession,
        data: Annotated[
            KeyCreate,
            Body(
                examples=[
                    Example(
                        summary="A key for the ERP connector",
                        value={"name": "erp", "scopes": ["extract"]},
                    )
                ]
            ),
        ],
    ) -> IssuedKeyOut:
        issued = await ApiKeys(db_session).create(data.name, data.scopes, data.team)
        return IssuedKeyOut(issued.key, KeyOut.of(issued.record))

    @get("/", summary="List API keys")
    async def list_keys(
        self,
        db_session: DbSession,
        include_revoked: Annotated[bool, Parameter(description="Include revoked keys.")] = False,
    ) -> KeyPage:
        """Every key, oldest first, as `items` like the other lists."""
        return KeyPage(
            [KeyOut.of(r) for r in await ApiKeys(db_session).list(include_revoked=include_revoked)]
        )

    @delete(
        "/{key_id:str}",
        status_code=200,
        summary="Revoke an API key",
        responses=problem_responses(API_KEY_NOT_FOUND),
    )
    async def revoke_key(
        self, db_session: DbSession, key_id: Annotated[str, Parameter(description="The key's id.")]
    ) -> KeyOut:
        """Takes effect on the next request; revoking twice is harmless."""
        return KeyOut.of(await ApiKeys(db_session).revoke(key_id))
