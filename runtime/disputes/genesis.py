"""disputes genesis: the parameters, and the rule across modules that keeps an offence's stake slashable.

Disputes never cross from one chain to another (an open one ends with the old chain). The rule:
a result can be challenged until challenge_window_blocks after its job ends, its committee is drawn
audit_delay_blocks later and votes for vote_commit_blocks then vote_reveal_blocks; all of it must end
before staking's unbonding_period_blocks, so stake unbonded right after an offence is still there to
slash when the verdict comes. An audit is drawn before the challenge window closes, while the job's
payments are still held.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from runtime import staking
from runtime.disputes.params import PARAMS, PARAMS_KEY, Params, read_params
from runtime.disputes.weights import MAX_VALIDATORS
from runtime.jobs import params as jobs_params
from runtime.module import GenesisContext, GenesisInvalid, check_section_keys
from runtime.params import encode_params, params_from_json, params_to_json
from runtime.state import IterableState, Overlay, StateReader


@dataclass(frozen=True)
class GenesisConfig:
    params: Params


def parse_genesis(section: Mapping[str, Any], context: GenesisContext) -> GenesisConfig:
    """`app_state.disputes`: {"params": {...}}."""
    check_section_keys(section, ("params",), "app_state.disputes")
    return GenesisConfig(params_from_json(PARAMS, section.get("params", {}), "app_state.disputes.params"))


def genesis(state: Overlay, config: GenesisConfig) -> None:
    config.params.validate()
    state.set(PARAMS_KEY, encode_params(PARAMS, config.params))


def export_genesis(state: IterableState, encode_account=bytes.hex) -> dict:
    """Parameters only: open disputes end with the old chain."""
    return {"params": params_to_json(PARAMS, read_params(state))}


def check_windows(state: StateReader) -> None:
    """Refuse a genesis whose challenge window and vote windows outlast the unbonding period, whose audits come
    after the challenge window, or whose validator set outgrows the committee draw's weight (GenesisInvalid)."""
    window = jobs_params.read_params(state).challenge_window_blocks
    stake = staking.read_params(state)
    rules = read_params(state)
    proving = window + rules.audit_delay_blocks + rules.vote_commit_blocks + rules.vote_reveal_blocks
    if proving >= stake.unbonding_period_blocks:
        raise GenesisInvalid(
            f"jobs.params.challenge_window_blocks ({window}) + disputes.params.audit_delay_blocks "
            f"({rules.audit_delay_blocks}) + disputes.params.vote_commit_blocks ({rules.vote_commit_blocks}) + "
            f"disputes.params.vote_reveal_blocks ({rules.vote_reveal_blocks}) = {proving} must be below "
            f"staking.params.unbonding_period_blocks ({stake.unbonding_period_blocks}), so that stake unbonded after "
            "an offence can still be slashed when the verdict comes"
        )
    if rules.audit_delay_blocks >= window:
        raise GenesisInvalid(
            f"disputes.params.audit_delay_blocks ({rules.audit_delay_blocks}) must be below "
            f"jobs.params.challenge_window_blocks ({window}): an audit is drawn while the job's payments are held"
        )
    if stake.max_validators > MAX_VALIDATORS:
        raise GenesisInvalid(
            f"staking.params.max_validators is {stake.max_validators}, above {MAX_VALIDATORS}, the most the "
            "committee draw's weight is declared for (runtime/disputes/weights.py)"
        )
