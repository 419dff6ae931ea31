"""Assignment: who executes a job, drawn by lottery among the executors that can take it.

In the block that includes a job (and in each block it waits in the queue), the runtime picks
`redundancy` distinct executors among the accounts serving the model at a price within the job's
maximum, with free capacity and at least the minimum bond, each draw weighted by stake x
reputation, from a seed hashed from the job id and height (the requested region is preferred).
Without enough free executors the job waits in the queue until its timeout refunds it.
"""

from __future__ import annotations

from dataclasses import dataclass

from proto import state_pb2
from runtime import reputation, staking
import runtime.jobs.events as events
from runtime.jobs.errors import NoExecutors
from runtime.jobs.params import Params
from runtime.jobs.phases import ASSIGNED, EXPIRED, QUEUED, SLOT_ASSIGNED
from runtime.jobs.queue import dequeue, enqueue, schedule
from runtime.jobs.recipes import assignment_seed, draw_point
from runtime.jobs.settlement import end
from runtime.jobs.storage import add_load, index_assigned, missing_slots, read_load
from runtime.state import Overlay, StateReader


@dataclass(frozen=True)
class Candidate:
    """An executor that may be drawn, with its price and its lottery weight (stake x reputation)."""

    account: bytes
    price: int
    region: str
    weight: int


def candidates(state: StateReader, job: state_pb2.Job, params: Params, *, free_only: bool) -> list[Candidate]:
    """Executors serving the job's model within its price, never assigned to it before, sorted by account."""
    request = job.request
    stake_params = staking.read_params(state)
    taken = {slot.executor for slot in job.assignments}
    found = []
    for account in staking.serving(state, request.model):
        if account in taken:
            continue
        offer = staking.read_offer(state, account)
        stake = staking.bonded(state, account)
        if offer is None or offer.price_per_token > request.max_price_per_token or stake < stake_params.min_bond:
            continue
        if free_only and read_load(state, account) >= offer.capacity:
            continue
        score = reputation.read_reputation(state, account, params.reputation_initial)
        found.append(Candidate(account, offer.price_per_token, offer.region, stake * score))
    if request.region:
        # The region is a preference: its executors alone when there are enough of them.
        local = [candidate for candidate in found if candidate.region == request.region]
        if len(local) >= missing_slots(job):
            return local
    return found


def draw(pool: list[Candidate], count: int, seed: bytes) -> list[Candidate]:
    """`count` distinct candidates, each draw weighted by stake x reputation, from a chain-derived seed."""
    pool = list(pool)
    chosen = []
    for index in range(count):
        point = draw_point(seed, index, sum(candidate.weight for candidate in pool))
        for position, candidate in enumerate(pool):
            if point < candidate.weight:
                chosen.append(pool.pop(position))
                break
            point -= candidate.weight
    return chosen


def check_executors(state: StateReader, job: state_pb2.Job, params: Params) -> None:
    """Refuse a job that no set of executors could ever take: too few serve the model within its price."""
    request = job.request
    serving = staking.serving(state, request.model)
    if len(serving) < request.redundancy:
        raise NoExecutors(
            f"redundancy {request.redundancy} is above the {len(serving)} executors serving model {request.model.hex()}"
        )
    within = candidates(state, job, params, free_only=False)
    if len(within) < request.redundancy:
        prices = sorted(offer.price_per_token for offer in (staking.read_offer(state, a) for a in serving) if offer)
        raise NoExecutors(
            f"only {len(within)} executors serve the model at max_price_per_token {request.max_price_per_token} "
            f"or less (the lowest prices are {', '.join(map(str, prices[:request.redundancy]))}); "
            f"redundancy {request.redundancy} needs {request.redundancy}"
        )


def try_fill(state: Overlay, job: state_pb2.Job, params: Params, height: int) -> bool:
    """Assign executors to every empty slot at once; False (nothing written) when too few are free."""
    missing = missing_slots(job)
    if missing <= 0:
        return True
    free = candidates(state, job, params, free_only=True)
    if len(free) < missing:
        return False
    deadline = height + params.commit_window(job.request.max_tokens)
    seed = assignment_seed(job.id, height, len(job.assignments))
    for candidate in draw(free, missing, seed):
        job.assignments.append(
            state_pb2.Assignment(
                executor=candidate.account,
                price_per_token=candidate.price,
                status=SLOT_ASSIGNED,
                assigned_height=height,
                deadline_height=deadline,
            )
        )
        add_load(state, candidate.account, 1)
        index_assigned(state, job, candidate.account)
        state.deposit_event(
            events.event(events.JOB_ASSIGNED, job=job.id.hex(), executor=candidate.account.hex(),
                         price_per_token=candidate.price, deadline_height=deadline)
        )
    schedule(state, deadline, job.id)
    job.status = ASSIGNED
    return True


def fill_or_queue(state: Overlay, job: state_pb2.Job, params: Params, height: int) -> None:
    """Fill the job's empty slots now, or queue it (a queued job waits on silently), or expire it at its timeout."""
    if try_fill(state, job, params, height):
        dequeue(state, job.id)
        return
    if height >= job.timeout_height:
        end(state, job, EXPIRED, "no executor was free before the job's timeout")
        return
    job.status = QUEUED
    if enqueue(state, job.id):
        state.deposit_event(events.event(events.JOB_QUEUED, job=job.id.hex(), missing=missing_slots(job)))
