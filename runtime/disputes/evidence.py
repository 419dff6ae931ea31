"""Evidence across jobs: every committee re-score of an executor's result adds to its record for the model.

Per candidate judged VALID (an INVALID one is punished for its job, and its misses never count toward a
second punishment), the (positions judged, misses) pair reported by the largest
revealed stake (identical pairs grouped; ties: the smaller pair) is added to the executor's
EvidenceRecord for the job's model. The binomial test of runtime/disputes/conviction.py, run over the
sums at the model's miss_rate_ppm with conviction_budget_ppb, convicts an executor whose misses an
honest engine would almost never make, even when each job alone passed (two steered positions per
job: docs/verification.md section 9). A conviction slashes at the invalid-result fraction, jails, and
starts the record again from zero.
"""

from __future__ import annotations

from proto import state_pb2
from runtime import models
from runtime.disputes import conviction
import runtime.disputes.events as events
from runtime.disputes.params import Params
from runtime.disputes.storage import read_evidence, write_evidence
from runtime.slashing.penalties import CONVICTION, slash
from runtime.state import Overlay


def reported_pair(dispute: state_pb2.Dispute, position: int) -> tuple[int, int]:
    """The (positions, misses) the largest revealed stake reported for the dispute's `position`-th candidate."""
    stakes: dict[tuple[int, int], int] = {}
    for member in dispute.committee:
        if member.revealed:
            vote = member.votes[position]
            pair = (vote.positions, vote.misses)
            stakes[pair] = stakes.get(pair, 0) + member.stake
    return min(stakes, key=lambda pair: (-stakes[pair], pair))


def record_evidence(state: Overlay, dispute: state_pb2.Dispute, job: state_pb2.Job, position: int, params: Params,
                    height: int) -> None:
    """Add the committee's statistics for one judged candidate to its executor's record; convict when the sums
    fail the binomial test."""
    slot = job.assignments[dispute.candidates[position]]
    executor = slot.executor
    model = job.request.model
    positions, misses = reported_pair(dispute, position)
    # A re-score judges at most the result's tokens and finds at most one miss in each: a committee cannot add more.
    positions = min(positions, len(slot.reveal.tokens))
    misses = min(misses, positions)
    record = read_evidence(state, executor, model)
    record.positions += positions
    record.misses += misses
    record.jobs += 1
    info = models.model_for_job(state, model)
    # A model with no description left has no miss rate to test by (0 would convict on one miss): the sums wait.
    miss_rate = info.thresholds.miss_rate_ppm if info is not None else 0
    if miss_rate and conviction.convicted(record.positions, record.misses, miss_rate, params.conviction_budget_ppb):
        slash(state, executor, params.slash_fraction_invalid_result_ppm, CONVICTION, job.id, height, jail=True)
        state.deposit_event(events.event(events.EVIDENCE_CONVICTED, executor=executor.hex(), model=model.hex(),
                                         positions=record.positions, misses=record.misses))
        record = state_pb2.EvidenceRecord()
    write_evidence(state, executor, model, record)
