"""The committee member's side of disputes: re-score each candidate of a dispute this account is drawn
for, then commit to the votes and reveal them (docs/protocol.md, "Disputes").

A thread of its own (block_thread.py), woken by the worker's loop at each finalized block, so a
re-score never delays a job's commit or reveal. At each block it reads the account's duties (the
generic query `disputes.duties`: open disputes waiting for its commitment or its reveal) and decides
each one's next step from the dispute's record alone, as the worker does for jobs:

    COMMITTING, no commitment from this member -> re-score every candidate with the model's registered
                                                  thresholds, journal salt and votes (fsync), CommitVote
    REVEALING, committed, not revealed         -> RevealVote with the journaled salt and votes

Re-scoring runs on the worker's engine pool, one candidate at a time and in turn with the jobs
waiting for an engine (the pool's slots are first come, first served), so assigned jobs wait at
most one candidate's evaluation. A candidate that cannot be evaluated (a result the engine's format
refuses, unknown tokens) is voted invalid with 0 positions; a failure of this node (model not
loaded, node unreachable) is said in one log line and tried again at the next block. A dispute of
a job this account executed is never voted on (the runtime never draws such a member; guarded here
too).

Engine classes (docs/protocol.md, "Models"): the member judges on its own engine class (the worker's
`--engine-class`), each candidate was produced on the class its assignment records
(`Assignment.engine_class`, empty: "cpu"). The thresholds are the model's for that pair: the class's
own when both are the same, else the model's class pair. The runtime draws only members whose offered class
has thresholds for the job's results (runtime/disputes/committee.py); a member whose worker runs another class
than its offer names may still find none for a candidate's pair, and then abstains from the whole dispute
(no vote, one log line naming the pair): judging by another pair's numbers would vote honest results of a
differing engine invalid.
"""

from __future__ import annotations

import logging
from typing import Callable, Iterable

from chain.client import Client, ClientError
from chain.client.queries import ModuleQueries
from chain.client.results import Receipt, TransactionStatus
from chain.crypto import Keypair
from chain.worker.executor import EnginePool, JobCancelled, inference_job
from chain.worker.block_thread import BlockThread
from chain.worker.follower import MarketReader
from chain.worker.juror_journal import Ballot, VoteJournal
from chain.worker.submitter import Sent, new_salt, resend_due
from inference.errors import InferenceError, InvalidJob, InvalidResult
from inference.registration import CPU_CLASS, class_bounds, registered_thresholds
from inference.result import InferenceResult
from inference.thresholds import Thresholds
from inference.verifier import Verdict, rescore_and_judge
from proto import state_pb2, types_pb2
from runtime.disputes.recipes import vote_commitment

log = logging.getLogger("inferchain.worker")

DISPUTES_MODULE = "disputes"
COMMIT = "commit"
REVEAL = "reveal"
# What a candidate's result can be refused for on its face: its own fault, not this node's.
CANDIDATE_FAULTS = (InvalidResult, InvalidJob)

# Re-scores a claimed result with the model's engine and judges it by the thresholds; polls
# `cancelled()` while it waits for an engine (JobCancelled when it turns true).
Rescorer = Callable[[InferenceResult, Thresholds, Callable[[], bool]], Verdict]


class RescoreFailed(Exception):
    """This node cannot vote on the dispute now (model, thresholds, journal or node unavailable): try at the
    next block."""


# -- the votes -------------------------------------------------------------------------------


def committee_member(dispute: state_pb2.Dispute, account: bytes) -> state_pb2.CommitteeMember | None:
    """The account's seat in the dispute's committee, if it has one."""
    return next((member for member in dispute.committee if member.account == account), None)


def phase_due(dispute: state_pb2.Dispute, account: bytes) -> str | None:
    """The vote transaction the member owes the dispute next, if any."""
    member = committee_member(dispute, account)
    if member is None:
        return None
    if dispute.status == state_pb2.DISPUTE_STATUS_COMMITTING and not member.commitment:
        return COMMIT
    if dispute.status == state_pb2.DISPUTE_STATUS_REVEALING and member.commitment and not member.revealed:
        return REVEAL
    return None


def is_over_for(dispute: state_pb2.Dispute | None, account: bytes) -> bool:
    """Whether the dispute needs nothing more from this member (its ballot can go)."""
    if dispute is None or dispute.status == state_pb2.DISPUTE_STATUS_DECIDED:
        return True
    member = committee_member(dispute, account)
    return member is None or member.revealed


def executed_by(job: state_pb2.Job, account: bytes) -> bool:
    """Whether the account holds (or held) any assignment of the job."""
    return any(assignment.executor == account for assignment in job.assignments)


def candidate_result(job: state_pb2.Job, index: int) -> InferenceResult:
    """The result revealed in the job's assignment `index`, as the verifier reads it; InvalidResult
    (or InvalidJob) when there is none or the engine's format refuses it."""
    if index >= len(job.assignments):
        raise InvalidResult(f"the job has {len(job.assignments)} assignments, no candidate {index}")
    assignment = job.assignments[index]
    if assignment.status != state_pb2.ASSIGNMENT_STATUS_REVEALED:
        raise InvalidResult(f"assignment {index} of the job revealed no result")
    reveal = assignment.reveal
    return InferenceResult(inference_job(job), reveal.prompt_tokens, tuple(reveal.tokens), reveal.text,
                           tuple(reveal.logprobs_micronats), reveal.stop_reason)


def candidate_vote(job: state_pb2.Job, index: int, thresholds: Thresholds, rescore: Rescorer,
                   cancelled: Callable[[], bool] = lambda: False) -> types_pb2.CandidateVote:
    """The member's vote on one candidate: the verifier's verdict and statistics, or invalid with 0
    positions when the result cannot be evaluated. RescoreFailed when this node cannot judge it."""
    try:
        verdict = rescore(candidate_result(job, index), thresholds, cancelled)
    except CANDIDATE_FAULTS as error:
        log.info("candidate %d of job %s cannot be evaluated (%s): voting it invalid", index, job.id.hex()[:16], error)
        return types_pb2.CandidateVote(candidate=index, valid=False)
    except InferenceError as error:
        raise RescoreFailed(f"cannot re-score candidate {index} of job {job.id.hex()[:16]}: {error}") from None
    return types_pb2.CandidateVote(candidate=index, valid=verdict.valid, positions=verdict.positions,
                                   misses=verdict.misses, worst_margin_micro=verdict.worst_margin_micro)


def commit_call(ballot: Ballot, member: bytes) -> types_pb2.CommitVote:
    """The CommitVote hiding the ballot's votes behind its salt."""
    return types_pb2.CommitVote(
        dispute=ballot.dispute_id, commitment=vote_commitment(ballot.dispute_id, member, ballot.salt, ballot.votes),
    )


def ballot_fits(ballot: Ballot, dispute: state_pb2.Dispute) -> bool:
    """Whether the ballot holds one vote per candidate of the dispute, in candidate order."""
    return [vote.candidate for vote in ballot.votes] == list(dispute.candidates)


# -- the engine --------------------------------------------------------------------------------


def pool_rescorer(pool: EnginePool) -> Rescorer:
    """A Rescorer on the worker's engine pool: one generation slot and one engine of the model, taken in
    turn with the jobs (a re-score is one batched evaluation: far shorter than a job)."""
    def rescore(result: InferenceResult, thresholds: Thresholds, cancelled: Callable[[], bool]) -> Verdict:
        with pool.engine(result.job.model, cancelled) as engine:
            return rescore_and_judge(result, engine, thresholds)
    return rescore


def pair_thresholds(model: types_pb2.ModelInfo, executor_class: str, verifier_class: str) -> Thresholds | None:
    """The registered thresholds for results of `executor_class` judged on `verifier_class`; None when the model
    has none for the pair (the member abstains); RescoreFailed when they are unusable."""
    if class_bounds(model, executor_class, verifier_class) is None:
        return None
    try:
        return registered_thresholds(model, executor_class, verifier_class)
    except InferenceError as error:
        raise RescoreFailed(str(error)) from None


def executor_class(job: state_pb2.Job, index: int) -> str:
    """The engine class candidate `index` was produced on, as the chain recorded it when it was drawn."""
    if index < len(job.assignments):
        return job.assignments[index].engine_class or CPU_CLASS
    return CPU_CLASS


# -- the node ------------------------------------------------------------------------------------


class NodeChain:
    """What the juror reads from and sends to its node, on connections of its own; ClientError on failure."""

    def __init__(self, target: str, keypair: Keypair):
        self.keypair = keypair
        self.client = Client(target)
        self.queries = ModuleQueries(self.client)
        self.reader = MarketReader(target)

    @property
    def account(self) -> bytes:
        return self.keypair.public_key

    def close(self) -> None:
        self.reader.close()
        self.client.close()

    def duties(self) -> list[state_pb2.Dispute]:
        """The open disputes waiting for this account's commitment or reveal."""
        answer = self.queries.query(DISPUTES_MODULE, "duties", state_pb2.AccountQuery(account=self.account))
        return list(answer.response.disputes)

    def dispute(self, dispute_id: bytes) -> state_pb2.Dispute | None:
        """The dispute's record; None when the node knows no such dispute."""
        try:
            answer = self.queries.query(DISPUTES_MODULE, "dispute", state_pb2.JobQuery(job_id=dispute_id))
        except ClientError as error:
            if error.code == "NOT_FOUND":
                return None
            raise
        return answer.response if answer.response.id else None

    def job(self, job_id: bytes) -> state_pb2.Job | None:
        return self.reader.job(job_id)

    def thresholds(self, model: bytes, executor_class: str = CPU_CLASS,
                   verifier_class: str = CPU_CLASS) -> Thresholds | None:
        """The verifier's thresholds the chain registered for the model and this pair of engine classes; None when
        the model has none for the pair; RescoreFailed when the model is unknown or its thresholds are unusable."""
        registered = next((info for info in self.reader.models() if info.id == model), None)
        if registered is None:
            raise RescoreFailed(f"model {model.hex()[:12]}... is not registered on the chain")
        return pair_thresholds(registered, executor_class, verifier_class)

    def submit(self, call) -> bytes:
        """Sign and submit a vote; its transaction hash."""
        return self.client.submit(self.keypair, call).hash

    def transaction(self, transaction_hash: bytes) -> TransactionStatus:
        return self.client.transaction(transaction_hash)


# -- the juror -----------------------------------------------------------------------------------


class Juror(BlockThread):
    """Votes on every dispute the account is drawn for, until stopped; driven by `on_block`."""

    name = "juror"

    def __init__(self, chain: NodeChain, rescore: Rescorer, journal: VoteJournal, engine_class: str = CPU_CLASS):
        super().__init__()
        self.chain = chain
        # The engine class this member re-scores on (the worker's --engine-class): the verifier side of each pair.
        self.engine_class = engine_class
        self.account = chain.account
        self.rescore = rescore
        self.journal = journal
        self.head = 0
        # Ballots decided this run (also journaled; kept here while a journal write fails).
        self._ballots: dict[bytes, Ballot] = {}
        self._sent: dict[tuple[bytes, str], Sent] = {}
        self._by_transaction: dict[bytes, tuple[bytes, str]] = {}
        # Votes whose transaction failed in a block: not sent again (each try costs a fee).
        self._failed: set[tuple[bytes, str]] = set()
        # Disputes never voted on here (a job this account executed, or a pair of classes with no thresholds).
        self._refused: set[bytes] = set()
        self._said: set[tuple[bytes, str]] = set()
        self._trouble = ""
        self._bugs: set[str] = set()

    # -- running ---------------------------------------------------------------------------------

    def stop(self, timeout: float = 15.0) -> None:
        """Stop after the current step; ballots stay journaled for the next start."""
        self.stop_thread(timeout)
        self.chain.close()

    def take_step(self, height: int, receipts: list[Receipt]) -> bool:
        try:
            self.step(height, receipts)
        except JobCancelled:
            return False
        except Exception as error:  # a bug: never the thread's end, and its traceback said once
            self._say_bug(error, height)
        return True

    # -- one block ---------------------------------------------------------------------------

    def step(self, height: int, receipts: Iterable[Receipt] = ()) -> None:
        """Note the votes' receipts, then take each duty's next step and drop the ballots no longer needed."""
        self.head = max(self.head, height)
        self._note_receipts(receipts)
        try:
            duties = self.chain.duties()
        except ClientError as error:
            self._say_trouble(f"cannot read this account's dispute duties: {error.message}; "
                              "trying again at the next block")
            return
        troubles = []
        # Reveals first (cheap: the ballot is journaled), then commits by their deadline: a re-score takes blocks,
        # and a reveal waiting behind other disputes' re-scores was missed (and slashed) under load.
        for dispute in sorted(duties, key=lambda d: (phase_due(d, self.account) != REVEAL, d.commit_deadline, d.id)):
            if self._stop.is_set():
                return
            try:
                self.attend(dispute)
            except RescoreFailed as error:
                troubles.append(f"dispute {dispute.id.hex()[:16]}: {error}")
            except ClientError as error:
                troubles.append(f"dispute {dispute.id.hex()[:16]}: {error.message}")
        self._say_trouble("; ".join(troubles) + "; trying again at the next block" if troubles else "")
        self.tidy({dispute.id for dispute in duties})

    def attend(self, dispute: state_pb2.Dispute) -> None:
        """Send the vote transaction the dispute waits for, unless one is in flight or it is too late."""
        phase = phase_due(dispute, self.account)
        key = (dispute.id, phase)
        if phase is None or dispute.id in self._refused or key in self._failed or not self._needs_sending(key):
            return
        if self._too_late(dispute, phase):
            return
        ballot = self._ballot_to_commit(dispute) if phase == COMMIT else self._ballot_to_reveal(dispute)
        if ballot is None or self._too_late(dispute, phase):  # a re-score may have taken blocks
            return
        call = commit_call(ballot, self.account) if phase == COMMIT else ballot.reveal_call()
        transaction_hash = self.chain.submit(call)
        self._sent[key] = Sent(transaction_hash, self.head)
        self._by_transaction[transaction_hash] = key
        log.info("submitted the vote %s of dispute %s (transaction %s)",
                 phase, dispute.id.hex()[:16], transaction_hash.hex()[:16])

    def decide(self, dispute: state_pb2.Dispute) -> Ballot | None:
        """Re-score every candidate and draw a salt; None (said once) for a job this account executed."""
        job = self.chain.job(dispute.job)
        if job is None:
            raise RescoreFailed(f"the node knows no job {dispute.job.hex()}")
        if job.pruned_height:
            # The record no longer holds the prompt and the tokens: judging what is left would vote honest
            # results invalid (the runtime prunes only final jobs, so this is a node's inconsistency).
            raise RescoreFailed(f"the node's record of job {job.id.hex()[:16]} was pruned at #{job.pruned_height}: "
                                "its results cannot be re-scored")
        if executed_by(job, self.account):
            self._refused.add(dispute.id)
            log.error("drawn into the committee of dispute %s, about a job this account executed: not voting",
                      dispute.id.hex()[:16])
            return None
        by_class: dict[str, Thresholds] = {}
        for index in dispute.candidates:
            produced = executor_class(job, index)
            if produced in by_class:
                continue
            found = self.chain.thresholds(job.request.model, produced, self.engine_class)
            if found is None:
                self._refused.add(dispute.id)
                log.warning("abstaining from dispute %s: model %s has no thresholds for results of engine class %r "
                            "judged on class %r (this worker's)", dispute.id.hex()[:16],
                            job.request.model.hex()[:12], produced, self.engine_class)
                return None
            by_class[produced] = found
        votes = tuple(candidate_vote(job, index, by_class[executor_class(job, index)], self.rescore,
                                     self._stop.is_set)
                      for index in dispute.candidates)
        summary = ", ".join(f"{vote.candidate}: {'valid' if vote.valid else 'INVALID'} "
                            f"({vote.misses} misses in {vote.positions})" for vote in votes)
        log.info("judged dispute %s of job %s: %s", dispute.id.hex()[:16], dispute.job.hex()[:16], summary)
        return Ballot(dispute.id, new_salt(), votes)

    def tidy(self, open_duties: set[bytes]) -> None:
        """Drop the ballots of disputes that need nothing more from this member (decided, or revealed)."""
        kept = set(self._ballots) | set(self.journal.dispute_ids())
        for dispute_id in sorted(kept - open_duties):
            try:
                dispute = self.chain.dispute(dispute_id)
            except ClientError as error:
                log.debug("cannot read dispute %s: %s", dispute_id.hex(), error.message)
                continue
            if is_over_for(dispute, self.account):
                self._forget(dispute_id)
        for dispute_id in self._refused - open_duties:
            self._forget(dispute_id)

    # -- ballots ---------------------------------------------------------------------------------

    def _ballot_to_commit(self, dispute: state_pb2.Dispute) -> Ballot | None:
        """The ballot to commit: the one journaled (a restart) or decided now, journaled before it is sent."""
        ballot = self._ballots.get(dispute.id) or self.journal.read(dispute.id)
        if ballot is not None and not ballot_fits(ballot, dispute):
            log.warning("the journaled votes of dispute %s are not for its candidates; judging it again",
                        dispute.id.hex()[:16])
            ballot = None
        if ballot is None:
            ballot = self.decide(dispute)
            if ballot is None:
                return None
        self._ballots[dispute.id] = ballot
        try:
            self.journal.write(ballot)
        except OSError as error:
            # No commitment whose salt a restart could lose: the vote waits for the journal.
            raise RescoreFailed(f"cannot journal its votes ({error.strerror or error}); not committing") from None
        return ballot

    def _ballot_to_reveal(self, dispute: state_pb2.Dispute) -> Ballot | None:
        """The ballot committed to; None (said once) when it is lost or does not open the commitment."""
        ballot = self._ballots.get(dispute.id) or self.journal.read(dispute.id)
        member = committee_member(dispute, self.account)
        if ballot is None:
            self._say_once(dispute.id, "lost", "cannot reveal the vote on dispute %s: its salt and votes are not "
                                                "in the vote journal (lost since the commitment)")
            return None
        if not ballot_fits(ballot, dispute) or commit_call(ballot, self.account).commitment != member.commitment:
            self._say_once(dispute.id, "mismatch", "cannot reveal the vote on dispute %s: the journaled salt and "
                                                    "votes do not open this member's commitment")
            return None
        return ballot

    def _forget(self, dispute_id: bytes) -> None:
        self.journal.remove(dispute_id)
        self._ballots.pop(dispute_id, None)
        self._refused.discard(dispute_id)
        self._said = {said for said in self._said if said[0] != dispute_id}
        for phase in (COMMIT, REVEAL):
            self._failed.discard((dispute_id, phase))
            sent = self._sent.pop((dispute_id, phase), None)
            if sent is not None:
                self._by_transaction.pop(sent.transaction_hash, None)

    # -- helpers ---------------------------------------------------------------------------------

    def _too_late(self, dispute: state_pb2.Dispute, phase: str) -> bool:
        """Whether the next block is past the phase's deadline (said once): sending would only cost a fee."""
        deadline = dispute.commit_deadline if phase == COMMIT else dispute.reveal_deadline
        with self._lock:
            head = max(self.head, self._latest)
        if head + 1 <= deadline:
            return False
        self._say_once(dispute.id, f"late {phase}", f"too late to {phase} the vote on dispute %s: its deadline "
                                                     f"#{deadline} has passed (head #{head})")
        return True

    def _needs_sending(self, key: tuple[bytes, str]) -> bool:
        return resend_due(self._sent.get(key), self.head, self.chain.transaction,
                          f"vote {key[1]} of dispute {key[0].hex()[:16]}")

    def _note_receipts(self, receipts: Iterable[Receipt]) -> None:
        for receipt in receipts:
            key = self._by_transaction.pop(receipt.transaction_hash, None)
            if key is None:
                continue
            dispute_id, phase = key
            if receipt.success:
                self._sent[key].included = True
                log.info("the vote %s of dispute %s is in #%d", phase, dispute_id.hex()[:16], self.head)
            else:
                self._failed.add(key)
                log.error("the vote %s of dispute %s failed in #%d: %s", phase, dispute_id.hex()[:16], self.head,
                          receipt.error)

    def _say_once(self, dispute_id: bytes, what: str, message: str) -> None:
        if (dispute_id, what) not in self._said:
            self._said.add((dispute_id, what))
            log.error(message, dispute_id.hex()[:16])

    def _say_bug(self, error: Exception, height: int) -> None:
        described = f"{type(error).__name__}: {error}"
        if described in self._bugs:
            log.warning("the juror failed again at #%d (%s); trying again at the next block", height, described)
            return
        self._bugs.add(described)
        log.exception("the juror failed at #%d; trying again at the next block", height)

    def _say_trouble(self, message: str) -> None:
        """One warning line per distinct trouble (empty: none now): the same failure at every block is said
        once, until it clears or changes."""
        if message and message != self._trouble:
            log.warning("%s", message)
        elif not message and self._trouble:
            log.info("the juror's trouble cleared at #%d", self.head)
        self._trouble = message
