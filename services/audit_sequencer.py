"""The sequencer: numbers committed audit events, grows the Merkle tree, signs checkpoints.

One sequencer works at a time, by a lease on the ``audit_sequencer`` row; every batch runs in one
transaction that holds that row, so even a sequencer whose lease ran out while it worked cannot
interleave with the next one (a batch either lands whole or not at all). It runs beside every
index worker and in embedded ``serve``.

Which events are final: on SQLite every writer holds the database's write lock, so an event not
yet committed cannot exist while the sequencer's transaction runs. On PostgreSQL each event
carries the id of its transaction (``tx``); the sequencer takes only events whose transaction is
older than every transaction still running (``pg_snapshot_xmin``), so an event committed late by
a slow transaction is taken when it commits, never passed over. Batches go in (tx, id) order.

A checkpoint is signed every ``audit_checkpoint_events`` events or ``audit_checkpoint_seconds``
after the last one, whichever comes first, stored in the database, and then written to the object
store (under object lock where the store has it); exports that failed are retried.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, insert, select, text, tuple_, update
from sqlalchemy.orm import Session, lazyload

from services import merkle
from services.audit import event_time, leaf_bytes
from services.audit_keys import SigningKeyMissing, load_signer
from services.audit_tree import node_reader, tree_size
from services.blobs import BlobStore
from services.config import Settings
from services.db import Database
from services.errors import BackendUnavailable
from services.models import (
    AuditCheckpoint,
    AuditEvent,
    AuditLeaf,
    AuditLegacyChain,
    AuditSequencerState,
    AuditTreeNode,
    utcnow,
)
from services.signed_notes import Checkpoint, Signer

log = logging.getLogger("materials.audit")

STATE = "audit"
CHECKPOINT_PREFIX = "audit/checkpoints"
_NO_HORIZON = 2**62  # SQLite: every event in the table is final


def checkpoint_record_name(size: int, root: bytes) -> str:
    """The object-store name of a checkpoint: its size and root readable from a listing."""
    return f"{CHECKPOINT_PREFIX}/{size:020d}-{root.hex()}"


def parse_record_name(name: str) -> tuple[int, bytes] | None:
    stem = name.rsplit("/", 1)[-1]
    size_text, _, root_hex = stem.partition("-")
    try:
        return int(size_text), bytes.fromhex(root_hex)
    except ValueError:
        return None


@dataclass(frozen=True)
class BatchResult:
    leader: bool  # False: another sequencer holds the lease
    sequenced: int
    checkpoints: int


class AuditSequencer:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        blobs: BlobStore,
        *,
        signer: Signer | None = None,
        owner: str | None = None,
    ) -> None:
        self._db = db
        self._settings = settings
        self._blobs = blobs
        self._signer = signer
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    @property
    def signer(self) -> Signer:
        if self._signer is None:
            self._signer = load_signer(self._settings)
        return self._signer

    def run_once(self, *, sign_now: bool = False) -> BatchResult:
        """Sequence one batch and sign what is due (``sign_now``: whatever is unsigned), then
        export unexported checkpoints."""
        signer = self.signer
        with self._db.session() as session:
            result = self._batch(session, signer, sign_now=sign_now)
        if result.leader:
            self.export_checkpoints()
        return result

    def drain(self, *, max_rounds: int = 10_000) -> int:
        """Sequence until nothing is left and sign a checkpoint over all of it (commands, tests);
        how many events were sequenced."""
        total = 0
        try:
            for _ in range(max_rounds):
                result = self.run_once(sign_now=True)
                total += result.sequenced
                if not result.leader or result.sequenced == 0:
                    break
        finally:
            self.release()
        return total

    def release(self) -> None:
        """Give the lease up, so that the next sequencer need not wait for it to run out."""
        with self._db.session() as session:
            session.execute(
                update(AuditSequencerState)
                .where(AuditSequencerState.name == STATE, AuditSequencerState.owner == self.owner)
                .values(owner=None, lease_expires_at=None)
            )

    def _take_lease(self, session: Session) -> AuditSequencerState | None:
        state = session.get(AuditSequencerState, STATE, with_for_update=True)
        if state is None:
            raise RuntimeError("audit_sequencer row missing: run the migrations")
        now = utcnow()
        if (
            state.owner not in (None, self.owner)
            and state.lease_expires_at is not None
            and state.lease_expires_at > now
        ):
            return None
        state.owner = self.owner
        state.lease_expires_at = now + timedelta(
            seconds=self._settings.audit_sequencer_lease_seconds
        )
        return state

    def _horizon(self, session: Session) -> int:
        if self._db.dialect != "postgresql":
            return _NO_HORIZON
        oldest_running = text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")
        return int(session.execute(oldest_running).scalar_one())

    def _batch(self, session: Session, signer: Signer, *, sign_now: bool) -> BatchResult:
        state = self._take_lease(session)
        if state is None:
            return BatchResult(False, 0, 0)
        horizon = self._horizon(session)
        rows = session.execute(
            select(AuditEvent)
            .options(lazyload(AuditEvent.leaf))
            .where(
                tuple_(AuditEvent.tx, AuditEvent.id) > tuple_(state.last_tx, state.last_event_id),
                AuditEvent.tx < horizon,
            )
            .order_by(AuditEvent.tx, AuditEvent.id)
            .limit(self._settings.audit_sequencer_batch)
        ).scalars()
        events = list(rows)
        size = tree_size(session)
        last = session.scalar(select(func.max(AuditCheckpoint.tree_size))) or 0
        last_at = session.scalar(select(func.max(AuditCheckpoint.signed_at)))
        legacy = session.scalar(select(AuditLegacyChain)) if last == 0 else None
        frontier = merkle.Frontier.of(size, node_reader(session))
        leaves: list[dict[str, object]] = []
        nodes: list[dict[str, object]] = []
        checkpoints: list[dict[str, object]] = []
        for event in events:
            seq = frontier.size + 1
            leaf = merkle.leaf_hash(leaf_bytes(event, seq))
            for (level, index), digest in frontier.append(leaf):
                if level == 0:
                    leaves.append({"seq": seq, "event_id": event.id, "leaf_hash": digest})
                else:
                    nodes.append({"level": level, "idx": index, "hash": digest})
            # While the migrated chain's head waits for its checkpoint, none is signed before it.
            if (legacy is not None and seq == legacy.head_seq) or (
                legacy is None and seq - last >= self._settings.audit_checkpoint_events
            ):
                checkpoints.append(self._checkpoint(signer, frontier, legacy))
                last, last_at, legacy = seq, utcnow(), None
        due = (
            sign_now
            or last_at is None
            or utcnow() - last_at >= timedelta(seconds=self._settings.audit_checkpoint_seconds)
        )
        if frontier.size > last and due and (legacy is None or frontier.size >= legacy.head_seq):
            checkpoints.append(self._checkpoint(signer, frontier, legacy))
        if leaves:
            session.execute(insert(AuditLeaf), leaves)
        if nodes:
            session.execute(insert(AuditTreeNode), nodes)
        if checkpoints:
            session.execute(insert(AuditCheckpoint), checkpoints)
        if events:
            state.last_tx, state.last_event_id = events[-1].tx, events[-1].id
        return BatchResult(True, len(events), len(checkpoints))

    def _checkpoint(
        self, signer: Signer, frontier: merkle.Frontier, legacy: AuditLegacyChain | None
    ) -> dict[str, object]:
        signed_at = utcnow()
        extensions = [f"signed-at {event_time(signed_at)}"]
        if legacy is not None:
            # The hash chain the log was before: its head, carried into the first checkpoint.
            extensions.append(f"legacy-chain {legacy.head_seq} {legacy.head_hash}")
        root = frontier.root()
        note = signer.sign(Checkpoint(signer.name, frontier.size, root, tuple(extensions)).text())
        return {"tree_size": frontier.size, "root_hash": root, "signed_at": signed_at, "note": note}

    def export_checkpoints(self, *, limit: int = 100) -> int:
        """Write checkpoints not yet in the object store there; how many were written."""
        with self._db.session() as session:
            waiting = list(
                session.execute(
                    select(
                        AuditCheckpoint.tree_size, AuditCheckpoint.root_hash, AuditCheckpoint.note
                    )
                    .where(AuditCheckpoint.exported_at.is_(None))
                    .order_by(AuditCheckpoint.tree_size)
                    .limit(limit)
                )
            )
        written = 0
        for size, root, note in waiting:
            try:
                self._blobs.put_record(
                    checkpoint_record_name(size, bytes(root)),
                    note.encode(),
                    retain_days=self._settings.audit_retention_days,
                )
            except BackendUnavailable as exc:
                log.warning("checkpoint %d not written to the object store yet: %s", size, exc)
                break
            with self._db.session() as session:
                session.execute(
                    update(AuditCheckpoint)
                    .where(AuditCheckpoint.tree_size == size)
                    .values(exported_at=utcnow())
                )
            written += 1
        return written

    def run(self, stop: threading.Event, *, poll_seconds: float = 0.2) -> None:
        """Sequence until ``stop`` is set: at once while there is work, polling when idle."""
        log.info("audit sequencer %s started", self.owner)
        while not stop.is_set():
            try:
                result = self.run_once()
            except SigningKeyMissing:
                log.exception("audit sequencer cannot sign checkpoints; retrying in a minute")
                stop.wait(60)
                continue
            except Exception:  # the database or the object store failed: try again shortly
                log.exception("audit sequencer batch failed")
                stop.wait(max(poll_seconds, 1.0))
                continue
            if result.sequenced < self._settings.audit_sequencer_batch:
                stop.wait(poll_seconds if result.leader else max(poll_seconds, 1.0))
        try:
            self.release()
        except Exception:  # the database is gone: the lease runs out by itself
            log.warning("audit sequencer %s could not release its lease", self.owner)
        log.info("audit sequencer %s stopped", self.owner)


class BackgroundSequencer:
    """An ``AuditSequencer`` on a daemon thread (in ``serve`` and beside each index worker)."""

    def __init__(self, sequencer: AuditSequencer) -> None:
        self.sequencer = sequencer
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=sequencer.run, args=(self._stop,), name="audit-sequencer", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout)


def wait_for_sequence(db: Database, event_id: int, *, timeout: float) -> bool:
    """Wait until an event has its leaf and a checkpoint covers it; False on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        with db.session() as session:
            seq = session.scalar(select(AuditLeaf.seq).where(AuditLeaf.event_id == event_id))
            if seq is not None:
                signed = session.scalar(select(func.max(AuditCheckpoint.tree_size))) or 0
                if signed >= seq:
                    return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def lease_owner(db: Database) -> tuple[str | None, datetime | None]:
    with db.session() as session:
        state = session.get(AuditSequencerState, STATE)
        return (state.owner, state.lease_expires_at) if state else (None, None)
