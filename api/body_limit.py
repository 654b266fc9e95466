"""Request bodies beyond ``MATERIALS_MAX_BODY_BYTES`` are refused before they are read, parsed or
their sender authenticated: by a too large Content-Length at once, or, for a body sent without one
(chunked), as soon as the bytes received pass the limit. The connection is then closed.

The upload endpoint is exempt: it streams the file to disk under its own, larger limit
(``MATERIALS_MAX_UPLOAD_BYTES``, api/uploads.py).
"""

from __future__ import annotations

from collections.abc import Collection

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_response
from api.web.errors import error_page, is_page_request

CODE = "body_too_large"
MESSAGE = "请求内容过大（上传文件请使用上传功能）"


class _Refused(Exception):
    """Raised into the app when the body passes the limit; its answer is replaced by the 413."""


class BodyLimit:
    """ASGI middleware bounding every request body but those of the ``exempt`` (method, path)s."""

    def __init__(
        self, app: ASGIApp, *, max_bytes: int, exempt: Collection[tuple[str, str]]
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt = frozenset(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope["method"], scope["path"]) in self.exempt:
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit():
            # The server reads no more than Content-Length says: judging it is enough.
            if int(length) > self.max_bytes:
                await self._refuse(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        await self._counting(scope, receive, send)

    async def _counting(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A body without Content-Length: count it as it arrives, stop at the limit."""
        received = 0
        refused = False
        answering = False

        async def counted_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    refused = True
                    raise _Refused
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal answering
            if refused and not answering:
                return  # the app's answer to a body cut short (a 400, a 500): the 413 instead
            answering = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not refused or answering:
                raise
        if refused and not answering:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {"Connection": "close"}  # the rest of the body stays unread
        request = Request(scope)
        response: Response
        if is_page_request(request):
            response = await run_in_threadpool(error_page, request, 413, MESSAGE)
            response.headers.update(headers)
        else:
            response = error_response(413, CODE, MESSAGE, headers=headers)
        await response(scope, receive, send)
