"""The indexing worker: claim outbox events → index the document → complete, or retry later.

``IndexWorker.run_once`` does one batch; ``run`` loops until told to stop. Embedded mode runs it on
a thread inside ``materials serve``; ``materials worker`` runs it on its own. While a batch is
worked on, a heartbeat thread renews the leases of the events still held; each write to the index
is preceded by a renewal of its own event's lease, and a lost lease stops that work unwritten.
A running worker that finds its index rebuilt empty by a new schema first queues every live
document for it (``refill_if_rebuilt``).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid

from indexer import outbox
from indexer.extractors import ExtractionLimits
from indexer.indexing import LeaseLost, index_document, mark_failed
from indexer.reindex import refill
from services import dictionary, requests
from services.backends import Backends
from services.errors import BackendUnavailable
from services.search import SearchIndex

log = logging.getLogger("materials.indexer")

MAX_ATTEMPTS = 8
# After a backend was found down, how often a worker asks whether it answers again.
PROBE_SECONDS = 2.0
# How the retry of an event that failed on a backend down begins its last_error.
_UNAVAILABLE = f"{BackendUnavailable.__name__}: "


class IndexWorker:
    """Drains the outbox into the search index."""

    def __init__(
        self,
        backends: Backends,
        index: SearchIndex,
        *,
        lease_seconds: float | None = None,
        batch_size: int = 16,
        poll_seconds: float = 0.2,
        limits: ExtractionLimits | None = None,
    ) -> None:
        self._backends = backends
        self._index = index
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        # None: the lease follows the settings (``MATERIALS_INDEX_LEASE_SECONDS``).
        self._lease_seconds = lease_seconds or backends.settings.index_lease_seconds
        # The claims of the batch in hand, and those whose lease the heartbeat found lost.
        self._held: dict[int, outbox.Claim] = {}
        self._lost: set[int] = set()
        self._held_lock = threading.Lock()
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        # None: the limits follow the settings (the OCR page cap).
        self._limits = limits
        self._next_due_check = 0.0
        # Set when an event failed on a backend that was down; cleared once the backends answer
        # again and the events waiting out their backoff were made due (``wake_waiting``).
        self._backend_down = False
        self._next_probe = 0.0
        # Whether this worker has asked the index whether it needs refilling, and got an answer.
        self._refill_checked = False
        self._next_refill_check = 0.0

    def run_once(self) -> int:
        """Process one batch of due events; how many were claimed."""
        db = self._backends.db
        claims = outbox.claim(
            db, owner=self.owner, lease_seconds=self._lease_seconds, limit=self._batch_size
        )
        with self._held_lock:
            self._held = {claim.event_id: claim for claim in claims}
            self._lost = set()
        beating = threading.Event()
        heartbeat = threading.Thread(
            target=self._heartbeat, args=(beating,), name="index-lease", daemon=True
        )
        if claims:
            heartbeat.start()
        try:
            if claims:
                # Segment with the county's current words, read once there is work: an idle
                # worker loads no segmenter (its dictionaries hold some 70 MiB).
                dictionary.keep_current(self._backends)
            for claim in claims:
                self._handle(claim)
                with self._held_lock:
                    self._held.pop(claim.event_id, None)
        finally:
            beating.set()
            if heartbeat.is_alive():
                heartbeat.join()
        return len(claims)

    def _handle(self, claim: outbox.Claim) -> None:
        db = self._backends.db
        try:
            index_document(
                self._backends,
                self._index,
                document_id=claim.document_id,
                limits=self._limits,
                before_write=lambda: self._hold(claim),
            )
        except LeaseLost:
            log.warning(
                "lease on outbox event %d (document %s) was lost: left to its new owner",
                claim.event_id,
                claim.document_id,
            )
            return
        except Exception as exc:  # any failure: the event stays and is tried again later
            transient = isinstance(exc, BackendUnavailable)
            self._backend_down = self._backend_down or transient
            reason = f"{type(exc).__name__}: {exc}"
            attempts = outbox.retry_later(db, claim, owner=self.owner, error=reason)
            log.warning("indexing %s failed (attempt %d): %s", claim.document_id, attempts, reason)
            if attempts >= MAX_ATTEMPTS and not transient:
                mark_failed(
                    self._backends,
                    document_id=claim.document_id,
                    reason=f"索引多次失败，最后一次错误：{reason}",
                )
                outbox.complete(db, claim, owner=self.owner)
            return
        outbox.complete(db, claim, owner=self.owner)

    def _hold(self, claim: outbox.Claim) -> None:
        """Renew this claim's lease before a write to the index; LeaseLost when it is gone."""
        with self._held_lock:
            lost = claim.event_id in self._lost
        if lost or not outbox.renew(
            self._backends.db, [claim], owner=self.owner, lease_seconds=self._lease_seconds
        ):
            raise LeaseLost(claim.event_id)

    def _heartbeat(self, done: threading.Event) -> None:
        """Renew the leases of the batch's events still in hand, every third of a lease."""
        while not done.wait(self._lease_seconds / 3):
            with self._held_lock:
                held = list(self._held.values())
            try:
                kept = outbox.renew(
                    self._backends.db, held, owner=self.owner, lease_seconds=self._lease_seconds
                )
            except Exception:  # the database is away: try again; a lease may run out meanwhile
                log.exception("renewing index leases failed")
                continue
            with self._held_lock:
                self._lost.update(claim.event_id for claim in held if claim.event_id not in kept)

    def drain(self, *, max_rounds: int = 10_000) -> int:
        """Process until nothing is due; how many events were handled (for tests and reindex)."""
        handled = 0
        for _ in range(max_rounds):
            claimed = self.run_once()
            if not claimed:
                break
            handled += claimed
        return handled

    def check_due_dates(self) -> None:
        """The periodic part of the loop: remind townships of requests nearing or past their due
        date, every ``due_check_seconds`` (each reminder is sent once, whichever worker runs)."""
        if time.monotonic() < self._next_due_check:
            return
        self._next_due_check = time.monotonic() + self._backends.settings.due_check_seconds
        try:
            sent = requests.run_due_dates(self._backends)
        except Exception:  # a clash with another worker or a database error: try next time
            log.exception("due-date reminders failed")
            return
        if sent:
            log.info("sent %d due-date reminders", sent)

    def wake_waiting(self) -> None:
        """Once the search index and the blob store answer again after an outage, make the
        events that failed on it due now, instead of at the end of their backoff (which grows
        to minutes over a long outage)."""
        if not self._backend_down or time.monotonic() < self._next_probe:
            return
        self._next_probe = time.monotonic() + PROBE_SECONDS
        try:
            self._index.ping()
            self._backends.blobs.ping()
            woken = outbox.retry_now(self._backends.db, error_prefix=_UNAVAILABLE)
        except Exception:  # still down: ask again later
            return
        self._backend_down = False
        if woken:
            log.info("backends answer again: %d waiting index events retried now", woken)

    def refill_if_rebuilt(self) -> int:
        """Once per worker: when the index was rebuilt empty by a new schema (the embedded index
        after an upgrade), queue every live document for it, so that search finds them again
        without a ``materials reindex``; how many were queued. Asked again after a failure."""
        if self._refill_checked or time.monotonic() < self._next_refill_check:
            return 0
        self._next_refill_check = time.monotonic() + PROBE_SECONDS
        try:
            queued = refill(self._backends, self._index)
        except Exception:  # the database or the index is away: ask again later
            log.exception("could not find out whether the search index needs refilling")
            return 0
        self._refill_checked = True
        if queued:
            log.warning(
                "the search index was rebuilt for a new schema: %d documents queued for indexing",
                queued,
            )
        return queued

    def run(self, stop: threading.Event) -> None:
        """Loop until ``stop`` is set, polling when idle."""
        log.info("index worker %s started", self.owner)
        while not stop.is_set():
            self.refill_if_rebuilt()
            self.check_due_dates()
            try:
                claimed = self.run_once()
            except Exception:  # the database itself failed: wait and try again
                log.exception("index worker could not claim events")
                claimed = 0
            self.wake_waiting()
            if not claimed:
                stop.wait(self._poll_seconds)
        log.info("index worker %s stopped", self.owner)


class BackgroundWorker:
    """An ``IndexWorker`` on a daemon thread, for embedded mode."""

    def __init__(self, worker: IndexWorker) -> None:
        self._worker = worker
        self._stop = threading.Event()
        self._thread = threading.Thread(target=worker.run, args=(self._stop,), daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
