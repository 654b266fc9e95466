"""Burden-reduction figures (减负成效), computed from what the system saw.

Per township, department or the whole county over a span of periods:
- ``uploads``: documents a township submitted (identical bytes sent again are not counted);
- ``reuses``: downloads of a document by a department, once per (document, department);
  ``reused_documents``: documents with at least one;
- ``requests``: requests that left their draft (answered from the repository, joined, or sent);
  ``answered_from_repository``, ``joined``: those the township never had to answer;
- ``answered_by_township``, ``repeated`` (answered only with documents older than the request),
  ``refused`` (by a coordinator), ``overdue`` (found past their due date);
- ``hours_saved`` = (answered_from_repository + joined) × hours per request
  + reuses × hours per reuse.
A request counts for its township and for the department that created it. Each figure is counted
at the moment of its audit event (request rows keep those moments), so every figure can be rebuilt
from the audit log alone.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, select, true
from sqlalchemy.orm import InstrumentedAttribute, Session

from services import access
from services.access import Principal
from services.audit import Actor, AuditAction, Outcome
from services.backends import Backends
from services.documents import actor_of
from services.errors import Forbidden, InvalidField
from services.metadata import period_bounds, period_containing, periods_from_to
from services.models import (
    COUNTY_TIME,
    AuditEvent,
    Document,
    MaterialRequest,
    Org,
    OrgKind,
    RequestStatus,
    Role,
)

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
COLUMNS = ("key", *COUNTS, "hours_saved")
# What people call them: table headings and the CSV for people.
COLUMN_NAMES: dict[str, str] = {
    "key": "单位",
    "uploads": "上传材料",
    "reused_documents": "被复用材料",
    "reuses": "复用次数",
    "requests": "材料需求",
    "answered_from_repository": "库内直接获取",
    "joined": "并入同类需求",
    "answered_by_township": "乡镇答复",
    "repeated": "重复索要",
    "refused": "未予准入",
    "overdue": "逾期需求",
    "hours_saved": "节省工时（小时）",
}
GROUPINGS = ("township", "department", "county")
GROUPING_NAMES = {"township": "按乡镇", "department": "按部门", "county": "全县合计"}
COUNTY_KEY = "全县"


@dataclass(frozen=True)
class Window:
    """A span of time, from the first day of one period to the last of another (Beijing days)."""

    start: datetime | None
    end: datetime | None  # exclusive

    def clause(self, column: InstrumentedAttribute[Any]) -> ColumnElement[bool]:
        conditions: list[ColumnElement[bool]] = [column.is_not(None)]
        if self.start is not None:
            conditions.append(column >= self.start)
        if self.end is not None:
            conditions.append(column < self.end)
        return and_(true(), *conditions)


def window(period_from: str | None, period_to: str | None) -> Window:
    """The moments between the start of ``period_from`` and the end of ``period_to``."""

    def midnight(day: Any) -> datetime:
        return datetime.combine(day, time(), tzinfo=COUNTY_TIME)

    start = midnight(period_bounds(period_from)[0]) if period_from else None
    end = midnight(period_bounds(period_to)[1] + timedelta(days=1)) if period_to else None
    if start is not None and end is not None and start >= end:
        raise InvalidField("period_from", "开始期间不能晚于结束期间", code="invalid_period")
    return Window(start, end)


@dataclass
class FigureRow:
    key: str
    counts: Counter[str] = field(default_factory=Counter)
    hours_saved: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            **{name: self.counts[name] for name in COUNTS},
            "hours_saved": self.hours_saved,
        }


@dataclass(frozen=True)
class FigureTable:
    by: str
    rows: list[FigureRow]
    totals: FigureRow

    def lines(self) -> list[FigureRow]:
        """The rows, then the totals, unless the totals are a row already (by county, or an
        organisation's own row)."""
        if any(row is self.totals for row in self.rows):
            return list(self.rows)
        return [*self.rows, self.totals]


def figures(
    backends: Backends,
    *,
    principal: Principal,
    period_from: str | None,
    period_to: str | None,
    by: str | None,
    ip: str | None,
) -> FigureTable:
    """The figures per township, department or county; a township or department reads only its
    own row, coordinators, auditors and admins every row."""
    everything = access.can_read_all_figures(principal)
    own_grouping = access.own_figures_grouping(principal)
    grouping = by or own_grouping or "township"
    if grouping not in GROUPINGS:
        raise InvalidField("by", "by 须为 township、department 或 county", code="invalid_by")
    if not everything and own_grouping != grouping:
        backends.audit.record(
            actor=actor_of(principal, ip),
            action=AuditAction.figures_read,
            outcome=Outcome.denied,
            details={"reason": "not_own_figures", "by": grouping},
        )
        raise Forbidden("只能查看本单位的减负成效", code="figures_not_allowed")
    table = _table(backends, period_from=period_from, period_to=period_to, by=grouping)
    if not everything:
        own = [row for row in table.rows if row.key == principal.org_name]
        own_row = own[0] if own else FigureRow(principal.org_name)
        table = FigureTable(by=grouping, rows=[own_row], totals=own_row)
    backends.audit.record(
        actor=actor_of(principal, ip),
        action=AuditAction.figures_read,
        outcome=Outcome.allowed,
        details={"by": grouping, "period_from": period_from, "period_to": period_to},
    )
    return table


def for_console(
    backends: Backends,
    *,
    actor: Actor,
    period_from: str | None,
    period_to: str | None,
    by: str,
) -> FigureTable:
    """Every row, for an operator on the server console (``materials figures``), audited as
    them: the same table the API gives a coordinator."""
    if by not in GROUPINGS:
        raise InvalidField("by", "by 须为 township、department 或 county", code="invalid_by")
    table = _table(backends, period_from=period_from, period_to=period_to, by=by)
    backends.audit.record(
        actor=actor,
        action=AuditAction.figures_read,
        outcome=Outcome.allowed,
        details={"by": by, "period_from": period_from, "period_to": period_to},
    )
    return table


def _table(
    backends: Backends, *, period_from: str | None, period_to: str | None, by: str
) -> FigureTable:
    """Every row of one grouping and the totals, with the hours saved."""
    span = window(period_from, period_to)
    with backends.db.session() as session:
        table = compute(session, span=span, by=by)
    for row in (*table.rows, table.totals):
        row.hours_saved = hours_saved(
            row.counts,
            per_request=backends.settings.hours_per_request,
            per_reuse=backends.settings.hours_per_reuse,
        )
    return table


def hours_saved(counts: Counter[str], *, per_request: float, per_reuse: float) -> float:
    saved = (counts["answered_from_repository"] + counts["joined"]) * per_request
    return round(saved + counts["reuses"] * per_reuse, 2)


def compute(session: Session, *, span: Window, by: str) -> FigureTable:
    """Every row of one grouping, and the county's totals, counted inside the window."""
    kind = {"township": OrgKind.township, "department": OrgKind.department}.get(by)
    names = {org.id: org.name for org in session.scalars(select(Org))}
    keyed: dict[str, FigureRow] = {}
    if kind is not None:
        for org in session.scalars(select(Org).where(Org.kind == kind.value)):
            keyed[org.name] = FigureRow(org.name)
    totals = FigureRow(COUNTY_KEY)

    def add(figure: str, township_id: int | None, department: str | None) -> None:
        totals.counts[figure] += 1
        key = {"township": names.get(township_id or -1), "department": department}.get(by)
        if kind is None:
            return
        if key is not None:
            keyed.setdefault(key, FigureRow(key)).counts[figure] += 1

    for (township_id,) in session.execute(
        select(Document.township_id).where(span.clause(Document.created_at))
    ):
        add("uploads", township_id, None)

    reuses = _reuses(session, span)
    document_townships: dict[str, int] = dict(
        session.execute(
            select(Document.id, Document.township_id).where(
                Document.id.in_({document_id for document_id, _ in reuses})
            )
        ).all()
    )
    reused: set[tuple[str, str | None]] = set()
    for document_id, department in sorted(reuses):
        owner = document_townships.get(document_id)
        add("reuses", owner, department)
        group = {"township": str(owner), "department": department}.get(by)
        if (document_id, group) not in reused:
            reused.add((document_id, group))
            add("reused_documents", owner, department)
    # The county's reused documents count each document once, whichever department reused it.
    totals.counts["reused_documents"] = len({document_id for document_id, _ in reuses})

    _count_requests(session, span, names, add)
    rows = sorted(keyed.values(), key=lambda row: row.key) if kind is not None else [totals]
    return FigureTable(by=by, rows=rows, totals=totals)


def _reuses(session: Session, span: Window) -> set[tuple[str, str]]:
    """(document, department) pairs with at least one allowed download in the window."""
    rows = session.execute(
        select(AuditEvent.document_id, AuditEvent.org)
        .where(
            AuditEvent.action == AuditAction.download.value,
            AuditEvent.outcome == Outcome.allowed.value,
            AuditEvent.role == Role.reader.value,
            AuditEvent.document_id.is_not(None),
            AuditEvent.org.is_not(None),
            span.clause(AuditEvent.at),
        )
        .distinct()
    ).all()
    return {(str(document_id), str(org)) for document_id, org in rows}


def _count_requests(
    session: Session,
    span: Window,
    names: dict[int, str],
    add: Callable[[str, int | None, str | None], None],
) -> None:
    status = MaterialRequest.status
    moments: tuple[tuple[str, InstrumentedAttribute[Any], ColumnElement[bool]], ...] = (
        ("requests", MaterialRequest.decided_at, status != RequestStatus.draft.value),
        (
            "answered_from_repository",
            MaterialRequest.decided_at,
            status == RequestStatus.answered_from_repository.value,
        ),
        ("joined", MaterialRequest.decided_at, status == RequestStatus.joined.value),
        (
            "answered_by_township",
            MaterialRequest.answered_at,
            status == RequestStatus.answered.value,
        ),
        (
            "repeated",
            MaterialRequest.answered_at,
            and_(status == RequestStatus.answered.value, MaterialRequest.repeated.is_(True)),
        ),
        ("refused", MaterialRequest.refused_at, true()),
        ("overdue", MaterialRequest.overdue_at, true()),
    )
    for figure, moment, condition in moments:
        rows = session.execute(
            select(MaterialRequest.township_id, MaterialRequest.department_id).where(
                condition, span.clause(moment)
            )
        ).all()
        for township_id, department_id in rows:
            add(figure, township_id, names.get(department_id))


def csv_value(value: Any) -> Any:
    """A figure as the CSV writes it: whole hours as whole numbers (13, not 13.0), as the page
    shows them; fractions as they are (12.5)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def csv_filename(by: str, period_from: str | None, period_to: str | None, today: date) -> str:
    """The CSV's file name, naming the days it covers:
    ``减负成效-按乡镇-2026-01-01至2026-12-01.csv`` (up to today while the chosen span still runs),
    or ``减负成效-按乡镇-截至2026-12-01.csv`` for everything until then. The periods are valid
    (``figures`` has checked them)."""
    start = period_bounds(period_from)[0] if period_from else None
    end = period_bounds(period_to)[1] if period_to else today
    if end > today >= (start or today):
        end = today
    span = f"{start.isoformat()}至{end.isoformat()}" if start else f"截至{end.isoformat()}"
    return f"减负成效-{GROUPING_NAMES[by]}-{span}.csv"


def to_csv(table: FigureTable, *, for_people: bool = False) -> Iterator[bytes]:
    """The table as CSV in UTF-8 with a BOM (for Excel), the totals last."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([COLUMN_NAMES[c] for c in COLUMNS] if for_people else COLUMNS)
    for row in table.lines():
        values = row.as_dict()
        writer.writerow([csv_value(values[column]) for column in COLUMNS])
    yield "\ufeff".encode()
    yield buffer.getvalue().encode()


MAX_MONTHS = 36


def by_month(
    backends: Backends,
    *,
    principal: Principal,
    period_from: str | None,
    period_to: str | None,
    ip: str | None,
    today: date | None = None,
) -> list[tuple[str, FigureRow]]:
    """Month by month over the span (by default the last twelve months): the county's totals for
    those who read every row, the caller's own township or department otherwise."""
    everything = access.can_read_all_figures(principal)
    grouping = access.own_figures_grouping(principal)
    if not everything and grouping is None:
        raise Forbidden("只能查看本单位的减负成效", code="figures_not_allowed")
    now = today or datetime.now(COUNTY_TIME).date()
    last = period_containing(period_bounds(period_to)[1] if period_to else now, "month")
    if period_from:
        first = period_containing(period_bounds(period_from)[0], "month")
    else:
        first = period_containing(period_bounds(last)[0] - timedelta(days=330), "month")
    window(first, last)  # refuses a span that ends before it starts
    months = periods_from_to(first, last, limit=MAX_MONTHS)
    found: list[tuple[str, FigureRow]] = []
    with backends.db.session() as session:
        for month in months:
            table = compute(session, span=window(month, month), by=grouping or "county")
            if everything:
                row = table.totals
            else:
                own = [r for r in table.rows if r.key == principal.org_name]
                row = own[0] if own else FigureRow(principal.org_name)
            row.hours_saved = hours_saved(
                row.counts,
                per_request=backends.settings.hours_per_request,
                per_reuse=backends.settings.hours_per_reuse,
            )
            found.append((month, row))
    backends.audit.record(
        actor=actor_of(principal, ip),
        action=AuditAction.figures_read,
        outcome=Outcome.allowed,
        details={"by": "month", "period_from": first, "period_to": last},
    )
    return found
