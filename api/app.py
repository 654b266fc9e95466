"""The FastAPI application: ``create_app(settings)`` wires backends, routes and error handlers.

Build it with explicit settings (tests do); ``materials serve`` builds it from the environment.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp

from api.body_limit import BodyLimit
from api.errors import COMMON_ERRORS, install_error_handlers
from api.headers import DOCS_PATH, SecurityHeaders
from api.metrics import RequestTiming
from api.metrics import router as metrics_router
from api.proxies import TrustedProxies
from api.request_id import RequestId
from api.routes import (
    admin,
    audit,
    auth,
    catalog,
    dictionary,
    documents,
    figures,
    health,
    notifications,
    requests,
    search,
)
from api.spool import sweep_spool
from api.web.install import install_web
from services import orgs
from services.audit_sequencer import AuditSequencer, BackgroundSequencer
from services.auth import Authenticator
from services.backends import Backends, open_backends
from services.config import Settings
from services.metrics import Metrics, multiprocess_dir

log = logging.getLogger("materials.api")

FIRST_ADMIN_HINT = (
    "数据库中还没有任何用户。创建第一个管理员 / No users yet. Create the first admin with:\n"
    "  materials admin create-org --kind county --name 某某县\n"
    "  materials admin create-user --username admin --password '<至少10位，含两类字符>' "
    "--org 某某县 --role admin\n"
    "or load a sample county with: materials demo"
)

NO_SCANNER_HINT = (
    "未配置病毒扫描（MATERIALS_CLAMD_ADDRESS）/ No virus scanner configured: "
    "uploaded files are %sserved unscanned (MATERIALS_SERVE_UNSCANNED). "
    "Production should run clamd and set MATERIALS_CLAMD_ADDRESS."
)


def has_users(backends: Backends) -> bool:
    with backends.db.session() as session:
        return orgs.has_users(session)


class _App(FastAPI):
    """The API with two layers outside Starlette's error handler, so that its 500 answers
    carry the request id and are timed like every other answer."""

    def build_middleware_stack(self) -> ASGIApp:
        return RequestId(
            RequestTiming(super().build_middleware_stack(), metrics=self.state.metrics)
        )


def create_app(settings: Settings, *, backends: Backends | None = None) -> FastAPI:
    """The API over the backends the settings choose (or the ones given)."""
    opened = backends or open_backends(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if not has_users(opened):
            log.warning(FIRST_ADMIN_HINT)
        if opened.scanner is None:
            log.warning(NO_SCANNER_HINT, "" if settings.serve_unscanned else "not ")
        # What a killed process left half written in the upload spool.
        sweep_spool(settings.spool_dir, older_than_seconds=settings.orphan_grace_seconds)
        worker = sequencer = None
        if settings.embedded_worker:
            # Imported here: a server without the embedded worker never loads the indexer.
            from indexer.worker import BackgroundWorker, IndexWorker

            worker = BackgroundWorker(IndexWorker(opened, opened.index))
            worker.start()
            sequencer = BackgroundSequencer(AuditSequencer(opened.db, settings, opened.blobs))
            sequencer.start()
        yield
        if worker is not None:
            worker.stop()
        if sequencer is not None:
            sequencer.stop()
        if backends is None:
            opened.close()

    app = _App(
        title="县域材料共享库 County materials repository",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # served below from the app's own files, not from a CDN
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )
    app.state.backends = opened
    app.state.settings = settings
    app.state.authenticator = Authenticator(settings=settings, backends=opened)
    app.state.metrics = Metrics(opened.db, shared_dir=multiprocess_dir())
    install_error_handlers(app)
    for module in (
        auth,
        documents,
        search,
        audit,
        admin,
        dictionary,
        catalog,
        requests,
        notifications,
        figures,
    ):
        app.include_router(module.router, responses=COMMON_ERRORS)
    app.include_router(health.router)
    app.include_router(metrics_router)

    install_web(app)
    _install_api_docs(app)
    _install_edge(app, settings)
    return app


def _install_edge(app: FastAPI, settings: Settings) -> None:
    """What every request passes first (the last added runs first): the client as a trusted
    proxy forwards it, the security headers on the way out, the body limit before any parsing."""
    # POST /api/v1/documents is the upload (the web form posts there too); it has its own limit.
    uploads = {("POST", documents.router.prefix)}
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, exempt=uploads)
    app.add_middleware(SecurityHeaders, https=settings.https)
    app.add_middleware(TrustedProxies, networks=settings.trusted_proxy_networks)


def _install_api_docs(app: FastAPI) -> None:
    """Swagger UI at /api/docs from the files fastapi-offline ships: it works without internet."""
    assets = Path(fastapi_offline.__file__).parent / "static"
    app.mount(f"{DOCS_PATH}/assets", StaticFiles(directory=assets), name="api-docs-assets")

    @app.get(DOCS_PATH, include_in_schema=False)
    def api_docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/api/openapi.json",
            title="县域材料共享库 API",
            swagger_js_url=f"{DOCS_PATH}/assets/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_PATH}/assets/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_PATH}/assets/favicon.png",
        )
