"""Documents as a result list shows them, read as plain columns in two queries at most.

A search answers twenty documents on every request; loading them as ORM objects (with the
township, the uploader and the departments joined in) was a large share of a search's own CPU
time. These rows carry the same attributes the API's and the web page's document views read,
and what ``services.access`` decides on.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, aliased

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
# Built once: composing a statement costs more than running it for twenty rows.
_ROWS = (
    select(*_COLUMNS, _TOWNSHIP.name.label("township_name"), User.username.label("uploader"))
    .join(_TOWNSHIP, _TOWNSHIP.id == Document.township_id)
    .join(User, User.id == Document.uploaded_by_id)
    .where(Document.id.in_(bindparam("ids", expanding=True)))
)
_DEPARTMENTS = (
    select(DocumentDepartment.document_id, Org.id, Org.name)
    .join(Org, Org.id == DocumentDepartment.org_id)
    .where(DocumentDepartment.document_id.in_(bindparam("ids", expanding=True)))
    .order_by(Org.name)  # as Document.departments is ordered
)


def listed_documents(session: Session, ids: Sequence[str]) -> dict[str, ListedDocument]:
    """The documents of these ids that exist, by id (in no particular order)."""
    if not ids:
        return {}
    rows = session.execute(_ROWS, {"ids": list(ids)}).all()
    # Only documents shared with named departments list them: usually no second query at all.
    restricted = [row[0] for row in rows if row.visibility == Visibility.restricted.value]
    departments = _departments(session, restricted) if restricted else {}
    found = {}
    for row in rows:
        values: dict[str, Any] = row._asdict()
        township_name, uploader = values.pop("township_name"), values.pop("uploader")
        found[row.id] = ListedDocument(
            **values,
            township=OrgName(row.township_id, township_name),
            uploaded_by=Uploader(uploader),
            departments=departments.get(row.id, ()),
        )
    return found


def _departments(session: Session, ids: Sequence[str]) -> dict[str, tuple[OrgName, ...]]:
    named: defaultdict[str, list[OrgName]] = defaultdict(list)
    for document_id, org_id, name in session.execute(_DEPARTMENTS, {"ids": list(ids)}):
        named[document_id].append(OrgName(org_id, name))
    return {document_id: tuple(orgs) for document_id, orgs in named.items()}
