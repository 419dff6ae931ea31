"""How a job ends: settled and paid (held through the challenge window), disputed, rejected, expired or cancelled.

A quorum (redundancy // 2 + 1) of identical digests settles: each executor earns its output and
prompt tokens at its own price (pricing.py), less the protocol's fee (rounded up; a job pays at least
min_protocol_fee), held in its reserved balance until the challenge window closes; the rest of the
escrow returns to the poster. Of each fee, disputes.params.probe_fund_ppm goes to the probe fund
(probes.py), the rest is burned; the part burned on each payment buys its executor reputation
(runtime/reputation.py), except on a probe, which the fund pays; an audit draw is scheduled
(runtime/disputes/opening.py).
Differing digests, or agreeing ones short of the quorum, hold the escrow as DISPUTED, unpaid, until a
committee's verdict concludes the job (`conclude`): the poster ends with a result judged valid or its
escrow back, never both. A missed deadline costs reputation and a small slash, and frees the
executor's slot. Deadlines and releases are at the heights the schedule gives (queue.schedule: the
first with room at or after the nominal one).
"""

from __future__ import annotations

from typing import Mapping

from proto import state_pb2
from runtime import balances, reputation, staking, system
from runtime.arithmetic import apply_ppm
from runtime.disputes import params as dispute_params
from runtime.disputes.opening import DIGESTS, QUORUM, UNPAID_REASONS, open_dispute, schedule_audit
import runtime.jobs.events as events
from runtime.jobs.params import Params, read_params
from runtime.jobs.pricing import charge, protocol_fee
from runtime.jobs.phases import (
    CANCELLED,
    EXPIRED,
    REJECTED,
    REVEALING,
    SETTLED,
    SLOT_ASSIGNED,
    SLOT_MISSED,
    SLOT_REVEALED,
)
from runtime.jobs.queue import dequeue, displaced_by, no_room, schedule
from runtime.jobs.recipes import PROBE_FUND
from runtime.jobs.storage import active_slots, add_load, read_job, write_job
from runtime.slashing.penalties import MISSED_RESULT, slash
from runtime.state import Overlay

VALID = state_pb2.CANDIDATE_VERDICT_VALID
INVALID = state_pb2.CANDIDATE_VERDICT_INVALID


def release_slots(state: Overlay, job: state_pb2.Job) -> None:
    """Free the capacity of every still-active assignment (the job ends without their result)."""
    for slot in active_slots(job):
        add_load(state, slot.executor, -1)
        slot.status = SLOT_MISSED if slot.status == SLOT_ASSIGNED else slot.status


def refund(state: Overlay, job: state_pb2.Job) -> None:
    """Return what is left of the escrow to the poster."""
    if job.escrow:
        balances.unreserve(state, job.poster, job.escrow)
        state.deposit_event(events.event(events.JOB_REFUNDED, job=job.id.hex(), poster=job.poster.hex(), amount=job.escrow))
        job.refunded += job.escrow
        job.escrow = 0


def end(state: Overlay, job: state_pb2.Job, status: int, reason: str) -> None:
    """End a job without payment: expired or cancelled; the escrow returns."""
    release_slots(state, job)
    dequeue(state, job)
    refund(state, job)
    job.status = status
    job.reason = reason
    job.final_height = system.read_chain(state).height
    schedule(state, job.final_height + read_params(state).challenge_window_blocks, job.id)  # pruned then
    if status == CANCELLED:
        state.deposit_event(events.event(events.JOB_CANCELLED, job=job.id.hex()))
    else:
        state.deposit_event(events.event(events.JOB_EXPIRED, job=job.id.hex(), reason=reason))


def make_room(state: Overlay, job: state_pb2.Job, params: Params) -> str:
    """Why a job that found no free executor cannot wait ("" when it can); a cheaper job it displaces
    from its model's full queue expires, refunded (its queue fee stays burned)."""
    reason = no_room(state, job, params)
    if reason:
        return reason
    displaced = displaced_by(state, job, params)
    if displaced is not None:
        cheaper = read_job(state, displaced)
        end(state, cheaper, EXPIRED, f"displaced from the model's full queue by job {job.id.hex()}, which offers a "
                                     f"higher max_price_per_token ({job.request.max_price_per_token})")
        write_job(state, cheaper)
    return ""


def quorum(job: state_pb2.Job) -> int:
    """How many agreeing reveals settle a job without a verdict: a majority of its redundancy."""
    return job.request.redundancy // 2 + 1


def settle(state: Overlay, job: state_pb2.Job, params: Params, height: int) -> None:
    """Every remaining result is revealed: pay (held) a quorum of agreeing ones, else hold the escrow for a verdict."""
    revealed = [slot for slot in job.assignments if slot.status == SLOT_REVEALED]
    release_slots(state, job)
    digests = {slot.reveal.output_digest for slot in revealed}
    job.final_height = height
    if len(digests) != 1 or len(revealed) < quorum(job):
        _dispute(state, job, revealed, digests, height)
        return
    release = schedule(state, height + params.challenge_window_blocks, job.id)
    paid = 0
    for slot in revealed:
        paid += _pay(state, job, slot, params, release)
    _burn_minimum_fee(state, job, params)
    job.status = SETTLED
    job.output_digest = digests.pop()
    state.deposit_event(events.event(events.JOB_SETTLED, job=job.id.hex(), output_digest=job.output_digest.hex(), paid=paid))
    refund(state, job)
    audit = schedule_audit(state, job.id, height)
    # Until the audit's verdict, or a challenge's at the end of the window, can come.
    until = max(release, audit) + dispute_params.dispute_blocks(dispute_params.read_params(state))
    for slot in revealed:
        staking.lock_stake(state, slot.executor, until)


def _dispute(state: Overlay, job: state_pb2.Job, revealed: list, digests: set, height: int) -> None:
    """Differing digests, or too few: nothing is paid, and the escrow is held until a committee's verdict."""
    if len(digests) != 1:
        reason, why = DIGESTS, f"{len(digests)} different results were revealed"
    else:
        reason, why = QUORUM, f"{len(revealed)} result(s) revealed, below the quorum of {quorum(job)}"
    job.reason = f"{why}; the escrow is held for a committee's verdict"
    state.deposit_event(events.event(events.JOB_DISPUTED, job=job.id.hex(), results=len(digests)))
    open_dispute(state, job, reason, height)


def _pay(state: Overlay, job: state_pb2.Job, slot: state_pb2.Assignment, params: Params, release: int) -> int:
    """Move one executor's pay from the poster's escrow into its reserved balance; the gross amount."""
    gross = _gross(job, slot)
    fee = protocol_fee(gross, params.protocol_fee_ppm)
    net = gross - fee
    balances.repatriate_reserved(state, job.poster, slot.executor, net)
    burned = _take_fee(state, job, fee)
    job.escrow -= gross
    job.protocol_fee += fee
    slot.payment = net
    slot.release_height = release
    # Reputation is bought by the part burned only: the probe fund's share is not destroyed, and a probe's fee is
    # the fund's own money, so neither can mint reputation.
    reputation.reward(state, slot.executor, job.poster, 0 if job.probe else burned)
    state.deposit_event(
        events.event(events.PAYMENT_HELD, job=job.id.hex(), executor=slot.executor.hex(), amount=net, release_height=release)
    )
    return gross


def _gross(job: state_pb2.Job, slot: state_pb2.Assignment) -> int:
    """What a revealed result earns before the protocol's share."""
    return charge(slot.price_per_token, slot.reveal.prompt_tokens, len(slot.reveal.tokens), job.prompt_price_ppm)


def _burn_minimum_fee(state: Overlay, job: state_pb2.Job, params: Params) -> None:
    """A settled job pays at least min_protocol_fee (burned but for the probe fund's share): the shortfall comes from
    its escrow, which holds it from post."""
    shortfall = min(params.min_protocol_fee - job.protocol_fee, job.escrow)
    if shortfall <= 0:
        return
    _take_fee(state, job, shortfall)
    job.escrow -= shortfall
    job.protocol_fee += shortfall


def _take_fee(state: Overlay, job: state_pb2.Job, fee: int) -> int:
    """Take a protocol fee from the poster's escrow: disputes.params.probe_fund_ppm of it (rounded down) into the
    probe fund's free balance, the rest burned; the amount burned."""
    if not fee:
        return 0
    share = apply_ppm(fee, dispute_params.read_params(state).probe_fund_ppm)
    burned = fee - share
    if share:
        balances.repatriate_reserved(state, job.poster, PROBE_FUND, share)
        balances.unreserve(state, PROBE_FUND, share)
        state.deposit_event(events.event(events.PROBE_FUND_PAID, job=job.id.hex(), amount=share))
    if burned:
        balances.burn_reserved(state, job.poster, burned)
    state.deposit_event(events.event(events.PROTOCOL_FEE, job=job.id.hex(), amount=fee))
    return burned


def miss(state: Overlay, job: state_pb2.Job, slot: state_pb2.Assignment, phase: str, params: Params) -> None:
    """The executor let a deadline pass: its slot is freed, its reputation falls and a small share of its stake is
    slashed (a withheld commitment or reveal is not free)."""
    slot.status = SLOT_MISSED
    add_load(state, slot.executor, -1)
    reputation.penalize(state, slot.executor)
    fraction = dispute_params.read_params(state).slash_fraction_missed_result_ppm
    slash(state, slot.executor, fraction, MISSED_RESULT, job.id, system.read_chain(state).height)
    state.deposit_event(events.event(events.DEADLINE_MISSED, job=job.id.hex(), executor=slot.executor.hex(), phase=phase))


def open_reveal(state: Overlay, job: state_pb2.Job, params: Params, height: int) -> None:
    """Every commitment is in: executors reveal within reveal_blocks."""
    deadline = schedule(state, height + params.reveal_blocks, job.id)
    for slot in active_slots(job):
        slot.deadline_height = deadline
    job.status = REVEALING
    state.deposit_event(events.event(events.REVEAL_OPENED, job=job.id.hex(), deadline_height=deadline))


def release_held(state: Overlay, job: state_pb2.Job, params: Params, height: int) -> None:
    """At the end of the challenge window: release a settled job's held payments (a disputed job's wait for the
    verdict)."""
    if job.status != SETTLED:
        return
    for slot in job.assignments:
        if slot.release_height <= height:
            _release(state, job, slot)


def _release(state: Overlay, job: state_pb2.Job, slot: state_pb2.Assignment) -> None:
    """A held payment becomes the executor's free balance (nothing when none is held)."""
    if not slot.payment or slot.released:
        return
    balances.unreserve(state, slot.executor, slot.payment)
    slot.released = True
    state.deposit_event(
        events.event(events.PAYMENT_RELEASED, job=job.id.hex(), executor=slot.executor.hex(), amount=slot.payment)
    )


# --- after a verdict (runtime/disputes/verdict.py) ----------------------------------


def conclude(state: Overlay, job: state_pb2.Job, verdicts: Mapping[int, int], reason: int,
             height: int) -> dict[int, int]:
    """Apply a committee's verdicts (assignment index -> CandidateVerdict) to a disputed job; per INVALID candidate,
    the protocol fee the poster had burned on it (made good from the executor's slash). The caller writes the job."""
    params = read_params(state)
    for index, verdict in verdicts.items():
        job.assignments[index].verdict = verdict
    if reason in UNPAID_REASONS:
        fees = _conclude_unpaid(state, job, verdicts, params, height)
        job.final_height = height  # it ends (settled or rejected) at the verdict, not when its dispute opened
    else:
        fees = _conclude_held(state, job, verdicts, height)
    # Pruned then, after every payment still held (a result nobody judged) is released.
    held = [slot.release_height for slot in job.assignments if slot.payment and not slot.released]
    schedule(state, max(height + 1, job.final_height + params.challenge_window_blocks, *held), job.id)
    return fees


def _conclude_unpaid(state: Overlay, job: state_pb2.Job, verdicts: Mapping[int, int], params: Params,
                     height: int) -> dict[int, int]:
    """Nothing was paid yet: pay each valid result and release it at once (it is verified), the rest of the escrow
    returns; with no valid result, all of it returns and the job is rejected."""
    valid = sorted(index for index, verdict in verdicts.items() if verdict == VALID)
    if not valid:
        refund(state, job)
        _reject(state, job, verdicts)
        return {index: 0 for index, verdict in verdicts.items() if verdict == INVALID}
    paid = 0
    for index in valid:
        slot = job.assignments[index]
        paid += _pay(state, job, slot, params, height)
        _release(state, job, slot)
    _burn_minimum_fee(state, job, params)
    job.status = SETTLED
    job.output_digest = job.assignments[valid[0]].reveal.output_digest
    job.reason = f"a committee judged {len(valid)} of {len(verdicts)} revealed results valid"
    state.deposit_event(events.event(events.JOB_SETTLED, job=job.id.hex(), output_digest=job.output_digest.hex(), paid=paid))
    refund(state, job)
    return {index: 0 for index, verdict in verdicts.items() if verdict == INVALID}


def _conclude_held(state: Overlay, job: state_pb2.Job, verdicts: Mapping[int, int], height: int) -> dict[int, int]:
    """Payments are held (an audit or a challenge): an invalid result's goes back to the poster, a valid one's is
    released at once, and one nobody judged (NONE) stays held until its release height, open to a new challenge
    as if it had never been disputed; the job is rejected when every result is invalid (then every fee it burned is
    owed back)."""
    fees = {}
    for index in sorted(verdicts):
        slot = job.assignments[index]
        if verdicts[index] == INVALID:
            fees[index] = _revoke(state, job, slot)
        elif verdicts[index] == VALID or slot.release_height <= height:
            _release(state, job, slot)
    if all(verdict == INVALID for verdict in verdicts.values()):
        # The poster paid for no valid result: the minimum fee's top-up is made good with the first one's fee.
        first = min(fees)
        fees[first] += job.protocol_fee - sum(fees.values())
        job.output_digest = b""
        _reject(state, job, verdicts)
    else:
        job.status = SETTLED
    return fees


def _revoke(state: Overlay, job: state_pb2.Job, slot: state_pb2.Assignment) -> int:
    """An invalid result's held payment goes back to whoever paid it, to its free balance: to the probe fund what it
    paid the poster back at a sealed probe's opening (Job.probe_fund_claim), the rest to the poster; the protocol
    fee burned on it."""
    fee = _gross(job, slot) - slot.payment if slot.payment else 0
    if slot.payment and not slot.released:
        to_fund = min(slot.payment, job.probe_fund_claim)
        job.probe_fund_claim -= to_fund
        for payer, amount in ((PROBE_FUND, to_fund), (job.poster, slot.payment - to_fund)):
            if amount:
                balances.repatriate_reserved(state, slot.executor, payer, amount)
                balances.unreserve(state, payer, amount)
        job.refunded += slot.payment
        state.deposit_event(events.event(events.PAYMENT_REVOKED, job=job.id.hex(), executor=slot.executor.hex(),
                                         amount=slot.payment))
        slot.payment = 0
        slot.released = False
    return fee


def _reject(state: Overlay, job: state_pb2.Job, verdicts: Mapping[int, int]) -> None:
    """No revealed result was judged valid: the job ends without one."""
    invalid = sum(1 for verdict in verdicts.values() if verdict == INVALID)
    unjudged = len(verdicts) - invalid
    job.status = REJECTED
    job.reason = (f"no revealed result was judged valid: {invalid} judged invalid, {unjudged} not judged (too few "
                  "committee members or votes); the escrow returned")
    state.deposit_event(events.event(events.JOB_REJECTED, job=job.id.hex(), reason=job.reason))
