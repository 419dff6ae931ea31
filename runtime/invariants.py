"""Properties that hold after every block; checked by property tests and `inferchain` diagnostics."""

from __future__ import annotations

from typing import Iterable

from proto import state_pb2
from runtime import jobs, models, staking, system
from runtime.disputes.storage import DISPUTE_PREFIX
from runtime.state import StateReader


def account_total(items: Iterable[tuple[bytes, bytes]]) -> int:
    """The sum of free and reserved balances over every stored account."""
    total = 0
    for key, value in items:
        if key.startswith(system.ACCOUNT_PREFIX):
            account = state_pb2.AccountInfo.FromString(value)
            total += account.free + account.reserved
    return total


def supply_is_conserved(state: StateReader, items: Iterable[tuple[bytes, bytes]]) -> bool:
    """Total issuance equals all balances plus what was burned, minus what was minted (DESIGN.md section 3)."""
    supply = system.read_supply(state)
    return supply.total_issuance == account_total(items) + supply.burned - supply.minted


def reserved_by_purpose(items: Iterable[tuple[bytes, bytes]]) -> dict[bytes, int]:
    """What each account should have reserved, from the records that say why: stake, escrow, held pay, deposits,
    challenge bonds."""
    owed: dict[bytes, int] = {}

    def add(account: bytes, amount: int) -> None:
        if amount:
            owed[account] = owed.get(account, 0) + amount

    for key, value in items:
        if key.startswith(staking.LEDGER_PREFIX):
            ledger = state_pb2.StakeLedger.FromString(value)
            add(key[len(staking.LEDGER_PREFIX):], ledger.bonded + sum(chunk.amount for chunk in ledger.unbonding))
        elif key.startswith(jobs.JOB_PREFIX):
            job = state_pb2.Job.FromString(value)
            add(job.poster, job.escrow + job.storage_deposit)
            for slot in job.assignments:
                add(slot.executor, 0 if slot.released else slot.payment)
        elif key.startswith(models.PROPOSAL_PREFIX):
            proposal = state_pb2.ModelProposal.FromString(value)
            add(proposal.proposer, proposal.deposit)
        elif key.startswith(DISPUTE_PREFIX):
            dispute = state_pb2.Dispute.FromString(value)
            if dispute.status != state_pb2.DISPUTE_STATUS_DECIDED:
                add(dispute.challenger, dispute.bond)  # a challenge's bond, held until the verdict
    return owed


def reserved_is_accounted(items: Iterable[tuple[bytes, bytes]]) -> bool:
    """Every account's reserved balance equals its stake, escrow, held payments and deposits, to the unit."""
    items = list(items)
    reserved = {
        key[len(system.ACCOUNT_PREFIX):]: state_pb2.AccountInfo.FromString(value).reserved
        for key, value in items
        if key.startswith(system.ACCOUNT_PREFIX)
    }
    owed = reserved_by_purpose(items)
    return {account: amount for account, amount in reserved.items() if amount} == owed


def staking_totals_match(state: StateReader, items: Iterable[tuple[bytes, bytes]]) -> bool:
    """StakingTotals' bonded and unbonding figures equal the sums over every stake ledger (slashes included)."""
    bonded = unbonding = 0
    for key, value in items:
        if key.startswith(staking.LEDGER_PREFIX):
            ledger = state_pb2.StakeLedger.FromString(value)
            bonded += ledger.bonded
            unbonding += sum(chunk.amount for chunk in ledger.unbonding)
    totals = staking.read_totals(state)
    return (totals.bonded, totals.unbonding) == (bonded, unbonding)
