"""The domain model: SQLAlchemy 2 mapped classes and the enums they use.

The schema itself is created only by the Alembic migrations beside ``db.py``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    FetchedValue,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from services.names import canonical_username


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC, always returns timezone-aware datetimes (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class OrgKind(StrEnum):
    county = "county"
    township = "township"
    department = "department"


class Role(StrEnum):
    uploader = "uploader"
    reader = "reader"
    auditor = "auditor"
    admin = "admin"
    # The county's burden-reduction office (减负办): keeps the material catalog, approves ad-hoc
    # requests, reads the figures; reads no document content and no audit log.
    coordinator = "coordinator"


# The county's clock: what people read and type is Beijing time; the database keeps UTC.
COUNTY_TIME = ZoneInfo("Asia/Shanghai")

# What people call them, in messages and on pages.
ORG_KIND_NAMES: dict[str, str] = {
    OrgKind.county.value: "县",
    OrgKind.township.value: "乡镇",
    OrgKind.department.value: "县直部门",
}
ROLE_NAMES: dict[str, str] = {
    Role.uploader.value: "乡镇工作人员",
    Role.reader.value: "部门工作人员",
    Role.auditor.value: "审计人员",
    Role.admin.value: "系统管理员",
    Role.coordinator.value: "减负办工作人员",
}


class Visibility(StrEnum):
    departments = "departments"
    restricted = "restricted"
    private = "private"


class IndexStatus(StrEnum):
    pending = "pending"
    indexed = "indexed"
    failed = "failed"


class ScanStatus(StrEnum):
    """What the virus scan (``services/scanning.py``) found of a document's file."""

    pending = "pending"  # stored, waiting for the scanner
    clean = "clean"
    infected = "infected"  # quarantined: never indexed, never served
    too_large = "too_large"  # beyond the scanner's limits: not scanned, flagged
    unscanned = "unscanned"  # no scanner was configured


class TextSource(StrEnum):
    """Where a document's indexed body text came from."""

    text_layer = "text_layer"  # the file's own text (a PDF's text layer, a DOCX's paragraphs…)
    ocr = "ocr"  # recognised in page images: a scan or a photo of paper
    none = "none"  # no body text: indexed by title, tags, description and file name only


class Base(DeclarativeBase):
    pass


class Org(Base):
    __tablename__ = "orgs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("orgs.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    parent: Mapped[Org | None] = relationship(remote_side=[id])


def _canonical_of_username(context: DefaultExecutionContext) -> str:
    """A new user's canonical name, when whoever made the row did not give it."""
    return canonical_username(context.get_current_parameters()["username"])  # type: ignore[no-untyped-call]


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    # NFKC and case-folded (services.names): ａｄｍｉｎ and Admin cannot sit beside admin.
    canonical_name: Mapped[str] = mapped_column(
        String(255), unique=True, index=True, default=_canonical_of_username
    )
    # The person's name as colleagues know it (姓名, e.g. 张明): shown beside the username on pages,
    # "" when none was given. Never recorded in audit events, which name the username.
    display_name: Mapped[str] = mapped_column(String(40), default="", server_default="")
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Tokens and web sessions issued before this moment (a password reset) no longer count.
    credentials_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set by an admin's reset: until the user chooses a password, only that change is allowed.
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    # Two-person rule: an admin's creation, enabling or reset of an auditor or admin waits here
    # for a second person's confirmation (services.access.confirmer_role); meanwhile the account
    # cannot sign in. None: nothing waits.
    pending_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    confirmed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    org: Mapped[Org] = relationship(lazy="joined")
    # Loaded with the account (one level: the requester's own requester is not).
    requested_by: Mapped[User | None] = relationship(
        remote_side=[id], foreign_keys=[requested_by_id], lazy="selectin", join_depth=1
    )


class WebSession(Base):
    """A browser's signed-in session: the cookie holds a random token, the row its hash."""

    __tablename__ = "web_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ip: Mapped[str | None] = mapped_column(String(64))


class RevokedToken(Base):
    """A bearer token ended before its time (logout); kept until it would have expired."""

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    revoked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class Category(Base):
    """An admin-defined category; when any exist, uploads must use one of them."""

    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def new_document_id() -> str:
    return str(uuid.uuid4())


class Document(Base):
    __tablename__ = "documents"
    __table_args__ = (
        # One live document per township and content; a withdrawn one may be submitted again.
        Index(
            "uq_documents_live_township_sha256",
            "township_id",
            "sha256",
            unique=True,
            sqlite_where=text("withdrawn_at IS NULL"),
            postgresql_where=text("withdrawn_at IS NULL"),
        ),
        Index("ix_documents_sha256", "sha256"),
        Index("ix_documents_township_created", "township_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_document_id)
    title: Mapped[str] = mapped_column(String(200))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(120))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(50))
    period: Mapped[str | None] = mapped_column(String(10))
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    description: Mapped[str] = mapped_column(Text, default="")
    visibility: Mapped[str] = mapped_column(String(20))
    township_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"))
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)
    # Grows with every change that queues an outbox event for the document (under its row lock):
    # the search index keeps the highest version it was given and refuses older writes.
    index_version: Mapped[int] = mapped_column(BigInteger, default=1, server_default="1")
    index_status: Mapped[str] = mapped_column(String(20), default=IndexStatus.pending.value)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    withdrawn_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # The audit event that recorded the upload: the receipt's anchor in the log. (The columns
    # receipt_seq and receipt_hash of the former hash chain stay in the table, unused.)
    receipt_event_id: Mapped[int | None] = mapped_column(BigInteger)
    # What indexing found out: why it failed, personal data, photo metadata, a text fingerprint.
    index_error: Mapped[str | None] = mapped_column(String(500))
    # Where the indexed body text came from (TextSource); None until indexed.
    text_source: Mapped[str | None] = mapped_column(String(20))
    # The virus scan of the file (ScanStatus), what it found, and when.
    scan_status: Mapped[str] = mapped_column(String(20), default=ScanStatus.pending.value)
    scan_detail: Mapped[str | None] = mapped_column(String(200))
    scanned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    indexed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    contains_personal_data: Mapped[bool] = mapped_column(Boolean, default=False)
    exif: Mapped[dict[str, object] | None] = mapped_column(JSON)
    fingerprint: Mapped[list[int] | None] = mapped_column(JSON, deferred=True)
    # The catalog slot (item, township, period) this document fills, when it was uploaded for one.
    catalog_item_id: Mapped[int | None] = mapped_column(ForeignKey("catalog_items.id"), index=True)

    township: Mapped[Org] = relationship(lazy="joined")
    uploaded_by: Mapped[User] = relationship(lazy="joined", foreign_keys=[uploaded_by_id])
    departments: Mapped[list[Org]] = relationship(
        secondary="document_departments", lazy="selectin", order_by="Org.name"
    )

    @property
    def department_ids(self) -> frozenset[int]:
        """The ids of the departments a restricted document is shared with."""
        return frozenset(org.id for org in self.departments)


class DocumentText(Base):
    """A document's extracted text, masked of personal data as the index holds it.

    Derived data like the index: kept so that reindexing (a full rebuild, a dictionary change)
    segments it again without fetching and extracting the file. ``sha256`` is the file it came
    from; text of another file is never reused.
    """

    __tablename__ = "document_texts"

    document_id: Mapped[str] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True
    )
    sha256: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    extracted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DictionaryWord(Base):
    """A word of the county dictionary (a village, a programme) that segmentation keeps whole."""

    __tablename__ = "dictionary_words"

    word: Mapped[str] = mapped_column(String(40), primary_key=True)
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IndexAction(StrEnum):
    upsert = "upsert"
    delete = "delete"


class OutboxEvent(Base):
    """A pending change to the search index, written in the same transaction as its cause.

    Workers claim events with a lease (``lease_owner`` until ``lease_expires_at``); an event whose
    lease ran out is claimed again, so a crashed worker loses nothing.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "done_at", "available_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(String(36), index=True)
    action: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    available_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))


class ReindexRun(Base):
    """Progress of a full rebuild of the search index, so an interrupted one can resume."""

    __tablename__ = "reindex_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_document_id: Mapped[str | None] = mapped_column(String(36))
    indexed: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    removed: Mapped[int] = mapped_column(Integer, default=0)


class FingerprintBand(Base):
    """One band of a document's text fingerprint: documents sharing a band may be near-duplicates.

    Lets a new document be compared with the few that could match instead of every one.
    """

    __tablename__ = "fingerprint_bands"
    __table_args__ = (Index("ix_fingerprint_bands_lookup", "township_id", "band", "key"),)

    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"), primary_key=True)
    band: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[int] = mapped_column(BigInteger)
    township_id: Mapped[int] = mapped_column(Integer)


class DocumentSimilarity(Base):
    """Two documents of one township whose text is nearly the same (stored in both directions)."""

    __tablename__ = "document_similarities"

    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"), primary_key=True)
    similar_id: Mapped[str] = mapped_column(ForeignKey("documents.id"), primary_key=True)
    score: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DocumentDepartment(Base):
    """The departments a ``restricted`` document is shared with."""

    __tablename__ = "document_departments"

    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"), primary_key=True)


class DownloadGrant(Base):
    """An admin's permission for one auditor to download one document."""

    __tablename__ = "download_grants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"))
    granted_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Two-person rule: a grant gives no download until a second admin (not ``granted_by``)
    # confirms it. None: confirmed (or from before the rule).
    pending_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    confirmed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditEvent(Base):
    """One entry of the access log, inserted in its action's transaction and never changed.

    Its sequence number, leaf hash and place in the Merkle tree come later, from the sequencer
    (``AuditLeaf``); ``leaf`` is None until then.
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_actor_action_at", "actor", "action", "at"),
        Index("ix_audit_document", "document_id"),
        Index("ix_audit_at", "at"),
        Index("ix_audit_tx_id", "tx", "id"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    # Filled by the database: the inserting transaction (PostgreSQL), 0 on SQLite.
    tx: Mapped[int] = mapped_column(BigInteger, server_default=FetchedValue())
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(200))
    org: Mapped[str | None] = mapped_column(String(100))
    role: Mapped[str | None] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(40))
    document_id: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(10))
    ip: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    leaf: Mapped[AuditLeaf | None] = relationship(
        primaryjoin="AuditEvent.id == foreign(AuditLeaf.event_id)", lazy="joined", viewonly=True
    )

    @property
    def seq(self) -> int | None:
        return self.leaf.seq if self.leaf is not None else None


class AuditLeaf(Base):
    """An event's place in the Merkle tree: leaf index ``seq - 1``, written by the sequencer."""

    __tablename__ = "audit_leaves"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    event_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditTreeNode(Base):
    """The hash of a perfect subtree above the leaves: ``2**level`` leaves from ``idx << level``."""

    __tablename__ = "audit_tree_nodes"

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditCheckpoint(Base):
    """A signed checkpoint: the tree's size and root as a C2SP signed note."""

    __tablename__ = "audit_checkpoints"
    __table_args__ = (Index("ix_audit_checkpoints_unexported", "exported_at"),)

    tree_size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    note: Mapped[str] = mapped_column(Text)
    exported_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditSequencerState(Base):
    """The sequencer's lease (one sequencer at a time) and where its next batch starts."""

    __tablename__ = "audit_sequencer"

    name: Mapped[str] = mapped_column(String(20), primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_tx: Mapped[int] = mapped_column(BigInteger)
    last_event_id: Mapped[int] = mapped_column(BigInteger)


class AuditLegacyChain(Base):
    """The head of the hash chain the log was before it became a Merkle tree."""

    __tablename__ = "audit_legacy_chain"

    head_seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    head_hash: Mapped[str] = mapped_column(String(64))
    migrated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditPrune(Base):
    """A range of the log whose events were archived to the object store, then deleted.

    Their leaves stay in the tree; verification accepts their missing events only inside a
    recorded range."""

    __tablename__ = "audit_prunes"

    last_seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    first_seq: Mapped[int] = mapped_column(BigInteger)
    deleted: Mapped[int] = mapped_column(Integer)
    archive_name: Mapped[str] = mapped_column(String(300))
    archive_sha256: Mapped[str] = mapped_column(String(64))
    pruned_at: Mapped[datetime] = mapped_column(UTCDateTime)
    pruned_by: Mapped[str] = mapped_column(String(200))


class LoginAttempt(Base):
    """Recent failed logins of one account from one address, of one account, or of one address.

    A login takes these rows' locks before the password is checked, so concurrent attempts are
    counted one after another (``services.login_guard``).
    """

    __tablename__ = "login_attempts"
    __table_args__ = (Index("ix_login_attempts_last_at", "last_at"),)

    scope: Mapped[str] = mapped_column(String(10), primary_key=True)  # pair, account, address
    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Cycle(StrEnum):
    """How often a catalog item is owed: once, or once per month, quarter or year."""

    once = "once"
    monthly = "monthly"
    quarterly = "quarterly"
    yearly = "yearly"


class Sharing(StrEnum):
    """The sharing class of a catalog item (无条件共享 / 有条件共享 / 不予共享)."""

    unconditional = "unconditional"
    conditional = "conditional"
    none = "none"


CYCLE_NAMES: dict[str, str] = {
    Cycle.once.value: "一次性",
    Cycle.monthly.value: "每月",
    Cycle.quarterly.value: "每季度",
    Cycle.yearly.value: "每年",
}
SHARING_NAMES: dict[str, str] = {
    Sharing.unconditional.value: "无条件共享",
    Sharing.conditional.value: "有条件共享",
    Sharing.none.value: "不予共享",
}


class CatalogItem(Base):
    """A recurring material the county's townships owe (材料目录), kept by coordinators."""

    __tablename__ = "catalog_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    category: Mapped[str] = mapped_column(String(50))
    cycle: Mapped[str] = mapped_column(String(20))
    due_days: Mapped[int] = mapped_column(Integer)
    # Owed for the periods that end on or after this day (by default the day it was added).
    owed_from: Mapped[date] = mapped_column(Date)
    # Owed by every township, or only by those in ``townships``.
    all_townships: Mapped[bool] = mapped_column(Boolean, default=True)
    sharing: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    townships: Mapped[list[Org]] = relationship(
        secondary="catalog_item_townships", lazy="selectin", order_by="Org.name"
    )
    departments: Mapped[list[Org]] = relationship(
        secondary="catalog_item_departments", lazy="selectin", order_by="Org.name"
    )


class CatalogItemTownship(Base):
    __tablename__ = "catalog_item_townships"

    item_id: Mapped[int] = mapped_column(ForeignKey("catalog_items.id"), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"), primary_key=True)


class CatalogItemDepartment(Base):
    __tablename__ = "catalog_item_departments"

    item_id: Mapped[int] = mapped_column(ForeignKey("catalog_items.id"), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"), primary_key=True)


class RequestStatus(StrEnum):
    draft = "draft"
    answered_from_repository = "answered_from_repository"
    joined = "joined"
    pending_approval = "pending_approval"
    sent = "sent"
    refused = "refused"
    answered = "answered"


REQUEST_STATUS_NAMES: dict[str, str] = {
    RequestStatus.draft.value: "草稿",
    RequestStatus.answered_from_repository.value: "已从共享库获取",
    RequestStatus.joined.value: "已并入同类需求",
    RequestStatus.pending_approval.value: "待减负办审核",
    RequestStatus.sent.value: "已发送乡镇",
    RequestStatus.refused.value: "未予准入",
    RequestStatus.answered.value: "乡镇已答复",
}


class MaterialRequest(Base):
    """A department's request for a material from one township (材料需求), from draft to answer."""

    __tablename__ = "material_requests"
    __table_args__ = (
        Index("ix_material_requests_township_status", "township_id", "status"),
        Index("ix_material_requests_department", "department_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str] = mapped_column(String(50))
    period: Mapped[str | None] = mapped_column(String(10))
    due: Mapped[date] = mapped_column(Date)
    township_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"))
    catalog_item_id: Mapped[int | None] = mapped_column(ForeignKey("catalog_items.id"))
    department_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"))
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(30), default=RequestStatus.draft.value)
    repeated: Mapped[bool] = mapped_column(Boolean, default=False)
    joined_to_id: Mapped[int | None] = mapped_column(ForeignKey("material_requests.id"))
    # How many of the township's documents the draft showed: sending then needs a reason.
    matches_shown: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str] = mapped_column(Text, default="")  # why it is sent despite the matches
    refusal_reason: Mapped[str] = mapped_column(Text, default="")
    refusal_document_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # left the draft state
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    refused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the due-date job found it sent and past due (it notified the township then).
    overdue_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    township: Mapped[Org] = relationship(lazy="joined", foreign_keys=[township_id])
    department: Mapped[Org] = relationship(lazy="joined", foreign_keys=[department_id])
    created_by: Mapped[User] = relationship(lazy="joined", foreign_keys=[created_by_id])
    catalog_item: Mapped[CatalogItem | None] = relationship(lazy="joined")
    joined_departments: Mapped[list[RequestDepartment]] = relationship(
        lazy="selectin",
        order_by="RequestDepartment.joined_at",
        cascade="all, delete-orphan",
        foreign_keys="RequestDepartment.request_id",
    )
    answer_documents: Mapped[list[RequestDocument]] = relationship(
        lazy="selectin", order_by="RequestDocument.position", cascade="all, delete-orphan"
    )

    @property
    def document_ids(self) -> list[str]:
        return [link.document_id for link in self.answer_documents]

    @property
    def department_names(self) -> list[str]:
        """Every department the request answers, its creator's first."""
        return [self.department.name, *(j.department.name for j in self.joined_departments)]


class RequestDepartment(Base):
    """A department that joined a request instead of asking again (through its own request)."""

    __tablename__ = "request_departments"

    request_id: Mapped[int] = mapped_column(ForeignKey("material_requests.id"), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"), primary_key=True)
    via_request_id: Mapped[int] = mapped_column(ForeignKey("material_requests.id"))
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    department: Mapped[Org] = relationship(lazy="joined")


class RequestDocument(Base):
    """A document that answers a request (by the township, or accepted from the repository)."""

    __tablename__ = "request_documents"

    request_id: Mapped[int] = mapped_column(ForeignKey("material_requests.id"), primary_key=True)
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class NotificationKind(StrEnum):
    request_sent = "request_sent"
    request_due = "request_due"
    request_overdue = "request_overdue"
    request_answered = "request_answered"
    request_refused = "request_refused"
    request_joined = "request_joined"


class Notification(Base):
    """A message in one user's in-app list; ``key`` makes each one be sent only once."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index("uq_notifications_user_key", "user_id", "key", unique=True),
        Index("ix_notifications_user_read", "user_id", "read_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(30))
    key: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    text: Mapped[str] = mapped_column(String(500))
    request_id: Mapped[int | None] = mapped_column(ForeignKey("material_requests.id"))
    document_id: Mapped[str | None] = mapped_column(String(36))
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
