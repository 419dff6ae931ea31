"""The worker's event loop: one thread owns every job's state; blocks and finished runs arrive as messages.

As CometBFT's consensus state: the follower thread posts each finalized block's update (the
executor's changed jobs, its receipts, the events naming it: one WatchAssignments stream), the
executor's threads post each finished run, and only the loop reads or changes the tracked jobs.
For each job the next step is decided from its latest record on chain (reconcile), never from an
event alone; the node sends every record the worker needs, so no job is read per block:

    assignment ASSIGNED, no result yet          -> run the job (once)
    assignment ASSIGNED, result, redundancy 1   -> RevealResult (commit and reveal in one)
    assignment ASSIGNED, result                 -> CommitResult (salt and result journaled first;
                                                   the job may still be QUEUED for its other executors)
    assignment COMMITTED, job REVEALING         -> RevealResult
    job final, or assignment MISSED or REVEALED -> forget the job (stop its run, drop its journal)

Given a Rescorer (the CLI's: the engine pool's), the worker also serves on dispute committees: the
juror (juror.py) is started and stopped with it, and told of each block from this loop; it votes in
a thread of its own, so a re-score never delays a job's step. With `stream_tokens`, each run also
publishes its tokens to the node as they are generated (token_publisher.py; not consensus). With `probe`,
the prober (prober.py) seals and posts one probe an epoch and opens it once it settles, in a thread of its own.
"""

from __future__ import annotations

import functools
import logging
import queue
import random
import threading
from dataclasses import dataclass, field
from typing import Union

from chain.client import Client, ClientError
from chain.client.results import Receipt
from chain.crypto import Keypair
from chain.ss58 import encode_address
from chain.worker.executor import Executor, Outcome, Runner, inference_job
from chain.worker.follower import AssignmentsUpdate, Follower, MarketReader, offer_events
from chain.worker.journal import Journal, JournalEntry
from chain.worker.juror import Juror, NodeChain, Rescorer
from chain.worker.juror_journal import VoteJournal
from chain.worker.prober import Prober
from chain.worker.submitter import Sent, Submitter, new_salt, resend_due
from chain.worker.token_publisher import publisher_factory
from inference.errors import InferenceError
from proto import state_pb2
from runtime.jobs import FINAL_STATUSES
from runtime.jobs.phases import ASSIGNED, DRAWING, QUEUED, REVEALING, job_status_name

log = logging.getLogger("inferchain.worker")

COMMIT = "commit"
REVEAL = "reveal"
UNFINISHED_STATUSES = (DRAWING, QUEUED, ASSIGNED, REVEALING)
# How often the loop wakes to notice a stop request when no message comes.
POLL_S = 0.5
# The juror's ballots, under the worker's journal directory (journal.py keeps to its own *.json files).
VOTES_DIRECTORY = "votes"


@dataclass(frozen=True)
class NewBlock:
    update: AssignmentsUpdate


@dataclass(frozen=True)
class RunFinished:
    outcome: Outcome


Message = Union[NewBlock, RunFinished]


@dataclass
class TrackedJob:
    """One of this executor's assignments, as far as the loop knows."""

    job_id: bytes
    assigned_height: int
    deadline_height: int
    running: bool = False
    entry: JournalEntry | None = None
    sent: dict[str, Sent] = field(default_factory=dict)
    # Phases whose transaction failed in a block: not sent again (each try costs a fee).
    failed: set[str] = field(default_factory=set)
    # Why the job cannot run here (said once); the assignment will miss its deadline.
    error: str = ""
    # Look at the job again at the next block: a read or a submission failed, or one awaits inclusion.
    attention: bool = False
    # The job's latest record the node sent (from the stream, or read at start).
    record: state_pb2.Job | None = None


def current_assignment(job: state_pb2.Job, executor: bytes) -> state_pb2.Assignment | None:
    """The executor's latest assignment in the job (an executor may be assigned again after a miss)."""
    mine = [assignment for assignment in job.assignments if assignment.executor == executor]
    return mine[-1] if mine else None


def phase_due(job: state_pb2.Job, assignment: state_pb2.Assignment) -> str | None:
    """The transaction the assignment needs next, if any."""
    if assignment.status == state_pb2.ASSIGNMENT_STATUS_ASSIGNED:
        if job.request.redundancy == 1:
            return REVEAL if job.status == state_pb2.JOB_STATUS_ASSIGNED else None
        # A job still waiting for its other executors is QUEUED; those assigned commit meanwhile.
        return COMMIT if job.status in (state_pb2.JOB_STATUS_ASSIGNED, state_pb2.JOB_STATUS_QUEUED) else None
    if assignment.status == state_pb2.ASSIGNMENT_STATUS_COMMITTED and job.status == state_pb2.JOB_STATUS_REVEALING:
        return REVEAL
    return None


def is_over_for(job: state_pb2.Job, assignment: state_pb2.Assignment | None) -> bool:
    """Whether the job needs nothing more from this executor."""
    return (
        job.status in FINAL_STATUSES
        or assignment is None
        or assignment.status in (state_pb2.ASSIGNMENT_STATUS_MISSED, state_pb2.ASSIGNMENT_STATUS_REVEALED)
    )


class Worker:
    """Runs one executor's assignments: follow blocks, run jobs, commit and reveal, until stopped; with a
    Rescorer, also votes on the disputes its account is drawn to judge; with `probe`, posts sealed probes; with
    `stream_tokens`, publishes each
    run's tokens to the node at `target` (the runner then takes `publish=`, as EnginePool.run does). Its
    `engine_class` is the class its engines belong to: the verifier side of the thresholds it votes by."""

    def __init__(self, target: str, keypair: Keypair, runner: Runner, journal: Journal,
                 rescore: Rescorer | None = None, stream_tokens: bool = False, engine_class: str = "cpu",
                 probe: bool = False, probe_rng: random.Random | None = None):
        self.target = target
        self.keypair = keypair
        self.executor_id = keypair.public_key
        self.journal = journal
        self.client = Client(target)
        self.reader = MarketReader(target)
        self.submitter = Submitter(self.client, keypair)
        self.jobs: dict[bytes, TrackedJob] = {}
        self.head = 0
        self._messages: queue.Queue[Message] = queue.Queue()
        if stream_tokens:
            runner = functools.partial(runner, publish=publisher_factory(self.client, keypair))
        self._executor = Executor(runner, lambda outcome: self._messages.put(RunFinished(outcome)))
        self._follower = Follower(target, self.executor_id, lambda update: self._messages.put(NewBlock(update)))
        self._by_transaction: dict[bytes, tuple[bytes, str]] = {}
        self._juror = None if rescore is None else Juror(
            NodeChain(target, keypair), rescore, VoteJournal(journal.directory / VOTES_DIRECTORY), engine_class
        )
        self._prober = Prober(target, keypair, probe_rng) if probe else None

    # -- running -----------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Pick up unfinished assignments, then follow the chain until `stop` is set."""
        address = encode_address(self.executor_id)
        self.recover()
        self._follower.start(self.head + 1, list(self.jobs))
        if self._juror is not None:
            self._juror.start()
        if self._prober is not None:
            self._prober.start()
        log.info("executing jobs for %s from #%d%s", address, self.head + 1,
                 "" if self._juror is None else ", voting on its dispute duties")
        try:
            while not stop.is_set():
                try:
                    message = self._messages.get(timeout=POLL_S)
                except queue.Empty:
                    continue
                self.handle(message)
        finally:
            self.close()

    def handle(self, message: Message) -> None:
        if isinstance(message, NewBlock):
            self.on_block(message.update)
        else:
            self.on_run_finished(message.outcome)

    def close(self) -> None:
        """Stop following and running; journaled results stay for the next start."""
        self._follower.stop()
        if self._juror is not None:
            self._juror.stop()
        if self._prober is not None:
            self._prober.stop()
        self._executor.stop()
        self.reader.close()
        self.client.close()
        unfinished = sum(1 for tracked in self.jobs.values() if tracked.entry is not None)
        log.info("worker stopped at #%d; %d assignment(s) open, %d with a journaled result",
                 self.head, len(self.jobs), unfinished)

    def recover(self) -> None:
        """Resume every unfinished assignment of this executor, and clear journal files of finished ones."""
        jobs, height = self.reader.jobs_of(self.executor_id, UNFINISHED_STATUSES)
        self.head = height
        if jobs:
            log.info("resuming %d unfinished assignment(s) at #%d", len(jobs), height)
        listed = {job.id for job in jobs}
        for job in jobs:
            self.reconcile(job)
        for job_id in self.journal.job_ids():
            if job_id not in listed:
                self.reconcile_id(job_id)

    # -- messages ----------------------------------------------------------------------------

    def on_block(self, update: AssignmentsUpdate) -> None:
        """Note our transactions' outcomes, take the next step of every job the block changed, and look
        again at those waiting for something (from their latest record: no read)."""
        self.head = max(self.head, update.height)
        if self._juror is not None:
            self._juror.on_block(update.height, update.receipts)
        if self._prober is not None:
            self._prober.on_block(update.height)
        self._note_receipts(update.receipts)
        for name in offer_events(update):
            log.info("offer changed on chain (%s at #%d): capacity and models apply to new assignments",
                     name, update.height)
        changed = {job.id for job in update.jobs}
        for job in update.jobs:
            self.reconcile(job)
        waiting = [
            tracked for tracked in self.jobs.values()
            if tracked.job_id not in changed and tracked.record is not None
            and (tracked.attention or self.head > tracked.deadline_height)
        ]
        for tracked in waiting:
            self.reconcile(tracked.record)

    def on_run_finished(self, outcome: Outcome) -> None:
        """Keep the result (journaled with a fresh salt), then take the job's next step."""
        tracked = self.jobs.get(outcome.job_id)
        if tracked is None or tracked.assigned_height != outcome.assigned_height:
            return  # the assignment ended while it ran
        tracked.running = False
        if outcome.result is None:
            if not outcome.cancelled:
                tracked.error = outcome.error
                log.error("cannot run job %s: %s", outcome.job_id.hex(), outcome.error)
            return
        result = outcome.result
        rate = len(result.tokens) / outcome.elapsed_s if outcome.elapsed_s > 0 else 0.0
        log.info("ran job %s: %d tokens (%s) in %.2f s, %.1f tokens/s",
                 outcome.job_id.hex()[:16], len(result.tokens), result.stop_reason, outcome.elapsed_s, rate)
        tracked.entry = JournalEntry(outcome.job_id, outcome.assigned_height, new_salt(), result)
        try:
            self.journal.write(tracked.entry)
        except OSError as error:
            # The salt stays in memory: only a restart before the reveal would lose it.
            log.warning("cannot journal job %s (%s); a restart before its reveal would miss it",
                        outcome.job_id.hex(), error.strerror or error)
        self.reconcile(tracked.record)

    # -- deciding ----------------------------------------------------------------------------

    def reconcile_id(self, job_id: bytes) -> None:
        """Read the job from the node and take its next step (at start, for a journaled job); try again
        next block if the read fails."""
        try:
            job = self.reader.job(job_id)
        except ClientError as error:
            log.warning("cannot read job %s: %s", job_id.hex(), error.message)
            if job_id in self.jobs:
                self.jobs[job_id].attention = True
            return
        if job is None:
            self.forget(job_id, "unknown to the node")
            return
        self.reconcile(job)

    def reconcile(self, job: state_pb2.Job) -> None:
        """Take the job's next step for this executor, decided from its record alone."""
        mine = current_assignment(job, self.executor_id)
        if is_over_for(job, mine):
            self.forget(job.id, _ending(job, mine))
            return
        tracked = self._tracked_for(job, mine)
        tracked.deadline_height = mine.deadline_height
        tracked.record = job
        tracked.attention = False
        if tracked.entry is None:
            if not tracked.running and not tracked.error:
                self.start_run(job, tracked)
            return
        phase = phase_due(job, mine)
        if phase is not None:
            self.send(tracked, phase)

    def start_run(self, job: state_pb2.Job, tracked: TrackedJob) -> None:
        try:
            inference = inference_job(job)
        except InferenceError as error:
            tracked.error = str(error)
            log.error("cannot run job %s: %s", job.id.hex(), error)
            return
        tracked.running = True
        self._executor.start(job.id, tracked.assigned_height, inference)

    def send(self, tracked: TrackedJob, phase: str) -> None:
        """Submit the phase's transaction unless one is in flight, included, or failed already."""
        if phase in tracked.failed or not self._needs_sending(tracked, phase):
            return
        if self.head + 1 > tracked.deadline_height:
            log.warning("too late to %s job %s: its deadline #%d has passed (head #%d)",
                        phase, tracked.job_id.hex(), tracked.deadline_height, self.head)
            return
        submit = self.submitter.commit if phase == COMMIT else self.submitter.reveal
        try:
            submission = submit(tracked.entry)
        except ClientError as error:
            log.warning("cannot submit the %s of job %s: %s", phase, tracked.job_id.hex(), error.message)
            tracked.attention = True
            return
        tracked.sent[phase] = Sent(submission.hash, self.head)
        tracked.attention = True
        self._by_transaction[submission.hash] = (tracked.job_id, phase)
        log.info("submitted the %s of job %s (transaction %s)", phase, tracked.job_id.hex()[:16], submission.hash.hex()[:16])

    def forget(self, job_id: bytes, why: str) -> None:
        """Stop caring about a job: cancel its run, drop its journal entry."""
        tracked = self.jobs.pop(job_id, None)
        self._executor.cancel(job_id)
        self.journal.remove(job_id)
        if tracked is None:
            return
        for sent in tracked.sent.values():
            self._by_transaction.pop(sent.transaction_hash, None)
        log.info("job %s done here: %s", job_id.hex()[:16], why)

    # -- helpers -----------------------------------------------------------------------------

    def _tracked_for(self, job: state_pb2.Job, mine: state_pb2.Assignment) -> TrackedJob:
        tracked = self.jobs.get(job.id)
        if tracked is not None and tracked.assigned_height == mine.assigned_height:
            return tracked
        if tracked is not None:  # assigned again after a miss: the old run is of no use
            self.forget(job.id, "assigned again")
        tracked = TrackedJob(job.id, mine.assigned_height, mine.deadline_height)
        entry = self.journal.read(job.id)
        if entry is not None and entry.assigned_height == mine.assigned_height:
            tracked.entry = entry
        elif entry is not None:
            self.journal.remove(job.id)
        self.jobs[job.id] = tracked
        request = job.request
        log.info("assigned job %s: model %s, up to %d tokens, redundancy %d, deadline #%d%s",
                 job.id.hex()[:16], request.model.hex()[:12], request.max_tokens, request.redundancy,
                 mine.deadline_height, " (result journaled)" if tracked.entry else "")
        return tracked

    def _needs_sending(self, tracked: TrackedJob, phase: str) -> bool:
        return resend_due(tracked.sent.get(phase), self.head, self.client.transaction,
                          f"{phase} of job {tracked.job_id.hex()[:16]}")

    def _note_receipts(self, receipts: tuple[Receipt, ...]) -> None:
        for receipt in receipts:
            found = self._by_transaction.pop(receipt.transaction_hash, None)
            if found is None:
                continue
            job_id, phase = found
            tracked = self.jobs.get(job_id)
            if tracked is None:
                continue
            if receipt.success:
                tracked.sent[phase].included = True
                log.info("the %s of job %s is in #%d", phase, job_id.hex()[:16], self.head)
            else:
                tracked.failed.add(phase)
                log.error("the %s of job %s failed in #%d: %s", phase, job_id.hex()[:16], self.head, receipt.error)


def _ending(job: state_pb2.Job, mine: state_pb2.Assignment | None) -> str:
    status = job_status_name(job.status)
    if mine is None:
        return f"not assigned to this executor (job {status})"
    if mine.status == state_pb2.ASSIGNMENT_STATUS_MISSED:
        return f"this executor missed its deadline (job {status})"
    if job.status == state_pb2.JOB_STATUS_SETTLED and mine.payment:
        return f"settled, {mine.payment} paid to this executor, held until #{mine.release_height}"
    return f"job {status}"
