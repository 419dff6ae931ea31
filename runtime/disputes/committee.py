"""The committee of a dispute: validators serving the job's model that had no part in it, drawn by stake.

Eligible: accounts of the current validator set whose offer serves the job's model, neither the
poster nor an executor of any of the job's assignments (missed ones included), not jailed, bonded at
least staking's min_bond, and able to judge every result of the job: the model registers thresholds
for (the class each result was produced on, the engine class of the validator's offer)
(docs/protocol.md, "Engine classes"). Weight: bonded stake now.

The pool drawn from: the eligible validators of the class the job's results were produced on (who
re-score them exactly) when those hold at least same_class_share_ppm of the eligible stake and are
enough for a committee as large as all the eligible would give (min(committee_size, eligible)); else
every eligible validator. A small class is never drawn alone (whoever
runs it, its executors' partners, would judge its results), and confining the draw to a class with a
share s of the stake multiplies a coalition's share of the pool by at most 1/s (1.5 at the default
2/3). The draw is without replacement from the seed of the RANDAO mix of the draw block
(recipes.committee_seed), walking the remaining pool in account order, so nobody who acts on the job
can pick its judges (docs/protocol.md, "Disputes").
"""

from __future__ import annotations

from proto import state_pb2
from runtime import models, staking
from runtime.arithmetic import PPM
import runtime.disputes.events as events
from runtime.disputes.params import Params
from runtime.disputes.recipes import committee_point, committee_seed
from runtime.disputes.storage import DEADLINES_PREFIX, index_members, schedule
from runtime.slashing.penalties import jailed
from runtime.staking.offers import offer_class
from runtime.state import Overlay, StateReader


def eligible(state: StateReader, job: state_pb2.Job, height: int) -> list[tuple[bytes, int, str]]:
    """(account, bonded stake, offered engine class) of every validator that may judge the job, sorted by account:
    of any class with thresholds for every result of the job."""
    min_bond = staking.read_params(state).min_bond
    serving = set(staking.serving(state, job.request.model))
    excluded = {job.poster} | {slot.executor for slot in job.assignments}
    model = models.model_for_job(state, job.request.model)
    produced = result_classes(job)
    pool = []
    for validator in staking.read_validator_set(state).validators:
        account = validator.public_key
        if account in excluded or account not in serving or jailed(state, account, height):
            continue
        stake = staking.bonded(state, account)
        if stake < min_bond:
            continue
        offer = staking.read_offer(state, account)
        judge = offer_class(offer) if offer is not None else models.CPU_CLASS
        if model is not None and any(models.class_thresholds(model, made_on, judge) is None for made_on in produced):
            continue  # it would have no numbers to judge some result by
        pool.append((account, stake, judge))
    return sorted(pool)


def result_classes(job: state_pb2.Job) -> set[str]:
    """The engine classes the job's assignments were drawn from (empty: cpu)."""
    return {slot.engine_class or models.CPU_CLASS for slot in job.assignments}


def draw_pool(state: StateReader, job: state_pb2.Job, height: int, params: Params) -> list[tuple[bytes, int]]:
    """(account, stake) the committee is drawn from, sorted by account: the eligible of the results' own class when
    they hold same_class_share_ppm of the eligible stake and fill as large a committee as every eligible would, else
    every eligible."""
    judges = eligible(state, job, height)
    produced = result_classes(job)
    if len(produced) == 1:
        own = [entry for entry in judges if entry[2] in produced]
        total = sum(stake for _, stake, _ in judges)
        if (own and len(own) >= min(params.committee_size, len(judges))
                and sum(stake for _, stake, _ in own) * PPM >= params.same_class_share_ppm * total):
            judges = own
    return [(account, stake) for account, stake, _ in judges]


def draw_committee(state: StateReader, dispute_id: bytes, job: state_pb2.Job, mix: bytes, height: int,
                   params: Params) -> list[state_pb2.CommitteeMember]:
    """min(committee_size, pool) members drawn by stake from draw_pool; none when fewer than min_committee_size
    are eligible."""
    pool = draw_pool(state, job, height, params)
    if len(pool) < params.min_committee_size:
        return []
    seed = committee_seed(mix, dispute_id)
    members = []
    for index in range(min(params.committee_size, len(pool))):
        point = committee_point(seed, index, sum(stake for _, stake in pool))
        position = _first_above(pool, point)
        account, stake = pool.pop(position)
        members.append(state_pb2.CommitteeMember(account=account, stake=stake))
    return members


def _first_above(pool: list[tuple[bytes, int]], point: int) -> int:
    """The position of the first entry whose running sum of stake exceeds `point`."""
    running = 0
    for position, (_, stake) in enumerate(pool):
        running += stake
        if running > point:
            return position
    raise AssertionError("a point below the total stake always lands on an entry")


def seat(state: Overlay, dispute: state_pb2.Dispute, job: state_pb2.Job, members: list[state_pb2.CommitteeMember],
         height: int, params: Params) -> None:
    """Give the dispute its drawn committee; its members commit until vote_commit_blocks later (the first height
    with room on the deadline schedule). The caller writes the dispute."""
    del dispute.committee[:]
    dispute.committee.extend(members)
    dispute.commit_deadline = schedule(state, DEADLINES_PREFIX, height + params.vote_commit_blocks, dispute.id)
    index_members(state, dispute)
    lock_parties(state, dispute, job, dispute.commit_deadline + params.vote_reveal_blocks)
    state.deposit_event(events.event(events.COMMITTEE_DRAWN, dispute=dispute.id.hex(), members=len(members),
                                     commit_deadline=dispute.commit_deadline))
    for member in members:
        state.deposit_event(events.event(events.MEMBER_DRAWN, dispute=dispute.id.hex(), member=member.account.hex()))


def lock_parties(state: Overlay, dispute: state_pb2.Dispute, job: state_pb2.Job, until: int) -> None:
    """The members and the judged results' executors keep their unbonding stake until the verdict can come
    (runtime/staking/bonds.py lock_stake): a slash must find it there."""
    accounts = {member.account for member in dispute.committee}
    accounts.update(job.assignments[candidate].executor for candidate in dispute.candidates)
    for account in sorted(accounts):
        staking.lock_stake(state, account, until)
