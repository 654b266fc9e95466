"""Ask once, from draft to answer: a request ends avoided, joined, approved and answered, refused,
answered ``repeated`` or overdue, and each ending tells exactly the people it concerns, once.

The county's story is ``run_lifecycle`` in ask_once_helpers; the due-date job runs on a clock the
tests set. Who may call what is in test_ask_once_permissions.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from services import requests
from services.backends import Backends
from services.catalog import county_today
from tests.api.ask_once_helpers import (
    FARMING,
    Lifecycle,
    act,
    audit_events,
    beijing_noon,
    box,
    create_item,
    decide,
    draft,
    fetch,
    notifications,
    run_lifecycle,
    told,
    upload,
)
from tests.conftest import EAST, POVERTY, STATS, WEST, Api
from tests.samples import text_bytes


@pytest.fixture
def lifecycle(api: Api, backends: Backends) -> Lifecycle:
    return run_lifecycle(api, backends)


def test_a_filled_slot_is_accepted_and_the_township_is_never_asked(
    api: Api, lifecycle: Lifecycle
) -> None:
    docs, r1 = lifecycle.documents, lifecycle.requests["R1"]

    # The catalog slot east filled comes first among the matches.
    assert lifecycle.drafts["R1"]["matches"][0]["id"] == docs["U1"]
    assert lifecycle.drafts["R1"]["category"] == lifecycle.item["category"]
    accepted = lifecycle.decisions["R1:accept"]
    assert (accepted["status"], accepted["documents"]) == ("answered_from_repository", [docs["U1"]])
    assert accepted["answered_at"] is not None
    assert accepted["sent_at"] is None
    assert r1 not in {request["id"] for request in box(api, "east", "inbox")}
    assert api.client.get(f"/api/v1/requests/{r1}", headers=api.headers("east")).status_code == 404
    assert all(request_id != r1 for _, request_id in told(api, "east"))


def test_an_approved_request_joined_by_a_second_department_is_answered_for_both(
    api: Api, lifecycle: Lifecycle
) -> None:
    r2 = lifecycle.requests["R2"]

    assert lifecycle.decisions["R2:send"]["status"] == "pending_approval"
    approved = lifecycle.decisions["R2:approve"]
    assert approved["status"] == "sent"
    assert approved["sent_at"] is not None
    # farmer's draft was shown poverty's open request and joined it.
    assert [other["id"] for other in lifecycle.drafts["R3"]["open_requests"]] == [r2]
    joined = lifecycle.decisions["R3:join"]
    assert (joined["status"], joined["joined_to"]) == ("joined", r2)
    answered = lifecycle.decisions["R2:answer"]
    assert answered["status"] == "answered"
    assert answered["repeated"] is False
    assert answered["documents"] == [lifecycle.documents["U4"]]
    assert answered["departments"] == [POVERTY, FARMING]
    # One answer, read by both departments, and listed in both outboxes.
    for user in ("poverty", "farmer"):
        assert fetch(api, user, r2)["documents"] == [lifecycle.documents["U4"]]
    assert r2 in {request["id"] for request in box(api, "farmer", "outbox")}
    assert {request["id"] for request in box(api, "east", "inbox")} == {r2}


def test_a_refused_request_points_at_the_existing_document(api: Api, lifecycle: Lifecycle) -> None:
    r4, minutes = lifecycle.requests["R4"], lifecycle.documents["U3"]

    assert minutes in {match["id"] for match in lifecycle.drafts["R4"]["matches"]}
    refused = lifecycle.decisions["R4:refuse"]
    assert refused["status"] == "refused"
    assert refused["reason"] == "西乡已共享会议纪要"
    assert refused["refusal_document_id"] == minutes
    # West never heard of a request that was not let through.
    assert api.client.get(f"/api/v1/requests/{r4}", headers=api.headers("west")).status_code == 404
    assert r4 not in {request["id"] for request in box(api, "west", "inbox")}
    (refusal,) = notifications(api, "stats")
    assert (refusal["kind"], refusal["request_id"], refusal["document_id"]) == (
        "request_refused",
        r4,
        minutes,
    )


def test_answering_only_with_older_documents_marks_the_request_repeated(
    api: Api, lifecycle: Lifecycle
) -> None:
    summary = lifecycle.documents["U5"]

    assert summary in {match["id"] for match in lifecycle.drafts["R5"]["matches"]}
    answered = lifecycle.decisions["R5:answer"]
    assert (answered["status"], answered["repeated"], answered["documents"]) == (
        "answered",
        True,
        [summary],
    )
    assert fetch(api, "poverty", lifecycle.requests["R5"])["repeated"] is True


def test_the_due_date_job_reminds_once_then_reports_overdue_once(
    api: Api, backends: Backends, lifecycle: Lifecycle
) -> None:
    r6 = lifecycle.requests["R6"]

    assert lifecycle.decisions["R6:send"]["status"] == "sent"  # a catalog slot needs no approval
    assert lifecycle.due_job == [
        ("3 days before", 0),
        ("2 days before", 1),
        ("2 days before, again", 0),
        ("on the due date", 0),
        ("a day after", 1),
        ("a day after, again", 0),
    ]
    reminders = [n for n in notifications(api, "west") if n["request_id"] == r6]
    assert sorted(n["kind"] for n in reminders) == [
        "request_due",
        "request_overdue",
        "request_sent",
    ]
    # The request says so too, although the real clock has not reached its due date.
    shown = api.client.get(f"/api/v1/requests/{r6}", headers=api.headers("west")).json()
    assert (shown["status"], shown["overdue"]) == ("sent", True)
    overdue_events = audit_events(api, action="request_overdue")
    assert [event["details"]["request_id"] for event in overdue_events] == [r6]
    assert overdue_events[0]["details"]["township"] == WEST
    assert overdue_events[0]["details"]["department"] == FARMING
    # Running the job again later still sends nothing new.
    later = beijing_noon(lifecycle.due + timedelta(days=30))
    assert requests.run_due_dates(backends, now=later) == 0


def test_a_draft_left_alone_stays_its_departments_alone(api: Api, lifecycle: Lifecycle) -> None:
    r7 = lifecycle.requests["R7"]

    assert fetch(api, "stats", r7)["status"] == "draft"
    for user in ("poverty", "farmer", "west", "east", "coord"):
        response = api.client.get(f"/api/v1/requests/{r7}", headers=api.headers(user))
        assert response.status_code == 404, user


def test_each_ending_tells_exactly_the_people_it_concerns_once(
    api: Api, lifecycle: Lifecycle
) -> None:
    r = lifecycle.requests
    expected: dict[str, list[tuple[str, int | None]]] = {
        # A township hears of what was let through to it, and of its due dates.
        "east": [("request_sent", r["R2"])],
        "east2": [("request_sent", r["R2"])],
        "west": sorted(
            [
                ("request_sent", r["R5"]),
                ("request_sent", r["R6"]),
                ("request_due", r["R6"]),
                ("request_overdue", r["R6"]),
            ]
        ),
        # Departments hear of answers, refusals and who joined them.
        "poverty": sorted(
            [
                ("request_joined", r["R2"]),
                ("request_answered", r["R2"]),
                ("request_answered", r["R5"]),
            ]
        ),
        "farmer": [("request_answered", r["R2"])],
        "stats": [("request_refused", r["R4"])],
        "coord": [],
        "auditor": [],
        "admin": [],
    }

    assert {user: told(api, user) for user in expected} == expected
    answered = [n for n in notifications(api, "farmer") if n["kind"] == "request_answered"]
    assert answered[0]["document_id"] == lifecycle.documents["U4"]
    # What the township answered needs no more attention: its reminders are marked read.
    for notification in notifications(api, "west"):
        assert notification["read"] is (notification["request_id"] == r["R5"])
        assert notification["text"]


def test_every_notification_is_one_notify_event(api: Api, lifecycle: Lifecycle) -> None:
    sent = [
        (event["details"]["to"], event["details"]["kind"], event["details"]["request_id"])
        for event in audit_events(api, action="notify")
    ]
    shown = [
        (user, kind, request_id)
        for user in ("east", "east2", "west", "poverty", "farmer", "stats")
        for kind, request_id in told(api, user)
    ]

    assert sorted(sent) == sorted(shown)
    assert len(set(sent)) == len(sent)


def test_notifications_are_marked_read_one_at_a_time_or_all(api: Api, lifecycle: Lifecycle) -> None:
    first, *rest = [n for n in notifications(api, "west") if not n["read"]]
    headers = api.headers("west")

    marked = api.client.post(f"/api/v1/notifications/{first['id']}/read", headers=headers)

    assert marked.status_code == 204
    unread = api.client.get("/api/v1/notifications", params={"unread": "true"}, headers=headers)
    assert {n["id"] for n in unread.json()["notifications"]} == {n["id"] for n in rest}
    assert unread.json()["unread"] == len(rest)
    assert api.client.post("/api/v1/notifications/read", headers=headers).status_code == 204
    after = api.client.get("/api/v1/notifications", params={"unread": "true"}, headers=headers)
    assert after.json()["total"] == 0
    assert all(n["read"] for n in notifications(api, "west"))


def test_reminders_skip_answered_requests_and_ignore_reading(api: Api, backends: Backends) -> None:
    item = create_item(api, name="季度报表")
    today = county_today()
    quarter = f"{today.year}-Q{(today.month - 1) // 3 + 1}"
    due = today + timedelta(days=2)
    waiting = draft(
        api, "poverty", WEST, "西乡报表", catalog_item=item["id"], period=quarter, due=str(due)
    )
    answered = draft(
        api, "stats", EAST, "东镇报表", catalog_item=item["id"], period=quarter, due=str(due)
    )
    for request, user in ((waiting, "poverty"), (answered, "stats")):
        decide(api, user, request["id"], "send", {"reason": "尚未报送"})
    # Filing the catalog slot answers the request for it.
    document = upload(api, "east", "东镇季度报表", catalog_item=str(item["id"]), period=quarter)
    assert fetch(api, "stats", answered["id"])["documents"] == [document]

    assert requests.run_due_dates(backends, now=beijing_noon(today)) == 1
    assert told(api, "west") == sorted(
        [("request_sent", waiting["id"]), ("request_due", waiting["id"])]
    )
    assert [kind for kind, _ in told(api, "east")] == ["request_sent"]
    # Reading a reminder does not make it due again.
    read = api.client.post("/api/v1/notifications/read", headers=api.headers("west"))
    assert read.status_code == 204
    assert requests.run_due_dates(backends, now=beijing_noon(due)) == 0
    assert requests.run_due_dates(backends, now=beijing_noon(due + timedelta(days=1))) == 1
    assert requests.run_due_dates(backends, now=beijing_noon(due + timedelta(days=2))) == 0
    assert [kind for kind, _ in told(api, "west")].count("request_overdue") == 1
    assert [kind for kind, _ in told(api, "east")] == ["request_sent"]


def test_a_department_joins_a_request_once(api: Api, backends: Backends) -> None:
    first = draft(api, "poverty", EAST, "扶贫台账", category="扶贫台账")
    decide(api, "poverty", first["id"], "send", {"reason": "急需"})
    again = draft(api, "stats", EAST, "扶贫台账（统计）", category="扶贫台账")
    assert [other["id"] for other in again["open_requests"]] == [first["id"]]
    assert decide(api, "stats", again["id"], "join", {"request_id": first["id"]})["status"] == (
        "joined"
    )

    # Asking again, by the department that joined or by the one that created it, is refused:
    # it would count the hours saved twice.
    for user, title in (("stats", "扶贫台账（再次）"), ("poverty", "扶贫台账（补充）")):
        twice = draft(api, user, EAST, title, category="扶贫台账")
        refused = act(api, user, twice["id"], "join", {"request_id": first["id"]})
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "already_requesting"
        assert fetch(api, user, twice["id"])["status"] == "draft"
    assert fetch(api, "poverty", first["id"])["departments"] == [POVERTY, STATS]
    # poverty was told once that another department joined.
    assert told(api, "poverty") == [("request_joined", first["id"])]
    # And joining a request that is no longer open is refused.
    decide(api, "coord", first["id"], "approve")
    answer_with = upload(api, "east", "东镇扶贫台账", category="扶贫台账")
    decide(api, "east", first["id"], "answer", {"document_ids": [answer_with]})
    closed = draft(api, "stats", EAST, "扶贫台账（迟到）", category="扶贫台账")
    late = act(api, "stats", closed["id"], "join", {"request_id": first["id"]})
    assert (late.status_code, late.json()["error"]["code"]) == (409, "request_not_open")


def test_filing_a_catalog_slot_answers_the_requests_for_it(api: Api) -> None:
    item = create_item(api, name="季度报表")
    today = county_today()
    quarter = f"{today.year}-Q{(today.month - 1) // 3 + 1}"
    previous = f"{today.year - 1}-Q4"
    asked = {
        (user, period): draft(
            api, user, EAST, f"东镇报表{period}", catalog_item=item["id"], period=period
        )["id"]
        for user, period in (("poverty", quarter), ("stats", quarter), ("stats", previous))
    }
    for (user, _), request_id in asked.items():
        decide(api, user, request_id, "send", {"reason": "尚未报送"})

    response = api.upload(
        "east", "东镇季度报表.txt", text_bytes("东镇季度报表"), "text/plain",
        catalog_item=str(item["id"]), period=quarter,
    )  # fmt: skip

    assert response.status_code == 201, response.text
    document = response.json()["id"]
    assert sorted(response.json()["answered_requests"]) == sorted(
        [asked[("poverty", quarter)], asked[("stats", quarter)]]
    )
    for user in ("poverty", "stats"):
        filled = fetch(api, user, asked[(user, quarter)])
        assert (filled["status"], filled["documents"], filled["repeated"]) == (
            "answered",
            [document],
            False,
        )
        assert ("request_answered", asked[(user, quarter)]) in told(api, user)
    # Another period's request is not answered by this one.
    assert fetch(api, "stats", asked[("stats", previous)])["status"] == "sent"
    answers = audit_events(api, action="request_answer")
    assert sorted(event["details"]["request_id"] for event in answers) == sorted(
        [asked[("poverty", quarter)], asked[("stats", quarter)]]
    )
    assert {event["actor"] for event in answers} == {"east"}


def test_a_filed_slot_that_leaves_out_an_asking_department_answers_nothing(api: Api) -> None:
    item = create_item(api, name="季度报表")
    today = county_today()
    quarter = f"{today.year}-Q{(today.month - 1) // 3 + 1}"
    request_id = draft(api, "poverty", EAST, "东镇报表", catalog_item=item["id"], period=quarter)[
        "id"
    ]
    decide(api, "poverty", request_id, "send", {"reason": "尚未报送"})

    upload(
        api, "east", "东镇季度报表", catalog_item=str(item["id"]), period=quarter,
        visibility="private",
    )  # fmt: skip

    assert fetch(api, "poverty", request_id)["status"] == "sent"
    assert audit_events(api, action="request_answer") == []
