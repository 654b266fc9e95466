"""Pruning archived audit events: a record of each prune, itself never changed or removed.

``audit_prunes`` says which range of sequence numbers was archived (and where the archive is in
the object store) before its events were deleted; verification accepts a missing event only
inside a recorded range, and still holds that range's leaf hashes against the signed roots.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_prunes",
        sa.Column("last_seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("first_seq", sa.BigInteger(), nullable=False),
        sa.Column("deleted", sa.Integer(), nullable=False),
        sa.Column("archive_name", sa.String(300), nullable=False),
        sa.Column("archive_sha256", sa.String(64), nullable=False),
        sa.Column("pruned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pruned_by", sa.String(200), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        # The function of migration 0011: refuses every UPDATE, DELETE and TRUNCATE here.
        op.execute(
            "CREATE TRIGGER audit_prunes_append_only BEFORE UPDATE OR DELETE ON audit_prunes "
            "FOR EACH ROW EXECUTE FUNCTION materials_audit_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_prunes_no_truncate BEFORE TRUNCATE ON audit_prunes "
            "FOR EACH STATEMENT EXECUTE FUNCTION materials_audit_append_only()"
        )
        op.execute(
            """
            DO $$
            DECLARE grantee_name text;
            BEGIN
                FOR grantee_name IN
                    SELECT DISTINCT grantee FROM information_schema.role_table_grants
                    WHERE table_name = 'audit_prunes' AND table_schema = current_schema()
                      AND grantee <> current_user
                LOOP
                    EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE, TRIGGER ON audit_prunes '
                                   'FROM %s', CASE WHEN grantee_name = 'PUBLIC' THEN 'PUBLIC'
                                                   ELSE quote_ident(grantee_name) END);
                END LOOP;
            END $$;
            """
        )
    else:
        for operation in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_prunes_no_{operation.lower()} BEFORE {operation} "
                "ON audit_prunes BEGIN SELECT RAISE(ABORT, 'prune records are kept'); END"
            )


def downgrade() -> None:
    op.drop_table("audit_prunes")
