"""The gateway under load, against a real dev node whose own worker runs the embedded model: 1,000 concurrent
requests (chat and streamed chat; some stream clients leave after the first event) at a gateway that follows
at most a few jobs at once, while one client holds a stream open and never reads it.

Every answer is a completion in OpenAI's shape or back-pressure (429 or 503 with Retry-After, in OpenAI's
error envelope); the gateway and the node serve a request after the storm; every job the gateway posted ends
(settled, or refunded: expired or cancelled) and Bob's balance moves by exactly his fees and what his settled
jobs paid; the never-reading client's job ends too; and the log holds no API key and no prompt. The storm
is sent again at a gateway with its default bound (64), more jobs than the chain queues for one poster.

Each storm takes under half a minute on two cores (most requests are refused at once; the jobs let in run 2 to
4 tokens each).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from openai.types import CompletionUsage
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from chain.client import Client, ClientError
from chain.client.results import Account
from chain.crypto import dev_keypair
from chain.gateway.app import MAX_IN_FLIGHT as DEFAULT_MAX_IN_FLIGHT
from inference.model_store import EMBEDDED_NAME
from proto import state_pb2, types_pb2
from tests.gateway.serving import running_gateway, worker_node
from tests.nodes import NodeProcess

pytestmark = pytest.mark.slow

REQUESTS = 1000
# Few slots, so that most of the storm meets back-pressure and the jobs let in stay few (each is real inference).
MAX_IN_FLIGHT = 8
# In every prompt: it must never reach a log line.
MARKER = f"quokka-{secrets.token_hex(6)}"
ENDED = {state_pb2.JOB_STATUS_SETTLED, state_pb2.JOB_STATUS_EXPIRED, state_pb2.JOB_STATUS_CANCELLED}
FINAL_WAIT_S = 150.0


@dataclass
class Outcome:
    """One request of the storm as its client saw it."""

    stream: bool
    leaves: bool = False  # reads the first event of its stream, then goes
    status: int = 0
    headers: dict = field(default_factory=dict)
    body: bytes = b""
    events: list[str] = field(default_factory=list)  # a stream's `data:` payloads, in order
    failure: str = ""  # a transport error: the gateway dropped or never answered the request


@dataclass
class Storm:
    """What one storm left: every answer, the request after it, the silent client's bytes, Bob's jobs and books."""

    outcomes: list[Outcome]
    after: httpx.Response
    silent_reply: bytes
    jobs: list[state_pb2.Job]
    # Jobs named in an answer's x-inferchain-job header that ListJobs by poster did not return: the job read by
    # its id (None: the chain has no such job).
    unlisted: dict[str, state_pb2.Job | None]
    fees: int
    before: Account
    after_account: Account
    log: str
    node_log: str
    api_key: str
    seconds: float



@pytest.fixture(scope="module")
def node(tmp_path_factory):
    with worker_node(tmp_path_factory.mktemp("gateway-load")) as node:
        yield node


class Captured(logging.Handler):
    """Every record any logger emits while installed, formatted with its traceback."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextlib.contextmanager
def captured_logs() -> Iterator[Captured]:
    """Every log record of this process while open, the gateway's info lines included."""
    handler = Captured()
    # uvicorn's loggers do not propagate to the root (and uvicorn's Config resets their handlers: so this is
    # entered once the gateway runs).
    loggers = [logging.getLogger(name) for name in ("", "uvicorn", "uvicorn.access")]
    chain_logger = logging.getLogger("chain")
    chain_level = chain_logger.level
    chain_logger.setLevel(logging.DEBUG)  # the gateway's info lines (job ids) are written, and checked
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
        chain_logger.setLevel(chain_level)


@pytest.fixture(scope="module")
def storm(node, tmp_path_factory) -> Storm:
    return run_storm(node, tmp_path_factory.mktemp("gateway-load-keys") / "api-keys.json", MAX_IN_FLIGHT)


@pytest.fixture(scope="module")
def default_storm(node, tmp_path_factory, storm) -> Storm:
    """The same storm at a gateway with its default bound (64 jobs followed), after the first storm ended."""
    return run_storm(node, tmp_path_factory.mktemp("gateway-load-keys") / "api-keys.json", DEFAULT_MAX_IN_FLIGHT)


def run_storm(node: NodeProcess, keys_path: Path, max_in_flight: int) -> Storm:
    """The silent client, the storm, a request after it; then every job ended and Bob's books read."""
    with Client(node.target) as client, running_gateway(node.target, keys_path, ["bob"],
                                                        max_in_flight=max_in_flight) as (base_url, keys), \
            captured_logs() as log:
        api_key = keys["bob"]
        before = client.account("bob")
        silent = open_silent_stream(base_url, api_key)
        try:
            started = time.monotonic()
            outcomes = asyncio.run(send_storm(base_url, api_key))
            seconds = time.monotonic() - started
            after = httpx.post(f"{base_url}/chat/completions", json=chat_body("after", 2, False), timeout=120,
                               headers={"Authorization": f"Bearer {api_key}"})
            wait_until_final(client, before.height)
            silent_reply = read_what_came(silent)
        finally:
            silent.close()
        after_account, jobs = settled_books(client, before.height)
        fees = fees_paid(client, dev_keypair("bob").public_key, before.height, after_account.height)
        listed = {job.id.hex() for job in jobs}
        unlisted = {job_id: job_or_none(client, job_id) for job_id in named_jobs(outcomes) - listed}
    return Storm(outcomes, after, silent_reply, jobs, unlisted, fees, before, after_account, "\n".join(log.lines),
                 node.log(), api_key, seconds)


def chat_body(tag: str, max_tokens: int, stream: bool) -> dict:
    return {"model": EMBEDDED_NAME, "messages": [{"role": "user", "content": f"{MARKER} {tag}: say hi"}],
            "max_tokens": max_tokens, "temperature": 0, "stream": stream}


def open_silent_stream(base_url: str, api_key: str) -> socket.socket:
    """A client that sends a streaming request and then reads nothing, keeping the connection open."""
    address = urlsplit(base_url)
    body = json.dumps(chat_body("silent", 4, True)).encode()
    request = (f"POST {address.path}/chat/completions HTTP/1.1\r\nHost: {address.netloc}\r\n"
               f"Authorization: Bearer {api_key}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    connection = socket.socket()
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)  # as little room as the kernel allows
    connection.connect((address.hostname, address.port))
    connection.sendall(request)
    return connection


def read_what_came(connection: socket.socket, timeout: float = 30.0) -> bytes:
    """Everything the gateway wrote to the silent client, read only now (until [DONE] or the timeout)."""
    connection.settimeout(1.0)
    received = b""
    deadline = time.monotonic() + timeout
    while b"data: [DONE]" not in received and time.monotonic() < deadline:
        try:
            chunk = connection.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            break
        received += chunk
    return received


async def send_storm(base_url: str, api_key: str) -> list[Outcome]:
    limits = httpx.Limits(max_connections=REQUESTS, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=httpx.Timeout(120, pool=None),
                                 headers={"Authorization": f"Bearer {api_key}"}) as http:
        return list(await asyncio.gather(*(one_request(http, index) for index in range(REQUESTS))))


async def one_request(http: httpx.AsyncClient, index: int) -> Outcome:
    stream = index % 2 == 1
    outcome = Outcome(stream, leaves=index % 8 == 3)
    body = chat_body(f"request {index}", 2 + index % 3, stream)
    try:
        async with http.stream("POST", "/chat/completions", json=body) as reply:
            outcome.status, outcome.headers = reply.status_code, dict(reply.headers)
            if stream and reply.status_code == 200:
                async for line in reply.aiter_lines():
                    if line.startswith("data: "):
                        outcome.events.append(line[len("data: "):])
                        if outcome.leaves:
                            break  # the connection closes with the stream unread
            else:
                outcome.body = await reply.aread()
    except httpx.HTTPError as error:
        outcome.failure = f"{type(error).__name__}: {error}"
    return outcome


def wait_until_final(client: Client, from_height: int) -> None:
    """Until every job Bob posted after `from_height` is final with nothing left in escrow (or the wait is over:
    the test then names the jobs still open)."""
    deadline = time.monotonic() + FINAL_WAIT_S
    while time.monotonic() < deadline:
        jobs = bobs_jobs(client, from_height)
        if all(job.status in ENDED | {state_pb2.JOB_STATUS_REJECTED} and job.escrow == 0 for job in jobs):
            return
        time.sleep(0.5)


def settled_books(client: Client, from_height: int) -> tuple[Account, list[state_pb2.Job]]:
    """Bob's account and his jobs read with nothing changing between (a pruned record returns its deposit)."""
    while True:
        account = client.account("bob")
        jobs = bobs_jobs(client, from_height)
        again = client.account("bob")
        if (again.free, again.reserved, again.nonce) == (account.free, account.reserved, account.nonce):
            return again, jobs


def bobs_jobs(client: Client, from_height: int) -> list[state_pb2.Job]:
    jobs, token = [], b""
    while True:
        page = client.list_jobs(poster="bob", limit=100, page_token=token)
        jobs += [job for job in page.jobs if job.posted_height > from_height]
        token = page.next_page_token
        if not token:
            return jobs


def named_jobs(outcomes: list[Outcome]) -> set[str]:
    """The job ids the gateway's answers named (x-inferchain-job)."""
    return {outcome.headers["x-inferchain-job"] for outcome in outcomes if "x-inferchain-job" in outcome.headers}


def job_or_none(client: Client, job_id: str) -> state_pb2.Job | None:
    try:
        return client.get_job(bytes.fromhex(job_id)).job
    except ClientError:
        return None


def fees_paid(client: Client, sender: bytes, from_height: int, to_height: int) -> int:
    """The transaction fees `sender` paid in blocks from_height+1 to to_height."""
    total = 0
    for height in range(from_height + 1, to_height + 1):
        block = client.block(height)
        for raw, receipt in zip(block.transactions, block.receipts):
            body = types_pb2.TransactionBody.FromString(types_pb2.Transaction.FromString(raw).body)
            if body.sender == sender:
                total += receipt.fee_paid
    return total


def error_of(document: dict) -> dict:
    assert set(document) == {"error"} and set(document["error"]) == {"message", "type", "param", "code"}, document
    return document["error"]


def check_completion(outcome: Outcome) -> None:
    """A whole answer in OpenAI's chat.completion shape, for the job its header names."""
    document = json.loads(outcome.body)
    completion = ChatCompletion.model_validate(document)
    job = outcome.headers["x-inferchain-job"]
    assert completion.id == f"chatcmpl-{job}" and completion.object == "chat.completion"
    [choice] = completion.choices
    assert choice.message.role == "assistant" and isinstance(choice.message.content, str)
    assert choice.finish_reason in ("stop", "length")
    assert isinstance(completion.usage, CompletionUsage) and 1 <= completion.usage.completion_tokens <= 4
    assert document["inferchain"]["verdict"] == "settled"


def check_stream(outcome: Outcome) -> None:
    """Server-sent chat.completion.chunk events with one id, a finish reason, no error, then [DONE]."""
    assert outcome.headers["content-type"].startswith("text/event-stream")
    assert outcome.events and outcome.events[-1] == "[DONE]", outcome.events[-3:]
    chunks = [json.loads(event) for event in outcome.events[:-1]]
    assert not [chunk for chunk in chunks if "error" in chunk], chunks
    parsed = [ChatCompletionChunk.model_validate(chunk) for chunk in chunks]
    assert {chunk.id for chunk in parsed} == {f"chatcmpl-{outcome.headers['x-inferchain-job']}"}
    assert parsed[0].choices[0].delta.role == "assistant"
    assert parsed[-1].choices[0].finish_reason in ("stop", "length")
    assert "".join(chunk.choices[0].delta.content or "" for chunk in parsed)


def check_back_pressure(outcome: Outcome) -> None:
    """429 or 503 in OpenAI's error envelope, with a Retry-After in whole seconds."""
    assert outcome.status in (429, 503), (outcome.status, outcome.body[:300])
    assert outcome.headers.get("retry-after", "").isdigit(), outcome.headers
    error = error_of(json.loads(outcome.body))
    assert error["type"] in ("rate_limit_error", "service_unavailable") and error["code"], error


def check_answers(storm: Storm) -> None:
    """Every request of the storm got an HTTP answer: a completion, or back-pressure."""
    dropped = [outcome.failure for outcome in storm.outcomes if outcome.failure]
    assert not dropped, f"{len(dropped)} requests got no HTTP answer; first: {dropped[0]}"
    served = [outcome for outcome in storm.outcomes if outcome.status == 200]
    refused = [outcome for outcome in storm.outcomes if outcome.status != 200]
    for outcome in served:
        if outcome.leaves and outcome.stream:
            first = ChatCompletionChunk.model_validate(json.loads(outcome.events[0]))
            assert first.choices[0].delta.role == "assistant"
        elif outcome.stream:
            check_stream(outcome)
        else:
            check_completion(outcome)
    for outcome in refused:
        check_back_pressure(outcome)
    # Some of each: the storm was let in up to the bound, and refused past it.
    assert served and refused, {outcome.status for outcome in storm.outcomes}
    assert len(served) < REQUESTS // 2


def check_books(storm: Storm) -> None:
    """Every job Bob posted ended with nothing left in escrow, and his funds moved by what he paid, no more."""
    # A PostJob the node's pool took without a dry run (queued behind Bob's pending ones) and that failed in its
    # block made no job and reserved nothing (its fee is in storm.fees): its answer must be an error.
    never = {job_id for job_id, job in storm.unlisted.items() if job is None}
    for outcome in storm.outcomes:
        if outcome.headers.get("x-inferchain-job") in never:
            errors = [event for event in outcome.events if event.startswith('{"error"')]
            assert outcome.status >= 400 or errors, (outcome.status, outcome.body[:300], outcome.events[-2:])
    unlisted = {job_id: (job.status, job.posted_height) for job_id, job in storm.unlisted.items() if job is not None}
    assert not unlisted, f"jobs the chain has but ListJobs by poster did not return (status, posted height): {unlisted}"
    still_open = [(job.id.hex()[:12], job.status, job.escrow) for job in storm.jobs
                  if job.status not in ENDED or job.escrow]
    assert not still_open, f"jobs not ended (id, status, escrow): {still_open}"
    # Bob's funds (free and reserved) fell by exactly his transaction fees and what his jobs paid: the
    # executors' net pay, the protocol fee, and the queue fee of a job that had to wait; every other unit of
    # every escrow came back.
    spent = sum(sum(slot.payment for slot in job.assignments) + job.protocol_fee + job.queue_fee for job in storm.jobs)
    before = storm.before.free + storm.before.reserved
    after = storm.after_account.free + storm.after_account.reserved
    assert before - after == storm.fees + spent
    held = sum(job.storage_deposit for job in storm.jobs)  # returned when a record is pruned
    assert storm.after_account.reserved - storm.before.reserved == held


def test_every_answer_in_the_storm_is_a_completion_or_back_pressure_with_retry_after(storm):
    check_answers(storm)


def test_the_gateway_and_the_node_serve_a_request_after_the_storm(storm):
    assert storm.after.status_code == 200, storm.after.text[:500]
    assert storm.after.json()["object"] == "chat.completion"


def test_every_job_the_gateway_posted_ended_and_no_escrow_is_lost(storm):
    check_books(storm)


def test_a_client_that_never_reads_its_stream_blocks_nobody_and_its_job_ends(storm):
    head, _, _ = storm.silent_reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), storm.silent_reply[:300]
    job_ids = [line.split(b":", 1)[1].strip().decode() for line in head.split(b"\r\n")
               if line.lower().startswith(b"x-inferchain-job:")]
    [job_id] = job_ids
    [job] = [job for job in storm.jobs if job.id.hex() == job_id]
    assert job.status in ENDED and job.escrow == 0
    # It was opened before the storm and held its slot: the others were still served.
    assert any(outcome.status == 200 for outcome in storm.outcomes) and storm.after.status_code == 200


def test_no_api_key_or_prompt_reaches_the_log(storm):
    assert "posted" in storm.log  # the gateway's lines were captured
    assert storm.api_key not in storm.log
    assert MARKER not in storm.log
    assert storm.api_key not in storm.node_log and MARKER not in storm.node_log  # nor the node's or worker's


def test_at_the_default_bound_every_job_still_ends_and_no_escrow_is_lost(default_storm):
    # 64 jobs followed at once are more than the executor's capacity (8) and Bob's queue on chain (32) hold:
    # some wait (burning the queue fee), some expire at their draw, refunded.
    check_books(default_storm)
    assert default_storm.after.status_code == 200, default_storm.after.text[:500]


def test_at_the_default_bound_a_job_past_the_posters_queue_is_back_pressure_not_a_504(default_storm):
    """Past the poster's queue on chain (jobs.params.max_queued_per_poster) a job was admitted, then expired at
    its draw (504), or its PostJob failed in its block (a 200 stream naming a job that never existed): the
    gateway now answers 429 with Retry-After before posting."""
    check_answers(default_storm)
