"""How the gateway is served: the uvicorn settings that `inferchain gateway` and the tests share.

Keep-alive: uvicorn closes an idle connection after 5 s by default, and httpx (which the `openai` package
uses) drops its idle pooled connections after 5 s too. A client that reused a connection at about 5 s of
idleness raced the server's close and got a ReadError instead of an answer (bench/gateway.py did, between
its phases; 1 in 12 tries of a request 4.95-5.05 s after the last here). The server keeps idle connections
longer than common clients and proxies do (httpx 5 s, aiohttp 15 s, load balancers 60 s), so the client
always closes first.
"""

from __future__ import annotations

KEEP_ALIVE_S = 65
# How long a stop waits for requests in flight before closing them.
GRACEFUL_SHUTDOWN_S = 5


def uvicorn_config(app, log_level: str):
    """uvicorn.Config for the gateway's app: its own logging (log_config=None), lifespan on, the keep-alive above."""
    import uvicorn

    return uvicorn.Config(app, log_level=log_level, log_config=None, lifespan="on",
                          timeout_keep_alive=KEEP_ALIVE_S, timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S)
