"""The market's read API over real gRPC (GetJob, ListJobs, WatchJob, ListModels, GetExecutors), and the
StateView walks it is built on.

Most cases read hand-built records written under the documented keys (runtime/jobs.py, staking.py,
models.py) into a genesis state, so statuses that need a worker (settled, disputed) are listed too;
the cases at the end post and settle jobs through the real runtime. No test loads the model.
"""

from __future__ import annotations

import threading
from hashlib import blake2b

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chain.crypto import dev_keypair
from chain.genesis import dev_genesis_document, parse_genesis
from chain.node import jobs_api
from chain.node.api import NodeApi
from chain.node.core import NodeCore
from chain.node.jobs_api import JobQuery, list_jobs
from chain.node.server import ApiServer
from chain.storage import ChainStore
from proto import node_pb2, node_pb2_grpc, state_pb2, types_pb2
from runtime import jobs, models, staking
from runtime.state import MemoryState

GENESIS = parse_genesis(dev_genesis_document())
ALICE, BOB, CHARLIE = (dev_keypair(name).public_key for name in ("alice", "bob", "charlie"))
POSTERS = (ALICE, BOB, CHARLIE)
MODEL = bytes.fromhex("d63af87b96e2fd6551e9e7320602f3934f34c41a91004117dd24981571d02f79")
OTHER_MODEL = bytes(range(32))
PROPOSED_MODEL = bytes(range(32, 64))
EXECUTOR_A, EXECUTOR_B, EXECUTOR_C = (bytes([0xE0 + number]) * 32 for number in range(3))
STATUSES = (
    state_pb2.JOB_STATUS_QUEUED,
    state_pb2.JOB_STATUS_ASSIGNED,
    state_pb2.JOB_STATUS_REVEALING,
    state_pb2.JOB_STATUS_SETTLED,
    state_pb2.JOB_STATUS_EXPIRED,
    state_pb2.JOB_STATUS_CANCELLED,
)
JOB_COUNT = 60


# --- hand-built state -------------------------------------------------------------------


def _u64(number: int) -> bytes:
    return number.to_bytes(8, "big")


def hand_built_job(number: int) -> state_pb2.Job:
    """Job `number`: posted at height 1 + number // 3 (three per height), poster and executors in turn."""
    job_id = blake2b(b"test job %d" % number, digest_size=32).digest()
    executors = (EXECUTOR_A, EXECUTOR_B, EXECUTOR_C)[: 1 + number % 3]
    status = STATUSES[number % len(STATUSES)]
    assignments = [] if status in (state_pb2.JOB_STATUS_QUEUED, state_pb2.JOB_STATUS_CANCELLED) else [
        state_pb2.Assignment(executor=executor, price_per_token=10, status=state_pb2.ASSIGNMENT_STATUS_ASSIGNED)
        for executor in executors
    ]
    return state_pb2.Job(
        id=job_id,
        poster=POSTERS[number % 3],
        request=types_pb2.PostJob(model=MODEL, prompt=f"prompt {number}", prompt_format="chat", max_tokens=16,
                                  sampling=types_pb2.Sampling(top_k=40, top_p_ppm=950_000),
                                  max_price_per_token=10, redundancy=len(executors)),
        status=status,
        posted_height=1 + number // 3,
        assignments=assignments,
    )


def job_records(job: state_pb2.Job) -> dict[bytes, bytes]:
    """The job and its index keys, as runtime/jobs.py documents them."""
    suffix = _u64(job.posted_height) + job.id
    records = {
        jobs.JOB_PREFIX + job.id: job.SerializeToString(),
        jobs.JOBS_BY_HEIGHT + suffix: b"",
        jobs.JOBS_BY_POSTER + job.poster + suffix: b"",
    }
    for assignment in job.assignments:
        records[jobs.JOBS_BY_EXECUTOR + assignment.executor + suffix] = b""
    return records


HAND_BUILT_JOBS = [hand_built_job(number) for number in range(JOB_COUNT)]
MODEL_INFO = types_pb2.ModelInfo(id=MODEL, name="SmolLM2-135M-Instruct-Q4_1", context_length=8192,
                                 end_tokens=[2], engine="llama-cpp-python 0.3.36")
OTHER_MODEL_INFO = types_pb2.ModelInfo(id=OTHER_MODEL, name="other", context_length=2048, end_tokens=[0])
PROPOSAL = state_pb2.ModelProposal(model=types_pb2.ModelInfo(id=PROPOSED_MODEL, name="proposed", context_length=2048),
                                   proposer=BOB, deposit=5, end_height=100)
OFFERS = {
    EXECUTOR_A: state_pb2.Offer(models=[MODEL], price_per_token=10, region="eu-west", capacity=2),
    EXECUTOR_B: state_pb2.Offer(models=[MODEL, OTHER_MODEL], price_per_token=20, region="", capacity=1),
    EXECUTOR_C: state_pb2.Offer(models=[OTHER_MODEL], price_per_token=5, region="us", capacity=4),
}


def market_records() -> dict[bytes, bytes]:
    records: dict[bytes, bytes] = {}
    for job in HAND_BUILT_JOBS:
        records.update(job_records(job))
    for info in (MODEL_INFO, OTHER_MODEL_INFO):
        records[models.MODEL_PREFIX + info.id] = info.SerializeToString()
    records[models.PROPOSAL_PREFIX + PROPOSED_MODEL] = PROPOSAL.SerializeToString()
    for number, (account, offer) in enumerate(OFFERS.items()):
        records[staking.OFFER_PREFIX + account] = offer.SerializeToString()
        records[staking.LEDGER_PREFIX + account] = state_pb2.StakeLedger(bonded=1_000 * (number + 1)).SerializeToString()
    for model in (MODEL, OTHER_MODEL):
        serving = sorted(account for account, offer in OFFERS.items() if model in offer.models)
        records[staking.SERVING_PREFIX + model] = state_pb2.AccountList(accounts=serving).SerializeToString()
    records[jobs.LOAD_PREFIX + EXECUTOR_A] = (2).to_bytes(4, "big")
    return records


def newest_first(selected) -> list[bytes]:
    """The ids of the selected jobs in the order ListJobs must give them."""
    return [job.id for job in sorted(selected, key=lambda job: (job.posted_height, job.id), reverse=True)]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A node core over the dev genesis plus the hand-built market, served on a free 127.0.0.1 port."""
    store = ChainStore(tmp_path_factory.mktemp("jobs-api") / "db")
    store.initialize(GENESIS.chain_id, GENESIS.hash, GENESIS.initial_height, {**GENESIS.state(), **market_records()})
    core = NodeCore(store, GENESIS, dev_keypair("alice"))
    core.produce_block()
    server = ApiServer(NodeApi(core, 1000), "127.0.0.1", 0)
    server.start()
    server.mark_serving()
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    yield core, node_pb2_grpc.NodeStub(channel)
    channel.close()
    server.stop(grace=0)
    store.close()


@pytest.fixture(scope="module")
def stub(served):
    return served[1]


def refused(call, request) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as failed:
        response = call(request, timeout=10)
        if isinstance(response, grpc.Call):
            list(response)  # a stream: the error comes with its first message
    return failed.value


def all_pages(stub, **filters) -> list[bytes]:
    ids, token, pages = [], b"", 0
    while True:
        page = stub.ListJobs(node_pb2.ListJobsRequest(page_token=token, **filters), timeout=10)
        ids += [job.id for job in page.jobs]
        pages += 1
        token = page.next_page_token
        if not token:
            return ids
        assert pages <= JOB_COUNT + 1, "the pages never end"


# --- GetJob -------------------------------------------------------------------------------


def test_get_job_returns_the_job_and_the_block_it_was_read_at(served):
    core, stub = served
    job = HAND_BUILT_JOBS[7]
    view = stub.GetJob(node_pb2.GetJobRequest(job_id=job.id), timeout=10)
    assert view.job == job
    assert (view.height, view.block_hash) == (core.head.height, core.head.hash)


def test_get_job_of_an_unknown_id_is_not_found_naming_it(stub):
    unknown = bytes(32)
    error = refused(stub.GetJob, node_pb2.GetJobRequest(job_id=unknown))
    assert error.code() == grpc.StatusCode.NOT_FOUND and unknown.hex() in error.details()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(job_id=st.binary(max_size=80).filter(lambda raw: len(raw) != 32))
def test_a_job_id_that_is_not_32_bytes_is_invalid_argument(stub, job_id):
    for call in (stub.GetJob, stub.WatchJob):
        error = refused(call, node_pb2.GetJobRequest(job_id=job_id))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error.details() == f"a job id is 32 bytes, got {len(job_id)}"


# --- ListJobs -----------------------------------------------------------------------------


def test_list_jobs_gives_the_newest_twenty_first(stub):
    page = stub.ListJobs(node_pb2.ListJobsRequest(), timeout=10)
    assert [job.id for job in page.jobs] == newest_first(HAND_BUILT_JOBS)[:20]
    assert page.next_page_token and page.height >= 1


@pytest.mark.parametrize(
    "filters, selected",
    [
        ({}, lambda job: True),
        ({"poster": BOB}, lambda job: job.poster == BOB),
        ({"executor": EXECUTOR_B}, lambda job: any(a.executor == EXECUTOR_B for a in job.assignments)),
        ({"status": state_pb2.JOB_STATUS_SETTLED}, lambda job: job.status == state_pb2.JOB_STATUS_SETTLED),
        ({"poster": CHARLIE, "status": state_pb2.JOB_STATUS_ASSIGNED},
         lambda job: job.poster == CHARLIE and job.status == state_pb2.JOB_STATUS_ASSIGNED),
        ({"executor": EXECUTOR_C, "status": state_pb2.JOB_STATUS_QUEUED}, lambda job: False),
    ],
    ids=["all", "poster", "executor", "status", "poster-and-status", "executor-and-status-none"],
)
def test_pages_of_a_filtered_listing_give_each_matching_job_once_newest_first(stub, filters, selected):
    expected = newest_first(job for job in HAND_BUILT_JOBS if selected(job))
    assert all_pages(stub, limit=7, **filters) == expected


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(limit=st.integers(1, 100), poster=st.sampled_from((b"",) + POSTERS))
def test_any_page_size_walks_the_same_listing(stub, limit, poster):
    expected = newest_first(job for job in HAND_BUILT_JOBS if not poster or job.poster == poster)
    assert all_pages(stub, limit=limit, poster=poster) == expected


def test_a_page_that_ends_at_the_last_job_has_no_page_token(stub):
    page = stub.ListJobs(node_pb2.ListJobsRequest(limit=100), timeout=10)
    assert len(page.jobs) == JOB_COUNT and page.next_page_token == b""
    exact = stub.ListJobs(node_pb2.ListJobsRequest(poster=BOB, limit=JOB_COUNT // 3), timeout=10)
    assert len(exact.jobs) == JOB_COUNT // 3 and exact.next_page_token == b""


@pytest.mark.parametrize(
    "request_fields, detail",
    [
        ({"poster": ALICE, "executor": EXECUTOR_A}, "filter by poster or by executor, not both"),
        ({"poster": ALICE[:31]}, "poster is a 32-byte account id, got 31 bytes"),
        ({"executor": EXECUTOR_A + b"\0"}, "executor is a 32-byte account id, got 33 bytes"),
        ({"limit": 101}, "limit is 1 to 100 (0 means 20), got 101"),
        ({"status": 99}, "status 99 is not a JobStatus value"),
    ],
)
def test_a_bad_listing_request_is_invalid_argument_saying_why(stub, request_fields, detail):
    error = refused(stub.ListJobs, node_pb2.ListJobsRequest(**request_fields))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and error.details() == detail


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(token=st.one_of(
    st.binary(min_size=1, max_size=120),
    st.binary(min_size=40, max_size=40).map(lambda tail: jobs.JOBS_BY_HEIGHT + tail),
    st.binary(min_size=40, max_size=40).map(lambda tail: jobs.JOBS_BY_POSTER + ALICE + tail),
))
def test_a_page_token_that_is_not_a_key_of_the_listing_is_refused(stub, token):
    # Filtered by Bob's jobs: only a key under jobs/by_poster/<Bob> continues this listing.
    error = refused(stub.ListJobs, node_pb2.ListJobsRequest(poster=BOB, page_token=token))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "page_token does not continue this listing" in error.details()


def test_a_page_token_of_another_filter_is_refused(stub):
    token = stub.ListJobs(node_pb2.ListJobsRequest(poster=BOB, limit=2), timeout=10).next_page_token
    error = refused(stub.ListJobs, node_pb2.ListJobsRequest(poster=ALICE, page_token=token))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_walk_stops_at_its_key_bound_and_the_token_goes_on_from_there(served, monkeypatch):
    core, stub = served
    monkeypatch.setattr(jobs_api, "MAX_KEYS_WALKED", 8)
    # Disputed: no hand-built job has that status, so every call walks its 8 keys and finds nothing.
    request = node_pb2.ListJobsRequest(status=state_pb2.JOB_STATUS_DISPUTED)
    page = stub.ListJobs(request, timeout=10)
    assert list(page.jobs) == [] and page.next_page_token
    calls = 1
    while page.next_page_token:
        request.page_token = page.next_page_token
        page = stub.ListJobs(request, timeout=10)
        assert list(page.jobs) == []
        calls += 1
    assert calls == -(-JOB_COUNT // 8)
    settled = all_pages(stub, status=state_pb2.JOB_STATUS_SETTLED, limit=3)
    assert settled == newest_first(job for job in HAND_BUILT_JOBS if job.status == state_pb2.JOB_STATUS_SETTLED)


def test_list_jobs_reads_the_status_of_the_job_not_of_the_index():
    stale = hand_built_job(0)
    state = ReversibleMemoryState(job_records(stale))
    stale.status = state_pb2.JOB_STATUS_SETTLED
    state.items[jobs.JOB_PREFIX + stale.id] = stale.SerializeToString()
    query = JobQuery(jobs.JOBS_BY_HEIGHT, state_pb2.JOB_STATUS_SETTLED, 20, None)
    assert [job.id for job in list_jobs(state, query).jobs] == [stale.id]


class ReversibleMemoryState(MemoryState):
    """MemoryState with the StateView's reverse walk."""

    def iter_prefix_reverse(self, prefix: bytes, before: bytes | None = None):
        keys = [key for key, _ in self.iter_prefix(prefix) if before is None or key < before]
        for key in reversed(keys):
            yield key, self.items[key]


# --- the StateView walks ListJobs stands on ----------------------------------------------------

_KEYS = st.binary(min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(keys=st.sets(_KEYS, max_size=30), prefix=st.binary(max_size=3), before=st.none() | _KEYS)
def test_state_view_walks_match_a_sorted_dict(tmp_path_factory, keys, prefix, before):
    store = ChainStore(tmp_path_factory.mktemp("walk") / "db")
    try:
        state = {key: key[::-1] for key in keys}
        store.initialize("walk", bytes(32), 1, state)
        under = sorted(key for key in keys if key.startswith(prefix))
        assert list(store.state.iter_prefix(prefix)) == [(key, state[key]) for key in under]
        below = [key for key in under if before is None or key < before]
        assert list(store.state.iter_prefix_reverse(prefix, before)) == [(key, state[key]) for key in reversed(below)]
    finally:
        store.close()


# --- WatchJob ---------------------------------------------------------------------------


def test_watching_a_final_job_sends_it_once_and_ends(served):
    core, stub = served
    settled = next(job for job in HAND_BUILT_JOBS if job.status == state_pb2.JOB_STATUS_SETTLED)
    views = list(stub.WatchJob(node_pb2.GetJobRequest(job_id=settled.id), timeout=10))
    assert [view.job for view in views] == [settled] and views[0].height == core.head.height


def test_watching_an_unknown_job_is_not_found(stub):
    error = refused(stub.WatchJob, node_pb2.GetJobRequest(job_id=b"\x01" * 32))
    assert error.code() == grpc.StatusCode.NOT_FOUND


def test_watching_an_unchanged_job_sends_nothing_more_as_blocks_pass(served):
    core, stub = served
    assigned = next(job for job in HAND_BUILT_JOBS if job.status == state_pb2.JOB_STATUS_ASSIGNED)
    stream = stub.WatchJob(node_pb2.GetJobRequest(job_id=assigned.id), timeout=30)
    first = next(stream)
    assert first.job == assigned
    received: list = []

    def read() -> None:
        try:
            received.extend(stream)
        except grpc.RpcError:  # cancelled below
            pass

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    for _ in range(3):
        core.produce_block()
    reader.join(timeout=1.5)
    stream.cancel()
    assert received == []


# --- ListModels and GetExecutors -----------------------------------------------------------


def test_list_models_gives_the_registry_and_the_open_proposals(stub):
    reply = stub.ListModels(node_pb2.ListModelsRequest(), timeout=10)
    assert {MODEL, OTHER_MODEL} <= {model.id for model in reply.models} and MODEL_INFO in reply.models
    assert list(reply.proposals) == [PROPOSAL]


def test_get_executors_lists_every_offer_with_stake_reputation_and_load(stub):
    reply = stub.GetExecutors(node_pb2.GetExecutorsRequest(), timeout=10)
    by_account = {view.account: view for view in reply.executors}
    assert set(by_account) >= set(OFFERS)
    view = by_account[EXECUTOR_A]
    assert view.offer == OFFERS[EXECUTOR_A] and view.bonded == 1_000 and view.load == 2
    assert view.reputation == jobs.Params().reputation_initial  # no score yet: the starting one
    assert view.address.startswith("5")


def test_get_executors_of_a_model_lists_only_those_serving_it(stub):
    reply = stub.GetExecutors(node_pb2.GetExecutorsRequest(model=OTHER_MODEL), timeout=10)
    assert [view.account for view in reply.executors] == sorted([EXECUTOR_B, EXECUTOR_C])


@pytest.mark.parametrize(
    "model, code, detail",
    [
        (b"\x07" * 31, grpc.StatusCode.INVALID_ARGUMENT, "a model id is 32 bytes, got 31"),
        (b"\x07" * 32, grpc.StatusCode.NOT_FOUND, f"model {'07' * 32} is not registered"),
    ],
)
def test_get_executors_of_a_bad_or_unknown_model_says_so(stub, model, code, detail):
    error = refused(stub.GetExecutors, node_pb2.GetExecutorsRequest(model=model))
    assert error.code() == code and error.details() == detail
