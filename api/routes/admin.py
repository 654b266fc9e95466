"""Organisations, users, categories and download grants (changes are admin-only; an admin's
change to an auditor or admin account, and a download grant, waits for a second person)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.deps import BackendsDep, ClientIP, CurrentUser
from api.errors import error_responses
from api.schemas import (
    CategoryIn,
    CategoryOut,
    DbId,
    GrantIn,
    GrantOut,
    OrgIn,
    OrgOut,
    PasswordResetIn,
    PendingAccountOut,
    UserIn,
    UserOut,
    UserRenameIn,
)
from services import administration

router = APIRouter(prefix="/api/v1", tags=["administration"])


@router.get("/orgs", response_model=list[OrgOut])
def list_orgs(
    _user: CurrentUser,
    backends: BackendsDep,
    kind: Annotated[str | None, Query(max_length=20)] = None,
) -> list[OrgOut]:
    return [OrgOut.of(org) for org in administration.list_orgs(backends, kind=kind)]


@router.post(
    "/orgs",
    response_model=OrgOut,
    status_code=201,
    responses={
        200: {"model": OrgOut, "description": "已存在，未改动 / Already there, unchanged"},
        **error_responses(409),
    },
)
def create_org(
    body: OrgIn, response: Response, user: CurrentUser, backends: BackendsDep, ip: ClientIP
) -> OrgOut:
    org, created = administration.create_org(
        backends, principal=user, name=body.name, kind=body.kind, parent=body.parent, ip=ip
    )
    if not created:
        response.status_code = 200
    return OrgOut.of(org)


@router.get("/users", response_model=list[UserOut])
def list_users(user: CurrentUser, backends: BackendsDep, ip: ClientIP) -> list[UserOut]:
    return [UserOut.of(u) for u in administration.list_users(backends, principal=user, ip=ip)]


@router.post(
    "/users",
    response_model=UserOut,
    status_code=201,
    responses={
        200: {"model": UserOut, "description": "已存在，未改动 / Already there, unchanged"},
        **error_responses(409),
    },
)
def create_user(
    body: UserIn, response: Response, user: CurrentUser, backends: BackendsDep, ip: ClientIP
) -> UserOut:
    created_user, created = administration.create_user(
        backends,
        principal=user,
        username=body.username,
        password=body.password,
        org=body.org,
        role=body.role,
        ip=ip,
        display_name=body.display_name,
    )
    if not created:
        response.status_code = 200
    return UserOut.of(created_user)


@router.patch("/users/{username}", response_model=UserOut, responses=error_responses(404))
def rename_user(
    username: str, body: UserRenameIn, user: CurrentUser, backends: BackendsDep, ip: ClientIP
) -> UserOut:
    """Set or change an account's display name (姓名; "" takes it away); the username stays."""
    return UserOut.of(
        administration.rename_user(
            backends, principal=user, username=username, display_name=body.display_name, ip=ip
        )
    )


@router.get("/users/pending", response_model=list[PendingAccountOut])
def list_pending_accounts(
    user: CurrentUser, backends: BackendsDep, ip: ClientIP
) -> list[PendingAccountOut]:
    """The accounts waiting for the caller's kind of confirmation: auditor accounts for
    auditors, admin accounts for admins."""
    return [
        PendingAccountOut.of_pending(pending)
        for pending in administration.list_pending_accounts(backends, principal=user, ip=ip)
    ]


@router.post(
    "/users/{username}/confirm", response_model=UserOut, responses=error_responses(404, 409)
)
def confirm_user(username: str, user: CurrentUser, backends: BackendsDep, ip: ClientIP) -> UserOut:
    """Confirm an admin's creating, enabling or resetting an auditor account (an auditor) or an
    admin account (another admin); never one's own request or one's own account."""
    return UserOut.of(
        administration.confirm_user(backends, principal=user, username=username, ip=ip)
    )


@router.post(
    "/users/{username}/disable", response_model=UserOut, responses=error_responses(404, 409)
)
def disable_user(username: str, user: CurrentUser, backends: BackendsDep, ip: ClientIP) -> UserOut:
    """Disable an account: its tokens stop working at once (an admin cannot disable themself)."""
    return UserOut.of(
        administration.set_user_active(
            backends, principal=user, username=username, active=False, ip=ip
        )
    )


@router.post(
    "/users/{username}/enable", response_model=UserOut, responses=error_responses(404, 409)
)
def enable_user(username: str, user: CurrentUser, backends: BackendsDep, ip: ClientIP) -> UserOut:
    """Enable a disabled account again (its user signs in anew)."""
    return UserOut.of(
        administration.set_user_active(
            backends, principal=user, username=username, active=True, ip=ip
        )
    )


@router.post("/users/{username}/password", status_code=204, responses=error_responses(404, 409))
def reset_password(
    username: str, body: PasswordResetIn, user: CurrentUser, backends: BackendsDep, ip: ClientIP
) -> Response:
    """Reset a user's password: every token issued before the reset stops working."""
    administration.reset_password(
        backends, principal=user, username=username, new_password=body.new_password, ip=ip
    )
    return Response(status_code=204)


@router.get("/categories", response_model=list[CategoryOut])
def list_categories(_user: CurrentUser, backends: BackendsDep) -> list[CategoryOut]:
    return [CategoryOut.of(c) for c in administration.list_categories(backends)]


@router.post(
    "/categories",
    response_model=CategoryOut,
    status_code=201,
    responses={200: {"model": CategoryOut, "description": "已存在 / Already there"}},
)
def create_category(
    body: CategoryIn, response: Response, user: CurrentUser, backends: BackendsDep, ip: ClientIP
) -> CategoryOut:
    category, created = administration.create_category(
        backends, principal=user, name=body.name, ip=ip
    )
    if not created:
        response.status_code = 200
    return CategoryOut.of(category)


@router.get("/grants", response_model=list[GrantOut])
def list_grants(user: CurrentUser, backends: BackendsDep, ip: ClientIP) -> list[GrantOut]:
    """Every download grant, waiting or confirmed, newest first (admins and auditors)."""
    return [GrantOut.of(g) for g in administration.list_grants(backends, principal=user, ip=ip)]


@router.post(
    "/grants", response_model=GrantOut, status_code=201, responses=error_responses(404, 409)
)
def grant_download(
    body: GrantIn, user: CurrentUser, backends: BackendsDep, ip: ClientIP
) -> GrantOut:
    """Let an auditor download one document, once another admin confirms the grant."""
    return GrantOut.of(
        administration.grant_download(
            backends,
            principal=user,
            username=body.username,
            document_id=body.document_id,
            expires_at=body.expires_at,
            ip=ip,
        )
    )


@router.post(
    "/grants/{grant_id}/confirm", response_model=GrantOut, responses=error_responses(404, 409)
)
def confirm_grant(
    grant_id: DbId, user: CurrentUser, backends: BackendsDep, ip: ClientIP
) -> GrantOut:
    """A second admin (not the one who granted it) confirms a download grant."""
    return GrantOut.of(
        administration.confirm_grant(backends, principal=user, grant_id=grant_id, ip=ip)
    )
