"""OCR: where each document's text came from; scans and photos indexed before OCR are queued again.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("text_source", sa.String(length=20), nullable=True))
    # Scanned PDFs and photos were indexed by their metadata only: the next worker OCRs them.
    op.execute(
        sa.text(
            "INSERT INTO outbox (document_id, action, created_at, available_at, attempts) "
            "SELECT id, 'upsert', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 0 FROM documents "
            "WHERE withdrawn_at IS NULL AND index_status = 'indexed' "
            "AND content_type IN ('application/pdf', 'image/jpeg', 'image/png', "
            "'image/heic', 'image/heif') ORDER BY created_at"
        )
    )


def downgrade() -> None:
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_column("text_source")
