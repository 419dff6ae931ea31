"""Shared pieces of the worker tests: a market genesis with short deadlines, a node without its own
worker, workers run in-process with a stand-in engine, and posting and watching jobs."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from chain.client import Client
from chain.crypto import Keypair, dev_keypair
from chain.worker.executor import JobCancelled
from chain.worker.follower import MarketReader
from chain.worker.journal import Journal
from chain.worker.worker import Worker
from inference.registration import EMBEDDED_MODEL_ID
from inference.result import InferenceJob, InferenceResult
from proto import state_pb2, types_pb2
from runtime import jobs
from tests.nodes import NodeProcess, free_port, market_genesis

MODEL = bytes.fromhex(EMBEDDED_MODEL_ID)
PRICE = 1_000_000_000  # Alice's price per token in the dev genesis
# Short windows so a missed deadline shows within seconds: a commit within 4 blocks (3 + one per
# 100 tokens), a reveal within 3, a job refunded after 14 blocks, 250 ms per block.
SHORT_DEADLINES = {
    "commit_blocks": 3,
    "min_tokens_per_block": 100,
    "reveal_blocks": 3,
    "job_timeout_blocks": 14,
    "challenge_window_blocks": 5,
}
BLOCK_TIME_MS = 250
# Epochs of 5 blocks: an offer made mid-test is drawn from the next epoch's executor table
# (runtime/jobs/assignment.py), a second or so later, within a job's timeout.
EPOCH_BLOCKS = 5


@pytest.fixture
def market_node(tmp_path) -> Iterator[NodeProcess]:
    """A dev node on the short-deadline genesis that runs no worker of its own."""
    genesis = market_genesis(tmp_path / "genesis.json", BLOCK_TIME_MS, **SHORT_DEADLINES)
    document = json.loads(genesis.read_text())
    document["app_state"]["staking"]["params"]["epoch_blocks"] = str(EPOCH_BLOCKS)
    genesis.write_text(json.dumps(document, indent=2))
    node = NodeProcess(tmp_path / "node", free_port(), ("--chain", str(genesis), "--no-worker")).start()
    yield node
    node.kill()


def echo_runner(job: InferenceJob, cancelled: Callable[[], bool]) -> InferenceResult:
    """A stand-in for the engine: max_tokens tokens that end no generation, stop reason "length"."""
    tokens = tuple(10 + position for position in range(job.max_tokens))
    return InferenceResult(job, 3, tokens, "".join(chr(97 + token % 26) for token in tokens),
                           tuple(-1000 * (position + 1) for position in range(len(tokens))), "length")


def blocked_runner(release: threading.Event) -> Callable:
    """A runner that waits for `release` (or its cancellation) before answering like echo_runner."""
    def run(job: InferenceJob, cancelled: Callable[[], bool]) -> InferenceResult:
        while not release.wait(0.05):
            if cancelled():
                raise JobCancelled()
        return echo_runner(job, cancelled)
    return run


@contextlib.contextmanager
def running_worker(target: str, keypair: Keypair, runner: Callable, journal_dir: Path) -> Iterator[Worker]:
    """A Worker in a thread of this process, stopped at the end of the block."""
    with running_worker_of(Worker(target, keypair, runner, Journal(journal_dir))) as worker:
        yield worker


@contextlib.contextmanager
def running_worker_of(worker: Worker) -> Iterator[Worker]:
    """A Worker built by the test, run in a thread of this process until the end of the block."""
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        stop.set()
        thread.join(timeout=20)
        assert not thread.is_alive(), "the worker did not stop"


def post_job(client: Client, poster: Keypair, redundancy: int = 1, max_tokens: int = 4, prompt: str = "Say hi.",
             sampling: types_pb2.Sampling | None = None) -> bytes:
    """Submit a PostJob, wait for its inclusion, and return the job id."""
    call = types_pb2.PostJob(
        model=MODEL, prompt=prompt, prompt_format="chat", max_tokens=max_tokens,
        sampling=sampling or types_pb2.Sampling(temperature_milli=0, top_k=40, top_p_ppm=950_000, seed=0),
        max_price_per_token=PRICE, redundancy=redundancy,
    )
    submission = client.submit(poster, call, wait=True)
    assert submission.receipt.success, submission.receipt.error
    return jobs.job_id(client.chain_info().genesis_hash, poster.public_key, submission.nonce)


def offer_as_executor(client: Client, name: str, capacity: int = 1) -> Keypair:
    """Bond a dev account's minimum stake and offer the embedded model at Alice's price."""
    keypair = dev_keypair(name)
    bonded = client.submit(keypair, types_pb2.Bond(amount=10**17, validate=False), wait=True)
    assert bonded.receipt.success, bonded.receipt.error
    offered = client.submit(
        keypair, types_pb2.SetOffer(models=[MODEL], price_per_token=PRICE, region="", capacity=capacity), wait=True
    )
    assert offered.receipt.success, offered.receipt.error
    return keypair


def wait_for_job(target: str, job_id: bytes, until: Callable[[state_pb2.Job], bool], timeout: float = 30.0) -> state_pb2.Job:
    """Poll the job until `until(job)` holds; fail with its last record after `timeout` s."""
    reader = MarketReader(target)
    deadline = time.monotonic() + timeout
    try:
        while True:
            job = reader.job(job_id)
            if job is not None and until(job):
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id.hex()} did not reach the awaited state within {timeout} s: {job}")
            time.sleep(0.1)
    finally:
        reader.close()


def final(job: state_pb2.Job) -> bool:
    return job.status in jobs.FINAL_STATUSES
