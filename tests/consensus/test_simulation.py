"""The consensus simulation (tests/consensus/simulation.py) over many seeds: no invariant is ever broken.

Each seed draws 4 or 7 validators (equal or unequal power), up to f byzantine ones (double-signing,
proposing two values, proposing and voting for an invalid value, silent, or all of the first two),
delays and reorderings, messages held back until GST, a partition before GST, up to two restarts of
correct validators (from their write-ahead log or from an empty database) and a wrong clock. Every
signature of a correct validator passes its SignState. `bench/consensus_sim.py --seeds N` runs more;
tests/consensus/test_restarts.py and test_lock_attack.py show that the scenarios catch the defects
they are there for.
"""

from __future__ import annotations

import pytest

from tests.consensus.simulation import RESTARTS, Scenario, Simulation, simulate

SEEDS_IN_CI = 200


@pytest.mark.parametrize("block", range(SEEDS_IN_CI // 20))
def test_no_seed_breaks_agreement_validity_evidence_or_liveness(block):
    failures = []
    for seed in range(block * 20, block * 20 + 20):
        outcome = simulate(seed)
        if outcome.violations:
            failures.append(f"seed {seed}: {outcome.violations[:3]}")
    assert not failures, "\n".join(failures)


def test_the_seeds_cover_every_fault():
    scenarios = [Scenario.draw(seed) for seed in range(SEEDS_IN_CI)]
    behaviours = {behaviour for scenario in scenarios for behaviour in scenario.byzantine.values()}
    assert behaviours == {"double_sign", "equivocate", "invalid", "silent", "adversary"}
    assert any(scenario.partition for scenario in scenarios)
    assert {crash[3] for scenario in scenarios for crash in scenario.crashes} == set(RESTARTS)
    clocks = [scenario.clock for scenario in scenarios if scenario.clock]
    assert {clock.judges_by_clock for clock in clocks} == {False, True}
    assert {clock.jump_ms > 0 for clock in clocks if clock.jump_ms} == {False, True}
    assert {clock.rate for clock in clocks} == {0.5, 1.0, 2.0}
    assert {scenario.validators for scenario in scenarios} == {4, 7}
    assert any(len(set(scenario.powers)) > 1 for scenario in scenarios)


def test_a_run_is_the_same_for_the_same_seed():
    first, second = Simulation(Scenario.draw(11)).run(), Simulation(Scenario.draw(11)).run()
    assert (first.heights, first.events, first.refused) == (second.heights, second.events, second.refused)
    assert min(first.heights.values()) > 10


def test_a_double_signer_is_caught_by_the_correct_validators():
    seed = next(s for s in range(SEEDS_IN_CI) if "double_sign" in Scenario.draw(s).byzantine.values())
    simulation = Simulation(Scenario.draw(seed))
    simulation.run()
    assert simulation.equivocated
    accused = {evidence.first.sender for node in simulation.correct() for evidence in node.evidence}
    assert simulation.equivocated <= accused
