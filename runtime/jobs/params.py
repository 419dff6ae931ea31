"""jobs parameters: the market's rules from genesis, and the fixed limits of a job's form."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from proto import state_pb2
from runtime.arithmetic import PPM
from runtime.module import ParamsSpec
from runtime.params import decode_params
from runtime.state import StateReader

MODULE = "jobs"
SALT_BYTES = 32
# Tokens set aside for a chat template's framing when checking that a job fits the model's context.
TEMPLATE_ALLOWANCE_TOKENS = 64


@dataclass(frozen=True)
class Params:
    """Market rules, set at genesis (proto JobsParams documents each field)."""

    max_prompt_bytes: int = 16_384
    max_tokens: int = 4_096
    max_redundancy: int = 5
    commit_blocks: int = 20
    reveal_blocks: int = 10
    job_timeout_blocks: int = 300
    challenge_window_blocks: int = 100
    protocol_fee_ppm: int = 10_000
    max_queue: int = 1_000
    assign_per_block: int = 50
    # Reputation (docs/economics.md, "Reputation"): a fresh key starts low and a score decays back to it.
    reputation_initial: int = 10
    reputation_max: int = 1_000
    reputation_loss: int = 10
    min_tokens_per_block: int = 10
    # Assignment (docs/economics.md, "Assignment randomness" and "Price in the draw"): drawn two blocks
    # after inclusion from the RANDAO mix; among the cheapest 8 within the job's price; a region used
    # when at least 3 of its executors qualify.
    assignment_delay_blocks: int = 2
    draw_candidates: int = 8
    region_min_candidates: int = 3
    # Paying for what is computed (docs/economics.md): at least one output token's 1% at the devnet's
    # price of 10^9; a refundable deposit per stored byte; prompt tokens at 0.65 of an output token
    # (a batched evaluation costs 0.65-0.7 of generating as many tokens on the pinned CPU engine).
    min_protocol_fee: int = 10_000_000
    storage_deposit_per_byte: int = 1_000_000
    prompt_price_ppm: int = 650_000
    # Reputation (docs/economics.md, "Reputation"): a point costs 10^10 base units burned (the 1% fee on
    # 1,000 output tokens at the devnet's price of 10^9), at most 50 points an epoch, and the part above
    # reputation_initial loses 1% an epoch (half-life 69 epochs).
    reputation_price: int = 10_000_000_000
    reputation_gain_cap_per_epoch: int = 50
    reputation_decay_ppm: int = 10_000
    # Queues and lock-out (docs/economics.md): at least ten output tokens' escrow at the devnet's price;
    # 32 waiting jobs per poster; a waiting job burns ten output tokens' price; 100 jobs due per height
    # (a missed deadline's hook work was measured at 3.9 ms: at most ~0.4 s of it in one block).
    min_job_escrow: int = 10_000_000_000
    max_queued_per_poster: int = 32
    queue_fee: int = 10_000_000_000
    max_due_per_height: int = 100

    def validate(self) -> None:
        for name, value in asdict(self).items():
            if value < 1 and name != "protocol_fee_ppm":
                raise ValueError(f"jobs.params.{name} must be at least 1")
        if self.protocol_fee_ppm > PPM:
            raise ValueError("jobs.params.protocol_fee_ppm must be at most 1000000")
        if self.prompt_price_ppm > PPM:
            raise ValueError("jobs.params.prompt_price_ppm must be at most 1000000")
        if not 1 <= self.reputation_initial <= self.reputation_max:
            raise ValueError("jobs.params.reputation_initial must be in [1, reputation_max]")
        if self.reputation_decay_ppm > PPM:
            raise ValueError("jobs.params.reputation_decay_ppm must be at most 1000000")

    def commit_window(self, max_tokens: int) -> int:
        """Blocks an executor has to commit: a fixed part plus one block per min_tokens_per_block tokens."""
        return self.commit_blocks + -(-max_tokens // self.min_tokens_per_block)


PARAMS_KEY = b"jobs/params"
PARAMS = ParamsSpec(Params, state_pb2.JobsParams, PARAMS_KEY)


def read_params(state: StateReader) -> Params:
    """The market's rules as stored in `state`."""
    return decode_params(PARAMS, state.get(PARAMS_KEY))
