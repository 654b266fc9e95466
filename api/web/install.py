"""Mounting the web interface on the app: static files, page routers, the login redirect."""

from __future__ import annotations

import mimetypes

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.web.render import STATIC_DIR
from api.web.routes import ROUTERS
from api.web.session import install_login_redirect

# PDF.js ships ES modules; browsers run a module only when it is served as JavaScript.
mimetypes.add_type("text/javascript", ".mjs")


def install_web(app: FastAPI) -> None:
    """Serve the pages, their static assets and the login redirect for pages that need a user."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for router in ROUTERS:
        app.include_router(router)
    install_login_redirect(app)
