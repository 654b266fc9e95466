"""Bad input to the "Ask once" endpoints: each refusal is a clear JSON error with the right
status and code, and nothing changes (the request keeps its state, no row is added).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from services.backends import Backends
from services.catalog import county_today
from tests.api.ask_once_helpers import (
    CATALOG,
    REQUESTS,
    act,
    assert_error,
    create_item,
    decide,
    denials_since,
    draft,
    drain,
    last_seq,
    post_draft,
    request_state,
    row_counts,
    upload,
)
from tests.conftest import EAST, POVERTY, WEST, Api

HUGE = "9" * 30


def _quarter() -> str:
    today = county_today()
    return f"{today.year}-Q{(today.month - 1) // 3 + 1}"


@pytest.fixture
def item(api: Api) -> dict[str, Any]:
    """A quarterly catalog item owed by east only."""
    return create_item(api, name="东镇季度报表", townships=[EAST])


# --- creating a request ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "status", "code"),
    [
        pytest.param({"township": "不存在乡"}, 422, "unknown_township", id="unknown-township"),
        pytest.param({"township": POVERTY}, 422, "unknown_township", id="department-as-township"),
        pytest.param({"township": HUGE}, 422, "unknown_township", id="huge-township-id"),
        pytest.param({"township": int(HUGE)}, 422, "unknown_township", id="huge-township-int"),
        pytest.param({"catalog_item": 987654}, 422, "unknown_catalog_item", id="unknown-item"),
        pytest.param({"catalog_item": HUGE}, 422, "unknown_catalog_item", id="huge-item-id"),
        pytest.param({"township": WEST, "catalog": True}, 422, "catalog_item_not_owed",
                     id="item-not-owed"),
        pytest.param({"catalog": True, "period": "2026-09"}, 422, "period_not_in_cycle",
                     id="month-for-quarterly"),
        pytest.param({"catalog": True, "period": None}, 422, "period_required",
                     id="no-period-for-quarterly"),
        pytest.param({"period": "2026-13"}, 422, "invalid_period", id="no-such-month"),
        pytest.param({"due": "yesterday"}, 422, "invalid_field", id="due-not-a-date"),
        pytest.param({"due": "past"}, 422, "due_in_past", id="due-in-the-past"),
        pytest.param({"title": "  "}, 422, "missing_field", id="blank-title"),
        pytest.param({"title": "标题\x00"}, 422, "invalid_characters", id="control-character"),
        pytest.param({"title": None}, 422, "invalid_field", id="no-title"),
    ],
)  # fmt: skip
def test_a_bad_request_is_refused_and_nothing_is_created(
    api: Api,
    backends: Backends,
    item: dict[str, Any],
    fields: dict[str, Any],
    status: int,
    code: str,
) -> None:
    body: dict[str, Any] = {"township": EAST, "title": "季度报表", "period": _quarter(), **fields}
    if body.pop("catalog", False):
        body["catalog_item"] = item["id"]
    if body.get("due") == "past":
        body["due"] = str(county_today() - timedelta(days=1))
    body = {key: value for key, value in body.items() if value is not None}
    counts = row_counts(backends)
    before = last_seq(backends)

    response = post_draft(api, "poverty", **body)

    assert_error(response, status, code)
    assert row_counts(backends) == counts
    if code != "invalid_field":  # the framework refuses a malformed body before the service
        denied = [(actor, action) for actor, action, _ in denials_since(backends, before)]
        assert ("poverty", "request_create") in denied


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        pytest.param(REQUESTS, b'{"township": "\xe4\xb8\x9c\xe9\x95\x87", "title": ', 400,
                     "malformed_json", id="truncated"),
        pytest.param(REQUESTS, b"not json at all", 400, "malformed_json", id="not-json"),
        pytest.param(REQUESTS, b'"\xff\xfe"', 400, "bad_request", id="not-utf8"),
        pytest.param(REQUESTS, b"[]", 422, "invalid_field", id="a-list"),
        pytest.param(f"{REQUESTS}/draft/send", b"{reason", 400, "malformed_json",
                     id="send-not-json"),
        pytest.param(f"{REQUESTS}/draft/answer", b'{"document_ids": [', 400, "malformed_json",
                     id="answer-truncated"),
        pytest.param(CATALOG, b"{,}", 400, "malformed_json", id="catalog-not-json"),
    ],
)  # fmt: skip
def test_a_malformed_body_is_a_json_error(
    api: Api, backends: Backends, path: str, body: bytes, status: int, code: str
) -> None:
    mine = draft(api, "poverty", EAST, "季度统计报表")
    state, counts = request_state(backends, mine["id"]), row_counts(backends)
    user = "coord" if path == CATALOG else "poverty"
    headers = {**api.headers(user), "Content-Type": "application/json"}

    response = api.client.post(
        path.replace("draft", str(mine["id"])), content=body, headers=headers
    )

    assert_error(response, status, code)
    assert request_state(backends, mine["id"]) == state
    assert row_counts(backends) == counts


# --- deciding on a draft ---------------------------------------------------------------------


@pytest.fixture
def documents(api: Api, backends: Backends) -> dict[str, str]:
    """Documents a draft of poverty's to east may or may not be answered with."""
    made = {
        "east_shared": upload(api, "east", "东镇季度报表", category="统计报表"),
        "east_private": upload(
            api, "east", "东镇内部报表", category="统计报表", visibility="private"
        ),
        "east_for_stats": upload(
            api, "east", "东镇统计专报", visibility="restricted", departments="统计局"
        ),
        "west_shared": upload(api, "west", "西乡季度报表", category="统计报表"),
    }
    drain(backends)
    return made


@pytest.mark.parametrize(
    ("step", "body", "status", "code"),
    [
        pytest.param("accept", {"document_id": "east_private"}, 404, "document_not_found",
                     id="accept-private"),
        pytest.param("accept", {"document_id": "east_for_stats"}, 404, "document_not_found",
                     id="accept-not-shared-with-us"),
        pytest.param("accept", {"document_id": "nonexistent"}, 404, "document_not_found",
                     id="accept-unknown"),
        pytest.param("accept", {"document_id": "west_shared"}, 422, "document_other_township",
                     id="accept-other-township"),
        pytest.param("accept", {"document_id": "x" * 65}, 422, "invalid_field",
                     id="accept-long-id"),
        pytest.param("accept", {}, 422, "invalid_field", id="accept-nothing"),
        pytest.param("join", {"request_id": "west_open"}, 422, "join_other_township",
                     id="join-other-township"),
        pytest.param("join", {"request_id": "self"}, 404, "request_not_found", id="join-itself"),
        pytest.param("join", {"request_id": HUGE}, 404, "request_not_found", id="join-huge-id"),
        pytest.param("join", {"request_id": "stats_draft"}, 404, "request_not_found",
                     id="join-someone-elses-draft"),
        pytest.param("join", {"request_id": ["a"]}, 422, "invalid_field", id="join-a-list"),
        pytest.param("send", {}, 422, "missing_field", id="send-without-reason"),
        pytest.param("send", {"reason": " \n "}, 422, "missing_field", id="send-blank-reason"),
        pytest.param("send", {"reason": 42}, 422, "invalid_field", id="send-number-reason"),
        pytest.param("approve", None, 403, "coordinator_only", id="approve-own-draft"),
    ],
)  # fmt: skip
def test_a_bad_decision_leaves_the_draft_as_it_was(
    api: Api,
    backends: Backends,
    documents: dict[str, str],
    step: str,
    body: dict[str, Any] | None,
    status: int,
    code: str,
) -> None:
    mine = draft(api, "poverty", EAST, "季度统计报表", category="统计报表")
    assert mine["matches"], "the draft was shown east's shared report"
    west_open = draft(api, "stats", WEST, "西乡季度报表", category="统计报表")
    decide(api, "stats", west_open["id"], "send", {"reason": "需要"})
    names = {
        **documents,
        "nonexistent": "0" * 36,
        "west_open": west_open["id"],
        "self": mine["id"],
        "stats_draft": draft(api, "stats", EAST, "统计草稿")["id"],
    }
    if body is not None:
        body = {key: names.get(value, value) if isinstance(value, str) else value
                for key, value in body.items()}  # fmt: skip
    state, other = request_state(backends, mine["id"]), request_state(backends, west_open["id"])
    counts = row_counts(backends)

    response = act(api, "poverty", mine["id"], step, body)

    assert_error(response, status, code)
    assert request_state(backends, mine["id"]) == state
    assert request_state(backends, west_open["id"]) == other
    assert row_counts(backends) == counts


# --- a coordinator's decision ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "body", "status", "code"),
    [
        pytest.param("refuse", {}, 422, "invalid_field", id="refuse-without-reason"),
        pytest.param("refuse", {"reason": "  "}, 422, "missing_field", id="refuse-blank-reason"),
        pytest.param("refuse", {"reason": "已有", "document_id": "west_shared"}, 422,
                     "unknown_document", id="refuse-pointing-at-another-township"),
        pytest.param("refuse", {"reason": "已有", "document_id": "0" * 36}, 422,
                     "unknown_document", id="refuse-pointing-nowhere"),
        pytest.param("approve", "twice", 409, "request_not_pending", id="approve-twice"),
    ],
)  # fmt: skip
def test_a_bad_approval_or_refusal_changes_nothing(
    api: Api,
    backends: Backends,
    documents: dict[str, str],
    step: str,
    body: Any,
    status: int,
    code: str,
) -> None:
    pending = draft(api, "poverty", EAST, "季度统计报表", category="统计报表")
    decide(api, "poverty", pending["id"], "send", {"reason": "需要新版"})
    if body == "twice":
        decide(api, "coord", pending["id"], "approve")
        body = None
    elif "document_id" in body:
        body = {**body, "document_id": documents.get(body["document_id"], body["document_id"])}
    state, counts = request_state(backends, pending["id"]), row_counts(backends)

    response = act(api, "coord", pending["id"], step, body)

    assert_error(response, status, code)
    assert request_state(backends, pending["id"]) == state
    assert row_counts(backends) == counts


# --- answering -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "answer_with", "status", "code"),
    [
        pytest.param("west", ["west_shared"], 404, "request_not_found", id="other-township"),
        pytest.param("east", [], 422, "missing_field", id="no-documents"),
        pytest.param("east", ["west_shared"], 404, "document_not_found",
                     id="another-townships-document"),
        pytest.param("east", ["0" * 36], 404, "document_not_found", id="unknown-document"),
        pytest.param("east", ["east_private"], 422, "document_not_shared",
                     id="document-the-department-may-not-read"),
        pytest.param("east", "not a list", 422, "invalid_field", id="not-a-list"),
        pytest.param("east", "twice", 409, "already_answered", id="double-answer"),
    ],
)  # fmt: skip
def test_a_bad_answer_changes_nothing(
    api: Api,
    backends: Backends,
    documents: dict[str, str],
    user: str,
    answer_with: Any,
    status: int,
    code: str,
) -> None:
    item = create_item(api, name="季度报表")
    sent = draft(api, "poverty", EAST, "季度统计报表", catalog_item=item["id"], period=_quarter())
    decide(api, "poverty", sent["id"], "send", {"reason": "需要新版"})
    if answer_with == "twice":
        decide(api, "east", sent["id"], "answer", {"document_ids": [documents["east_shared"]]})
        answer_with = [documents["east_shared"]]
    elif isinstance(answer_with, list):
        answer_with = [documents.get(name, name) for name in answer_with]
    state, counts = request_state(backends, sent["id"]), row_counts(backends)
    before = last_seq(backends)

    response = act(api, user, sent["id"], "answer", {"document_ids": answer_with})

    assert_error(response, status, code)
    assert request_state(backends, sent["id"]) == state
    assert row_counts(backends) == counts
    if code != "invalid_field":
        denied = [(actor, action) for actor, action, _ in denials_since(backends, before)]
        assert (user, "request_answer") in denied


def test_a_pending_request_cannot_be_answered_by_its_township(
    api: Api, backends: Backends, documents: dict[str, str]
) -> None:
    pending = draft(api, "poverty", EAST, "季度统计报表", category="统计报表")
    decide(api, "poverty", pending["id"], "send", {"reason": "需要新版"})
    state = request_state(backends, pending["id"])

    response = act(
        api, "east", pending["id"], "answer", {"document_ids": [documents["east_shared"]]}
    )

    assert_error(response, 404, "request_not_found")
    assert request_state(backends, pending["id"]) == state


# --- ids that do not fit ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        # Ids are 1 to 2**31-1 (api/schemas.py DbId): anything else is no id at all.
        ("GET", f"{REQUESTS}/{HUGE}", 422, "invalid_field"),
        ("GET", f"{REQUESTS}/-1", 422, "invalid_field"),
        ("GET", f"{REQUESTS}/abc", 422, "invalid_field"),
        ("GET", f"{REQUESTS}/987654", 404, "request_not_found"),
        ("POST", f"{REQUESTS}/{HUGE}/send", 422, "invalid_field"),
        ("POST", f"{REQUESTS}/{HUGE}/answer", 422, "invalid_field"),
        ("GET", f"{CATALOG}/{HUGE}", 422, "invalid_field"),
        ("GET", f"{CATALOG}/{HUGE}/coverage", 422, "invalid_field"),
        ("PATCH", f"{CATALOG}/{HUGE}", 422, "invalid_field"),
        ("GET", f"{CATALOG}/987654", 404, "catalog_item_not_found"),
        ("GET", f"{CATALOG}/abc", 422, "invalid_field"),
        ("POST", f"/api/v1/notifications/{HUGE}/read", 422, "invalid_field"),
        ("POST", "/api/v1/notifications/0/read", 422, "invalid_field"),
    ],
)
def test_ids_that_do_not_fit_are_clear_errors(
    api: Api, backends: Backends, method: str, path: str, status: int, code: str
) -> None:
    user = "coord" if path.startswith(CATALOG) else "east"
    bodies = {"send": {"reason": "x"}, "answer": {"document_ids": ["x"]}}
    body = next((value for key, value in bodies.items() if path.endswith(key)), None)
    if method == "PATCH":
        body = {"due_days": 3}
    counts = row_counts(backends)

    response = api.client.request(method, path, json=body, headers=api.headers(user))

    assert_error(response, status, code)
    assert row_counts(backends) == counts


# --- catalog and figures ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"cycle": "weekly"}, "invalid_cycle"),
        ({"due_days": -1}, "invalid_due_days"),
        ({"due_days": 10_000}, "invalid_due_days"),
        ({"townships": ["不存在乡"]}, "unknown_township"),
        ({"townships": [POVERTY]}, "unknown_township"),
        ({"townships": [HUGE]}, "unknown_township"),
        ({"departments": [EAST]}, "unknown_department"),
        ({"sharing": "sometimes"}, "invalid_sharing"),
        ({"name": "东镇季度报表"}, "duplicate_name"),
        ({"name": "  "}, "invalid_field"),
        ({"due_days": "soon"}, "invalid_field"),
    ],
)
def test_a_bad_catalog_item_is_refused(
    api: Api, backends: Backends, item: dict[str, Any], fields: dict[str, Any], code: str
) -> None:
    body = {"name": "月报", "category": "月报", "cycle": "monthly", "due_days": 10, **fields}
    counts = row_counts(backends)

    created = api.client.post(CATALOG, json=body, headers=api.headers("coord"))
    changed = api.client.patch(
        f"{CATALOG}/{item['id']}",
        json={key: value for key, value in fields.items() if key != "name" or value.strip()},
        headers=api.headers("coord"),
    )

    assert_error(created, 422, code)
    assert row_counts(backends) == counts
    if fields.get("name") not in ("东镇季度报表", "  "):
        assert_error(changed, 422, code)
    fetched = api.client.get(f"{CATALOG}/{item['id']}", headers=api.headers("coord"))
    assert fetched.json() == item


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"by": "village"}, "invalid_by"),
        ({"period_from": "2026", "period_to": "2025"}, "invalid_period"),
        ({"period_from": "2026-13"}, "invalid_period"),
        ({"period_to": "x" * 30}, "invalid_field"),
    ],
)
def test_bad_figure_parameters_are_refused(api: Api, params: dict[str, str], code: str) -> None:
    for path in ("/api/v1/figures", "/api/v1/figures.csv"):
        response = api.client.get(path, params=params, headers=api.headers("coord"))

        assert_error(response, 422, code)
