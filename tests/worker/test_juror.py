"""The committee member's side of disputes (chain/worker/juror.py) with the real embedded model: honest
results are voted valid with no misses, forged ones invalid; the commitment sent is the runtime's
recipe over the journaled salt and votes, and a restarted juror reveals exactly those; on a real node,
a validator's worker drawn into audit committees commits and reveals, and the verdicts follow."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from typing import Iterator

import pytest

from chain.client import Client, ClientError
from chain.client.queries import ModuleQueries
from chain.client.results import Receipt, TransactionStatus
from chain.crypto import dev_keypair
from chain.worker.executor import EnginePool, inference_job
from chain.worker.juror import (
    COMMIT,
    REVEAL,
    Juror,
    RescoreFailed,
    candidate_vote,
    pair_thresholds,
    phase_due,
    pool_rescorer,
)
from chain.worker.journal import Journal
from chain.worker.juror_journal import Ballot, VoteJournal
from chain.worker.worker import Worker
from inference import frauds
from inference.engine import EngineConfig
from inference.errors import EngineError
from inference.model_store import ModelStore
from inference.registration import EMBEDDED_MODEL_ID, embedded_model_info, registered_thresholds
from proto import state_pb2, types_pb2
from runtime import jobs
from runtime.jobs.phases import job_status_name
from runtime.disputes.recipes import vote_commitment
from runtime.models import check_model, model_from_json
from tests.nodes import NodeProcess, free_port, market_genesis
from tests.worker.conftest import EPOCH_BLOCKS, PRICE, SHORT_DEADLINES, running_worker, running_worker_of

MODEL = bytes.fromhex(EMBEDDED_MODEL_ID)
MEMBER = dev_keypair("dave")
ALICE = dev_keypair("alice")
CHARLIE = dev_keypair("charlie")
EXECUTOR = dev_keypair("bob").public_key
OTHER_EXECUTOR = dev_keypair("eve").public_key
GREEDY = types_pb2.Sampling(temperature_milli=0, top_k=40, top_p_ppm=950_000, seed=0)
SAMPLED = types_pb2.Sampling(temperature_milli=800, top_k=40, top_p_ppm=950_000, seed=12345)


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    """The worker's engine pool with one engine of the embedded model, as `inferchain worker` loads it."""
    store = ModelStore(tmp_path_factory.mktemp("store") / "models")
    # One thread: llama.cpp's threads spin, and on 2 cores shared with other tests two slowed each other down.
    engines = EnginePool(store, EngineConfig(threads=1, context=1024), parallel=1)
    engines.load(EMBEDDED_MODEL_ID)
    yield engines
    engines.close()


@pytest.fixture(scope="module")
def thresholds():
    """The embedded model's thresholds as every genesis registers them: what a committee judges by."""
    return registered_thresholds(model_from_json(embedded_model_info(), "genesis"))


def chain_job(prompt: str, sampling: types_pb2.Sampling = GREEDY, max_tokens: int = 24) -> state_pb2.Job:
    """A job record as the chain holds it, with no assignment yet."""
    job_id = hashlib.blake2b(f"juror test {prompt} {sampling.seed}".encode(), digest_size=32).digest()
    request = types_pb2.PostJob(model=MODEL, prompt=prompt, prompt_format="chat", max_tokens=max_tokens,
                                sampling=sampling, redundancy=2)
    return state_pb2.Job(id=job_id, request=request, status=state_pb2.JOB_STATUS_DISPUTED)


def reveal_of(result) -> state_pb2.Reveal:
    return state_pb2.Reveal(prompt_tokens=result.prompt_tokens, tokens=result.tokens, text=result.text,
                            logprobs_micronats=result.logprobs_micronats, stop_reason=result.stop_reason,
                            output_digest=result.output_digest())


def with_reveals(job: state_pb2.Job, *reveals: tuple[bytes, state_pb2.Reveal]) -> state_pb2.Job:
    """The job with one REVEALED assignment per (executor, reveal)."""
    disputed = state_pb2.Job()
    disputed.CopyFrom(job)
    for executor, reveal in reveals:
        disputed.assignments.append(state_pb2.Assignment(
            executor=executor, status=state_pb2.ASSIGNMENT_STATUS_REVEALED, reveal=reveal))
    return disputed


@pytest.fixture(scope="module")
def disputed_job(pool) -> state_pb2.Job:
    """A sampled job revealed honestly by one executor and with three tokens edited by another."""
    job = chain_job("Describe what a lighthouse keeper does all day.", SAMPLED)
    honest = pool.run(inference_job(job), lambda: False)
    with pool.engine(EMBEDDED_MODEL_ID, lambda: False) as engine:
        forged = frauds.replace_tokens(honest, 3, engine.vocabulary_size, set(engine.end_of_generation_tokens()),
                                       engine.detokenize)
    assert forged.tokens != honest.tokens
    return with_reveals(job, (EXECUTOR, reveal_of(honest)), (OTHER_EXECUTOR, reveal_of(forged)))


# -- votes on candidates -------------------------------------------------------------------------


def test_an_honest_result_is_voted_valid_with_no_misses(pool, thresholds, disputed_job):
    vote = candidate_vote(disputed_job, 0, thresholds, pool_rescorer(pool))
    assert vote.candidate == 0 and vote.valid
    assert vote.misses == 0 and vote.positions == len(disputed_job.assignments[0].reveal.tokens)
    assert vote.worst_margin_micro >= thresholds.worst_margin_micro


def test_an_honest_greedy_result_is_voted_valid(pool, thresholds):
    job = chain_job("Explain how a compass points north.")
    honest = pool.run(inference_job(job), lambda: False)
    vote = candidate_vote(with_reveals(job, (EXECUTOR, reveal_of(honest))), 0, thresholds, pool_rescorer(pool))
    assert vote.valid and vote.misses == 0 and vote.positions == len(honest.tokens)


def test_a_result_with_edited_tokens_is_voted_invalid(pool, thresholds, disputed_job):
    vote = candidate_vote(disputed_job, 1, thresholds, pool_rescorer(pool))
    assert vote.candidate == 1 and not vote.valid
    assert vote.positions == len(disputed_job.assignments[1].reveal.tokens)
    assert vote.worst_margin_micro < thresholds.worst_margin_micro


def test_a_result_with_unknown_tokens_is_voted_invalid_with_no_positions(pool, thresholds, disputed_job):
    reveal = state_pb2.Reveal()
    reveal.CopyFrom(disputed_job.assignments[0].reveal)
    reveal.tokens[2] = 10_000_000  # far beyond the 49,152-token vocabulary
    job = with_reveals(chain_job("Describe what a lighthouse keeper does all day.", SAMPLED), (EXECUTOR, reveal))
    vote = candidate_vote(job, 0, thresholds, pool_rescorer(pool))
    assert (vote.valid, vote.positions, vote.misses, vote.worst_margin_micro) == (False, 0, 0, 0)


def test_a_result_the_engine_cannot_read_is_voted_invalid_with_no_positions(thresholds, disputed_job):
    reveal = state_pb2.Reveal()
    reveal.CopyFrom(disputed_job.assignments[0].reveal)
    reveal.stop_reason = "tired"
    del reveal.logprobs_micronats[-1]
    job = with_reveals(chain_job("Describe what a lighthouse keeper does all day.", SAMPLED), (EXECUTOR, reveal))
    vote = candidate_vote(job, 0, thresholds, unusable_engine)
    assert (vote.candidate, vote.valid, vote.positions) == (0, False, 0)


def test_a_node_that_cannot_rescore_raises_rather_than_voting(thresholds, disputed_job):
    with pytest.raises(RescoreFailed, match="candidate 0"):
        candidate_vote(disputed_job, 0, thresholds, unusable_engine)


def unusable_engine(result, thresholds, cancelled):
    raise EngineError("the model is not loaded on this node")


# -- commit and reveal -----------------------------------------------------------------------------


class Chain:
    """The juror's node (juror.NodeChain) as a script: records stand still until a test changes them."""

    def __init__(self, disputes: list[state_pb2.Dispute], jobs: list[state_pb2.Job], thresholds,
                 model_info: types_pb2.ModelInfo | None = None):
        self.account = MEMBER.public_key
        # With a registration, thresholds are looked up per pair of classes as NodeChain does.
        self.model_info = model_info
        self.disputes = {dispute.id: dispute for dispute in disputes}
        self.jobs = {job.id: job for job in jobs}
        self.registered = thresholds
        self.sent: list = []
        self.unreachable = False
        self.closed = False

    def duties(self):
        self._reach()
        return [dispute for dispute in self.disputes.values() if phase_due(dispute, self.account)]

    def dispute(self, dispute_id):
        self._reach()
        return self.disputes.get(dispute_id)

    def job(self, job_id):
        self._reach()
        return self.jobs.get(job_id)

    def thresholds(self, model, executor_class="cpu", verifier_class="cpu"):
        if self.model_info is not None:
            return pair_thresholds(self.model_info, executor_class, verifier_class)
        return self.registered

    def submit(self, call) -> bytes:
        self._reach()
        self.sent.append(call)
        return hashlib.blake2b(call.SerializeToString(), digest_size=32).digest()

    def transaction(self, transaction_hash):
        return TransactionStatus(hash=transaction_hash, status="pending")

    def close(self):
        self.closed = True

    def _reach(self):
        if self.unreachable:
            raise ClientError("UNAVAILABLE", "no node answered at 127.0.0.1:9944")


def open_dispute(job: state_pb2.Job, members=(MEMBER.public_key,), status=state_pb2.DISPUTE_STATUS_COMMITTING,
                 commit_deadline: int = 30, reveal_deadline: int = 0) -> state_pb2.Dispute:
    return state_pb2.Dispute(
        id=job.id, job=job.id, candidates=range(len(job.assignments)), reason=state_pb2.DISPUTE_REASON_DIGESTS,
        committee=[state_pb2.CommitteeMember(account=member, stake=10**17) for member in members],
        status=status, commit_deadline=commit_deadline, reveal_deadline=reveal_deadline,
    )


def committed(dispute: state_pb2.Dispute, commitment: bytes, reveal_deadline: int = 40) -> state_pb2.Dispute:
    """The dispute once this member's commitment is in and the reveals are open."""
    after = state_pb2.Dispute()
    after.CopyFrom(dispute)
    after.status = state_pb2.DISPUTE_STATUS_REVEALING
    after.reveal_deadline = reveal_deadline
    after.committee[0].commitment = commitment
    return after


def never_rescore(result, thresholds, cancelled):
    raise AssertionError("the votes should have come from the journal")


def test_the_commitment_sent_is_the_runtime_recipe_over_the_journaled_ballot(pool, thresholds, disputed_job, tmp_path):
    dispute = open_dispute(disputed_job)
    chain = Chain([dispute], [disputed_job], thresholds)
    journal = VoteJournal(tmp_path / "votes")
    Juror(chain, pool_rescorer(pool), journal).step(10)

    [call] = chain.sent
    ballot = journal.read(dispute.id)
    assert isinstance(call, types_pb2.CommitVote) and call.dispute == dispute.id
    assert call.commitment == vote_commitment(dispute.id, MEMBER.public_key, ballot.salt, ballot.votes)
    assert len(ballot.salt) == 32
    assert [(vote.candidate, vote.valid) for vote in ballot.votes] == [(0, True), (1, False)]
    assert ballot.votes[0].misses == 0 and ballot.votes[0].positions == len(disputed_job.assignments[0].reveal.tokens)


def test_a_restarted_juror_reveals_exactly_what_it_committed(pool, thresholds, disputed_job, tmp_path):
    dispute = open_dispute(disputed_job)
    chain = Chain([dispute], [disputed_job], thresholds)
    journal = VoteJournal(tmp_path / "votes")
    Juror(chain, pool_rescorer(pool), journal).step(10)
    [commit] = chain.sent

    # A new process: nothing in memory, the commitment in the chain, the reveals open.
    chain.disputes[dispute.id] = committed(dispute, commit.commitment)
    chain.sent.clear()
    Juror(chain, never_rescore, VoteJournal(tmp_path / "votes")).step(31)

    [reveal] = chain.sent
    ballot = journal.read(dispute.id)
    assert isinstance(reveal, types_pb2.RevealVote) and reveal.dispute == dispute.id
    assert reveal.salt == ballot.salt and list(reveal.votes) == list(ballot.votes)
    assert vote_commitment(reveal.dispute, MEMBER.public_key, reveal.salt, reveal.votes) == commit.commitment


def test_a_juror_restarted_before_its_commitment_was_included_commits_the_same_votes(pool, thresholds, disputed_job,
                                                                                     tmp_path):
    dispute = open_dispute(disputed_job)
    chain = Chain([dispute], [disputed_job], thresholds)
    Juror(chain, pool_rescorer(pool), VoteJournal(tmp_path / "votes")).step(10)
    Juror(chain, never_rescore, VoteJournal(tmp_path / "votes")).step(14)
    first, again = chain.sent
    assert first == again, "the journaled ballot, not a fresh salt"


def test_a_vote_in_flight_is_not_sent_again_and_a_committed_one_is_revealed_once(pool, thresholds, disputed_job,
                                                                                tmp_path):
    dispute = open_dispute(disputed_job)
    chain = Chain([dispute], [disputed_job], thresholds)
    journal = VoteJournal(tmp_path / "votes")
    juror = Juror(chain, pool_rescorer(pool), journal)
    juror.step(10)
    juror.step(11)
    [commit] = chain.sent
    included = Receipt(transaction_hash=hashlib.blake2b(commit.SerializeToString(), digest_size=32).digest(),
                       success=True, fee_paid=1, error_module="", error_name="", error_message="", events=())
    chain.disputes[dispute.id] = committed(dispute, commit.commitment)
    juror.step(12, [included])
    juror.step(13)
    assert [type(call) for call in chain.sent] == [types_pb2.CommitVote, types_pb2.RevealVote]

    decided = state_pb2.Dispute()
    decided.CopyFrom(chain.disputes[dispute.id])
    decided.status = state_pb2.DISPUTE_STATUS_DECIDED
    decided.committee[0].revealed = True
    chain.disputes[dispute.id] = decided
    juror.step(14)
    assert journal.read(dispute.id) is None, "the ballot goes once the dispute needs nothing more from the member"


def test_a_due_reveal_is_sent_before_another_dispute_is_rescored(pool, thresholds, disputed_job, tmp_path):
    # Under load a reveal waiting behind other disputes' re-scores missed its deadline, and the member was slashed.
    journal = VoteJournal(tmp_path / "votes")
    first = open_dispute(disputed_job)
    Juror(Chain([first], [disputed_job], thresholds), pool_rescorer(pool), journal).step(10)
    commitment = journal_commitment(journal, first)
    other_job = state_pb2.Job()
    other_job.CopyFrom(disputed_job)
    other_job.id = bytes(32)  # sorts first, and the chain lists it first
    other = open_dispute(other_job)
    order = []

    def rescore(result, thresholds, cancelled):
        order.append("rescore")
        return pool_rescorer(pool)(result, thresholds, cancelled)

    chain = Chain([other, committed(first, commitment)], [disputed_job, other_job], thresholds)
    submit = chain.submit
    chain.submit = lambda call: (order.append(type(call).__name__), submit(call))[1]
    Juror(chain, rescore, journal).step(11)
    assert order == ["RevealVote", "rescore", "rescore", "CommitVote"]


def journal_commitment(journal: VoteJournal, dispute: state_pb2.Dispute) -> bytes:
    ballot = journal.read(dispute.id)
    return vote_commitment(dispute.id, MEMBER.public_key, ballot.salt, ballot.votes)


# -- engine classes ------------------------------------------------------------------------------------


def classed_model() -> types_pb2.ModelInfo:
    """The embedded model's registration with a GPU class "gpu-a" and the thresholds for judging its results on the
    CPU (looser than the CPU's own by 0.5 nats of worst margin, to tell them apart); none for judging cpu results on
    gpu-a (a registration needs each class judged by cpu, not the reverse)."""
    info = model_from_json(embedded_model_info(), "genesis")
    looser = types_pb2.ModelThresholds()
    looser.CopyFrom(info.thresholds)
    looser.worst_margin_micro -= 500_000
    info.engine_classes.append(types_pb2.EngineClass(name="gpu-a", engine="llama-cpp-python 0.3.36 cuda sm90",
                                                     thresholds=info.thresholds))
    info.class_pairs.append(types_pb2.ClassPair(executor_class="gpu-a", verifier_class="cpu", thresholds=looser))
    check_model(info)
    return info


def made_on(job: state_pb2.Job, engine_class: str) -> state_pb2.Job:
    """The job with its first candidate's assignment recorded as drawn in `engine_class`."""
    classed = state_pb2.Job()
    classed.CopyFrom(job)
    classed.assignments[0].engine_class = engine_class
    return classed


def test_a_result_of_another_class_is_judged_by_the_pairs_thresholds(pool, thresholds, disputed_job, tmp_path):
    job = made_on(disputed_job, "gpu-a")
    info = classed_model()
    chain = Chain([open_dispute(job)], [job], thresholds, info)
    used = []

    def rescore(result, judged_by, cancelled):
        used.append(judged_by.worst_margin_micro)
        return pool_rescorer(pool)(result, judged_by, cancelled)

    Juror(chain, rescore, VoteJournal(tmp_path / "votes"), engine_class="cpu").step(10)
    [call] = chain.sent
    assert isinstance(call, types_pb2.CommitVote)
    # Candidate 0 (gpu-a) by the pair's numbers, candidate 1 (cpu) by the CPU's own.
    assert used == [info.class_pairs[0].thresholds.worst_margin_micro, info.thresholds.worst_margin_micro]


def test_a_member_without_thresholds_for_the_pair_abstains_in_one_line(thresholds, disputed_job, tmp_path, caplog):
    # A gpu-a member: candidate 0 (gpu-a) it could judge, candidate 1 (cpu) it has no numbers for.
    job = made_on(disputed_job, "gpu-a")
    chain = Chain([open_dispute(job)], [job], thresholds, classed_model())
    with caplog.at_level(logging.WARNING, logger="inferchain.worker"):
        juror = Juror(chain, never_rescore, VoteJournal(tmp_path / "votes"), engine_class="gpu-a")
        juror.step(10)
        juror.step(11)
    assert chain.sent == []
    [line] = [record.getMessage() for record in caplog.records if "abstaining" in record.getMessage()]
    assert "'gpu-a'" in line and "'cpu'" in line


def test_a_failed_vote_transaction_is_not_sent_again(pool, thresholds, disputed_job, tmp_path):
    dispute = open_dispute(disputed_job)
    chain = Chain([dispute], [disputed_job], thresholds)
    juror = Juror(chain, pool_rescorer(pool), VoteJournal(tmp_path / "votes"))
    juror.step(10)
    [commit] = chain.sent
    failed = Receipt(transaction_hash=hashlib.blake2b(commit.SerializeToString(), digest_size=32).digest(),
                     success=False, fee_paid=1, error_module="disputes", error_name="VotingClosed",
                     error_message="the commit phase ended at #9", events=())
    for height in range(11, 20):
        juror.step(height, [failed] if height == 11 else [])
    assert len(chain.sent) == 1


def test_no_vote_on_a_dispute_of_a_job_this_account_executed(thresholds, disputed_job, tmp_path, caplog):
    own = with_reveals(chain_job("Name three colours."), (MEMBER.public_key, disputed_job.assignments[0].reveal))
    chain = Chain([open_dispute(own)], [own], thresholds)
    juror = Juror(chain, never_rescore, VoteJournal(tmp_path / "votes"))
    with caplog.at_level(logging.ERROR, logger="inferchain.worker"):
        for height in range(10, 14):
            juror.step(height)
    assert chain.sent == []
    assert sum("job this account executed" in record.message for record in caplog.records) == 1


def test_no_vote_on_a_job_whose_results_were_pruned(thresholds, disputed_job, tmp_path, caplog):
    pruned = state_pb2.Job()
    pruned.CopyFrom(disputed_job)
    pruned.pruned_height = 9
    chain = Chain([open_dispute(pruned)], [pruned], thresholds)
    with caplog.at_level(logging.WARNING, logger="inferchain.worker"):
        Juror(chain, never_rescore, VoteJournal(tmp_path / "votes")).step(10)
    assert chain.sent == [] and "pruned at #9" in caplog.text


def test_no_commitment_once_the_commit_deadline_has_passed(thresholds, disputed_job, tmp_path):
    chain = Chain([open_dispute(disputed_job, commit_deadline=10)], [disputed_job], thresholds)
    Juror(chain, never_rescore, VoteJournal(tmp_path / "votes")).step(10)
    assert chain.sent == []


def test_a_lost_ballot_is_said_once_and_nothing_is_revealed(thresholds, disputed_job, tmp_path, caplog):
    chain = Chain([committed(open_dispute(disputed_job), b"\x01" * 32)], [disputed_job], thresholds)
    juror = Juror(chain, never_rescore, VoteJournal(tmp_path / "votes"))
    with caplog.at_level(logging.ERROR, logger="inferchain.worker"):
        juror.step(31)
        juror.step(32)
    assert chain.sent == []
    assert sum("not in the vote journal" in record.message for record in caplog.records) == 1


def test_a_failure_to_rescore_is_one_log_line_and_retried_at_the_next_block(pool, thresholds, disputed_job, tmp_path,
                                                                            caplog):
    dispute = open_dispute(disputed_job)
    chain = Chain([dispute], [disputed_job], thresholds)
    failing = Juror(chain, unusable_engine, VoteJournal(tmp_path / "votes"))
    with caplog.at_level(logging.WARNING, logger="inferchain.worker"):
        for height in range(10, 15):
            failing.step(height)
        chain.unreachable = True
        for height in range(15, 18):
            failing.step(height)
    assert chain.sent == [] and VoteJournal(tmp_path / "votes").read(dispute.id) is None
    warnings = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert len(warnings) == 2, [record.message for record in warnings]
    assert "model is not loaded" in warnings[0].message and "no node answered" in warnings[1].message
    assert not any(record.exc_info for record in caplog.records)

    chain.unreachable = False
    failing.rescore = pool_rescorer(pool)
    failing.step(18)
    assert [type(call) for call in chain.sent] == [types_pb2.CommitVote]


def test_the_vote_journal_refuses_a_file_of_another_dispute(tmp_path):
    journal = VoteJournal(tmp_path)
    vote = types_pb2.CandidateVote(candidate=0, valid=False, positions=5, misses=2, worst_margin_micro=-7_000_000)
    journal.write(Ballot(b"\x01" * 32, b"\x02" * 32, (vote,)))
    assert journal.read(b"\x01" * 32).votes == (vote,)
    (tmp_path / ("03" * 32 + ".json")).write_text((tmp_path / ("01" * 32 + ".json")).read_text())
    assert journal.read(b"\x03" * 32) is None
    (tmp_path / ("04" * 32 + ".json")).write_text('{"dispute": "' + "04" * 32 + '", "salt": "' + "00" * 32
                                                   + '", "votes": [{"candidate": -1}]}')
    assert journal.read(b"\x04" * 32) is None
    assert journal.dispute_ids() == [b"\x01" * 32, b"\x03" * 32, b"\x04" * 32]


def test_the_phase_owed_follows_the_dispute_record():
    job = state_pb2.Job(id=b"\x05" * 32)
    dispute = open_dispute(job)
    assert phase_due(dispute, MEMBER.public_key) == COMMIT
    assert phase_due(dispute, EXECUTOR) is None
    assert phase_due(committed(dispute, b"\x01" * 32), MEMBER.public_key) == REVEAL
    revealed = committed(dispute, b"\x01" * 32)
    revealed.committee[0].revealed = True
    assert phase_due(revealed, MEMBER.public_key) is None


# -- on a real node --------------------------------------------------------------------------------


@pytest.fixture
def audited_market(tmp_path) -> Iterator[NodeProcess]:
    """A dev node on the short-deadline market genesis where every settled job is audited, with short votes."""
    # Blocks of 500 ms and 10-block phases: a CPU shared by other tests still runs a 12-token job in time.
    deadlines = {**SHORT_DEADLINES, "commit_blocks": 10, "reveal_blocks": 10, "job_timeout_blocks": 40}
    genesis = market_genesis(tmp_path / "genesis.json", 500, **deadlines)
    document = json.loads(genesis.read_text())
    document["app_state"]["staking"]["params"]["epoch_blocks"] = str(EPOCH_BLOCKS)
    document["app_state"].setdefault("disputes", {}).setdefault("params", {}).update(
        audit_probability_ppm="1000000", audit_delay_blocks="2", vote_commit_blocks="40", vote_reveal_blocks="20",
    )
    genesis.write_text(json.dumps(document, indent=2))
    node = NodeProcess(tmp_path / "node", free_port(), ("--chain", str(genesis), "--no-worker")).start()
    yield node
    node.kill()


HONEST_PROMPT = "Name three colours."
FORGED_PROMPT = "Describe what a lighthouse keeper does all day."


@pytest.fixture(scope="module")
def bob_answers(pool) -> dict:
    """Bob's answers by prompt, generated before the chain starts (a greedy answer does not depend on the job
    id), so a CPU shared with other tests cannot make him miss his deadline: the honest one, and the other
    with three tokens edited."""
    answers = {}
    for prompt in (HONEST_PROMPT, FORGED_PROMPT):
        answers[prompt] = pool.run(inference_job(chain_job(prompt, GREEDY, max_tokens=12)), lambda: False)
    with pool.engine(EMBEDDED_MODEL_ID, lambda: False) as engine:
        answers[FORGED_PROMPT] = frauds.replace_tokens(answers[FORGED_PROMPT], 3, engine.vocabulary_size,
                                                       set(engine.end_of_generation_tokens()), engine.detokenize)
    return answers


def answering_runner(answers: dict):
    """Bob: answers each job with the prepared answer to its prompt."""
    def run(job, cancelled):
        return answers[job.prompt].replace(job=job)
    return run


def post_cheap_job(client: Client, prompt: str) -> bytes:
    """Charlie's greedy 12-token job at half Alice's price, so only the cheaper executor (Bob) is drawn."""
    call = types_pb2.PostJob(model=MODEL, prompt=prompt, prompt_format="chat", max_tokens=12, sampling=GREEDY,
                             max_price_per_token=PRICE // 2, redundancy=1)
    submission = client.submit(CHARLIE, call, wait=True)
    assert submission.receipt.success, submission.receipt.error
    return jobs.job_id(client.chain_info().genesis_hash, CHARLIE.public_key, submission.nonce)


def wait_for_dispute(client: Client, job_id: bytes, until, timeout: float = 90.0) -> state_pb2.Dispute:
    queries = ModuleQueries(client)
    deadline = time.monotonic() + timeout
    dispute = None
    while time.monotonic() < deadline:
        try:
            dispute = queries.query("disputes", "dispute", state_pb2.JobQuery(job_id=job_id)).response
        except ClientError as error:
            if error.code != "NOT_FOUND":
                raise
        if dispute is not None and until(dispute):
            return dispute
        time.sleep(0.2)
    job = client.get_job(job_id).job
    raise AssertionError(f"the dispute of job {job_id.hex()} did not reach the awaited state in {timeout} s: {dispute}"
                         f"\njob: {job_status_name(job.status)} {job.reason!r}, assignments {list(job.assignments)}")


@pytest.mark.slow
def test_a_validator_drawn_into_an_audit_committee_commits_and_reveals_its_re_score(audited_market, pool, bob_answers,
                                                                                     tmp_path):
    """Alice (the only validator serving the model) is drawn for the audits of Bob's jobs: her worker's juror
    re-scores each with the real model, commits, reveals, and the chain's verdicts follow her votes."""
    target = audited_market.target
    with Client(target) as client:
        bob = dev_keypair("bob")
        assert client.submit(bob, types_pb2.Bond(amount=10**17, validate=False), wait=True).receipt.success
        offered = client.submit(bob, types_pb2.SetOffer(models=[MODEL], price_per_token=PRICE // 2, region="",
                                                        capacity=2), wait=True)
        assert offered.receipt.success, offered.receipt.error
        alice = Worker(target, ALICE, never_runs, Journal(tmp_path / "alice"), rescore=pool_rescorer(pool))
        with running_worker_of(alice), running_worker(target, bob, answering_runner(bob_answers), tmp_path / "bob"):
            honest = post_cheap_job(client, HONEST_PROMPT)
            forged = post_cheap_job(client, FORGED_PROMPT)
            decided = [wait_for_dispute(client, job_id, lambda d: d.status == state_pb2.DISPUTE_STATUS_DECIDED)
                       for job_id in (honest, forged)]
    for dispute, prompt, valid in zip(decided, (HONEST_PROMPT, FORGED_PROMPT), (True, False)):
        assert dispute.reason == state_pb2.DISPUTE_REASON_AUDIT
        [member] = dispute.committee
        assert member.account == ALICE.public_key and len(member.commitment) == 32 and member.revealed
        [vote] = member.votes
        assert (vote.candidate, vote.valid) == (0, valid) and vote.positions == len(bob_answers[prompt].tokens)
        assert (vote.misses == 0) == valid
        expected = state_pb2.CANDIDATE_VERDICT_VALID if valid else state_pb2.CANDIDATE_VERDICT_INVALID
        assert list(dispute.verdicts) == [expected], dispute.outcome
    assert VoteJournal(tmp_path / "alice" / "votes").dispute_ids() == [], "decided disputes leave no ballot behind"


def never_runs(job, cancelled):
    raise AssertionError("Alice's price is above the jobs': she is never drawn to execute them")


