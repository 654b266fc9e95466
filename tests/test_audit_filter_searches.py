"""A document's log as the audit page filters it also holds the searches whose results listed the
document (their recorded ``document_ids``), on SQLite and PostgreSQL alike; without that choice
(the API's filter) only the events naming the document."""

from __future__ import annotations

import uuid
from dataclasses import replace

from services.audit import Actor, AuditAction, AuditFilter, AuditLog, Outcome
from services.db import Database

SEARCHER = Actor("poverty", org="扶贫办", role="reader")


def test_a_documents_log_with_searches(database_url: str) -> None:
    database = Database(database_url)
    database.migrate()
    try:
        log = AuditLog(database)
        wanted, other = str(uuid.uuid4()), str(uuid.uuid4())
        with database.transaction() as connection:
            for action, document_id, details in (
                (AuditAction.view, wanted, {}),
                (AuditAction.view, other, {}),
                (AuditAction.search, None, {"q": "台账", "document_ids": [other, wanted]}),
                (AuditAction.search, None, {"q": "总结", "document_ids": [other]}),
                # The number typed as the words, or listed by another action: not a search
                # that showed it.
                (AuditAction.search, None, {"q": wanted, "document_ids": []}),
                (AuditAction.list, None, {"document_ids": [wanted]}),
            ):
                log.append(
                    connection,
                    actor=SEARCHER,
                    action=action,
                    outcome=Outcome.allowed,
                    document_id=document_id,
                    details=details,
                )

        alone = AuditFilter(document_id=wanted)
        page = log.page(alone, page=1, size=50)
        assert [event.action for event in page.events] == ["view"]
        page = log.page(replace(alone, with_searches=True), page=1, size=50)
        assert page.total == 2
        assert [(event.action, event.details.get("q")) for event in page.events] == [
            ("search", "台账"),
            ("view", None),
        ]
        # A number with the characters LIKE reads as wildcards matches nothing it should not.
        page = log.page(AuditFilter(document_id="%", with_searches=True), page=1, size=50)
        assert page.total == 0
    finally:
        database.dispose()
