"""jobs events: every step of a job emits one, so a client can follow it (names declared once, here)."""

from __future__ import annotations

from proto import types_pb2
from runtime.jobs.params import MODULE
from runtime.module import ACCOUNT, AMOUNT, HASH, INTEGER, TEXT, EventSpec
from runtime.primitives import make_event

JOB_POSTED = "JobPosted"
JOB_QUEUED = "JobQueued"
JOB_ASSIGNED = "JobAssigned"
RESULT_COMMITTED = "ResultCommitted"
REVEAL_OPENED = "RevealOpened"
RESULT_REVEALED = "ResultRevealed"
JOB_SETTLED = "JobSettled"
PAYMENT_HELD = "PaymentHeld"
PAYMENT_RELEASED = "PaymentReleased"
PROTOCOL_FEE = "ProtocolFee"
JOB_REFUNDED = "JobRefunded"
DEADLINE_MISSED = "DeadlineMissed"
JOB_EXPIRED = "JobExpired"
JOB_CANCELLED = "JobCancelled"
JOB_DISPUTED = "JobDisputed"
JOB_REJECTED = "JobRejected"
PAYMENT_REVOKED = "PaymentRevoked"
QUEUE_FEE = "QueueFeeBurned"
JOB_PRUNED = "JobPruned"
PROBE_FUND_PAID = "ProbeFundPaid"
PROBE_POSTED = "ProbePosted"
PROBE_SKIPPED = "ProbeSkipped"

EVENTS = (
    EventSpec(
        JOB_POSTED,
        "A job was posted and its escrow reserved.",
        {"job": HASH, "poster": ACCOUNT, "model": HASH, "escrow": AMOUNT, "timeout_height": INTEGER},
    ),
    EventSpec(JOB_QUEUED, "Too few executors are free: the job waits (every block retries).", {"job": HASH, "missing": INTEGER}),
    EventSpec(
        JOB_ASSIGNED,
        "An executor was assigned; it commits by deadline_height (engine_class: the class it offered).",
        {"job": HASH, "executor": ACCOUNT, "price_per_token": AMOUNT, "deadline_height": INTEGER,
         "engine_class": TEXT},
    ),
    EventSpec(RESULT_COMMITTED, "An executor committed to its result.", {"job": HASH, "executor": ACCOUNT}),
    EventSpec(REVEAL_OPENED, "Every commitment is in; executors reveal by deadline_height.", {"job": HASH, "deadline_height": INTEGER}),
    EventSpec(RESULT_REVEALED, "An executor revealed its result.", {"job": HASH, "executor": ACCOUNT, "output_digest": HASH, "tokens": INTEGER}),
    EventSpec(JOB_SETTLED, "The revealed results agreed.", {"job": HASH, "output_digest": HASH, "paid": AMOUNT}),
    EventSpec(
        PAYMENT_HELD,
        "An executor's payment, held until the challenge window closes.",
        {"job": HASH, "executor": ACCOUNT, "amount": AMOUNT, "release_height": INTEGER},
    ),
    EventSpec(PAYMENT_RELEASED, "A held payment became the executor's free balance.", {"job": HASH, "executor": ACCOUNT, "amount": AMOUNT}),
    EventSpec(PROTOCOL_FEE, "The protocol's share of a payment, burned but for the probe fund's part (ProbeFundPaid, "
              "just before).", {"job": HASH, "amount": AMOUNT}),
    EventSpec(PROBE_FUND_PAID, "disputes.params.probe_fund_ppm of the protocol fee that follows, paid into the probe "
              "fund instead of being burned.", {"job": HASH, "amount": AMOUNT}),
    EventSpec(JOB_REFUNDED, "Escrow returned to the poster.", {"job": HASH, "poster": ACCOUNT, "amount": AMOUNT}),
    EventSpec(DEADLINE_MISSED, "An executor missed its commit or reveal deadline.", {"job": HASH, "executor": ACCOUNT, "phase": TEXT}),
    EventSpec(JOB_EXPIRED, "The job found no (agreeing) result before its timeout.", {"job": HASH, "reason": TEXT}),
    EventSpec(JOB_CANCELLED, "The poster withdrew the job before assignment.", {"job": HASH}),
    EventSpec(JOB_DISPUTED, "Revealed results differ, or fewer than the quorum agree: the escrow is held for a committee's "
              "verdict (runtime/disputes).", {"job": HASH, "results": INTEGER}),
    EventSpec(JOB_REJECTED, "A committee judged no revealed result valid: the job ends without one, its escrow returned.",
              {"job": HASH, "reason": TEXT}),
    EventSpec(PAYMENT_REVOKED, "A committee judged the result invalid: its held payment went back to the poster.",
              {"job": HASH, "executor": ACCOUNT, "amount": AMOUNT}),
    EventSpec(QUEUE_FEE, "Too few executors were free at the job's draw: it waits, and the queue fee its escrow held was burned.",
              {"job": HASH, "poster": ACCOUNT, "amount": AMOUNT}),
    EventSpec(
        JOB_PRUNED,
        "The challenge window closed: the job's prompt and reveals were deleted (digests kept) and its storage deposit returned.",
        {"job": HASH, "poster": ACCOUNT, "deposit": AMOUNT},
    ),
    EventSpec(PROBE_POSTED, "A challenge-response probe was posted from the probe fund and assigned to the executor "
              "(always audited).", {"job": HASH, "executor": ACCOUNT, "model": HASH, "escrow": AMOUNT}),
    EventSpec(PROBE_SKIPPED, "A probe drawn at the epoch's first block was not posted: the executor is full, or the "
              "probe fund cannot pay it.", {"executor": ACCOUNT, "model": HASH, "reason": TEXT}),
)


def event(event_name: str, **attributes: object) -> types_pb2.Event:
    """One of the events above, attributes in declaration order."""
    return make_event(MODULE, event_name, **attributes)
