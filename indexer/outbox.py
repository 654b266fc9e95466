"""Claiming outbox events with a lease, completing them, and scheduling retries with backoff.

A claim takes pending events whose lease is free and whose document no other worker holds. Claims
are serialised (PostgreSQL: a transaction-level advisory lock, rows taken ``FOR UPDATE SKIP
LOCKED``; SQLite: the claiming transaction holds the database's write lock), so no two workers
ever hold events of the same document. Leases are short (``MATERIALS_INDEX_LEASE_SECONDS``) and
renewed while the work goes on (``renew``): a dead worker's events come free within one lease, and
a lease that ran out is lost for good, even if no one has taken it yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, or_, select, update

from services.db import Database
from services.models import OutboxEvent, utcnow

MAX_BACKOFF_SECONDS = 600


@dataclass(frozen=True)
class Claim:
    event_id: int
    document_id: str
    action: str
    attempts: int


def claim(db: Database, *, owner: str, lease_seconds: float, limit: int) -> list[Claim]:
    """Lease up to ``limit`` due events, at most one per document."""
    now = utcnow()
    lease_free = or_(OutboxEvent.lease_expires_at.is_(None), OutboxEvent.lease_expires_at < now)
    held_documents = select(OutboxEvent.document_id).where(
        OutboxEvent.done_at.is_(None), OutboxEvent.lease_expires_at >= now
    )
    with db.session() as session:
        # Serialised, so the "document already held" check sees every other worker's claims;
        # SKIP LOCKED also keeps a claim from waiting on rows a completing worker is updating.
        db.lock_outbox_claims(session)
        rows = session.execute(
            select(
                OutboxEvent.id, OutboxEvent.document_id, OutboxEvent.action, OutboxEvent.attempts
            )
            .where(
                OutboxEvent.done_at.is_(None),
                OutboxEvent.available_at <= now,
                lease_free,
                OutboxEvent.document_id.not_in(held_documents),
            )
            .order_by(OutboxEvent.id)
            .limit(limit * 4)
            .with_for_update(skip_locked=True)
        ).all()
        claims: dict[str, Claim] = {}
        for event_id, document_id, action, attempts in rows:
            if document_id not in claims and len(claims) < limit:
                claims[document_id] = Claim(event_id, document_id, action, attempts)
        if claims:
            session.execute(
                update(OutboxEvent)
                .where(OutboxEvent.id.in_([c.event_id for c in claims.values()]))
                .values(lease_owner=owner, lease_expires_at=now + timedelta(seconds=lease_seconds))
            )
    return list(claims.values())


def complete(db: Database, claim: Claim, *, owner: str) -> bool:
    """Mark the claimed event, and every older pending event of its document, as done.

    False when the lease was lost meanwhile (another worker owns the event now).
    """
    now = utcnow()
    with db.session() as session:
        owned = session.scalar(
            update(OutboxEvent)
            .where(OutboxEvent.id == claim.event_id, OutboxEvent.lease_owner == owner)
            .values(done_at=now, lease_owner=None, lease_expires_at=None, last_error=None)
            .returning(OutboxEvent.id)
        )
        if owned is None:
            return False
        # Earlier events of the same document are covered: processing reads the current state.
        session.execute(
            update(OutboxEvent)
            .where(
                OutboxEvent.document_id == claim.document_id,
                OutboxEvent.id < claim.event_id,
                OutboxEvent.done_at.is_(None),
                or_(OutboxEvent.lease_expires_at.is_(None), OutboxEvent.lease_expires_at < now),
            )
            .values(done_at=now)
        )
    return True


def renew(db: Database, claims: Sequence[Claim], *, owner: str, lease_seconds: float) -> set[int]:
    """Extend the leases ``owner`` still holds among ``claims``; the ids of those events.

    A lease that ran out is not renewed: another worker may already hold an event of the document.
    """
    if not claims:
        return set()
    now = utcnow()
    with db.session() as session:
        held = session.scalars(
            update(OutboxEvent)
            .where(
                OutboxEvent.id.in_([claim.event_id for claim in claims]),
                OutboxEvent.lease_owner == owner,
                OutboxEvent.done_at.is_(None),
                OutboxEvent.lease_expires_at >= now,
            )
            .values(lease_expires_at=now + timedelta(seconds=lease_seconds))
            .returning(OutboxEvent.id)
        ).all()
    return set(held)


def retry_later(db: Database, claim: Claim, *, owner: str, error: str) -> int:
    """Release the lease and make the event due again after an exponential backoff."""
    attempts = claim.attempts + 1
    delay = min(MAX_BACKOFF_SECONDS, 2**attempts)
    with db.session() as session:
        session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.id == claim.event_id, OutboxEvent.lease_owner == owner)
            .values(
                attempts=attempts,
                available_at=utcnow() + timedelta(seconds=delay),
                lease_owner=None,
                lease_expires_at=None,
                last_error=error[:500],
            )
        )
    return attempts


def retry_now(db: Database, *, error_prefix: str) -> int:
    """Make due at once the events waiting out a backoff after a failure whose message starts
    with ``error_prefix`` (the backend it named answers again); how many."""
    with db.session() as session:
        result = session.execute(
            update(OutboxEvent)
            .where(
                OutboxEvent.done_at.is_(None),
                OutboxEvent.lease_owner.is_(None),
                OutboxEvent.available_at > utcnow(),
                OutboxEvent.last_error.startswith(error_prefix, autoescape=True),
            )
            .values(available_at=utcnow())
        )
    return int(getattr(result, "rowcount", 0) or 0)


def pending_count(db: Database) -> int:
    """Events not yet done (due or waiting for a retry)."""
    with db.session() as session:
        count = session.scalar(
            select(func.count()).select_from(OutboxEvent).where(OutboxEvent.done_at.is_(None))
        )
    return count or 0


__all__ = ["Claim", "claim", "complete", "pending_count", "renew", "retry_later", "retry_now"]
