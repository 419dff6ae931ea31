"""Who may take a job beyond price and capacity: no jailed executor, and stake enough to be collateral for it.

Proof of Sampling (docs/economics.md): forging a result pays at most the job's pay bound, and is caught
with the audit probability p, costing slash_fraction_invalid_result_ppm of the stake; an executor is
drawn only while that expected loss covers the gain:
stake x slash_fraction_invalid_result_ppm x p >= pay_bound x collateral_ppm x 10^6 x (load + 1), with
pay_bound the charge at the job's max_price_per_token, its prompt's token bound and max_tokens, and load
the jobs the executor holds already (each could be forged at once; a job's bound stands for each of them).
The rule is off when p or collateral_ppm is 0.
"""

from __future__ import annotations

from proto import state_pb2
from runtime import staking
from runtime.arithmetic import PPM
from runtime.disputes.params import audit_probability
from runtime.disputes.params import dispute_blocks
from runtime.disputes.params import read_params as dispute_params
from runtime.jobs.params import read_params as jobs_params
from runtime.jobs.pricing import charge, prompt_token_bound
from runtime.state import Overlay, StateReader


def pay_bound(job: state_pb2.Job) -> int:
    """The most one executor can earn from the job."""
    request = job.request
    return charge(request.max_price_per_token, prompt_token_bound(request.prompt), request.max_tokens,
                  job.prompt_price_ppm)


def collateral_stake(state: StateReader, job: state_pb2.Job) -> int:
    """The least bonded stake that is collateral for the job alone (rounded up); 0 when the rule is off."""
    params = dispute_params(state)
    probability = audit_probability(state, job.request.model)
    if not probability or not params.collateral_ppm:
        return 0
    needed = pay_bound(job) * params.collateral_ppm * PPM
    return -(-needed // (params.slash_fraction_invalid_result_ppm * probability))


def drawable_stake(state: StateReader, account: bytes) -> int:
    """The bonded stake a draw counts: 0 while a dispute's slash keeps the account jailed (until it unjails)."""
    ledger = staking.read_ledger(state, account)
    return 0 if ledger is None or ledger.jailed else ledger.bonded


def lock_for(state: Overlay, job: state_pb2.Job, executor: bytes) -> None:
    """Keep the executor's unbonding stake from being withdrawn while the job can still prove an offence: until its
    timeout, a reveal window, the challenge window and a dispute's draw and votes have passed (settlement and a
    dispute's committee extend it when a full schedule pushed their heights later)."""
    params = jobs_params(state)
    tail = params.reveal_blocks + params.challenge_window_blocks + dispute_blocks(dispute_params(state))
    staking.lock_stake(state, executor, job.timeout_height + tail)
