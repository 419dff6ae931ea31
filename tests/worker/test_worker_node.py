"""The worker against a real node, with a stand-in engine: assignments are run, committed, revealed and
paid; a restart reveals from the journal; a worker that dies leaves its job reassigned or refunded."""

from __future__ import annotations

import threading

from chain.client import Client
from chain.crypto import dev_keypair
from proto import state_pb2
from tests.worker.conftest import (
    blocked_runner,
    echo_runner,
    final,
    offer_as_executor,
    post_job,
    running_worker,
    wait_for_job,
)

ALICE = dev_keypair("alice")
CHARLIE = dev_keypair("charlie")


def never_runs(job, cancelled):
    raise AssertionError("the result should have come from the journal")


def slot_of(job: state_pb2.Job, executor: bytes) -> state_pb2.Assignment:
    """The executor's assignment; an empty one (no status) before it is drawn (two blocks after the post)."""
    return next((slot for slot in job.assignments if slot.executor == executor), state_pb2.Assignment())


def test_a_redundancy_1_job_settles_with_one_reveal_and_no_commit(market_node, tmp_path):
    with Client(market_node.target) as client, running_worker(market_node.target, ALICE, echo_runner, tmp_path / "a"):
        nonce_before = client.account(ALICE).nonce
        job_id = post_job(client, CHARLIE, redundancy=1, max_tokens=4)
        job = wait_for_job(market_node.target, job_id, final)
        nonce_after = client.account(ALICE).nonce
    assert job.status == state_pb2.JOB_STATUS_SETTLED, job.reason
    slot = slot_of(job, ALICE.public_key)
    assert slot.status == state_pb2.ASSIGNMENT_STATUS_REVEALED
    assert list(slot.reveal.tokens) == [10, 11, 12, 13] and slot.reveal.stop_reason == "length"
    assert slot.payment > 0
    assert nonce_after == nonce_before + 1, "one RevealResult, no CommitResult"
    assert not list((tmp_path / "a").glob("*.json")), "the journal entry is removed once the job is done"


def test_a_redundancy_2_job_is_committed_then_revealed_by_both(market_node, tmp_path):
    with Client(market_node.target) as client:
        bob = offer_as_executor(client, "bob")
        with running_worker(market_node.target, ALICE, echo_runner, tmp_path / "a"), \
                running_worker(market_node.target, bob, echo_runner, tmp_path / "b"):
            job_id = post_job(client, CHARLIE, redundancy=2, max_tokens=3)
            job = wait_for_job(market_node.target, job_id, final)
    assert job.status == state_pb2.JOB_STATUS_SETTLED, job.reason
    for executor in (ALICE.public_key, bob.public_key):
        slot = slot_of(job, executor)
        assert slot.status == state_pb2.ASSIGNMENT_STATUS_REVEALED and len(slot.commitment) == 32


def test_a_restarted_worker_reveals_from_its_journal(market_node, tmp_path):
    release_bob = threading.Event()
    with Client(market_node.target) as client:
        bob = offer_as_executor(client, "bob")
        with running_worker(market_node.target, bob, blocked_runner(release_bob), tmp_path / "b"):
            with running_worker(market_node.target, ALICE, echo_runner, tmp_path / "a"):
                job_id = post_job(client, CHARLIE, redundancy=2, max_tokens=3)
                wait_for_job(market_node.target, job_id,
                             lambda job: slot_of(job, ALICE.public_key).status == state_pb2.ASSIGNMENT_STATUS_COMMITTED)
            # Alice's worker is gone with her salt in memory; only the journal keeps it.
            assert len(list((tmp_path / "a").glob("*.json"))) == 1
            release_bob.set()
            wait_for_job(market_node.target, job_id, lambda job: job.status == state_pb2.JOB_STATUS_REVEALING)
            with running_worker(market_node.target, ALICE, never_runs, tmp_path / "a"):
                job = wait_for_job(market_node.target, job_id, final)
    assert job.status == state_pb2.JOB_STATUS_SETTLED, job.reason
    assert slot_of(job, ALICE.public_key).status == state_pb2.ASSIGNMENT_STATUS_REVEALED


def test_the_job_of_a_worker_that_died_mid_job_goes_to_another_executor(market_node, tmp_path):
    never = threading.Event()
    with Client(market_node.target) as client:
        with running_worker(market_node.target, ALICE, blocked_runner(never), tmp_path / "a"):
            job_id = post_job(client, CHARLIE, redundancy=1, max_tokens=4)
            wait_for_job(market_node.target, job_id, lambda job: len(job.assignments) == 1)
        # Alice's worker died mid-job; Bob offers, and takes the job when Alice's deadline passes.
        bob = offer_as_executor(client, "bob")
        with running_worker(market_node.target, bob, echo_runner, tmp_path / "b"):
            job = wait_for_job(market_node.target, job_id, final)
    assert job.status == state_pb2.JOB_STATUS_SETTLED, job.reason
    assert slot_of(job, ALICE.public_key).status == state_pb2.ASSIGNMENT_STATUS_MISSED
    assert slot_of(job, bob.public_key).status == state_pb2.ASSIGNMENT_STATUS_REVEALED


def test_the_job_of_a_worker_that_died_is_refunded_when_nobody_else_serves(market_node, tmp_path):
    never = threading.Event()
    with Client(market_node.target) as client:
        before = client.account(CHARLIE)
        with running_worker(market_node.target, ALICE, blocked_runner(never), tmp_path / "a"):
            job_id = post_job(client, CHARLIE, redundancy=1, max_tokens=4)
            wait_for_job(market_node.target, job_id, lambda job: len(job.assignments) == 1)
        job = wait_for_job(market_node.target, job_id, final)
        # The storage deposit stays reserved until the record is pruned, a challenge window later.
        pruned = wait_for_job(market_node.target, job_id, lambda job: job.pruned_height > 0)
        after = client.account(CHARLIE)
    assert job.status == state_pb2.JOB_STATUS_EXPIRED and job.escrow == 0 and job.refunded > 0
    assert slot_of(job, ALICE.public_key).status == state_pb2.ASSIGNMENT_STATUS_MISSED
    assert job.storage_deposit > 0 and pruned.storage_deposit == 0 and pruned.status == job.status
    assert after.reserved == before.reserved, "the whole escrow and the storage deposit came back"
