"""Proving the access log complete and unaltered, against signatures its database cannot forge.

``verify_log`` recomputes every leaf from its event and the tree from the leaves, and compares
the root at each signed checkpoint's size with that checkpoint (signature by the configured key,
never one read from the database). A changed, deleted, inserted or reordered event therefore
fails even when whoever changed it recomputed every hash in the database, as long as they lack
the signing key; a truncated log fails against checkpoints beyond its end, in the database, in
the object store (written there as they were signed) or in receipts townships kept.

``verify_receipt`` checks a receipt alone, offline: its event's leaf, its inclusion proof and its
checkpoint's signature.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Generator, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session, lazyload

from services import merkle
from services.audit import leaf_bytes
from services.audit_archive import ARCHIVE_PREFIX, event_leaf
from services.audit_sequencer import CHECKPOINT_PREFIX, STATE, parse_record_name
from services.blobs import BlobStore
from services.db import Database
from services.errors import BackendUnavailable, NotFound
from services.models import (
    AuditCheckpoint,
    AuditEvent,
    AuditLeaf,
    AuditPrune,
    AuditSequencerState,
)
from services.signed_notes import NoteError, Verifier, verified_checkpoint

# What each failed check means, for people (the web page and the command line).
CHECK_NAMES: dict[str, str] = {
    "leaf_missing": "事件序号缺失（记录被删除或序号被改动）",
    "event_missing": "事件记录被删除",
    "leaf_mismatch": "事件内容与其叶哈希不符（记录被改动）",
    "checkpoint_root": "重算的默克尔树根与签名检查点不符（记录被改动、插入、删除或重排）",
    "checkpoint_signature": "检查点签名无效（检查点被伪造或改动）",
    "truncated": "日志比已签名的检查点短（末尾记录被删除）",
    "exported_checkpoint": "对象存储中的检查点与日志不符",
    "event_inserted": "有未进入默克尔树的事件插在已排序事件之间（记录被插入）",
    "receipt": "回执与日志不符",
    "no_key": "没有验证公钥，无法核验签名",
    "archive_missing": "已清理事件的归档在对象存储中不存在",
}


@dataclass
class VerifyReport:
    ok: bool
    events: int  # leaves recomputed
    head: str  # the recomputed root, hex
    checkpoints: int = 0
    exported: int = 0
    receipts: int = 0
    pending: int = 0  # events not sequenced yet
    pruned: int = 0  # events archived and deleted: their leaves checked, not recomputed
    latest_checkpoint: int | None = None
    first_bad_seq: int | None = None
    last_bad_seq: int | None = None  # when only a range between two checkpoints can be named
    reason: str | None = None
    detail: str | None = None
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        report: dict[str, Any] = {
            "ok": self.ok,
            "events": self.events,
            "head": self.head,
            "tree_size": self.events,
            "checkpoints": self.checkpoints,
            "exported_checkpoints": self.exported,
            "receipts": self.receipts,
            "pending": self.pending,
            "pruned_events": self.pruned,
            "latest_checkpoint": self.latest_checkpoint,
            "warnings": self.warnings,
        }
        if not self.ok:
            report.update(
                first_bad_seq=self.first_bad_seq,
                last_bad_seq=self.last_bad_seq,
                reason=self.reason,
                detail=self.detail,
            )
        return report


class _Failed(Exception):
    def __init__(
        self, seq: int | None, reason: str, detail: str, *, last_seq: int | None = None
    ) -> None:
        super().__init__(detail)
        self.seq, self.reason, self.detail, self.last_seq = seq, reason, detail, last_seq


# ---------------------------------------------------------------- receipts, offline


@dataclass(frozen=True)
class ReceiptCheck:
    seq: int
    tree_size: int
    root: bytes
    leaf_hash: bytes


def _b64(value: Any, what: str) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise NoteError(f"{what} is not base64") from exc


def _same_instant(first: Any, second: Any) -> bool:
    try:
        return datetime.fromisoformat(str(first)) == datetime.fromisoformat(str(second))
    except ValueError:
        return False


def _check_receipt_claims(receipt: dict[str, Any], event: dict[str, Any], leaf: bytes) -> None:
    """What the receipt says beside its event (who, which township, when, which seq) must be
    what the signed event says: a field present and different is a forgery."""
    township = receipt.get("township")
    claims = {
        "uploaded_by": (
            "uploaded_by" not in receipt or receipt["uploaded_by"] == event.get("actor")
        ),
        "township": (
            township is None
            or (isinstance(township, dict) and township.get("name") == event.get("org"))
        ),
        "received_at": (
            "received_at" not in receipt or _same_instant(receipt["received_at"], event.get("at"))
        ),
        "audit_seq": receipt.get("audit_seq") in (None, event.get("seq")),
        "audit_hash": receipt.get("audit_hash") in (None, leaf.hex()),
    }
    wrong = [name for name, holds in claims.items() if not holds]
    if wrong:
        raise NoteError(f"the receipt's {', '.join(wrong)} differ from its signed upload event")


def verify_receipt(receipt: dict[str, Any], verifier: Verifier) -> ReceiptCheck:
    """Check a saved receipt with nothing but the log's public key; NoteError says what failed."""
    if receipt.get("pending") or "inclusion_proof" not in receipt:
        raise NoteError("the receipt has no inclusion proof yet: fetch it again once sequenced")
    event = receipt.get("event")
    if not isinstance(event, dict):
        raise NoteError("the receipt carries no event")
    leaf = event_leaf(event)
    if "leaf_hash" in event and _b64(event["leaf_hash"], "leaf_hash") != leaf:
        raise NoteError("the event's leaf_hash is not the hash of its fields")
    details = event.get("details") or {}
    if (
        event.get("action") != "upload"
        or event.get("document_id") != receipt.get("document_id")
        or details.get("sha256") != receipt.get("sha256")
    ):
        raise NoteError("the event is not the upload of this document with this sha256")
    _check_receipt_claims(receipt, event, leaf)
    checkpoint = verified_checkpoint(str(receipt.get("checkpoint", "")), verifier)
    proof = receipt["inclusion_proof"]
    try:
        index, size = int(proof["leaf_index"]), int(proof["tree_size"])
        hashes = [_b64(value, "proof hash") for value in proof["hashes"]]
        seq = int(event["seq"])
    except (KeyError, TypeError, ValueError) as exc:
        raise NoteError("the inclusion proof is not well formed") from exc
    if index != seq - 1 or size != checkpoint.size:
        raise NoteError("the proof is not for this event and this checkpoint")
    if not merkle.verify_inclusion(index, size, leaf, hashes, checkpoint.root):
        raise NoteError("the inclusion proof does not lead to the checkpoint's root")
    return ReceiptCheck(seq, size, checkpoint.root, leaf)


# ---------------------------------------------------------------- the whole log


@dataclass
class _Expectation:
    """A root the recomputed tree must have at ``size``, and where it came from."""

    size: int
    root: bytes
    reason: str
    what: str
    seq: int | None = None  # the seq to name when it fails (receipts); else the interval


def _leaf_rows(session: Session) -> Generator[tuple[int, bytes, AuditEvent | None]]:
    rows = session.execute(
        select(AuditLeaf.seq, AuditLeaf.leaf_hash, AuditEvent)
        .outerjoin(AuditEvent, AuditEvent.id == AuditLeaf.event_id)
        .options(lazyload(AuditEvent.leaf))
        .order_by(AuditLeaf.seq)
        .execution_options(yield_per=2000)
    )
    try:
        for seq, leaf, event in rows:
            yield seq, bytes(leaf), event
    finally:
        rows.close()  # a server-side cursor on PostgreSQL, when verification stops early


def _checkpoint_expectations(
    session: Session, verifier: Verifier, report: VerifyReport
) -> list[_Expectation]:
    expectations = []
    previous = 0
    rows = session.execute(
        select(AuditCheckpoint.tree_size, AuditCheckpoint.root_hash, AuditCheckpoint.note)
        .order_by(AuditCheckpoint.tree_size)
        .execution_options(yield_per=2000)
    )
    with closing(rows):
        for size, root, note in rows:
            _check_signed(size, bytes(root), note, verifier, previous)
            expectations.append(
                _Expectation(size, bytes(root), "checkpoint_root", f"检查点 {size}")
            )
            report.checkpoints += 1
            report.latest_checkpoint = size
            previous = size
    return expectations


def _check_signed(size: int, root: bytes, note: str, verifier: Verifier, previous: int) -> None:
    """A stored checkpoint row must be a note signed by the log's key, saying its size and root."""
    try:
        signed = verified_checkpoint(note, verifier)
    except NoteError as exc:
        detail = f"检查点 {size}：{exc}"
        raise _Failed(previous + 1, "checkpoint_signature", detail, last_seq=size) from exc
    if signed.size != size or signed.root != root:
        detail = f"检查点 {size} 的行与签名不符"
        raise _Failed(previous + 1, "checkpoint_signature", detail, last_seq=size)


def _exported_expectations(
    blobs: BlobStore, verifier: Verifier, report: VerifyReport
) -> list[_Expectation]:
    expectations = []
    try:
        names = list(blobs.list_records(CHECKPOINT_PREFIX))
    except BackendUnavailable:
        report.warnings.append("对象存储不可用：未核对导出的检查点")
        return []
    for name in names:
        parsed = parse_record_name(name)
        if parsed is None:
            continue
        size, root = parsed
        expectations.append(_Expectation(size, root, "exported_checkpoint", f"导出检查点 {size}"))
        report.exported += 1
    # The listing names sizes and roots; the largest is read and its signature checked, so that a
    # log cut short is caught by a signed note, not by a name anyone could write.
    if expectations:
        newest = max(expectations, key=lambda e: e.size)
        try:
            note = blobs.read_record(
                next(n for n in names if parse_record_name(n) == (newest.size, newest.root))
            ).decode()
            signed = verified_checkpoint(note, verifier)
        except (NoteError, NotFound, UnicodeDecodeError) as exc:
            raise _Failed(None, "exported_checkpoint", f"导出检查点 {newest.size}：{exc}") from exc
        if (signed.size, signed.root) != (newest.size, newest.root):
            raise _Failed(None, "exported_checkpoint", f"导出检查点 {newest.size} 的名称与内容不符")
    return expectations


def _receipt_expectations(
    receipts: Iterable[tuple[str, dict[str, Any]]], verifier: Verifier, report: VerifyReport
) -> tuple[list[_Expectation], dict[int, tuple[bytes, str]]]:
    expectations, leaves = [], {}
    for name, receipt in receipts:
        try:
            check = verify_receipt(receipt, verifier)
        except NoteError as exc:
            raise _Failed(None, "receipt", f"回执 {name}：{exc}") from exc
        expectations.append(
            _Expectation(check.tree_size, check.root, "receipt", f"回执 {name}", seq=check.seq)
        )
        leaves[check.seq] = (check.leaf_hash, name)
        report.receipts += 1
    return expectations, leaves


def verify_log(
    db: Database,
    blobs: BlobStore,
    verifier: Verifier | None,
    *,
    receipts: Iterable[tuple[str, dict[str, Any]]] = (),
) -> VerifyReport:
    """Recompute the log's tree and hold it against every signed root known (see module)."""
    report = VerifyReport(ok=True, events=0, head=merkle.EMPTY_ROOT.hex())
    if verifier is None:
        with db.session() as session:
            count = session.scalar(select(func.count()).select_from(AuditCheckpoint)) or 0
        if count:
            return _fail(report, _Failed(None, "no_key", CHECK_NAMES["no_key"]))
        verifier_missing = True
    else:
        verifier_missing = False
    try:
        with db.session() as session:
            expectations: list[_Expectation] = []
            receipt_leaves: dict[int, tuple[bytes, str]] = {}
            if verifier is not None:
                expectations += _checkpoint_expectations(session, verifier, report)
                expectations += _exported_expectations(blobs, verifier, report)
                more, receipt_leaves = _receipt_expectations(receipts, verifier, report)
                expectations += more
            pruned = _pruned_ranges(session, blobs, report)
            frontier = _recompute(session, expectations, receipt_leaves, pruned)
            report.events = frontier.size
            report.head = frontier.root().hex()
            beyond = [e for e in expectations if e.size > frontier.size]
            if beyond:
                first = min(beyond, key=lambda e: e.size)
                raise _Failed(
                    frontier.size + 1,
                    "truncated",
                    f"{first.what} 覆盖 {first.size} 条事件，日志只有 {frontier.size} 条",
                )
            _check_no_inserted(session, report)
    except _Failed as failed:
        return _fail(report, failed)
    if verifier_missing:
        report.warnings.append("尚无签名检查点")
    return report


def _pruned_ranges(session: Session, blobs: BlobStore, report: VerifyReport) -> list[range]:
    """The ranges of seqs whose events were archived and pruned; each archive must still be in
    the object store (under retention there)."""
    prunes = list(session.scalars(select(AuditPrune).order_by(AuditPrune.last_seq)))
    if not prunes:
        return []
    report.pruned = sum(prune.deleted for prune in prunes)
    try:
        stored = set(blobs.list_records(ARCHIVE_PREFIX))
    except BackendUnavailable:
        report.warnings.append("对象存储不可用：未核对已清理事件的归档")
        stored = {prune.archive_name for prune in prunes}
    for prune in prunes:
        if prune.archive_name not in stored:
            span = f"{prune.first_seq}–{prune.last_seq}"
            detail = f"第 {span} 号事件的归档 {prune.archive_name} 不存在"
            raise _Failed(prune.first_seq, "archive_missing", detail, last_seq=prune.last_seq)
    return [range(prune.first_seq, prune.last_seq + 1) for prune in prunes]


def _recompute(
    session: Session,
    expectations: list[_Expectation],
    receipt_leaves: dict[int, tuple[bytes, str]],
    pruned: list[range],
) -> merkle.Frontier:
    by_size: dict[int, list[_Expectation]] = {}
    for expectation in expectations:
        by_size.setdefault(expectation.size, []).append(expectation)
    with closing(_leaf_rows(session)) as rows:
        return _fold_leaves(rows, by_size, receipt_leaves, pruned)


def _fold_leaves(
    rows: Iterator[tuple[int, bytes, AuditEvent | None]],
    by_size: dict[int, list[_Expectation]],
    receipt_leaves: dict[int, tuple[bytes, str]],
    pruned: list[range],
) -> merkle.Frontier:
    frontier = merkle.Frontier()
    matched = 0  # the last size at which a signed root was met: the change lies after it
    for seq, stored, event in rows:
        expected = frontier.size + 1
        if seq != expected:
            raise _Failed(expected, "leaf_missing", f"第 {expected} 号之后缺少事件")
        if event is not None:
            leaf = merkle.leaf_hash(leaf_bytes(event, seq))
        elif any(seq in done for done in pruned):
            leaf = stored  # archived and pruned: the signed roots below still hold it
        else:
            raise _Failed(seq, "event_missing", f"第 {seq} 号事件的记录不存在")
        if leaf != stored:
            raise _Failed(seq, "leaf_mismatch", f"第 {seq} 号事件的内容与叶哈希不符")
        if seq in receipt_leaves and receipt_leaves[seq][0] != leaf:
            raise _Failed(seq, "receipt", f"回执 {receipt_leaves[seq][1]} 中的事件与日志不符")
        frontier.append(leaf)
        if seq not in by_size:
            continue
        root = frontier.root()
        for expectation in by_size[seq]:
            if root != expectation.root:
                raise _Failed(
                    expectation.seq or matched + 1,
                    expectation.reason,
                    f"重算到第 {seq} 号的树根与{expectation.what}不符",
                    last_seq=None if expectation.seq else seq,
                )
        matched = seq
    return frontier


def _check_no_inserted(session: Session, report: VerifyReport) -> None:
    """Events the sequencer has passed but that have no leaf were put in afterwards."""
    state = session.get(AuditSequencerState, STATE)
    if state is None:
        return
    unsequenced = (
        select(AuditEvent.id)
        .outerjoin(AuditLeaf, AuditLeaf.event_id == AuditEvent.id)
        .where(AuditLeaf.seq.is_(None))
    )
    passed = session.scalar(
        unsequenced.where(
            tuple_(AuditEvent.tx, AuditEvent.id) <= tuple_(state.last_tx, state.last_event_id)
        )
        .order_by(AuditEvent.id)
        .limit(1)
    )
    report.pending = session.scalar(select(func.count()).select_from(unsequenced.subquery())) or 0
    if passed is not None:
        after = session.scalar(select(func.min(AuditLeaf.seq)).where(AuditLeaf.event_id > passed))
        detail = f"事件 {passed} 不在默克尔树中，却排在已排序事件之间"
        raise _Failed(after, "event_inserted", detail)


def _fail(report: VerifyReport, failed: _Failed) -> VerifyReport:
    report.ok = False
    report.first_bad_seq = failed.seq
    report.last_bad_seq = failed.last_seq
    report.reason = failed.reason
    report.detail = failed.detail
    return report
