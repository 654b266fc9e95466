"""Requests in every state, the notifications they caused, and departments reusing materials.

Told as the county lived it: 县乡村振兴局 (zhenxing) and 县统计局 (tongji) ask 城关镇 (chengguan)
and 河口乡 (hekou); 减负办 (jianfu) approves or refuses what is not in the catalog.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from sqlalchemy import select

from services import documents, requests
from services.access import Principal
from services.backends import Backends
from services.catalog import county_today
from services.demo.catalog import (
    CHENGGUAN,
    HEKOU,
    LEDGER,
    PARTY,
    POVERTY,
    Catalog,
    ended_period,
)
from services.demo.county import upload
from services.metadata import period_label
from services.models import COUNTY_TIME, MaterialRequest, User
from services.requests import RequestFields

# Whose requests mark the demo as loaded.
REQUESTERS = ("zhenxing", "tongji")
# How long ago the overdue request was created, and how many days ago it fell due.
OVERDUE_CREATED_DAYS_AGO = 20
OVERDUE_DAYS_AGO = 6


def loaded(backends: Backends) -> bool:
    """Are the demo's requests there already (the last part of the demo to be loaded)?"""
    with backends.db.session() as session:
        return (
            session.scalar(
                select(MaterialRequest.id)
                .join(User, User.id == MaterialRequest.created_by_id)
                .where(User.username.in_(REQUESTERS))
                .limit(1)
            )
            is not None
        )


def _ask(
    backends: Backends,
    principal: Principal,
    fields: RequestFields,
    *,
    now: datetime | None = None,
) -> requests.Draft:
    return requests.create(backends, principal=principal, fields=fields, ip=None, now=now)


def _send(backends: Backends, principal: Principal, draft: requests.Draft, reason: str) -> int:
    requests.send(
        backends, principal=principal, request_id=draft.request.id, reason=reason, ip=None
    )
    return draft.request.id


def load_requests(
    backends: Backends,
    *,
    users: dict[str, Principal],
    catalog: Catalog,
    now: datetime | None = None,
) -> None:
    """One request in each state, then the due-date job, so one of them is overdue."""
    zhenxing, tongji = users["zhenxing"], users["tongji"]
    chengguan, jianfu = users["chengguan"], users["jianfu"]
    today = county_today(now)
    soon, later = today + timedelta(days=2), today + timedelta(days=10)
    last_quarter = ended_period(POVERTY.cycle, today, 1)
    last_year = ended_period(PARTY.cycle, today, 1)

    # draft: 统计局 has not decided yet.
    _ask(
        backends,
        tongji,
        RequestFields(CHENGGUAN, "城关镇秋粮播种面积和产量统计", category="统计报表", due=later),
    )

    # answered_from_repository: the quarter's summary is already there; 城关镇 is never asked.
    found = _ask(
        backends,
        zhenxing,
        RequestFields(
            CHENGGUAN,
            f"城关镇{period_label(last_quarter)}扶贫工作总结",
            period=last_quarter,
            due=later,
            catalog_item=catalog.item_id(POVERTY),
        ),
    )
    requests.accept(
        backends,
        principal=zhenxing,
        request_id=found.request.id,
        document_id=found.matches[0].id,
        ip=None,
    )

    # sent (a catalog slot still empty, due in two days) and joined by a second department.
    missing = _ask(
        backends,
        zhenxing,
        RequestFields(
            HEKOU,
            f"河口乡{period_label(last_quarter)}扶贫工作总结",
            description="季度总结尚未报送，请尽快补报。",
            period=last_quarter,
            due=soon,
            catalog_item=catalog.item_id(POVERTY),
        ),
    )
    sent_id = _send(backends, zhenxing, missing, "库中没有该季度的总结")
    joining = _ask(
        backends,
        tongji,
        RequestFields(
            HEKOU, "河口乡季度工作总结", category="工作总结", period=last_quarter, due=later
        ),
    )
    requests.join(
        backends, principal=tongji, request_id=joining.request.id, other_id=sent_id, ip=None
    )

    # sent to 城关镇, still open in its inbox: a month's ledger it has not submitted.
    last_month = ended_period(LEDGER.cycle, today, 1)
    ledger = _ask(
        backends,
        zhenxing,
        RequestFields(
            CHENGGUAN,
            f"城关镇{period_label(last_month)}防返贫监测台账",
            period=last_month,
            due=later,
            catalog_item=catalog.item_id(LEDGER),
        ),
    )
    _send(backends, zhenxing, ledger, f"{period_label(last_month)}的台账尚未报送")

    # pending_approval: not in the catalog, waiting for 减负办.
    workers = _ask(
        backends,
        tongji,
        RequestFields(
            HEKOU,
            "河口乡外出务工人员花名册",
            description="用于劳动力转移就业统计。",
            category="统计报表",
            due=later,
        ),
    )
    _send(backends, tongji, workers, "开展外出务工人员抽样调查需要")

    # approved by 减负办, then answered by 城关镇 with a new material.
    grants = _ask(
        backends,
        zhenxing,
        RequestFields(CHENGGUAN, "雨露计划补助发放明细", category="统计报表", due=later),
    )
    grants_id = _send(backends, zhenxing, grants, "核对本年度雨露计划补助发放情况")
    requests.approve(backends, principal=jianfu, request_id=grants_id, ip=None)
    answer = upload(
        backends,
        principal=chengguan,
        filename="城关镇雨露计划补助发放明细.csv",
        fields={"category": "统计报表", "period": str(today.year), "tags": "雨露计划"},
        content=(
            "序号,村,学生,就读学校,补助金额（元）,发放日期\n"
            f"1,东街村,王某某,县职业中专,1500,{today.year}-03-15\n"
            f"2,南关村,陈某某,市技师学院,1500,{today.year}-03-15\n"
            f"3,西街村,刘某某,省交通职业技术学院,1500,{today.year}-09-20\n"
        ).encode(),
    )
    requests.answer(
        backends, principal=chengguan, request_id=grants_id, document_ids=[answer.id], ip=None
    )

    # refused by 减负办, pointing at the summary already in the repository.
    summary = catalog.filled[POVERTY.name, CHENGGUAN, last_quarter]
    asked_again = _ask(
        backends,
        tongji,
        RequestFields(
            CHENGGUAN,
            "城关镇扶贫工作情况",
            category="工作总结",
            period=last_quarter,
            due=later,
        ),
    )
    refused_id = _send(backends, tongji, asked_again, "需要乡镇重新填报一份")
    requests.refuse(
        backends,
        principal=jianfu,
        request_id=refused_id,
        reason="库中已有城关镇本季度扶贫工作总结，请直接检索下载，不再向乡镇重复索要",
        document_id=summary.id,
        ip=None,
    )

    # answered, repeated: 城关镇 could only point at what it had submitted already.
    party = _ask(
        backends,
        tongji,
        RequestFields(
            CHENGGUAN,
            f"城关镇{last_year}年度党建工作总结",
            period=last_year,
            due=later,
            catalog_item=catalog.item_id(PARTY),
        ),
    )
    party_id = _send(backends, tongji, party, "需要乡镇确认后再报一次")
    requests.answer(
        backends,
        principal=chengguan,
        request_id=party_id,
        document_ids=[catalog.filled[PARTY.name, CHENGGUAN, last_year].id],
        ip=None,
    )

    _overdue(backends, zhenxing=zhenxing, catalog=catalog, today=today)
    requests.run_due_dates(backends, now=now)


def _overdue(backends: Backends, *, zhenxing: Principal, catalog: Catalog, today: date) -> None:
    """A ledger asked for weeks ago, due some days ago, never answered."""
    asked_on = today - timedelta(days=OVERDUE_CREATED_DAYS_AGO)
    month = ended_period(LEDGER.cycle, today, 2)
    late = _ask(
        backends,
        zhenxing,
        RequestFields(
            HEKOU,
            "河口乡防返贫监测台账补报",
            period=month,
            due=today - timedelta(days=OVERDUE_DAYS_AGO),
            catalog_item=catalog.item_id(LEDGER),
        ),
        now=datetime.combine(asked_on, time(9), tzinfo=COUNTY_TIME),
    )
    _send(backends, zhenxing, late, "该月台账未报送")


def reuse(backends: Backends, *, users: dict[str, Principal], catalog: Catalog) -> int:
    """Departments download some of the townships' materials (the reuse figures); how many."""
    downloads = [
        ("zhenxing", document)
        for (name, township, _), document in sorted(catalog.filled.items())
        if township == CHENGGUAN or name == LEDGER.name
    ]
    downloads += [
        ("tongji", document)
        for (name, _, _), document in sorted(catalog.filled.items())
        if name in (POVERTY.name, PARTY.name)
    ]
    for username, document in downloads:
        _, chunks = documents.download(
            backends, principal=users[username], document_id=document.id, ip=None
        )
        for _ in chunks:
            pass
    return len(downloads)
