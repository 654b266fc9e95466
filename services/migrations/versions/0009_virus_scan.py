"""Virus scanning: each document's scan status, what the scan found, and when.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("documents", schema=None) as batch_op:
        # Files stored before scanning existed were never scanned; a configured scanner scans
        # them when they are next indexed (`materials reindex --extract`).
        batch_op.add_column(
            sa.Column(
                "scan_status", sa.String(length=20), nullable=False, server_default="unscanned"
            )
        )
        batch_op.add_column(sa.Column("scan_detail", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("scanned_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_column("scanned_at")
        batch_op.drop_column("scan_detail")
        batch_op.drop_column("scan_status")
