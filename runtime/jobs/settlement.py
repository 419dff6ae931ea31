"""How a job ends: settled and paid (held through the challenge window), disputed, expired or cancelled.

Identical digests settle: each executor earns its output and prompt tokens at its own price
(pricing.py), less the protocol's share (burned, rounded up; a job burns at least
min_protocol_fee), held in its reserved balance until the challenge window closes; the
rest of the escrow returns to the poster; the fee burned on each payment buys its executor
reputation (runtime/reputation.py). Differing digests hold the escrow as DISPUTED until
disputes land; until then it returns when the challenge window closes. A missed deadline costs
reputation and frees the executor's slot. Deadlines and releases are at the heights the schedule
gives (queue.schedule: the first with room at or after the nominal one).
"""

from __future__ import annotations

from proto import state_pb2
from runtime import balances, reputation, system
import runtime.jobs.events as events
from runtime.jobs.params import Params, read_params
from runtime.jobs.pricing import charge, protocol_fee
from runtime.jobs.phases import CANCELLED, DISPUTED, EXPIRED, REVEALING, SETTLED, SLOT_ASSIGNED, SLOT_MISSED, SLOT_REVEALED
from runtime.jobs.queue import dequeue, displaced_by, no_room, schedule
from runtime.jobs.storage import active_slots, add_load, read_job, write_job
from runtime.state import Overlay


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


def settle(state: Overlay, job: state_pb2.Job, params: Params, height: int) -> None:
    """Every remaining result is revealed: pay (held) if they agree, else hold the escrow as disputed."""
    revealed = [slot for slot in job.assignments if slot.status == SLOT_REVEALED]
    release_slots(state, job)
    digests = {slot.reveal.output_digest for slot in revealed}
    release = schedule(state, height + params.challenge_window_blocks, job.id)
    job.final_height = height
    if len(digests) != 1:
        job.status = DISPUTED
        job.reason = f"{len(digests)} different results were revealed; held until height {release}"
        state.deposit_event(events.event(events.JOB_DISPUTED, job=job.id.hex(), results=len(digests)))
        return
    paid = 0
    for slot in revealed:
        paid += _pay(state, job, slot, params, release)
    _burn_minimum_fee(state, job, params)
    job.status = SETTLED
    job.output_digest = digests.pop()
    state.deposit_event(events.event(events.JOB_SETTLED, job=job.id.hex(), output_digest=job.output_digest.hex(), paid=paid))
    refund(state, job)


def _pay(state: Overlay, job: state_pb2.Job, slot: state_pb2.Assignment, params: Params, release: int) -> int:
    """Move one executor's pay from the poster's escrow into its reserved balance; the gross amount."""
    gross = charge(slot.price_per_token, slot.reveal.prompt_tokens, len(slot.reveal.tokens), job.prompt_price_ppm)
    fee = protocol_fee(gross, params.protocol_fee_ppm)
    net = gross - fee
    balances.repatriate_reserved(state, job.poster, slot.executor, net)
    if fee:
        balances.burn_reserved(state, job.poster, fee)
        state.deposit_event(events.event(events.PROTOCOL_FEE, job=job.id.hex(), amount=fee))
    job.escrow -= gross
    job.protocol_fee += fee
    slot.payment = net
    slot.release_height = release
    reputation.reward(state, slot.executor, job.poster, fee)
    state.deposit_event(
        events.event(events.PAYMENT_HELD, job=job.id.hex(), executor=slot.executor.hex(), amount=net, release_height=release)
    )
    return gross


def _burn_minimum_fee(state: Overlay, job: state_pb2.Job, params: Params) -> None:
    """A settled job burns at least min_protocol_fee: the shortfall comes from its escrow, which holds it from post."""
    shortfall = min(params.min_protocol_fee - job.protocol_fee, job.escrow)
    if shortfall <= 0:
        return
    balances.burn_reserved(state, job.poster, shortfall)
    job.escrow -= shortfall
    job.protocol_fee += shortfall
    state.deposit_event(events.event(events.PROTOCOL_FEE, job=job.id.hex(), amount=shortfall))


def miss(state: Overlay, job: state_pb2.Job, slot: state_pb2.Assignment, phase: str, params: Params) -> None:
    """The executor let a deadline pass: its slot is freed and its reputation falls."""
    slot.status = SLOT_MISSED
    add_load(state, slot.executor, -1)
    reputation.penalize(state, slot.executor)
    state.deposit_event(events.event(events.DEADLINE_MISSED, job=job.id.hex(), executor=slot.executor.hex(), phase=phase))


def open_reveal(state: Overlay, job: state_pb2.Job, params: Params, height: int) -> None:
    """Every commitment is in: executors reveal within reveal_blocks."""
    deadline = schedule(state, height + params.reveal_blocks, job.id)
    for slot in active_slots(job):
        slot.deadline_height = deadline
    job.status = REVEALING
    state.deposit_event(events.event(events.REVEAL_OPENED, job=job.id.hex(), deadline_height=deadline))


def release_held(state: Overlay, job: state_pb2.Job, params: Params, height: int) -> None:
    """At the end of the challenge window: release held payments (or refund a disputed job)."""
    if job.status == DISPUTED:
        if height >= job.final_height + params.challenge_window_blocks:
            refund(state, job)
        return
    for slot in job.assignments:
        if slot.payment and not slot.released and slot.release_height <= height:
            balances.unreserve(state, slot.executor, slot.payment)
            slot.released = True
            state.deposit_event(
                events.event(events.PAYMENT_RELEASED, job=job.id.hex(), executor=slot.executor.hex(), amount=slot.payment)
            )
