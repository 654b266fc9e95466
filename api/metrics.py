"""``GET /metrics`` for Prometheus, and the timing of every request that feeds it.

Not public: 404 while ``MATERIALS_METRICS_TOKEN`` is unset, then ``Authorization: Bearer``.
"""

from __future__ import annotations

import hmac
import time

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_response
from services.metrics import CONTENT_TYPE, Metrics

router = APIRouter()

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    token = request.app.state.settings.metrics_token
    if token is None:  # as if there were no such address, in the API's error shape
        return error_response(404, "not_found", "请求的地址不存在")
    offered = request.headers.get("authorization", "")
    scheme, _, value = offered.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        value.strip().encode(), token.encode()
    ):
        return error_response(
            401,
            "not_authenticated",
            "需要有效的监控令牌 / A valid metrics token is required",
            headers={"WWW-Authenticate": "Bearer"},
        )
    registry: Metrics = request.app.state.metrics
    body = await run_in_threadpool(registry.exposition)  # reads the database
    return Response(body, media_type=CONTENT_TYPE)


def route_template(scope: Scope, root_path: str) -> str:
    """``/api/v1/documents/{document_id}``, not the path asked for: one series per route.
    Requests that matched no route share one label, so scanners cannot add series."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return "unmatched"
    if isinstance(route, Mount):  # static files: the mount, not each file
        return f"{path}/{{path}}"
    return str(scope.get("root_path", ""))[len(root_path) :] + path


class RequestTiming:
    """Observes every HTTP request's time to its last byte, with its route and status."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        root_path = str(scope.get("root_path", ""))
        status = 500  # an exception before any answer ends as the 500 handler's answer

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            self.metrics.observe_request(
                route=route_template(scope, root_path),
                method=scope["method"] if scope["method"] in _METHODS else "other",
                status=status,
                seconds=time.perf_counter() - started,
            )
