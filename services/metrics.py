"""Prometheus metrics: request latency and uploads counted by the API, and the state of the work
queues (outbox, failed indexing, audit sequencing) read from the database at every scrape.

The database figures are right whichever process did the work (API, ``materials worker``); the
counters are per API process, summed over ``serve --workers N`` by prometheus-client's
multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, set by ``materials serve``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select, tuple_

from services.audit_sequencer import STATE
from services.db import Database
from services.models import (
    AuditEvent,
    AuditSequencerState,
    Document,
    IndexStatus,
    OutboxEvent,
    utcnow,
)

__all__ = ["CONTENT_TYPE", "Metrics", "multiprocess_dir"]

log = logging.getLogger("materials.metrics")

CONTENT_TYPE = CONTENT_TYPE_LATEST
# Uploads take seconds to minutes; the rest of the API milliseconds.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


def multiprocess_dir() -> Path | None:
    """Where this process's counters go when several API processes serve together: set by
    ``materials serve --workers N``. prometheus-client reads the same variable at import, so
    reading it here agrees with where it writes."""
    value = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return Path(value) if value else None


class _QueueCollector(Collector):
    """Outbox backlog, failed indexing and unsequenced audit events, counted at each scrape."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "materials_database_up", "1 when the scrape could read the database, else 0"
        )
        try:
            figures = self._read()
        except Exception:  # a scrape reports the database down instead of failing
            log.warning("metrics: the database could not be read", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        for name, help_text, value in figures:
            yield GaugeMetricFamily(name, help_text, value=value)

    def _read(self) -> list[tuple[str, str, float]]:
        with self._db.session() as session:
            pending = OutboxEvent.done_at.is_(None)
            backlog = session.scalar(select(func.count()).where(pending)) or 0
            oldest = session.scalar(select(func.min(OutboxEvent.created_at)).where(pending))
            failed = (
                session.scalar(
                    select(func.count()).where(Document.index_status == IndexStatus.failed.value)
                )
                or 0
            )
            state = session.get(AuditSequencerState, STATE)
            unsequenced = select(func.count()).select_from(AuditEvent)
            if state is not None:
                unsequenced = unsequenced.where(
                    tuple_(AuditEvent.tx, AuditEvent.id)
                    > tuple_(state.last_tx, state.last_event_id)
                )
            waiting = session.scalar(unsequenced) or 0
        age = max(0.0, (utcnow() - oldest).total_seconds()) if oldest is not None else 0.0
        return [
            ("materials_outbox_pending_events", "Search index changes not yet done", backlog),
            (
                "materials_outbox_oldest_pending_age_seconds",
                "Age of the oldest search index change not yet done (0 when none)",
                age,
            ),
            (
                "materials_documents_index_failed",
                "Documents whose indexing failed (index_status failed)",
                failed,
            ),
            (
                "materials_audit_unsequenced_events",
                "Audit events not yet numbered into the signed log",
                waiting,
            ),
        ]


class Metrics:
    """One API process's metrics and the registry ``/metrics`` answers from."""

    def __init__(self, db: Database, *, shared_dir: Path | None = None) -> None:
        self.registry = CollectorRegistry()
        # In multiprocess mode the values live in files; the scrape reads them all, not this
        # process's objects (registering them too would count them twice).
        own = None if shared_dir is not None else self.registry
        self._latency = Histogram(
            "materials_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template, method and status class",
            ["route", "method", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=own,
        )
        self._uploads = Counter(
            "materials_uploads",
            "Uploads accepted: stored, or duplicate of a file the township holds",
            ["result"],
            registry=own,
        )
        for result in ("stored", "duplicate"):  # both series exist from the start, at 0
            self._uploads.labels(result)
        self._upload_bytes = Counter(
            "materials_upload_bytes", "Bytes of accepted uploads", registry=own
        )
        if shared_dir is not None:
            MultiProcessCollector(self.registry, path=str(shared_dir))  # type: ignore[no-untyped-call]
        self.registry.register(_QueueCollector(db))

    def observe_request(self, *, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request under its route template (never the raw path)."""
        self._latency.labels(route, method, f"{status // 100}xx").observe(seconds)

    def upload_accepted(self, *, size: int, duplicate: bool) -> None:
        """Count an upload the API answered 201 (stored) or 200 (duplicate)."""
        self._uploads.labels("duplicate" if duplicate else "stored").inc()
        self._upload_bytes.inc(size)

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)
