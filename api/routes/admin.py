"""Organisations, users, categories and download grants (changes are admin-only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.deps import BackendsDep, ClientIP, CurrentUser
from api.schemas import (
    CategoryIn,
    CategoryOut,
    GrantIn,
    GrantOut,
    OrgIn,
    OrgOut,
    PasswordResetIn,
    UserIn,
    UserOut,
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


@router.post("/orgs", response_model=OrgOut, status_code=201)
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


@router.post("/users", response_model=UserOut, status_code=201)
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
    )
    if not created:
        response.status_code = 200
    return UserOut.of(created_user)


@router.post("/users/{username}/disable", response_model=UserOut)
def disable_user(username: str, user: CurrentUser, backends: BackendsDep, ip: ClientIP) -> UserOut:
    """Disable an account: its tokens stop working at once (an admin cannot disable themself)."""
    return UserOut.of(
        administration.set_user_active(
            backends, principal=user, username=username, active=False, ip=ip
        )
    )


@router.post("/users/{username}/enable", response_model=UserOut)
def enable_user(username: str, user: CurrentUser, backends: BackendsDep, ip: ClientIP) -> UserOut:
    """Enable a disabled account again (its user signs in anew)."""
    return UserOut.of(
        administration.set_user_active(
            backends, principal=user, username=username, active=True, ip=ip
        )
    )


@router.post("/users/{username}/password", status_code=204)
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


@router.post("/categories", response_model=CategoryOut, status_code=201)
def create_category(
    body: CategoryIn, response: Response, user: CurrentUser, backends: BackendsDep, ip: ClientIP
) -> CategoryOut:
    category, created = administration.create_category(
        backends, principal=user, name=body.name, ip=ip
    )
    if not created:
        response.status_code = 200
    return CategoryOut.of(category)


@router.post("/grants", response_model=GrantOut, status_code=201)
def grant_download(
    body: GrantIn, user: CurrentUser, backends: BackendsDep, ip: ClientIP
) -> GrantOut:
    """Let an auditor download one document."""
    grant = administration.grant_download(
        backends,
        principal=user,
        username=body.username,
        document_id=body.document_id,
        expires_at=body.expires_at,
        ip=ip,
    )
    return GrantOut(
        id=grant.id,
        username=body.username,
        document_id=grant.document_id,
        expires_at=grant.expires_at,
    )
