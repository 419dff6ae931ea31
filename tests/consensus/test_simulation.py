"""The consensus simulation (tests/consensus/simulation.py) over many seeds: no invariant is ever broken.

Each seed draws 4 or 7 validators (equal or unequal power), up to f byzantine ones (double-signing,
proposing two values, proposing and voting for an invalid value, silent, or all of the first two),
delays and reorderings, messages held back until GST, a partition before GST, and up to two
crash-restarts of correct validators. `bench/consensus_sim.py --seeds N` runs more.
"""

from __future__ import annotations

import pytest

from tests.consensus.simulation import Scenario, Simulation, simulate

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
    assert any(scenario.crashes for scenario in scenarios)
    assert {scenario.validators for scenario in scenarios} == {4, 7}
    assert any(len(set(scenario.powers)) > 1 for scenario in scenarios)


def test_a_run_is_the_same_for_the_same_seed():
    first, second = Simulation(Scenario.draw(11)).run(), Simulation(Scenario.draw(11)).run()
    assert (first.heights, first.events) == (second.heights, second.events)
    assert min(first.heights.values()) > 10


def test_a_double_signer_is_caught_by_the_correct_validators():
    seed = next(s for s in range(SEEDS_IN_CI) if "double_sign" in Scenario.draw(s).byzantine.values())
    simulation = Simulation(Scenario.draw(seed))
    simulation.run()
    assert simulation.equivocated
    accused = {evidence.first.sender for node in simulation.correct() for evidence in node.evidence}
    assert simulation.equivocated <= accused
