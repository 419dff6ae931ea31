"""The gateway's refusals in OpenAI's error envelope, and `inferchain gateway` itself, against a real dev node
that runs no worker (a job posted there is assigned to Alice, whom nobody plays, and expires: 504).

Blocks every 250 ms and a 14-block job timeout, so an expiry shows within seconds; Alice's offer takes one
job at a time, so a second job waits queued (cancellable) while a first one is assigned to her.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import openai
import pytest
from openai import OpenAI
from starlette.testclient import TestClient

from chain.client import Client, ClientError
from chain.gateway.app import create_app
from chain.gateway.jobs import ChainAccess
from chain.gateway.keys import open_api_keys
from chain.keys import generate_key_file
from inference.model_store import EMBEDDED_NAME
from inference.registration import EMBEDDED_CONTEXT_LENGTH
from tests.commands import ROOT, inferchain, one_line_error
from tests.conftest import wait_first_block
from tests.gateway.serving import running_gateway
from tests.nodes import NodeProcess, free_port, market_genesis

pytestmark = pytest.mark.slow

SHORT_DEADLINES = {"commit_blocks": 3, "min_tokens_per_block": 100, "reveal_blocks": 3, "job_timeout_blocks": 14}
HELLO = [{"role": "user", "content": "Hello"}]


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    base = tmp_path_factory.mktemp("gateway-errors")
    genesis = market_genesis(base / "genesis.json", 250, **SHORT_DEADLINES)
    document = json.loads(genesis.read_text())
    document["app_state"]["staking"]["stakes"][0]["offer"]["capacity"] = 1  # one job at a time: the next queues
    genesis.write_text(json.dumps(document))
    node = NodeProcess(base / "node", free_port(), ("--chain", str(genesis))).start()
    try:
        wait_first_block(node.target)
        yield node
    finally:
        node.kill()


@pytest.fixture(scope="module")
def gateway(node, tmp_path_factory):
    base = tmp_path_factory.mktemp("gateway-keys")
    empty, _ = generate_key_file(base / "empty.json")  # an account the chain has never funded
    with running_gateway(node.target, base / "api-keys.json", ["bob", str(empty)]) as (base_url, keys):
        yield base_url, keys["bob"], keys[str(empty)]


def post(gateway, path: str, body, key: str | None = None, **kwargs) -> httpx.Response:
    base_url, bob, _ = gateway
    content = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return httpx.post(f"{base_url}{path}", content=content, timeout=60,
                      headers={"Authorization": f"Bearer {key or bob}", "Content-Type": "application/json"}, **kwargs)


def error_of(reply: httpx.Response) -> dict:
    document = reply.json()
    assert set(document) == {"error"} and set(document["error"]) == {"message", "type", "param", "code"}
    return document["error"]


def test_a_missing_or_unknown_api_key_is_401(gateway):
    base_url = gateway[0]
    with pytest.raises(openai.AuthenticationError) as refused:
        OpenAI(base_url=base_url, api_key="ick-not-a-key", max_retries=0).models.list()
    assert refused.value.status_code == 401 and refused.value.code == "invalid_api_key"
    reply = httpx.post(f"{base_url}/chat/completions", json={"model": EMBEDDED_NAME, "messages": HELLO})
    assert reply.status_code == 401 and error_of(reply)["code"] == "invalid_api_key"


@pytest.mark.parametrize("body, param", [
    (b'{"model": "x", "messages": [', None),
    ({"model": EMBEDDED_NAME}, "messages"),
    ({"model": EMBEDDED_NAME, "messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role"),
    ({"model": EMBEDDED_NAME, "messages": HELLO, "temperature": "warm"}, "temperature"),
    ({"model": EMBEDDED_NAME, "messages": HELLO, "temperature": 101}, "temperature"),
    ({"model": EMBEDDED_NAME, "messages": HELLO, "temperature": 2.5}, "temperature"),  # OpenAI's range is 0 to 2
    ({"model": EMBEDDED_NAME, "messages": HELLO, "max_tokens": EMBEDDED_CONTEXT_LENGTH}, "max_tokens"),
    ({"model": EMBEDDED_NAME, "messages": HELLO, "max_tokens": 1.5}, "max_tokens"),
    ({"model": EMBEDDED_NAME, "messages": HELLO, "inferchain": {"top_k": -1}}, "inferchain.top_k"),
    ({"model": EMBEDDED_NAME, "messages": HELLO, "stop": ["\n"]}, "stop"),
    (b'{"model": "m", "messages": [{"role": "user", "content": "a\\ud800b"}]}', "messages[0].content"),
    ({"model": EMBEDDED_NAME, "messages": HELLO, "seed": 10**40}, "seed"),
    ({"model": EMBEDDED_NAME, "messages": HELLO, "inferchain": {"engine_classes": ["GPU"]}},
     "inferchain.engine_classes[0]"),
])
def test_an_invalid_request_is_400_naming_the_field(gateway, node, body, param):
    reply = post(gateway, "/chat/completions", body)
    assert reply.status_code == 400, reply.text
    error = error_of(reply)
    assert error["type"] == "invalid_request_error" and error["param"] == param


def test_an_engine_class_the_model_does_not_register_is_400_naming_it(gateway):
    for extras in ({"engine_classes": ["gpu-a"]}, {"engine_classes": ["cpu", "gpu-a"], "max_price_per_token": 10**9}):
        reply = post(gateway, "/chat/completions", {"model": EMBEDDED_NAME, "messages": HELLO, "inferchain": extras})
        assert reply.status_code == 400, reply.text
        error = error_of(reply)
        assert error["param"] == "inferchain.engine_classes" and "no engine class 'gpu-a' (its classes: cpu)" in \
            error["message"]
        assert "x-inferchain-job" not in reply.headers


def test_an_unknown_model_is_404(gateway):
    base_url, bob, _ = gateway
    client = OpenAI(base_url=base_url, api_key=bob, max_retries=0)
    with pytest.raises(openai.NotFoundError) as refused:
        client.chat.completions.create(model="no-such-model", messages=HELLO)
    assert refused.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


def test_a_body_over_the_bound_is_413_before_parsing(gateway):
    reply = post(gateway, "/chat/completions", b"[" * (1024 * 1024 + 1))
    assert reply.status_code == 413 and error_of(reply)["code"] == "request_too_large"


def test_a_key_without_balance_is_402_and_nothing_is_posted(gateway):
    base_url, _, empty = gateway
    reply = post(gateway, "/chat/completions", {"model": EMBEDDED_NAME, "messages": HELLO}, key=empty)
    assert reply.status_code == 402, reply.text
    assert error_of(reply)["code"] == "insufficient_balance" and "x-inferchain-job" not in reply.headers


def test_a_job_that_expires_is_504_with_its_job_id(gateway, node):
    reply = post(gateway, "/chat/completions", {"model": EMBEDDED_NAME, "messages": HELLO, "max_tokens": 4})
    assert reply.status_code == 504, reply.text
    assert error_of(reply)["code"] == "job_expired" and reply.headers["x-inferchain-job"] in error_of(reply)["message"]


def job_or_none(client: Client, job_id: bytes):
    try:
        return client.get_job(job_id)
    except ClientError as error:
        assert error.code == "NOT_FOUND", error.message
        return None


def test_a_client_that_leaves_has_its_still_queued_job_cancelled(gateway, node):
    # Long enough to hold Alice's one slot until the second job's draw (a short one could finish first, and the
    # second would be assigned, no longer cancellable).
    busy = threading.Thread(target=post, args=(gateway, "/chat/completions",
                                               {"model": EMBEDDED_NAME, "max_tokens": 256, "messages": [
                                                   {"role": "user", "content": "Write a long story about a fox, in "
                                                                               "five paragraphs."}]}))
    busy.start()
    try:
        with Client(node.target) as client:
            deadline = time.monotonic() + 20
            while not client.list_jobs(poster="bob", status="assigned").jobs:
                assert time.monotonic() < deadline, "the first job was never assigned"
                time.sleep(0.1)
            base_url, bob, _ = gateway
            body = {"model": EMBEDDED_NAME, "messages": HELLO, "max_tokens": 4, "stream": True}
            with httpx.stream("POST", f"{base_url}/chat/completions", json=body, timeout=60,
                              headers={"Authorization": f"Bearer {bob}"}) as reply:
                job_id = bytes.fromhex(reply.headers["x-inferchain-job"])
                assert next(reply.iter_lines()).startswith("data: ")  # the role chunk; then the client goes
            deadline = time.monotonic() + 20
            while not (view := job_or_none(client, job_id)) or not view.final:
                assert time.monotonic() < deadline, f"the job is still {view.status if view else 'not included'}"
                time.sleep(0.1)
        assert view.status == "cancelled" and view.job.refunded > 0
    finally:
        busy.join(timeout=60)


def test_an_idle_connection_is_kept_past_the_clients_own_five_seconds(gateway):
    """uvicorn's default closed idle connections after 5 s, as httpx (the openai package's) drops its own: a
    client reusing one at about 5 s raced the close and got a ReadError (bench/gateway.py did). The gateway
    keeps them longer (chain/gateway/server.py), so the client always closes first."""
    base_url, bob, _ = gateway
    host, port = base_url.removeprefix("http://").removesuffix("/v1").split(":")
    request = f"GET /v1/nothing HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {bob}\r\n\r\n".encode()
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(request)
        assert read_response(connection).startswith(b"HTTP/1.1 404")
        time.sleep(6.5)  # idle past httpx's keepalive_expiry and uvicorn's default
        connection.sendall(request)
        assert read_response(connection).startswith(b"HTTP/1.1 404")


@pytest.fixture(scope="module")
def impatient(node, tmp_path_factory):
    """A gateway that gives a request's head 1.5 s and its body 1.5 s (the defaults are 65 s and 30 s)."""
    base = tmp_path_factory.mktemp("gateway-impatient")
    with running_gateway(node.target, base / "api-keys.json", ["bob"], body_s=1.5, request_head_s=1.5) as (
            base_url, keys):
        host, port = base_url.removeprefix("http://").removesuffix("/v1").split(":")
        yield (host, int(port)), keys["bob"]


def closed_by_server_within(connection: socket.socket, seconds: float) -> bool:
    """Whether the server closes the connection within `seconds` (what it sends first is ignored)."""
    connection.settimeout(seconds)
    try:
        while connection.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


def test_a_connection_that_sends_no_request_is_closed_at_the_head_deadline(impatient):
    """uvicorn's keep-alive timer starts only after a response: a connection that never sent a request was held
    for ever (chain/gateway/server.py)."""
    address, bob = impatient
    with socket.create_connection(address, timeout=10) as silent:
        started = time.monotonic()
        assert closed_by_server_within(silent, 10)
        assert 1.0 < time.monotonic() - started < 5


def test_a_head_sent_a_byte_at_a_time_is_closed_at_its_deadline_not_held_by_each_byte(impatient):
    """Any byte stopped uvicorn's keep-alive timer: a head trickled a byte at a time held the connection for ever."""
    address, bob = impatient
    head = f"GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {bob}\r\n\r\n".encode()
    with socket.create_connection(address, timeout=10) as slow:
        started = time.monotonic()
        for byte in head[:8]:
            try:
                slow.sendall(bytes([byte]))
            except OSError:
                break
            if closed_by_server_within(slow, 0.5):
                break
        else:
            assert closed_by_server_within(slow, 5)
        assert time.monotonic() - started < 4


def test_a_connection_that_answered_must_send_its_next_head_within_the_deadline(impatient):
    address, bob = impatient
    request = f"GET /v1/nothing HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {bob}\r\n\r\n".encode()
    with socket.create_connection(address, timeout=10) as connection:
        for _ in range(2):  # a prompt next request on the same connection is served...
            connection.sendall(request)
            assert read_response(connection).startswith(b"HTTP/1.1 404")
            time.sleep(0.5)
        connection.sendall(request[:10])  # ...a head left unfinished is not
        assert closed_by_server_within(connection, 5)


def test_a_body_that_does_not_arrive_in_time_is_408_in_the_envelope(impatient):
    address, bob = impatient
    body = json.dumps({"model": EMBEDDED_NAME, "messages": HELLO}).encode()
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {bob}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    with socket.create_connection(address, timeout=10) as connection:
        connection.sendall(head + body[:5])  # the rest never comes
        reply = read_response(connection)
    status, _, rest = reply.partition(b"\r\n")
    assert status.startswith(b"HTTP/1.1 408")
    error = json.loads(rest.partition(b"\r\n\r\n")[2])["error"]
    assert error["code"] == "request_timeout" and "1.5 s" in error["message"]


def test_a_prompt_request_is_served_by_the_impatient_gateway(impatient):
    address, bob = impatient
    reply = httpx.get(f"http://{address[0]}:{address[1]}/v1/models", headers={"Authorization": f"Bearer {bob}"},
                      timeout=30)
    assert reply.status_code == 200 and reply.json()["data"]


def read_response(connection: socket.socket) -> bytes:
    """One HTTP/1.1 response with a Content-Length body, read whole (b"" if the server closed the connection)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += connection.recv(65536)
    return data


def test_a_full_gateway_is_429_with_retry_after(node, tmp_path):
    api_keys, key = open_api_keys(tmp_path / "keys.json", ["bob"])
    with TestClient(create_app(node.target, api_keys, max_in_flight=0)) as client:
        reply = client.post("/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                            json={"model": EMBEDDED_NAME, "messages": HELLO})
    assert reply.status_code == 429 and reply.headers["retry-after"].isdigit()
    assert error_of(reply)["type"] == "rate_limit_error"


def test_an_unreachable_node_is_503_with_retry_after_and_unknown_routes_are_enveloped(tmp_path):
    api_keys, key = open_api_keys(tmp_path / "keys.json", ["bob"])
    with TestClient(create_app(f"127.0.0.1:{free_port()}", api_keys)) as client:
        reply = client.get("/v1/models", headers={"Authorization": f"Bearer {key}"})
        assert reply.status_code == 503 and reply.headers["retry-after"].isdigit()
        assert error_of(reply)["code"] == "node_unavailable"
        assert client.get("/v1/nothing").status_code == 404 and error_of(client.get("/v1/nothing"))
        assert client.get("/v1/chat/completions").status_code == 405


def test_a_model_no_executor_serves_is_503_not_ready(node, tmp_path, monkeypatch):
    # The dev chain registers one model and Alice's offer serves it: her offer is hidden here.
    monkeypatch.setattr(ChainAccess, "serving", lambda self, model: 0)
    api_keys, key = open_api_keys(tmp_path / "keys.json", ["bob"])
    with TestClient(create_app(node.target, api_keys)) as client:
        reply = client.get(f"/v1/models/{EMBEDDED_NAME}", headers={"Authorization": f"Bearer {key}"})
    assert reply.status_code == 503 and reply.headers["retry-after"].isdigit()
    assert error_of(reply)["code"] == "model_not_ready"


# --- inferchain gateway --------------------------------------------------------------------------


def test_the_command_prints_the_url_and_a_key_serves_and_exits_0_on_sigterm(node, tmp_path):
    keys_file = tmp_path / "api-keys.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "chain.cli", "gateway", "--node", node.target, "--key", "bob", "--listen",
         "127.0.0.1:0", "--api-keys", str(keys_file)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        url_line, key_line = process.stdout.readline(), process.stdout.readline()
        assert url_line.startswith("OpenAI-compatible API: http://127.0.0.1:") and url_line.rstrip().endswith("/v1")
        base_url, api_key = url_line.split(": ", 1)[1].strip(), key_line.split(": ", 1)[1].strip()
        models = OpenAI(base_url=base_url, api_key=api_key, max_retries=0).models.list().data
        assert EMBEDDED_NAME in [model.id for model in models]
        assert oct(keys_file.stat().st_mode & 0o777) == "0o600"
        assert json.loads(keys_file.read_text())["api_keys"] == {api_key: "bob"}
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        assert api_key not in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_bad_arguments_are_one_line_and_a_non_zero_exit(tmp_path):
    not_keys = tmp_path / "not-keys.json"
    not_keys.write_text("[1, 2")
    result = inferchain("gateway", "--key", "bob", "--api-keys", str(not_keys), "--listen", "127.0.0.1:0")
    assert result.returncode != 0 and "is not an API-key file" in one_line_error(result)
    result = inferchain("gateway", "--key", "./missing.json", "--api-keys", str(tmp_path / "k.json"))
    assert result.returncode != 0 and "does not exist" in one_line_error(result)
    result = inferchain("gateway", "--key", "bob", "--listen", "localhost")
    assert result.returncode == 2 and "--listen must be HOST:PORT" in one_line_error(result)
