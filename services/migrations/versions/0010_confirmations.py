"""Two-person confirmation: accounts and download grants that wait for a second person.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_AT = sa.DateTime(timezone=True)
# The columns naming a user: (table, column).
_USER_REFERENCES = (
    ("users", "requested_by_id"),
    ("users", "confirmed_by_id"),
    ("download_grants", "confirmed_by_id"),
)


def _fk_name(table: str, column: str) -> str:
    return f"fk_{table}_{column}_users"


def upgrade() -> None:
    # Every row that exists is confirmed: the columns start empty (NULL = nothing waits).
    # Plain ADD COLUMN: SQLite would otherwise rebuild the users table, which other rows point
    # at; there the references stay unchecked by the database, and the app always fills them.
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table in ("users", "download_grants"):
        op.add_column(table, sa.Column("pending_since", _AT, nullable=True))
        op.add_column(table, sa.Column("confirmed_at", _AT, nullable=True))
    for table, column in _USER_REFERENCES:
        op.add_column(table, sa.Column(column, sa.Integer(), nullable=True))
        if not sqlite:
            op.create_foreign_key(_fk_name(table, column), table, "users", [column], ["id"])


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table, column in reversed(_USER_REFERENCES):
        if not sqlite:
            op.drop_constraint(_fk_name(table, column), table, type_="foreignkey")
        op.drop_column(table, column)
    for table in ("download_grants", "users"):
        op.drop_column(table, "confirmed_at")
        op.drop_column(table, "pending_since")
