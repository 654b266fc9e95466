"""Audit routes: events with filters, CSV export, verification and proofs for auditors; the
signed checkpoint and the public key for anyone signed in."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import PlainTextResponse, StreamingResponse

from api.deps import BackendsDep, ClientIP, CurrentUser, PageNumber
from api.errors import error_responses
from api.schemas import (
    CSV_RESPONSES,
    AuditEventOut,
    AuditPageOut,
    ConsistencyProofOut,
    InclusionProofOut,
    VerifyOut,
)
from services import audit_access
from services.audit import AuditFilter, Outcome

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])

MAX_AUDIT_PAGE_SIZE = 500


def _filters(
    actor: Annotated[str | None, Query(max_length=200)] = None,
    org: Annotated[str | None, Query(max_length=100)] = None,
    document_id: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=40)] = None,
    outcome: Annotated[Outcome | None, Query()] = None,
    since: Annotated[datetime | None, Query()] = None,
    until: Annotated[datetime | None, Query()] = None,
) -> AuditFilter:
    return audit_access.make_filter(
        actor=actor,
        org=org,
        document_id=document_id,
        action=action,
        outcome=outcome,
        since=since,
        until=until,
    )


AuditFilters = Annotated[AuditFilter, Depends(_filters)]


@router.get("/events", response_model=AuditPageOut)
def list_events(
    user: CurrentUser,
    backends: BackendsDep,
    ip: ClientIP,
    filters: AuditFilters,
    page: PageNumber = 1,
    size: Annotated[int, Query(ge=1, le=MAX_AUDIT_PAGE_SIZE)] = 50,
) -> AuditPageOut:
    """Audit events matching the filters, newest first."""
    found = audit_access.read_events(
        backends, principal=user, filters=filters, page=page, size=size, ip=ip
    )
    return AuditPageOut(
        total=found.total,
        page=page,
        size=size,
        events=[AuditEventOut.of(event) for event in found.events],
    )


@router.get(
    "/export.csv",
    response_class=StreamingResponse,
    responses=CSV_RESPONSES,
)
def export_events(
    user: CurrentUser,
    backends: BackendsDep,
    ip: ClientIP,
    filters: AuditFilters,
    labels: Annotated[
        Literal["codes", "zh"],
        Query(description="codes：原始代码与 UTC 时间；zh：中文表头、中文名称与北京时间"),
    ] = "codes",
) -> StreamingResponse:
    """The matching events as CSV (UTF-8 with BOM, opens in Excel); `labels=zh` for people."""
    rows = audit_access.export_events(
        backends, principal=user, filters=filters, ip=ip, for_people=labels == "zh"
    )
    return csv_response(rows)


def csv_response(rows: Iterator[bytes]) -> StreamingResponse:
    """The log's CSV as a download named 审计日志.csv (audit-events.csv for old browsers), never
    kept by a cache: the API's export and the audit page's."""
    return StreamingResponse(
        rows,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="audit-events.csv"; '
            "filename*=UTF-8''%E5%AE%A1%E8%AE%A1%E6%97%A5%E5%BF%97.csv",
            "Cache-Control": "private, no-store",
        },
    )


@router.get("/verify", response_model=VerifyOut)
def verify_log(user: CurrentUser, backends: BackendsDep, ip: ClientIP) -> VerifyOut:
    """Recompute the Merkle tree from the events and hold it against every signed checkpoint
    (database, object store); name the first event edited, deleted, inserted or reordered."""
    return VerifyOut.of(audit_access.verify(backends, principal=user, ip=ip))


TreeSize = Annotated[int, Query(ge=0, le=2**62)]
# Plain text on success; errors stay the JSON error shape every route answers with.
_TEXT: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/plain": {"schema": {"type": "string"}}}}
}
_NO_STORE = {"Cache-Control": "private, no-store"}


@router.get(
    "/checkpoint",
    response_model=None,
    responses={**_TEXT, **error_responses(404)},
)
def get_checkpoint(
    _user: CurrentUser,
    backends: BackendsDep,
    size: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> PlainTextResponse:
    """The newest signed checkpoint (or the one of tree size `size`): a C2SP tlog-checkpoint
    signed as a C2SP signed note with Ed25519."""
    note = audit_access.checkpoint(backends, size=size)
    return PlainTextResponse(note, headers=_NO_STORE)


@router.get("/public-key", response_model=None, responses={**_TEXT, **error_responses(503)})
def get_public_key(_user: CurrentUser, backends: BackendsDep) -> PlainTextResponse:
    """The note verifier key checkpoints are signed with: `<name>+<hex key id>+<base64 key>`."""
    return PlainTextResponse(audit_access.verifier(backends).text() + "\n")


@router.get("/proof/inclusion", response_model=InclusionProofOut, responses=error_responses(422))
def get_inclusion_proof(
    user: CurrentUser,
    backends: BackendsDep,
    ip: ClientIP,
    leaf_index: Annotated[int, Query(ge=0, le=2**62)],
    tree_size: Annotated[int, Query(ge=1, le=2**62)],
) -> InclusionProofOut:
    """RFC 9162 inclusion proof of a leaf in the tree of `tree_size` leaves."""
    proof = audit_access.inclusion_proof(
        backends, principal=user, leaf_index=leaf_index, tree_size=tree_size, ip=ip
    )
    return InclusionProofOut.of(proof)


@router.get(
    "/proof/consistency",
    response_model=ConsistencyProofOut,
    response_model_by_alias=True,
    responses=error_responses(422),
)
def get_consistency_proof(
    user: CurrentUser,
    backends: BackendsDep,
    ip: ClientIP,
    first: Annotated[TreeSize, Query(alias="from")],
    second: Annotated[TreeSize, Query(alias="to")],
) -> ConsistencyProofOut:
    """RFC 9162 consistency proof: the tree of `from` leaves is a prefix of the one of `to`."""
    proof = audit_access.consistency_proof(
        backends, principal=user, first=first, second=second, ip=ip
    )
    return ConsistencyProofOut.of(proof)
