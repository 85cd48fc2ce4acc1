"""Tables. Schema versions are immutable rows; a schema row only tracks its latest version number."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on every dialect (SQLite drops the offset; this puts it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


class SchemaRecord(Base):
    """A named schema. ``latest_version`` doubles as the optimistic-concurrency counter."""

    __tablename__ = "schemas"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    latest_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    deprecated_at: Mapped[datetime | None] = mapped_column(default=None)

    versions: Mapped[list[SchemaVersionRecord]] = relationship(
        back_populates="schema", lazy="raise", order_by="SchemaVersionRecord.version"
    )


class SchemaVersionRecord(Base):
    """One immutable version. The schema is kept as text so its key order survives PostgreSQL."""

    __tablename__ = "schema_versions"
    __table_args__ = (UniqueConstraint("schema_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    schema_id: Mapped[int] = mapped_column(ForeignKey("schemas.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    description: Mapped[str | None] = mapped_column(Text, default=None)
    schema_json: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16))
    """Who made it: ``api``, ``cli`` or ``builtin`` (built-ins are refreshed only while untouched)."""
    created_by: Mapped[str | None] = mapped_column(String(32), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    schema: Mapped[SchemaRecord] = relationship(back_populates="versions", lazy="raise")


class ApiKeyRecord(Base):
    """An API key. Only the SHA-256 of its secret is stored; the key itself is shown once."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    secret_sha256: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    team: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    """Keys of one team see each other's extractions, jobs and batches (a reviewer's key sees what
    the ERP's key extracted)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class BrowserSessionRecord(Base):
    """A signed-in review page: the cookie carries a random token, only its SHA-256 is stored.
    Signing out deletes the row; a revoked key ends its sessions (checked on every request)."""

    __tablename__ = "browser_sessions"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class AppStateRecord(Base):
    """One-off facts about this installation (for example: the first admin key was issued)."""

    __tablename__ = "app_state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DocumentRecord(Base):
    """An uploaded document, stored once per content (SHA-256) for audit until it expires."""

    __tablename__ = "documents"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)
    media_type: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class ExtractionRecord(Base):
    """One extraction result (JSON text), kept until it expires. ``result`` is the current data:
    as extracted, then with each review applied; ``revision`` counts the reviews and is the
    compare-and-set guard (and the ETag) of concurrent reviews."""

    __tablename__ = "extractions"
    __table_args__ = (Index("ix_extractions_created_by_status", "created_by", "status"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    schema_name: Mapped[str] = mapped_column(String(64))
    schema_version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    """``succeeded`` or ``needs_review`` as extracted; ``approved`` or ``rejected`` once reviewed."""
    document_sha256: Mapped[str] = mapped_column(String(64))
    document_name: Mapped[str | None] = mapped_column(String(255), default=None)
    confidence: Mapped[float | None] = mapped_column(Float, default=None)
    review_reasons: Mapped[str] = mapped_column(Text, default="")
    """The review reasons, one per line with a newline before each (a LIKE filter finds a kind)."""
    revision: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(32), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class ExtractionRevisionRecord(Base):
    """One review of an extraction: immutable; who, when, what changed (old -> new), the decision."""

    __tablename__ = "extraction_revisions"
    __table_args__ = (UniqueConstraint("extraction_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    extraction_id: Mapped[str] = mapped_column(ForeignKey("extractions.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    reviewer: Mapped[str] = mapped_column(String(32))
    reviewer_name: Mapped[str] = mapped_column(String(100))
    decision: Mapped[str | None] = mapped_column(String(16), default=None)
    note: Mapped[str | None] = mapped_column(Text, default=None)
    changes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    """``[{"pointer", "old", "new"}]``."""
    status_after: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SenderMemoryRecord(Base):
    """Where a sender prints each field (label, position, format), learnt from approved reviews.
    Per owner: never shared across keys or teams."""

    __tablename__ = "sender_memories"
    __table_args__ = (UniqueConstraint("owner", "schema_name", "sender"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner: Mapped[str] = mapped_column(String(64))
    """The team (``team:<name>``) or key id that taught it."""
    schema_name: Mapped[str] = mapped_column(String(64))
    sender: Mapped[str] = mapped_column(String(200))
    """The sender's identity, e.g. ``vat:DE123456789``, ``iban:...``, ``name:acme gmbh``."""
    identities: Mapped[list[str]] = mapped_column(JSON, default=list)
    """Every identity seen on its documents (any of them finds it)."""
    profile: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    documents: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class JobRecord(Base):
    """One asynchronous extraction. The row is the truth about the job; queues only carry its id.

    A runner claims a job by setting a fresh ``lease_token`` and ``lease_expires_at``; only the
    holder of the current token can report progress or finish it, so a job whose runner died is
    claimed again after the lease expires and still finishes exactly once.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_status_not_before", "status", "not_before"),
        Index("ix_jobs_created_by_status", "created_by", "status"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    schema_name: Mapped[str] = mapped_column(String(64))
    schema_version: Mapped[int] = mapped_column(Integer)
    document_sha256: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str | None] = mapped_column(String(255), default=None)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """Options of the request: ``pages``, ``password_encrypted`` (until the job ends), ``min_confidence``,
    ``require``, ``checks``."""
    callback_url: Mapped[str | None] = mapped_column(String(2048), default=None)
    batch_id: Mapped[str | None] = mapped_column(String(40), default=None, index=True)
    created_by: Mapped[str | None] = mapped_column(String(32), default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime] = mapped_column(default=utcnow)
    lease_token: Mapped[str | None] = mapped_column(String(32), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    pages_done: Mapped[int] = mapped_column(Integer, default=0)
    pages_total: Mapped[int | None] = mapped_column(Integer, default=None)
    extraction_id: Mapped[str | None] = mapped_column(String(40), default=None)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class BatchRecord(Base):
    """Several documents submitted together; ``jobs_finished`` is bumped atomically as each job
    ends, so exactly one finisher sees it reach ``jobs_total`` and fires ``batch.completed``."""

    __tablename__ = "batches"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    schema_name: Mapped[str] = mapped_column(String(64))
    schema_version: Mapped[int] = mapped_column(Integer)
    callback_url: Mapped[str | None] = mapped_column(String(2048), default=None)
    created_by: Mapped[str | None] = mapped_column(String(32), default=None)
    jobs_total: Mapped[int] = mapped_column(Integer)
    jobs_finished: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class WebhookEndpointRecord(Base):
    """A receiver registered with ``POST /webhooks`` (``url`` set), or an API key's secret for the
    per-request ``callback_url`` (``url`` empty). During a rotation the previous secret still signs
    until ``previous_secret_expires_at``."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    url: Mapped[str | None] = mapped_column(String(2048), default=None)
    description: Mapped[str | None] = mapped_column(String(500), default=None)
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    secret: Mapped[str] = mapped_column(String(100))
    previous_secret: Mapped[str | None] = mapped_column(String(100), default=None)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    created_by: Mapped[str | None] = mapped_column(String(32), default=None, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(default=None)
    disabled_reason: Mapped[str | None] = mapped_column(String(200), default=None)


class WebhookDeliveryRecord(Base):
    """One event for one receiver: a durable job of its own. ``id`` is the ``webhook-id`` header,
    the same on every attempt, so receivers can deduplicate."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    endpoint_id: Mapped[str] = mapped_column(String(40), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    event_type: Mapped[str] = mapped_column(String(40))
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    """``pending``, ``delivered``, ``failed`` (gave up or 410) or ``cancelled`` (endpoint gone)."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str | None] = mapped_column(String(500), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class WebhookAttemptRecord(Base):
    """One HTTP attempt of a delivery, for the delivery log."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    attempt: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    duration_ms: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    error: Mapped[str | None] = mapped_column(String(500), default=None)
    response_excerpt: Mapped[str | None] = mapped_column(String(1024), default=None)


class IdempotencyRecord(Base):
    """The response a request with an ``Idempotency-Key`` got, replayed for the same key and body.

    The row is inserted before the work starts (``status_code`` empty while in progress), so a
    concurrent duplicate is told to retry instead of doing the work twice.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("owner", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    headers: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    body: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
