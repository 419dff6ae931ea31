"""The gateway's job tracker (chain/gateway/tracker.py) against a real dev node whose worker runs the embedded
model: many jobs followed at once on one block subscription, each to its final view, while the node still
has stream places for another client on the same address (a WatchJob per job took 16 of them, every place
one address gets, and starved the worker beside it)."""

from __future__ import annotations

import threading
import time

import pytest

from chain.client import Client, ClientError
from chain.client.jobs import job_id_of, post_job_call, posted_job_id
from chain.crypto import dev_keypair
from chain.gateway import tracker as tracker_module
from chain.gateway.jobs import ChainAccess, Posted
from chain.node.streams import StreamLimits
from inference.registration import EMBEDDED_MODEL_ID
from proto import state_pb2
from tests.gateway.serving import worker_node
from tests.nodes import NodeProcess

pytestmark = pytest.mark.slow

JOBS = 24  # more than a node's stream places for one client address (StreamLimits.per_client)


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    with worker_node(tmp_path_factory.mktemp("tracker-node")) as node:
        yield node


def post_jobs(node: NodeProcess, count: int) -> list[Posted]:
    bob = dev_keypair("bob")
    posted = []
    with Client(node.target) as client:
        model = next(model for model in client.list_models().models if model.id.hex() == EMBEDDED_MODEL_ID)
        price = client.least_price(model.id)
        genesis_hash = client.chain_info().genesis_hash
        for index in range(count):
            call = post_job_call(f"Say the number {index}.", model=model.id, max_tokens=2, max_price_per_token=price)
            submission = client.submit(bob, call)
            # One queued behind Bob's pending transactions has no dry run yet: its id follows from the nonce.
            job_id = posted_job_id(submission.dry_run) or job_id_of(genesis_hash, bob.public_key, submission.nonce)
            posted.append(Posted(job_id, submission.hash, model))
    return posted


def test_many_jobs_are_followed_to_their_end_on_one_stream_and_the_node_keeps_places_for_others(node):
    assert JOBS > StreamLimits().per_client
    access = ChainAccess(node.target)
    finals: dict[bytes, object] = {}
    errors: list[Exception] = []

    def follow(posted: Posted) -> None:
        try:
            finals[posted.job_id] = access.follow(posted, access.watcher())
        except Exception as error:  # noqa: BLE001 - the test reports any
            errors.append(error)

    try:
        posted = post_jobs(node, JOBS)
        threads = [threading.Thread(target=follow, args=(item,)) for item in posted]
        for thread in threads:
            thread.start()
        time.sleep(1.0)  # every follow has begun
        # Another client on the same address still gets a stream while all of them are followed.
        with Client(node.target) as other:
            block = next(iter(other.subscribe_blocks()))
            assert block.height > 0
        for thread in threads:
            thread.join(timeout=180)
        assert not errors, errors
        assert set(finals) == {item.job_id for item in posted}
        assert all(view.final and view.job.status == state_pb2.JOB_STATUS_SETTLED for view in finals.values())
    finally:
        access.close()


def test_a_watch_sees_each_change_once_and_ends_with_the_final_view(node):
    access = ChainAccess(node.target)
    try:
        [posted] = post_jobs(node, 1)
        views = list(access.watcher().follow(posted.job_id, posted.transaction_hash))
        assert views[-1].final and views[-1].settled
        assert all(earlier.height <= later.height for earlier, later in zip(views, views[1:]))
        assert len({(view.job.SerializeToString(), view.dispute) for view in views}) == len(views)
    finally:
        access.close()


def test_a_post_job_the_node_never_saw_ends_its_watch_with_failed_precondition(node, monkeypatch):
    monkeypatch.setattr(tracker_module, "INCLUSION_CHECK_S", 0.5)
    access = ChainAccess(node.target)
    try:
        watch = access.watcher()
        with pytest.raises(ClientError) as raised:
            list(watch.follow(b"\x01" * 32, b"\x02" * 32))
        assert raised.value.code == "FAILED_PRECONDITION" and "not included" in raised.value.message
    finally:
        access.close()


def test_closing_a_watch_ends_its_follow_and_a_watch_closed_first_follows_nothing(node):
    access = ChainAccess(node.target)
    try:
        closed_first = access.watcher()
        closed_first.close()
        assert list(closed_first.follow(b"\x01" * 32, b"\x02" * 32)) == []
        watch = access.watcher()
        ended = threading.Event()

        def follow() -> None:
            list(watch.follow(b"\x03" * 32, b"\x04" * 32))  # never included: waits until closed
            ended.set()

        thread = threading.Thread(target=follow)
        thread.start()
        time.sleep(0.5)
        assert not ended.is_set()
        watch.close()
        assert ended.wait(5)
        thread.join(5)
    finally:
        access.close()
