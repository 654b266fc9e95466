"""The access log's details in words, for the audit page and the export for people: Chinese names
for the keys events record and for the codes they hold; what has no name yet stays as recorded.

The log itself, the API and the default CSV keep the codes: only what people read is worded.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from services.audit import (
    ACTION_NAMES,
    ACTOR_ROLE_NAMES,
    CSV_HEADINGS,
    OUTCOME_NAMES,
    people_csv_row,
)
from services.filetypes import kind_in_words
from services.metadata import period_label
from services.models import (
    CYCLE_NAMES,
    ORG_KIND_NAMES,
    REQUEST_STATUS_NAMES,
    SHARING_NAMES,
    AuditEvent,
)
from services.notifications import KIND_NAMES
from services.personal_data import mask_personal_data

# In the order a line of details reads best: why first, then what it was about.
DETAIL_NAMES: dict[str, str] = {
    "reason": "原因",
    "signature": "病毒特征",
    # A burst of refusals summed up (services.audit.AuditLog.record_burst).
    "count": "本轮次数",
    "first_at": "本轮首条时间",
    "last_at": "本轮最后一次",
    "kind": "类型",
    "status": "状态",
    "title": "名称",
    "request_id": "需求编号",
    "township": "乡镇",
    "department": "部门",
    "departments": "部门",
    "to": "发给",
    "user": "用户",
    "display_name": "姓名",
    "old_display_name": "原姓名",
    "role": "角色",
    "org": "单位",
    "grantee": "被授权人",
    # Two-person confirmation (services.administration).
    "pending": "待第二人确认",
    "requested_by": "提出人",
    "granted_by": "授权人",
    "grant": "授权编号",
    "grants": "授权数",
    "category": "类别",
    "catalog_item": "目录材料编号",
    "name": "名称",
    "cycle": "报送周期",
    "due_days": "报送期限（天）",
    "owed_from": "起始日期",
    "townships": "报送乡镇",
    "sharing": "共享属性",
    "active": "在用",
    "description": "说明",
    "period": "所属期间",
    "periods": "期间",
    "period_from": "开始期间",
    "period_to": "结束期间",
    "year": "年份",
    "due": "截止日期",
    "joined_to": "并入需求编号",
    "repeated": "重复索要",
    "matches": "已有材料",
    "open_requests": "同类需求",
    "document_ids": "涉及材料",
    # A township's list of its withdrawn materials (services.documents.list_visible).
    "withdrawn": "已撤回的材料",
    "notification_id": "提醒编号",
    "q": "检索词",
    # A search: how the words were read (去年 as 2025年), and whether nothing matched them all.
    "searched_as": "查找方式",
    "relaxed": "放宽了条件",
    "filters": "筛选条件",
    "sort": "排序",
    "by": "分组",
    "filename": "文件名",
    "content_type": "文件类型",
    "page": "页码",
    "size": "大小",
    "total": "结果数",
    "sha256": "SHA-256",
    "duplicate": "重复提交",
    "found": "已找到",
    "ok": "完整",
    "events": "记录数",
    "first_bad_seq": "首条异常记录",
    "created": "新建",
    "changed": "有改动",
    "word": "词语",
    "words": "词语",
    "already_present": "已在词库中",
    "reindex_queued": "待重新索引材料数",
    "method": "请求方式",
    "path": "地址",
    # The audit page's filters, as a read of the log records them.
    "actor": "人员",
    "action": "操作",
    "outcome": "结果",
    "document_id": "材料编号",
    "since": "起始时间",
    "until": "截止时间",
    "with_searches": "含结果中有该材料的检索",
}

# Why something was refused: the reasons the services record and the error codes they raise.
REASON_NAMES: dict[str, str] = {
    "bad_password": "密码错误",
    "unknown_user": "无此用户",
    "inactive": "账号已停用",
    "account_disabled": "账号已停用",
    "locked": "失败次数过多，已暂时锁定",
    "address_locked": "该地址登录失败次数过多，已暂时限制",
    "invalid_credentials": "用户名或密码错误",
    "not_authenticated": "未登录",
    "invalid_token": "登录凭据无效",
    "token_expired": "登录已过期",
    "token_revoked": "凭据已失效（已退出或密码已更改）",
    "password_change_required": "须先修改密码",
    "wrong_password": "原密码错误",
    "weak_password": "密码不符合要求",
    "password_unchanged": "新密码与原密码相同",
    "invalid_username": "用户名不合规",
    "session_expired": "会话已过期",
    "csrf_failed": "页面令牌校验失败",
    "not_found": "不存在",
    "not_visible": "无权查看",
    # A reader who could read the document until its township withdrew it.
    "withdrawn": "材料已由报送单位撤回",
    "no_download_right": "无下载权限",
    "scan_pending": "等待病毒扫描",
    "scan_infected": "文件含病毒，已隔离",
    "scan_too_large": "超出病毒扫描大小限制",
    "scan_unscanned": "未经病毒扫描",
    "download_not_allowed": "无下载权限",
    "not_owner": "不是本乡镇的材料",
    "already_withdrawn": "已撤回",
    "withdraw_not_allowed": "无权撤回",
    "not_admin": "不是系统管理员",
    "admin_only": "仅限系统管理员",
    "not_auditor": "不是审计人员",
    "audit_not_allowed": "无权查看审计日志",
    "not_uploader": "不是乡镇工作人员",
    "upload_not_allowed": "无权上传",
    "not_reader": "不是县直部门工作人员",
    "not_coordinator": "不是减负办工作人员",
    "coordinator_only": "仅限减负办",
    "blob_missing": "文件内容缺失",
    "unsupported_type": "文件类型不支持",
    "type_mismatch": "内容与扩展名不符",
    "empty_file": "空文件",
    "preview_unsupported": "该类型不能预览",
    "document_not_found": "材料不存在",
    "document_not_shared": "材料未向提出需求的部门公开",
    "document_other_township": "不是该乡镇的材料",
    "unknown_document": "该乡镇没有这份材料",
    "request_not_found": "需求不存在",
    "request_not_allowed": "无权提出需求",
    "request_not_draft": "需求已不是草稿",
    "request_not_open": "需求已结束",
    "request_not_pending": "需求不在待审核状态",
    "not_request_owner": "不是提出需求的部门",
    "already_answered": "需求已答复",
    "already_requesting": "本部门已在此需求中",
    "join_other_township": "只能并入同一乡镇的需求",
    "due_in_past": "截止日期已过",
    "wrong_box": "无此需求列表",
    "box_not_allowed": "无此需求列表",
    "catalog_item_not_found": "目录材料不存在",
    "catalog_item_inactive": "目录材料已停用",
    "catalog_item_not_owed": "本乡镇不需报送该目录材料",
    "unknown_catalog_item": "目录材料不存在",
    "cycle_in_use": "已有报送，不能修改周期",
    "departments_required": "须指定使用部门",
    "duplicate_name": "名称重复",
    "notification_not_found": "提醒不存在",
    "not_own_figures": "只能查看本单位的数据",
    "figures_not_allowed": "无权查看减负成效",
    "missing_field": "缺少必填项",
    "too_long": "内容过长",
    "too_many": "数量过多",
    "invalid_period": "期间格式有误",
    "invalid_date": "日期有误",
    "period_required": "须填写所属期间",
    "period_not_in_cycle": "期间与报送周期不符",
    "unknown_category": "类别不存在",
    "unknown_township": "乡镇不存在",
    "unknown_department": "部门不存在",
    "unknown_org": "单位不存在",
    "user_exists": "用户已存在",
    "user_not_found": "用户不存在",
    "org_exists": "单位已存在",
    "role_org_mismatch": "角色与单位不符",
    "cannot_disable_self": "不能停用自己",
    "cannot_reset_self": "不能重置自己的密码",
    "pending": "账号待第二人确认",
    "account_pending": "账号待第二人确认",
    "not_confirmer": "无权确认",
    "not_allowed": "无权查看",
    "confirm_not_allowed": "无权确认",
    "confirm_own_account": "不能确认自己的账号",
    "confirm_own_request": "不能确认自己提出的变更",
    "not_pending": "没有待确认的变更",
    "grant_not_found": "下载授权不存在",
    "grants_not_allowed": "无权查看下载授权",
    "dictionary_not_allowed": "无权查看词库",
    "word_not_found": "词库中没有该词",
}

# How figures are grouped (figures.py records ``by``).
_GROUPING_NAMES = {
    "township": "按乡镇",
    "department": "按部门",
    "county": "全县合计",
    "month": "按月",
}

# The names of the codes a key holds; a key not here shows its values as recorded.
VALUE_NAMES: dict[str, dict[str, str]] = {
    "reason": REASON_NAMES,
    # A notification's kind, or an organisation's (an org created by an admin).
    "kind": {**KIND_NAMES, **ORG_KIND_NAMES},
    "status": REQUEST_STATUS_NAMES,
    "cycle": CYCLE_NAMES,
    "sharing": SHARING_NAMES,
    "role": ACTOR_ROLE_NAMES,
    "by": _GROUPING_NAMES,
    "action": ACTION_NAMES,
    "outcome": OUTCOME_NAMES,
    "townships": {"all": "全部乡镇"},
    # A search's order (services.search.SearchSort), or a listing's.
    "sort": {
        "relevance": "按相关程度",
        "date": "按上传时间",
        "title": "按标题",
        "category": "按类别",
    },
    # A read of the log records its filters as text.
    "with_searches": {"True": "是"},
}
RELAXED_WORDS = "没有同时含全部检索词的材料，放宽了条件，列出只含部分检索词的材料"
_PERIOD_KEYS = frozenset({"period", "periods", "period_from", "period_to"})
# The details that list documents by number: the ones a search or a listing showed, an answer
# used or a request accepted (涉及材料), and those a draft request found already there (已有材料).
DOCUMENT_LIST_KEYS = frozenset({"document_ids", "matches"})
_ORDER = {key: position for position, key in enumerate(DETAIL_NAMES)}


def _value(key: str, value: Any, names: Mapping[str, DocumentName] | None = None) -> str:
    if value is None:
        return "无"
    if key == "relaxed" and value is True:
        return "是（" + RELAXED_WORDS + "）"
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, list):
        return "、".join(_value(key, item, names) for item in value) if value else "无"
    if isinstance(value, dict):
        if not value:
            return "无"
        return "，".join(f"{name}={shown}" for name, shown in detail_pairs(value, names))
    if isinstance(value, str):
        if not value.strip():
            return "无"  # a reason left empty reads "原因: 无", not "原因: "
        if names is not None and key in DOCUMENT_LIST_KEYS:
            return document_in_words(value, names)
        if key in _PERIOD_KEYS:
            return period_label(value)
        if key == "content_type":
            return kind_in_words(value) or value
        if key == "searched_as":
            return searched_as_words(value)
        return VALUE_NAMES.get(key, {}).get(value, value)
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def detail_pairs(
    details: dict[str, Any], documents: Mapping[str, DocumentName] | None = None
) -> list[tuple[str, str]]:
    """Each recorded detail as (name, value) in words, the reason first and unknown keys last;
    with ``documents``, the documents a detail lists by title and township (see
    ``document_in_words``), else by number as recorded."""
    keys = sorted(details, key=lambda key: (_ORDER.get(key, len(_ORDER)), key))
    # ``size`` is bytes on an upload, rows per page on a read.
    names = {**DETAIL_NAMES, "size": "每页条数" if "page" in details else "大小（字节）"}
    return [(names.get(key, key), _value(key, details[key], documents)) for key in keys]


def recorded_values(details: dict[str, Any]) -> str:
    """The codes the words stand in for, as recorded (``记录的文件类型：application/pdf``), for a
    title over the worded details; nothing when the words show every value as recorded."""
    content_type = details.get("content_type")
    if isinstance(content_type, str) and _value("content_type", content_type) != content_type:
        return f"记录的文件类型：{content_type}"
    return ""


def details_in_words(
    details: dict[str, Any], documents: Mapping[str, DocumentName] | None = None
) -> str:
    """Details on one line in words (``原因: 无权查看; 需求编号: 3``); nothing for none. With
    ``documents``, the documents a detail lists by title and township (``涉及材料: 《扶贫工作总结》
    （城关镇）``)."""
    return "; ".join(f"{name}: {value}" for name, value in detail_pairs(details, documents))


def searched_as_words(meant: str) -> str:
    """How a search read its words, when that differs from what was typed: 按“2025年 总结”查找."""
    return f"按“{meant}”查找"


_SEARCH_FILTERS = ("category", "township", "period_from", "period_to", "year")


@dataclass(frozen=True)
class SearchWords:
    """A search event (services.searching) as the audit page says it: the words as typed, how
    they were read, whether the search was widened, its filters and order in words, how many
    documents it found, and the documents the searcher was shown (by number, as recorded)."""

    query: str  # as typed ("" for a search by filters alone)
    searched_as: str  # 按“…”查找, when the words were read otherwise ("" when not)
    relaxed: bool  # nothing matched every word: documents matching some of them
    conditions: str  # the filters and order chosen, in words ("" for none)
    total: int | None  # how many documents matched (None when not recorded)
    page: int  # which page of them the searcher was shown
    document_ids: tuple[str, ...]  # the documents on that page, as the searcher saw them


def search_in_words(details: Mapping[str, Any]) -> SearchWords:
    """A search event's details in words (see ``SearchWords``); what it does not record stays
    empty, and values of unexpected types are shown as recorded."""
    query = details.get("q")
    meant = details.get("searched_as")
    conditions = []
    filters = details.get("filters")
    if isinstance(filters, dict):
        known = [key for key in _SEARCH_FILTERS if filters.get(key)]
        others = sorted(key for key in filters if key not in _SEARCH_FILTERS and filters[key])
        conditions += [
            f"{DETAIL_NAMES.get(key, key)} {_value(key, filters[key])}" for key in known + others
        ]
    if details.get("sort") is not None:
        conditions.append(f"排序 {_value('sort', details['sort'])}")
    total = details.get("total")
    page = details.get("page")
    ids = details.get("document_ids")
    return SearchWords(
        query=query if isinstance(query, str) else "" if query is None else _value("q", query),
        searched_as=(
            searched_as_words(meant) if isinstance(meant, str) and meant and meant != query else ""
        ),
        relaxed=details.get("relaxed") is True,
        conditions="，".join(conditions),
        total=total if isinstance(total, int) and not isinstance(total, bool) else None,
        page=page if isinstance(page, int) and not isinstance(page, bool) and page > 0 else 1,
        document_ids=tuple(item for item in ids if isinstance(item, str))
        if isinstance(ids, list)
        else (),
    )


def recorded_text(details: Mapping[str, Any]) -> str:
    """The details exactly as recorded (sorted keys, as the event's leaf hashes them), for
    testimony beside the words."""
    return json.dumps(details, ensure_ascii=False, sort_keys=True, indent=1)


@dataclass(frozen=True)
class DocumentName:
    """A document an event names, as people know it: its title and township (also once it is
    withdrawn: the database keeps the record)."""

    id: str
    title: str
    township: str
    withdrawn: bool = False


# Where the export for people puts the document's title and township: before its number.
_TITLE_AT = CSV_HEADINGS.index("材料编号")
WORDED_CSV_HEADINGS = (
    *CSV_HEADINGS[:_TITLE_AT],
    "材料名称",
    "材料所属乡镇",
    *CSV_HEADINGS[_TITLE_AT:],
)


def document_in_words(number: str, names: Mapping[str, DocumentName]) -> str:
    """A document a detail lists, as people know it: 《扶贫工作总结》（城关镇）, or
    《扶贫工作总结》（城关镇，已撤回） once withdrawn (ID, card and phone numbers in the title
    masked, as the page shows it); its number as recorded when the database has no such
    document."""
    name = names.get(number)
    if name is None:
        return number
    township = name.township + ("，已撤回" if name.withdrawn else "")
    return f"《{mask_personal_data(name.title)[0]}》（{township}）"


def documents_named(events: Iterable[AuditEvent]) -> set[str]:
    """The numbers of the documents events name: each event's own, and those its details list."""
    numbers: set[str] = set()
    for event in events:
        if event.document_id:
            numbers.add(event.document_id)
        for key in DOCUMENT_LIST_KEYS:
            listed = event.details.get(key)
            if isinstance(listed, list):
                numbers.update(item for item in listed if isinstance(item, str) and item)
    return numbers


def worded_csv_row(event: AuditEvent, names: Mapping[str, DocumentName] | None = None) -> list[Any]:
    """A row of the export for people (under ``WORDED_CSV_HEADINGS``): names, Beijing time, the
    document's title (ID, card and phone numbers masked, as the page shows it) and township
    beside its number (both empty when the database holds no such document) and the details in
    words, the documents they list by title and township too (see ``document_in_words``)."""
    row = people_csv_row(event)
    row[9] = details_in_words(dict(event.details), names or {})
    name = (names or {}).get(event.document_id) if event.document_id else None
    shown = [mask_personal_data(name.title)[0], name.township] if name else ["", ""]
    row[_TITLE_AT:_TITLE_AT] = shown
    return row
