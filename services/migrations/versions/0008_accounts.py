"""Accounts: canonical usernames, a forced password change after a reset, revoked tokens.

Revision ID: 0008
Revises: 0007
"""

import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_AT = sa.DateTime(timezone=True)


def _canonical(username: str) -> str:
    # services.names.canonical_username as of this revision (a migration never changes later).
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", username).casefold())


def upgrade() -> None:
    # Plain ADD COLUMN: SQLite would otherwise rebuild the users table, which other rows point at.
    op.add_column("users", sa.Column("canonical_name", sa.String(length=255), nullable=True))
    op.add_column(
        "users",
        sa.Column("must_change_password", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    users = sa.table(
        "users",
        sa.column("id", sa.Integer()),
        sa.column("username", sa.String()),
        sa.column("canonical_name", sa.String()),
    )
    connection = op.get_bind()
    taken: set[str] = set()
    for user_id, username in connection.execute(
        sa.select(users.c.id, users.c.username).order_by(users.c.id)
    ):
        canonical = _canonical(username)[:200]
        if canonical in taken:
            # Look-alikes created before this rule: the older account keeps the name; the newer
            # one signs in only by its exact username (a space never occurs in a canonical name).
            canonical = f"{canonical} #{user_id}"
        taken.add(canonical)
        connection.execute(
            users.update().where(users.c.id == user_id).values(canonical_name=canonical)
        )
    # SQLite would have to rebuild the table to make the column NOT NULL: there it stays
    # nullable, and the app always fills it.
    if connection.dialect.name != "sqlite":
        op.alter_column(
            "users", "canonical_name", existing_type=sa.String(length=255), nullable=False
        )
    op.create_index("ix_users_canonical_name", "users", ["canonical_name"], unique=True)
    op.create_table(
        "revoked_tokens",
        sa.Column("jti", sa.String(length=64), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("revoked_at", _AT, nullable=False),
        sa.Column("expires_at", _AT, nullable=False),
    )
    op.create_index("ix_revoked_tokens_user_id", "revoked_tokens", ["user_id"])
    op.create_index("ix_revoked_tokens_expires_at", "revoked_tokens", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_revoked_tokens_expires_at", table_name="revoked_tokens")
    op.drop_index("ix_revoked_tokens_user_id", table_name="revoked_tokens")
    op.drop_table("revoked_tokens")
    op.drop_index("ix_users_canonical_name", table_name="users")
    op.drop_column("users", "must_change_password")
    op.drop_column("users", "canonical_name")
