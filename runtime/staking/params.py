"""staking parameters: stake rules from genesis."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from proto import state_pb2
from runtime.module import ParamsSpec
from runtime.params import decode_params
from runtime.state import StateReader

MODULE = "staking"
MAX_REGION_BYTES = 32
MAX_GENESIS_STAKES = 10_000


@dataclass(frozen=True)
class Params:
    """Stake rules, set at genesis (proto StakingParams documents each field)."""

    # 1,000 INFER at the default 9 decimals: max_executors_per_model such bonds are 0.005% of the supply cap.
    min_bond: int = 10**12
    unbonding_period_blocks: int = 1_000
    epoch_blocks: int = 100
    max_validators: int = 100
    max_offer_models: int = 16
    max_executors_per_model: int = 1_000
    max_unbonding_chunks: int = 32
    max_capacity: int = 64
    # Offers (docs/economics.md, "Price in the draw"): a price of 0 made jobs free to flood; a price that
    # could change every block let an executor raise it to a poster's maximum just before the posts.
    min_price_per_token: int = 1
    offer_lock_blocks: int = 100

    def validate(self) -> None:
        for name, value in asdict(self).items():
            if value < 1:
                raise ValueError(f"staking.params.{name} must be at least 1")


PARAMS_KEY = b"staking/params"
# The double-sign rules were stored here while slashing was part of staking; since spec version 4 they are the
# slashing module's (proto StakingParams reserves their fields).
MOVED_TO_SLASHING = tuple(
    (name, "app_state.slashing.params")
    for name in ("slash_fraction_double_sign_ppm", "jail_blocks", "max_evidence_age_blocks")
)
PARAMS = ParamsSpec(Params, state_pb2.StakingParams, PARAMS_KEY, moved=MOVED_TO_SLASHING)


def read_params(state: StateReader) -> Params:
    """The stake rules as stored in `state`."""
    return decode_params(PARAMS, state.get(PARAMS_KEY))
