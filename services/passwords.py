"""Password hashing with argon2id, at the cost the settings choose.

The default cost is argon2-cffi's (RFC 9106 low-memory profile); tests may choose a cheaper one.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from services.config import Settings
from services.errors import InvalidField

MIN_PASSWORD_LENGTH = 8


class Passwords:
    """Hashes new passwords and checks offered ones against stored hashes."""

    def __init__(self, *, time_cost: int, memory_kib: int) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib)
        # Checked against when a username does not exist, so both cases take the same time.
        self._nobody = self._hasher.hash("no such user, no such password")

    @classmethod
    def from_settings(cls, settings: Settings) -> Passwords:
        return cls(time_cost=settings.password_time_cost, memory_kib=settings.password_memory_kib)

    def hash(self, password: str) -> str:
        """An argon2id hash of a password, after checking it is long enough to keep."""
        if len(password) < MIN_PASSWORD_LENGTH:
            raise InvalidField("password", f"密码至少 {MIN_PASSWORD_LENGTH} 个字符")
        return self._hasher.hash(password)

    def matches(self, stored_hash: str | None, password: str) -> bool:
        """Does the password fit the stored hash? (None: no such user; takes as long.)"""
        try:
            return self._hasher.verify(stored_hash or self._nobody, password) and bool(stored_hash)
        except (VerificationError, InvalidHashError):
            return False
