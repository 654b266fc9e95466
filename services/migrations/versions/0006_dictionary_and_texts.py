"""The county dictionary, and each document's extracted text kept for reindexing without extraction.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_AT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "dictionary_words",
        sa.Column("word", sa.String(length=40), primary_key=True),
        sa.Column("added_by_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("added_at", _AT, nullable=False),
    )
    op.create_table(
        "document_texts",
        sa.Column(
            "document_id",
            sa.String(length=36),
            sa.ForeignKey("documents.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("extracted_at", _AT, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("document_texts")
    op.drop_table("dictionary_words")
