"""Sign-in (OAuth2 password flow) and the caller's own identity."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form

from api.deps import AuthenticatorDep, ClientIP, CurrentUser
from api.schemas import MeOut, OrgOut, TokenOut
from services.models import Org

router = APIRouter(prefix="/api/v1", tags=["auth"])


@router.post("/auth/token", response_model=TokenOut)
def issue_token(
    username: Annotated[str, Form(min_length=1, max_length=200)],
    password: Annotated[str, Form(min_length=1, max_length=1024)],
    authenticator: AuthenticatorDep,
    ip: ClientIP,
) -> TokenOut:
    """Exchange a username and password for a bearer token."""
    issued = authenticator.login(username=username, password=password, ip=ip)
    return TokenOut(access_token=issued.access_token, expires_in=issued.expires_in)


@router.get("/me", response_model=MeOut)
def me(user: CurrentUser) -> MeOut:
    org = OrgOut.of(Org(id=user.org_id, name=user.org_name, kind=user.org_kind.value))
    return MeOut(username=user.username, role=user.role.value, org=org)
