"""Validation of an upload's descriptive fields: title, file name, category, period, tags, sharing.

Each rule answers a bad value with an ``InvalidField`` naming the field, before anything is stored.
Typed text is kept in NFC, and direction controls and zero-width characters are taken out of it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy.orm import Session

from services import names, orgs
from services.errors import InvalidField
from services.models import Org, OrgKind, Visibility
from services.period_words import RELATIVE_WORDS, meant_period

MAX_TITLE = 200
MAX_FILENAME = 255
MAX_CATEGORY = 50
MAX_DESCRIPTION = 2000
MAX_TAGS = 20
MAX_TAG = 30
DEFAULT_CATEGORY = "其他"
# Optional upload field: the file's sha256, checked against the bytes that arrived.
SHA256_FIELD = "sha256"
# Optional upload field: the catalog item whose slot (township, period) the document fills.
CATALOG_ITEM_FIELD = "catalog_item"
KNOWN_FIELDS = frozenset(
    {
        "title",
        "category",
        "period",
        "tags",
        "description",
        "visibility",
        "departments",
        CATALOG_ITEM_FIELD,
        SHA256_FIELD,
    }
)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

# The ways people type a period, matched after NFKC (full-width → ASCII), upper-casing and removing
# spaces; ASCII only, because `\d` would also match other Unicode digits, which int() accepts.
# Each names its parts: year, and quarter, or month and maybe day.
_QUARTER_WORDS = {"一": "1", "二": "2", "三": "3", "四": "4"}
_PERIOD_FORMS = tuple(
    re.compile(pattern, re.ASCII)
    for pattern in (
        # 2026, 2026年
        r"(?P<year>\d{4})年?",
        # 2026-Q3, 2026年Q3, 2026年第三季度, 2026年三季度, 2026年第3季度
        r"(?P<year>\d{4})(?:-|年)Q(?P<quarter>[1-4])",
        r"(?P<year>\d{4})年第?(?P<quarter>[1-4一二三四])季度?",
        # 2026-09, 2026-9, 2026.9, 2026/09/15, 2026-09-15 (one separator throughout)
        r"(?P<year>\d{4})(?P<sep>[-./])(?P<month>\d{1,2})(?:(?P=sep)(?P<day>\d{1,2}))?",
        # 2026年9月, 2026年09月, 2026年9月15日
        r"(?P<year>\d{4})年(?P<month>\d{1,2})月(?:(?P<day>\d{1,2})[日号])?",
    )
)
PERIOD_EXAMPLES = (
    "2026、2026-Q3、2026-09、2026-09-15，或 2026年、2026年第三季度、2026年9月、2026年9月15日；"
    "也可写 去年、上季度、上月 等（按当天换算）"
)


@dataclass(frozen=True)
class _Period:
    """A valid period: a year, one of its quarters, one of its months, or one day."""

    year: int
    quarter: int | None = None
    month: int | None = None
    day: int | None = None

    def canonical(self) -> str:
        if self.quarter is not None:
            return f"{self.year}-Q{self.quarter}"
        if self.day is not None:
            return f"{self.year}-{self.month:02d}-{self.day:02d}"
        if self.month is not None:
            return f"{self.year}-{self.month:02d}"
        return str(self.year)

    def inside(self) -> tuple[list[str], list[str]]:
        """The stored periods that lie inside this one: exact values, and prefixes of longer
        ones (2026 → 2026 and 2026-…; 2026-Q3 → 2026-Q3, 2026-07 … 2026-09 and their days)."""
        canonical = self.canonical()
        if self.day is not None:
            return [canonical], []
        if self.quarter is not None:
            last = 3 * self.quarter
            months = [f"{self.year}-{month:02d}" for month in range(last - 2, last + 1)]
            return [canonical, *months], [f"{month}-" for month in months]
        return [canonical], [f"{canonical}-"]

    def label(self) -> str:
        """As people say it: 2024年第三季度, 2024年9月, 2024年9月15日, 2024年."""
        if self.quarter is not None:
            return f"{self.year}年第{'一二三四'[self.quarter - 1]}季度"
        if self.day is not None:
            return f"{self.year}年{self.month}月{self.day}日"
        if self.month is not None:
            return f"{self.year}年{self.month}月"
        return f"{self.year}年"

    @property
    def unit(self) -> str:
        """What the period spans: ``year``, ``quarter``, ``month`` or ``day``."""
        if self.quarter is not None:
            return "quarter"
        if self.day is not None:
            return "day"
        return "month" if self.month is not None else "year"

    def following(self) -> _Period:
        """The next period of the same span (2026-Q4 → 2027-Q1)."""
        if self.quarter is not None:
            year, quarter = divmod(self.year * 4 + self.quarter, 4)
            return _Period(year=year, quarter=quarter + 1)
        if self.month is not None and self.day is None:
            year, month = divmod(self.year * 12 + self.month, 12)
            return _Period(year=year, month=month + 1)
        if self.day is not None:
            after = self.bounds()[0] + timedelta(days=1)
            return _Period(year=after.year, month=after.month, day=after.day)
        return _Period(year=self.year + 1)

    def bounds(self) -> tuple[date, date]:
        if self.day is not None:
            start = date(self.year, self.month or 1, self.day)
            return start, start
        if self.month is not None:
            first_month = last_month = self.month
        elif self.quarter is not None:
            first_month, last_month = 3 * self.quarter - 2, 3 * self.quarter
        else:
            first_month, last_month = 1, 12
        after = (
            date(self.year + 1, 1, 1) if last_month == 12 else date(self.year, last_month + 1, 1)
        )
        return date(self.year, first_month, 1), after - timedelta(days=1)


@dataclass(frozen=True)
class DocumentMetadata:
    title: str
    filename: str
    category: str
    period: str | None
    tags: list[str]
    description: str
    visibility: Visibility
    departments: list[Org]


def _no_control_chars(field: str, value: str, *, allow_newlines: bool = False) -> None:
    for ch in value:
        if unicodedata.category(ch) == "Cc" and not (allow_newlines and ch in "\n\r\t"):
            raise InvalidField(field, "不能包含控制字符", code="invalid_characters")


def _shown(value: str) -> str:
    """Typed text as it will be shown: NFC, without the direction controls and zero-width
    characters that make one name display as another (报告\u202eexe.pdf), trimmed."""
    return names.without_invisible(value).strip()


def check_filename(filename: str) -> str:
    """The file name as it will be shown and offered on download; never a storage path."""
    name = _shown(filename)
    if not name:
        raise InvalidField("file", "上传的文件缺少文件名", code="missing_filename")
    _no_control_chars("file", name)
    if "/" in name or "\\" in name or ".." in name:
        raise InvalidField("file", "文件名不能包含路径分隔符或“..”", code="invalid_filename")
    if len(name) > MAX_FILENAME:
        raise InvalidField(
            "file", f"文件名不能超过 {MAX_FILENAME} 个字符", code="filename_too_long"
        )
    return name


def _parse_period(value: str, today: date | None = None) -> _Period:
    """The one rule for periods; InvalidField ``invalid_period`` for anything else.

    A word such as 去年 or 上季度 (services/period_words.py) is the period it names on ``today``,
    by default the county's date now."""
    text = re.sub(r"\s+", "", unicodedata.normalize("NFKC", value)).upper()
    if text in RELATIVE_WORDS:  # asks for the date only then: stored periods are read often
        meant = meant_period(text, today=today or _county_today())
        if meant is not None:
            return _Period(year=meant.year, quarter=meant.quarter, month=meant.month)
    match = next((m for form in _PERIOD_FORMS if (m := form.fullmatch(text))), None)
    if match is None:
        raise InvalidField("period", f"期间格式应为 {PERIOD_EXAMPLES}", code="invalid_period")
    parts = match.groupdict()
    quarter, month, day = parts.get("quarter"), parts.get("month"), parts.get("day")
    period = _Period(
        year=int(parts["year"]),
        quarter=int(_QUARTER_WORDS.get(quarter, quarter)) if quarter else None,
        month=int(month) if month else None,
        day=int(day) if day else None,
    )
    if not 1949 <= period.year <= 2100:
        raise InvalidField("period", "年份超出范围", code="invalid_period")
    try:
        date(
            period.year,
            1 if period.month is None else period.month,
            1 if period.day is None else period.day,
        )
    except ValueError as exc:
        raise InvalidField("period", "期间不是有效日期", code="invalid_period") from exc
    return period


def check_period(value: str, *, today: date | None = None) -> str:
    """A period in its stored form: 2020, 2020-Q3, 2020-09 or 2020-09-15.

    Accepts it as people type it, too: full-width digits and letters (Chinese input methods),
    surrounding spaces, 2020年、2020年第三季度、2020年三季度、2020年Q3、2020年9月、2020年9月15日,
    2020.9, 2020/9, 2020/09/15 and 2020-9; and 今年、去年、前年、本季度、上季度、本月、上月 …,
    stored as the period they name on ``today`` (the county's date by default): never the word.
    """
    return _parse_period(value, today).canonical()


def _county_today() -> date:
    """The county's date now, as the catalog and requests count it."""
    from services.catalog import county_today  # services.catalog imports this module

    return county_today()


def period_label(period: str | None) -> str:
    """A period as people say it (2024-Q3 → 2024年第三季度); what is no period stays as it is."""
    if not period:
        return ""
    try:
        return _parse_period(period).label()
    except InvalidField:
        return period


def periods_inside(period: str) -> tuple[list[str], list[str]]:
    """For filtering stored periods by one people typed: exact values and prefixes that lie
    inside it (a year finds its quarters, months and days)."""
    return _parse_period(period).inside()


def period_bounds(period: str) -> tuple[date, date]:
    """The first and last day a valid period covers: 2020-Q3 → 2020-07-01 … 2020-09-30."""
    return _parse_period(period).bounds()


def period_unit(period: str) -> str:
    """What a valid period spans: ``year``, ``quarter``, ``month`` or ``day``."""
    return _parse_period(period).unit


def period_containing(day: date, unit: str) -> str:
    """The period of the given span that contains a day (2026-08-15, quarter → 2026-Q3)."""
    if unit == "quarter":
        return _Period(year=day.year, quarter=(day.month - 1) // 3 + 1).canonical()
    if unit == "month":
        return _Period(year=day.year, month=day.month).canonical()
    if unit == "day":
        return _Period(year=day.year, month=day.month, day=day.day).canonical()
    return _Period(year=day.year).canonical()


def periods_from_to(first: str, last: str, *, limit: int) -> list[str]:
    """Consecutive periods of one span from ``first`` to ``last`` inclusive, at most ``limit``."""
    period, end = _parse_period(first), _parse_period(last)
    if period.unit != end.unit:
        raise InvalidField("period_to", "起止期间的类型须一致", code="invalid_period")
    found: list[str] = []
    while period.bounds()[0] <= end.bounds()[0] and len(found) < limit:
        found.append(period.canonical())
        period = period.following()
    return found


def _split_list(value: str) -> list[str]:
    return [item.strip() for item in re.split(r"[,，、]", value) if item.strip()]


def normalize_sha256(value: str) -> str | None:
    """A sha256 as 64 lower-case hex digits, or None when the value is not one."""
    digest = value.strip().lower()
    return digest if _SHA256.match(digest) else None


def parse_sha256(value: str) -> str:
    """A sha256 field's value, normalised; InvalidField when it is not 64 hex digits."""
    digest = normalize_sha256(value)
    if digest is None:
        raise InvalidField(SHA256_FIELD, "sha256 须为 64 位十六进制字符串", code="invalid_sha256")
    return digest


def parse_metadata(
    session: Session, *, fields: dict[str, str], filename: str, township: Org
) -> DocumentMetadata:
    """Validate the form fields of an upload against the rules and the known organisations."""
    unknown = sorted(set(fields) - KNOWN_FIELDS)
    if unknown:
        raise InvalidField(unknown[0], f"未知字段：{unknown[0]}", code="unknown_field")
    name = check_filename(filename)

    title = _shown(fields.get("title", "")) or name.rsplit(".", 1)[0] or name
    _no_control_chars("title", title)
    if len(title) > MAX_TITLE:
        raise InvalidField("title", f"标题不能超过 {MAX_TITLE} 个字符", code="too_long")

    category = _shown(fields.get("category", "")) or DEFAULT_CATEGORY
    _no_control_chars("category", category)
    if len(category) > MAX_CATEGORY:
        raise InvalidField("category", f"类别不能超过 {MAX_CATEGORY} 个字符", code="too_long")
    defined = {c.name for c in orgs.list_categories(session)}
    if defined and category not in defined:
        raise InvalidField(
            "category", f"类别须为以下之一：{'、'.join(sorted(defined))}", code="unknown_category"
        )

    period_text = fields.get("period", "").strip()
    period = check_period(period_text) if period_text else None

    tags = list(dict.fromkeys(_split_list(_shown(fields.get("tags", "")))))
    if len(tags) > MAX_TAGS or any(len(tag) > MAX_TAG for tag in tags):
        raise InvalidField(
            "tags", f"最多 {MAX_TAGS} 个标签，每个不超过 {MAX_TAG} 个字符", code="too_long"
        )
    for tag in tags:
        _no_control_chars("tags", tag)

    description = _shown(fields.get("description", ""))
    _no_control_chars("description", description, allow_newlines=True)
    if len(description) > MAX_DESCRIPTION:
        raise InvalidField("description", f"说明不能超过 {MAX_DESCRIPTION} 个字符", code="too_long")

    visibility_text = fields.get("visibility", "").strip() or Visibility.departments.value
    try:
        visibility = Visibility(visibility_text)
    except ValueError as exc:
        raise InvalidField(
            "visibility",
            "可见范围须为 departments、restricted 或 private",
            code="invalid_visibility",
        ) from exc
    departments = _departments(session, fields.get("departments", ""), visibility)
    return DocumentMetadata(
        title, name, category, period, tags, description, visibility, departments
    )


def _departments(session: Session, value: str, visibility: Visibility) -> list[Org]:
    refs = _split_list(value)
    if visibility is not Visibility.restricted:
        if refs:
            raise InvalidField(
                "departments",
                "只有 restricted 可见范围才能指定部门",
                code="departments_not_allowed",
            )
        return []
    if not refs:
        raise InvalidField(
            "departments", "restricted 可见范围须指定至少一个部门", code="departments_required"
        )
    found: dict[int, Org] = {}
    for ref in refs:
        org = orgs.find_org(session, ref)
        if org is None or org.kind != OrgKind.department.value:
            raise InvalidField("departments", f"部门不存在：{ref}", code="unknown_department")
        found[org.id] = org
    return sorted(found.values(), key=lambda org: org.name)
