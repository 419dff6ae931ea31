"""The worker's decisions from a job's record, its reading of updates, and what it signs, without a node."""

from __future__ import annotations

import hashlib

import pytest

from chain.client.results import Event
from chain.worker.executor import inference_job
from chain.worker.follower import AssignmentsUpdate, offer_events, update_of
from chain.worker.journal import JournalEntry
from chain.worker.submitter import commit_call, reveal_call
from chain.worker.worker import COMMIT, REVEAL, current_assignment, is_over_for, phase_due
from inference.result import InferenceResult
from proto import node_pb2, state_pb2, types_pb2
from proto.digest import logprobs_digest
from runtime import jobs

ME = bytes(range(32))
OTHER = bytes(32)
MODEL = hashlib.blake2b(b"model", digest_size=32).digest()
JOB_ID = hashlib.blake2b(b"job", digest_size=32).digest()


def job(status=state_pb2.JOB_STATUS_ASSIGNED, redundancy=2, slots=((ME, state_pb2.ASSIGNMENT_STATUS_ASSIGNED),)):
    request = types_pb2.PostJob(
        model=MODEL, prompt="Say hi.", prompt_format="chat", max_tokens=4, redundancy=redundancy,
        sampling=types_pb2.Sampling(temperature_milli=700, top_k=40, top_p_ppm=950_000, seed=7),
        max_price_per_token=10,
    )
    record = state_pb2.Job(id=JOB_ID, poster=OTHER, request=request, status=status)
    for height, (executor, slot_status) in enumerate(slots, start=1):
        record.assignments.add(executor=executor, status=slot_status, assigned_height=height, deadline_height=height + 20)
    return record


def result_for(record: state_pb2.Job) -> InferenceResult:
    return InferenceResult(inference_job(record), 12, (5, 6, 7, 8), "abcd", (-1, -2, -3, -4), "length")


def event(module, name, **attributes) -> Event:
    return Event(module, name, tuple(attributes.items()))


A = state_pb2.ASSIGNMENT_STATUS_ASSIGNED
C = state_pb2.ASSIGNMENT_STATUS_COMMITTED
R = state_pb2.ASSIGNMENT_STATUS_REVEALED
M = state_pb2.ASSIGNMENT_STATUS_MISSED


@pytest.mark.parametrize(
    "status, redundancy, slot, due",
    [
        (state_pb2.JOB_STATUS_ASSIGNED, 2, A, COMMIT),
        (state_pb2.JOB_STATUS_QUEUED, 2, A, COMMIT),  # the other executor is not assigned yet
        (state_pb2.JOB_STATUS_ASSIGNED, 1, A, REVEAL),  # redundancy 1: commit and reveal in one
        (state_pb2.JOB_STATUS_ASSIGNED, 2, C, None),  # waiting for the other commitment
        (state_pb2.JOB_STATUS_REVEALING, 2, C, REVEAL),
        (state_pb2.JOB_STATUS_REVEALING, 2, R, None),
    ],
)
def test_the_next_transaction_follows_from_the_job_record(status, redundancy, slot, due):
    record = job(status, redundancy, ((ME, slot),))
    assert phase_due(record, current_assignment(record, ME)) == due


def test_the_latest_assignment_counts_after_a_miss():
    record = job(slots=((ME, M), (OTHER, A), (ME, A)))
    mine = current_assignment(record, ME)
    assert mine.status == A and mine.assigned_height == 3
    assert not is_over_for(record, mine)


@pytest.mark.parametrize(
    "status, slots",
    [
        (state_pb2.JOB_STATUS_SETTLED, ((ME, R),)),
        (state_pb2.JOB_STATUS_EXPIRED, ((ME, M),)),
        (state_pb2.JOB_STATUS_ASSIGNED, ((ME, M), (OTHER, A))),  # missed, and another executor took over
        (state_pb2.JOB_STATUS_REVEALING, ((ME, R), (OTHER, C))),  # revealed: nothing more to do here
        (state_pb2.JOB_STATUS_ASSIGNED, ((OTHER, A),)),  # never ours
    ],
)
def test_a_job_is_over_for_this_executor(status, slots):
    record = job(status, 2, slots)
    assert is_over_for(record, current_assignment(record, ME))


def test_the_engine_job_carries_every_field_of_the_request():
    record = job()
    engine_job = inference_job(record)
    assert engine_job.model == MODEL.hex() and engine_job.job_id == JOB_ID
    assert (engine_job.prompt, engine_job.prompt_format, engine_job.max_tokens) == ("Say hi.", "chat", 4)
    sampling = engine_job.sampling
    assert (sampling.temperature_milli, sampling.top_k, sampling.top_p_ppm, sampling.seed) == (700, 40, 950_000, 7)


def test_the_commitment_is_the_one_the_runtime_recomputes_from_the_reveal():
    record = job()
    entry = JournalEntry(JOB_ID, 1, b"\x09" * 32, result_for(record))
    reveal = reveal_call(entry)
    digest = jobs.output_digest(record, reveal.prompt_tokens, list(reveal.tokens), reveal.text, reveal.stop_reason)
    assert digest == entry.result.output_digest()
    assert commit_call(entry, ME).commitment == jobs.commitment(JOB_ID, ME, reveal.salt, digest,
                                                                logprobs_digest(reveal.logprobs_micronats))
    assert list(reveal.logprobs_micronats) == [-1, -2, -3, -4] and reveal.salt == b"\x09" * 32


def test_the_commitment_binds_the_log_probabilities_the_reveal_will_carry():
    record = job()
    entry = JournalEntry(JOB_ID, 1, b"\x09" * 32, result_for(record))
    altered = JournalEntry(JOB_ID, 1, b"\x09" * 32, entry.result.replace(logprobs_micronats=(-1, -2, -3, -5)))
    assert entry.result.output_digest() == altered.result.output_digest()
    assert commit_call(entry, ME).commitment != commit_call(altered, ME).commitment


def test_an_update_is_read_from_the_nodes_message():
    record = job()
    receipt = types_pb2.Receipt(transaction_hash=b"\x01" * 32, success=False, error_module="jobs",
                                error_name="DeadlinePassed", error_message="too late", fee_paid=3)
    assigned = types_pb2.Event(module="jobs", name="JobAssigned",
                               attributes=[types_pb2.EventAttribute(key="executor", value=ME.hex())])
    update = update_of(node_pb2.AssignmentsUpdate(height=7, block_hash=b"\x02" * 32, jobs=[record],
                                                  receipts=[receipt], events=[assigned]))
    assert (update.height, update.block_hash, update.jobs) == (7, b"\x02" * 32, (record,))
    assert update.receipts[0].error == "jobs.DeadlinePassed: too late" and update.receipts[0].fee_paid == 3
    assert update.events == (event("jobs", "JobAssigned", executor=ME.hex()),)


def test_offer_events_of_an_update_are_found():
    events = (event("staking", "OfferSet", account=ME.hex()), event("staking", "Bonded", account=ME.hex()),
              event("jobs", "OfferLike", executor=ME.hex()))
    assert offer_events(AssignmentsUpdate(5, b"", (), (), events)) == ["OfferSet"]
