"""Burden-reduction figures (减负成效) of the lifecycle scenario: counted by hand, read as JSON and
CSV, each township and department reading only its own row, and every figure recomputed from the
audit log alone.

The scenario is ``run_lifecycle`` in ask_once_helpers (its docstring tells the story).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import date, datetime
from typing import Any
from urllib.parse import unquote

import pytest

from services.backends import Backends
from services.catalog import county_today
from services.models import COUNTY_TIME
from tests.api.ask_once_helpers import (
    FARMING,
    Lifecycle,
    assert_error,
    audit_events,
    denials_since,
    last_seq,
    run_lifecycle,
)
from tests.conftest import EAST, POVERTY, STATS, WEST, Api

COUNTS = (
    "uploads",
    "reused_documents",
    "reuses",
    "requests",
    "answered_from_repository",
    "joined",
    "answered_by_township",
    "repeated",
    "refused",
    "overdue",
)
COUNTY_KEY = "全县"


def _row(key: str, hours: float, *counts: int) -> dict[str, Any]:
    return {"key": key, **dict(zip(COUNTS, counts, strict=True)), "hours_saved": hours}


# Counted by hand from run_lifecycle's story (hours: 2 per request avoided, 0.5 per reuse).
#                 uploads reused reuses requests repo joined answered repeated refused overdue
TOTALS = _row(COUNTY_KEY, 6.5, 5, 3, 5, 6, 1, 1, 2, 1, 1, 1)
BY_TOWNSHIP = [
    # U1 U2 U4; reuses (U1, 统计局) (U1, 扶贫办) (U4, 扶贫办) (U4, 农业局); R1 R2 R3.
    _row(EAST, 6.0, 3, 2, 4, 3, 1, 1, 1, 0, 0, 0),
    # U3 U5; reuse (U3, 统计局); R4 R5 R6.
    _row(WEST, 0.5, 2, 1, 1, 3, 0, 0, 1, 1, 1, 1),
]
BY_DEPARTMENT = [
    _row(FARMING, 2.5, 0, 1, 1, 2, 0, 1, 0, 0, 0, 1),  # R3 joined, R6 overdue; U4
    _row(POVERTY, 1.0, 0, 2, 2, 2, 0, 0, 2, 1, 0, 0),  # R2, R5 repeated; U1 U4
    _row(STATS, 3.0, 0, 2, 2, 2, 1, 0, 0, 0, 1, 0),  # R1 accepted, R4 refused; U1 U3
]


@pytest.fixture
def lifecycle(api: Api, backends: Backends) -> Lifecycle:
    return run_lifecycle(api, backends)


def _figures(api: Api, user: str, **params: str) -> dict[str, Any]:
    response = api.client.get("/api/v1/figures", params=params, headers=api.headers(user))
    assert response.status_code == 200, response.text
    table: dict[str, Any] = response.json()
    return table


def _by_key(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda row: str(row["key"]))


@pytest.mark.usefixtures("lifecycle")
@pytest.mark.parametrize(
    ("by", "rows"),
    [("township", BY_TOWNSHIP), ("department", BY_DEPARTMENT), ("county", [TOTALS])],
)
def test_figures_of_the_lifecycle_match_the_hand_count(
    api: Api, by: str, rows: list[dict[str, Any]]
) -> None:
    for user in ("coord", "auditor", "admin"):
        table = _figures(api, user, by=by)

        assert table["by"] == by
        assert _by_key(table["rows"]) == _by_key(rows)
        assert table["totals"] == TOTALS


@pytest.mark.usefixtures("lifecycle")
def test_the_window_counts_what_happened_inside_it(api: Api) -> None:
    this_year, last_year = str(county_today().year), str(county_today().year - 1)

    inside = _figures(api, "coord", by="township", period_from=this_year, period_to=this_year)
    before = _figures(api, "coord", by="township", period_from=last_year, period_to=last_year)

    assert _by_key(inside["rows"]) == _by_key(BY_TOWNSHIP)
    assert inside["totals"] == TOTALS
    assert (inside["period_from"], inside["period_to"]) == (this_year, this_year)
    assert before["totals"] == _row(COUNTY_KEY, 0.0, *[0] * len(COUNTS))
    assert all(row[name] == 0 for row in before["rows"] for name in COUNTS)


def _csv(api: Api, user: str, **params: str) -> tuple[bytes, list[list[str]]]:
    response = api.client.get("/api/v1/figures.csv", params=params, headers=api.headers(user))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    body = response.content
    return body, list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def _hours(value: float) -> str:
    """Hours as the page and the CSV write them: whole hours without a decimal point."""
    return str(int(value)) if value == int(value) else str(value)


def _csv_line(row: dict[str, Any]) -> list[str]:
    return [row["key"], *(str(row[name]) for name in COUNTS), _hours(row["hours_saved"])]


@pytest.mark.usefixtures("lifecycle")
def test_csv_has_a_bom_a_header_and_the_totals_last(api: Api) -> None:
    body, lines = _csv(api, "coord", by="township", labels="zh")
    _, coded = _csv(api, "coord", by="township")

    assert body.startswith(b"\xef\xbb\xbf")
    assert lines[0] == [
        "单位",
        "上传材料",
        "被复用材料",
        "复用次数",
        "材料需求",
        "库内直接获取",
        "并入同类需求",
        "乡镇答复",
        "重复索要",
        "未予准入",
        "逾期需求",
        "节省工时（小时）",
    ]
    assert lines[1:] == [*(_csv_line(row) for row in BY_TOWNSHIP), _csv_line(TOTALS)]
    # 6 hours, as the page says, not 6.0.
    assert [line[-1] for line in lines[1:]] == ["6", "0.5", "6.5"]
    assert coded[0] == ["key", *COUNTS, "hours_saved"]
    assert coded[1:] == lines[1:]


def _csv_name(api: Api, **params: str) -> str:
    response = api.client.get("/api/v1/figures.csv", params=params, headers=api.headers("coord"))
    assert response.status_code == 200, response.text
    disposition = response.headers["content-disposition"]
    encoded = disposition.split("filename*=UTF-8''", 1)[1]
    return unquote(encoded)


def test_csv_is_named_after_the_days_it_covers(api: Api) -> None:
    today = county_today()
    last_year = today.year - 1

    assert (
        _csv_name(api, by="township", period_from=f"{last_year}-01", period_to=f"{last_year}-Q4")
        == f"减负成效-按乡镇-{last_year}-01-01至{last_year}-12-31.csv"
    )
    # A span still running ends today; no start is everything until today.
    assert (
        _csv_name(api, by="department", period_from=f"{last_year}", period_to=f"{today.year}")
        == f"减负成效-按部门-{last_year}-01-01至{today.isoformat()}.csv"
    )
    assert _csv_name(api, by="county") == f"减负成效-全县合计-截至{today.isoformat()}.csv"


@pytest.mark.usefixtures("lifecycle")
@pytest.mark.parametrize(
    ("user", "by", "own"),
    [
        ("east", None, BY_TOWNSHIP[0]),
        ("east2", "township", BY_TOWNSHIP[0]),
        ("west", None, BY_TOWNSHIP[1]),
        ("poverty", None, BY_DEPARTMENT[1]),
        ("stats", "department", BY_DEPARTMENT[2]),
        ("farmer", None, BY_DEPARTMENT[0]),
    ],
)
def test_a_township_or_department_reads_only_its_own_row(
    api: Api, user: str, by: str | None, own: dict[str, Any]
) -> None:
    params = {"by": by} if by else {}

    table = _figures(api, user, **params)
    _, lines = _csv(api, user, **params)

    assert table["rows"] == [own]
    assert table["totals"] == own
    # The totals are the row itself: the CSV does not repeat it.
    assert lines[1:] == [_csv_line(own)]


@pytest.mark.usefixtures("lifecycle")
@pytest.mark.parametrize(
    ("user", "by"),
    [
        ("east", "department"),
        ("east", "county"),
        ("west", "department"),
        ("poverty", "township"),
        ("poverty", "county"),
        ("farmer", "township"),
    ],
)
def test_other_groupings_are_refused_and_audited(
    api: Api, backends: Backends, user: str, by: str
) -> None:
    for path in ("/api/v1/figures", "/api/v1/figures.csv"):
        before = last_seq(backends)

        response = api.client.get(path, params={"by": by}, headers=api.headers(user))

        assert_error(response, 403, "figures_not_allowed")
        assert [(actor, action) for actor, action, _ in denials_since(backends, before)] == [
            (user, "figures_read")
        ]


# --- every figure again, from the audit log alone ---------------------------------------------

REQUEST_FIGURES = {
    "request_accept": ("requests", "answered_from_repository"),
    "request_join": ("requests", "joined"),
    "request_send": ("requests",),
    "request_refuse": ("refused",),
    "request_overdue": ("overdue",),
}


def _beijing_day(event: dict[str, Any]) -> date:
    return datetime.fromisoformat(event["at"]).astimezone(COUNTY_TIME).date()


def figures_from_log(
    events: list[dict[str, Any]], *, by: str, first: date | None = None, last: date | None = None
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Rows by key and the totals, from audit events only (action, outcome, role, org,
    document_id, at, details), counted on the Beijing days from ``first`` to ``last``."""
    allowed = [event for event in events if event["outcome"] == "allowed"]
    # Which township uploaded each document: its upload event names the township as org.
    township_of = {
        event["document_id"]: event["org"]
        for event in allowed
        if event["action"] == "upload" and not event["details"].get("duplicate")
    }
    inside = [
        event
        for event in allowed
        if (first is None or _beijing_day(event) >= first)
        and (last is None or _beijing_day(event) <= last)
    ]
    rows: dict[str, Counter[str]] = {}
    totals: Counter[str] = Counter()

    def add(figure: str, township: str | None, department: str | None) -> None:
        totals[figure] += 1
        key = township if by == "township" else department if by == "department" else None
        if key is not None:
            rows.setdefault(key, Counter())[figure] += 1

    for event in inside:
        if event["action"] == "upload" and not event["details"].get("duplicate"):
            add("uploads", event["org"], None)
    reuses = {
        (event["document_id"], event["org"])
        for event in inside
        if event["action"] == "download" and event["role"] == "reader"
    }
    for document_id, department in sorted(reuses):
        add("reuses", township_of[document_id], department)
    # A reused document counts once in the county, once for its township, once per department.
    for document_id in {document_id for document_id, _ in reuses}:
        totals["reused_documents"] += 1
        if by == "township":
            rows.setdefault(township_of[document_id], Counter())["reused_documents"] += 1
        elif by == "department":
            for department in {dept for doc, dept in reuses if doc == document_id}:
                rows.setdefault(department, Counter())["reused_documents"] += 1
    for event in inside:
        details = event["details"]
        township, department = details.get("township"), details.get("department")
        for figure in REQUEST_FIGURES.get(event["action"], ()):
            add(figure, township, department)
        if event["action"] == "request_answer":
            add("answered_by_township", township, department)
            if details["repeated"]:
                add("repeated", township, department)

    def finish(key: str, counts: Counter[str]) -> dict[str, Any]:
        saved = (counts["answered_from_repository"] + counts["joined"]) * 2 + counts["reuses"] * 0.5
        return {"key": key, **{name: counts[name] for name in COUNTS}, "hours_saved": saved}

    return {key: finish(key, counts) for key, counts in rows.items()}, finish(COUNTY_KEY, totals)


@pytest.mark.usefixtures("lifecycle")
@pytest.mark.parametrize("by", ["township", "department", "county"])
@pytest.mark.parametrize("window", ["all", "this_year", "last_year"])
def test_every_figure_can_be_recomputed_from_the_audit_log(api: Api, by: str, window: str) -> None:
    year = county_today().year - (1 if window == "last_year" else 0)
    span = {} if window == "all" else {"period_from": str(year), "period_to": str(year)}
    first, last = (None, None) if window == "all" else (date(year, 1, 1), date(year, 12, 31))

    table = _figures(api, "coord", by=by, **span)
    rows, totals = figures_from_log(audit_events(api), by=by, first=first, last=last)

    assert table["totals"] == totals
    if by == "county":
        assert table["rows"] == [totals]
        return
    zero = dict.fromkeys(COUNTS, 0)
    for row in table["rows"]:
        assert row == rows.get(row["key"], {"key": row["key"], **zero, "hours_saved": 0.0})
    assert set(rows) <= {row["key"] for row in table["rows"]}


@pytest.mark.usefixtures("lifecycle")
def test_the_log_recomputation_is_the_hand_count(api: Api) -> None:
    rows, totals = figures_from_log(audit_events(api), by="township")

    assert totals == TOTALS
    assert _by_key(list(rows.values())) == _by_key(BY_TOWNSHIP)
