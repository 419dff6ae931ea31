"""disputes parameters: the committee, the vote windows, audits, challenges, the slash fractions and the
challenge-response probes, from genesis."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from proto import state_pb2
from runtime import models
from runtime.arithmetic import PPM
from runtime.module import ParamsSpec
from runtime.params import decode_params
from runtime.state import StateReader

MODULE = "disputes"
SALT_BYTES = 32
# The most members a committee may have: a verdict's work grows with it (runtime/disputes/weights.py).
MAX_COMMITTEE_SIZE = 32
# Committee draws and audit draws due at one height, and vote deadlines due at one height (a verdict declares ~50 ms
# of reference work, so 5 of each keep the hooks well inside max_block_weight): a height past the
# limit pushes the next entry to the first later height with room, so a block's hook work stays bounded.
MAX_DUE_PER_HEIGHT = 5
# Settled jobs whose audit is drawn at one height (each a job read and a hash; most are not audited), and the
# audits that draw their committee at once in one block: one drawn past that opens with its committee drawn
# audit_delay_blocks later (the draws schedule), so load never lowers the audit probability.
MAX_AUDITS_PER_HEIGHT = 100
MAX_AUDITED_PER_BLOCK = 10
# The most probes_per_epoch may be (runtime/jobs/weights.py declares the epoch's first block for this many probes), and
# the most sealed_probes_per_epoch (an epoch's seals are pruned in one block: weights.py).
MAX_PROBES_PER_EPOCH = 64
# Parts per billion (the conviction budget).
PPB = 1_000_000_000
# The fields that are shares of a whole, in parts per million.
_PPM_FIELDS = (
    "audit_probability_ppm", "challenge_loss_ppm", "slash_fraction_invalid_result_ppm",
    "slash_fraction_missed_result_ppm", "slash_fraction_missed_vote_ppm", "slash_fraction_contrary_vote_ppm",
    "slash_reward_ppm", "supermajority_ppm", "probe_fund_ppm", "same_class_share_ppm",
)
# same_class_share_ppm's least value: below half the eligible stake, a class drawn alone could be a minority.
MIN_SAME_CLASS_SHARE_PPM = 500_000
# The fields that may be 0 (a rule turned off).
_MAY_BE_ZERO = _PPM_FIELDS + ("collateral_ppm", "probes_per_epoch", "sealed_probes_per_epoch",
                               "max_probe_reimbursement")


@dataclass(frozen=True)
class Params:
    """Dispute rules, set at genesis (proto DisputesParams documents each field)."""

    committee_size: int = 3
    min_committee_size: int = 1
    vote_commit_blocks: int = 20
    vote_reveal_blocks: int = 10
    # Proof of Sampling (docs/economics.md): one settled job in ten re-scored by a committee.
    audit_probability_ppm: int = 100_000
    audit_delay_blocks: int = 2
    min_challenge_bond: int = 10**11
    challenge_loss_ppm: int = 500_000
    slash_fraction_invalid_result_ppm: int = 500_000
    slash_fraction_missed_result_ppm: int = 1_000
    slash_fraction_missed_vote_ppm: int = 10_000
    slash_fraction_contrary_vote_ppm: int = 50_000
    slash_reward_ppm: int = 500_000
    supermajority_ppm: int = 666_667
    max_open_disputes: int = 1_000
    conviction_budget_ppb: int = 1_000
    collateral_ppm: int = 1_000_000
    # Challenge-response probes (docs/protocol.md, "Probes"; runtime/jobs/probes.py): 10% of every protocol fee
    # funds them instead of being burned; 4 probe jobs an epoch, each at most 64 output tokens (a probe proves the
    # advertised capacity answers at all; length adds nothing to the audit's power per position judged).
    probe_fund_ppm: int = 100_000
    probes_per_epoch: int = 4
    probe_max_tokens: int = 64
    # A dispute's committee is drawn among the validators of its results' engine class (exact re-scores) when they
    # hold at least this share of the eligible stake (docs/protocol.md, "Disputes", Committee).
    same_class_share_ppm: int = 666_667
    # Sealed probes (docs/protocol.md, "Sealed probes"; sealed.py): SealProbe calls an epoch, at most one an account.
    sealed_probes_per_epoch: int = 4
    # The most an opened sealed probe is paid back (a 64-token job at the dev genesis's 10^9 per token is ~8.3 x 10^10).
    max_probe_reimbursement: int = 100_000_000_000

    def validate(self) -> None:
        for name, value in asdict(self).items():
            if value < 1 and name not in _MAY_BE_ZERO:
                raise ValueError(f"disputes.params.{name} must be at least 1")
        for name in _PPM_FIELDS:
            if getattr(self, name) > PPM:
                raise ValueError(f"disputes.params.{name} must be at most {PPM}")
        if self.committee_size > MAX_COMMITTEE_SIZE:
            raise ValueError(f"disputes.params.committee_size is {self.committee_size}, above {MAX_COMMITTEE_SIZE}, "
                             "the most the verdict's weight is declared for")
        if self.min_committee_size > self.committee_size:
            raise ValueError("disputes.params.min_committee_size must be at most committee_size")
        if self.collateral_ppm and not self.slash_fraction_invalid_result_ppm:
            raise ValueError("disputes.params.slash_fraction_invalid_result_ppm must be at least 1 while collateral_ppm "
                             "is set: no stake would be collateral for a job")
        if self.probes_per_epoch > MAX_PROBES_PER_EPOCH:
            raise ValueError(f"disputes.params.probes_per_epoch is {self.probes_per_epoch}, above "
                             f"{MAX_PROBES_PER_EPOCH}, the most the jobs hook's weight is declared for")
        if self.sealed_probes_per_epoch > MAX_PROBES_PER_EPOCH:
            raise ValueError(f"disputes.params.sealed_probes_per_epoch is {self.sealed_probes_per_epoch}, above "
                             f"{MAX_PROBES_PER_EPOCH}, the most the disputes hook's weight is declared for")
        if self.same_class_share_ppm < MIN_SAME_CLASS_SHARE_PPM:
            raise ValueError(f"disputes.params.same_class_share_ppm is {self.same_class_share_ppm}, below "
                             f"{MIN_SAME_CLASS_SHARE_PPM}: a class holding a minority of the eligible stake would "
                             "judge its results alone")
        if self.conviction_budget_ppb > PPB:
            raise ValueError(f"disputes.params.conviction_budget_ppb must be at most {PPB}")


PARAMS_KEY = b"disputes/params"
PARAMS = ParamsSpec(Params, state_pb2.DisputesParams, PARAMS_KEY)


def read_params(state: StateReader) -> Params:
    """The dispute rules as stored in `state`."""
    return decode_params(PARAMS, state.get(PARAMS_KEY))


def audit_probability(state: StateReader, model_id: bytes) -> int:
    """The chance, in parts per million, that a settled job of the model is audited: the model's own when it
    names one, else audit_probability_ppm."""
    model = models.model_for_job(state, model_id)
    if model is not None and model.audit_probability_ppm:
        return model.audit_probability_ppm
    return read_params(state).audit_probability_ppm


def dispute_blocks(params: Params) -> int:
    """The blocks from a dispute's opening to its verdict when no schedule is full: the committee's draw delay and
    both vote windows."""
    return params.audit_delay_blocks + params.vote_commit_blocks + params.vote_reveal_blocks
