"""staking parameters: stake rules from genesis (and, stored with them, the slashing rules)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from proto import state_pb2
from runtime.arithmetic import PPM
from runtime.module import ParamsSpec
from runtime.params import decode_params
from runtime.state import StateReader

MODULE = "staking"
MAX_REGION_BYTES = 32
MAX_GENESIS_STAKES = 10_000


@dataclass(frozen=True)
class Params:
    """Stake rules, set at genesis (proto StakingParams documents each field).

    The last three are the slashing module's rules (runtime/slashing/ reads them from here):
    they stay in StakingParams so that the stored parameters and `app_state.staking.params`
    keep the form they had when slashing was part of staking.
    """

    # 1,000 INFER at the default 9 decimals: max_executors_per_model such bonds are 0.005% of the supply cap.
    min_bond: int = 10**12
    unbonding_period_blocks: int = 1_000
    epoch_blocks: int = 100
    max_validators: int = 100
    max_offer_models: int = 16
    max_executors_per_model: int = 1_000
    max_unbonding_chunks: int = 32
    max_capacity: int = 64
    slash_fraction_double_sign_ppm: int = 50_000
    jail_blocks: int = 1_000
    max_evidence_age_blocks: int = 100
    # Offers (docs/economics.md, "Price in the draw"): a price of 0 made jobs free to flood; a price that
    # could change every block let an executor raise it to a poster's maximum just before the posts.
    min_price_per_token: int = 1
    offer_lock_blocks: int = 100

    def validate(self) -> None:
        for name, value in asdict(self).items():
            if value < 1:
                raise ValueError(f"staking.params.{name} must be at least 1")
        if self.slash_fraction_double_sign_ppm > PPM:
            raise ValueError(f"staking.params.slash_fraction_double_sign_ppm must be at most {PPM} (all of the stake)")


PARAMS_KEY = b"staking/params"
PARAMS = ParamsSpec(Params, state_pb2.StakingParams, PARAMS_KEY)


def read_params(state: StateReader) -> Params:
    """The stake rules as stored in `state`."""
    return decode_params(PARAMS, state.get(PARAMS_KEY))
