"""The security headers every response carries, in one place: the middleware below adds them to
whatever the app answers (pages, JSON, errors, static files), and the handler of unexpected errors,
whose responses pass no middleware, applies them itself.

A header the response already sets is kept (a preview's own ``sandbox`` policy, a download's
``Cache-Control``); the rest are added.
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import cookie_parser
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.web.cookies import SESSION_COOKIE

# Pages load scripts, styles, images and fonts from the app itself only, and no other site may
# frame them. PDF.js renders previews in a worker and decodes some images with WebAssembly.
PAGE_POLICY = (
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; "
    "img-src 'self' data: blob:; font-src 'self' data:; worker-src 'self' blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
DOCS_PATH = "/api/docs"
# Swagger UI starts from an inline script that FastAPI writes into its page.
DOCS_POLICY = PAGE_POLICY.replace("script-src 'self'", "script-src 'self' 'unsafe-inline'")
# JSON, CSV, downloads: nothing in them is ever run or loaded as a page.
DATA_POLICY = "default-src 'none'; frame-ancestors 'none'"
# Static files keep the pages' policy: a script served from here may start as a worker (PDF.js),
# and a worker runs under the policy of the response that delivered it.
STATIC_PREFIXES = ("/static/", f"{DOCS_PATH}/assets/")
# Never kept by a browser or proxy, whoever asks: tokens, sign-in, the audit log and its export.
ALWAYS_PRIVATE_PREFIXES = ("/api/v1/auth/", "/api/v1/audit/", "/audit", "/login")
HSTS = "max-age=31536000"


def add_security_headers(
    headers: MutableHeaders, *, path: str, credentialed: bool, https: bool
) -> None:
    """Add the security headers the response does not set itself.

    ``credentialed``: the request carried a token or session cookie, so the answer is somebody's
    own and no cache may keep it. ``https``: the service is published over HTTPS (HSTS).
    """
    static = path.startswith(STATIC_PREFIXES)
    if headers.get("content-type", "").startswith("text/html"):
        policy = DOCS_POLICY if path == DOCS_PATH else PAGE_POLICY
    else:
        policy = PAGE_POLICY if static else DATA_POLICY
    headers.setdefault("Content-Security-Policy", policy)
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    if not static and (credentialed or path.startswith(ALWAYS_PRIVATE_PREFIXES)):
        headers.setdefault("Cache-Control", "no-store")
    if https:
        headers.setdefault("Strict-Transport-Security", HSTS)


def is_credentialed(request_headers: Headers) -> bool:
    """Did the request carry a bearer token or the web interface's session cookie?"""
    if request_headers.get("authorization"):
        return True
    return SESSION_COOKIE in cookie_parser(request_headers.get("cookie", ""))


def apply_security_headers(scope: Scope, response: Response, *, https: bool) -> Response:
    """The headers on a response built outside the middleware (the unexpected-error handler)."""
    add_security_headers(
        response.headers,
        path=scope["path"],
        credentialed=is_credentialed(Headers(scope=scope)),
        https=https,
    )
    return response


class SecurityHeaders:
    """ASGI middleware: every HTTP response gets the security headers on its way out."""

    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        self.https = https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        credentialed = is_credentialed(Headers(scope=scope))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                add_security_headers(
                    MutableHeaders(scope=message),
                    path=path,
                    credentialed=credentialed,
                    https=self.https,
                )
            await send(message)

        await self.app(scope, receive, send_with_headers)
