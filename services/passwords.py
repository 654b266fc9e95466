"""Passwords: the one policy every new password must meet, and hashing with argon2id.

The policy (at least 10 characters, more than one kind of character and a few different ones, not
a common password nor one with digits or symbols around it, not the username) applies wherever a
password is set: a new user (API, web, command line), an admin's reset and a user's own change.
The default hashing cost is argon2-cffi's (RFC 9106 low-memory profile); tests may choose a cheaper
one.
"""

from __future__ import annotations

import threading
import unicodedata
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from services.config import Settings
from services.errors import InvalidField
from services.names import canonical_username

MIN_PASSWORD_LENGTH = 10
MIN_DISTINCT_CHARACTERS = 5
POLICY_TEXT = (
    f"至少 {MIN_PASSWORD_LENGTH} 个字符，须混用字母、数字或符号中的两类以上，不能是常见密码"
)
COMMON_PASSWORDS_FILE = Path(__file__).with_name("common_passwords.txt")

# How people dress up a common password: shifted digits (1qaz@WSX), look-alike letters (p@ssw0rd).
_SHIFTED_DIGITS = str.maketrans("!@#$%^&*()", "1234567890")
_LOOK_ALIKE_LETTERS = str.maketrans("@4310!$57+", "aaeioisstt")
# No listed password is longer; a longer core is never looked up.
_LONGEST_CORE = 32


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list of the most common passwords (lower case)."""
    lines = COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line for line in lines if line and not line.startswith("#"))


def _kinds(password: str) -> set[str]:
    kinds = set()
    for ch in password:
        if ch.islower():
            kinds.add("lower")
        elif ch.isupper():
            kinds.add("upper")
        elif ch.isdigit():
            kinds.add("digit")
        elif ch.isalpha():
            kinds.add("other letter")  # Chinese characters and other scripts without case
        else:
            kinds.add("symbol")
    return kinds


def _cores(password: str) -> Iterator[str]:
    """The password as compared with the list: lower-cased, undressed, and without the digits and
    symbols put before or after a word (dragon2026!, Admin@123)."""
    base = unicodedata.normalize("NFKC", password).casefold()
    for form in dict.fromkeys(
        (base, base.translate(_SHIFTED_DIGITS), base.translate(_LOOK_ALIKE_LETTERS))
    ):
        yield form
        yield form.strip("".join(ch for ch in form if not ch.isalnum()))
        letters = [i for i, ch in enumerate(form) if ch.isalpha()]
        if not letters:
            continue
        start, end = letters[0], letters[-1] + 1
        for first in range(max(0, end - _LONGEST_CORE), start + 1):
            for last in range(end, min(len(form), first + _LONGEST_CORE) + 1):
                if first < last:
                    yield form[first:last]


def password_problem(password: str, *, username: str | None = None) -> str | None:
    """What is wrong with a password as a new one, in words; None when it may be used."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"密码至少 {MIN_PASSWORD_LENGTH} 个字符"
    if len(_kinds(password)) < 2:
        return "密码不能只由同一类字符组成（如全是小写字母或全是数字），请混用字母、数字或符号"
    if len(set(password)) < MIN_DISTINCT_CHARACTERS:
        return f"密码中不同的字符太少，至少要有 {MIN_DISTINCT_CHARACTERS} 个不同的字符"
    cores = set(_cores(password))
    if username and canonical_username(username) in cores:
        return "密码不能是用户名，也不能由用户名加数字或符号构成"
    if not cores.isdisjoint(common_passwords()):
        return "密码过于常见（在常见密码表中，或由常见密码加数字、符号构成），容易被猜中，请换一个"
    return None


def check_password(password: str, *, username: str | None = None, field: str = "password") -> None:
    """Refuse a new password that breaks the policy: 422 ``weak_password`` saying why."""
    problem = password_problem(password, username=username)
    if problem is not None:
        raise InvalidField(field, problem, code="weak_password")


class Passwords:
    """Hashes new passwords and checks offered ones against stored hashes."""

    def __init__(self, *, time_cost: int, memory_kib: int) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib)
        # Checked against when a username does not exist, so both cases take the same time. Made
        # by the first check of any password, not at start: a hash takes ``memory_kib`` (64 MiB by
        # default) and some CPU, which the worker and most commands, checking none, need not spend.
        self._nobody_hash: str | None = None
        self._nobody_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> Passwords:
        return cls(time_cost=settings.password_time_cost, memory_kib=settings.password_memory_kib)

    def hash(self, password: str, *, username: str | None = None, field: str = "password") -> str:
        """An argon2id hash of a new password, after checking it meets the policy."""
        check_password(password, username=username, field=field)
        return self._hasher.hash(password)

    def matches(self, stored_hash: str | None, password: str) -> bool:
        """Does the password fit the stored hash? (None: no such user; takes as long.)"""
        nobody = self._nobody()  # for every check, so the first takes as long either way
        try:
            return self._hasher.verify(stored_hash or nobody, password) and bool(stored_hash)
        except (VerificationError, InvalidHashError):
            return False

    def _nobody(self) -> str:
        if self._nobody_hash is None:
            with self._nobody_lock:
                if self._nobody_hash is None:
                    self._nobody_hash = self._hasher.hash("no such user, no such password")
        return self._nobody_hash
