"""Login attempts counted per account and source address, each row locked while it is updated.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_AT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "login_attempts",
        # "pair" (one account from one address), "account" or "address"; key names which.
        sa.Column("scope", sa.String(length=10), primary_key=True),
        sa.Column("key", sa.String(length=300), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_at", _AT, nullable=False),
        sa.Column("locked_until", _AT, nullable=True),
    )
    op.create_index("ix_login_attempts_last_at", "login_attempts", ["last_at"])


def downgrade() -> None:
    op.drop_index("ix_login_attempts_last_at", table_name="login_attempts")
    op.drop_table("login_attempts")
