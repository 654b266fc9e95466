"""The authorization matrix: every endpoint × every role × own and other organisation.

Each cell is one user calling one endpoint (on one document); every refusal must be in the audit
log, and a hidden document must answer exactly like one that does not exist. Every route of the
app is in ROUTES, naming the table cell (here or in the "Ask once" table) that decides it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from services import dictionary, notifications, orgs
from services.audit import Actor, AuditAction
from services.backends import Backends, open_backends
from services.config import Settings
from services.models import AuditEvent, NotificationKind, Role
from tests.api import test_ask_once_permissions as ask_once
from tests.api.ask_once_helpers import create_item, draft
from tests.conftest import (
    COUNTY,
    EAST,
    PASSWORD,
    POVERTY,
    STATS,
    USERS,
    Api,
    make_settings,
    seed_county,
    stack_settings,
)
from tests.samples import text_bytes

# The sample county's documents: name → (uploading user, sharing fields, withdrawn afterwards).
DOCUMENTS: dict[str, tuple[str, dict[str, str], bool]] = {
    "east_departments": ("east", {"visibility": "departments"}, False),
    "east_restricted": ("east", {"visibility": "restricted", "departments": POVERTY}, False),
    "east_private": ("east", {"visibility": "private"}, False),
    "west_departments": ("west", {"visibility": "departments"}, False),
    "east_withdrawn": ("east", {"visibility": "departments"}, True),
}

# east/east2 upload for 东镇, west for 西乡; poverty reads for 扶贫办, stats for 统计局.
# lookup is by the document's sha256 and only ever finds the caller's own township's live document.
# fmt: off
DOCUMENT_MATRIX: list[tuple[str, str, int, int, int, int, int, int]] = [
    # user      document            view  download  receipt  lookup  withdraw  usage
    ("east",    "east_departments", 200,  200,      200,     200,    200,      200),
    ("east",    "east_restricted",  200,  200,      200,     200,    200,      200),
    ("east",    "east_private",     200,  200,      200,     200,    200,      200),
    ("east",    "west_departments", 404,  404,      404,     404,    404,      404),
    ("east",    "east_withdrawn",   200,  200,      200,     404,    409,      200),
    ("east2",   "east_departments", 200,  200,      200,     200,    200,      200),
    ("east2",   "east_restricted",  200,  200,      200,     200,    200,      200),
    ("east2",   "east_private",     200,  200,      200,     200,    200,      200),
    ("east2",   "west_departments", 404,  404,      404,     404,    404,      404),
    ("east2",   "east_withdrawn",   200,  200,      200,     404,    409,      200),
    ("west",    "east_departments", 404,  404,      404,     404,    404,      404),
    ("west",    "east_restricted",  404,  404,      404,     404,    404,      404),
    ("west",    "east_private",     404,  404,      404,     404,    404,      404),
    ("west",    "west_departments", 200,  200,      200,     200,    200,      200),
    ("west",    "east_withdrawn",   404,  404,      404,     404,    404,      404),
    ("poverty", "east_departments", 200,  200,      200,     404,    403,      404),
    ("poverty", "east_restricted",  200,  200,      200,     404,    403,      404),
    ("poverty", "east_private",     404,  404,      404,     404,    404,      404),
    ("poverty", "west_departments", 200,  200,      200,     404,    403,      404),
    ("poverty", "east_withdrawn",   404,  404,      404,     404,    404,      404),
    ("stats",   "east_departments", 200,  200,      200,     404,    403,      404),
    ("stats",   "east_restricted",  404,  404,      404,     404,    404,      404),
    ("stats",   "east_private",     404,  404,      404,     404,    404,      404),
    ("stats",   "west_departments", 200,  200,      200,     404,    403,      404),
    ("stats",   "east_withdrawn",   404,  404,      404,     404,    404,      404),
    ("auditor", "east_departments", 200,  403,      200,     404,    403,      200),
    ("auditor", "east_restricted",  200,  403,      200,     404,    403,      200),
    ("auditor", "east_private",     200,  403,      200,     404,    403,      200),
    ("auditor", "west_departments", 200,  403,      200,     404,    403,      200),
    ("auditor", "east_withdrawn",   200,  403,      200,     404,    403,      200),
    ("admin",   "east_departments", 404,  404,      404,     404,    200,      404),
    ("admin",   "east_restricted",  404,  404,      404,     404,    200,      404),
    ("admin",   "east_private",     404,  404,      404,     404,    200,      404),
    ("admin",   "west_departments", 404,  404,      404,     404,    200,      404),
    ("admin",   "east_withdrawn",   404,  404,      404,     404,    404,      404),
]
DOCUMENT_ENDPOINTS = ("view", "download", "receipt", "lookup", "withdraw", "usage")

SYSTEM_MATRIX: list[tuple[str, int, int, int, int, int, int, int, int, int, int]] = [
    #            POST       GET /audit/...         POST ...                 GET
    # user       documents  events export verify   orgs users categ grants   users me
    ("east",     201,       403,   403,   403,     403, 403,  403,  403,     403,  200),
    ("east2",    201,       403,   403,   403,     403, 403,  403,  403,     403,  200),
    ("west",     201,       403,   403,   403,     403, 403,  403,  403,     403,  200),
    ("poverty",  403,       403,   403,   403,     403, 403,  403,  403,     403,  200),
    ("stats",    403,       403,   403,   403,     403, 403,  403,  403,     403,  200),
    ("auditor",  403,       200,   200,   200,     403, 403,  403,  403,     403,  200),
    ("admin",    403,       403,   403,   403,     201, 201,  201,  201,     200,  200),
]
# Accounts, acted on a spare user: POST /users/{username}/disable, /enable, /password, and
# PATCH /users/{username} (its display name).
ACCOUNT_MATRIX: list[tuple[str, int, int, int, int]] = [
    # user       disable  enable  password  rename
    ("east",     403,     403,    403,      403),
    ("east2",    403,     403,    403,      403),
    ("west",     403,     403,    403,      403),
    ("poverty",  403,     403,    403,      403),
    ("stats",    403,     403,    403,      403),
    ("auditor",  403,     403,    403,      403),
    ("admin",    200,     200,    204,      200),
]
# One's own account: POST /auth/logout (a fresh token of the user), POST /me/password (on a user
# of the same role and organisation made for the cell: a change ends every token of its user).
SELF_MATRIX: list[tuple[str, int, int]] = [
    # user       logout  own password
    ("east",     204,    204),
    ("east2",    204,    204),
    ("west",     204,    204),
    ("poverty",  204,    204),
    ("stats",    204,    204),
    ("auditor",  204,    204),
    ("coord",    204,    204),
    ("admin",    204,    204),
]
# The county dictionary: GET /dictionary, POST /dictionary, DELETE /dictionary/{word}.
DICTIONARY_MATRIX: list[tuple[str, int, int, int]] = [
    # user       read  add  remove
    ("east",     403,  403, 403),
    ("east2",    403,  403, 403),
    ("west",     403,  403, 403),
    ("poverty",  403,  403, 403),
    ("stats",    403,  403, 403),
    ("auditor",  403,  403, 403),
    ("coord",    200,  403, 403),
    ("admin",    200,  201, 204),
]
# The two-person rule: GET /users/pending; POST /users/{username}/confirm on an account waiting
# for the caller's kind of confirmation (an auditor account for auditors, an admin account for
# admins, an auditor account for the rest), asked for by another admin; GET /grants; POST
# /grants/{id}/confirm on a grant admin2 made.
CONFIRMATION_MATRIX: list[tuple[str, int, int, int, int]] = [
    # user       pending   confirm  read    confirm
    #            accounts  account  grants  grant
    ("east",     403,      403,     403,    403),
    ("east2",    403,      403,     403,    403),
    ("west",     403,      403,     403,    403),
    ("poverty",  403,      403,     403,    403),
    ("stats",    403,      403,     403,    403),
    ("auditor",  200,      200,     200,    403),
    ("coord",    403,      403,     403,    403),
    ("admin",    200,      200,     200,    200),
]
# What everyone signed in reads: GET /orgs, /categories, /search, /catalog/{id}, /figures,
# /figures.csv; and POST /notifications/read (all of one's own notifications).
SIGNED_IN_MATRIX: list[tuple[str, int, int, int, int, int, int, int]] = [
    # user       orgs  categ  search  catalog  figures  figures  read all
    #                                 item              .csv     notifications
    ("east",     200,  200,   200,    200,     200,     200,     204),
    ("east2",    200,  200,   200,    200,     200,     200,     204),
    ("west",     200,  200,   200,    200,     200,     200,     204),
    ("poverty",  200,  200,   200,    200,     200,     200,     204),
    ("stats",    200,  200,   200,    200,     200,     200,     204),
    ("auditor",  200,  200,   200,    200,     200,     200,     204),
    ("coord",    200,  200,   200,    200,     200,     200,     204),
    ("admin",    200,  200,   200,    200,     200,     200,     204),
]
# What is one person's or one department's alone: DELETE /requests/{id} on a draft of poverty's,
# POST /notifications/{id}/read on a notification of east's. Anyone else's answer is "not found".
OWN_MATRIX: list[tuple[str, int, int]] = [
    # user       discard  mark one
    #            draft    notification read
    ("east",     404,     204),
    ("east2",    404,     404),
    ("west",     404,     404),
    ("poverty",  204,     404),
    ("stats",    404,     404),
    ("auditor",  404,     404),
    ("coord",    404,     404),
    ("admin",    404,     404),
]
# fmt: on
DICTIONARY_ENDPOINTS = ("read_dictionary", "add_words", "remove_word")
CONFIRMATION_ENDPOINTS = ("pending_accounts", "confirm_user", "list_grants", "confirm_grant")
SIGNED_IN_ENDPOINTS = (
    "list_orgs",
    "list_categories",
    "search",
    "catalog_item",
    "figures",
    "figures_csv",
    "mark_all_read",
)
OWN_ENDPOINTS = ("discard_draft", "mark_read")
SYSTEM_ENDPOINTS = (
    "upload",
    "audit_events",
    "audit_export",
    "audit_verify",
    "create_org",
    "create_user",
    "create_category",
    "create_grant",
    "list_users",
    "me",
)
# endpoint → the last part of its path
ACCOUNT_PATHS = {"disable_user": "disable", "enable_user": "enable", "reset_password": "password"}
ACCOUNT_ENDPOINTS = (*ACCOUNT_PATHS, "rename_user")
SELF_ENDPOINTS = ("logout", "change_password")

# Every route of the app → the cell that decides who may call it: an endpoint of the tables above
# (LISTING for "list_documents"), or of the "Ask once" table; a page of the web interface is named
# by the endpoint whose service function decides it. PUBLIC routes need no caller.
PUBLIC = "public"
# No user may call it: a bearer token of its own, for the scraper (tests/test_metrics.py).
METRICS_TOKEN = "metrics token"
ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/metrics"): METRICS_TOKEN,
    ("GET", "/api/openapi.json"): PUBLIC,
    ("GET", "/api/docs"): PUBLIC,
    ("*", "/api/docs/assets"): PUBLIC,
    ("*", "/static"): PUBLIC,
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("POST", "/api/v1/auth/token"): PUBLIC,
    ("POST", "/api/v1/auth/logout"): "logout",
    ("GET", "/api/v1/me"): "me",
    ("POST", "/api/v1/me/password"): "change_password",
    ("POST", "/api/v1/documents"): "upload",
    ("GET", "/api/v1/documents"): "list_documents",
    ("GET", "/api/v1/documents/lookup"): "lookup",
    ("GET", "/api/v1/documents/{document_id}"): "view",
    ("GET", "/api/v1/documents/{document_id}/download"): "download",
    ("GET", "/api/v1/documents/{document_id}/receipt"): "receipt",
    ("GET", "/api/v1/documents/{document_id}/usage"): "usage",
    ("DELETE", "/api/v1/documents/{document_id}"): "withdraw",
    ("GET", "/api/v1/search"): "search",
    ("GET", "/api/v1/audit/events"): "audit_events",
    ("GET", "/api/v1/audit/export.csv"): "audit_export",
    ("GET", "/api/v1/audit/verify"): "audit_verify",
    # Proofs are read like events (auditors only); the checkpoint and key by anyone signed in.
    ("GET", "/api/v1/audit/proof/inclusion"): "audit_events",
    ("GET", "/api/v1/audit/proof/consistency"): "audit_events",
    ("GET", "/api/v1/audit/checkpoint"): "me",
    ("GET", "/api/v1/audit/public-key"): "me",
    ("GET", "/api/v1/orgs"): "list_orgs",
    ("POST", "/api/v1/orgs"): "create_org",
    ("GET", "/api/v1/users"): "list_users",
    ("POST", "/api/v1/users"): "create_user",
    ("GET", "/api/v1/users/pending"): "pending_accounts",
    ("POST", "/api/v1/users/{username}/confirm"): "confirm_user",
    ("POST", "/api/v1/users/{username}/disable"): "disable_user",
    ("POST", "/api/v1/users/{username}/enable"): "enable_user",
    ("POST", "/api/v1/users/{username}/password"): "reset_password",
    ("PATCH", "/api/v1/users/{username}"): "rename_user",
    ("GET", "/api/v1/categories"): "list_categories",
    ("POST", "/api/v1/categories"): "create_category",
    ("GET", "/api/v1/grants"): "list_grants",
    ("POST", "/api/v1/grants"): "create_grant",
    ("POST", "/api/v1/grants/{grant_id}/confirm"): "confirm_grant",
    ("GET", "/api/v1/dictionary"): "read_dictionary",
    ("POST", "/api/v1/dictionary"): "add_words",
    ("DELETE", "/api/v1/dictionary/{word}"): "remove_word",
    ("GET", "/api/v1/catalog"): "list_catalog",
    ("POST", "/api/v1/catalog"): "create_item",
    ("GET", "/api/v1/catalog/{item_id}"): "catalog_item",
    ("PATCH", "/api/v1/catalog/{item_id}"): "update_item",
    ("GET", "/api/v1/catalog/{item_id}/coverage"): "coverage",
    ("POST", "/api/v1/requests"): "create_request",
    ("GET", "/api/v1/requests"): "outbox",
    ("GET", "/api/v1/requests/{request_id}"): "get",
    ("DELETE", "/api/v1/requests/{request_id}"): "discard_draft",
    ("POST", "/api/v1/requests/{request_id}/accept"): "accept",
    ("POST", "/api/v1/requests/{request_id}/join"): "join",
    ("POST", "/api/v1/requests/{request_id}/send"): "send",
    ("POST", "/api/v1/requests/{request_id}/approve"): "approve",
    ("POST", "/api/v1/requests/{request_id}/refuse"): "refuse",
    ("POST", "/api/v1/requests/{request_id}/answer"): "answer",
    ("GET", "/api/v1/notifications"): "notifications",
    ("POST", "/api/v1/notifications/read"): "mark_all_read",
    ("POST", "/api/v1/notifications/{notification_id}/read"): "mark_read",
    ("GET", "/api/v1/figures"): "figures",
    ("GET", "/api/v1/figures.csv"): "figures_csv",
    # The web interface.
    ("GET", "/"): PUBLIC,
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("POST", "/logout"): "logout",
    ("GET", "/account/password"): "change_password",
    ("POST", "/account/password"): "change_password",
    ("GET", "/planned/{feature}"): "me",
    ("GET", "/upload"): "upload",
    ("GET", "/upload/lookup"): "lookup",
    ("GET", "/materials"): "list_documents",
    ("GET", "/search"): "search",
    ("GET", "/documents/{document_id}"): "view",
    ("GET", "/documents/{document_id}/receipt"): "receipt",
    ("GET", "/documents/{document_id}/receipt.json"): "receipt",
    ("GET", "/documents/{document_id}/preview"): "download",
    ("GET", "/documents/{document_id}/download"): "download",
    ("POST", "/documents/{document_id}/withdraw"): "withdraw",
    ("GET", "/audit"): "audit_events",
    ("GET", "/audit/verify"): "audit_verify",
    ("GET", "/audit/export.csv"): "audit_export",
    ("GET", "/audit/public-key.txt"): "me",
    ("GET", "/admin/users"): "list_users",
    ("POST", "/admin/users"): "create_user",
    ("POST", "/admin/users/confirm"): "confirm_user",
    ("POST", "/admin/users/disable"): "disable_user",
    ("POST", "/admin/users/enable"): "enable_user",
    ("POST", "/admin/users/password"): "reset_password",
    ("POST", "/admin/users/name"): "rename_user",
    ("GET", "/admin/orgs"): "list_users",
    ("POST", "/admin/orgs"): "create_org",
    ("GET", "/admin/categories"): "create_category",
    ("POST", "/admin/categories"): "create_category",
    ("GET", "/admin/dictionary"): "read_dictionary",
    ("POST", "/admin/dictionary"): "add_words",
    ("POST", "/admin/dictionary/remove"): "remove_word",
    ("GET", "/admin/grants"): "list_grants",
    ("POST", "/admin/grants"): "create_grant",
    ("POST", "/admin/grants/confirm"): "confirm_grant",
    ("GET", "/confirmations"): "pending_accounts",
    ("POST", "/confirmations/accounts"): "confirm_user",
    ("GET", "/requests"): "outbox",
    ("GET", "/requests/new"): "create_request",
    ("POST", "/requests/new"): "create_request",
    ("GET", "/requests/{request_id}"): "get",
    ("POST", "/requests/{request_id}/accept"): "accept",
    ("POST", "/requests/{request_id}/join"): "join",
    ("POST", "/requests/{request_id}/discard"): "discard_draft",
    ("POST", "/requests/{request_id}/send"): "send",
    ("POST", "/requests/{request_id}/approve"): "approve",
    ("POST", "/requests/{request_id}/refuse"): "refuse",
    ("POST", "/requests/{request_id}/answer"): "answer",
    ("GET", "/catalog"): "list_catalog",
    ("GET", "/catalog/new"): "create_item",
    ("POST", "/catalog/new"): "create_item",
    ("GET", "/catalog/{item_id}/edit"): "update_item",
    ("POST", "/catalog/{item_id}/edit"): "update_item",
    ("POST", "/catalog/{item_id}/active"): "update_item",
    ("GET", "/coverage"): "coverage",
    ("GET", "/notifications"): "notifications",
    ("POST", "/notifications/read"): "mark_all_read",
    ("POST", "/notifications/{notification_id}/read"): "mark_read",
    ("GET", "/figures"): "figures",
}

# Live documents listed by GET /documents (a withdrawn one leaves listings, even its township's).
LISTING: dict[str, set[str]] = {
    "east": {"east_departments", "east_restricted", "east_private"},
    "east2": {"east_departments", "east_restricted", "east_private"},
    "west": {"west_departments"},
    "poverty": {"east_departments", "east_restricted", "west_departments"},
    "stats": {"east_departments", "west_departments"},
    "auditor": {"east_departments", "east_restricted", "east_private", "west_departments"},
    "admin": set(),
}

# How a refusal reads: endpoint → (error code of a 403, the audited action).
DOCUMENT_REFUSALS: dict[str, tuple[str | None, AuditAction]] = {
    "view": (None, AuditAction.view),
    "download": ("download_not_allowed", AuditAction.download),
    "receipt": (None, AuditAction.receipt),
    "usage": (None, AuditAction.usage_read),
    "withdraw": ("withdraw_not_allowed", AuditAction.withdraw),
}
SYSTEM_REFUSALS: dict[str, tuple[str, AuditAction]] = {
    "upload": ("upload_not_allowed", AuditAction.upload),
    "audit_events": ("audit_not_allowed", AuditAction.audit_read),
    "audit_export": ("audit_not_allowed", AuditAction.audit_export),
    "audit_verify": ("audit_not_allowed", AuditAction.audit_verify),
    "create_org": ("admin_only", AuditAction.org_create),
    "create_user": ("admin_only", AuditAction.user_create),
    "create_category": ("admin_only", AuditAction.category_create),
    "create_grant": ("admin_only", AuditAction.grant_create),
    "list_users": ("admin_only", AuditAction.admin),
    "disable_user": ("admin_only", AuditAction.user_disable),
    "enable_user": ("admin_only", AuditAction.user_enable),
    "reset_password": ("admin_only", AuditAction.user_password_reset),
    "rename_user": ("admin_only", AuditAction.user_rename),
    "read_dictionary": ("dictionary_not_allowed", AuditAction.dictionary_read),
    "add_words": ("admin_only", AuditAction.dictionary_add),
    "remove_word": ("admin_only", AuditAction.dictionary_remove),
    "pending_accounts": ("confirm_not_allowed", AuditAction.confirmation_read),
    "confirm_user": ("confirm_not_allowed", AuditAction.user_confirm),
    "list_grants": ("grants_not_allowed", AuditAction.grant_read),
    "confirm_grant": ("confirm_not_allowed", AuditAction.grant_confirm),
}
# How a "not found" of OWN_MATRIX reads: endpoint → (error code, the audited action).
OWN_REFUSALS: dict[str, tuple[str, AuditAction]] = {
    "discard_draft": ("request_not_found", AuditAction.request_discard),
    "mark_read": ("notification_not_found", AuditAction.notification_read),
}

DOCUMENT_CELLS = [
    pytest.param(user, document, endpoint, expected, id=f"{user}-{endpoint}-{document}")
    for user, document, *statuses in DOCUMENT_MATRIX
    for endpoint, expected in zip(DOCUMENT_ENDPOINTS, statuses, strict=True)
]
SYSTEM_CELLS = [
    pytest.param(user, endpoint, expected, id=f"{user}-{endpoint}")
    for matrix, endpoints in (
        (SYSTEM_MATRIX, SYSTEM_ENDPOINTS),
        (ACCOUNT_MATRIX, ACCOUNT_ENDPOINTS),
        (SELF_MATRIX, SELF_ENDPOINTS),
        (DICTIONARY_MATRIX, DICTIONARY_ENDPOINTS),
        (CONFIRMATION_MATRIX, CONFIRMATION_ENDPOINTS),
        (SIGNED_IN_MATRIX, SIGNED_IN_ENDPOINTS),
        (OWN_MATRIX, OWN_ENDPOINTS),
    )
    for user, *statuses in matrix
    for endpoint, expected in zip(endpoints, statuses, strict=True)
]


@dataclass(frozen=True)
class Uploaded:
    id: str
    sha256: str
    content: bytes


# A second admin of the county, from the server console: admin's requests need one to confirm.
SECOND_ADMIN = "admin2"


@dataclass
class World:
    """The sample county with its documents, shared by the cells of one module (logins are slow)."""

    api: Api
    backends: Backends
    documents: dict[str, Uploaded] = field(default_factory=dict)
    catalog_item: int = 0
    # A notification of east's (east2, of the same township, has one of its own).
    east_notification: int = 0

    def upload(self, name: str) -> Uploaded:
        """A new document shaped like ``name`` (same township, sharing, withdrawal)."""
        uploader, sharing, withdrawn = DOCUMENTS[name]
        content = text_bytes(f"{name} 材料 {uuid.uuid4()}")
        response = self.api.upload(uploader, f"{name}.txt", content, "text/plain", **sharing)
        assert response.status_code == 201, response.text
        document = response.json()
        if withdrawn:
            withdrawal = self.api.client.delete(
                f"/api/v1/documents/{document['id']}", headers=self.api.headers(uploader)
            )
            assert withdrawal.status_code == 200, withdrawal.text
        return Uploaded(document["id"], document["sha256"], content)

    def last_seq(self) -> int:
        return self.backends.audit.last_id()

    def events_since(self, seq: int) -> list[AuditEvent]:
        # Read the table directly: an auditor reading over HTTP would add events of its own.
        with self.backends.db.session() as session:
            return list(session.scalars(select(AuditEvent).where(AuditEvent.id > seq)))


def _build_world(settings: Settings) -> Iterator[World]:
    """The county of ``tests/conftest.py`` (same organisations and users) and a second admin,
    DOCUMENTS uploaded, a catalog item and a notification of east's."""
    backends = open_backends(settings)
    ids = seed_county(backends)
    with backends.db.session() as session:
        orgs.create_user(
            session,
            passwords=backends.passwords,
            username=SECOND_ADMIN,
            password=PASSWORD,
            org=COUNTY,
            role=Role.admin,
        )
        notifications.notify_org(
            session,
            backends.audit,
            actor=Actor(username="cli:test"),
            org_id=ids[EAST],
            kind=NotificationKind.request_sent,
            text="测试提醒",
        )
    try:
        with TestClient(create_app(settings, backends=backends)) as client:
            world = World(Api(client, {}), backends)
            world.documents = {name: world.upload(name) for name in DOCUMENTS}
            world.catalog_item = create_item(world.api, name="季度扶贫台账")["id"]
            listed = client.get("/api/v1/notifications", headers=world.api.headers("east"))
            world.east_notification = listed.json()["notifications"][0]["id"]
            yield world
    finally:
        backends.close()


@pytest.fixture(scope="module")
def world(
    request: pytest.FixtureRequest, stack: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """Cells may add documents, users and grants here, never change the shared DOCUMENTS."""
    with stack_settings(request, stack, tmp_path_factory.mktemp("world") / "data") as settings:
        yield from _build_world(settings)


@pytest.fixture(scope="module")
def pristine_world(
    request: pytest.FixtureRequest, stack: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """Holds exactly DOCUMENTS, for listings; nothing is added to it."""
    with stack_settings(request, stack, tmp_path_factory.mktemp("pristine") / "data") as settings:
        yield from _build_world(settings)


def _call_document(world: World, user: str, endpoint: str, target: Uploaded) -> httpx.Response:
    client, headers = world.api.client, world.api.headers(user)
    path = f"/api/v1/documents/{target.id}"
    if endpoint == "view":
        return client.get(path, headers=headers)
    if endpoint == "download":
        return client.get(f"{path}/download", headers=headers)
    if endpoint == "receipt":
        return client.get(f"{path}/receipt", headers=headers)
    if endpoint == "usage":
        return client.get(f"{path}/usage", headers=headers)
    if endpoint == "lookup":
        return client.get(
            "/api/v1/documents/lookup", params={"sha256": target.sha256}, headers=headers
        )
    assert endpoint == "withdraw"
    return client.delete(path, headers=headers)


def _call_system(world: World, user: str, endpoint: str) -> httpx.Response:
    client, headers = world.api.client, world.api.headers(user)
    bodies: dict[str, tuple[str, dict[str, Any]]] = {
        "create_org": ("/api/v1/orgs", {"name": "北岭乡", "kind": "township"}),
        "create_user": (
            "/api/v1/users",
            {"username": "newreader", "password": PASSWORD, "org": STATS, "role": "reader"},
        ),
        # The default category, so that uploads in later cells stay valid.
        "create_category": ("/api/v1/categories", {"name": "其他"}),
    }
    if endpoint in bodies:
        path, body = bodies[endpoint]
        return client.post(path, json=body, headers=headers)
    if endpoint == "create_grant":
        spare = world.upload("west_departments")
        body = {"username": "auditor", "document_id": spare.id}
        return client.post("/api/v1/grants", json=body, headers=headers)
    if endpoint == "upload":
        content = text_bytes(f"{user} 新材料 {uuid.uuid4()}")
        return world.api.upload(user, "新材料.txt", content, "text/plain")
    if endpoint == "add_words":
        return client.post("/api/v1/dictionary", json={"words": [f"北岭村{user}"]}, headers=headers)
    if endpoint == "remove_word":
        # A word of its own, so that every cell finds one to remove.
        dictionary.console_add_words(
            world.backends, actor=Actor(username="cli:test"), words=[f"南岭村{user}"]
        )
        return client.delete(f"/api/v1/dictionary/南岭村{user}", headers=headers)
    if endpoint in ACCOUNT_PATHS:
        # Acting on a user of its own, so that the users the other cells sign in as stay usable.
        spare = _spare_user(world)
        body = {"new_password": PASSWORD} if endpoint == "reset_password" else None
        return client.post(
            f"/api/v1/users/{spare}/{ACCOUNT_PATHS[endpoint]}", json=body, headers=headers
        )
    if endpoint == "rename_user":
        renamed = _spare_user(world)
        return client.patch(
            f"/api/v1/users/{renamed}", json={"display_name": "孙某"}, headers=headers
        )
    if endpoint in SELF_ENDPOINTS:
        response: httpx.Response = _call_self(world, user, endpoint)
        return response
    if endpoint == "confirm_user":
        # Waiting for the caller's kind of confirmation, asked for by another admin.
        role = "admin" if user == "admin" else "auditor"
        waiting = _pending_account(
            world, role, requested_by=SECOND_ADMIN if user == "admin" else "admin"
        )
        return client.post(f"/api/v1/users/{waiting}/confirm", headers=headers)
    if endpoint == "confirm_grant":
        grant = _grant(world, "auditor", world.upload("west_departments").id, by=SECOND_ADMIN)
        return client.post(f"/api/v1/grants/{grant}/confirm", headers=headers)
    if endpoint == "mark_all_read":
        return client.post("/api/v1/notifications/read", headers=headers)
    if endpoint == "mark_read":
        return client.post(f"/api/v1/notifications/{world.east_notification}/read", headers=headers)
    if endpoint == "discard_draft":
        waiting_draft = draft(world.api, "poverty", EAST, f"扶贫台账 {uuid.uuid4().hex[:6]}")
        return client.delete(f"/api/v1/requests/{waiting_draft['id']}", headers=headers)
    paths = {
        "audit_events": "/api/v1/audit/events",
        "audit_export": "/api/v1/audit/export.csv",
        "audit_verify": "/api/v1/audit/verify",
        "list_users": "/api/v1/users",
        "me": "/api/v1/me",
        "read_dictionary": "/api/v1/dictionary",
        "pending_accounts": "/api/v1/users/pending",
        "list_grants": "/api/v1/grants",
        "list_orgs": "/api/v1/orgs",
        "list_categories": "/api/v1/categories",
        "search": "/api/v1/search?q=材料",
        "catalog_item": f"/api/v1/catalog/{world.catalog_item}",
        "figures": "/api/v1/figures",
        "figures_csv": "/api/v1/figures.csv",
    }
    return client.get(paths[endpoint], headers=headers)


def _pending_account(world: World, role: str, *, requested_by: str) -> str:
    """A new account of ``role`` an admin created over HTTP: it waits for a confirmation."""
    username = f"{role}-{uuid.uuid4().hex[:8]}"
    created = world.api.client.post(
        "/api/v1/users",
        json={"username": username, "password": PASSWORD, "org": COUNTY, "role": role},
        headers=world.api.headers(requested_by),
    )
    assert created.status_code == 201, created.text
    assert created.json()["pending_confirmation"] is True
    return username


def _call_self(world: World, user: str, endpoint: str) -> Any:
    client, username = world.api.client, user
    if endpoint == "change_password":
        username = f"{user}-self"
        role, org = USERS[user]
        with world.backends.db.session() as session:
            orgs.create_user(
                session,
                passwords=world.backends.passwords,
                username=username,
                password=PASSWORD,
                org=org,
                role=role,
            )
    login = client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert login.status_code == 200, login.text
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    if endpoint == "logout":
        return client.post("/api/v1/auth/logout", headers=headers)
    body = {"old_password": PASSWORD, "new_password": f"{PASSWORD}-{user}"}
    return client.post("/api/v1/me/password", json=body, headers=headers)


def _spare_user(world: World) -> str:
    with world.backends.db.session() as session:
        orgs.create_user(
            session,
            passwords=world.backends.passwords,
            username="spare",
            password=PASSWORD,
            org=STATS,
            role=Role.reader,
        )
    return "spare"


def _assert_denial_logged(
    world: World, *, since: int, user: str, action: AuditAction, document_id: str | None = None
) -> None:
    denials = [
        (event.actor, event.action, event.document_id)
        for event in world.events_since(since)
        if event.outcome == "denied"
    ]
    wanted = (user, action.value, document_id)
    assert wanted in denials, f"no denied {action} by {user} on {document_id} in {denials}"


def _error_code(response: httpx.Response) -> str:
    code: str = response.json()["error"]["code"]
    return code


@pytest.mark.parametrize(("user", "document", "endpoint", "expected"), DOCUMENT_CELLS)
def test_document_endpoint(
    world: World, user: str, document: str, endpoint: str, expected: int
) -> None:
    # A withdrawal changes its document: it acts on a fresh one of the same shape.
    target = world.upload(document) if endpoint == "withdraw" else world.documents[document]
    before = world.last_seq()

    response = _call_document(world, user, endpoint, target)

    assert response.status_code == expected, response.text
    withdrawn = DOCUMENTS[document][2]
    if expected == 200:
        if endpoint == "download":
            assert response.content == target.content
        elif endpoint == "receipt":
            assert response.json()["document_id"] == target.id
        elif endpoint == "usage":
            assert set(response.json()) == {"departments", "reuse_count"}
        else:
            assert response.json()["id"] == target.id
            assert (response.json()["withdrawn_at"] is not None) == (
                withdrawn or endpoint == "withdraw"
            )
        return

    if endpoint == "lookup":
        # Lookup asks "does my township hold these bytes?": a miss refuses nothing.
        missing = Uploaded(id="", sha256=uuid.uuid4().hex * 2, content=b"")
        assert response.content == _call_document(world, user, endpoint, missing).content
        return

    code, action = DOCUMENT_REFUSALS[endpoint]
    if expected == 403:
        assert _error_code(response) == code
    elif expected == 409:
        assert _error_code(response) == "already_withdrawn"
    else:
        assert _error_code(response) == "document_not_found"
        # Hidden and nonexistent documents must be indistinguishable, byte for byte.
        missing = Uploaded(id=str(uuid.uuid4()), sha256="", content=b"")
        assert response.content == _call_document(world, user, endpoint, missing).content
    _assert_denial_logged(world, since=before, user=user, action=action, document_id=target.id)


@pytest.mark.parametrize(("user", "endpoint", "expected"), SYSTEM_CELLS)
def test_system_endpoint(world: World, user: str, endpoint: str, expected: int) -> None:
    before = world.last_seq()

    response = _call_system(world, user, endpoint)

    assert response.status_code == expected, response.text
    if expected == 403:
        code, action = SYSTEM_REFUSALS[endpoint]
        assert _error_code(response) == code
        _assert_denial_logged(world, since=before, user=user, action=action)
    elif expected == 404:
        code, action = OWN_REFUSALS[endpoint]
        assert _error_code(response) == code
        _assert_denial_logged(world, since=before, user=user, action=action)
    elif endpoint == "me":
        assert response.json()["username"] == user
        assert response.json()["role"] == USERS[user][0].value


@pytest.mark.parametrize("user", sorted(LISTING))
def test_listing_shows_and_counts_only_visible_documents(pristine_world: World, user: str) -> None:
    expected = {pristine_world.documents[name].id for name in LISTING[user]}
    client, headers = pristine_world.api.client, pristine_world.api.headers(user)

    listed = client.get("/api/v1/documents", params={"size": 200}, headers=headers)
    first = client.get("/api/v1/documents", params={"size": 1}, headers=headers)

    assert listed.status_code == 200, listed.text
    assert {document["id"] for document in listed.json()["documents"]} == expected
    assert listed.json()["total"] == len(expected)
    assert first.json()["total"] == len(expected)
    assert len(first.json()["documents"]) == min(1, len(expected))


def _grant(
    world: World, username: str, document_id: str, *, by: str = "admin", **extra: str
) -> int:
    """A download grant ``by`` an admin, waiting for a second admin's confirmation; its id."""
    response = world.api.client.post(
        "/api/v1/grants",
        json={"username": username, "document_id": document_id, **extra},
        headers=world.api.headers(by),
    )
    assert response.status_code == 201, response.text
    assert response.json()["pending_confirmation"] is True
    grant_id: int = response.json()["id"]
    return grant_id


def _confirmed_grant(world: World, username: str, document_id: str, **extra: str) -> None:
    """A download grant admin made and admin2 confirmed."""
    grant_id = _grant(world, username, document_id, **extra)
    confirmed = world.api.client.post(
        f"/api/v1/grants/{grant_id}/confirm", headers=world.api.headers(SECOND_ADMIN)
    )
    assert confirmed.status_code == 200, confirmed.text


def _download(world: World, user: str, document: Uploaded) -> httpx.Response:
    return _call_document(world, user, "download", document)


def test_granted_auditor_downloads_even_a_withdrawn_document(world: World) -> None:
    live, withdrawn = world.upload("east_private"), world.upload("east_withdrawn")
    _confirmed_grant(world, "auditor", live.id)
    _confirmed_grant(world, "auditor", withdrawn.id)

    for document in (live, withdrawn):
        response = _download(world, "auditor", document)
        assert response.status_code == 200, response.text
        assert response.content == document.content


def test_grant_for_another_auditor_or_document_does_not_help(world: World) -> None:
    created = world.api.client.post(
        "/api/v1/users",
        json={"username": "auditor2", "password": PASSWORD, "org": COUNTY, "role": "auditor"},
        headers=world.api.headers("admin"),
    )
    assert created.status_code in (200, 201), created.text
    # An auditor confirms the new auditor account before it signs in.
    confirmed = world.api.client.post(
        "/api/v1/users/auditor2/confirm", headers=world.api.headers("auditor")
    )
    assert confirmed.status_code in (200, 409), confirmed.text
    theirs, mine = world.upload("east_departments"), world.upload("west_departments")
    _confirmed_grant(world, "auditor2", theirs.id)
    _confirmed_grant(world, "auditor", mine.id)
    before = world.last_seq()

    refused = _download(world, "auditor", theirs)

    assert refused.status_code == 403
    assert _error_code(refused) == "download_not_allowed"
    _assert_denial_logged(
        world, since=before, user="auditor", action=AuditAction.download, document_id=theirs.id
    )
    assert _download(world, "auditor2", theirs).status_code == 200
    assert _download(world, "auditor2", mine).status_code == 403


def test_expired_grant_does_not_work(world: World) -> None:
    document = world.upload("east_restricted")
    _confirmed_grant(world, "auditor", document.id, expires_at=_an_hour_ago())
    before = world.last_seq()

    refused = _download(world, "auditor", document)

    assert refused.status_code == 403
    assert _error_code(refused) == "download_not_allowed"
    _assert_denial_logged(
        world, since=before, user="auditor", action=AuditAction.download, document_id=document.id
    )


def _an_hour_ago() -> str:
    return (datetime.now(UTC) - timedelta(hours=1)).isoformat()


# --- every route is in the table -------------------------------------------------------------

# The cells of the tables: here, and in the "Ask once" table.
TABLE_ENDPOINTS = {
    *DOCUMENT_ENDPOINTS,
    *SYSTEM_ENDPOINTS,
    *ACCOUNT_ENDPOINTS,
    *SELF_ENDPOINTS,
    *DICTIONARY_ENDPOINTS,
    *CONFIRMATION_ENDPOINTS,
    *SIGNED_IN_ENDPOINTS,
    *OWN_ENDPOINTS,
    "list_documents",  # test_listing_shows_and_counts_only_visible_documents, per role
    "get",
    *ask_once.STEPS,
    *ask_once.ASK_SYSTEM_ENDPOINTS,
}


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path) the app answers, also in included routers; ``*`` for a mount."""
    found = set()
    for route in iter_route_contexts(app.routes):
        path = route.path
        assert path is not None, route
        for method in (route.methods or {"*"}) - {"HEAD"}:
            found.add((method, path))
    return found


@pytest.fixture
def routed_app(tmp_path: Path) -> Iterator[FastAPI]:
    backends = open_backends(make_settings(tmp_path / "data"))
    try:
        yield create_app(backends.settings, backends=backends)
    finally:
        backends.close()


def test_every_route_is_in_the_authorization_table(routed_app: FastAPI) -> None:
    routes = app_routes(routed_app)

    missing = sorted(routes - ROUTES.keys())
    assert missing == [], f"routes without a cell in ROUTES (add them to a table): {missing}"
    assert sorted(ROUTES.keys() - routes) == [], "ROUTES names routes the app no longer has"
    unknown = {
        route: cell
        for route, cell in ROUTES.items()
        if cell not in {*TABLE_ENDPOINTS, PUBLIC, METRICS_TOKEN}
    }
    assert unknown == {}, "ROUTES names cells that no table has"


def test_a_route_missing_from_the_table_is_found(routed_app: FastAPI) -> None:
    routed_app.add_api_route("/api/v1/unlisted", lambda: {}, methods=["GET"])

    assert ("GET", "/api/v1/unlisted") in app_routes(routed_app) - ROUTES.keys()
