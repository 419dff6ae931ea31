"""Challenge-response probes (docs/protocol.md, "Probes"): jobs the protocol posts at each epoch's first block.

An executor that advertises capacity it does not have, or that answers only when it thinks nobody checks,
is found by probes: jobs paid from the probe fund (recipes.PROBE_FUND, an account nobody holds a key to, fed
by disputes.params.probe_fund_ppm of every protocol fee: settlement.py), each assigned directly to an
executor drawn by bonded stake and always audited (runtime/disputes/hooks.py). At the first block of epoch
e, after the randomness module's reveal, for i in 0 .. probes_per_epoch - 1:

- h = blake2b-256(b"inferchain/probe/v1" || mix || u32be(i)) (recipes.probe_hash);
- the executor: among the accounts serving a model that has a request recorded in epoch e - 1 (the newest
  PostJob posted for it then, storage.record_request), bonded at least staking's min_bond and not jailed,
  sorted by account, weighted by bonded stake: the first whose running sum exceeds
  int(h[0:16]) mod the total; it leaves the pool (no executor is probed twice in an epoch);
- the model: its offered models with a recorded request, in its offer's order, index int(h[16:24]) mod
  their count;
- the request: that model's recorded PostJob with max_tokens = min(its max_tokens, probe_max_tokens),
  redundancy 1, max_price_per_token = min(the executor's offer price, the request's max_price_per_token)
  (an executor cannot price itself into draining the fund), sampling seed int(h[24:32]);
- skipped (ProbeSkipped) when the executor is at its capacity or the fund's free balance does not cover the
  escrow (escrow_of the request: the charge at its limits plus min_protocol_fee);
- else the job (id job_id(genesis_hash, PROBE_FUND, height x 256 + i), poster the fund, Job.probe set, no
  storage deposit) is assigned to the executor at once with the normal commit deadline and goes the normal
  way: commit/reveal, settle (paid from the fund, audited), a missed deadline slashed as any (and the probe
  ends, refunded to the fund: it is not reassigned), an invalid verdict slashed and jailed.
"""

from __future__ import annotations

from dataclasses import dataclass

from proto import state_pb2, types_pb2
from runtime import balances, models, randomness, staking, system
from runtime.disputes.params import Params as DisputesParams
from runtime.disputes.params import read_params as read_dispute_params
import runtime.jobs.events as events
from runtime.jobs.collateral import lock_for
from runtime.jobs.params import Params, read_params
from runtime.jobs.phases import ASSIGNED, SLOT_ASSIGNED
from runtime.jobs.pricing import escrow_of
from runtime.jobs.queue import schedule
from runtime.jobs.recipes import PROBE_FUND, job_id, probe_hash, probe_nonce
from runtime.jobs.storage import (
    add_load,
    index_assigned,
    index_posted,
    read_load,
    record_request,
    take_recent_requests,
    write_job,
)
from runtime.slashing.penalties import jailed
from runtime.state import Overlay, StateReader


@dataclass(frozen=True)
class Candidate:
    """An executor that may be probed: its bonded stake (its weight), its offer, and its models with a request."""

    account: bytes
    stake: int
    offer: state_pb2.Offer
    models: tuple[bytes, ...]


def record_post(state: Overlay, request: types_pb2.PostJob, height: int) -> None:
    """PostJob: keep the request as its model's newest of this epoch (the next epoch's probes copy it)."""
    record_request(state, request, staking.epoch_of(height, staking.read_params(state)))


def candidates(state: StateReader, requests: dict[bytes, types_pb2.PostJob], height: int) -> list[Candidate]:
    """Every executor serving a model of `requests`, bonded at least min_bond and not jailed, sorted by account."""
    min_bond = staking.read_params(state).min_bond
    accounts = sorted({account for model in sorted(requests) for account in staking.serving(state, model)})
    pool = []
    for account in accounts:
        offer = staking.read_offer(state, account)
        stake = staking.bonded(state, account)
        if offer is None or stake < min_bond or jailed(state, account, height):
            continue
        offered = tuple(model for model in offer.models if model in requests)
        if offered:
            pool.append(Candidate(account, stake, offer, offered))
    return pool


def pick(pool: list[Candidate], digest: bytes) -> int:
    """The position of the candidate drawn by bonded stake: the first whose running sum exceeds the point."""
    point = int.from_bytes(digest[:16], "big") % sum(candidate.stake for candidate in pool)
    running = 0
    for position, candidate in enumerate(pool):
        running += candidate.stake
        if running > point:
            return position
    raise AssertionError("a point below the total stake always lands on a candidate")


def probe_request(template: types_pb2.PostJob, offer: state_pb2.Offer, digest: bytes,
                  params: DisputesParams) -> types_pb2.PostJob:
    """The probe's request: the recent request, shortened, at redundancy 1, at most the offer's price, a new seed,
    accepting the probed executor's engine class only (whatever classes the recent request accepted)."""
    request = types_pb2.PostJob()
    request.CopyFrom(template)
    request.max_tokens = min(template.max_tokens, params.probe_max_tokens)
    request.redundancy = 1
    request.max_price_per_token = min(offer.price_per_token, template.max_price_per_token)
    request.sampling.seed = int.from_bytes(digest[24:32], "big")
    del request.engine_classes[:]
    if offer.engine_class:
        request.engine_classes.append(offer.engine_class)
    return request


def post_probes(state: Overlay, height: int) -> None:
    """on_initialize at an epoch's first block: post up to probes_per_epoch probes from the last epoch's requests."""
    staking_params = staking.read_params(state)
    if not staking.epoch_starts(height, staking_params.epoch_blocks):
        return
    requests = take_recent_requests(state, staking.epoch_of(height, staking_params) - 1)
    dispute_params = read_dispute_params(state)
    if not requests or not dispute_params.probes_per_epoch:
        return
    pool = candidates(state, requests, height)
    mix = randomness.read_mix(state)
    params = read_params(state)
    for index in range(dispute_params.probes_per_epoch):
        if not pool:
            return
        digest = probe_hash(mix, index)
        candidate = pool.pop(pick(pool, digest))
        model = candidate.models[int.from_bytes(digest[16:24], "big") % len(candidate.models)]
        request = probe_request(requests[model], candidate.offer, digest, dispute_params)
        reason = _unprobeable(state, candidate, request, params)
        if reason:
            state.deposit_event(events.event(events.PROBE_SKIPPED, executor=candidate.account.hex(), model=model.hex(),
                                             reason=reason))
            continue
        _post(state, candidate, request, index, height, params)


def _unprobeable(state: StateReader, candidate: Candidate, request: types_pb2.PostJob, params: Params) -> str:
    """Why the probe cannot be posted ("" when it can): the executor is full, the model retired, the fund short."""
    load = read_load(state, candidate.account)
    if load >= candidate.offer.capacity:
        return f"the executor holds {load} jobs, its offer's capacity"
    if models.read_model(state, request.model) is None:
        return "the model is no longer registered"
    escrow = escrow_of(request, params)
    fund = system.read_account(state, PROBE_FUND)
    free = 0 if fund is None else fund.free
    if free < escrow:
        return f"the probe fund holds {free}, the probe's escrow is {escrow}"
    return ""


def _post(state: Overlay, candidate: Candidate, request: types_pb2.PostJob, index: int, height: int,
          params: Params) -> None:
    """Reserve the probe's escrow from the fund, store it, and assign it to the candidate (events as a posted job's)."""
    escrow = escrow_of(request, params)
    genesis_hash = system.read_chain(state).genesis_hash
    job = state_pb2.Job(
        id=job_id(genesis_hash, PROBE_FUND, probe_nonce(height, index)), poster=PROBE_FUND, request=request,
        status=ASSIGNED, posted_height=height, escrow=escrow, prompt_price_ppm=params.prompt_price_ppm,
        draw_height=height, probe=True,
    )
    balances.reserve(state, PROBE_FUND, escrow)
    window = params.commit_window(request.max_tokens)
    job.timeout_height = schedule(state, height + params.job_timeout_blocks + window, job.id)
    deadline = schedule(state, height + window, job.id)
    job.assignments.append(state_pb2.Assignment(
        executor=candidate.account, price_per_token=request.max_price_per_token, status=SLOT_ASSIGNED,
        assigned_height=height, deadline_height=deadline, engine_class=candidate.offer.engine_class,
    ))
    add_load(state, candidate.account, 1)
    index_posted(state, job)
    index_assigned(state, job, candidate.account)
    lock_for(state, job, candidate.account)
    state.deposit_event(events.event(events.JOB_POSTED, job=job.id.hex(), poster=PROBE_FUND.hex(),
                                     model=request.model.hex(), escrow=escrow, timeout_height=job.timeout_height))
    state.deposit_event(events.event(events.JOB_ASSIGNED, job=job.id.hex(), executor=candidate.account.hex(),
                                     price_per_token=request.max_price_per_token, deadline_height=deadline,
                                     engine_class=candidate.offer.engine_class or "cpu"))
    state.deposit_event(events.event(events.PROBE_POSTED, job=job.id.hex(), executor=candidate.account.hex(),
                                     model=request.model.hex(), escrow=escrow))
    write_job(state, job)
