"""The access log for auditors: filters, paging, CSV export and verification of the hash chain.

Every read goes through ``services.audit_access``, so the page is refused and audited exactly as
the API's reads are; the page only turns Beijing dates into the service's moments.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from api.deps import BackendsDep, ClientIP, PageNumber
from api.web.render import LOCAL_TIME, render
from api.web.session import SignedIn
from services import administration, audit_access
from services.audit import (
    ACTION_NAMES,
    OUTCOME_NAMES,
    AuditAction,
    AuditFilter,
    Outcome,
    VerifyReport,
)
from services.backends import Backends
from services.errors import InvalidField
from services.models import AuditEvent
from services.sessions import ActiveSession

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
# Details longer than this fold away behind their first characters.
SHORT_DETAILS = 80

# What each logged action is called on the page; an action without a label shows its code.
ACTION_LABELS = ACTION_NAMES
OUTCOME_LABELS = OUTCOME_NAMES
_OUTCOME_BADGES = {
    Outcome.allowed.value: "badge-ok",
    Outcome.denied.value: "badge-error",
    Outcome.error.value: "badge-warn",
}


@dataclass(frozen=True)
class LogQuery:
    """The filters as typed on the page (empty = any); dates are Beijing calendar days."""

    actor: str = ""
    org: str = ""
    action: str = ""
    outcome: str = ""
    document_id: str = ""
    since: str = ""
    until: str = ""

    def params(self) -> dict[str, str]:
        """The filters that are set, for the page's own links."""
        return {name: value for name, value in asdict(self).items() if value}

    def to_filter(self) -> AuditFilter:
        """The service's filter: a start date from its first moment, an end date to its last."""
        since, until = _day(self.since, "since"), _day(self.until, "until")
        return audit_access.make_filter(
            actor=self.actor or None,
            org=self.org or None,
            document_id=self.document_id or None,
            action=self.action or None,
            outcome=_outcome(self.outcome),
            since=datetime.combine(since, time.min, LOCAL_TIME) if since else None,
            until=(
                datetime.combine(until + timedelta(days=1), time.min, LOCAL_TIME)
                - timedelta(microseconds=1)
                if until
                else None
            ),
        )


def _day(value: str, field: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidField(field, "日期格式应为 2026-01-31") from None


def _outcome(value: str) -> Outcome | None:
    if not value:
        return None
    try:
        return Outcome(value)
    except ValueError:
        raise InvalidField("outcome", "结果须为 允许、拒绝 或 出错") from None


def _api_params(filters: AuditFilter) -> dict[str, str]:
    """The same filters as the JSON API and the CSV export take them (moments with offset)."""
    return {
        name: value.isoformat() if isinstance(value, datetime) else str(value)
        for name, value in asdict(filters).items()
        if value is not None
    }


@dataclass(frozen=True)
class EventRow:
    """One logged event as the page shows it."""

    event: AuditEvent
    action_label: str
    outcome_label: str
    outcome_badge: str
    details_short: str
    details_full: str | None  # the whole details, when the short text leaves some out


# What the recorded details say, in words; the codes stay in the unfolded JSON and the export.
DETAIL_NAMES = {
    "reason": "原因",
    "filters": "筛选条件",
    "page": "页码",
    "size": "大小",
    "q": "检索词",
    "total": "结果数",
    "document_ids": "涉及材料",
    "sha256": "SHA-256",
    "filename": "文件名",
    "content_type": "文件类型",
    "duplicate": "重复提交",
    "found": "已找到",
    "events": "记录数",
    "first_bad_seq": "首条异常记录",
    "ok": "完整",
    "user": "用户",
    "role": "角色",
    "org": "单位",
    "kind": "类型",
    "created": "新建",
    "changed": "有改动",
    "grantee": "被授权人",
    "method": "请求方式",
    "path": "地址",
    "sort": "排序",
}
REASON_NAMES = {
    "bad_password": "密码错误",
    "unknown_user": "无此用户",
    "inactive": "账号已停用",
    "locked": "失败次数过多，已暂时锁定",
    "not_found": "不存在",
    "not_visible": "无权查看",
    "no_download_right": "无下载权限",
    "not_owner": "不是本乡镇的材料",
    "already_withdrawn": "已撤回",
    "not_admin": "不是系统管理员",
    "not_auditor": "不是审计人员",
    "not_uploader": "不是乡镇工作人员",
    "blob_missing": "文件内容缺失",
    "unsupported_type": "文件类型不支持",
    "csrf_failed": "页面令牌校验失败",
    "not_authenticated": "未登录",
    "invalid_token": "登录凭据无效",
    "token_expired": "登录已过期",
    "token_revoked": "密码重置后旧凭据失效",
    "session_expired": "会话已过期",
}


def details_text(details: dict[str, Any]) -> str:
    """Details on one line in words: ``原因: 密码错误; 页码: 1``, nested values as compact JSON."""
    parts = []
    for key in sorted(details):
        value = details[key]
        if key == "reason" and isinstance(value, str):
            value = REASON_NAMES.get(value, value)
        elif isinstance(value, bool):
            value = "是" if value else "否"
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        parts.append(f"{DETAIL_NAMES.get(key, key)}: {shown}")
    return "; ".join(parts)


def _row(event: AuditEvent) -> EventRow:
    text = details_text(dict(event.details))
    folded = len(text) > SHORT_DETAILS
    return EventRow(
        event=event,
        action_label=ACTION_LABELS.get(event.action, event.action),
        outcome_label=OUTCOME_LABELS.get(event.outcome, event.outcome),
        outcome_badge=_OUTCOME_BADGES.get(event.outcome, "badge-muted"),
        details_short=text[:SHORT_DETAILS] + "…" if folded else text,
        details_full=(
            json.dumps(event.details, ensure_ascii=False, indent=2, sort_keys=True)
            if folded
            else None
        ),
    )


def _log_page(
    request: Request,
    web: ActiveSession,
    backends: Backends,
    ip: str | None,
    query: LogQuery,
    page: int,
    report: VerifyReport | None,
) -> Response:
    filters = query.to_filter()
    found = audit_access.read_events(
        backends, principal=web.principal, filters=filters, page=page, size=PAGE_SIZE, ip=ip
    )
    params = query.params()

    def url_for_page(number: int) -> str:
        return "/audit?" + urlencode({**params, "page": number})

    return render(
        request,
        "audit.html",
        principal=web.principal,
        csrf_token=web.csrf_token,
        query=query,
        params=params,
        rows=[_row(event) for event in found.events],
        total=found.total,
        page=page,
        size=PAGE_SIZE,
        url_for_page=url_for_page,
        export_url="/api/v1/audit/export.csv?"
        + urlencode({**_api_params(filters), "labels": "zh"}),
        actions=[(action.value, ACTION_LABELS.get(action, action.value)) for action in AuditAction],
        outcomes=list(OUTCOME_LABELS.items()),
        org_names=[org.name for org in administration.list_orgs(backends, kind=None)],
        report=report,
    )


def _log_query(
    actor: Annotated[str, Query(max_length=200)] = "",
    org: Annotated[str, Query(max_length=100)] = "",
    action: Annotated[str, Query(max_length=40)] = "",
    outcome: Annotated[str, Query(max_length=10)] = "",
    document_id: Annotated[str, Query(max_length=64)] = "",
    since: Annotated[str, Query(max_length=10)] = "",
    until: Annotated[str, Query(max_length=10)] = "",
) -> LogQuery:
    # A filter form sends every field, the unused ones empty: empty means "any".
    return LogQuery(
        actor=actor,
        org=org.strip(),
        action=action,
        outcome=outcome,
        document_id=document_id.strip(),
        since=since,
        until=until,
    )


LogQueryDep = Annotated[LogQuery, Depends(_log_query)]


@router.get("/audit")
def audit_log(
    request: Request,
    web: SignedIn,
    backends: BackendsDep,
    ip: ClientIP,
    query: LogQueryDep,
    page: PageNumber = 1,
) -> Response:
    """The access log, newest first, filtered and paged; the read itself is logged."""
    return _log_page(request, web, backends, ip, query, page, report=None)


@router.get("/audit/verify")
def verify_log(
    request: Request, web: SignedIn, backends: BackendsDep, ip: ClientIP, query: LogQueryDep
) -> Response:
    """Recompute the hash chain and say in one sentence whether the log is intact."""
    report = audit_access.verify(backends, principal=web.principal, ip=ip)
    return _log_page(request, web, backends, ip, query, 1, report=report)
