"""Reading the audit log: auditors only, and every read is itself an audit event.

Separation of duties: administrators run the system but never read or export its access log.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, or_, select, tuple_
from sqlalchemy.orm import Session

from services import access, audit_tree, merkle
from services.access import Principal
from services.audit import AuditAction, AuditFilter, EventPage, Outcome
from services.audit_keys import load_signer, load_verifier
from services.audit_sequencer import STATE
from services.audit_verify import VerifyReport, verify_log
from services.audit_words import (
    WORDED_CSV_HEADINGS,
    DocumentName,
    documents_named,
    worded_csv_row,
)
from services.backends import Backends
from services.documents import actor_of
from services.errors import BackendUnavailable, Forbidden, InvalidField, NotFound
from services.models import (
    AuditCheckpoint,
    AuditEvent,
    AuditSequencerState,
    Document,
    Org,
    User,
)
from services.signed_notes import Verifier


def make_filter(
    *,
    actor: str | None,
    org: str | None,
    document_id: str | None,
    action: str | None,
    outcome: Outcome | None,
    since: datetime | None,
    until: datetime | None,
) -> AuditFilter:
    """Audit filters from query values; times without an offset are refused."""
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and moment.tzinfo is None:
            raise InvalidField(name, "时间须带时区，例如 2026-01-01T00:00:00+08:00")
    if since is not None and until is not None and since > until:
        raise InvalidField("since", "开始时间不能晚于结束时间")
    return AuditFilter(
        actor=actor,
        org=org,
        document_id=document_id,
        action=action,
        outcome=outcome.value if outcome else None,
        since=since,
        until=until,
    )


def _require_auditor(
    backends: Backends, *, principal: Principal, action: AuditAction, ip: str | None
) -> None:
    if not access.can_read_audit(principal):
        backends.audit.record(
            actor=actor_of(principal, ip),
            action=action,
            outcome=Outcome.denied,
            details={"reason": "not_auditor"},
        )
        raise Forbidden("只有审计人员可以查看审计日志", code="audit_not_allowed")


def _filter_details(filters: AuditFilter) -> dict[str, str]:
    return {
        key: value.isoformat() if isinstance(value, datetime) else str(value)
        for key, value in vars(filters).items()
        if value is not None
    }


def read_events(
    backends: Backends,
    *,
    principal: Principal,
    filters: AuditFilter,
    page: int,
    size: int,
    ip: str | None,
) -> EventPage:
    """One page of audit events, for an auditor."""
    _require_auditor(backends, principal=principal, action=AuditAction.audit_read, ip=ip)
    backends.audit.record(
        actor=actor_of(principal, ip),
        action=AuditAction.audit_read,
        outcome=Outcome.allowed,
        details={"filters": _filter_details(filters), "page": page, "size": size},
    )
    return backends.audit.page(filters, page=page, size=size)


def export_events(
    backends: Backends,
    *,
    principal: Principal,
    filters: AuditFilter,
    ip: str | None,
    for_people: bool = False,
) -> Iterator[bytes]:
    """The matching audit events as CSV bytes, for an auditor (codes, or words for people).

    The export is logged before a row is read (a reader who stops half-way was still logged),
    and the file holds the log as it was before that: the export's own event, not yet numbered,
    is not a row of it. Refusals still being counted are written first, so they are in the file.
    """
    _require_auditor(backends, principal=principal, action=AuditAction.audit_export, ip=ip)
    backends.audit.flush_bursts()
    own = backends.audit.record(
        actor=actor_of(principal, ip),
        action=AuditAction.audit_export,
        outcome=Outcome.allowed,
        details={"filters": _filter_details(filters)},
    )
    if not for_people:
        return backends.audit.export_csv(filters, before=own.id)
    return backends.audit.export_csv(
        filters,
        for_people=True,
        rows_of=_worded_rows,
        headings=WORDED_CSV_HEADINGS,
        before=own.id,
    )


# At most this many document numbers to one look-up (well within SQLite's limit on a statement's
# values); a chunk of 500 events that each list many documents takes a few.
_NAMES_AT_ONCE = 500


def _worded_rows(session: Session, events: Sequence[AuditEvent]) -> list[list[Any]]:
    """A chunk of the export for people: every document its events name (their own, and those a
    search showed or a request took up) by title and township, looked up for the chunk at once,
    in the export's own session (on SQLite a second one would wait for its lock)."""
    numbers = sorted(documents_named(events))
    names: dict[str, DocumentName] = {}
    for start in range(0, len(numbers), _NAMES_AT_ONCE):
        wanted = numbers[start : start + _NAMES_AT_ONCE]
        names.update(_names_in(session, _names_query(Document.id.in_(wanted))))
    return [worded_csv_row(event, names) for event in events]


def _names_query(
    *where: ColumnElement[bool], limit: int | None = None
) -> Select[str, str, str, datetime | None]:
    """Documents (withdrawn ones too) by their title and township, newest first."""
    return (
        select(Document.id, Document.title, Org.name, Document.withdrawn_at)
        .join(Org, Document.township_id == Org.id)
        .where(*where)
        .order_by(Document.created_at.desc(), Document.id)
        .limit(limit)
    )


def _names_in(
    session: Session, query: Select[str, str, str, datetime | None]
) -> dict[str, DocumentName]:
    return {
        row.id: DocumentName(row.id, row.title, row.name, row.withdrawn_at is not None)
        for row in session.execute(query)
    }


def _document_names(
    backends: Backends, *where: ColumnElement[bool], limit: int | None = None
) -> dict[str, DocumentName]:
    """Documents (withdrawn ones too) by their title and township, newest first."""
    with backends.db.session() as session:
        return _names_in(session, _names_query(*where, limit=limit))


def document_names(
    backends: Backends, *, principal: Principal, document_ids: Iterable[str], ip: str | None
) -> dict[str, DocumentName]:
    """The titles and townships of the documents a page of events names (one query), for an
    auditor, who sees every document's metadata; ids without a document are left out."""
    _require_auditor(backends, principal=principal, action=AuditAction.audit_read, ip=ip)
    wanted = sorted({document_id for document_id in document_ids if document_id})
    if not wanted:
        return {}
    return _document_names(backends, Document.id.in_(wanted))


def actor_names(
    backends: Backends, *, principal: Principal, actors: Iterable[str], ip: str | None
) -> dict[str, str]:
    """The display names (姓名) of the accounts a page of events names, by recorded username (one
    query), for an auditor: each account's name as it is now. Actors that are no account, or
    accounts without a name, are left out; the events themselves are not touched."""
    _require_auditor(backends, principal=principal, action=AuditAction.audit_read, ip=ip)
    wanted = sorted({actor for actor in actors if actor})
    if not wanted:
        return {}
    query = select(User.username, User.display_name).where(
        User.username.in_(wanted), User.display_name != ""
    )
    with backends.db.session() as session:
        return {row.username: row.display_name for row in session.execute(query)}


@dataclass(frozen=True)
class FoundDocuments:
    """The documents words matched: the newest ones, and how many in all."""

    documents: list[DocumentName]
    total: int


def find_documents(
    backends: Backends, *, principal: Principal, words: str, limit: int, ip: str | None
) -> FoundDocuments:
    """The documents (withdrawn ones too) whose township and title hold every word typed
    (``城关镇 扶贫``, or ``城关镇2024年第三季度扶贫工作总结`` for that township's document of that
    title; a word may also be the start of a document's number, as the page shows its first
    eight characters), newest first, at most ``limit``; for an auditor choosing a document to
    filter the log by. The look-up is logged as a read of the log, with the words and how many
    documents matched."""
    _require_auditor(backends, principal=principal, action=AuditAction.audit_read, ip=ip)
    named = Org.name + Document.title
    where = [
        or_(
            named.icontains(word, autoescape=True),
            Document.id.istartswith(word, autoescape=True),
        )
        for word in words.split()
    ]
    with backends.db.session() as session:
        total = (
            session.scalar(
                select(func.count())
                .select_from(Document)
                .join(Org, Document.township_id == Org.id)
                .where(*where)
            )
            or 0
        )
    found = list(_document_names(backends, *where, limit=limit).values()) if total else []
    backends.audit.record(
        actor=actor_of(principal, ip),
        action=AuditAction.audit_read,
        outcome=Outcome.allowed,
        details={"q": words, "found": total},
    )
    return FoundDocuments(found, total)


def verify(backends: Backends, *, principal: Principal, ip: str | None) -> VerifyReport:
    """Verify the log against every signed checkpoint, for an auditor; the verification is
    recorded after it ran."""
    _require_auditor(backends, principal=principal, action=AuditAction.audit_verify, ip=ip)
    report = verify_log(backends.db, backends.blobs, load_verifier(backends.settings))
    backends.audit.record(
        actor=actor_of(principal, ip),
        action=AuditAction.audit_verify,
        outcome=Outcome.allowed,
        details={
            "ok": report.ok,
            "events": report.events,
            "first_bad_seq": report.first_bad_seq,
            "reason": report.reason,
        },
    )
    return report


@dataclass(frozen=True)
class SequencingState:
    """The newest signed checkpoint and the events the sequencer has not reached yet."""

    latest: AuditCheckpoint | None
    waiting: int
    oldest_waiting_at: datetime | None


def sequencing_state(backends: Backends) -> SequencingState:
    """Read after the caller's own access check: the newest checkpoint (anyone signed in may
    fetch it) and a count of the events after the sequencer's position (by the (tx, id) index
    the sequencer reads them in)."""
    with backends.db.session() as session:
        latest = audit_tree.latest_checkpoint(session)
        state = session.get(AuditSequencerState, STATE)
        waiting = select(func.count(), func.min(AuditEvent.at))
        if state is not None:
            waiting = waiting.where(
                tuple_(AuditEvent.tx, AuditEvent.id) > tuple_(state.last_tx, state.last_event_id)
            )
        count, oldest = session.execute(waiting).one()
        return SequencingState(latest, count or 0, oldest)


def verifier(backends: Backends) -> Verifier:
    """The log's public key (anyone signed in may read it)."""
    settings = backends.settings
    found = load_verifier(settings)
    if found is None and settings.audit_signing_key_file is None:
        # Embedded: the key the sequencer would make beside the data directory, made now.
        found = load_signer(settings).verifier
    if found is None:
        raise BackendUnavailable("audit signing key", "审计日志的签名密钥文件不存在")
    return found


def checkpoint(backends: Backends, *, size: int | None) -> str:
    """The newest signed checkpoint, or the one of tree size ``size`` (anyone signed in)."""
    with backends.db.session() as session:
        if size is None:
            found = audit_tree.latest_checkpoint(session)
            if found is None:
                raise NotFound("审计日志尚无签名检查点", code="checkpoint_not_found")
        else:
            found = audit_tree.checkpoint_of_size(session, size)
        return found.note


def _proof_read(backends: Backends, principal: Principal, ip: str | None, **details: int) -> None:
    _require_auditor(backends, principal=principal, action=AuditAction.audit_read, ip=ip)
    backends.audit.record(
        actor=actor_of(principal, ip),
        action=AuditAction.audit_read,
        outcome=Outcome.allowed,
        details={"proof": details},
    )


def inclusion_proof(
    backends: Backends, *, principal: Principal, leaf_index: int, tree_size: int, ip: str | None
) -> audit_tree.InclusionProof:
    _proof_read(backends, principal, ip, leaf_index=leaf_index, tree_size=tree_size)
    try:
        with backends.db.session() as session:
            return audit_tree.inclusion_proof(session, leaf_index=leaf_index, size=tree_size)
    except merkle.ProofError as exc:
        raise InvalidField("tree_size", str(exc), code="proof_out_of_range") from exc


def consistency_proof(
    backends: Backends, *, principal: Principal, first: int, second: int, ip: str | None
) -> audit_tree.ConsistencyProof:
    _proof_read(backends, principal, ip, first=first, second=second)
    try:
        with backends.db.session() as session:
            return audit_tree.consistency_proof(session, first=first, second=second)
    except merkle.ProofError as exc:
        raise InvalidField("to", str(exc), code="proof_out_of_range") from exc
