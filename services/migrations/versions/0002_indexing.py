"""Indexing: the outbox, near-duplicate links, and what extraction found on documents.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("document_id", sa.String(length=36), nullable=False),
        sa.Column("action", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("available_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(length=100), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_document_id"), ["document_id"], unique=False)
        batch_op.create_index("ix_outbox_pending", ["done_at", "available_at"], unique=False)

    op.create_table(
        "reindex_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_document_id", sa.String(length=36), nullable=True),
        sa.Column("indexed", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("removed", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "fingerprint_bands",
        sa.Column("document_id", sa.String(length=36), nullable=False),
        sa.Column("band", sa.Integer(), nullable=False),
        sa.Column("key", sa.BigInteger(), nullable=False),
        sa.Column("township_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["document_id"], ["documents.id"]),
        sa.PrimaryKeyConstraint("document_id", "band"),
    )
    op.create_index(
        "ix_fingerprint_bands_lookup", "fingerprint_bands", ["township_id", "band", "key"]
    )
    op.create_table(
        "document_similarities",
        sa.Column("document_id", sa.String(length=36), nullable=False),
        sa.Column("similar_id", sa.String(length=36), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
        ),
        sa.ForeignKeyConstraint(
            ["similar_id"],
            ["documents.id"],
        ),
        sa.PrimaryKeyConstraint("document_id", "similar_id"),
    )
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("index_error", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("indexed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column(
                "contains_personal_data", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
        batch_op.add_column(sa.Column("exif", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("fingerprint", sa.JSON(), nullable=True))

    # Documents uploaded before indexing existed get indexed by the first worker that runs.
    op.execute(
        sa.text(
            "INSERT INTO outbox (document_id, action, created_at, available_at, attempts) "
            "SELECT id, 'upsert', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 0 FROM documents "
            "WHERE withdrawn_at IS NULL ORDER BY created_at"
        )
    )


def downgrade() -> None:
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_column("fingerprint")
        batch_op.drop_column("exif")
        batch_op.drop_column("contains_personal_data")
        batch_op.drop_column("indexed_at")
        batch_op.drop_column("index_error")

    op.drop_table("document_similarities")
    op.drop_table("reindex_runs")
    op.drop_index("ix_fingerprint_bands_lookup", table_name="fingerprint_bands")
    op.drop_table("fingerprint_bands")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_pending")
        batch_op.drop_index(batch_op.f("ix_outbox_document_id"))

    op.drop_table("outbox")
