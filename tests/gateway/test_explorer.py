"""The explorer (chain/gateway/explorer.py) against a real dev node whose worker runs the embedded model:
its JSON shows a job posted with the Client, with its verdict; in a real headless Chromium the page
loads, shows the job, and follows the chain without a reload (a screenshot is written under the
test's tmp directory and its path printed). Also: readable errors when the node is unreachable, one
node read shared by many requests, and no asset from outside.

Chromium is Debian's `chromium` package, installed here when missing and running as root, driven
through the DevTools protocol over --remote-debugging-pipe (no websocket library needed).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import anyio
import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.testclient import TestClient

from chain.client import Client, ClientError
from chain.crypto import dev_keypair
from chain.gateway import explorer
from chain.gateway.explorer import STATIC_DIR, ExplorerCache, explorer_routes
from chain.ss58 import encode_address
from inference.registration import EMBEDDED_MODEL_ID
from tests.nodes import NodeProcess, free_port

pytestmark = pytest.mark.slow

MODEL = bytes.fromhex(EMBEDDED_MODEL_ID)
CHARLIE = dev_keypair("charlie")
ALICE = dev_keypair("alice")
WORKER_READY = "executing jobs for"
PROMPT = "Name three colours."


# --- a dev node with its worker, the explorer served by uvicorn, one settled job -----------------


def wait_for(condition, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {timeout:g} s")
        time.sleep(interval)


@pytest.fixture(scope="module")
def worker_node(tmp_path_factory):
    """A dev node (1 s blocks) whose own worker executes jobs with the embedded model."""
    base = tmp_path_factory.mktemp("explorer-node")
    node = NodeProcess(base / "node", free_port(), worker=True).start()
    try:
        wait_for(lambda: WORKER_READY in node.log(), 180, "the worker ready")
        yield node
    finally:
        node.kill()


class ServedApp:
    """A Starlette app served by uvicorn on a free port in a thread of this process."""

    def __init__(self, routes: list):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(Starlette(routes=routes), host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "ServedApp":
        self.thread.start()
        wait_for(lambda: self.server.started, 15, "uvicorn serving", 0.05)
        return self

    def __exit__(self, *exc_info) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def served(worker_node):
    with ServedApp(explorer_routes(worker_node.target)) as app:
        yield app


@pytest.fixture(scope="module")
def settled_job(worker_node):
    """A greedy job posted by Charlie and followed until final."""
    with Client(worker_node.target) as client:
        view = client.post_job(CHARLIE, PROMPT, model=MODEL, max_tokens=16, timeout=120)
    assert view.settled, f"the job ended {view.status}: {view.job.reason}"
    return view


def api(app: ServedApp, name: str) -> dict:
    reply = httpx.get(f"{app.url}/explorer/api/{name}", timeout=10)
    assert reply.status_code == 200, reply.text
    return reply.json()


# --- the JSON ------------------------------------------------------------------------------------


def test_the_json_endpoints_show_a_job_posted_with_the_client_and_its_verdict(served, settled_job):
    job_id = settled_job.id.hex()

    def listed():
        jobs = {job["id"]: job for job in api(served, "jobs")["jobs"]}
        job = jobs.get(job_id)
        return job if job and job["verdict"] == "settled" else None

    job = wait_for(listed, 10, "the settled job in /explorer/api/jobs")
    assert job["status"] == "settled"
    assert job["answer"] == settled_job.result.text[: explorer.PREVIEW_CHARS]
    assert job["tokens"] == len(settled_job.result.tokens)
    assert job["blocks_to_settle"] == settled_job.job.final_height - settled_job.job.posted_height > 0
    assert int(job["paid"]) == settled_job.paid > 0
    assert [slot["address"] for slot in job["executors"]] == [encode_address(ALICE.public_key)]
    assert [slot["engine_class"] for slot in job["executors"]] == ["cpu"]

    head = api(served, "head")["head"]
    assert head["chain_id"] and head["best_height"] >= head["finalized_height"] >= settled_job.job.final_height
    assert head["block_time_ms"] == 1000 and head["validators"] == 1

    blocks = api(served, "blocks")["blocks"]
    assert 0 < len(blocks) <= explorer.BLOCKS_KEPT
    assert [block["height"] for block in blocks] == sorted((block["height"] for block in blocks), reverse=True)
    posted_in = [block for block in blocks if block["height"] == settled_job.job.posted_height]
    assert posted_in and posted_in[0]["jobs_posted"] == 1 and posted_in[0]["transactions"] >= 1
    assert sum(block["tokens_revealed"] for block in blocks) >= len(settled_job.result.tokens)

    executors = api(served, "executors")["executors"]
    alice = next(executor for executor in executors if executor["address"] == encode_address(ALICE.public_key))
    assert alice["capacity"] >= 1 and alice["models"] and int(alice["bonded"]) > 0
    assert alice["engine_class"] == "cpu"

    models = api(served, "models")["models"]
    assert [model["id"] for model in models] == [EMBEDDED_MODEL_ID] and models[0]["executors"] == 1
    assert models[0]["engine_classes"][0] == "cpu"

    assert job["model"] == models[0]["name"]
    assert api(served, "disputes")["disputes"] == [] and api(served, "slashes")["slashes"] == []
    snapshot = api(served, "snapshot")
    assert set(snapshot) >= {"head", "blocks", "jobs", "executors", "models", "disputes", "slashes"}


def test_every_endpoint_answers_a_readable_json_error_when_the_node_is_unreachable():
    target = f"127.0.0.1:{free_port()}"
    app = Starlette(routes=explorer_routes(target))
    with TestClient(app) as client:
        for name in ("snapshot", *explorer.SECTIONS):
            reply = client.get(f"/explorer/api/{name}")
            assert reply.status_code == 503, (name, reply.text)
            error = reply.json()["error"]
            assert error["type"] == "node_unreachable" and target in error["message"] and error["node"] == target
            assert reply.headers["retry-after"] == "1"
        page = client.get("/explorer")
        assert page.status_code == 200 and "<title>inferchain explorer</title>" in page.text


def test_many_requests_within_a_block_share_one_read_of_the_node(monkeypatch):
    reads = []

    def read(self):
        reads.append(time.monotonic())
        time.sleep(0.2)  # a slow node: requests arriving meanwhile wait for this read
        head = {"block_time_ms": 1000}
        return explorer.Snapshot(time.time(), head, [], [], [], [], [], [])

    monkeypatch.setattr(ExplorerCache, "_read", read)
    cache = ExplorerCache("127.0.0.1:1")

    async def many():
        async with anyio.create_task_group() as group:
            for _ in range(50):
                group.start_soon(cache.snapshot)

    anyio.run(many)
    assert len(reads) == 1
    time.sleep(1.05)  # one block later the snapshot is read again
    anyio.run(many)
    assert len(reads) == 2


def test_an_unreachable_node_is_asked_once_per_interval_not_once_per_request(monkeypatch):
    reads = []

    def read(self):
        reads.append(time.monotonic())
        raise ClientError("UNAVAILABLE", "connection refused")

    monkeypatch.setattr(ExplorerCache, "_read", read)
    cache = ExplorerCache("127.0.0.1:1")
    failures = []

    async def ask():
        try:
            await cache.snapshot()
        except explorer.NodeUnreachable as error:
            failures.append(str(error))

    async def many():
        async with anyio.create_task_group() as group:
            for _ in range(50):
                group.start_soon(ask)

    anyio.run(many)
    assert len(reads) == 1 and len(failures) == 50
    assert failures[0] == "node 127.0.0.1:1 did not answer: connection refused"


def test_the_page_loads_no_asset_from_outside():
    html = (STATIC_DIR / "explorer.html").read_text()
    referenced = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert referenced and all(ref.startswith(("/explorer/static/", "data:")) for ref in referenced), referenced
    for name in ("explorer.html", "explorer.css", "explorer.js"):
        text = (STATIC_DIR / name).read_text()
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text), f"{name} names an outside address"


# --- the page in a real headless Chromium --------------------------------------------------------


def chromium_path() -> str:
    """Debian's chromium, installed when missing and running as root; the test is skipped otherwise."""
    found = shutil.which("chromium")
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("chromium is not installed, and installing it (apt-get install -y chromium) needs root")
    installed = subprocess.run(["apt-get", "install", "-y", "chromium"], capture_output=True, text=True, timeout=900,
                               env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    if installed.returncode != 0 or not shutil.which("chromium"):
        pytest.skip(f"apt-get install -y chromium failed: {installed.stderr.strip()[-300:]}")
    return shutil.which("chromium")


class DevTools:
    """A headless Chromium driven through the DevTools protocol over --remote-debugging-pipe (fds 3 and 4:
    JSON messages, each ended by a NUL byte)."""

    def __init__(self, executable: str, profile: Path, width: int = 1440, height: int = 1000):
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()
        arguments = [
            executable, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--hide-scrollbars", "--remote-debugging-pipe", f"--user-data-dir={profile}",
            f"--window-size={width},{height}", "about:blank",
        ]
        # The shell puts the two pipe ends on the fds Chromium reads and writes.
        script = f'exec "$@" 3<&{to_browser_read} 4>&{from_browser_write} {to_browser_read}<&- {from_browser_write}>&-'
        self.process = subprocess.Popen(["bash", "-c", script, "chromium", *arguments],
                                        pass_fds=(to_browser_read, from_browser_write),
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._next_id = 0
        self._buffer = b""

    def call(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30.0) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._receive(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                return reply["result"]

    def _receive(self, deadline: float) -> dict:
        import select

        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("chromium did not answer in time")
            ready, _, _ = select.select([self._from_browser], [], [], remaining)
            if ready:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise AssertionError("chromium closed its DevTools pipe")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def open(self, url: str) -> str:
        """A new tab at `url`; the session id to drive it."""
        target = self.call("Target.createTarget", {"url": url})["targetId"]
        return self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]

    def evaluate(self, session: str, expression: str):
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, session: str, path: Path, width: int = 1440) -> Path:
        """The whole page as a PNG at `path`."""
        height = int(self.evaluate(session, "document.documentElement.scrollHeight"))
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session)
        data = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=5)
        except (AssertionError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        os.close(self._to_browser)
        os.close(self._from_browser)


PAGE_STATE = """(() => {
  if (!document.getElementById('best-height')) return null;  // the page is not loaded yet
  const row = document.querySelector('tr[data-job="%s"]');
  return {
    best: document.getElementById('best-height').textContent,
    finalized: document.getElementById('finalized-height').textContent,
    chain: document.getElementById('chain-id').textContent,
    status: row ? row.cells[1].textContent : null,
    verdict: row ? row.cells[2].textContent : null,
    answer: row ? row.cells[9].textContent : null,
    blocks: document.querySelectorAll('#blocks tbody tr').length,
    executors: document.querySelectorAll('#executors tbody tr').length,
    models: document.querySelectorAll('#models tbody tr').length,
    bars: document.querySelectorAll('#chart .jobs-bar').length,
    line: document.querySelectorAll('#chart .tokens-line').length,
    banner: document.getElementById('banner').hidden,
    marker: window.__sameDocument || null,
  };
})()"""


DRAW_SNAPSHOT = """(() => {
  window.inferchainExplorer.render(%s);
  const dispute = document.querySelector('#disputes tbody tr');
  return {
    disputes: document.querySelectorAll('#disputes tbody tr').length,
    slashes: document.querySelectorAll('#slashes tbody tr').length,
    verdicts: Array.from(dispute.cells[4].querySelectorAll('.badge'), (badge) => badge.textContent),
    offence: document.querySelector('#slashes tbody tr').cells[1].textContent,
  };
})()"""


def with_a_dispute_and_a_slash(snapshot: dict) -> dict:
    job = snapshot["jobs"][0]
    executor = job["executors"][0]["address"]
    snapshot["disputes"] = [{
        "job": job["id"], "reason": "audit", "status": "decided", "opened_height": 3, "decided_height": 9,
        "committee": 4, "revealed": 4, "verdicts": ["invalid"], "outcome": "the result was judged invalid",
    }]
    snapshot["slashes"] = [{
        "account": executor, "offence": "invalid_result", "job": job["id"], "height": 9,
        "amount_text": "10 INFER", "burned_text": "5 INFER", "jailed_until": 100, "braked": False,
    }]
    return snapshot


def best_height(state: dict) -> int:
    return int(state["best"].lstrip("#").replace(",", ""))


def test_the_page_in_headless_chromium_shows_the_job_and_follows_the_chain_without_a_reload(
        served, settled_job, tmp_path):
    browser = DevTools(chromium_path(), tmp_path / "profile")
    try:
        session = browser.open(f"{served.url}/explorer")
        state_of = lambda: browser.evaluate(session, PAGE_STATE % settled_job.id.hex())  # noqa: E731
        shown = wait_for(lambda: (lambda s: s if s and s["verdict"] == "settled" else None)(state_of()), 20,
                         "the settled job in the page")
        assert shown["status"] == "settled" and shown["answer"] == settled_job.result.text[: explorer.PREVIEW_CHARS]
        assert shown["chain"] != "connecting…" and shown["banner"] is True
        assert shown["blocks"] > 0 and shown["executors"] == 1 and shown["models"] == 1
        assert shown["bars"] >= 1 and shown["line"] == 1

        # The same document (a marker set in it survives) shows a higher head a few blocks later.
        browser.evaluate(session, "window.__sameDocument = 'first load'")
        first = best_height(state_of())
        later = wait_for(lambda: (lambda s: s if best_height(s) >= first + 2 else None)(state_of()), 15,
                         "the head height growing in the page")
        assert later["marker"] == "first load", "the page was reloaded"

        light = browser.screenshot(session, tmp_path / "explorer.png")
        browser.call("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]},
                     session)
        time.sleep(0.3)
        dark = browser.screenshot(session, tmp_path / "explorer-dark.png")
        # Disputes and slashes, which a one-validator dev chain does not produce, drawn from a snapshot
        # that has them (read back in the same evaluation, before the next poll redraws the live one).
        drawn = browser.evaluate(session, DRAW_SNAPSHOT % json.dumps(with_a_dispute_and_a_slash(api(served, "snapshot"))))
        assert drawn == {"disputes": 1, "slashes": 1, "verdicts": ["invalid"], "offence": "invalid result"}
    finally:
        browser.close()
    for path in (light, dark):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 20_000
        print(f"explorer screenshot: {path}")
