"""Response shapes of the HTTP API (see API.md), built from domain objects."""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from services.administration import GrantEntry, PendingAccount
from services.audit import event_time
from services.audit_tree import ConsistencyProof, InclusionProof
from services.audit_verify import VerifyReport
from services.dictionary import MAX_WORDS_AT_ONCE, DictionaryListing
from services.document_rows import ListedDocument
from services.documents import Receipt
from services.models import AuditEvent, Category, Document, Org, User
from services.personal_data import mask_personal_data
from services.searching import SearchPage
from services.usage import DocumentUsage

# Ids are the database's integers, 1 to 2³¹−1 on every backend. Anything else names nothing: it is
# refused (422, and audited for a signed-in caller) before it reaches a query, where it could
# overflow. Every integer id a route takes, in a path, query, form or body, is a DbId.
MAX_ID = 2**31 - 1
DbId = Annotated[int, Field(ge=1, le=MAX_ID)]
_NUMBER = re.compile(r"[+-]?\d+")


def _id_in_range(ref: str) -> str:
    if _NUMBER.fullmatch(ref.strip()) and not 1 <= int(ref) <= MAX_ID:
        raise ValueError(f"编号须在 1 到 {MAX_ID} 之间")
    return ref


# An organisation named by its name or by its id: a number must then be a possible id.
OrgNameOrId = Annotated[str, AfterValidator(_id_in_range)]


class OrgRef(BaseModel):
    id: int
    name: str


class OrgOut(BaseModel):
    id: int
    name: str
    kind: str
    parent_id: int | None = None

    @classmethod
    def of(cls, org: Org) -> OrgOut:
        return cls(id=org.id, name=org.name, kind=org.kind, parent_id=org.parent_id)


class MeOut(BaseModel):
    username: str
    display_name: str = ""  # the person's name (姓名), "" when the admin gave none
    role: str
    org: OrgOut
    # After an admin's reset: everything but /me, /me/password and logout answers 403 until then.
    must_change_password: bool = False


class UserOut(BaseModel):
    id: int
    username: str
    display_name: str = ""  # the person's name (姓名), "" when none was given
    role: str
    org: OrgOut
    active: bool
    must_change_password: bool = False
    # An admin's change to an auditor or admin account waiting for a second person: until it is
    # confirmed (POST /users/{username}/confirm) the account cannot sign in.
    pending_confirmation: bool = False
    pending_since: datetime | None = None
    requested_by: str | None = None  # the admin who asked for the change, by username

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            id=user.id,
            username=user.username,
            display_name=user.display_name or "",
            role=user.role,
            org=OrgOut.of(user.org),
            active=user.active,
            must_change_password=bool(user.must_change_password),
            pending_confirmation=user.pending_since is not None,
            pending_since=user.pending_since,
            requested_by=user.requested_by.username if user.requested_by else None,
        )


class PendingAccountOut(UserOut):
    """A waiting account as the one who may confirm it reads it."""

    may_confirm: bool  # false for one's own request or one's own account

    @classmethod
    def of_pending(cls, pending: PendingAccount) -> PendingAccountOut:
        return cls(**UserOut.of(pending.user).model_dump(), may_confirm=pending.may_confirm)


class CategoryOut(BaseModel):
    id: int
    name: str

    @classmethod
    def of(cls, category: Category) -> CategoryOut:
        return cls(id=category.id, name=category.name)


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int


class SimilarOut(BaseModel):
    """A near-duplicate of a document: same township, nearly the same text."""

    id: str
    title: str
    similarity: float


class SameTitleOut(BaseModel):
    """Another live document of the same township with the same title and period: lists show
    the two as identical lines, so one of them may be a second upload of the same material."""

    id: str
    title: str
    period: str | None
    created_at: datetime


class DocumentOut(BaseModel):
    id: str
    title: str
    filename: str
    content_type: str
    size: int
    sha256: str
    category: str
    period: str | None
    tags: list[str]
    description: str
    visibility: str
    departments: list[str] | None = None
    township: OrgRef
    uploaded_by: str
    created_at: datetime
    version: int
    index_status: str
    duplicate: bool = False
    withdrawn_at: datetime | None = None
    index_error: str | None = None
    # Where the body text came from: text_layer | ocr | none; null until indexed.
    text_source: str | None = None
    # The virus scan: pending | clean | infected | too_large | unscanned, and what it found.
    scan_status: str = "unscanned"
    scan_detail: str | None = None
    contains_personal_data: bool = False
    exif: dict[str, Any] | None = None
    similar_to: list[SimilarOut] = []
    # Filled on the upload's answer and on a document's own GET (not in lists or searches).
    same_title_and_period: list[SameTitleOut] = Field(
        default_factory=list,
        description="本乡镇已有的同名同期材料（标题和所属期间都相同），最早上传的在前 / The "
        "township's other live documents with the same title and period, oldest first",
    )
    catalog_item: int | None = None
    # Filled on the upload's answer only.
    answered_requests: list[int] = Field(
        default_factory=list,
        description="这次上传报送了目录材料，因而自动答复的需求编号 / The requests sent for the "
        "catalog slot this upload filed, which it answered",
    )

    @classmethod
    def of(
        cls,
        document: Document | ListedDocument,
        *,
        duplicate: bool = False,
        similar: Sequence[tuple[Document, float]] = (),
        same_title: Sequence[Document] = (),
        answered_requests: Sequence[int] = (),
        reveal: bool = False,
    ) -> DocumentOut:
        """The document as the API shows it; personal data in what the uploader typed (title,
        file name, category, tags, description) is masked unless ``reveal``: only for a caller
        who may download the file anyway, which holds the same data."""

        def shown(text: str) -> str:
            return text if reveal else mask_personal_data(text)[0]

        return cls(
            id=document.id,
            title=shown(document.title),
            filename=shown(document.filename),
            content_type=document.content_type,
            size=document.size,
            sha256=document.sha256,
            category=shown(document.category),
            period=document.period,
            tags=[shown(tag) for tag in document.tags],
            description=shown(document.description),
            visibility=document.visibility,
            departments=(
                [org.name for org in document.departments]
                if document.visibility == "restricted"
                else None
            ),
            township=OrgRef(id=document.township.id, name=document.township.name),
            uploaded_by=document.uploaded_by.username,
            created_at=document.created_at,
            version=document.version,
            index_status=document.index_status,
            duplicate=duplicate,
            withdrawn_at=document.withdrawn_at,
            index_error=document.index_error,
            text_source=document.text_source,
            scan_status=document.scan_status,
            scan_detail=document.scan_detail,
            contains_personal_data=document.contains_personal_data,
            exif=document.exif,
            similar_to=[
                SimilarOut(
                    id=other.id,
                    title=mask_personal_data(other.title)[0],
                    similarity=round(score, 3),
                )
                for other, score in similar
            ],
            same_title_and_period=[
                SameTitleOut(
                    id=other.id,
                    title=mask_personal_data(other.title)[0],
                    period=other.period,
                    created_at=other.created_at,
                )
                for other in same_title
            ],
            catalog_item=document.catalog_item_id,
            answered_requests=list(answered_requests),
        )


class DocumentListOut(BaseModel):
    total: int
    page: int
    size: int
    documents: list[DocumentOut]


class SearchHitOut(BaseModel):
    document: DocumentOut
    score: float
    highlights: list[str]


class FacetBucketOut(BaseModel):
    key: str
    count: int


class ReadingOut(BaseModel):
    typed: str = Field(description="输入的词")
    meant: str = Field(description="实际检索的词")


class SearchOut(BaseModel):
    total: int
    page: int
    size: int
    hits: list[SearchHitOut]
    facets: dict[str, list[FacetBucketOut]]
    relaxed: bool = Field(
        default=False,
        description="没有同时含全部词语的材料：结果为含部分词语的材料（按所含词语多少排序）",
    )
    suggestions: list[str] = Field(
        default_factory=list,
        description="没有结果时的纠错建议（同音或一字之差），每条都能查到材料",
    )
    readings: list[ReadingOut] = Field(
        default_factory=list,
        description="按含义检索的词：相对时间按检索当天换算（去年 → 2025年），乡、镇写混的乡镇名"
        "按本县的名称（河口镇 → 河口乡）",
    )

    @classmethod
    def of(cls, page: SearchPage, *, number: int, size: int) -> SearchOut:
        return cls(
            total=page.total,
            page=number,
            size=size,
            hits=[
                SearchHitOut(
                    document=DocumentOut.of(found.document),
                    score=round(found.score, 4),
                    highlights=list(found.highlights),
                )
                for found in page.hits
            ],
            facets={
                name: [FacetBucketOut(key=b.key, count=b.count) for b in buckets]
                for name, buckets in page.facets.items()
            },
            relaxed=page.relaxed,
            suggestions=list(page.suggestions),
            readings=[ReadingOut(typed=r.typed, meant=r.meant) for r in page.readings],
        )


class InclusionProofOut(BaseModel):
    """RFC 9162 inclusion proof: the audit path from a leaf to the root of ``tree_size`` leaves."""

    leaf_index: int
    tree_size: int
    hashes: list[str]  # base64, leaf side first

    @classmethod
    def of(cls, proof: InclusionProof) -> InclusionProofOut:
        return cls(
            leaf_index=proof.leaf_index, tree_size=proof.tree_size, hashes=_b64(proof.hashes)
        )


class ConsistencyProofOut(BaseModel):
    """RFC 9162 consistency proof between the trees of ``from`` and ``to`` leaves."""

    model_config = ConfigDict(populate_by_name=True)

    first: int = Field(serialization_alias="from", validation_alias="from")
    second: int = Field(serialization_alias="to", validation_alias="to")
    hashes: list[str]

    @classmethod
    def of(cls, proof: ConsistencyProof) -> ConsistencyProofOut:
        return cls(first=proof.first, second=proof.second, hashes=_b64(proof.hashes))


def _b64(hashes: list[bytes]) -> list[str]:
    return [base64.b64encode(value).decode() for value in hashes]


class ReceiptOut(BaseModel):
    document_id: str
    sha256: str
    township: OrgRef
    uploaded_by: str
    received_at: datetime
    # The upload event in the signed log: its number and leaf hash (hex), the event object, the
    # newest signed checkpoint and the inclusion proof; `pending` until the sequencer covered it.
    audit_seq: int | None
    audit_hash: str | None
    pending: bool
    event: AuditEventOut | None = None
    checkpoint: str | None = None
    inclusion_proof: InclusionProofOut | None = None

    @classmethod
    def of(cls, receipt: Receipt) -> ReceiptOut:
        anchor = receipt.anchor
        return cls(
            document_id=receipt.document_id,
            sha256=receipt.sha256,
            township=OrgRef(id=receipt.township.id, name=receipt.township.name),
            uploaded_by=receipt.uploaded_by,
            received_at=receipt.received_at,
            audit_seq=receipt.audit_seq,
            audit_hash=receipt.audit_hash,
            pending=anchor is None,
            event=AuditEventOut.of(anchor.event) if anchor else None,
            checkpoint=anchor.checkpoint.note if anchor else None,
            inclusion_proof=InclusionProofOut.of(anchor.proof) if anchor else None,
        )


class DepartmentUsageOut(BaseModel):
    name: str
    views: int
    downloads: int
    first_at: datetime
    last_at: datetime


class UsageOut(BaseModel):
    """Which departments used a document (counts per department, never individual readers)."""

    departments: list[DepartmentUsageOut]
    reuse_count: int

    @classmethod
    def of(cls, usage: DocumentUsage) -> UsageOut:
        return cls(
            departments=[
                DepartmentUsageOut(
                    name=department.name,
                    views=department.views,
                    downloads=department.downloads,
                    first_at=department.first_at,
                    last_at=department.last_at,
                )
                for department in usage.departments
            ],
            reuse_count=usage.reuse_count,
        )


class AuditEventOut(BaseModel):
    """An audit event. Once sequenced it has ``seq``, ``leaf_index`` (``seq - 1``) and
    ``leaf_hash`` (base64; ``hash`` is the same in hex), and its leaf bytes are the fields seq …
    details exactly as shown here, as sorted compact JSON."""

    seq: int | None
    at: str  # UTC, ISO 8601 with microseconds: the form the leaf bytes use
    actor: str
    org: str | None
    role: str | None
    action: str
    document_id: str | None
    outcome: str
    ip: str | None
    details: dict[str, Any]
    leaf_index: int | None
    leaf_hash: str | None
    hash: str | None

    @classmethod
    def of(cls, event: AuditEvent) -> AuditEventOut:
        leaf = event.leaf
        return cls(
            seq=leaf.seq if leaf else None,
            at=event_time(event.at),
            actor=event.actor,
            org=event.org,
            role=event.role,
            action=event.action,
            document_id=event.document_id,
            outcome=event.outcome,
            ip=event.ip,
            details=dict(event.details),
            leaf_index=leaf.seq - 1 if leaf else None,
            leaf_hash=base64.b64encode(leaf.leaf_hash).decode() if leaf else None,
            hash=leaf.leaf_hash.hex() if leaf else None,
        )


class AuditPageOut(BaseModel):
    total: int
    page: int
    size: int
    events: list[AuditEventOut]


class VerifyOut(BaseModel):
    """The log recomputed and held against every signed checkpoint (see services.audit_verify)."""

    ok: bool
    events: int
    head: str
    tree_size: int
    checkpoints: int
    exported_checkpoints: int
    receipts: int
    pending: int
    latest_checkpoint: int | None
    warnings: list[str]
    first_bad_seq: int | None = None
    last_bad_seq: int | None = None
    reason: str | None = None
    detail: str | None = None

    @classmethod
    def of(cls, report: VerifyReport) -> VerifyOut:
        return cls(**report.as_dict())


class OrgIn(BaseModel):
    name: str
    kind: str
    parent: OrgNameOrId | None = None


class UserIn(BaseModel):
    username: str
    password: str
    org: OrgNameOrId
    role: str
    # Optional: the person's name (姓名), at most 40 characters once trimmed.
    display_name: str | None = Field(default=None, max_length=1024)


class UserRenameIn(BaseModel):
    display_name: str = Field(max_length=1024)  # "" takes the name away


class CategoryIn(BaseModel):
    name: str


class PasswordResetIn(BaseModel):
    new_password: str = Field(max_length=1024)


class PasswordChangeIn(BaseModel):
    old_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024)


class GrantIn(BaseModel):
    username: str
    document_id: str
    expires_at: datetime | None = None


class GrantOut(BaseModel):
    """A download grant: it gives its auditor the download only once a second admin (not the
    one who granted it) has confirmed it."""

    id: int
    username: str
    document_id: str
    document_title: str
    expires_at: datetime | None
    expired: bool
    granted_by: str
    created_at: datetime
    pending_confirmation: bool
    confirmed_by: str | None
    confirmed_at: datetime | None
    may_confirm: bool  # may the caller confirm it now?

    @classmethod
    def of(cls, grant: GrantEntry) -> GrantOut:
        return cls(
            id=grant.id,
            username=grant.username,
            document_id=grant.document_id,
            document_title=grant.document_title,
            expires_at=grant.expires_at,
            expired=grant.expired,
            granted_by=grant.granted_by,
            created_at=grant.created_at,
            pending_confirmation=grant.pending,
            confirmed_by=grant.confirmed_by,
            confirmed_at=grant.confirmed_at,
            may_confirm=grant.may_confirm,
        )


class DictionaryIn(BaseModel):
    """Words to add to the county dictionary: all of them are stored, or none."""

    words: list[str] = Field(max_length=MAX_WORDS_AT_ONCE)


class DictionaryWordOut(BaseModel):
    word: str
    added_by: str | None  # the username; null when added on the server console
    added_at: datetime


class DictionaryDerivedOut(BaseModel):
    """Names that count as words without being added: they come and go with their objects."""

    orgs: list[str]
    catalog_items: list[str]
    categories: list[str]


class DictionaryOut(BaseModel):
    words: list[DictionaryWordOut]
    derived: DictionaryDerivedOut
    total: int  # distinct words segmentation adds, derived ones included

    @classmethod
    def of(cls, listing: DictionaryListing) -> DictionaryOut:
        return cls(
            words=[
                DictionaryWordOut(word=e.word, added_by=e.added_by, added_at=e.added_at)
                for e in listing.entries
            ],
            derived=DictionaryDerivedOut(
                orgs=listing.orgs,
                catalog_items=listing.catalog_items,
                categories=listing.categories,
            ),
            total=listing.total,
        )


class DictionaryAddedOut(BaseModel):
    added: list[str]
    already_present: list[str]
    reindex_queued: int  # live documents mentioning a new word, queued for reindexing


# The OpenAPI ``responses`` of a route answering CSV (a StreamingResponse, which declares none).
CSV_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "CSV（UTF-8，带 BOM） / CSV (UTF-8 with BOM, opens in Excel)",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}
