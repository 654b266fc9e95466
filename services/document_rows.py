"""Documents as a result list shows them, read as plain columns in one query.

A search answers twenty documents on every request; loading them as ORM objects (with the
township, the uploader and the departments joined in) was a large share of a search's own CPU
time. These rows, read in one query, carry the same attributes the API's and the web page's
document views read, and what ``services.access`` decides on.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, select
from sqlalchemy.orm import aliased

from services.models import Document, DocumentDepartment, Org, User, Visibility

__all__ = ["ListedDocument", "OrgName", "Uploader", "listed_documents"]


@dataclass(frozen=True, slots=True)
class OrgName:
    id: int
    name: str


@dataclass(frozen=True, slots=True)
class Uploader:
    username: str


@dataclass(frozen=True, slots=True)
class ListedDocument:
    """A document's row, its township's and uploader's names and (restricted only) its
    departments, by name: the attributes of ``services.models.Document`` a list shows."""

    id: str
    title: str
    filename: str
    content_type: str
    size: int
    sha256: str
    category: str
    period: str | None
    tags: list[str]
    description: str
    visibility: str
    township_id: int
    created_at: datetime
    version: int
    index_status: str
    withdrawn_at: datetime | None
    index_error: str | None
    text_source: str | None
    scan_status: str
    scan_detail: str | None
    contains_personal_data: bool
    exif: dict[str, object] | None
    catalog_item_id: int | None
    township: OrgName
    uploaded_by: Uploader
    departments: tuple[OrgName, ...]

    @property
    def department_ids(self) -> frozenset[int]:
        return frozenset(org.id for org in self.departments)


# The row's own columns, named as ListedDocument's fields.
_COLUMNS = (
    Document.id,
    Document.title,
    Document.filename,
    Document.content_type,
    Document.size,
    Document.sha256,
    Document.category,
    Document.period,
    Document.tags,
    Document.description,
    Document.visibility,
    Document.township_id,
    Document.created_at,
    Document.version,
    Document.index_status,
    Document.withdrawn_at,
    Document.index_error,
    Document.text_source,
    Document.scan_status,
    Document.scan_detail,
    Document.contains_personal_data,
    Document.exif,
    Document.catalog_item_id,
)


_TOWNSHIP = aliased(Org)
_DEPARTMENT = aliased(Org)
# Built once: composing a statement costs more than running it for twenty rows. A restricted
# document comes once for each department it is shared with (in the order of their names, as
# Document.departments is ordered), the others once: one query, one round trip.
_ROWS = (
    select(
        *_COLUMNS,
        _TOWNSHIP.name.label("township_name"),
        User.username.label("uploader"),
        _DEPARTMENT.id.label("department_id"),
        _DEPARTMENT.name.label("department_name"),
    )
    .join(_TOWNSHIP, _TOWNSHIP.id == Document.township_id)
    .join(User, User.id == Document.uploaded_by_id)
    .outerjoin(
        DocumentDepartment,
        and_(
            DocumentDepartment.document_id == Document.id,
            Document.visibility == Visibility.restricted.value,
        ),
    )
    .outerjoin(_DEPARTMENT, _DEPARTMENT.id == DocumentDepartment.org_id)
    .where(Document.id.in_(bindparam("ids", expanding=True)))
    .order_by(Document.id, _DEPARTMENT.name)
)


def listed_documents(connection: Connection, ids: Sequence[str]) -> dict[str, ListedDocument]:
    """The documents of these ids that exist, by id (in no particular order)."""
    if not ids:
        return {}
    found: dict[str, ListedDocument] = {}
    departments: defaultdict[str, list[OrgName]] = defaultdict(list)
    for row in connection.execute(_ROWS, {"ids": list(ids)}):
        if row.department_id is not None:
            departments[row.id].append(OrgName(row.department_id, row.department_name))
        if row.id in found:
            continue
        values: dict[str, Any] = row._asdict()
        township_name, uploader = values.pop("township_name"), values.pop("uploader")
        del values["department_id"], values["department_name"]
        found[row.id] = ListedDocument(
            **values,
            township=OrgName(row.township_id, township_name),
            uploaded_by=Uploader(uploader),
            departments=(),
        )
    for document_id, orgs in departments.items():
        found[document_id] = replace(found[document_id], departments=tuple(orgs))
    return found
