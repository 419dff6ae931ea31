"""Streamed completions relay the executor's tokens as they come, then hold them to the settled answer.

The relay (chain/gateway/streaming.py) is driven here by fakes: a follower that reports the job's
changes and a token source that hands out pieces, text in and SSE frames out. The end-to-end tests
at the bottom run the gateway against a real dev node whose worker runs the embedded model and
publishes its tokens.
"""

from __future__ import annotations

import json
import threading
import time
from types import SimpleNamespace

import anyio
import anyio.to_thread
import httpx
import pytest

from chain.client import Client, ClientError, JobView
from chain.crypto import dev_keypair
from chain.gateway.app import GatewayState, Handlers
from chain.gateway.jobs import Posted
from chain.gateway.openai_shapes import Envelope, RequestError, parse_chat_request
from chain.gateway.streaming import (
    DONE,
    EndpointClients,
    EventStream,
    ExecutorEndpoints,
    TokenRelay,
    final_frames,
    stream_completion,
    valid_endpoint,
)
from inference.model_store import EMBEDDED_NAME
from proto import node_pb2, state_pb2, types_pb2
from tests.gateway.serving import running_gateway, worker_node
from tests.nodes import NodeProcess

JOB_ID = bytes(range(32))
EXECUTOR = b"\x07" * 32
ENVELOPE = Envelope("chat", JOB_ID, 1765000000, "tiny", "engine 1")
TEXT_ENVELOPE = Envelope("text", JOB_ID, 1765000000, "tiny", "engine 1")


# --- fakes -----------------------------------------------------------------------------------


def job(status=state_pb2.JOB_STATUS_QUEUED, slot_status=None, text: str = "", tokens: int = 0,
        stop_reason: str = "eos") -> JobView:
    record = state_pb2.Job(id=JOB_ID, status=status, output_digest=b"d" * 32)
    if slot_status is not None:
        reveal = state_pb2.Reveal(prompt_tokens=5, tokens=list(range(tokens)), text=text, stop_reason=stop_reason,
                                  output_digest=b"d" * 32)
        record.assignments.add(executor=EXECUTOR, status=slot_status, reveal=reveal)
    return JobView(record, 10, b"h" * 32)


ASSIGNED = job(state_pb2.JOB_STATUS_ASSIGNED, state_pb2.ASSIGNMENT_STATUS_ASSIGNED)


def settled(text: str, tokens: int, stop_reason: str = "eos") -> JobView:
    return job(state_pb2.JOB_STATUS_SETTLED, state_pb2.ASSIGNMENT_STATUS_REVEALED, text, tokens, stop_reason)


def pieces_of(texts: list[str], stop_reason: str = "eos", last: bool = True) -> list[node_pb2.TokenPiece]:
    pieces, first = [], 0
    for index, text in enumerate(texts):
        final = last and index == len(texts) - 1
        pieces.append(node_pb2.TokenPiece(first_token=first, tokens=1, text=text,
                                          stop_reason=stop_reason if final else ""))
        first += 1
    return pieces


class FakeStream:
    """A token stream of fixed pieces (then `then` raised, if given); next() may wait on `gate` before each
    piece; close() is recorded."""

    def __init__(self, pieces, error: ClientError | None = None, gate: threading.Event | None = None,
                 then: ClientError | None = None):
        self.pieces = list(pieces)
        self.error = error
        self.gate = gate
        self.then = then
        self.closed = threading.Event()

    def __iter__(self):
        return self

    def __next__(self):
        if self.error is not None:
            raise self.error
        if self.gate is not None:
            while not self.gate.wait(0.01):
                if self.closed.is_set():
                    raise ClientError("CANCELLED", "closed")
        if not self.pieces:
            if self.then is not None:
                raise self.then
            raise StopIteration
        return self.pieces.pop(0)

    def close(self):
        self.closed.set()


class FakeSource:
    """open_stream: hands out the given streams (or None) in turn, recording what was asked."""

    def __init__(self, *streams):
        self.streams = list(streams)
        self.asked: list[tuple[bytes, int]] = []

    def __call__(self, executor: bytes, from_token: int):
        self.asked.append((executor, from_token))
        return self.streams.pop(0) if len(self.streams) > 1 else self.streams[0]


class Frames:
    """The write of a response: the frames, decoded, and whether the job was final when each was written."""

    def __init__(self):
        self.raw: list[str] = []
        self.final = False
        self.text_before_final: list[str] = []
        self.texts = anyio.Event()

    async def write(self, frame: str) -> None:
        self.raw.append(frame)
        document = self.document(frame)
        if document and document.get("choices") and self.text_of(document):
            if not self.final:
                self.text_before_final.append(self.text_of(document))
            self.texts.set()

    @staticmethod
    def document(frame: str) -> dict | None:
        assert frame.startswith("data: ") and frame.endswith("\n\n")
        body = frame[len("data: "):-2]
        return None if body == "[DONE]" else json.loads(body)

    @staticmethod
    def text_of(document: dict) -> str:
        choice = document["choices"][0]
        return choice["delta"].get("content", "") if "delta" in choice else choice["text"]

    @property
    def documents(self) -> list[dict]:
        return [document for document in map(self.document, self.raw) if document is not None]

    @property
    def text(self) -> str:
        return "".join(self.text_of(document) for document in self.documents if document.get("choices"))

    @property
    def finish(self) -> dict:
        [finish] = [document for document in self.documents
                    if document.get("choices") and document["choices"][0]["finish_reason"]]
        return finish


def follower(frames: Frames, final: JobView | None, wait_for_text: bool = True, views=(ASSIGNED,)):
    """A follow that reports the assignment, waits for the relay's first text (or not), then ends `final`."""

    async def follow(on_view):
        for view in views:
            on_view(view)
        if wait_for_text:
            with anyio.fail_after(5):
                await frames.texts.wait()
            await anyio.sleep(0.05)
        frames.final = True
        return final

    return follow


def run(frames: Frames, follow, source, include_usage: bool = False, envelope: Envelope = ENVELOPE) -> None:
    anyio.run(stream_completion, frames.write, envelope, include_usage, follow, source)


# --- the relay -------------------------------------------------------------------------------


def test_pieces_are_relayed_before_the_job_is_final_and_match_the_settled_text():
    frames = Frames()
    stream = FakeStream(pieces_of(["Red", ",", " green"]))
    run(frames, follower(frames, settled("Red, green", 3)), FakeSource(stream))
    documents = frames.documents
    assert documents[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert {document["id"] for document in documents} == {f"chatcmpl-{JOB_ID.hex()}"}
    assert frames.text_before_final == ["Red", ",", " green"] and frames.text == "Red, green"
    finish = frames.finish
    assert finish["choices"][0]["finish_reason"] == "stop" and finish["inferchain"]["verdict"] == "settled"
    assert finish["inferchain"]["stream_matches_settled"] is True and finish["inferchain"]["streamed_tokens"] == 3
    assert "settled_text" not in finish["inferchain"]
    assert frames.raw[-1] == DONE and stream.closed.is_set()


def test_a_streamed_text_the_settled_one_does_not_begin_with_is_flagged_with_the_settled_text():
    frames = Frames()
    run(frames, follower(frames, settled("Blue sky", 2)), FakeSource(FakeStream(pieces_of(["Red", " sea"]))))
    extension = frames.finish["inferchain"]
    assert frames.text == "Red sea"  # sent before the chain settled; not taken back, but flagged
    assert extension["stream_matches_settled"] is False and extension["settled_text"] == "Blue sky"


def test_a_stream_cut_short_is_completed_from_the_settled_text():
    frames = Frames()
    stream = FakeStream(pieces_of(["Once", " upon"], last=False))  # ends without its last piece
    run(frames, follower(frames, settled("Once upon a time", 4, "length")), FakeSource(stream))
    assert frames.text_before_final == ["Once", " upon"] and frames.text == "Once upon a time"
    finish = frames.finish
    assert finish["choices"][0]["finish_reason"] == "length"
    assert finish["inferchain"]["stream_matches_settled"] is True and finish["inferchain"]["streamed_tokens"] == 2


def test_an_executor_without_endpoint_gives_the_settled_text_in_pieces_as_before():
    frames = Frames()
    run(frames, follower(frames, settled("Red, green and blue.", 5), wait_for_text=False), FakeSource(None),
        include_usage=True)
    assert frames.text_before_final == [] and frames.text == "Red, green and blue."
    assert len([document for document in frames.documents if document.get("choices") and frames.text_of(document)]) > 1
    assert frames.finish["inferchain"]["streamed_tokens"] == 0
    usage = frames.documents[-1]
    assert usage["choices"] == [] and usage["usage"] == {"prompt_tokens": 5, "completion_tokens": 5,
                                                         "total_tokens": 10}
    assert frames.raw[-1] == DONE


def test_not_found_is_asked_again_until_the_executor_publishes():
    frames = Frames()
    missing = FakeStream([], error=ClientError("NOT_FOUND", "no stream yet"))
    source = FakeSource(missing, missing, FakeStream(pieces_of(["Hi"])))
    run(frames, follower(frames, settled("Hi", 1)), source)
    assert len(source.asked) == 3 and frames.text_before_final == ["Hi"]
    assert missing.closed.is_set()


def test_a_refused_stream_falls_back_to_the_settled_text():
    frames = Frames()
    denied = FakeStream([], error=ClientError("PERMISSION_DENIED", "not the poster"))
    source = FakeSource(denied)
    run(frames, follower(frames, settled("Fine.", 2), wait_for_text=False), source)
    assert len(source.asked) == 1 and frames.text == "Fine."
    assert frames.finish["inferchain"]["stream_matches_settled"] is True


def test_a_piece_out_of_order_stops_the_relay_and_the_rest_comes_from_the_chain():
    frames = Frames()
    bad = pieces_of(["A", " B", " C"])
    bad[1].first_token = 5
    run(frames, follower(frames, settled("A B C", 3)), FakeSource(FakeStream(bad)))
    assert frames.text_before_final == ["A"] and frames.text == "A B C"
    assert frames.finish["inferchain"]["streamed_tokens"] == 1


def test_a_text_completion_streams_text_chunks():
    frames = Frames()
    run(frames, follower(frames, settled(" blue", 1)), FakeSource(FakeStream(pieces_of([" blue"]))),
        envelope=TEXT_ENVELOPE)
    assert {document["object"] for document in frames.documents} == {"text_completion"}
    assert frames.text_before_final == [" blue"] and frames.text == " blue"


def test_a_job_refunded_after_streaming_ends_with_the_error_chunk():
    frames = Frames()
    expired = job(state_pb2.JOB_STATUS_EXPIRED, state_pb2.ASSIGNMENT_STATUS_MISSED)
    run(frames, follower(frames, expired), FakeSource(FakeStream(pieces_of(["Par"], last=False))))
    assert frames.text_before_final == ["Par"]
    assert frames.documents[-1]["error"]["code"] == "job_expired" and frames.raw[-1] == DONE


def test_a_failed_follow_ends_with_the_error_and_closes_the_stream():
    frames = Frames()
    stream = FakeStream(pieces_of(["x"]), gate=threading.Event())

    async def follow(on_view):
        on_view(ASSIGNED)
        await anyio.sleep(0.1)
        raise RequestError(503, "node gone", code="node_unavailable")

    run(frames, follow, FakeSource(stream))
    assert frames.documents[-1]["error"]["code"] == "node_unavailable" and frames.raw[-1] == DONE
    assert stream.closed.is_set()


def test_when_the_client_leaves_nothing_more_is_written_and_the_stream_is_closed():
    frames = Frames()
    stream = FakeStream(pieces_of(["x"]), gate=threading.Event())
    source = FakeSource(stream)

    async def follow(on_view):
        on_view(ASSIGNED)
        with anyio.fail_after(5):
            while not source.asked:  # the relay waits for the executor's first piece
                await anyio.sleep(0.01)
        await anyio.sleep(0.05)
        return None

    run(frames, follow, source)
    assert len(frames.raw) == 1 and stream.closed.is_set()  # the role chunk only, no [DONE]


def test_a_stream_that_opens_after_the_client_left_is_closed():
    frames = Frames()
    stream = FakeStream(pieces_of(["x"]))
    opening, release = threading.Event(), threading.Event()

    def slow_open(executor, from_token):
        opening.set()
        release.wait(5)
        return stream

    async def follow(on_view):
        on_view(ASSIGNED)
        await anyio.to_thread.run_sync(opening.wait, 5)
        return None

    run(frames, follow, slow_open)
    release.set()
    assert stream.closed.wait(5) and len(frames.raw) == 1


def test_the_final_frames_compare_what_was_sent_with_the_settled_answer():
    relay = TokenRelay(ENVELOPE, None, None)
    relay.sent.texts, relay.sent.streamed_tokens = ["Hello"], 1
    frames = final_frames(ENVELOPE, settled("Hello there", 2), relay.sent, False)
    assert [Frames.text_of(Frames.document(frame)) for frame in frames[:-2]] == [" there"]
    assert Frames.document(frames[-2])["inferchain"]["stream_matches_settled"] is True


def test_a_stream_that_breaks_mid_way_is_opened_again_from_the_next_token():
    frames = Frames()
    pieces = pieces_of(["One", " two", " three"])
    dropped = FakeStream(pieces[:1], then=ClientError("ABORTED", "the publisher went silent"))
    source = FakeSource(dropped, FakeStream(pieces[1:]))
    run(frames, follower(frames, settled("One two three", 3)), source)
    assert source.asked == [(EXECUTOR, 0), (EXECUTOR, 1)] and dropped.closed.is_set()
    assert frames.text == "One two three" and frames.finish["inferchain"]["streamed_tokens"] == 3


# --- a client that leaves, through the gateway's own follow ---------------------------------


class FakeAccess:
    """ChainAccess whose follow reports an assignment and then waits until its watcher is closed."""

    def __init__(self):
        self.cancelled = threading.Event()
        self.watcher_closed = threading.Event()

    def watcher(self):
        closed = self.watcher_closed

        class Watcher:
            def close(self):
                closed.set()

        return Watcher()

    def follow(self, posted, watcher, on_view=None):
        on_view(ASSIGNED)
        if not self.watcher_closed.wait(10):
            raise AssertionError("the watch was never closed")
        raise ClientError("CANCELLED", "watch closed")

    def cancel(self, poster, posted):
        self.cancelled.set()
        return False


class FakeStreams:
    def __init__(self, stream):
        self.stream = stream
        self.threads = anyio.CapacityLimiter(4)

    def opener(self, poster, posted):
        return lambda executor, from_token: self.stream


class LeavingRequest:
    """A request whose client disconnects once the first text chunk was written."""

    def __init__(self, frames: Frames):
        self.frames = frames

    async def receive(self):
        await self.frames.texts.wait()
        return {"type": "http.disconnect"}


def test_a_client_that_leaves_mid_stream_stops_the_follow_and_the_job_is_cancelled_when_it_can_be():
    access = FakeAccess()
    stream = FakeStream(pieces_of(["one", " two"], last=False) + [node_pb2.TokenPiece(first_token=2, tokens=1,
                                                                                       text=" three")])
    stream.gate = threading.Event()
    stream.gate.set()
    state = GatewayState(access, None, 0, 1.0, 4, time.time, anyio.CapacityLimiter(4), anyio.CapacityLimiter(4),
                         FakeStreams(stream))
    state.admit(dev_keypair("bob").public_key, 32)  # the request's slot, as _complete takes it
    handlers = Handlers(state)
    frames = Frames()
    completion = parse_chat_request({"model": "tiny", "messages": [{"role": "user", "content": "hi"}],
                                     "stream": True})
    posted = Posted(JOB_ID, b"t" * 32, types_pb2.ModelInfo(name="tiny"))
    poster = SimpleNamespace(keypair=dev_keypair("bob"))

    async def main():
        with anyio.fail_after(10):
            await handlers._events(frames.write, LeavingRequest(frames), completion, posted, poster, ENVELOPE)

    anyio.run(main)
    assert frames.text_before_final and frames.raw[-1] != DONE
    assert access.watcher_closed.is_set() and access.cancelled.is_set() and stream.closed.is_set()
    assert state.in_flight == 0 and not state.by_poster


def test_a_client_that_reads_nothing_has_its_stream_ended_and_its_slot_released():
    produced = []

    async def produce(write):
        try:
            await write("data: 1\n\n")
            await write("data: 2\n\n")
            produced.append("past the stall")
        finally:
            produced.append("released")

    sent = []

    async def send(message):
        sent.append(message)
        if len(sent) > 2:  # the start and the first frame go; then the client's buffers are full
            await anyio.sleep_forever()

    async def main():
        with anyio.fail_after(5):
            await EventStream(produce, {}, stall_timeout=0.2).stream_response(send)

    anyio.run(main)
    assert produced == ["released"] and not any(message.get("more_body") is False for message in sent)


# --- endpoints and connections ---------------------------------------------------------------


def test_endpoints_are_checked_and_cached_for_a_while():
    calls = []
    now = [0.0]

    def executors(model):
        calls.append(model)
        return [SimpleExecutor(b"a" * 32, "127.0.0.1:9944"), SimpleExecutor(b"b" * 32, "bad endpoint:1"),
                SimpleExecutor(b"c" * 32, "")]

    endpoints = ExecutorEndpoints(executors, ttl=10, clock=lambda: now[0])
    assert endpoints.endpoint(b"m", b"a" * 32) == "127.0.0.1:9944"
    assert endpoints.endpoint(b"m", b"b" * 32) is None and endpoints.endpoint(b"m", b"c" * 32) is None
    assert len(calls) == 1
    now[0] = 11
    endpoints.endpoint(b"m", b"a" * 32)
    assert len(calls) == 2


class SimpleExecutor:
    def __init__(self, account, endpoint):
        self.account = account
        self.offer = state_pb2.Offer(endpoint=endpoint)


@pytest.mark.parametrize("endpoint, valid", [
    ("127.0.0.1:9944", True), ("node.example:443", True), ("[::1]:9944", True), ("", False), ("host", False),
    ("host:0", False), ("host:70000", False), ("a b:1", False), ("héllo:1", False), ("x" * 250 + ":1234", True), ("x" * 251 + ":1234", False),
    ("host:²", False), ("host:12\n", False),
])
def test_endpoint_forms(endpoint, valid):
    assert valid_endpoint(endpoint) is valid


def test_one_client_per_endpoint_bounded_and_closed_on_shutdown():
    opened = []

    class Connection:
        def __init__(self, endpoint):
            self.endpoint = endpoint
            self.closed = False
            opened.append(self)

        def close(self):
            self.closed = True

    clients = EndpointClients(limit=2, connect=Connection)
    first = clients.acquire("a:1")
    assert clients.acquire("a:1") is first and len(opened) == 1
    second = clients.acquire("b:1")
    assert clients.acquire("c:1") is None  # both in use
    clients.release("b:1")
    third = clients.acquire("c:1")
    assert third is not None and second.closed and not first.closed  # the idle one made room
    clients.close()
    assert first.closed and third.closed and clients.acquire("a:1") is None


def test_streams_from_one_endpoint_are_bounded_so_the_node_keeps_places_for_its_other_clients():
    clients = EndpointClients(connect=lambda endpoint: object(), per_endpoint=2)
    assert clients.acquire("a:1") is not None and clients.acquire("a:1") is not None
    assert clients.acquire("a:1") is None  # a third stream from a:1 waits for one to end
    assert clients.acquire("b:1") is not None  # another node API is not held back
    clients.release("a:1")
    assert clients.acquire("a:1") is not None


def test_piece_frames_are_whole_server_sent_events():
    frames = Frames()
    run(frames, follower(frames, settled("é\nx", 2)), FakeSource(FakeStream(pieces_of(["é", "\nx"]))))
    assert all(frame.startswith("data: ") and frame.endswith("\n\n") and "\n" not in frame[:-2]
               for frame in frames.raw)
    assert frames.text == "é\nx"


# --- end to end: a real dev node whose worker runs the embedded model and publishes its tokens ----------


PROMPT = "Name three colours."


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    with worker_node(tmp_path_factory.mktemp("streaming-node")) as node:
        wait_for_endpoint(node)
        yield node


def wait_for_endpoint(node: NodeProcess, timeout: float = 60.0) -> None:
    """Until the worker's offer names the endpoint its tokens are streamed from (its SetOffer at start)."""
    deadline = time.monotonic() + timeout
    with Client(node.target) as client:
        while not any(executor.offer.endpoint for executor in client.get_executors()):
            assert time.monotonic() < deadline, f"no offer endpoint within {timeout} s:\n{node.log()[-3000:]}"
            time.sleep(0.25)


@pytest.fixture(scope="module")
def gateway(node, tmp_path_factory):
    with running_gateway(node.target, tmp_path_factory.mktemp("streaming-gateway") / "api-keys.json",
                         ["bob"]) as served:
        yield served


def streamed_documents(gateway, path: str, body: dict, on_first_text=None) -> tuple[str, list[dict]]:
    """The job id and the chunks of one streamed request; `on_first_text(job_id)` runs as the first text arrives."""
    base_url, keys = gateway
    documents, job_id = [], None
    with httpx.stream("POST", f"{base_url}{path}", json={**body, "stream": True}, timeout=120,
                      headers={"Authorization": f"Bearer {keys['bob']}"}) as reply:
        assert reply.status_code == 200, reply.read()
        job_id = reply.headers["x-inferchain-job"]
        for line in reply.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            document = json.loads(line[len("data: "):])
            if on_first_text is not None and document.get("choices") and Frames.text_of(document):
                on_first_text(job_id)
                on_first_text = None
            documents.append(document)
    return job_id, documents


def job_on_chain(node: NodeProcess, job_id: str) -> JobView:
    with Client(node.target) as client:
        return client.get_job(bytes.fromhex(job_id))


@pytest.mark.slow
def test_a_streamed_chats_first_tokens_arrive_before_the_result_is_revealed_and_join_to_the_settled_text(
        gateway, node):
    seen = {}

    def check_unrevealed(job_id: str) -> None:
        seen["view"] = job_on_chain(node, job_id)

    job_id, documents = streamed_documents(
        gateway, "/chat/completions",
        {"model": EMBEDDED_NAME, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 24,
         "temperature": 0}, check_unrevealed)
    at_first_text = seen["view"]
    assert at_first_text.result is None and not at_first_text.final
    assert all(slot.status != state_pb2.ASSIGNMENT_STATUS_REVEALED and not slot.reveal.text
               for slot in at_first_text.job.assignments)
    view = job_on_chain(node, job_id)
    assert view.settled
    text = "".join(Frames.text_of(document) for document in documents if document.get("choices"))
    assert text == view.result.text
    assert {document["id"] for document in documents} == {f"chatcmpl-{job_id}"}
    [finish] = [document for document in documents if document["choices"][0]["finish_reason"]]
    extension = finish["inferchain"]
    assert extension["stream_matches_settled"] is True and extension["verdict"] == "settled"
    assert extension["streamed_tokens"] == len(view.result.tokens)


@pytest.mark.slow
def test_a_streamed_text_completion_comes_from_the_executor_with_its_usage(gateway, node):
    job_id, documents = streamed_documents(
        gateway, "/completions", {"model": EMBEDDED_NAME, "prompt": "The sky is", "max_tokens": 8, "temperature": 0,
                                  "stream_options": {"include_usage": True}})
    *chunks, usage = documents
    view = job_on_chain(node, job_id)
    assert "".join(chunk["choices"][0]["text"] for chunk in chunks) == view.result.text
    assert usage["choices"] == [] and usage["usage"]["completion_tokens"] == len(view.result.tokens)
    extension = chunks[-1]["inferchain"]
    assert extension["stream_matches_settled"] is True and extension["streamed_tokens"] == len(view.result.tokens)


@pytest.mark.slow
def test_a_client_that_leaves_after_the_first_tokens_leaves_the_job_to_settle_and_the_gateway_serving(gateway, node):
    base_url, keys = gateway
    body = {"model": EMBEDDED_NAME, "messages": [{"role": "user", "content": "Write a story about a fox."}],
            "max_tokens": 48, "temperature": 0, "stream": True}
    with httpx.stream("POST", f"{base_url}/chat/completions", json=body, timeout=120,
                      headers={"Authorization": f"Bearer {keys['bob']}"}) as reply:
        job_id = reply.headers["x-inferchain-job"]
        for line in reply.iter_lines():
            if line.startswith("data: {") and Frames.text_of(json.loads(line[len("data: "):])):
                break  # the first tokens; then the client goes
    deadline = time.monotonic() + 60
    while not (view := job_on_chain(node, job_id)).final:  # assigned: it runs to its end, and is paid
        assert time.monotonic() < deadline, f"the job is still {view.status}"
        time.sleep(0.2)
    assert view.settled
    _, documents = streamed_documents(gateway, "/completions", {"model": EMBEDDED_NAME, "prompt": "Hi",
                                                                 "max_tokens": 2, "temperature": 0})
    assert documents[-1]["choices"][0]["finish_reason"] in ("stop", "length")

