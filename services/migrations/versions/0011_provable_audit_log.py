"""A provable audit log: events without a global lock, a Merkle tree, signed checkpoints.

Events are inserted with an id and (PostgreSQL) the id of their transaction, and get their
sequence number later from the sequencer (``services.audit_sequencer``), which appends them to a
Merkle tree (``audit_leaves``, ``audit_tree_nodes``) and signs checkpoints (``audit_checkpoints``).
The chained events already stored become the first leaves, in their order: their ids are their
old sequence numbers, and the old chain's head is kept (``audit_legacy_chain``) for the first
checkpoint to carry. Triggers refuse to change or remove what the log holds.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_AT = sa.DateTime(timezone=True)
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite: an alias of the rowid
_EVENT_COLUMNS = "at, actor, org, role, action, document_id, outcome, ip, details"
# Tables nothing may update or delete from (events older than the retention floor excepted).
_APPEND_ONLY = ("audit_events", "audit_leaves", "audit_tree_nodes", "audit_legacy_chain")
# The floor no setting can lower: six months, as the Cybersecurity Law asks (art. 21).
RETENTION_FLOOR_DAYS = 184


def _event_table(name: str, *, postgres: bool) -> None:
    tx_default = sa.text("(pg_current_xact_id()::text::bigint)") if postgres else sa.text("0")
    op.create_table(
        name,
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        # The inserting transaction (PostgreSQL): the sequencer takes only events whose
        # transaction has ended, so none committed late is passed over. SQLite: always 0.
        sa.Column("tx", sa.BigInteger(), nullable=False, server_default=tx_default),
        sa.Column("at", _AT, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("org", sa.String(100), nullable=True),
        sa.Column("role", sa.String(20), nullable=True),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("document_id", sa.String(64), nullable=True),
        sa.Column("outcome", sa.String(10), nullable=False),
        sa.Column("ip", sa.String(64), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sqlite_autoincrement=True,
    )


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"

    op.create_table(
        "audit_legacy_chain",
        sa.Column("head_seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("head_hash", sa.String(64), nullable=False),
        sa.Column("migrated_at", _AT, nullable=False),
    )
    head = bind.execute(
        sa.text("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
    ).first()
    if head is not None:
        bind.execute(
            sa.text(
                "INSERT INTO audit_legacy_chain (head_seq, head_hash, migrated_at) "
                "VALUES (:seq, :hash, CURRENT_TIMESTAMP)"
            ),
            {"seq": head[0], "hash": head[1]},
        )

    _event_table("audit_records", postgres=postgres)
    bind.execute(
        sa.text(
            f"INSERT INTO audit_records (id, tx, {_EVENT_COLUMNS}) "  # noqa: S608 - constants
            f"SELECT seq, 0, {_EVENT_COLUMNS} FROM audit_events ORDER BY seq"
        )
    )
    for index in ("ix_audit_document", "ix_audit_at", "ix_audit_actor_action_at"):
        op.drop_index(index, table_name="audit_events")
    op.drop_table("audit_events")
    op.rename_table("audit_records", "audit_events")
    if postgres:
        bind.execute(
            sa.text(
                "SELECT setval(pg_get_serial_sequence('audit_events', 'id'), "
                "COALESCE((SELECT MAX(id) FROM audit_events), 0) + 1, false)"
            )
        )
    op.create_index("ix_audit_actor_action_at", "audit_events", ["actor", "action", "at"])
    op.create_index("ix_audit_at", "audit_events", ["at"])
    op.create_index("ix_audit_document", "audit_events", ["document_id"])
    op.create_index("ix_audit_tx_id", "audit_events", ["tx", "id"])

    op.create_table(
        "audit_leaves",
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False, unique=True),
        sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False),
    )
    op.create_table(
        "audit_tree_nodes",
        sa.Column("level", sa.SmallInteger(), primary_key=True, autoincrement=False),
        sa.Column("idx", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("tree_size", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("signed_at", _AT, nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        # When the note was written to the object store (NULL: not yet).
        sa.Column("exported_at", _AT, nullable=True),
    )
    op.create_index("ix_audit_checkpoints_unexported", "audit_checkpoints", ["exported_at"])
    op.create_table(
        "audit_sequencer",
        sa.Column("name", sa.String(20), primary_key=True),
        sa.Column("owner", sa.String(200), nullable=True),
        sa.Column("lease_expires_at", _AT, nullable=True),
        # The last event sequenced, by (tx, id): the next batch starts after it.
        sa.Column("last_tx", sa.BigInteger(), nullable=False),
        sa.Column("last_event_id", sa.BigInteger(), nullable=False),
    )
    bind.execute(
        sa.text("INSERT INTO audit_sequencer (name, last_tx, last_event_id) VALUES ('audit', 0, 0)")
    )

    op.add_column("documents", sa.Column("receipt_event_id", sa.BigInteger(), nullable=True))
    bind.execute(sa.text("UPDATE documents SET receipt_event_id = receipt_seq"))

    if postgres:
        _postgres_guards()
    else:
        _sqlite_guards()


def _postgres_guards() -> None:
    op.execute(
        f"""
        CREATE FUNCTION materials_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' AND TG_TABLE_NAME = 'audit_events' THEN
                IF OLD.at < now() - interval '{RETENTION_FLOOR_DAYS} days' THEN
                    RETURN OLD;  -- pruning an archived event past the retention floor
                END IF;
            END IF;
            RAISE EXCEPTION 'the audit log is append-only: % on % refused', TG_OP, TG_TABLE_NAME
                USING ERRCODE = 'insufficient_privilege';
        END $$;
        """
    )
    op.execute(
        """
        CREATE FUNCTION materials_audit_checkpoint_kept() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'UPDATE' THEN
                IF NEW.tree_size = OLD.tree_size AND NEW.root_hash = OLD.root_hash
                   AND NEW.note = OLD.note AND NEW.signed_at = OLD.signed_at THEN
                    RETURN NEW;  -- only the export time is filled in
                END IF;
            END IF;
            RAISE EXCEPTION 'signed checkpoints are kept: % on % refused', TG_OP, TG_TABLE_NAME
                USING ERRCODE = 'insufficient_privilege';
        END $$;
        """
    )
    for table in _APPEND_ONLY:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION materials_audit_append_only()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION materials_audit_append_only()"
        )
    op.execute(
        "CREATE TRIGGER audit_checkpoints_kept BEFORE UPDATE OR DELETE ON audit_checkpoints "
        "FOR EACH ROW EXECUTE FUNCTION materials_audit_checkpoint_kept()"
    )
    op.execute(
        "CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints "
        "FOR EACH STATEMENT EXECUTE FUNCTION materials_audit_checkpoint_kept()"
    )
    # Whatever role the application connects as may add to the log and read it, never change it
    # (deploy/postgres-roles.sql makes that role; the owner running migrations keeps the rights
    # the triggers above still refuse). The tables got their grants from default privileges when
    # they were created above, so they are listed here. TRIGGER too: a trigger of the app's own
    # could rewrite events as they are inserted. PUBLIC is a keyword, not a role name.
    op.execute(
        """
        DO $$
        DECLARE grantee_name text;
        DECLARE target text;
        BEGIN
            FOR grantee_name IN
                SELECT DISTINCT grantee FROM information_schema.role_table_grants
                WHERE table_name IN ('audit_events', 'audit_leaves', 'audit_tree_nodes',
                                     'audit_checkpoints', 'audit_legacy_chain')
                  AND table_schema = current_schema()
                  AND grantee <> current_user
            LOOP
                target := CASE WHEN grantee_name = 'PUBLIC' THEN 'PUBLIC'
                               ELSE quote_ident(grantee_name) END;
                EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE, TRIGGER ON audit_events, '
                               'audit_leaves, audit_tree_nodes, audit_legacy_chain FROM %s',
                               target);
                EXECUTE format('REVOKE DELETE, TRUNCATE, TRIGGER ON audit_checkpoints FROM %s',
                               target);
            END LOOP;
        END $$;
        """
    )


def _sqlite_guards() -> None:
    for table in _APPEND_ONLY:
        when = (
            f"WHEN OLD.at >= datetime('now', '-{RETENTION_FLOOR_DAYS} days')"
            if table == "audit_events"
            else ""
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} {when} "
            "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
            "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
        )
    op.execute(
        "CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints "
        "BEGIN SELECT RAISE(ABORT, 'signed checkpoints are kept'); END"
    )
    op.execute(
        "CREATE TRIGGER audit_checkpoints_kept BEFORE UPDATE ON audit_checkpoints "
        "WHEN NEW.tree_size IS NOT OLD.tree_size OR NEW.root_hash IS NOT OLD.root_hash "
        "OR NEW.note IS NOT OLD.note OR NEW.signed_at IS NOT OLD.signed_at "
        "BEGIN SELECT RAISE(ABORT, 'signed checkpoints are kept'); END"
    )


def downgrade() -> None:
    raise NotImplementedError(
        "the provable audit log cannot be turned back into a hash chain without losing its "
        "signed checkpoints; restore a backup taken before upgrading instead"
    )
