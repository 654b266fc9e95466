"""The security headers every response carries, in one place: the app's middleware applies them,
and so does the handler of unexpected errors, whose responses pass no middleware.
"""

from __future__ import annotations

from starlette.responses import Response

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


def apply_security_headers(path: str, response: Response) -> Response:
    """Add what the response does not set itself: nosniff, no referrer, and for HTML the CSP."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if response.headers.get("content-type", "").startswith("text/html"):
        response.headers.setdefault(
            "Content-Security-Policy", DOCS_POLICY if path == DOCS_PATH else PAGE_POLICY
        )
        response.headers.setdefault("X-Frame-Options", "DENY")
    return response
