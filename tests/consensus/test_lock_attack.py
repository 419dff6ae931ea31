"""The lock adversary (`Scenario.lock_attack`): without the locking rule it breaks agreement, with it never.

Byzantine validators just under 1/3 of the power and a network that, before GST, hides the round-0
votes for A from some correct validators: one correct validator sees A decided, the others (some
locked on A) see no decision and are offered B by a byzantine proposer in round 1. Locked
validators prevote nil, so B gathers no polka; a machine without the lock prevotes B and decides it.
"""

from __future__ import annotations

from chain.consensus.machine import Machine
from tests.consensus.simulation import Scenario, Simulation, UnlockedMachine

SEEDS_IN_CI = 30


def _agreement_broken(outcome) -> bool:
    return any("agreement broken" in violation for violation in outcome.violations)


def test_the_unlocked_machine_never_holds_a_lock():
    machine = UnlockedMachine(b"a" * 32, {b"a" * 32: 1}, 1, lambda value: True, lambda height: b"v")
    machine.locked_value, machine.locked_round = b"v", 0
    assert (machine.locked_value, machine.locked_round) == (None, -1)


def test_the_lock_attack_never_breaks_agreement_evidence_or_liveness():
    failures = []
    for seed in range(SEEDS_IN_CI):
        outcome = Simulation(Scenario.lock_attack(seed), machine=Machine).run()
        if outcome.violations:
            failures.append(f"seed {seed}: {outcome.violations[:3]}")
    assert not failures, "\n".join(failures)


def test_without_the_locking_rule_the_lock_attack_breaks_agreement_in_most_seeds():
    outcomes = [Simulation(Scenario.lock_attack(seed), machine=UnlockedMachine).run() for seed in range(SEEDS_IN_CI)]
    broken = sum(_agreement_broken(outcome) for outcome in outcomes)
    attacked = sum(outcome.attacked for outcome in outcomes)
    assert attacked >= 0.9 * SEEDS_IN_CI and broken >= 0.9 * attacked, (broken, attacked)
