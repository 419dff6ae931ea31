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
    reputation_initial: int = 100
    reputation_max: int = 1_000
    reputation_gain: int = 1
    reputation_loss: int = 10
    min_tokens_per_block: int = 10

    def validate(self) -> None:
        for name, value in asdict(self).items():
            if value < 1 and name != "protocol_fee_ppm":
                raise ValueError(f"jobs.params.{name} must be at least 1")
        if self.protocol_fee_ppm > PPM:
            raise ValueError("jobs.params.protocol_fee_ppm must be at most 1000000")
        if not 1 <= self.reputation_initial <= self.reputation_max:
            raise ValueError("jobs.params.reputation_initial must be in [1, reputation_max]")

    def commit_window(self, max_tokens: int) -> int:
        """Blocks an executor has to commit: a fixed part plus one block per min_tokens_per_block tokens."""
        return self.commit_blocks + -(-max_tokens // self.min_tokens_per_block)


PARAMS_KEY = b"jobs/params"
PARAMS = ParamsSpec(Params, state_pb2.JobsParams, PARAMS_KEY)


def read_params(state: StateReader) -> Params:
    """The market's rules as stored in `state`."""
    return decode_params(PARAMS, state.get(PARAMS_KEY))
