"""Login protection: failed logins counted per account from one address, per account and per
address. An account's attempts are counted in rows locked before the password is checked, so
concurrent guesses at one account cannot slip past its limits. An address's are counted once the
password proved wrong: counted before, correct logins in flight at once from one address (an office
behind one NAT address at the start of the day) held that address back; a spray across accounts
can pass the address limit by at most the attempts in flight when it is reached.

Whoever reaches a limit waits a short delay that doubles with each further failure, up to a cap;
an account under attack still admits its owner from an address without a recent failure on it.
"""

from __future__ import annotations

import hashlib
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, case, delete, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from services.config import Settings
from services.db import Database
from services.models import LoginAttempt, utcnow

PAIR, ACCOUNT, ADDRESS = "pair", "account", "address"
# The delay doubles at most this many times (the cap is reached long before).
_MAX_DOUBLINGS = 30


@dataclass(frozen=True)
class Admitted:
    """An attempt, counted as failed against its account until its password proves otherwise
    (``succeeded``); against its address only once it did not (``failed``)."""

    account: str
    address: str

    @property
    def pair(self) -> str:
        return f"{self.account} {self.address}"


@dataclass(frozen=True)
class Refused:
    """An attempt refused unchecked: ``locked`` (this account) or ``address_locked``."""

    reason: str
    retry_after: float  # seconds


def account_key(*, user_id: int | None, username: str) -> str:
    """The account an attempt is counted against: the user, or a digest of the name as typed
    (a name that is no user, maybe a password typed in the wrong box, is not stored)."""
    if user_id is not None:
        return f"user:{user_id}"
    folded = unicodedata.normalize("NFKC", username).casefold()
    return "name:" + hashlib.sha256(folded.encode()).hexdigest()[:32]


class LoginGuard:
    """Admits or refuses login attempts; the counts live in ``login_attempts`` rows."""

    def __init__(
        self, *, settings: Settings, db: Database, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self._db = db
        self._clock = clock
        self._window = timedelta(seconds=settings.login_window_seconds)
        self._base_delay = settings.login_delay_seconds
        self._max_delay = settings.login_max_delay_seconds
        self._limits = {
            PAIR: settings.login_max_failures,
            ACCOUNT: settings.login_account_max_failures,
            ADDRESS: settings.login_address_max_failures,
        }
        self._next_cleanup = 0.0  # time.monotonic()
        self._cleanup_lock = threading.Lock()

    def admit(self, *, account: str, address: str | None) -> Admitted | Refused:
        """Count an attempt before its password is checked, or refuse it while its address is
        held back on this account (or, having failed on it recently, while the account is), or
        while the address is held back for failures across accounts."""
        self._forget_quiet_rows()
        attempt = Admitted(account=account, address=address or "unknown")
        with self._db.session() as session:
            rows = self._locked_rows(session, attempt, self._clock())
            now = self._clock()  # after waiting for the locks: delays count from here
            for row in rows.values():
                if row.last_at < now - self._window and not _held(row, now):
                    row.failures, row.locked_until = 0, None  # that burst is over
            pair, held_address = rows[PAIR], _held(rows[ADDRESS], now)
            if held_address:
                return Refused("address_locked", held_address)
            held = _held(pair, now) or (pair.failures > 0 and _held(rows[ACCOUNT], now))
            if held:
                return Refused("locked", held)
            for scope in (PAIR, ACCOUNT):
                self._count(rows[scope], scope, now)
        return attempt

    def failed(self, attempt: Admitted) -> None:
        """The password was wrong (or the account may not sign in): count it against the
        address as well."""
        with self._db.session() as session:
            row = self._locked_rows(session, attempt, self._clock(), scopes=(ADDRESS,))[ADDRESS]
            now = self._clock()
            if row.last_at < now - self._window and not _held(row, now):
                row.failures, row.locked_until = 0, None  # that burst is over
            self._count(row, ADDRESS, now)

    def _count(self, row: LoginAttempt, scope: str, now: datetime) -> None:
        """One more failure on the row; held back from its limit on, longer each time."""
        row.failures += 1
        row.last_at = now
        excess = row.failures - self._limits[scope]
        if excess >= 0:
            row.locked_until = now + timedelta(seconds=self._delay(excess))

    def succeeded(self, attempt: Admitted) -> None:
        """The password was right: forget the failures of this account from this address, and
        take back the attempt from the account's count."""
        with self._db.session() as session:
            session.execute(
                delete(LoginAttempt).where(
                    LoginAttempt.scope == PAIR, LoginAttempt.key == attempt.pair
                )
            )
            # One statement, so a concurrent attempt's count is never lost.
            session.execute(
                update(LoginAttempt)
                .where(LoginAttempt.scope == ACCOUNT, LoginAttempt.key == attempt.account)
                .values(
                    failures=case((LoginAttempt.failures > 0, LoginAttempt.failures - 1), else_=0),
                    locked_until=case(
                        (LoginAttempt.failures - 1 < self._limits[ACCOUNT], None),
                        else_=LoginAttempt.locked_until,
                    ),
                )
            )

    def _delay(self, excess: int) -> float:
        return float(min(self._max_delay, self._base_delay * 2 ** min(excess, _MAX_DOUBLINGS)))

    def _locked_rows(
        self,
        session: Session,
        attempt: Admitted,
        now: datetime,
        *,
        scopes: tuple[str, ...] = (PAIR, ACCOUNT, ADDRESS),
    ) -> dict[str, LoginAttempt]:
        """This attempt's rows of these scopes, created when missing, locked until the
        transaction ends (PostgreSQL: row locks; SQLite: every transaction already holds the
        write lock)."""
        key_of = {PAIR: attempt.pair, ACCOUNT: attempt.account, ADDRESS: attempt.address}
        keys = sorted((scope, key_of[scope]) for scope in scopes)
        insert = (
            postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        )
        session.execute(
            insert(LoginAttempt)
            .values([{"scope": s, "key": k, "failures": 0, "last_at": now} for s, k in keys])
            .on_conflict_do_nothing()
        )
        # Always locked in the same order, so two attempts never wait for each other.
        found = session.scalars(
            select(LoginAttempt)
            .where(or_(*(and_(LoginAttempt.scope == s, LoginAttempt.key == k) for s, k in keys)))
            .order_by(LoginAttempt.scope, LoginAttempt.key)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return {row.scope: row for row in found}

    def _forget_quiet_rows(self) -> None:
        """Now and then, delete the rows of accounts and addresses quiet for a whole window."""
        with self._cleanup_lock:
            if time.monotonic() < self._next_cleanup:
                return
            self._next_cleanup = time.monotonic() + self._window.total_seconds()
        now = self._clock()
        with self._db.session() as session:
            quiet = select(LoginAttempt.scope, LoginAttempt.key).where(
                LoginAttempt.last_at < now - self._window,
                or_(LoginAttempt.locked_until.is_(None), LoginAttempt.locked_until < now),
            )
            # Rows an attempt holds are skipped, never waited for.
            quiet = quiet.limit(1000).with_for_update(skip_locked=True)
            session.execute(
                delete(LoginAttempt).where(tuple_(LoginAttempt.scope, LoginAttempt.key).in_(quiet))
            )


def _held(row: LoginAttempt, now: datetime) -> float:
    """Seconds until the row's lock ends; 0 when it is not locked."""
    if row.locked_until is None or row.locked_until <= now:
        return 0.0
    return (row.locked_until - now).total_seconds()
