"""How the gateway is served: the uvicorn settings that `inferchain gateway` and the tests share.

Keep-alive: uvicorn closes an idle connection after 5 s by default, and httpx (which the `openai` package
uses) drops its idle pooled connections after 5 s too. A client that reused a connection at about 5 s of
idleness raced the server's close and got a ReadError instead of an answer (bench/gateway.py did, between
its phases; 1 in 12 tries of a request 4.95-5.05 s after the last here). The server keeps idle connections
longer than common clients and proxies do (httpx 5 s, aiohttp 15 s, load balancers 60 s), so the client
always closes first.

Silent and slow connections: uvicorn's keep-alive timer starts only after a response and stops at any byte
received, so a connection that never sends a request, or sends its head a byte a minute, was held with no
limit at all, one descriptor and one protocol object each. Here a request's head must arrive whole within
REQUEST_HEAD_S of the connection opening or of its last response ending, or the connection is closed; the
body has its own bound in app.py (BODY_S, a 408).
"""

from __future__ import annotations

import asyncio

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

KEEP_ALIVE_S = 65
# How long a connection may take to deliver a request's whole head, from its opening or its last response.
REQUEST_HEAD_S = KEEP_ALIVE_S
# How long a stop waits for requests in flight before closing them.
GRACEFUL_SHUTDOWN_S = 5


class GatewayProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request's head (the module's docstring)."""

    request_head_s: float = REQUEST_HEAD_S

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._head_deadline: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._await_head()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # a head arrived whole (or the connection is ending)
            self._cancel_head_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_deadline()
        super().connection_lost(exc)

    def _await_head(self) -> None:
        self._cancel_head_deadline()
        self._head_deadline = self.loop.call_later(self.request_head_s, self._head_overdue)

    def _cancel_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_overdue(self) -> None:
        self._head_deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def uvicorn_config(app, log_level: str, *, request_head_s: float = REQUEST_HEAD_S):
    """uvicorn.Config for the gateway's app: its own logging (log_config=None), lifespan on, the keep-alive and
    the request head's deadline above (h11, whatever else is installed)."""
    protocol = GatewayProtocol
    if request_head_s != GatewayProtocol.request_head_s:
        protocol = type("GatewayProtocol", (GatewayProtocol,), {"request_head_s": request_head_s})
    return uvicorn.Config(app, log_level=log_level, log_config=None, lifespan="on", http=protocol,
                          timeout_keep_alive=KEEP_ALIVE_S, timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S)
