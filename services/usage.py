"""Who used a document: its views and downloads per department, recomputed from the audit log.

Counts are per department, never per reader; a department that downloaded it counts as a reuse.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select

from services import access
from services.access import Principal
from services.audit import AuditAction, Outcome
from services.backends import Backends
from services.documents import actor_of, load_visible
from services.models import AuditEvent, Role

# What counts as using a material: reading its metadata or fetching its bytes, when allowed.
_USES = (AuditAction.view, AuditAction.download)


@dataclass(frozen=True)
class DepartmentUsage:
    """How one department used one document, and over which span of time."""

    name: str
    views: int
    downloads: int
    first_at: datetime
    last_at: datetime


@dataclass(frozen=True)
class DocumentUsage:
    """Every department that used a document, by name."""

    document_id: str
    departments: list[DepartmentUsage]

    @property
    def reuse_count(self) -> int:
        """How many departments downloaded the document at least once."""
        return sum(1 for department in self.departments if department.downloads > 0)


def document_usage(
    backends: Backends, *, principal: Principal, document_id: str, ip: str | None
) -> DocumentUsage:
    """Which departments viewed and downloaded a document, for its own township and auditors."""
    document = load_visible(
        backends,
        principal=principal,
        document_id=document_id,
        action=AuditAction.usage_read,
        ip=ip,
        rule=access.can_see_usage,
    )
    departments = department_usage(backends, document_id=document.id)
    backends.audit.record(
        actor=actor_of(principal, ip),
        action=AuditAction.usage_read,
        outcome=Outcome.allowed,
        document_id=document.id,
        details={"departments": len(departments)},
    )
    return DocumentUsage(document_id=document.id, departments=departments)


def department_usage(backends: Backends, *, document_id: str) -> list[DepartmentUsage]:
    """The allowed views and downloads of a document by readers, summed per department by name."""
    views = func.sum(case((AuditEvent.action == AuditAction.view.value, 1), else_=0))
    downloads = func.sum(case((AuditEvent.action == AuditAction.download.value, 1), else_=0))
    query = (
        select(
            AuditEvent.org,
            views,
            downloads,
            func.min(AuditEvent.at),
            func.max(AuditEvent.at),
        )
        .where(
            AuditEvent.document_id == document_id,
            AuditEvent.action.in_([action.value for action in _USES]),
            AuditEvent.outcome == Outcome.allowed.value,
            AuditEvent.role == Role.reader.value,
            AuditEvent.org.is_not(None),
        )
        .group_by(AuditEvent.org)
    )
    with backends.db.session() as session:
        rows = session.execute(query).all()
    # Sorted here, not in SQL: databases collate Chinese names differently.
    return sorted(
        (
            DepartmentUsage(
                name=org,
                views=int(view_count),
                downloads=int(download_count),
                first_at=first_at,
                last_at=last_at,
            )
            for org, view_count, download_count, first_at, last_at in rows
        ),
        key=lambda department: department.name,
    )
