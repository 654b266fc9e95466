"""Ask once: the material catalog, requests, notifications, and documents filling catalog slots.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_AT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "catalog_items",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(length=100), nullable=False, unique=True),
        sa.Column("category", sa.String(length=50), nullable=False),
        sa.Column("cycle", sa.String(length=20), nullable=False),
        sa.Column("due_days", sa.Integer(), nullable=False),
        sa.Column("owed_from", sa.Date(), nullable=False),
        sa.Column("all_townships", sa.Boolean(), nullable=False),
        sa.Column("sharing", sa.String(length=20), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", _AT, nullable=False),
        sa.Column("updated_at", _AT, nullable=False),
    )
    for table in ("catalog_item_townships", "catalog_item_departments"):
        op.create_table(
            table,
            sa.Column("item_id", sa.Integer(), sa.ForeignKey("catalog_items.id"), primary_key=True),
            sa.Column("org_id", sa.Integer(), sa.ForeignKey("orgs.id"), primary_key=True),
        )
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("catalog_item_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_documents_catalog_item_id", "catalog_items", ["catalog_item_id"], ["id"]
        )
        batch_op.create_index("ix_documents_catalog_item_id", ["catalog_item_id"], unique=False)
    op.create_table(
        "material_requests",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("category", sa.String(length=50), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=True),
        sa.Column("due", sa.Date(), nullable=False),
        sa.Column("township_id", sa.Integer(), sa.ForeignKey("orgs.id"), nullable=False),
        sa.Column(
            "catalog_item_id", sa.Integer(), sa.ForeignKey("catalog_items.id"), nullable=True
        ),
        sa.Column("department_id", sa.Integer(), sa.ForeignKey("orgs.id"), nullable=False),
        sa.Column("created_by_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column("repeated", sa.Boolean(), nullable=False),
        sa.Column(
            "joined_to_id", sa.Integer(), sa.ForeignKey("material_requests.id"), nullable=True
        ),
        sa.Column("matches_shown", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("refusal_reason", sa.Text(), nullable=False),
        sa.Column("refusal_document_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", _AT, nullable=False),
        sa.Column("decided_at", _AT, nullable=True),
        sa.Column("sent_at", _AT, nullable=True),
        sa.Column("answered_at", _AT, nullable=True),
        sa.Column("refused_at", _AT, nullable=True),
        sa.Column("overdue_at", _AT, nullable=True),
    )
    op.create_index(
        "ix_material_requests_township_status", "material_requests", ["township_id", "status"]
    )
    op.create_index("ix_material_requests_department", "material_requests", ["department_id"])
    op.create_table(
        "request_departments",
        sa.Column(
            "request_id", sa.Integer(), sa.ForeignKey("material_requests.id"), primary_key=True
        ),
        sa.Column("org_id", sa.Integer(), sa.ForeignKey("orgs.id"), primary_key=True),
        sa.Column(
            "via_request_id", sa.Integer(), sa.ForeignKey("material_requests.id"), nullable=False
        ),
        sa.Column("joined_at", _AT, nullable=False),
    )
    op.create_table(
        "request_documents",
        sa.Column(
            "request_id", sa.Integer(), sa.ForeignKey("material_requests.id"), primary_key=True
        ),
        sa.Column(
            "document_id", sa.String(length=36), sa.ForeignKey("documents.id"), primary_key=True
        ),
        sa.Column("position", sa.Integer(), nullable=False),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("at", _AT, nullable=False),
        sa.Column("text", sa.String(length=500), nullable=False),
        sa.Column("request_id", sa.Integer(), sa.ForeignKey("material_requests.id"), nullable=True),
        sa.Column("document_id", sa.String(length=36), nullable=True),
        sa.Column("read_at", _AT, nullable=True),
    )
    op.create_index("uq_notifications_user_key", "notifications", ["user_id", "key"], unique=True)
    op.create_index("ix_notifications_user_read", "notifications", ["user_id", "read_at"])


def downgrade() -> None:
    op.drop_table("notifications")
    op.drop_table("request_documents")
    op.drop_table("request_departments")
    op.drop_table("material_requests")
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_index("ix_documents_catalog_item_id")
        batch_op.drop_constraint("fk_documents_catalog_item_id", type_="foreignkey")
        batch_op.drop_column("catalog_item_id")
    op.drop_table("catalog_item_departments")
    op.drop_table("catalog_item_townships")
    op.drop_table("catalog_items")
