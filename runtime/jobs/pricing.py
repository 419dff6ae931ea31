"""What a job costs (docs/economics.md, "Paying for what is computed"): escrow, charge, fee, storage deposit.

An executor is paid for the prompt tokens it evaluated as well as the tokens it generated, a prompt
token at `prompt_price_ppm` of its price. The runtime has no tokenizer, so the escrow holds the
worst case: a byte-level tokenizer makes at most one token per prompt byte, plus the chat
template's framing. Every function is monotonic in each count and price, so a payment computed
from a revealed result never exceeds the escrow computed from the job's limits.
"""

from __future__ import annotations

from proto import types_pb2
from runtime.arithmetic import PPM, mul_div
from runtime.jobs.params import TEMPLATE_ALLOWANCE_TOKENS, Params

# The stored Job record beyond its PostJob request: id, poster, status, heights, amounts, reason.
JOB_RECORD_BYTES = 256


def prompt_token_bound(prompt: str) -> int:
    """The most tokens any tokenizer may make of the prompt: one per UTF-8 byte, plus the template's framing."""
    return len(prompt.encode("utf-8")) + TEMPLATE_ALLOWANCE_TOKENS


def charge(price_per_token: int, prompt_tokens: int, output_tokens: int, prompt_price_ppm: int) -> int:
    """An executor's gross pay: ⌊price × (output tokens × 10^6 + prompt tokens × prompt_price_ppm) / 10^6⌋."""
    return mul_div(price_per_token, output_tokens * PPM + prompt_tokens * prompt_price_ppm, PPM)


def escrow_of(call: types_pb2.PostJob, params: Params) -> int:
    """The most a job can cost: redundancy × the charge at the limits, plus the minimum protocol fee."""
    worst = charge(call.max_price_per_token, prompt_token_bound(call.prompt), call.max_tokens, params.prompt_price_ppm)
    return call.redundancy * worst + params.min_protocol_fee


def protocol_fee(gross: int, protocol_fee_ppm: int) -> int:
    """The protocol's share of a payment, rounded up (a share rounded down was 0 below 100 base units)."""
    return -(-gross * protocol_fee_ppm // PPM)


def storage_deposit(call: types_pb2.PostJob, params: Params) -> int:
    """storage_deposit_per_byte × (the PostJob's canonical bytes + JOB_RECORD_BYTES)."""
    return params.storage_deposit_per_byte * (call.ByteSize() + JOB_RECORD_BYTES)
