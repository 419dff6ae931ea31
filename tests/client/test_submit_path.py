"""Each check once on the submit path: a PostJob's signature is verified and its handler (the executor
lottery included) run once per node before inclusion, and the client reads the job id from the verdict.

Real node cores over LevelDB, the real gRPC API on 127.0.0.1 and the real client; the registered
PostJob handler and the runtime's signature check are wrapped in this process to count their runs.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter

import grpc
import pytest

from chain.client import Client, ClientError
from chain.client.jobs import GREEDY, posted_job_id
from chain.crypto import dev_keypair
from chain.genesis import DEV_PRICE_PER_TOKEN
from chain.node.api import NodeApi
from chain.node.core import NodeCore
from chain.node.server import ApiServer
from chain.node.streams import StreamLimits
from chain.storage import ChainStore
from inference.registration import EMBEDDED_MODEL_ID
from proto import node_pb2, node_pb2_grpc, types_pb2
from runtime import executive
from runtime.registry import RUNTIME
from tests.chain.test_jobs_api import GENESIS

ALICE, BOB = dev_keypair("alice"), dev_keypair("bob")
MODEL = bytes.fromhex(EMBEDDED_MODEL_ID)


class Runs:
    """Counts, per transaction body, the PostJob handler's runs and the runtime's signature verifications."""

    def __init__(self, monkeypatch):
        self.handler: Counter[str] = Counter()  # by prompt (each test's prompts differ)
        self.signatures: Counter[bytes] = Counter()  # by signed body
        self._lock = threading.Lock()
        spec = RUNTIME.calls["post_job"]
        plain_handler, plain_verify = spec.handler, executive.verify_signature

        def counted_handler(state, origin, call):
            with self._lock:
                self.handler[call.prompt] += 1
            return plain_handler(state, origin, call)

        def counted_verify(public_key, signature, message):
            with self._lock:
                self.signatures[message[len(executive.TRANSACTION_SIGNING_CONTEXT):]] += 1
            return plain_verify(public_key, signature, message)

        monkeypatch.setitem(RUNTIME.calls, "post_job", dataclasses.replace(spec, handler=counted_handler))
        monkeypatch.setattr(executive, "verify_signature", counted_verify)


def post_job(prompt: str) -> types_pb2.PostJob:
    return types_pb2.PostJob(model=MODEL, prompt=prompt, prompt_format="chat", max_tokens=4, sampling=GREEDY,
                             max_price_per_token=DEV_PRICE_PER_TOKEN, redundancy=1)


def new_core(path) -> NodeCore:
    store = ChainStore(path)
    store.initialize(GENESIS.chain_id, GENESIS.hash, GENESIS.initial_height, GENESIS.state())
    return NodeCore(store, GENESIS, ALICE)


@pytest.fixture
def served(tmp_path):
    """A node core served over gRPC, and a second core (another validator) that hears its gossip."""
    core, peer = new_core(tmp_path / "node"), new_core(tmp_path / "peer")
    server = ApiServer(NodeApi(core, 1000), "127.0.0.1", 0)
    server.start()
    server.mark_serving()
    yield core, peer, f"127.0.0.1:{server.port}"
    server.stop(grace=0)
    core.store.close()
    peer.store.close()


def counts(runs: Runs, raw: bytes, prompt: str) -> tuple[int, int]:
    """(handler runs, signature verifications) of the PostJob with this prompt and these bytes."""
    body = types_pb2.Transaction.FromString(raw).body
    return runs.handler[prompt], runs.signatures[body]


def test_a_post_job_is_verified_and_run_once_per_node_before_inclusion(served, monkeypatch):
    core, peer, target = served
    runs = Runs(monkeypatch)
    prompt = "Count my checks."
    with Client(target) as client:
        submission = client.submit(BOB, post_job(prompt))
        raw = core.pool_raw(submission.hash)

        # The receiving node: one signature check, one dry run; the verdict names the job.
        assert counts(runs, raw, prompt) == (1, 1)
        job_id = posted_job_id(submission.dry_run)
        assert job_id is not None and submission.dry_run.success

        # The same bytes again (a resubmission, or gossip coming back from a peer): answered from the pool.
        assert core.admit(raw).dry_run == core.pool.dry_run(submission.hash)
        assert client.submit_raw(raw) == submission.hash
        assert counts(runs, raw, prompt) == (1, 1)

        # Another validator hears it by gossip: its own one check and one dry run.
        peer.submit(raw)
        assert counts(runs, raw, prompt) == (2, 2)

        # The block: the proposer builds from its pool's checked transaction, the other validator checks
        # the proposal with its own pooled one. Each executes the call once more (inclusion), no
        # signature is verified again.
        candidate = core.propose()
        peer.blocks.check(candidate.block, ALICE.public_key)
        assert counts(runs, raw, prompt) == (4, 2)
        core.commit(candidate, core._commit_for(candidate))

        view = next(client.watch_job(job_id, posted_by=submission.hash))
        # Included, and drawn two blocks later from randomness revealed after it (docs/protocol.md, "Assignment").
        assert view.id == job_id and view.status == "drawing" and view.job.draw_height == candidate.height + 2


def test_post_job_through_the_client_checks_once_and_follows_the_job_from_the_verdict(served, monkeypatch):
    core, _, target = served
    runs = Runs(monkeypatch)
    stop = threading.Event()

    def produce() -> None:
        while not stop.wait(0.05):
            core.produce_block()

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    try:
        with Client(target) as client:
            view = client.post_job(BOB, "Follow me.", model=MODEL, max_tokens=4, wait=False)
    finally:
        stop.set()
        producer.join(timeout=10)
    assert view.status == "drawing" and view.job.poster == BOB.public_key
    # No client-side simulation any more: the pool's dry run and the block's execution, nothing else.
    assert runs.handler["Follow me."] == 2
    assert sum(runs.signatures.values()) == 1


def test_the_verdict_of_a_post_job_queued_behind_pending_ones_has_no_dry_run_and_the_watch_finds_its_job(served):
    core, _, target = served
    with Client(target) as client:
        first = client.submit(BOB, post_job("first"))
        second = client.submit(BOB, post_job("second"))
        assert first.dry_run is not None and second.dry_run is None  # its nonce is ahead: judged in its turn
        core.produce_block()
        view = next(client.watch_job(None, posted_by=second.hash))
        assert view.job.request.prompt == "second" and view.id != posted_job_id(first.dry_run)


def test_watching_by_transaction_says_why_when_there_is_no_job_to_follow(served):
    core, _, target = served
    with Client(target) as client:
        transfer = client.submit(BOB, types_pb2.Transfer(dest=ALICE.public_key, amount=10**12))
        core.produce_block()
        with pytest.raises(ClientError) as no_job:
            next(client.watch_job(None, posted_by=transfer.hash))
        assert no_job.value.code == "INVALID_ARGUMENT" and "posted no job" in no_job.value.message
        with pytest.raises(ClientError) as unknown:
            next(client.watch_job(None, posted_by=bytes(32)))
        assert unknown.value.code == "NOT_FOUND"
    with grpc.insecure_channel(target) as channel:
        stub = node_pb2_grpc.NodeStub(channel)
        for request, detail in (
            (node_pb2.WatchJobRequest(transaction_hash=b"\x01" * 31), "a transaction hash is 32 bytes, got 31"),
            (node_pb2.WatchJobRequest(), "a job id is 32 bytes, got 0"),
        ):
            with pytest.raises(grpc.RpcError) as refused:
                list(stub.WatchJob(request, timeout=10))
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT and refused.value.details() == detail


def test_post_job_polls_when_the_node_has_no_stream_to_spare(tmp_path):
    core = new_core(tmp_path / "node")
    server = ApiServer(NodeApi(core, 1000), "127.0.0.1", 0, StreamLimits(per_node=1, per_client=0, kept_for_newcomers=0))
    server.start()
    server.mark_serving()
    stop = threading.Event()

    def produce() -> None:
        while not stop.wait(0.05):
            core.produce_block()

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    try:
        with Client(f"127.0.0.1:{server.port}") as client:
            view = client.post_job(BOB, "No streams here.", model=MODEL, max_tokens=4, wait=False)
        # Polled: read at some block after inclusion, before or after the draw.
        assert view.status in ("drawing", "assigned") and view.job.request.prompt == "No streams here."
    finally:
        stop.set()
        producer.join(timeout=10)
        server.stop(grace=0)
        core.store.close()
