"""Archiving audit events past the retention period, and pruning them, the tree staying provable.

An archive is a gzip-compressed JSON-lines file: a header, then every event of one range of
sequence numbers in order, each as the API shows an event's leaf fields. The header carries what
proves, with nothing but the log's public key, that these events are exactly leaves
``first_seq``..``last_seq`` of the signed log: the hashes of the perfect subtrees before the range
(the right edge of the tree of ``first_seq - 1`` leaves), a signed checkpoint of at least
``last_seq`` leaves and the RFC 9162 consistency proof from ``last_seq`` to it. Folding the edge
and the events' leaves gives the root at ``last_seq``; the proof ties that root to the signed one.

Pruning deletes the archived events from the database, after the archive was written to the
object store (under retention) and read back and checked. It never deletes an event younger than
``MATERIALS_AUDIT_RETENTION_DAYS`` (the database refuses younger than 184 days whatever the
command), nor the upload events that documents' receipts point to. The range and its archive are
recorded in ``audit_prunes``; the leaves stay in the tree, and verification trusts a stored leaf
hash only where such a record covers the missing event, still holding it against every signed
root.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, lazyload

from services import merkle
from services.audit import Actor, AuditAction, AuditLog, Outcome, canonical_bytes, event_fields
from services.audit_tree import consistency_proof, latest_checkpoint, node_reader
from services.blobs import BlobStore
from services.config import Settings
from services.db import Database
from services.errors import Conflict
from services.models import AuditEvent, AuditLeaf, AuditPrune, Document, utcnow
from services.signed_notes import NoteError, Verifier, verified_checkpoint

ARCHIVE_PREFIX = "audit/archives"
FORMAT = "materials-audit-archive/1"
DEFAULT_MAX_EVENTS = 100_000
LEAF_FIELDS = ("seq", "at", "actor", "org", "role", "action", "document_id", "outcome", "ip")


class ArchiveError(ValueError):
    """An archive that does not prove what it claims; the message says what failed."""


def event_leaf(event: dict[str, Any]) -> bytes:
    """The leaf hash of an event object (API, receipt or archive line): its fields recomputed."""
    fields = {name: event.get(name) for name in LEAF_FIELDS}
    fields["details"] = event.get("details")
    return merkle.leaf_hash(canonical_bytes(fields))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(value: Any, what: str) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except ValueError as exc:
        raise ArchiveError(f"{what} is not base64") from exc


@dataclass(frozen=True)
class Archive:
    first_seq: int
    last_seq: int
    name: str  # the object-store record
    sha256: str
    data: bytes

    @property
    def events(self) -> int:
        return self.last_seq - self.first_seq + 1


@dataclass(frozen=True)
class ArchiveCheck:
    first_seq: int
    last_seq: int
    checkpoint_size: int
    root: bytes  # the tree's root at last_seq


def pruned_through(session: Session) -> int:
    """The last seq of the newest pruned range (0: nothing pruned)."""
    return session.scalar(select(func.max(AuditPrune.last_seq))) or 0


def archive_record_name(first: int, last: int, sha256: str) -> str:
    return f"{ARCHIVE_PREFIX}/{first:020d}-{last:020d}-{sha256}.jsonl.gz"


def build_archive(
    session: Session, *, before: datetime, max_events: int = DEFAULT_MAX_EVENTS
) -> Archive | None:
    """The next range after the last prune whose events are all older than ``before`` and
    covered by a signed checkpoint, at most ``max_events`` long; None when there is none."""
    first = pruned_through(session) + 1
    checkpoint = latest_checkpoint(session)
    if checkpoint is None or checkpoint.tree_size < first:
        return None
    end = min(checkpoint.tree_size, first + max_events - 1)
    lines: list[bytes] = []
    rows = session.execute(
        select(AuditLeaf.seq, AuditEvent)
        .outerjoin(AuditEvent, AuditEvent.id == AuditLeaf.event_id)
        .options(lazyload(AuditEvent.leaf))
        .where(AuditLeaf.seq.between(first, end))
        .order_by(AuditLeaf.seq)
        .execution_options(yield_per=2000)
    )
    last = first - 1
    try:
        for seq, event in rows:
            if seq != last + 1 or event is None:
                raise Conflict(
                    f"第 {last + 1} 号事件缺失，日志已不完整，请先运行 materials audit verify",
                    code="audit_log_incomplete",
                )
            if event.at >= before:
                break
            line = json.dumps(event_fields(event, seq), ensure_ascii=False, sort_keys=True)
            lines.append(line.encode() + b"\n")
            last = seq
    finally:
        rows.close()
    if last < first:
        return None
    nodes = node_reader(session)
    header = {
        "format": FORMAT,
        "first_seq": first,
        "last_seq": last,
        "prior_edge": [_b64(h) for h in merkle.Frontier.of(first - 1, nodes).edge],
        "checkpoint": checkpoint.note,
        "consistency_proof": [
            _b64(h)
            for h in consistency_proof(session, first=last, second=checkpoint.tree_size).hashes
        ],
        "archived_at": utcnow().isoformat(timespec="seconds"),
    }
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as out:
        out.write(json.dumps(header, ensure_ascii=False).encode() + b"\n")
        out.writelines(lines)
    data = buffer.getvalue()
    sha256 = hashlib.sha256(data).hexdigest()
    return Archive(first, last, archive_record_name(first, last, sha256), sha256, data)


def archive_lines(data: bytes) -> Iterator[bytes]:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as lines:
            yield from lines
    except (OSError, EOFError) as exc:
        raise ArchiveError(f"not a gzip archive: {exc}") from exc


def verify_archive(lines: Iterable[bytes], verifier: Verifier) -> ArchiveCheck:
    """Check an archive alone, offline: its events are leaves first..last of the signed log."""
    iterator = iter(lines)
    try:
        header = json.loads(next(iterator))
        first, last = int(header["first_seq"]), int(header["last_seq"])
        edge = [_unb64(h, "prior_edge") for h in header["prior_edge"]]
        proof = [_unb64(h, "consistency_proof") for h in header["consistency_proof"]]
        note = str(header["checkpoint"])
    except StopIteration as exc:
        raise ArchiveError("the archive is empty") from exc
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ArchiveError):
            raise
        raise ArchiveError(f"the header is not an archive header: {exc}") from exc
    if header.get("format") != FORMAT:
        raise ArchiveError(f"unknown archive format {header.get('format')!r}")
    if first < 1 or last < first or len(edge) != len(merkle.perfect_pieces(0, first - 1)):
        raise ArchiveError("the header's range or edge is not well formed")
    try:
        checkpoint = verified_checkpoint(note, verifier)
    except NoteError as exc:
        raise ArchiveError(f"checkpoint: {exc}") from exc
    frontier = merkle.Frontier(first - 1, edge)
    for number, line in enumerate(iterator, start=2):
        try:
            event = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ArchiveError(f"line {number} is not JSON") from exc
        if not isinstance(event, dict) or event.get("seq") != frontier.size + 1:
            raise ArchiveError(f"line {number}: expected event {frontier.size + 1}")
        frontier.append(event_leaf(event))
    if frontier.size != last:
        raise ArchiveError(f"the archive ends at event {frontier.size}, its header says {last}")
    root = frontier.root()
    if not merkle.verify_consistency(last, checkpoint.size, root, checkpoint.root, proof):
        raise ArchiveError("the events do not lead to the signed checkpoint's tree")
    return ArchiveCheck(first, last, checkpoint.size, root)


@dataclass(frozen=True)
class ArchiveResult:
    archive: Archive | None
    check: ArchiveCheck | None
    deleted: int  # events pruned from the database (0 when not pruning)
    kept: int  # events of the range kept because a receipt points to them


def archive_events(
    db: Database,
    blobs: BlobStore,
    settings: Settings,
    verifier: Verifier,
    *,
    actor: Actor,
    prune: bool,
    max_events: int = DEFAULT_MAX_EVENTS,
    now: datetime | None = None,
) -> ArchiveResult:
    """Archive the next range of events past retention to the object store; with ``prune``,
    then delete them from the database (see module)."""
    before = (now or utcnow()) - timedelta(days=settings.audit_retention_days)
    with db.session() as session:
        archive = build_archive(session, before=before, max_events=max_events)
    if archive is None:
        return ArchiveResult(None, None, 0, 0)
    blobs.put_record(archive.name, archive.data, retain_days=settings.audit_retention_days)
    stored = blobs.read_record(archive.name)
    if hashlib.sha256(stored).hexdigest() != archive.sha256:
        raise Conflict("对象存储中的归档与写入的不一致", code="audit_archive_mismatch")
    check = verify_archive(archive_lines(stored), verifier)
    deleted = kept = 0
    with db.session() as session:
        if pruned_through(session) != archive.first_seq - 1:
            raise Conflict("另一次归档清理刚刚完成，请重新运行", code="audit_prune_conflict")
        if prune:
            deleted, kept = _prune(session, archive)
        AuditLog(db).append(
            session,
            actor=actor,
            action=AuditAction.audit_archive,
            outcome=Outcome.allowed,
            details={
                "first_seq": archive.first_seq,
                "last_seq": archive.last_seq,
                "archive": archive.name,
                "pruned": deleted,
            },
        )
        if prune:
            session.add(
                AuditPrune(
                    last_seq=archive.last_seq,
                    first_seq=archive.first_seq,
                    deleted=deleted,
                    archive_name=archive.name,
                    archive_sha256=archive.sha256,
                    pruned_at=utcnow(),
                    pruned_by=actor.username,
                )
            )
    return ArchiveResult(archive, check, deleted, kept)


def _prune(session: Session, archive: Archive) -> tuple[int, int]:
    in_range = select(AuditLeaf.event_id).where(
        AuditLeaf.seq.between(archive.first_seq, archive.last_seq)
    )
    receipts = select(Document.receipt_event_id).where(Document.receipt_event_id.is_not(None))
    kept = (
        session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.id.in_(in_range), AuditEvent.id.in_(receipts))
        )
        or 0
    )
    result = session.execute(
        delete(AuditEvent).where(AuditEvent.id.in_(in_range), AuditEvent.id.not_in(receipts))
    )
    return int(getattr(result, "rowcount", 0) or 0), kept
