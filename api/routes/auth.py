"""Sign-in (OAuth2 password flow), logout, and the caller's own identity and password."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response

from api.deps import (
    AuthenticatedUser,
    AuthenticatorDep,
    BackendsDep,
    BearerToken,
    ClientIP,
)
from api.errors import error_responses
from api.schemas import MeOut, OrgOut, PasswordChangeIn, TokenOut
from api.web.cookies import SESSION_COOKIE
from services import accounts, sessions
from services.models import Org

router = APIRouter(prefix="/api/v1", tags=["auth"])


@router.post("/auth/token", response_model=TokenOut, responses=error_responses(429))
def issue_token(
    username: Annotated[str, Form(min_length=1, max_length=200)],
    password: Annotated[str, Form(min_length=1, max_length=1024)],
    authenticator: AuthenticatorDep,
    ip: ClientIP,
) -> TokenOut:
    """Exchange a username and password for a bearer token."""
    issued = authenticator.login(username=username, password=password, ip=ip)
    return TokenOut(access_token=issued.access_token, expires_in=issued.expires_in)


@router.post("/auth/logout", status_code=204)
def logout(
    request: Request,
    user: AuthenticatedUser,
    token: BearerToken,
    authenticator: AuthenticatorDep,
    backends: BackendsDep,
    ip: ClientIP,
) -> Response:
    """Revoke the caller's token (or end the session of the cookie it came with) at once."""
    if token:
        authenticator.revoke(token, ip=ip)
    else:
        sessions.log_out(
            backends, token=request.cookies.get(SESSION_COOKIE, ""), principal=user, ip=ip
        )
    return Response(status_code=204)


@router.get("/me", response_model=MeOut)
def me(user: AuthenticatedUser) -> MeOut:
    org = OrgOut.of(Org(id=user.org_id, name=user.org_name, kind=user.org_kind.value))
    return MeOut(
        username=user.username,
        display_name=user.display_name,
        role=user.role.value,
        org=org,
        must_change_password=user.must_change_password,
    )


@router.post("/me/password", status_code=204)
def change_password(
    body: PasswordChangeIn, user: AuthenticatedUser, backends: BackendsDep, ip: ClientIP
) -> Response:
    """Change the caller's own password: every earlier token and web session of theirs ends,
    this one included (sign in again with the new password)."""
    accounts.change_own_password(
        backends,
        principal=user,
        old_password=body.old_password,
        new_password=body.new_password,
        ip=ip,
    )
    return Response(status_code=204)
