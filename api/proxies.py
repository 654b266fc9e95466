"""Who the client is: the connection's peer, or, when that peer is a trusted proxy, the address
and scheme it forwards (``X-Forwarded-For``, ``X-Forwarded-Proto``).

``MATERIALS_TRUSTED_PROXIES`` names the proxies; from anyone else those headers are ignored, so no
client writes an address of its choosing into the audit log. The server must not apply them
itself: ``materials serve`` runs uvicorn without its proxy handling.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from services.config import IPNetwork

_SCHEMES = {"http": ("http", "https"), "websocket": ("ws", "wss")}


class TrustedProxies:
    """ASGI middleware: the request's client and scheme as the trusted proxy in front saw them."""

    def __init__(self, app: ASGIApp, *, networks: Sequence[IPNetwork]) -> None:
        self.app = app
        self.networks = tuple(networks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.networks and scope["type"] in _SCHEMES:
            scope = self._as_forwarded(scope)
        await self.app(scope, receive, send)

    def _trusted(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def _as_forwarded(self, scope: Scope) -> Scope:
        client = scope.get("client")
        if not client or not self._trusted(client[0]):
            return scope
        headers = Headers(scope=scope)
        forwarded = dict(scope)
        proto = headers.get("x-forwarded-proto", "").split(",")[-1].strip().lower()
        if proto in _SCHEMES[scope["type"]]:
            forwarded["scheme"] = proto
        # Each proxy appends the address it received from: the client is the last address that
        # is not one of ours (anything before it was written by the client itself).
        hops = [hop.strip() for hop in headers.get("x-forwarded-for", "").split(",")]
        for hop in reversed([hop for hop in hops if hop]):
            if self._trusted(hop):
                continue
            with contextlib.suppress(ValueError):  # not an address: keep the proxy's own
                forwarded["client"] = (str(ipaddress.ip_address(hop)), 0)
            break
        return forwarded
