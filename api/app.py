"""The FastAPI application: ``create_app(settings)`` wires backends, routes and error handlers.

Build it with explicit settings (tests do); ``materials serve`` builds it from the environment.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from sqlalchemy import func, select

from api.errors import install_error_handlers
from api.routes import admin, audit, auth, documents, health, search
from indexer.worker import BackgroundWorker, IndexWorker
from services.auth import Authenticator
from services.backends import Backends, open_backends
from services.config import Settings
from services.models import User

log = logging.getLogger("materials.api")

FIRST_ADMIN_HINT = (
    "数据库中还没有任何用户。创建第一个管理员 / No users yet. Create the first admin with:\n"
    "  materials admin create-org --kind county --name 某某县\n"
    "  materials admin create-user --username admin --password '<至少8位>' --org 某某县 "
    "--role admin\n"
    "or load a sample county with: materials demo"
)


def has_users(backends: Backends) -> bool:
    with backends.db.session() as session:
        return (session.scalar(select(func.count()).select_from(User)) or 0) > 0


def create_app(settings: Settings, *, backends: Backends | None = None) -> FastAPI:
    """The API over the backends the settings choose (or the ones given)."""
    opened = backends or open_backends(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if not has_users(opened):
            log.warning(FIRST_ADMIN_HINT)
        worker = None
        if settings.embedded_worker:
            worker = BackgroundWorker(IndexWorker(opened, opened.index))
            worker.start()
        yield
        if worker is not None:
            worker.stop()
        if backends is None:
            opened.close()

    app = FastAPI(
        title="县域材料共享库 County materials repository",
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )
    app.state.backends = opened
    app.state.authenticator = Authenticator(settings=settings, backends=opened)
    install_error_handlers(app)
    for module in (auth, documents, search, audit, admin, health):
        app.include_router(module.router)

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response

    @app.get("/", include_in_schema=False)
    def welcome() -> dict[str, object]:
        body: dict[str, object] = {
            "service": "county-materials",
            "api": "/api/v1",
            "docs": "/api/docs",
        }
        if not has_users(opened):
            body["setup"] = FIRST_ADMIN_HINT
        return body

    return app
