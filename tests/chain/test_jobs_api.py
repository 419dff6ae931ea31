"""The market's read API over real gRPC (GetJob, ListJobs, WatchJob, ListModels, GetExecutors), and the
StateView walks it is built on.

Most cases read hand-built records written under the documented keys (runtime/jobs.py, staking.py,
models.py) into a genesis state, so statuses that need a worker (settled, disputed) are listed too;
the cases at the end post, draw and settle jobs through the real runtime (a job posted at height h
is DRAWING until its executors are drawn in block h + assignment_delay_blocks). No test loads the model.
"""

from __future__ import annotations

import threading
import time
from hashlib import blake2b

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chain.client import Client, ClientError, JobTimeout, JobView, ProofError
from chain.client.jobs import GREEDY, _check_listing as check_listing, job_status
from chain.crypto import dev_keypair
from chain.genesis import DEV_PRICE_PER_TOKEN, dev_genesis_document, parse_genesis
from chain.node import market_api
from chain.node.api import NodeApi
from chain.node.core import NodeCore
from chain.node.market_api import JobQuery, list_jobs
from chain.node.server import ApiServer
from chain.storage import ChainStore
from chain.transactions import FeeRule, sign_transaction
from inference.registration import EMBEDDED_MODEL_ID
from proto import node_pb2, node_pb2_grpc, state_pb2, types_pb2
from runtime import jobs, models, staking
from runtime.jobs import pricing
from runtime.state import MemoryState

GENESIS = parse_genesis(dev_genesis_document())
ALICE_KEY, BOB_KEY, CHARLIE_KEY = (dev_keypair(name) for name in ("alice", "bob", "charlie"))
ALICE, BOB, CHARLIE = (key.public_key for key in (ALICE_KEY, BOB_KEY, CHARLIE_KEY))
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
    for call, request in ((stub.GetJob, node_pb2.GetJobRequest(job_id=job_id)),
                          (stub.WatchJob, node_pb2.WatchJobRequest(job_id=job_id))):
        error = refused(call, request)
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
    monkeypatch.setattr(market_api, "MAX_KEYS_WALKED", 8)
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
    views = list(stub.WatchJob(node_pb2.WatchJobRequest(job_id=settled.id), timeout=10))
    assert [view.job for view in views] == [settled] and views[0].height == core.head.height


def test_watching_an_unknown_job_is_not_found(stub):
    error = refused(stub.WatchJob, node_pb2.WatchJobRequest(job_id=b"\x01" * 32))
    assert error.code() == grpc.StatusCode.NOT_FOUND


def test_watching_an_unchanged_job_sends_nothing_more_as_blocks_pass(served):
    core, stub = served
    assigned = next(job for job in HAND_BUILT_JOBS if job.status == state_pb2.JOB_STATUS_ASSIGNED)
    stream = stub.WatchJob(node_pb2.WatchJobRequest(job_id=assigned.id), timeout=30)
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


# --- through the real runtime: posted, drawn and assigned to Alice, revealed, settled --------

EMBEDDED_MODEL = bytes.fromhex(EMBEDDED_MODEL_ID)
# Not an end token of the embedded model (0, 2 and 4 are), so a result of them stops at "length".
FILLER_TOKEN = 7


class Chain:
    """A dev chain in this process: the core, its API on a free port, and blocks made on demand."""

    def __init__(self, core: NodeCore, target: str):
        self.core = core
        self.target = target
        self.nonces: dict[bytes, int] = {}
        self._producing = threading.Event()
        self._producer: threading.Thread | None = None

    def include(self, keypair, call) -> bytes:
        """Sign `call` at the sender's next nonce, submit it and make a block; the transaction hash."""
        nonce = self.nonces.get(keypair.public_key, 0)
        self.nonces[keypair.public_key] = nonce + 1
        params = self.core.rules.params
        signed = sign_transaction(keypair, chain_id=GENESIS.chain_id, genesis_hash=GENESIS.hash, nonce=nonce,
                                  call=call, fee_rule=FeeRule(params.base_fee, params.fee_per_byte, params.fee_per_weight))
        self.core.submit(signed.raw)
        self.core.produce_block()
        return signed.hash

    def post(self, keypair, max_tokens: int = 4, **fields) -> bytes:
        """Post a job of the embedded model at the dev price; its id."""
        nonce = self.nonces.get(keypair.public_key, 0)
        call = types_pb2.PostJob(model=EMBEDDED_MODEL, prompt="Say hello.", prompt_format="chat", max_tokens=max_tokens,
                                 sampling=GREEDY, max_price_per_token=DEV_PRICE_PER_TOKEN, redundancy=1)
        for name, value in fields.items():
            setattr(call, name, value)
        self.include(keypair, call)
        return jobs.job_id(GENESIS.hash, keypair.public_key, nonce)

    def produce_until(self, height: int) -> None:
        """Make empty blocks until the head is at `height`."""
        while self.core.head.height < height:
            self.core.produce_block()

    def draw_height(self, job_id: bytes) -> int:
        """The height whose on_initialize draws the job's executors (it is DRAWING until then)."""
        job = jobs.read_job(self.core.store.state, job_id)
        assert job.draw_height == job.posted_height + jobs.read_params(self.core.store.state).assignment_delay_blocks
        return job.draw_height

    def start_producing(self, interval: float = 0.05) -> None:
        """Make blocks in a thread (as the node's producer does) until stop_producing."""
        self._producing.set()

        def produce() -> None:
            while self._producing.is_set():
                self.core.produce_block()
                time.sleep(interval)

        self._producer = threading.Thread(target=produce, name="test-producer", daemon=True)
        self._producer.start()

    def stop_producing(self) -> None:
        self._producing.clear()
        if self._producer is not None:
            self._producer.join(timeout=10)


def reveal_for(job: state_pb2.Job, text: str = "hello") -> types_pb2.RevealResult:
    """A result that satisfies the job's token count and stop rule (no engine ran: the runtime cannot tell)."""
    count = job.request.max_tokens
    return types_pb2.RevealResult(job_id=job.id, salt=bytes(32), prompt_tokens=5, tokens=[FILLER_TOKEN] * count,
                                  text=text, logprobs_micronats=[-1000] * count, stop_reason="length")


@pytest.fixture
def chain(tmp_path):
    store = ChainStore(tmp_path / "db")
    store.initialize(GENESIS.chain_id, GENESIS.hash, GENESIS.initial_height, GENESIS.state())
    core = NodeCore(store, GENESIS, dev_keypair("alice"))
    core.produce_block()
    server = ApiServer(NodeApi(core, 1000), "127.0.0.1", 0)
    server.start()
    server.mark_serving()
    running = Chain(core, f"127.0.0.1:{server.port}")
    yield running
    running.stop_producing()
    server.stop(grace=0)
    store.close()


def test_a_posted_job_is_drawing_until_its_draw_height_then_assigned_to_alice_and_listed_for_poster_executor_and_height(
        chain):
    job_id = chain.post(BOB_KEY)
    draw_height = chain.draw_height(job_id)
    with Client(chain.target) as client:
        for _ in range(draw_height - chain.core.head.height):  # the post's block, then each block before the draw
            view = client.get_job(job_id)
            assert view.status == "drawing" and list(view.job.assignments) == [] and view.height < draw_height
            for filters in ({}, {"poster": "bob"}, {"status": "drawing"}):
                assert [job.id for job in client.list_jobs(**filters).jobs] == [job_id], filters
            assert client.list_jobs(executor="alice").jobs == () and client.list_jobs(status="assigned").jobs == ()
            chain.core.produce_block()
        view = client.get_job(job_id)
        assert view.height == draw_height
        assert view.status == "assigned" and [slot.executor for slot in view.job.assignments] == [ALICE]
        assert view.job.assignments[0].assigned_height == draw_height
        for filters in ({}, {"poster": "bob"}, {"executor": "alice"}, {"status": "assigned"}):
            assert [job.id for job in client.list_jobs(**filters).jobs] == [job_id], filters
        assert client.list_jobs(poster="alice").jobs == () and client.list_jobs(status="drawing").jobs == ()


def test_watch_job_sends_each_change_until_the_job_settles(chain):
    job_id = chain.post(BOB_KEY)
    with grpc.insecure_channel(chain.target) as channel:
        stream = node_pb2_grpc.NodeStub(channel).WatchJob(node_pb2.WatchJobRequest(job_id=job_id), timeout=30)
        first = next(stream)
        assert first.job.status == state_pb2.JOB_STATUS_DRAWING and first.height == chain.core.head.height
        draw_height = chain.draw_height(job_id)
        chain.produce_until(draw_height)  # the blocks before the draw change nothing: nothing is sent for them
        chain.core.produce_block()  # nothing changes for the job: nothing is sent
        chain.include(ALICE_KEY, reveal_for(first.job))
        rest = list(stream)  # ends by itself after the final status
    assert [view.job.status for view in rest] == [state_pb2.JOB_STATUS_ASSIGNED, state_pb2.JOB_STATUS_SETTLED]
    assigned, settled = rest
    assert assigned.height == draw_height and [slot.executor for slot in assigned.job.assignments] == [ALICE]
    assert settled.height == chain.core.head.height and settled.block_hash == chain.core.head.hash
    assert settled.job.assignments[0].reveal.text == "hello" and settled.job.output_digest


def test_watch_job_sends_every_change_of_a_queued_job_even_when_blocks_come_faster_than_it_reads(chain):
    # Alice serves as many jobs at once as her offer's capacity: one more waits in the queue.
    capacity = staking.read_offer(chain.core.store.state, ALICE).capacity
    *running, queued = (chain.post(BOB_KEY) for _ in range(capacity + 1))
    with grpc.insecure_channel(chain.target) as channel:
        stream = node_pb2_grpc.NodeStub(channel).WatchJob(node_pb2.WatchJobRequest(job_id=queued), timeout=30)
        assert next(stream).job.status == state_pb2.JOB_STATUS_DRAWING
        draw_height = chain.draw_height(queued)
        chain.produce_until(draw_height)  # every running job is drawn by now, and the queued one finds Alice full
        chain.include(ALICE_KEY, reveal_for(jobs.read_job(chain.core.store.state, running[0])))
        chain.core.produce_block()  # the freed slot takes the queued job by this block at the latest
        chain.include(ALICE_KEY, reveal_for(jobs.read_job(chain.core.store.state, queued)))
        chain.core.produce_block()
        views = list(stream)
    assert [view.job.status for view in views] == [
        state_pb2.JOB_STATUS_QUEUED, state_pb2.JOB_STATUS_ASSIGNED, state_pb2.JOB_STATUS_SETTLED]
    assert views[0].height == draw_height < views[1].height < views[2].height
    assert all(jobs.read_job(chain.core.store.state, job_id).status == state_pb2.JOB_STATUS_ASSIGNED
               for job_id in running[1:])


def test_watch_assignments_sends_the_executors_changed_jobs_receipts_and_events_block_by_block(chain):
    start = chain.core.head.height + 1
    job_id = chain.post(BOB_KEY)
    draw_height = chain.draw_height(job_id)
    chain.produce_until(draw_height)
    with grpc.insecure_channel(chain.target) as channel:
        stub = node_pb2_grpc.NodeStub(channel)
        stream = stub.WatchAssignments(node_pb2.WatchAssignmentsRequest(executor=ALICE, from_height=start), timeout=30)
        for height in range(start, draw_height):  # posted, then drawing: not Alice's job yet
            drawing = next(stream)
            assert (drawing.height, list(drawing.jobs), list(drawing.receipts)) == (height, [], [])
            assert "JobAssigned" not in [event.name for event in drawing.events]
        assigned = next(stream)  # drawn in on_initialize of draw_height
        assert assigned.height == draw_height and [job.id for job in assigned.jobs] == [job_id]
        assert assigned.jobs[0].status == state_pb2.JOB_STATUS_ASSIGNED and not assigned.receipts
        assert "JobAssigned" in [event.name for event in assigned.events]
        chain.core.produce_block()  # nothing of Alice's changes
        quiet = next(stream)
        assert (quiet.height, list(quiet.jobs), list(quiet.receipts)) == (draw_height + 1, [], [])
        reveal = chain.include(ALICE_KEY, reveal_for(assigned.jobs[0]))
        settled = next(stream)
        stream.cancel()
    assert [job.status for job in settled.jobs] == [state_pb2.JOB_STATUS_SETTLED]
    assert [receipt.transaction_hash for receipt in settled.receipts] == [reveal] and settled.receipts[0].success
    assert {"ResultRevealed", "PaymentHeld"} <= {event.name for event in settled.events}
    assert settled.block_hash == chain.core.head.hash


def test_watch_assignments_sends_the_jobs_drawn_in_one_block_in_the_order_the_chain_assigned_them(chain):
    start = chain.core.head.height + 1
    params = chain.core.rules.params
    for number in range(4):
        call = types_pb2.PostJob(model=EMBEDDED_MODEL, prompt=f"job {number}", prompt_format="chat", max_tokens=4,
                                 sampling=GREEDY, max_price_per_token=DEV_PRICE_PER_TOKEN, redundancy=1)
        signed = sign_transaction(BOB_KEY, chain_id=GENESIS.chain_id, genesis_hash=GENESIS.hash, nonce=number,
                                  call=call, fee_rule=FeeRule(params.base_fee, params.fee_per_byte, params.fee_per_weight))
        chain.core.submit(signed.raw)
    chain.core.produce_block()
    draw_height = chain.draw_height(jobs.job_id(GENESIS.hash, BOB, 0))
    assert {chain.draw_height(jobs.job_id(GENESIS.hash, BOB, number)) for number in range(4)} == {draw_height}
    chain.produce_until(draw_height)
    with grpc.insecure_channel(chain.target) as channel:
        request = node_pb2.WatchAssignmentsRequest(executor=ALICE, from_height=start)
        stream = node_pb2_grpc.NodeStub(channel).WatchAssignments(request, timeout=30)
        updates = [next(stream) for _ in range(start, draw_height + 1)]
        stream.cancel()
    assert [update.height for update in updates] == list(range(start, draw_height + 1))
    assert all(list(update.jobs) == [] for update in updates[:-1])  # posted, then drawing: not Alice's yet
    assert [job.request.prompt for job in updates[-1].jobs] == [f"job {number}" for number in range(4)]
    assert all(job.status == state_pb2.JOB_STATUS_ASSIGNED for job in updates[-1].jobs)


def test_watch_assignments_sends_the_jobs_it_is_asked_to_follow_first(chain):
    job_id = chain.post(BOB_KEY)
    with grpc.insecure_channel(chain.target) as channel:
        request = node_pb2.WatchAssignmentsRequest(executor=ALICE, from_height=chain.core.head.height,
                                                   job_ids=[job_id])
        first = next(node_pb2_grpc.NodeStub(channel).WatchAssignments(request, timeout=30))
    assert [job.id for job in first.jobs] == [job_id] and first.height == chain.core.head.height


@pytest.mark.parametrize(
    "request_fields, detail",
    [
        ({"executor": b"\x01" * 31}, "executor is a 32-byte account id, got 31 bytes"),
        ({"executor": ALICE, "job_ids": [b"\x02" * 31]}, "a job id is 32 bytes, got 31"),
        ({"executor": ALICE, "job_ids": [b"\x02" * 32] * 1025}, "follow at most 1024 job ids, got 1025"),
    ],
)
def test_a_bad_watch_assignments_request_is_invalid_argument(stub, request_fields, detail):
    error = refused(stub.WatchAssignments, node_pb2.WatchAssignmentsRequest(**request_fields))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and error.details() == detail


def test_post_job_through_the_client_follows_the_job_to_its_settled_result(chain):
    chain.start_producing()
    updates: list[JobView] = []
    with Client(chain.target) as client:
        worker = threading.Thread(target=fake_executor, args=(chain.target, "bonjour"), daemon=True)
        worker.start()
        view = client.post_job(BOB_KEY, "Say hello.", model=EMBEDDED_MODEL, max_tokens=3, on_update=updates.append,
                               timeout=30)
        worker.join(timeout=30)
        assert view.settled and view.result.text == "bonjour" and list(view.result.tokens) == [FILLER_TOKEN] * 3
        assert [update.status for update in updates] == ["drawing", "assigned", "settled"]
        assert updates[1].height == updates[0].job.draw_height
        params = jobs.read_params(chain.core.store.state)
        job = view.job
        # The escrow held the worst case (every prompt byte a token), the minimum protocol fee and the queue fee.
        assert updates[0].job.escrow == pricing.escrow_of(job.request, params) + params.queue_fee
        assert job.storage_deposit == pricing.storage_deposit(job.request, params)
        # Alice is paid her price for the 3 tokens and, at prompt_price_ppm, the 5 prompt tokens she reported.
        gross = pricing.charge(DEV_PRICE_PER_TOKEN, 5, 3, job.prompt_price_ppm)
        fee = pricing.protocol_fee(gross, params.protocol_fee_ppm)
        assert view.paid == gross - fee
        assert job.protocol_fee == max(fee, params.min_protocol_fee)
        # The job never queued: the queue fee comes back with the rest of the escrow.
        assert job.queue_fee == 0 and job.escrow == 0
        assert job.refunded == updates[0].job.escrow - view.paid - job.protocol_fee
        assert view.id == jobs.job_id(GENESIS.hash, BOB, 0)


def fake_executor(target: str, text: str) -> None:
    """Alice as a worker that runs no engine: reveal the first job assigned to her."""
    with Client(target) as client:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            page = client.list_jobs(executor="alice", status="assigned")
            if page.jobs:
                client.submit(ALICE_KEY, reveal_for(page.jobs[0], text), wait=True)
                return
            time.sleep(0.05)


def test_post_job_refuses_a_job_the_chain_would_refuse_before_it_costs_a_fee(chain):
    chain.start_producing()
    with Client(chain.target) as client:
        before = client.account("bob").free
        with pytest.raises(ClientError) as failed:
            client.post_job(BOB_KEY, "Say hello.", model=EMBEDDED_MODEL, max_tokens=10**6)
        assert "max_tokens" in failed.value.message and client.account("bob").free == before
        with pytest.raises(ClientError) as unknown:
            client.post_job(BOB_KEY, "Say hello.", model=bytes(32), max_price_per_token=1)
        assert "not registered" in unknown.value.message
        with pytest.raises(ClientError) as too_many:
            client.post_job(BOB_KEY, "Say hello.", model=EMBEDDED_MODEL, redundancy=2)
        assert too_many.value.code == "FAILED_PRECONDITION" and "1 executors serve" in too_many.value.message
        # Engine classes: the client asks for executors of an accepted class, the chain for a class of the model.
        with pytest.raises(ClientError) as no_class:
            client.post_job(BOB_KEY, "Say hello.", model=EMBEDDED_MODEL, engine_classes=["gpu-a"])
        assert no_class.value.code == "FAILED_PRECONDITION"
        assert "0 executors serve" in no_class.value.message and "engine class(es) gpu-a" in no_class.value.message
        with pytest.raises(ClientError) as lacking:
            client.post_job(BOB_KEY, "Say hello.", model=EMBEDDED_MODEL, engine_classes=["gpu-a"],
                            max_price_per_token=DEV_PRICE_PER_TOKEN)
        assert "has no engine class 'gpu-a' (its classes: cpu)" in lacking.value.message
        with pytest.raises(ClientError, match="a list of class names"):
            client.post_job(BOB_KEY, "Say hello.", model=EMBEDDED_MODEL, engine_classes="cpu",
                            max_price_per_token=DEV_PRICE_PER_TOKEN)
        with pytest.raises(ClientError, match="at most 8 engine classes"):
            client.post_job(BOB_KEY, "Say hello.", model=EMBEDDED_MODEL, engine_classes=[f"g{i}" for i in range(9)],
                            max_price_per_token=DEV_PRICE_PER_TOKEN)
        assert client.account("bob").free == before


def test_a_job_not_final_in_time_raises_job_timeout_with_its_last_view(chain):
    chain.start_producing()
    with Client(chain.target) as client:
        with pytest.raises(JobTimeout) as late:
            client.post_job(BOB_KEY, "Say hello.", model=EMBEDDED_MODEL, max_tokens=2, timeout=0.5)
        # Its last view is whatever the chain had when time ran out: still drawing, or drawn and not yet run.
        assert late.value.view.status in ("drawing", "assigned") and late.value.code == "DEADLINE_EXCEEDED"


def test_the_client_refuses_a_listing_that_breaks_its_own_filters(chain):
    chain.post(BOB_KEY)
    with Client(chain.target) as client:
        reply = node_pb2.ListJobsResponse(jobs=[client.list_jobs().jobs[0]])
        with pytest.raises(ProofError):
            check_listing(node_pb2.ListJobsRequest(poster=CHARLIE), reply)
        with pytest.raises(ProofError):
            check_listing(node_pb2.ListJobsRequest(), node_pb2.ListJobsResponse(jobs=list(reply.jobs) * 2))


@settings(max_examples=50, deadline=None)
@given(status=st.one_of(st.integers(-5, 20), st.text(max_size=30)))
def test_a_status_filter_is_a_job_status_name_or_number_or_a_client_error(status):
    try:
        value = job_status(status)
    except ClientError as error:
        assert error.code == "INVALID_ARGUMENT"
    else:
        assert value in state_pb2.JobStatus.values() and (value != 0 or status == 0)
