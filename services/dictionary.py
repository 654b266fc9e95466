"""The county dictionary: the words segmentation keeps whole (organisation, catalog item and
category names, and the words admins add: villages, programmes), and keeping every process current.

A change of the word set queues, in its own transaction, the reindexing of the live documents that
mention a changed word. Each process reads the words at most every ``dictionary_check_seconds``
before it searches or indexes (the process that made the change at once) and segments with them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Text, cast, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services import access
from services.access import Principal
from services.audit import Actor, AuditAction, Outcome
from services.backends import Backends
from services.config import Settings
from services.documents import actor_of
from services.errors import Conflict, Forbidden, InvalidField, MaterialsError, NotFound
from services.models import (
    CatalogItem,
    Category,
    DictionaryWord,
    Document,
    DocumentText,
    IndexAction,
    Org,
    OrgKind,
    OutboxEvent,
    User,
    utcnow,
)
from services.search.segmentation import normalize

__all__ = [
    "MAX_WORDS_AT_ONCE",
    "MAX_WORD_LENGTH",
    "MIN_WORD_LENGTH",
    "AddedWords",
    "DictionaryEntry",
    "DictionaryListing",
    "InvalidWord",
    "add_words",
    "clean_word",
    "console_add_words",
    "console_remove_word",
    "county_words",
    "keep_current",
    "list_words",
    "listing",
    "queue_reindexing",
    "refresh",
    "remove_word",
]

MIN_WORD_LENGTH = 2
MAX_WORD_LENGTH = 20
MAX_WORDS_AT_ONCE = 500
# LIKE patterns below use this escape character: no word can contain it (words are letters and
# digits), and naming one keeps PostgreSQL from reading the backslashes of JSON text as escapes.
_LIKE_ESCAPE = "!"


class InvalidWord(InvalidField):
    """A word the dictionary cannot keep; ``details`` name the word as it was typed."""

    code = "invalid_word"

    def __init__(self, word: str, message: str, *, code: str) -> None:
        super().__init__("words", message, code=code)
        self.details = {"field": "words", "word": word[: MAX_WORD_LENGTH * 2]}


def clean_word(word: str) -> str:
    """A word as the dictionary keeps it (normalised as text is segmented), or ``InvalidWord``."""
    normalized = normalize(word).strip()
    shown = word.strip()[: MAX_WORD_LENGTH + 5]
    if any(char.isspace() for char in normalized):
        raise InvalidWord(word, f"“{shown}”中间有空格：每个词单独填写", code="word_has_space")
    if not MIN_WORD_LENGTH <= len(normalized) <= MAX_WORD_LENGTH:
        raise InvalidWord(
            word,
            f"“{shown}”的长度不对：词语须为 {MIN_WORD_LENGTH} 到 {MAX_WORD_LENGTH} 个字",
            code="word_length",
        )
    # Segmentation splits text at punctuation: a word holding any could never be found whole.
    if not all(char.isalnum() for char in normalized):
        raise InvalidWord(
            word, f"“{shown}”含有标点或符号：词语只能由汉字、字母和数字组成", code="word_characters"
        )
    if not any(char.isalpha() for char in normalized):
        raise InvalidWord(
            word, f"“{shown}”不能作为词：须含有汉字或字母", code="word_without_letter"
        )
    return normalized


def _as_word(name: str) -> str | None:
    """A name (of an organisation, a catalog item, a category) as a word, when it can be one."""
    try:
        return clean_word(name)
    except InvalidWord:
        return None


def _words_of(names: Iterable[str]) -> list[str]:
    return sorted({word for name in names if (word := _as_word(name)) is not None})


def county_words(session: Session) -> tuple[str, ...]:
    """Every word the county adds to segmentation: organisation, catalog item and category names
    and the dictionary's own words, normalised, each once, sorted (the same set, the same order)."""
    names = [
        *session.scalars(select(Org.name)),
        *session.scalars(select(CatalogItem.name)),
        *session.scalars(select(Category.name)),
        *session.scalars(select(DictionaryWord.word)),
    ]
    return tuple(_words_of(names))


# -- keeping every process current -------------------------------------------------------------


def keep_current(backends: Backends) -> None:
    """Segment with the county's current words: read them if ``dictionary_check_seconds`` passed
    since this process last did (a search or an indexing batch calls this first)."""
    check = backends.words_check
    now = time.monotonic()
    with check.lock:
        if now < check.due_at:
            return
        # Set before reading: the other threads go on with the words they have meanwhile.
        check.due_at = now + backends.settings.dictionary_check_seconds
    refresh(backends)


def refresh(backends: Backends) -> None:
    """Read the county's words now and segment with them from now on (after a change)."""
    with backends.db.session() as session:
        words = county_words(session)
        townships = tuple(
            sorted(session.scalars(select(Org.name).where(Org.kind == OrgKind.township.value)))
        )
    backends.analyzer.use_words(words)
    with backends.words_check.lock:
        backends.words_check.townships = townships
        backends.words_check.due_at = time.monotonic() + backends.settings.dictionary_check_seconds


# -- background reindexing ---------------------------------------------------------------------


def _mentions(words: Collection[str]) -> ColumnElement[bool]:
    """Documents whose title, description, file name, tags or stored text hold one of the words."""
    tags = cast(Document.tags, Text)
    clauses: list[ColumnElement[bool]] = []
    for word in words:
        pattern = f"%{word}%"
        # Tags are JSON text, where a database may keep non-ASCII characters as \\uXXXX escapes.
        escaped = f"%{json.dumps(word)[1:-1]}%"
        clauses += [
            Document.title.ilike(pattern, escape=_LIKE_ESCAPE),
            Document.description.ilike(pattern, escape=_LIKE_ESCAPE),
            Document.filename.ilike(pattern, escape=_LIKE_ESCAPE),
            tags.ilike(pattern, escape=_LIKE_ESCAPE),
        ]
        if escaped != pattern:
            clauses.append(tags.ilike(escaped, escape=_LIKE_ESCAPE))
    bodies = select(DocumentText.document_id).where(
        or_(*(DocumentText.body.ilike(f"%{word}%", escape=_LIKE_ESCAPE) for word in words))
    )
    return or_(*clauses, Document.id.in_(bodies))


def queue_reindexing(session: Session, *, settings: Settings, before: Collection[str]) -> int:
    """After a change in this transaction, queue the reindexing of the live documents that mention
    a word that came or went since ``before`` (``county_words`` then); how many were queued.

    Called by every change of the word set: dictionary words added or removed, an organisation
    created, a catalog item created or renamed, a category added. The events wait twice the check
    interval, so every process has read the new words before a worker takes them.
    """
    changed = set(before) ^ set(county_words(session))
    if not changed:
        return 0
    document_ids = list(
        session.scalars(
            select(Document.id)
            .where(Document.withdrawn_at.is_(None), _mentions(sorted(changed)))
            .order_by(Document.created_at, Document.id)
        )
    )
    if document_ids:
        now = utcnow()
        available = now + timedelta(seconds=2 * settings.dictionary_check_seconds)
        # A new index version for each: the index takes the new segmentation over the old one.
        session.execute(
            update(Document)
            .where(Document.id.in_(document_ids))
            .values(index_version=Document.index_version + 1)
        )
        session.execute(
            insert(OutboxEvent),
            [
                {
                    "document_id": document_id,
                    "action": IndexAction.upsert.value,
                    "created_at": now,
                    "available_at": available,
                    "attempts": 0,
                }
                for document_id in document_ids
            ],
        )
    return len(document_ids)


# -- the admins' words ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AddedWords:
    added: list[str]  # new in the dictionary
    already_present: list[str]  # in it before
    reindex_queued: int  # documents queued for reindexing


@dataclass(frozen=True)
class DictionaryEntry:
    word: str
    added_by: str | None  # the username; None when added on the server console
    added_at: datetime


@dataclass(frozen=True)
class DictionaryListing:
    """The dictionary's own words, and the names that count as words without being added."""

    entries: list[DictionaryEntry]
    orgs: list[str]
    catalog_items: list[str]
    categories: list[str]

    @property
    def total(self) -> int:
        """How many words segmentation adds (each once)."""
        return len(
            {entry.word for entry in self.entries}
            | set(self.orgs)
            | set(self.catalog_items)
            | set(self.categories)
        )


def _refuse(
    backends: Backends, *, principal: Principal, action: AuditAction, reason: str, ip: str | None
) -> None:
    backends.audit.record(
        actor=actor_of(principal, ip),
        action=action,
        outcome=Outcome.denied,
        details={"reason": reason},
    )


def _require_admin(
    backends: Backends, *, principal: Principal, action: AuditAction, ip: str | None
) -> None:
    if not access.can_change_dictionary(principal):
        _refuse(backends, principal=principal, action=action, reason="not_admin", ip=ip)
        raise Forbidden("只有系统管理员可以修改词库", code="admin_only")


def _cleaned(words: Sequence[str]) -> list[str]:
    """Every word cleaned, each once, in the order given; the first bad one refuses them all."""
    if not words:
        raise InvalidField("words", "请至少填写一个词", code="no_words")
    if len(words) > MAX_WORDS_AT_ONCE:
        raise InvalidField("words", f"一次最多添加 {MAX_WORDS_AT_ONCE} 个词", code="too_many")
    return list(dict.fromkeys(clean_word(word) for word in words))


def add_words(
    backends: Backends, *, principal: Principal, words: Sequence[str], ip: str | None
) -> AddedWords:
    """An admin adds words to the dictionary: all of them, or none when one is not a word."""
    _require_admin(backends, principal=principal, action=AuditAction.dictionary_add, ip=ip)
    return _add(backends, actor=actor_of(principal, ip), added_by_id=principal.user_id, words=words)


def console_add_words(backends: Backends, *, actor: Actor, words: Sequence[str]) -> AddedWords:
    """Add words on the server console (``materials dictionary add``)."""
    return _add(backends, actor=actor, added_by_id=None, words=words)


def _add(
    backends: Backends, *, actor: Actor, added_by_id: int | None, words: Sequence[str]
) -> AddedWords:
    cleaned = _cleaned(words)
    try:
        with backends.db.session() as session:
            before = county_words(session)
            present = set(
                session.scalars(select(DictionaryWord.word).where(DictionaryWord.word.in_(cleaned)))
            )
            added = [word for word in cleaned if word not in present]
            now = utcnow()  # one moment for the batch: listed by word within it
            session.add_all(
                DictionaryWord(word=word, added_by_id=added_by_id, added_at=now) for word in added
            )
            session.flush()
            queued = queue_reindexing(session, settings=backends.settings, before=before)
            already = [word for word in cleaned if word in present]
            backends.audit.append(
                session,
                actor=actor,
                action=AuditAction.dictionary_add,
                outcome=Outcome.allowed,
                details={"words": added, "already_present": already, "reindex_queued": queued},
            )
    except IntegrityError as exc:  # another admin added one of them at the same moment
        raise Conflict("词库刚被他人修改，请重试", code="dictionary_changed") from exc
    refresh(backends)
    return AddedWords(added=added, already_present=already, reindex_queued=queued)


def remove_word(backends: Backends, *, principal: Principal, word: str, ip: str | None) -> int:
    """An admin removes a word; how many documents were queued for reindexing."""
    action = AuditAction.dictionary_remove
    _require_admin(backends, principal=principal, action=action, ip=ip)
    try:
        return _remove(backends, actor=actor_of(principal, ip), word=word)
    except MaterialsError as exc:
        backends.audit.record(
            actor=actor_of(principal, ip),
            action=action,
            outcome=Outcome.denied,
            details={"reason": exc.error_code, "word": word[: MAX_WORD_LENGTH * 2]},
        )
        raise


def console_remove_word(backends: Backends, *, actor: Actor, word: str) -> int:
    """Remove a word on the server console (``materials dictionary remove``)."""
    return _remove(backends, actor=actor, word=word)


def _remove(backends: Backends, *, actor: Actor, word: str) -> int:
    normalized = normalize(word).strip()
    with backends.db.session() as session:
        row = session.get(DictionaryWord, normalized) if normalized else None
        if row is None:
            raise NotFound(_not_found_message(session, word.strip()), code="word_not_found")
        before = county_words(session)
        session.delete(row)
        session.flush()
        queued = queue_reindexing(session, settings=backends.settings, before=before)
        backends.audit.append(
            session,
            actor=actor,
            action=AuditAction.dictionary_remove,
            outcome=Outcome.allowed,
            details={"word": normalized, "reindex_queued": queued},
        )
    refresh(backends)
    return queued


def _not_found_message(session: Session, word: str) -> str:
    shown = word[: MAX_WORD_LENGTH + 5]
    if _as_word(word) in county_words(session):
        return f"“{shown}”是单位、目录材料或类别的名称，自动计入词库，不能在此删除"
    return f"词库中没有“{shown}”"


def list_words(backends: Backends, *, principal: Principal, ip: str | None) -> DictionaryListing:
    """The dictionary for admins and coordinators (anyone else is refused, and audited)."""
    if not access.can_read_dictionary(principal):
        _refuse(
            backends,
            principal=principal,
            action=AuditAction.dictionary_read,
            reason="dictionary_not_allowed",
            ip=ip,
        )
        raise Forbidden("只有系统管理员和减负办工作人员可以查看词库", code="dictionary_not_allowed")
    return listing(backends)


def listing(backends: Backends) -> DictionaryListing:
    """The dictionary's words (newest first) with who added them, and the names counted as words."""
    with backends.db.session() as session:
        rows = session.execute(
            select(DictionaryWord, User.username)
            .outerjoin(User, User.id == DictionaryWord.added_by_id)
            .order_by(DictionaryWord.added_at.desc(), DictionaryWord.word)
        ).all()
        return DictionaryListing(
            entries=[
                DictionaryEntry(word=row.word, added_by=username, added_at=row.added_at)
                for row, username in rows
            ],
            orgs=_words_of(session.scalars(select(Org.name))),
            catalog_items=_words_of(session.scalars(select(CatalogItem.name))),
            categories=_words_of(session.scalars(select(Category.name))),
        )
