"""Names and flags of the cookies the web interface sets, in one place.

The session cookie is HttpOnly and SameSite=Strict; Secure whenever the page came over HTTPS.
"""

from __future__ import annotations

from fastapi import Request, Response

from services.config import Settings

SESSION_COOKIE = "materials_session"
# Before a session exists the login form is protected by a double-submit token in this cookie.
LOGIN_CSRF_COOKIE = "materials_login_csrf"
FLASH_COOKIE = "materials_flash"
# Scripts send the session's CSRF token in this header on state-changing API requests.
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def is_secure(request: Request, settings: Settings) -> bool:
    if settings.cookie_secure is not None:
        return settings.cookie_secure
    return request.url.scheme == "https"


def set_cookie(
    response: Response,
    request: Request,
    settings: Settings,
    *,
    name: str,
    value: str,
    max_age: int | None = None,
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=is_secure(request, settings),
    )


def clear_cookie(response: Response, request: Request, settings: Settings, *, name: str) -> None:
    response.delete_cookie(
        name, path="/", httponly=True, samesite="strict", secure=is_secure(request, settings)
    )
