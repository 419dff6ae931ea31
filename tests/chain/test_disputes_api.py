"""The disputes' read API over real gRPC (GetDispute, ListDisputes, GetSlashes, JobView.dispute in GetJob and
WatchJob, the disputes' events in WatchAssignments) and the client's typed calls and answer rule.

The first cases read hand-built disputes and slashes written under the documented keys
(runtime/disputes/storage.py, runtime/slashing/storage.py) into a genesis state, so every phase of a
dispute can be listed. The cases at the end open disputes through the real runtime on a chain of three
validators that each offer the embedded model: two of them reveal different results for one job, the
third is its committee, votes through real CommitVote and RevealVote transactions, and the forger is
slashed. No test loads the model.
"""

from __future__ import annotations

import contextlib
import threading
from hashlib import blake2b

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chain.client import Client, ClientError, ProofError, answer_of
from chain.client.disputes import check_dispute_page, check_slashes
from chain.client.jobs import GREEDY
from chain.crypto import dev_keypair
from chain.genesis import DEV_PRICE_PER_TOKEN, dev_genesis_document, parse_genesis
from chain.node.api import NodeApi
from chain.node.core import NodeCore
from chain.node.market_api import view_over
from chain.node.server import ApiServer
from chain.storage import ChainStore
from chain.transactions import FeeRule, sign_transaction
from inference.registration import EMBEDDED_MODEL_ID
from proto import node_pb2, node_pb2_grpc, state_pb2, types_pb2
from proto.digest import logprobs_digest
from runtime import jobs
from runtime.disputes.recipes import vote_commitment
from runtime.disputes.storage import read_dispute
from tests.chain.test_jobs_api import GENESIS, Chain, hand_built_job, job_records, refused, reveal_for

MEMBER_A, MEMBER_B, OUTSIDER = (bytes([0xA0 + number]) * 32 for number in range(3))
COMMITTING = state_pb2.DISPUTE_STATUS_COMMITTING
REVEALING = state_pb2.DISPUTE_STATUS_REVEALING
DECIDED = state_pb2.DISPUTE_STATUS_DECIDED
VALID, INVALID, NONE = (state_pb2.CANDIDATE_VERDICT_VALID, state_pb2.CANDIDATE_VERDICT_INVALID,
                        state_pb2.CANDIDATE_VERDICT_NONE)

# --- hand-built state -------------------------------------------------------------------

DISPUTE_PREFIX = b"disputes/dispute/"
OPEN_PREFIX = b"disputes/open/"
OPEN_COUNT_KEY = b"disputes/open_count"
DUTY_PREFIX = b"disputes/duty/"
SLASH_PREFIX = b"slashing/slash/"
RECENT_PREFIX = b"slashing/recent/"


def disputed_job(number: int, status: int) -> state_pb2.Job:
    """Hand-built job `number` with two revealed results, in `status`."""
    job = hand_built_job(number)
    job.status = status
    del job.assignments[:]
    for executor, text in ((bytes([0xE0]) * 32, "honest"), (bytes([0xE1]) * 32, "forged")):
        slot = job.assignments.add(executor=executor, price_per_token=10, status=state_pb2.ASSIGNMENT_STATUS_REVEALED)
        slot.reveal.text = text
        slot.reveal.output_digest = blake2b(text.encode(), digest_size=32).digest()
    return job


def member(account: bytes, committed: bool = False, revealed: bool = False) -> state_pb2.CommitteeMember:
    return state_pb2.CommitteeMember(account=account, stake=1_000, commitment=b"\x01" * 32 if committed else b"",
                                     revealed=revealed)


# Four disputes, in id order below: MEMBER_A is waited for in the first two only (no commitment yet while
# committing; committed and not revealed while revealing), has revealed in the third, and the fourth is decided.
DISPUTE_STATES = (
    (COMMITTING, [member(MEMBER_A), member(MEMBER_B, committed=True)]),
    (REVEALING, [member(MEMBER_A, committed=True), member(MEMBER_B, committed=True, revealed=True)]),
    (REVEALING, [member(MEMBER_A, committed=True, revealed=True), member(MEMBER_B, committed=True)]),
    (DECIDED, [member(MEMBER_A, committed=True, revealed=True), member(MEMBER_B, committed=True, revealed=True)]),
)
DISPUTED_JOBS = [disputed_job(200 + number, state_pb2.JOB_STATUS_DISPUTED) for number in range(len(DISPUTE_STATES))]
DISPUTED_JOBS[3].status = state_pb2.JOB_STATUS_SETTLED
DISPUTED_JOBS[3].output_digest = DISPUTED_JOBS[3].assignments[0].reveal.output_digest
DISPUTED_JOBS[3].assignments[0].verdict = VALID
DISPUTED_JOBS[3].assignments[1].verdict = INVALID
UNDISPUTED_JOB = hand_built_job(3)  # settled, no dispute
DISPUTES = sorted(
    (state_pb2.Dispute(id=job.id, job=job.id, candidates=[0, 1], reason=state_pb2.DISPUTE_REASON_DIGESTS,
                       opened_height=5, draw_height=7, commit_deadline=27, status=status, committee=committee,
                       verdicts=[VALID, INVALID] if status == DECIDED else [],
                       outcome="candidate 1 invalid" if status == DECIDED else "")
     for job, (status, committee) in zip(DISPUTED_JOBS, DISPUTE_STATES)),
    key=lambda dispute: dispute.id,
)
BY_ID = {dispute.id: dispute for dispute in DISPUTES}
SLASHES = [
    state_pb2.SlashRecord(account=account, offence=offence, job=job, height=height, amount=amount, burned=amount)
    for account, offence, job, height, amount in (
        (MEMBER_A, "missed_vote", DISPUTES[0].id, 3, 10),
        (MEMBER_B, "invalid_result", DISPUTES[1].id, 4, 500),
        (MEMBER_A, "contrary_vote", DISPUTES[2].id, 6, 50),
        (MEMBER_A, "invalid_result", DISPUTES[3].id, 6, 400),
    )
]


def serialized(message) -> bytes:
    return message.SerializeToString(deterministic=True)


def dispute_records() -> dict[bytes, bytes]:
    """The disputes, their open and duty indexes, the slash records and the jobs, under their documented keys."""
    records: dict[bytes, bytes] = {}
    for job in DISPUTED_JOBS + [UNDISPUTED_JOB]:
        records.update(job_records(job))
    for dispute in DISPUTES:
        records[DISPUTE_PREFIX + dispute.id] = dispute.SerializeToString(deterministic=True)
        if dispute.status != DECIDED:
            records[OPEN_PREFIX + dispute.id] = b""
            records.update({DUTY_PREFIX + seat.account + dispute.id: b"" for seat in dispute.committee})
    records[OPEN_COUNT_KEY] = sum(1 for dispute in DISPUTES if dispute.status != DECIDED).to_bytes(4, "big")
    for index, slash in enumerate(SLASHES):
        raw = slash.SerializeToString(deterministic=True)
        at = slash.height.to_bytes(8, "big") + index.to_bytes(4, "big")
        records[SLASH_PREFIX + slash.account + at] = raw
        records[RECENT_PREFIX + at + slash.account] = raw
    return records


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    store = ChainStore(tmp_path_factory.mktemp("disputes-api") / "db")
    store.initialize(GENESIS.chain_id, GENESIS.hash, GENESIS.initial_height, {**GENESIS.state(), **dispute_records()})
    core = NodeCore(store, GENESIS, dev_keypair("alice"))
    core.produce_block()
    server = ApiServer(NodeApi(core, 1000), "127.0.0.1", 0)
    server.start()
    server.mark_serving()
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    yield core, node_pb2_grpc.NodeStub(channel), f"127.0.0.1:{server.port}"
    channel.close()
    server.stop(grace=0)
    store.close()


@pytest.fixture(scope="module")
def stub(served):
    return served[1]


# --- GetDispute and JobView.dispute ------------------------------------------------------------


def test_get_dispute_returns_the_stored_dispute(stub):
    for dispute in DISPUTES:
        assert stub.GetDispute(node_pb2.GetDisputeRequest(dispute=dispute.id), timeout=10) == dispute


def test_get_job_carries_the_jobs_dispute_and_none_for_a_job_without_one(stub):
    for job in DISPUTED_JOBS:
        view = stub.GetJob(node_pb2.GetJobRequest(job_id=job.id), timeout=10)
        assert view.job == job and view.dispute == BY_ID[job.id]
    plain = stub.GetJob(node_pb2.GetJobRequest(job_id=UNDISPUTED_JOB.id), timeout=10)
    assert not plain.HasField("dispute")


def test_get_dispute_of_a_job_without_one_or_of_no_job_is_not_found_saying_which(served):
    core, stub, _ = served
    error = refused(stub.GetDispute, node_pb2.GetDisputeRequest(dispute=UNDISPUTED_JOB.id))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == (f"job {UNDISPUTED_JOB.id.hex()} has no dispute at height {core.head.height} (it is "
                               "settled; a dispute's id is its job's id)")
    unknown = refused(stub.GetDispute, node_pb2.GetDisputeRequest(dispute=b"\x05" * 32))
    assert unknown.code() == grpc.StatusCode.NOT_FOUND
    assert unknown.details() == f"no dispute {'05' * 32}: there is no job with this id at height {core.head.height}"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(dispute_id=st.binary(max_size=80).filter(lambda raw: len(raw) != 32))
def test_a_dispute_id_that_is_not_32_bytes_is_invalid_argument(stub, dispute_id):
    error = refused(stub.GetDispute, node_pb2.GetDisputeRequest(dispute=dispute_id))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == f"a dispute id is 32 bytes (the id of its job), got {len(dispute_id)}"


# --- ListDisputes ---------------------------------------------------------------------------------


def all_dispute_pages(stub, **filters) -> list[bytes]:
    ids, after = [], b""
    for _ in range(len(DISPUTES) + 2):
        page = stub.ListDisputes(node_pb2.ListDisputesRequest(after=after, **filters), timeout=10)
        ids += [dispute.id for dispute in page.disputes]
        if not page.more:
            return ids
        after = page.disputes[-1].id
    raise AssertionError("the pages never end")


@pytest.mark.parametrize("limit", [0, 1, 2, 3, 100])
def test_list_disputes_pages_by_id_every_one_or_the_open_ones(stub, limit):
    assert all_dispute_pages(stub, limit=limit) == [dispute.id for dispute in DISPUTES]
    assert all_dispute_pages(stub, limit=limit, open=True) == [
        dispute.id for dispute in DISPUTES if dispute.status != DECIDED]


def test_list_disputes_of_a_member_gives_only_those_waiting_for_its_vote(stub):
    waiting_for_a = {DISPUTED_JOBS[0].id, DISPUTED_JOBS[1].id}
    reply = stub.ListDisputes(node_pb2.ListDisputesRequest(member=MEMBER_A), timeout=10)
    assert [dispute.id for dispute in reply.disputes] == sorted(waiting_for_a) and not reply.more
    assert all_dispute_pages(stub, member=MEMBER_A, limit=1) == sorted(waiting_for_a)
    waiting_for_b = stub.ListDisputes(node_pb2.ListDisputesRequest(member=MEMBER_B), timeout=10)
    assert [dispute.id for dispute in waiting_for_b.disputes] == [DISPUTED_JOBS[2].id]
    assert list(stub.ListDisputes(node_pb2.ListDisputesRequest(member=OUTSIDER), timeout=10).disputes) == []


@pytest.mark.parametrize(
    "request_fields, detail",
    [
        ({"limit": 101}, "limit is 1 to 100 (0 means 100), got 101"),
        ({"after": b"\x01" * 31}, "after is a dispute id of 32 bytes (or empty), got 31 bytes"),
        ({"member": b"\x01" * 33}, "member is an account id of 32 bytes (or empty), got 33 bytes"),
    ],
)
def test_a_bad_dispute_listing_is_invalid_argument_saying_why(stub, request_fields, detail):
    error = refused(stub.ListDisputes, node_pb2.ListDisputesRequest(**request_fields))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and error.details() == detail


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(after=st.binary(max_size=40) | st.sampled_from([dispute.id for dispute in DISPUTES]),
       member=st.binary(max_size=40) | st.sampled_from([MEMBER_A, MEMBER_B, OUTSIDER]),
       limit=st.integers(0, 2**32 - 1), open_only=st.booleans())
def test_any_dispute_listing_request_is_answered_by_its_filters_or_refused_naming_the_field(
        stub, after, member, limit, open_only):
    request = node_pb2.ListDisputesRequest(after=after, member=member, limit=limit, open=open_only)
    try:
        reply = stub.ListDisputes(request, timeout=10)
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error.details().split(" ")[0] in {"after", "member", "limit"}
        assert len(after) not in (0, 32) or len(member) not in (0, 32) or limit > 100
        return
    assert len(after) in (0, 32) and len(member) in (0, 32) and limit <= 100
    check_dispute_page(request, reply)  # in id order after `after`, open or waiting as asked, at most `limit`
    expected = [dispute.id for dispute in DISPUTES if dispute.id > after
                and (not (open_only or member) or dispute.status != DECIDED)
                and (not member or any(seat.account == member for seat in dispute.committee))]
    if not member:
        assert [dispute.id for dispute in reply.disputes] == expected[:limit or 100]
    assert reply.more == (len(expected) > (limit or 100)) or bool(member)


# --- GetSlashes -----------------------------------------------------------------------------------


def test_get_slashes_of_an_account_and_of_all_newest_first(stub):
    mine = stub.GetSlashes(node_pb2.GetSlashesRequest(account=MEMBER_A), timeout=10).slashes
    assert [slash.height for slash in mine] == [6, 6, 3] and all(slash.account == MEMBER_A for slash in mine)
    every = stub.GetSlashes(node_pb2.GetSlashesRequest(), timeout=10).slashes
    assert [slash.height for slash in every] == [6, 6, 4, 3] and sorted(map(serialized, every)) == sorted(map(serialized, SLASHES))
    assert list(stub.GetSlashes(node_pb2.GetSlashesRequest(limit=1), timeout=10).slashes) == [every[0]]
    assert list(stub.GetSlashes(node_pb2.GetSlashesRequest(account=OUTSIDER), timeout=10).slashes) == []


@pytest.mark.parametrize(
    "request_fields, detail",
    [
        ({"limit": 101}, "limit is 1 to 100 (0 means 100), got 101"),
        ({"account": b"\x01" * 31}, "account is an account id of 32 bytes (or empty), got 31 bytes"),
    ],
)
def test_a_bad_slashes_request_is_invalid_argument_saying_why(stub, request_fields, detail):
    error = refused(stub.GetSlashes, node_pb2.GetSlashesRequest(**request_fields))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and error.details() == detail


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(account=st.binary(max_size=40) | st.sampled_from([MEMBER_A, MEMBER_B, OUTSIDER]), limit=st.integers(0, 2**32 - 1))
def test_any_slashes_request_is_answered_newest_first_or_refused_naming_the_field(stub, account, limit):
    request = node_pb2.GetSlashesRequest(account=account, limit=limit)
    try:
        reply = stub.GetSlashes(request, timeout=10)
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error.details().split(" ")[0] in {"account", "limit"}
        assert len(account) not in (0, 32) or limit > 100
        return
    check_slashes(request, reply)
    expected = [slash for slash in SLASHES if not account or slash.account == account]
    assert len(reply.slashes) == min(len(expected), limit or 100)


# --- WatchJob of a disputed job -------------------------------------------------------------------


def test_watching_a_disputed_job_goes_on_as_blocks_pass(served):
    core, stub, _ = served
    stream = stub.WatchJob(node_pb2.WatchJobRequest(job_id=DISPUTED_JOBS[0].id), timeout=30)
    first = next(stream)
    assert first.dispute == BY_ID[DISPUTED_JOBS[0].id]
    ended = threading.Event()

    def read() -> None:
        try:
            list(stream)
            ended.set()
        except grpc.RpcError:  # cancelled below
            pass

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    for _ in range(3):
        core.produce_block()
    reader.join(timeout=1.5)
    stream.cancel()
    assert not ended.is_set(), "WatchJob ended while the job was disputed"


def test_a_job_is_over_for_watch_job_only_when_final_with_no_open_dispute():
    settled = state_pb2.Job(status=state_pb2.JOB_STATUS_SETTLED)
    open_dispute = state_pb2.Dispute(status=REVEALING)
    decided = state_pb2.Dispute(status=DECIDED)
    assert view_over(node_pb2.JobView(job=settled))
    assert view_over(node_pb2.JobView(job=settled, dispute=decided))
    assert not view_over(node_pb2.JobView(job=settled, dispute=open_dispute))
    assert not view_over(node_pb2.JobView(job=state_pb2.Job(status=state_pb2.JOB_STATUS_DISPUTED), dispute=open_dispute))
    for status in (state_pb2.JOB_STATUS_REJECTED, state_pb2.JOB_STATUS_EXPIRED, state_pb2.JOB_STATUS_CANCELLED):
        assert view_over(node_pb2.JobView(job=state_pb2.Job(status=status)))


# --- the client -----------------------------------------------------------------------------------


def test_the_client_reads_disputes_and_slashes_typed_and_checked(served):
    _, _, target = served
    with Client(target) as client:
        assert client.dispute(DISPUTES[2].id) == DISPUTES[2]
        page = client.disputes(limit=2)
        assert page.disputes == tuple(DISPUTES[:2]) and page.more
        assert client.disputes(after=DISPUTES[1].id).disputes == tuple(DISPUTES[2:])
        assert {dispute.id for dispute in client.disputes(open=True).disputes} == {
            dispute.id for dispute in DISPUTES if dispute.status != DECIDED}
        assert len(client.disputes(member=MEMBER_A).disputes) == 2
        assert [slash.offence for slash in client.slashes(MEMBER_A)] == ["invalid_result", "contrary_vote", "missed_vote"]
        assert len(client.slashes(limit=2)) == 2
        view = client.get_job(DISPUTED_JOBS[0].id)
        assert view.dispute == BY_ID[view.id] and view.result is None and not view.final
        with pytest.raises(ClientError) as missing:
            client.dispute(UNDISPUTED_JOB.id)
        assert missing.value.code == "NOT_FOUND" and "has no dispute" in missing.value.message
        for bad in ({"limit": 101}, {"limit": -1}, {"after": b"short"}):
            with pytest.raises(ClientError) as refused_locally:
                client.disputes(**bad)
            assert refused_locally.value.code == "INVALID_ARGUMENT"


def test_the_client_refuses_a_dispute_listing_or_slashes_that_break_their_filters():
    listing = state_pb2.DisputeList(disputes=DISPUTES)
    check_dispute_page(node_pb2.ListDisputesRequest(), listing)
    with pytest.raises(ProofError):
        check_dispute_page(node_pb2.ListDisputesRequest(), state_pb2.DisputeList(disputes=DISPUTES[::-1]))
    with pytest.raises(ProofError):
        check_dispute_page(node_pb2.ListDisputesRequest(open=True), listing)  # a decided one among open ones
    with pytest.raises(ProofError):
        check_dispute_page(node_pb2.ListDisputesRequest(member=OUTSIDER), state_pb2.DisputeList(disputes=DISPUTES[:1]))
    with pytest.raises(ProofError):
        check_dispute_page(node_pb2.ListDisputesRequest(after=DISPUTES[1].id), state_pb2.DisputeList(disputes=DISPUTES[1:]))
    with pytest.raises(ProofError):
        check_slashes(node_pb2.GetSlashesRequest(), state_pb2.SlashList(slashes=SLASHES))  # oldest first
    with pytest.raises(ProofError):
        check_slashes(node_pb2.GetSlashesRequest(account=MEMBER_B), state_pb2.SlashList(slashes=SLASHES[:1]))


def revealed_job(status: int, verdicts: tuple[int, int], digest_of: int | None) -> state_pb2.Job:
    job = disputed_job(0, status)
    for slot, verdict in zip(job.assignments, verdicts):
        slot.verdict = verdict
    if digest_of is not None:
        job.output_digest = job.assignments[digest_of].reveal.output_digest
    return job


@pytest.mark.parametrize(
    "status, verdicts, digest_of, dispute_status, answer",
    [
        # Disputed: no answer yet, whatever was revealed first.
        (state_pb2.JOB_STATUS_DISPUTED, (0, 0), None, REVEALING, None),
        # Judged: the valid result, never the invalid one revealed before it.
        (state_pb2.JOB_STATUS_SETTLED, (INVALID, VALID), 1, DECIDED, "forged"),
        (state_pb2.JOB_STATUS_SETTLED, (VALID, INVALID), 0, DECIDED, "honest"),
        # Settled with no verdict (an audit without a committee): the reveal the job settled on.
        (state_pb2.JOB_STATUS_SETTLED, (NONE, NONE), 1, DECIDED, "forged"),
        (state_pb2.JOB_STATUS_SETTLED, (0, 0), 1, None, "forged"),
        # Every result invalid: rejected, no answer.
        (state_pb2.JOB_STATUS_REJECTED, (INVALID, INVALID), None, DECIDED, None),
        # A settled job whose dispute is still open (never left so by the runtime): no answer either.
        (state_pb2.JOB_STATUS_SETTLED, (0, 0), 0, COMMITTING, None),
    ],
)
def test_the_answer_is_a_valid_or_settled_on_result_never_an_invalid_or_disputed_one(
        status, verdicts, digest_of, dispute_status, answer):
    job = revealed_job(status, verdicts, digest_of)
    dispute = None if dispute_status is None else state_pb2.Dispute(status=dispute_status)
    found = answer_of(job, dispute)
    assert (found.text if found is not None else None) == answer


# --- through the real runtime: a dispute opened, judged by a committee, the forger slashed ----------

VALIDATORS = ("alice", "bob", "charlie")
THREE_VALIDATORS = parse_genesis(dev_genesis_document(validator_names=VALIDATORS))
KEYS = {dev_keypair(name).public_key: dev_keypair(name) for name in VALIDATORS}
POSTER = dev_keypair("dave")
EMBEDDED_MODEL = bytes.fromhex(EMBEDDED_MODEL_ID)
HONEST, FORGED = "honest", "forged"


class DisputeChain(Chain):
    """A chain of three validators that each offer the embedded model, in this process (Chain of
    tests/chain/test_jobs_api.py), with the steps of a job whose two executors disagree."""

    genesis = THREE_VALIDATORS

    def include(self, keypair, call) -> bytes:
        """Sign `call` at the sender's next nonce, submit it and make a block; the transaction hash."""
        nonce = self.nonces.get(keypair.public_key, 0)
        self.nonces[keypair.public_key] = nonce + 1
        params = self.core.rules.params
        signed = sign_transaction(keypair, chain_id=self.genesis.chain_id, genesis_hash=self.genesis.hash, nonce=nonce,
                                  call=call, fee_rule=FeeRule(params.base_fee, params.fee_per_byte, params.fee_per_weight))
        self.core.submit(signed.raw)
        self.core.produce_block()
        return signed.hash

    def job(self, job_id: bytes) -> state_pb2.Job:
        return jobs.read_job(self.core.store.state, job_id)

    def dispute(self, job_id: bytes) -> state_pb2.Dispute | None:
        return read_dispute(self.core.store.state, job_id)

    def post_and_draw(self, redundancy: int) -> state_pb2.Job:
        """Dave posts a job of the embedded model; the job once its executors are drawn."""
        nonce = self.nonces.get(POSTER.public_key, 0)
        self.include(POSTER, types_pb2.PostJob(model=EMBEDDED_MODEL, prompt="Say hello.", prompt_format="chat",
                                               max_tokens=4, sampling=GREEDY, max_price_per_token=DEV_PRICE_PER_TOKEN,
                                               redundancy=redundancy))
        job_id = jobs.job_id(self.genesis.hash, POSTER.public_key, nonce)
        self.produce_until(self.job(job_id).draw_height)
        job = self.job(job_id)
        assert job.status == state_pb2.JOB_STATUS_ASSIGNED and len(job.assignments) == redundancy, job
        return job

    def run(self, job: state_pb2.Job, texts) -> state_pb2.Job:
        """Each executor commits its text's result, then each reveals it (directly at redundancy 1)."""
        reveals = [(KEYS[slot.executor], result_of(job, KEYS[slot.executor], text))
                   for slot, text in zip(job.assignments, texts)]
        if job.request.redundancy > 1:
            for keypair, reveal in reveals:
                self.include(keypair, types_pb2.CommitResult(job_id=job.id, commitment=commitment_of(job, keypair, reveal)))
        for keypair, reveal in reveals:
            self.include(keypair, reveal)
        return self.job(job.id)

    def disputed(self) -> state_pb2.Job:
        """A redundancy-2 job whose first executor reveals HONEST and whose second reveals FORGED: disputed."""
        job = self.run(self.post_and_draw(2), (HONEST, FORGED))
        assert job.status == state_pb2.JOB_STATUS_DISPUTED, job
        return job

    def draw_committee(self, job_id: bytes) -> state_pb2.Dispute:
        """Blocks until the dispute's committee is drawn; the dispute then."""
        self.produce_until(self.dispute(job_id).draw_height)
        dispute = self.dispute(job_id)
        assert dispute.committee, dispute
        return dispute

    def judge(self, job_id: bytes, valid) -> state_pb2.Dispute:
        """Every member commits, then reveals, a vote per candidate (`valid(slot)`); the dispute after the last reveal."""
        dispute = self.dispute(job_id)
        job = self.job(job_id)
        ballots = []
        for seat in dispute.committee:
            keypair = KEYS[seat.account]
            votes = [vote_for(candidate, valid(job.assignments[candidate])) for candidate in dispute.candidates]
            salt = blake2b(b"salt" + seat.account, digest_size=32).digest()
            ballots.append((keypair, salt, votes))
            self.include(keypair, types_pb2.CommitVote(
                dispute=dispute.id, commitment=vote_commitment(dispute.id, seat.account, salt, votes)))
        for keypair, salt, votes in ballots:
            self.include(keypair, types_pb2.RevealVote(dispute=dispute.id, salt=salt, votes=votes))
        return self.dispute(job_id)


def result_of(job: state_pb2.Job, keypair, text: str) -> types_pb2.RevealResult:
    """A result of `text` for the job (reveal_for's), salted for its executor."""
    reveal = reveal_for(job, text)
    reveal.salt = blake2b(keypair.public_key + text.encode(), digest_size=32).digest()
    return reveal


def commitment_of(job: state_pb2.Job, keypair, reveal: types_pb2.RevealResult) -> bytes:
    digest = jobs.output_digest(job, reveal.prompt_tokens, reveal.tokens, reveal.text, reveal.stop_reason)
    return jobs.commitment(job.id, keypair.public_key, reveal.salt, digest, logprobs_digest(reveal.logprobs_micronats))


def vote_for(candidate: int, valid: bool) -> types_pb2.CandidateVote:
    """A committee vote with the statistics of a 4-token re-score: no misses when valid, every position when not."""
    return types_pb2.CandidateVote(candidate=candidate, valid=valid, positions=4, misses=0 if valid else 4,
                                   worst_margin_micro=0 if valid else -5_000_000)


def honest(slot: state_pb2.Assignment) -> bool:
    return slot.reveal.text == HONEST


@contextlib.contextmanager
def serving(genesis, tmp_path):
    """A chain of `genesis` (three validators) served on a free port in this process (Alice makes every block)."""
    store = ChainStore(tmp_path / "db")
    store.initialize(genesis.chain_id, genesis.hash, genesis.initial_height, genesis.state())
    core = NodeCore(store, genesis, dev_keypair("alice"))
    core.produce_block()
    server = ApiServer(NodeApi(core, 1000), "127.0.0.1", 0)
    server.start()
    server.mark_serving()
    running = DisputeChain(core, f"127.0.0.1:{server.port}")
    running.genesis = genesis
    try:
        yield running
    finally:
        running.stop_producing()
        server.stop(grace=0)
        store.close()


@pytest.fixture
def chain(tmp_path):
    with serving(THREE_VALIDATORS, tmp_path) as running:
        yield running


def test_differing_reveals_open_a_dispute_that_get_job_get_dispute_and_list_disputes_show(chain):
    job = chain.disputed()
    with Client(chain.target) as client:
        view = client.get_job(job.id)
        assert view.status == "disputed" and not view.final and view.result is None
        dispute = client.dispute(job.id)
        assert view.dispute == dispute and dispute.job == job.id
        assert dispute.reason == state_pb2.DISPUTE_REASON_DIGESTS and list(dispute.candidates) == [0, 1]
        assert [item.id for item in client.disputes(open=True).disputes] == [job.id]
        dispute = chain.draw_committee(job.id)
        # The committee: the one validator that had no part in the job.
        executors = {slot.executor for slot in job.assignments}
        [seat] = dispute.committee
        assert seat.account not in executors and seat.account in KEYS
        assert [item.id for item in client.disputes(member=seat.account).disputes] == [job.id]
        assert client.disputes(member=job.assignments[0].executor).disputes == ()


def test_a_committee_verdict_settles_on_the_valid_result_and_slashes_the_forger(chain):
    job = chain.disputed()
    chain.draw_committee(job.id)
    forger = job.assignments[1].executor
    dispute = chain.judge(job.id, honest)
    assert dispute.status == DECIDED and list(dispute.verdicts) == [VALID, INVALID]
    with Client(chain.target) as client:
        view = client.get_job(job.id)
        assert view.final and view.settled and view.dispute == dispute
        assert [slot.verdict for slot in view.job.assignments] == [VALID, INVALID]
        assert view.result.text == HONEST  # never the forged text, whatever was revealed first
        # The invalid result, and (every position a miss) the conviction on the evidence across jobs.
        slashes = {slash.offence: slash for slash in client.slashes(forger) if slash.job == job.id}
        assert "invalid_result" in slashes and set(slashes) <= {"invalid_result", "conviction"}
        slash = slashes["invalid_result"]
        assert slash.amount > 0 and slash.jailed_until > view.height
        assert slash in client.slashes()
        assert not any(slash.account != forger for slash in client.slashes())  # nobody else punished
        assert client.disputes(open=True).disputes == ()


def test_watch_job_follows_a_disputed_job_through_the_committee_to_its_verdict(chain):
    job = chain.disputed()
    with grpc.insecure_channel(chain.target) as channel:
        stream = node_pb2_grpc.NodeStub(channel).WatchJob(node_pb2.WatchJobRequest(job_id=job.id), timeout=60)
        first = next(stream)
        assert first.job.status == state_pb2.JOB_STATUS_DISPUTED and first.dispute.id == job.id
        chain.draw_committee(job.id)
        chain.judge(job.id, honest)
        rest = list(stream)  # ends by itself once the verdict is in
    statuses = [(view.job.status, view.dispute.status) for view in rest]
    # Drawn (committing), the vote committed (revealing), then the verdict: each a change of the dispute.
    assert statuses[-1] == (state_pb2.JOB_STATUS_SETTLED, DECIDED)
    assert (state_pb2.JOB_STATUS_DISPUTED, REVEALING) in statuses
    assert all(status == state_pb2.JOB_STATUS_DISPUTED for status, _ in statuses[:-1])
    assert [view.height for view in rest] == sorted({view.height for view in rest})


def test_watch_assignments_sends_the_verdict_on_the_executors_result(chain):
    job = chain.disputed()
    forger = job.assignments[1].executor
    chain.draw_committee(job.id)
    start = chain.core.head.height + 1
    chain.judge(job.id, honest)
    with grpc.insecure_channel(chain.target) as channel:
        request = node_pb2.WatchAssignmentsRequest(executor=forger, from_height=start, job_ids=[job.id])
        stream = node_pb2_grpc.NodeStub(channel).WatchAssignments(request, timeout=30)
        updates = [next(stream) for _ in range(start, chain.core.head.height + 1)]
        stream.cancel()
    judged = [event for update in updates for event in update.events
              if event.module == "disputes" and event.name == "CandidateJudged"]
    assert [dict((a.key, a.value) for a in event.attributes)["verdict"] for event in judged] == ["invalid"]
    assert updates[-1].jobs and updates[-1].jobs[-1].assignments[1].verdict == INVALID


def test_the_client_follows_a_disputed_job_to_its_verdict_and_answers_only_the_valid_result(chain):
    job = chain.disputed()
    views: list = []
    with Client(chain.target) as client:
        watcher = threading.Thread(target=lambda: views.extend(client.watch_job(job.id, timeout=30)), daemon=True)
        watcher.start()
        chain.draw_committee(job.id)
        chain.judge(job.id, honest)
        watcher.join(timeout=30)
    assert views[0].status == "disputed" and not views[0].final and views[0].result is None
    assert all(not view.final for view in views[:-1])
    assert views[-1].final and views[-1].dispute.status == DECIDED and views[-1].result.text == HONEST
