"""The review loop: extraction revisions, review columns, API key teams, sender memory.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _utc(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("team", sa.String(length=64), nullable=True))
        batch.create_index(batch.f("ix_api_keys_team"), ["team"], unique=False)
    with op.batch_alter_table("extractions") as batch:
        batch.add_column(sa.Column("document_name", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("confidence", sa.Float(), nullable=True))
        batch.add_column(sa.Column("review_reasons", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("revision", sa.Integer(), nullable=False, server_default="0"))
        batch.create_index(batch.f("ix_extractions_created_at"), ["created_at"], unique=False)
        batch.create_index("ix_extractions_created_by_status", ["created_by", "status"], unique=False)
    with op.batch_alter_table("extractions") as batch:
        batch.alter_column("review_reasons", server_default=None)
        batch.alter_column("revision", server_default=None)
    op.create_table(
        "browser_sessions",
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        _utc("created_at"),
        _utc("expires_at"),
        sa.PrimaryKeyConstraint("token_sha256", name=op.f("pk_browser_sessions")),
    )
    op.create_index(op.f("ix_browser_sessions_key_id"), "browser_sessions", ["key_id"], unique=False)
    op.create_index(op.f("ix_browser_sessions_expires_at"), "browser_sessions", ["expires_at"], unique=False)
    op.create_table(
        "extraction_revisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("extraction_id", sa.String(length=40), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("reviewer", sa.String(length=32), nullable=False),
        sa.Column("reviewer_name", sa.String(length=100), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("status_after", sa.String(length=16), nullable=False),
        _utc("created_at"),
        sa.ForeignKeyConstraint(
            ["extraction_id"],
            ["extractions.id"],
            name=op.f("fk_extraction_revisions_extraction_id_extractions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_extraction_revisions")),
        sa.UniqueConstraint("extraction_id", "number", name=op.f("uq_extraction_revisions_extraction_id")),
    )
    op.create_index(
        op.f("ix_extraction_revisions_extraction_id"), "extraction_revisions", ["extraction_id"], unique=False
    )
    op.create_table(
        "sender_memories",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("schema_name", sa.String(length=64), nullable=False),
        sa.Column("sender", sa.String(length=200), nullable=False),
        sa.Column("identities", sa.JSON(), nullable=False),
        sa.Column("profile", sa.JSON(), nullable=False),
        sa.Column("documents", sa.Integer(), nullable=False),
        _utc("created_at"),
        _utc("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sender_memories")),
        sa.UniqueConstraint("owner", "schema_name", "sender", name=op.f("uq_sender_memories_owner")),
    )


def downgrade() -> None:
    op.drop_table("sender_memories")
    op.drop_index(op.f("ix_browser_sessions_expires_at"), table_name="browser_sessions")
    op.drop_index(op.f("ix_browser_sessions_key_id"), table_name="browser_sessions")
    op.drop_table("browser_sessions")
    op.drop_index(op.f("ix_extraction_revisions_extraction_id"), table_name="extraction_revisions")
    op.drop_table("extraction_revisions")
    with op.batch_alter_table("extractions") as batch:
        batch.drop_index("ix_extractions_created_by_status")
        batch.drop_index(batch.f("ix_extractions_created_at"))
        batch.drop_column("revision")
        batch.drop_column("review_reasons")
        batch.drop_column("confidence")
        batch.drop_column("document_name")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_index(batch.f("ix_api_keys_team"))
        batch.drop_column("team")
