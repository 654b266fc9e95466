"""Shapes of the "Ask once" part of the API (API.md): catalog, coverage, requests,
notifications and figures, built from domain objects."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from api.schemas import DocumentOut, OrgRef
from services import catalog, requests
from services.catalog import Coverage
from services.figures import FigureRow, FigureTable
from services.models import CatalogItem, MaterialRequest, Notification, RequestStatus
from services.notifications import NotificationPage
from services.requests import Draft


class CatalogItemIn(BaseModel):
    name: str = Field(max_length=200)
    category: str = Field(max_length=100)
    cycle: str = Field(max_length=20)
    due_days: int
    owed_from: date | None = None  # default: today; earlier periods are not owed
    townships: Literal["all"] | list[str] = "all"
    departments: list[str] = []
    sharing: str = Field(default="unconditional", max_length=20)
    description: str = Field(default="", max_length=4000)
    active: bool = True


class CatalogItemPatch(BaseModel):
    name: str | None = Field(default=None, max_length=200)
    category: str | None = Field(default=None, max_length=100)
    cycle: str | None = Field(default=None, max_length=20)
    due_days: int | None = None
    owed_from: date | None = None
    townships: Literal["all"] | list[str] | None = None
    departments: list[str] | None = None
    sharing: str | None = Field(default=None, max_length=20)
    description: str | None = Field(default=None, max_length=4000)
    active: bool | None = None


class CatalogItemOut(BaseModel):
    id: int
    name: str
    category: str
    cycle: str
    due_days: int
    owed_from: date
    townships: Literal["all"] | list[str]
    departments: list[str]
    sharing: str
    description: str
    active: bool

    @classmethod
    def of(cls, item: CatalogItem) -> CatalogItemOut:
        return cls(id=item.id, **catalog.describe(item))


class CoverageCellOut(BaseModel):
    period: str
    status: str
    document_id: str | None
    due: date | None


class CoverageRowOut(BaseModel):
    township: OrgRef
    cells: list[CoverageCellOut]


class CoverageOut(BaseModel):
    item: CatalogItemOut
    periods: list[str]
    rows: list[CoverageRowOut]

    @classmethod
    def of(cls, grid: Coverage) -> CoverageOut:
        return cls(
            item=CatalogItemOut.of(grid.item),
            periods=grid.periods,
            rows=[
                CoverageRowOut(
                    township=OrgRef(id=row.township.id, name=row.township.name),
                    cells=[
                        CoverageCellOut(
                            period=cell.period,
                            status=cell.status,
                            document_id=cell.document_id,
                            due=cell.due,
                        )
                        for cell in row.cells
                    ],
                )
                for row in grid.rows
            ],
        )


class RequestIn(BaseModel):
    township: str | int
    title: str = Field(max_length=1000)
    description: str = Field(default="", max_length=10000)
    category: str | None = Field(default=None, max_length=200)
    period: str | None = Field(default=None, max_length=40)
    due: date
    catalog_item: int | str | None = None


class AcceptIn(BaseModel):
    document_id: str = Field(max_length=64)


class JoinIn(BaseModel):
    request_id: int | str


class SendIn(BaseModel):
    reason: str = Field(default="", max_length=4000)


class RefuseIn(BaseModel):
    reason: str = Field(max_length=4000)
    document_id: str | None = Field(default=None, max_length=64)


class AnswerIn(BaseModel):
    document_ids: list[str] = Field(max_length=200)


class RequestOut(BaseModel):
    id: int
    title: str
    description: str
    category: str
    period: str | None
    due: date
    township: OrgRef
    departments: list[str]
    created_by: str
    status: str
    overdue: bool
    repeated: bool
    documents: list[str]
    joined_to: int | None
    reason: str
    refusal_document_id: str | None
    catalog_item: int | None
    matches_shown: int  # how many repository documents the draft showed its department
    created_at: datetime
    sent_at: datetime | None
    answered_at: datetime | None

    @classmethod
    def of(cls, request: MaterialRequest) -> RequestOut:
        refused = request.status == RequestStatus.refused.value
        return cls(
            id=request.id,
            title=request.title,
            description=request.description,
            category=request.category,
            period=request.period,
            due=request.due,
            township=OrgRef(id=request.township.id, name=request.township.name),
            departments=request.department_names,
            created_by=request.created_by.username,
            status=request.status,
            overdue=requests.is_overdue(request),
            repeated=request.repeated,
            documents=request.document_ids,
            joined_to=request.joined_to_id,
            reason=request.refusal_reason if refused else request.reason,
            refusal_document_id=request.refusal_document_id,
            catalog_item=request.catalog_item_id,
            matches_shown=request.matches_shown,
            created_at=request.created_at,
            sent_at=request.sent_at,
            answered_at=request.answered_at,
        )


class DraftOut(RequestOut):
    matches: list[DocumentOut]
    open_requests: list[RequestOut]

    @classmethod
    def of_draft(cls, draft: Draft) -> DraftOut:
        return cls(
            **RequestOut.of(draft.request).model_dump(),
            matches=[DocumentOut.of(document) for document in draft.matches],
            open_requests=[RequestOut.of(other) for other in draft.open_requests],
        )


class RequestListOut(BaseModel):
    total: int
    page: int
    size: int
    requests: list[RequestOut]


class NotificationOut(BaseModel):
    id: int
    kind: str
    at: datetime
    text: str
    request_id: int | None = None
    document_id: str | None = None
    read: bool

    @classmethod
    def of(cls, notification: Notification) -> NotificationOut:
        return cls(
            id=notification.id,
            kind=notification.kind,
            at=notification.at,
            text=notification.text,
            request_id=notification.request_id,
            document_id=notification.document_id,
            read=notification.read_at is not None,
        )


class NotificationListOut(BaseModel):
    total: int
    unread: int
    notifications: list[NotificationOut]

    @classmethod
    def of(cls, page: NotificationPage) -> NotificationListOut:
        return cls(
            total=page.total,
            unread=page.unread,
            notifications=[NotificationOut.of(n) for n in page.notifications],
        )


class FigureRowOut(BaseModel):
    key: str
    uploads: int
    reused_documents: int
    reuses: int
    requests: int
    answered_from_repository: int
    joined: int
    answered_by_township: int
    repeated: int
    refused: int
    overdue: int
    hours_saved: float

    @classmethod
    def of(cls, row: FigureRow) -> FigureRowOut:
        values: dict[str, Any] = row.as_dict()
        return cls(**values)


class FiguresOut(BaseModel):
    by: str
    period_from: str | None
    period_to: str | None
    rows: list[FigureRowOut]
    totals: FigureRowOut

    @classmethod
    def of(
        cls, table: FigureTable, *, period_from: str | None, period_to: str | None
    ) -> FiguresOut:
        return cls(
            by=table.by,
            period_from=period_from,
            period_to=period_to,
            rows=[FigureRowOut.of(row) for row in table.rows],
            totals=FigureRowOut.of(table.totals),
        )
