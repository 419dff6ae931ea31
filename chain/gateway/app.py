"""The gateway's Starlette application: OpenAI's routes over the chain, and the explorer's.

    GET  /v1/models, /v1/models/{id}      the registered models; one is ready (200) while an executor serves it
    POST /v1/chat/completions             a chat job, answered whole or as server-sent chunks (the executor's
                                          tokens as it generates them: streaming.py)
    POST /v1/completions                  a text job (the prompt sent raw)

Every /v1 route wants `Authorization: Bearer KEY`, a key of the API-key file (keys.py); the job is signed
with the poster key it maps to. The edges translate, jobs.py decides: a handler reads and checks the
request (openai_shapes.py), runs the blocking chain calls in worker threads (the event loop never waits
on gRPC), and writes OpenAI's shapes back. A request in flight holds one of `max_in_flight` slots, and
one worker thread while its job is followed; with none free the answer is 429 with Retry-After.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import anyio
import anyio.from_thread
import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from chain.client import ClientError, JobView
from chain.gateway.explorer import explorer_routes
from chain.gateway.jobs import RETRY_AFTER_S, ChainAccess, Posted, ended_without_answer, extension, refusal
from chain.gateway.keys import ApiKeys, Poster
from chain.gateway.openai_shapes import (
    CompletionRequest,
    Envelope,
    RequestError,
    completion_document,
    error_document,
    invalid,
    parse_chat_request,
    parse_text_request,
)
from chain.gateway.streaming import EventStream, ExecutorStreams, Write, stream_completion

log = logging.getLogger(__name__)

# A request body larger than this is refused before it is parsed (HARDENING.md, "Bytes in").
MAX_BODY_BYTES = 1024 * 1024
# ...and one that has not arrived whole this many seconds after its head is refused (408): a body sent a byte
# at a time would hold its connection and its task with no end (chain/gateway/server.py bounds the head).
BODY_S = 30.0
# Jobs followed at once; each holds a worker thread until its job is final.
MAX_IN_FLIGHT = 64
# Worker threads for the short calls (models, executors, submissions), apart from the followers'.
SHORT_CALL_THREADS = 16
MAX_API_KEY_CHARS = 256
JOB_HEADER = "x-inferchain-job"
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@dataclass
class GatewayState:
    """What the handlers share: the chain, the keys, the limits and the clock."""

    access: ChainAccess
    api_keys: ApiKeys
    max_body_bytes: int
    body_s: float
    max_in_flight: int
    clock: Callable[[], float]
    short_calls: anyio.CapacityLimiter
    followers: anyio.CapacityLimiter
    streams: ExecutorStreams
    in_flight: int = 0
    # Requests in flight per poster key: the chain queues at most jobs.params.max_queued_per_poster of one
    # poster's jobs, and a PostJob beyond that fails in its block (its fee paid) or expires unassigned.
    by_poster: Counter = field(default_factory=Counter)

    def admit(self, poster: bytes, poster_cap: int) -> None:
        """Take a slot for a request of `poster`; RequestError 429 when the gateway or the poster is at its most."""
        if self.in_flight >= self.max_in_flight:
            raise RequestError(429, f"the gateway is following {self.in_flight} jobs, its most; retry shortly",
                               error_type="rate_limit_error", code="too_many_requests", retry_after=RETRY_AFTER_S)
        if self.by_poster[poster] >= poster_cap:
            raise RequestError(429, f"{self.by_poster[poster]} requests of this API key's poster are in flight, the "
                                    f"most the chain queues for one poster (jobs.params.max_queued_per_poster); retry "
                                    "shortly", error_type="rate_limit_error", code="too_many_requests",
                               retry_after=RETRY_AFTER_S)
        self.in_flight += 1
        self.by_poster[poster] += 1

    def release(self, poster: bytes) -> None:
        self.in_flight -= 1
        self.by_poster[poster] -= 1
        if not self.by_poster[poster]:
            del self.by_poster[poster]


def create_app(node_target: str, api_keys: ApiKeys, *, max_in_flight: int = MAX_IN_FLIGHT,
               max_body_bytes: int = MAX_BODY_BYTES, body_s: float = BODY_S,
               clock: Callable[[], float] = time.time) -> Starlette:
    """The gateway for the node at `node_target`, signing with the posters `api_keys` maps to."""
    access = ChainAccess(node_target)
    state = GatewayState(access, api_keys, max_body_bytes, body_s, max_in_flight, clock,
                         anyio.CapacityLimiter(SHORT_CALL_THREADS), anyio.CapacityLimiter(max_in_flight),
                         ExecutorStreams(access.client.get_executors, max_threads=max_in_flight))
    handlers = Handlers(state)
    routes = [
        Route("/v1/models", handlers.list_models, methods=["GET"]),
        Route("/v1/models/{model_id:path}", handlers.retrieve_model, methods=["GET"]),
        Route("/v1/chat/completions", handlers.chat_completions, methods=["POST"]),
        Route("/v1/completions", handlers.text_completions, methods=["POST"]),
        *explorer_routes(node_target),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        state.streams.close()
        state.access.close()

    return Starlette(routes=routes, lifespan=lifespan,
                     exception_handlers={HTTPException: http_error, Exception: internal_error})


async def http_error(request: Request, error: HTTPException) -> Response:
    """Starlette's own refusals (no such route, wrong method) in OpenAI's envelope."""
    return error_response(RequestError(error.status_code, f"{request.method} {request.url.path}: {error.detail}",
                                       code="not_found" if error.status_code == 404 else None),
                          dict(error.headers or {}))


async def internal_error(request: Request, error: Exception) -> Response:
    """A failure of the gateway itself (its traceback is logged by Starlette), in OpenAI's envelope."""
    return error_response(RequestError(500, "the gateway failed to answer; its log says why",
                                       error_type="server_error"))


def error_response(error: RequestError, headers: dict | None = None) -> JSONResponse:
    """OpenAI's error envelope with the error's status (and Retry-After when it has one)."""
    headers = dict(headers or {})
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    return JSONResponse(error_document(error), status_code=error.status, headers=headers)


class Handlers:
    """The routes' handlers over one GatewayState."""

    def __init__(self, state: GatewayState):
        self.state = state

    # --- models ------------------------------------------------------------------------------

    async def list_models(self, request: Request) -> Response:
        try:
            self._poster(request)
            models = await self._short(self.state.access.models)
        except RequestError as error:
            return error_response(error)
        return JSONResponse({"object": "list", "data": [model_document(model, count) for model, count in models]})

    async def retrieve_model(self, request: Request) -> Response:
        try:
            self._poster(request)
            model = await self._short(self.state.access.model, request.path_params["model_id"])
            count = await self._short(self.state.access.serving, model)
        except RequestError as error:
            return error_response(error)
        if count == 0:
            return error_response(RequestError(
                503, f"no executor serves the model {model.name!r} now", error_type="service_unavailable",
                code="model_not_ready", retry_after=RETRY_AFTER_S))
        return JSONResponse(model_document(model, count))

    # --- completions -------------------------------------------------------------------------

    async def chat_completions(self, request: Request) -> Response:
        return await self._complete(request, parse_chat_request)

    async def text_completions(self, request: Request) -> Response:
        return await self._complete(request, parse_text_request)

    async def _complete(self, request: Request, parse: Callable[[object], CompletionRequest]) -> Response:
        state = self.state
        try:
            poster = self._poster(request)
            completion = parse(await self._body(request))
            state.admit(poster.keypair.public_key, await self._short(state.access.max_queued_per_poster))
        except RequestError as error:
            return error_response(error)
        released = False
        try:
            posted = await self._short(state.access.post, poster.keypair, completion)
            log.info("job %s posted for a %s completion", posted.job_id.hex(), completion.kind)
            envelope = Envelope(completion.kind, posted.job_id, int(state.clock()), posted.model.name,
                                posted.model.engine)
            if completion.stream:
                released = True  # the stream releases its slot when it ends
                return EventStream(lambda write: self._events(write, request, completion, posted, poster, envelope),
                                   headers={**SSE_HEADERS, JOB_HEADER: posted.job_id.hex()})
            return await self._whole(request, posted, poster, envelope)
        except RequestError as error:
            return error_response(error)
        finally:
            if not released:
                state.release(poster.keypair.public_key)

    async def _whole(self, request: Request, posted: Posted, poster: Poster, envelope: Envelope) -> Response:
        headers = {JOB_HEADER: posted.job_id.hex()}
        view = await self._follow_until_final(request, posted, poster)
        if view is None:  # the client went away; nobody reads this
            return Response(status_code=499)
        answer = view.result
        if answer is None:
            return error_response(ended_without_answer(view), headers)
        return JSONResponse(completion_document(envelope, answer, extension(view)), headers=headers)

    async def _events(self, write: Write, request: Request, completion: CompletionRequest, posted: Posted,
                      poster: Poster, envelope: Envelope) -> None:
        """The SSE frames (streaming.py): the executor's tokens as they come, then what the chain settled."""
        try:
            await stream_completion(
                write, envelope, completion.include_usage,
                lambda on_view: self._follow_until_final(request, posted, poster, on_view),
                self.state.streams.opener(poster.keypair, posted), self.state.streams.threads)
        finally:
            self.state.release(poster.keypair.public_key)

    async def _follow_until_final(self, request: Request, posted: Posted, poster: Poster,
                                  on_view: Callable[[JobView], None] | None = None) -> JobView | None:
        """The job once final; None when the client disconnected first (the job is then cancelled if it can
        still be). RequestError when following fails. `on_view` sees each change, on the event loop."""
        access = self.state.access
        watcher = access.watcher()
        outcome: dict = {}
        # Called in the follow's thread; the view is handed to the event loop, where on_view runs.
        seen = None if on_view is None else (lambda view: anyio.from_thread.run_sync(on_view, view))

        async def follow() -> None:
            try:
                outcome["view"] = await anyio.to_thread.run_sync(
                    access.follow, posted, watcher, seen, limiter=self.state.followers, abandon_on_cancel=True)
            except ClientError as error:
                outcome["error"] = refusal(error)
            group.cancel_scope.cancel()

        async def disconnect() -> None:
            while (await request.receive())["type"] != "http.disconnect":
                pass
            outcome["gone"] = True
            group.cancel_scope.cancel()

        try:
            async with anyio.create_task_group() as group:
                group.start_soon(follow)
                group.start_soon(disconnect)
        finally:
            watcher.close()  # ends the follow, and so its thread, whoever finished first
            if "view" not in outcome:
                with anyio.CancelScope(shield=True):
                    await self._short(access.cancel, poster.keypair, posted)
        if "error" in outcome:
            raise outcome["error"]
        return outcome.get("view")

    # --- request parts -----------------------------------------------------------------------

    def _poster(self, request: Request) -> Poster:
        """The poster the request's API key maps to; RequestError 401 otherwise (the key is never logged)."""
        header = request.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise RequestError(401, "no API key: send Authorization: Bearer KEY (a key of the gateway's API-key "
                                    "file)", code="invalid_api_key")
        poster = self.state.api_keys.poster(key) if len(key) <= MAX_API_KEY_CHARS else None
        if poster is None:
            raise RequestError(401, "incorrect API key provided", code="invalid_api_key")
        return poster

    async def _body(self, request: Request) -> object:
        """The JSON body, refused (413) past max_body_bytes before any of it is parsed, and (408) when it has
        not arrived whole within body_s."""
        limit = self.state.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > limit:
            raise _too_large(limit)
        chunks, total = [], 0
        try:
            with anyio.fail_after(self.state.body_s):
                async for chunk in request.stream():
                    total += len(chunk)
                    if total > limit:
                        raise _too_large(limit)
                    chunks.append(chunk)
        except ClientDisconnect:
            raise invalid("the client went away before sending the whole body") from None
        except TimeoutError:
            raise RequestError(408, f"the request body did not arrive whole within {self.state.body_s:g} s of its "
                                    "head", code="request_timeout") from None
        try:
            return json.loads(b"".join(chunks), parse_constant=_no_constant)
        except (ValueError, RecursionError):
            raise invalid("the request body is not valid JSON", None, "invalid_json") from None

    async def _short(self, function, *args):
        return await anyio.to_thread.run_sync(lambda: function(*args), limiter=self.state.short_calls)


def _too_large(limit: int) -> RequestError:
    return RequestError(413, f"the request body is larger than {limit} bytes", code="request_too_large")


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def model_document(model, executors: int) -> dict:
    """OpenAI's model object, with the chain's facts under `inferchain`."""
    return {
        "id": model.name,
        "object": "model",
        "created": 0,
        "owned_by": "inferchain",
        "inferchain": {"model_id": model.id.hex(), "context_length": model.context_length, "engine": model.engine,
                       "executors": executors, "ready": executors > 0},
    }
