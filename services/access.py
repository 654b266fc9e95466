"""The access policy, all of it: who may see, download, upload, withdraw and audit what.

Every permission decision in the system is one of these functions. Read top to bottom:
- uploaders (township staff) see and manage their own township's documents, and nothing else;
- readers (department staff) see ``departments`` documents, and ``restricted`` ones naming their
  department; never ``private`` ones;
- auditors see every document's metadata and the audit log, and download only what an admin
  granted them; what a document says (its text, search snippets of it) is read exactly by those
  who may download it;
- admins manage organisations, users, categories and grants and may withdraw any document, but
  neither read documents nor the audit log (separation of duties, MLPS 2.0);
- two people, never one: an admin's creating, enabling or resetting an auditor or admin account
  waits for a second person (an auditor for auditors, another admin for admins), and so does an
  admin's download grant (another admin); until then the account cannot sign in and the grant
  gives no download. Nobody confirms their own request or their own account; auditors read
  every grant;
- a withdrawn document is visible only to its own township and to auditors;
- which departments used a document (its usage figures) is for its own township, coordinators
  and auditors;
- coordinators (the county's burden-reduction office) keep the material catalog, approve ad-hoc
  requests and read every figure, but read no document, snippet or audit event;
- requests: only departments ask; a draft is its own department's alone; a township sees the
  requests sent to it (never drafts or those awaiting approval); coordinators and departments
  see every request that left its draft (a department may join another's instead of asking
  again), and only the department that created a request decides on it;
- the catalog is read by everyone signed in; a township reads its own row of a coverage grid,
  and its own line of the figures, as does a department;
- the county dictionary (words segmentation keeps whole) is changed by admins and read by admins
  and coordinators.
A document the caller may not see must answer "not found", so that its existence does not leak.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import ColumnElement, and_, exists, false, or_, true

from services.models import (
    Document,
    DocumentDepartment,
    DownloadGrant,
    MaterialRequest,
    Org,
    OrgKind,
    RequestStatus,
    Role,
    User,
    Visibility,
)
from services.search import ReadScope

# Which kind of organisation each role belongs to.
ROLE_ORG_KIND: dict[Role, OrgKind] = {
    Role.uploader: OrgKind.township,
    Role.reader: OrgKind.department,
    Role.auditor: OrgKind.county,
    Role.admin: OrgKind.county,
    Role.coordinator: OrgKind.county,
}


@dataclass(frozen=True)
class Principal:
    """The authenticated caller, as plain values."""

    user_id: int
    username: str
    role: Role
    org_id: int
    org_name: str
    org_kind: OrgKind
    # After an admin's reset: nothing but choosing a new password (and logging out) is allowed.
    must_change_password: bool = False
    display_name: str = ""  # the person's name (姓名) as the admin gave it, for pages only

    @classmethod
    def of(cls, user: User) -> Principal:
        return cls(
            user_id=user.id,
            username=user.username,
            role=Role(user.role),
            org_id=user.org_id,
            org_name=user.org.name,
            org_kind=OrgKind(user.org.kind),
            must_change_password=bool(user.must_change_password),
            display_name=user.display_name or "",
        )


# What a signed-in caller is made of, read as plain columns in one query (``principal_of``):
# checking a token or a session cookie on every request then loads no ORM objects.
PRINCIPAL_COLUMNS = (
    User.id,
    User.username,
    User.display_name,
    User.role,
    User.org_id,
    Org.name.label("org_name"),
    Org.kind.label("org_kind"),
    User.must_change_password,
    User.active,
    User.pending_since,
    User.credentials_changed_at,
)


def principal_of(row: Any) -> Principal:
    """The Principal of a row selected with ``PRINCIPAL_COLUMNS``."""
    return Principal(
        user_id=row.id,
        username=row.username,
        role=Role(row.role),
        org_id=row.org_id,
        org_name=row.org_name,
        org_kind=OrgKind(row.org_kind),
        must_change_password=bool(row.must_change_password),
        display_name=row.display_name or "",
    )


class ReadDocument(Protocol):
    """What access to a document is decided on: a ``Document`` or a listed row of one."""

    @property
    def id(self) -> str: ...
    @property
    def township_id(self) -> int: ...
    @property
    def visibility(self) -> str: ...
    @property
    def withdrawn_at(self) -> datetime | None: ...
    @property
    def department_ids(self) -> Collection[int]: ...


def _own_township(principal: Principal, document: ReadDocument) -> bool:
    return principal.role is Role.uploader and principal.org_id == document.township_id


def _shared_with_reader(principal: Principal, document: ReadDocument) -> bool:
    if principal.role is not Role.reader:
        return False
    visibility = Visibility(document.visibility)
    if visibility is Visibility.departments:
        return True
    if visibility is Visibility.restricted:
        return principal.org_id in document.department_ids
    return False


def can_see(principal: Principal, document: ReadDocument) -> bool:
    """May the caller know this document exists and read its metadata?"""
    if _own_township(principal, document) or principal.role is Role.auditor:
        return True
    if document.withdrawn_at is not None:
        return False
    return _shared_with_reader(principal, document)


def saw_before_withdrawal(principal: Principal, document: ReadDocument) -> bool:
    """Is this a withdrawn document the caller could read until its township withdrew it? Such
    a reader may be told that (and when) it was withdrawn: nothing they did not know already.
    Everyone else learns no more than of any document they may not see."""
    return document.withdrawn_at is not None and _shared_with_reader(principal, document)


def can_download(
    principal: Principal, document: ReadDocument, *, granted_document_ids: Collection[str] = ()
) -> bool:
    """May the caller fetch the bytes? (Only asked about documents ``can_see`` allows.)"""
    if document.withdrawn_at is not None and principal.role is not Role.auditor:
        return _own_township(principal, document)
    if principal.role is Role.auditor:
        return document.id in granted_document_ids
    return _own_township(principal, document) or _shared_with_reader(principal, document)


def may_hold_grant(role: Role) -> bool:
    """May an admin grant users of this role downloads of single documents? Auditors only."""
    return role is Role.auditor


def downloads_by_grant(principal: Principal) -> bool:
    """Does the caller download only what an admin granted (auditors)? Their grants are then
    what ``can_download`` and ``can_read_content`` must be given."""
    return may_hold_grant(principal.role)


def can_read_content(
    principal: Principal, document: ReadDocument, *, granted_document_ids: Collection[str] = ()
) -> bool:
    """May the caller read what the document says, in search snippets as in the file? Exactly
    when they may download it: an auditor searches every document but reads its metadata only."""
    return can_see(principal, document) and can_download(
        principal, document, granted_document_ids=granted_document_ids
    )


def can_see_usage(principal: Principal, document: ReadDocument) -> bool:
    """May the caller see which departments viewed and downloaded this document?"""
    return _own_township(principal, document) or principal.role in (Role.auditor, Role.coordinator)


def shared_with_department(document: ReadDocument, department_id: int) -> bool:
    """Would staff of this department be allowed to read the document (answering a request)?"""
    if document.withdrawn_at is not None:
        return False
    visibility = Visibility(document.visibility)
    if visibility is Visibility.departments:
        return True
    if visibility is Visibility.restricted:
        return department_id in document.department_ids
    return False


def can_upload(principal: Principal) -> bool:
    """Only township staff upload, and always for their own township."""
    return principal.role is Role.uploader and principal.org_kind is OrgKind.township


def can_withdraw(principal: Principal, document: ReadDocument) -> bool:
    return principal.role is Role.admin or _own_township(principal, document)


def can_find_to_withdraw(principal: Principal, document: ReadDocument) -> bool:
    """May the caller, withdrawing this document, learn that it exists? Those who see it, and
    admins any live one: a withdrawn document stays hidden from admins too."""
    return can_see(principal, document) or (
        can_withdraw(principal, document) and document.withdrawn_at is None
    )


def can_read_audit(principal: Principal) -> bool:
    return principal.role is Role.auditor


def can_administer(principal: Principal) -> bool:
    return principal.role is Role.admin


# Who confirms an admin's creating, enabling or resetting an account of these roles; accounts of
# other roles take effect at once (an admin's ordinary work).
_CONFIRMED_BY: dict[Role, Role] = {Role.auditor: Role.auditor, Role.admin: Role.admin}


def confirmer_role(role: Role) -> Role | None:
    """Whose confirmation an admin's change to an account of this role waits for (None: the
    change takes effect at once). The server console, where accounts are bootstrapped, is
    exempt: it is not an admin acting over the network."""
    return _CONFIRMED_BY.get(role)


class _Account(Protocol):
    @property
    def active(self) -> bool: ...
    @property
    def pending_since(self) -> datetime | None: ...


def may_sign_in(user: _Account) -> bool:
    """May this account sign in and use its tokens and sessions? Not while it is disabled, nor
    while an admin's change to it waits for a second person."""
    return bool(user.active) and user.pending_since is None


def account_confirmation_refusal(principal: Principal, user: User) -> str | None:
    """None when the caller may confirm the change waiting on this account; else why not:
    ``not_confirmer`` (the wrong role), ``own_account`` or ``own_request``."""
    if principal.role is not confirmer_role(Role(user.role)):
        return "not_confirmer"
    if principal.user_id == user.id:
        return "own_account"
    if principal.user_id == user.requested_by_id:
        return "own_request"
    return None


def confirmable_roles(principal: Principal) -> tuple[Role, ...]:
    """The roles of the accounts whose waiting changes the caller confirms (and may list)."""
    return tuple(role for role, confirmer in _CONFIRMED_BY.items() if confirmer is principal.role)


def grant_confirmation_refusal(principal: Principal, grant: DownloadGrant) -> str | None:
    """None when the caller may confirm this download grant: an admin other than the one who
    granted it (and never its grantee); else why not, as for accounts."""
    if not can_administer(principal):
        return "not_confirmer"
    if principal.user_id == grant.user_id:
        return "own_account"
    if principal.user_id == grant.granted_by_id:
        return "own_request"
    return None


def can_read_grants(principal: Principal) -> bool:
    """Every download grant, waiting or confirmed: the admins who make them and the auditors
    who hold them (and watch what admins hand out)."""
    return principal.role in (Role.admin, Role.auditor)


def can_change_dictionary(principal: Principal) -> bool:
    """Adding words to the county dictionary and removing them."""
    return principal.role is Role.admin


def can_read_dictionary(principal: Principal) -> bool:
    """The dictionary's words, who added them and when, and the names that count as words."""
    return principal.role in (Role.admin, Role.coordinator)


def can_keep_catalog(principal: Principal) -> bool:
    """Creating and changing catalog items, and approving ad-hoc requests."""
    return principal.role is Role.coordinator


def can_see_coverage_row(principal: Principal, township_id: int) -> bool:
    """A township sees its own row of a coverage grid; everyone else sees every row."""
    return principal.role is not Role.uploader or principal.org_id == township_id


def can_request(principal: Principal) -> bool:
    """Only department staff ask townships for materials."""
    return principal.role is Role.reader and principal.org_kind is OrgKind.department


# Which list of requests each role works from: departments their outbox, townships their
# inbox, coordinators the approval queue.
REQUEST_BOXES: dict[str, Role] = {
    "outbox": Role.reader,
    "inbox": Role.uploader,
    "approval": Role.coordinator,
}


def can_list_box(principal: Principal, box: str) -> bool:
    """May the caller list this box of requests? Only the role that works from it."""
    return REQUEST_BOXES.get(box) is principal.role


def own_box(principal: Principal) -> str | None:
    """The box the caller works from (None for roles without one)."""
    return next((box for box in REQUEST_BOXES if can_list_box(principal, box)), None)


# A township is shown a request only once it has been sent to it.
TOWNSHIP_STATUSES = (RequestStatus.sent.value, RequestStatus.answered.value)


def asks_in(principal: Principal, request: MaterialRequest) -> bool:
    """Does the caller's department already ask in this request (made it or joined it)?"""
    if principal.role is not Role.reader:
        return False
    return principal.org_id in asking_departments(request)


def can_see_request(principal: Principal, request: MaterialRequest) -> bool:
    """May the caller know this request exists? Drafts are their own department's alone."""
    if asks_in(principal, request):
        return True
    if request.status == RequestStatus.draft.value:
        return False
    if principal.role in (Role.coordinator, Role.reader):
        return True
    return (
        principal.role is Role.uploader
        and principal.org_id == request.township_id
        and request.status in TOWNSHIP_STATUSES
    )


def can_decide_request(principal: Principal, request: MaterialRequest) -> bool:
    """Accept a match, join another request or send: the request's own department only."""
    return principal.role is Role.reader and principal.org_id == request.department_id


def asking_departments(request: MaterialRequest) -> list[int]:
    """The departments a request answers: the one that made it, then those that joined."""
    return [request.department_id, *(joined.org_id for joined in request.joined_departments)]


def can_answer_request(principal: Principal, request: MaterialRequest) -> bool:
    return principal.role is Role.uploader and principal.org_id == request.township_id


def can_read_all_figures(principal: Principal) -> bool:
    """Coordinators, auditors and admins read every row; others only their own organisation's."""
    return principal.role in (Role.coordinator, Role.auditor, Role.admin)


# The grouping in which a township or a department reads its own row of the figures.
_OWN_FIGURES: dict[Role, str] = {Role.uploader: "township", Role.reader: "department"}


def own_figures_grouping(principal: Principal) -> str | None:
    """The grouping (township, department) in which the caller reads its own organisation's
    row of the figures; None for roles without one."""
    return _OWN_FIGURES.get(principal.role)


def read_scope(principal: Principal) -> ReadScope:
    """``can_see`` for the search index: which documents a search may return and count."""
    if principal.role is Role.auditor:
        return ReadScope(everything=True)
    if principal.role is Role.uploader:
        return ReadScope(township_id=principal.org_id)
    if principal.role is Role.reader:
        return ReadScope(department_id=principal.org_id)
    return ReadScope()  # admins search nothing


def visible_clause(principal: Principal) -> ColumnElement[bool]:
    """``can_see`` as a SQL condition on documents, for listings and counts."""
    if principal.role is Role.auditor:
        return true()
    if principal.role is Role.uploader:
        return Document.township_id == principal.org_id
    if principal.role is Role.reader:
        shared_with_department = exists().where(
            DocumentDepartment.document_id == Document.id,
            DocumentDepartment.org_id == principal.org_id,
        )
        return and_(
            Document.withdrawn_at.is_(None),
            or_(
                Document.visibility == Visibility.departments.value,
                and_(Document.visibility == Visibility.restricted.value, shared_with_department),
            ),
        )
    return false()
