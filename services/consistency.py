"""The whole system's consistency, checked and where it can be, repaired: documents' blobs, orphan
blobs, unfinished writes in the blob store, the outbox, the search index and the audit log.
``check_system`` runs them all; the worker runs the cheap part.

Each check ends ``ok``, ``repaired`` (found and fixed by this run), ``repairable`` (found;
``repair`` would fix it) or ``failed`` (cannot be repaired: a missing or corrupt blob, a tampered
audit log).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from indexer.consistency import check_index
from indexer.worker import MAX_ATTEMPTS
from services import maintenance
from services.audit_keys import load_verifier
from services.audit_report_words import verify_summary
from services.audit_verify import verify_log
from services.backends import Backends
from services.models import Document, OutboxEvent, utcnow

log = logging.getLogger("materials.check")

# Offending ids listed per problem; the counts say how many there are in all.
MAX_LISTED = 20


class Status(StrEnum):
    ok = "ok"
    repaired = "repaired"
    repairable = "repairable"
    failed = "failed"


STATUS_NAMES = {
    Status.ok: "正常",
    Status.repaired: "已修复",
    Status.repairable: "待修复",
    Status.failed: "无法修复",
}


@dataclass
class CheckResult:
    name: str
    status: Status
    summary: str  # one line for people
    counts: dict[str, int] = field(default_factory=dict)
    # Offending ids by problem, at most MAX_LISTED each (document ids, sha256, event ids, seqs).
    ids: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status in (Status.ok, Status.repaired)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "status": self.status.value,
            "summary": self.summary,
            "counts": self.counts,
            "ids": self.ids,
        }


@dataclass
class ConsistencyReport:
    repair: bool
    cheap: bool
    checks: list[CheckResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Consistent now: every check found nothing, or what it found was repaired."""
        return all(check.ok for check in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "repair": self.repair,
            "cheap": self.cheap,
            "checks": {check.name: check.as_dict() for check in self.checks},
        }

    def verdict(self) -> str:
        """The last line for people."""
        if self.ok:
            return "结论：一致"
        if any(check.status == Status.failed for check in self.checks):
            return "结论：不一致，有无法自动修复的问题"
        return "结论：不一致，加 --repair 可修复"

    def one_line(self) -> str:
        """The report on one line, for a log."""
        return "; ".join(
            f"{check.name} {STATUS_NAMES[check.status]}：{check.summary}" for check in self.checks
        )

    def lines(self) -> list[str]:
        """The report for people: one line per check."""
        return [
            f"{check.name:<8} {STATUS_NAMES[check.status]}：{check.summary}"
            for check in self.checks
        ]


def _listed(ids: Iterable[object]) -> list[str]:
    return [str(one) for one in list(ids)[:MAX_LISTED]]


def _status(*, broken: bool = False, found: int = 0, fixed: bool = False) -> Status:
    if broken:
        return Status.failed
    if not found:
        return Status.ok
    return Status.repaired if fixed else Status.repairable


def check_blobs(backends: Backends, *, cheap: bool = False) -> CheckResult:
    """Every document's blob exists with its size and (unless ``cheap``) its sha256."""
    with backends.db.session() as session:
        rows = session.execute(select(Document.id, Document.sha256, Document.size)).all()
    missing: list[str] = []
    corrupt: list[str] = []
    hashed: dict[str, bool] = {}  # sha256 → intact, so a blob shared by documents is read once
    for document_id, sha256, size in rows:
        stat = backends.blobs.stat(sha256)
        if stat is None:
            missing.append(document_id)
        elif stat.size != size:
            corrupt.append(document_id)
        elif not cheap:
            if sha256 not in hashed:
                digest = hashlib.sha256()
                for chunk in backends.blobs.read_chunks(sha256):
                    digest.update(chunk)
                hashed[sha256] = digest.hexdigest() == sha256
            if not hashed[sha256]:
                corrupt.append(document_id)
    how = "存在且大小相符" if cheap else "存在且 sha256 相符"
    if missing or corrupt:
        damaged = "大小" if cheap else "内容"
        summary = (
            f"{len(rows)} 个文档中，{len(missing)} 个的文件缺失，"
            f"{len(corrupt)} 个的文件{damaged}不符（无法自动修复，需从备份恢复）"
        )
    else:
        summary = f"{len(rows)} 个文档的文件都{how}"
    return CheckResult(
        name="blobs",
        status=_status(broken=bool(missing or corrupt)),
        summary=summary,
        counts={"documents": len(rows), "missing": len(missing), "corrupt": len(corrupt)},
        ids={"missing": _listed(missing), "corrupt": _listed(corrupt)},
    )


def check_orphans(backends: Backends, *, repair: bool) -> CheckResult:
    """Blobs no document refers to: old ones removed with ``repair``, young ones never touched."""
    found = maintenance.find_orphans(backends)
    removed = maintenance.remove_orphans(backends, found.old) if repair else []
    grace = backends.settings.orphan_grace_seconds
    if not found.old:
        summary = "没有超过宽限期的孤立文件"
    elif repair:
        summary = f"删除了 {len(removed)} 个超过宽限期（{grace} 秒）的孤立文件"
    else:
        summary = f"{len(found.old)} 个孤立文件超过宽限期（{grace} 秒），--repair 会删除"
    if found.young:
        summary += f"；{len(found.young)} 个在宽限期内（可能正在上传），保留"
    return CheckResult(
        name="orphans",
        # With repair every old orphan is gone: removed, or young or referenced again meanwhile.
        status=_status(found=len(found.old), fixed=repair),
        summary=summary,
        counts={
            "blobs": found.blobs,
            "old": len(found.old),
            "young": len(found.young),
            "removed": len(removed),
        },
        ids={
            "old": _listed(blob.sha256 for blob in found.old),
            "removed": _listed(removed),
        },
    )


def check_partial(backends: Backends, *, repair: bool) -> CheckResult:
    """Writes an upload began and never finished (its process was killed): a hidden temporary
    file, an S3 multipart upload. Old ones discarded with ``repair``; one that received bytes
    within the grace period is an upload in progress and never touched."""
    grace = backends.settings.orphan_grace_seconds
    cutoff = utcnow() - timedelta(seconds=grace)
    old = backends.blobs.unfinished_writes(older_than=cutoff)
    discarded = backends.blobs.discard_unfinished(older_than=cutoff) if repair else []
    held = sum(write.size for write in old)
    if not old and not discarded:
        summary = "没有超过宽限期的未完成上传"
    elif repair:
        summary = (
            f"清除了 {len(discarded)} 个超过宽限期（{grace} 秒）的未完成上传"
            f"（共 {_size_words(sum(write.size for write in discarded))}）"
        )
    else:
        summary = (
            f"{len(old)} 个未完成上传超过宽限期（{grace} 秒），"
            f"占用 {_size_words(held)}，--repair 会清除"
        )
    return CheckResult(
        name="partial",
        # With repair every old one is gone: discarded, or finished or written to meanwhile.
        status=_status(found=len(old), fixed=repair),
        summary=summary,
        counts={"old": len(old), "bytes": held, "discarded": len(discarded)},
        ids={
            "old": _listed(write.name for write in old),
            "discarded": _listed(write.name for write in discarded),
        },
    )


def _size_words(size: int) -> str:
    if size < 1024 * 1024:
        return f"{size} 字节"
    return f"{size / (1024 * 1024):.1f} MB"


def check_outbox(backends: Backends, *, repair: bool) -> CheckResult:
    """Index events stuck under a lease long expired (made due now with ``repair``), and events
    that have failed ``MAX_ATTEMPTS`` times and are still pending (reported only)."""
    now = utcnow()
    pending = OutboxEvent.done_at.is_(None)
    # An event whose lease ran out a whole lease ago and that no worker took again is stuck: a
    # live worker claims an expired lease within its poll interval.
    stuck_after = timedelta(seconds=backends.settings.index_lease_seconds)
    stuck_clause = (pending, OutboxEvent.lease_expires_at < now - stuck_after)
    exhausted_clause = (pending, OutboxEvent.attempts >= MAX_ATTEMPTS)

    def count(session: Session, *where: Any) -> int:
        return session.scalar(select(func.count()).select_from(OutboxEvent).where(*where)) or 0

    def first_ids(session: Session, *where: Any) -> list[str]:
        found = session.scalars(
            select(OutboxEvent.id).where(*where).order_by(OutboxEvent.id).limit(MAX_LISTED)
        )
        return _listed(found)

    with backends.db.session() as session:
        waiting = count(session, pending)
        stuck, stuck_ids = count(session, *stuck_clause), first_ids(session, *stuck_clause)
        exhausted = count(session, *exhausted_clause)
        exhausted_ids = first_ids(session, *exhausted_clause)
        made_due: list[int] = []
        if repair and stuck:
            # The same condition again: an event a worker claimed since is left to it.
            made_due = list(
                session.scalars(
                    update(OutboxEvent)
                    .where(*stuck_clause)
                    .values(lease_owner=None, lease_expires_at=None, available_at=now)
                    .returning(OutboxEvent.id)
                )
            )
    parts = [f"{waiting} 个索引事件待处理"]
    if stuck:
        parts.append(
            f"{stuck} 个卡在过期租约上，" + ("已改为立即重试" if repair else "--repair 会立即重试")
        )
    if exhausted:
        parts.append(f"{exhausted} 个已失败 {MAX_ATTEMPTS} 次以上仍未完成（请查看 worker 日志）")
    return CheckResult(
        name="outbox",
        status=_status(broken=bool(exhausted), found=stuck, fixed=repair),
        summary="，".join(parts),
        counts={
            "pending": waiting,
            "stuck": stuck,
            "made_due": len(made_due),
            "exhausted": exhausted,
        },
        ids={"stuck": stuck_ids, "exhausted": exhausted_ids},
    )


def check_search_index(backends: Backends, *, repair: bool) -> CheckResult:
    """Every live indexed document in the search index at its current version and nothing else
    (``indexer.consistency``); ``repair`` queues the missing and stale, deletes the extra."""
    found = check_index(backends, repair=repair)
    summary = (
        f"索引应有 {found.expected} 个文档，实有 {found.held} 个"
        f"（{found.in_flight} 个正在处理，不计）"
    )
    if not found.ok:
        summary += f"；缺 {found.missing} 个，版本过旧 {found.stale} 个，多余 {found.extra} 个"
        summary += (
            f"，已排队重建 {found.queued} 个、删除 {found.removed} 个"
            if found.repaired
            else "，--repair 会重建缺失和过旧的、删除多余的"
        )
    return CheckResult(
        name="index",
        status=_status(found=0 if found.ok else 1, fixed=found.repaired),
        summary=summary,
        counts={
            "expected": found.expected,
            "held": found.held,
            "in_flight": found.in_flight,
            "missing": found.missing,
            "stale": found.stale,
            "extra": found.extra,
            "queued": found.queued,
            "removed": found.removed,
        },
        ids={"missing": found.missing_ids, "stale": found.stale_ids, "extra": found.extra_ids},
    )


def check_audit(backends: Backends) -> CheckResult:
    """The audit log verifies against its signed checkpoints (a failure is never repaired)."""
    report = verify_log(backends.db, backends.blobs, load_verifier(backends.settings))
    return CheckResult(
        name="audit",
        status=_status(broken=not report.ok),
        summary=verify_summary(report),
        counts={"events": report.events, "checkpoints": report.checkpoints},
        ids={"first_bad_seq": _listed([report.first_bad_seq] if not report.ok else [])},
    )


def check_system(
    backends: Backends, *, repair: bool = False, cheap: bool = False
) -> ConsistencyReport:
    """Run every check (``cheap``: blobs by size only, orphans, unfinished writes, outbox);
    repair what can be."""
    report = ConsistencyReport(repair=repair, cheap=cheap)
    report.checks.append(check_blobs(backends, cheap=cheap))
    report.checks.append(check_orphans(backends, repair=repair))
    report.checks.append(check_partial(backends, repair=repair))
    report.checks.append(check_outbox(backends, repair=repair))
    if not cheap:
        report.checks.append(check_search_index(backends, repair=repair))
        report.checks.append(check_audit(backends))
    return report


class BackgroundCheck:
    """The cheap check with repair (old orphans and unfinished writes discarded), every
    ``check_interval_seconds``, on a daemon thread (the worker runs it); a warning under
    ``materials.check`` when the system is not consistent."""

    def __init__(self, backends: Backends) -> None:
        self._backends = backends
        self._interval = backends.settings.check_interval_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="materials-check", daemon=True)

    def start(self) -> None:
        if self._interval > 0:
            self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def run_once(self) -> ConsistencyReport | None:
        """One cheap check with repair, logged; None when it could not run."""
        try:
            report = check_system(self._backends, repair=True, cheap=True)
        except Exception:  # a backend down: the next round tries again
            log.exception("consistency check could not run")
            return None
        if report.ok:
            log.info("consistency check ok: %s", report.one_line())
        else:
            log.warning("consistency check found problems: %s", report.one_line())
        return report

    def _run(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self._interval)
