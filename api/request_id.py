"""Every request gets an id: a sane incoming ``X-Request-ID`` (from a proxy) or a new one. It is
on every log line written while the request is answered and in the ``X-Request-ID`` of the answer.

The outermost layer of the app (api/app.py), so answers of the 500 handler carry it too.
"""

from __future__ import annotations

import re
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.logging_setup import REQUEST_ID

HEADER = "X-Request-ID"
# Ids a proxy may pass on: short, and nothing that could forge a log line or a header.
_SANE = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id_of(scope: Scope) -> str:
    """The incoming id when it is sane, else a new uuid4 hex."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            incoming: str = value.decode("latin-1")
            if _SANE.fullmatch(incoming):
                return incoming
            break
    return uuid.uuid4().hex


class RequestId:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        token = REQUEST_ID.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)
