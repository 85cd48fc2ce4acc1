"""HTTP routes of the schema registry."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import Body, Parameter

from app.api.common import Offset, json_body, problem_responses
from app.api.idempotency import fingerprint, idempotent
from app.auth.keys import Principal, Scope
from app.auth.middleware import requires
from app.lib.problems import (
    BAD_REQUEST,
    INVALID_SCHEMA,
    INVALID_SCHEMA_NAME,
    INVALID_SCHEMA_REFERENCE,
    SCHEMA_DEPRECATED,
    SCHEMA_EXISTS,
    SCHEMA_NOT_FOUND,
    SCHEMA_REMOTE_REF,
    SCHEMA_TOO_COMPLEX,
    SCHEMA_TOO_LARGE,
    SCHEMA_VERSION_NOT_FOUND,
    UNSUPPORTED_MEDIA_TYPE,
)
from app.registry.models import SchemaCreate, SchemaPage, SchemaVersionOut, VersionCreate
from app.registry.refs import MAX_VERSION, REF_PATTERN, VERSION_PATTERN, parse_ref
from app.registry.service import SchemaRegistry

_EXAMPLE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "invoice_number": {"type": "string", "description": "Invoice number as printed."},
        "total": {"type": "number", "description": "Amount due, tax included."},
    },
    "required": ["invoice_number", "total"],
}
_SUBMIT_PROBLEMS = (
    BAD_REQUEST,
    INVALID_SCHEMA,
    SCHEMA_REMOTE_REF,
    SCHEMA_TOO_COMPLEX,
    SCHEMA_TOO_LARGE,
    UNSUPPORTED_MEDIA_TYPE,
)
Registry = NamedDependency[SchemaRegistry]
Limit = Annotated[int, Parameter(ge=1, le=500, description="Items per page.")]
SchemaRefParam = Annotated[
    str,
    Parameter(
        description="`name` (latest version) or `name@version`.", schema_extra={"pattern": REF_PATTERN}
    ),
]
NameParam = Annotated[
    str, Parameter(description="Schema name (no version).", schema_extra={"pattern": "^[^@]+$"})
]
VersionParam = Annotated[
    str,
    Parameter(
        description=f"Version number (1, 2, ... up to {MAX_VERSION}).",
        schema_extra={"pattern": VERSION_PATTERN},
    ),
]


def _created(version: Any, created: bool) -> Response[SchemaVersionOut]:
    return Response(
        SchemaVersionOut.of(version),
        status_code=201 if created else 200,
        headers={"Location": f"/schemas/{version.ref}"},
    )


class SchemaController(Controller):
    path = "/schemas"
    tags = ["schemas"]

    @post(
        "/",
        guards=[requires(Scope.ADMIN), json_body],
        summary="Register a schema (version 1)",
        responses=problem_responses(*_SUBMIT_PROBLEMS, INVALID_SCHEMA_NAME, SCHEMA_EXISTS),
    )
    async def create_schema(
        self,
        request: Request[Principal, Any, Any],
        registry: Registry,
        data: Annotated[
            SchemaCreate,
            Body(
                examples=[
                    Example(
                        summary="A two-field invoice schema",
                        value={
                            "name": "my_invoice",
                            "description": "Invoices from suppliers",
                            "schema": _EXAMPLE_SCHEMA,
                        },
                    )
                ]
            ),
        ],
    ) -> Response[SchemaVersionOut]:
        """Validates the schema and stores it as version 1 of a new name. With an
        `Idempotency-Key`, a retry gets the original response."""

        async def create() -> Response[Any]:
            version = await registry.create(
                data.name, data.schema, data.description, source="api", created_by=request.user.key_id
            )
            return _created(version, created=True)

        request_print = fingerprint("schema", data.name, data.description, data.schema)
        return await idempotent(request, request.user.key_id, request_print, create)

    @post(
        "/{name:str}/versions",
        guards=[requires(Scope.ADMIN), json_body],
        summary="Add a version",
        responses={
            200: ResponseSpec(
                data_container=SchemaVersionOut,
                description="Identical to the latest version, which is returned (nothing is stored).",
            ),
            **problem_responses(*_SUBMIT_PROBLEMS, SCHEMA_NOT_FOUND, SCHEMA_DEPRECATED),
        },
    )
    async def add_version(
        self,
        request: Request[Principal, Any, Any],
        registry: Registry,
        name: NameParam,
        data: Annotated[
            VersionCreate,
            Body(
                examples=[
                    Example(
                        summary="Same schema with a due date",
                        value={"schema": _EXAMPLE_SCHEMA},
                    )
                ]
            ),
        ],
    ) -> Response[SchemaVersionOut]:
        """Stores a new immutable version (201), or returns the latest (200) if it is identical
        (same canonical JSON: key order and whitespace do not count)."""
        ref = parse_ref(name, allow_version=False)

        async def add() -> Response[Any]:
            version, created = await registry.add_version(
                ref.name, data.schema, data.description, source="api", created_by=request.user.key_id
            )
            return _created(version, created)

        request_print = fingerprint("version", ref.name, data.description, data.schema)
        return await idempotent(request, request.user.key_id, request_print, add)

    @get("/", guards=[requires(Scope.EXTRACT)], summary="List schemas (latest version of each)")
    async def list_schemas(
        self,
        registry: Registry,
        limit: Limit = 50,
        offset: Offset = 0,
        include_deprecated: Annotated[bool, Parameter(description="Include deprecated schemas.")] = False,
    ) -> SchemaPage:
        page = await registry.list_latest(limit=limit, offset=offset, include_deprecated=include_deprecated)
        return SchemaPage([SchemaVersionOut.of(v) for v in page.items], page.total, limit, offset)

    @get(
        "/{ref:str}",
        guards=[requires(Scope.EXTRACT)],
        summary="Get a schema version",
        responses=problem_responses(INVALID_SCHEMA_REFERENCE, SCHEMA_NOT_FOUND, SCHEMA_VERSION_NOT_FOUND),
    )
    async def get_schema(self, registry: Registry, ref: SchemaRefParam) -> SchemaVersionOut:
        """`invoice` gives the latest version, `invoice@2` version 2."""
        return SchemaVersionOut.of(await registry.get(parse_ref(ref)))

    @get(
        "/{name:str}/versions",
        guards=[requires(Scope.EXTRACT)],
        summary="List versions",
        responses=problem_responses(INVALID_SCHEMA_REFERENCE, SCHEMA_NOT_FOUND),
    )
    async def list_versions(
        self, registry: Registry, name: NameParam, limit: Limit = 50, offset: Offset = 0
    ) -> SchemaPage:
        page = await registry.list_versions(
            parse_ref(name, allow_version=False).name, limit=limit, offset=offset
        )
        return SchemaPage([SchemaVersionOut.of(v) for v in page.items], page.total, limit, offset)

    @get(
        "/{name:str}/versions/{version:str}",
        guards=[requires(Scope.EXTRACT)],
        summary="Get a version",
        responses=problem_responses(INVALID_SCHEMA_REFERENCE, SCHEMA_NOT_FOUND, SCHEMA_VERSION_NOT_FOUND),
    )
    async def get_version(
        self,
        registry: Registry,
        name: NameParam,
        version: VersionParam,
    ) -> SchemaVersionOut:
        base = parse_ref(name, allow_version=False)
        return SchemaVersionOut.of(await registry.get(parse_ref(f"{base.name}@{version}")))

    @delete(
        "/{name:str}",
        guards=[requires(Scope.ADMIN)],
        status_code=200,
        summary="Deprecate a schema",
        responses=problem_responses(INVALID_SCHEMA_REFERENCE, SCHEMA_NOT_FOUND),
    )
    async def deprecate_schema(self, registry: Registry, name: NameParam) -> SchemaVersionOut:
        """No new versions or extractions; every version stays readable for audit."""
        ref = parse_ref(name, allow_version=False)
        return SchemaVersionOut.of(await registry.set_deprecated(ref.name, deprecated=True))

    @post(
        "/{name:str}/restore",
        guards=[requires(Scope.ADMIN)],
        status_code=200,
        summary="Undo a deprecation",
        responses=problem_responses(INVALID_SCHEMA_REFERENCE, SCHEMA_NOT_FOUND),
    )
    async def restore_schema(self, registry: Registry, name: NameParam) -> SchemaVersionOut:
        ref = parse_ref(name, allow_version=False)
        return SchemaVersionOut.of(await registry.set_deprecated(ref.name, deprecated=False))
