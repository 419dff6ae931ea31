"""Restarts that lost the database and wrong clocks (issue 28), in the simulation: the signing guard holds.

The devnet faults: an honest validator whose database was removed resynced, started rounds at
head+1 and, as proposer, built and prevoted a new block for a height it had voted on; a validator
whose clock was 40 s behind, then fixed and restarted, replayed a proposal its clock-dependent
validity check now judged otherwise. Each test runs the scenario with the guard (SignState) and,
where it shows the scenario can see the defect, without it.
"""

from __future__ import annotations

from tests.consensus.simulation import ClockFault, Scenario, Simulation

SEEDS = range(400)
EMPTY_SEEDS = [seed for seed in SEEDS if any(crash[3] == "empty" for crash in Scenario.draw(seed).crashes)]
BEHIND_SEEDS = [
    seed for seed in SEEDS
    if (clock := Scenario.draw(seed).clock) and clock.judges_by_clock and clock.jump_ms < -30_000
]
CLOCK_SEEDS = [seed for seed in SEEDS if Scenario.draw(seed).clock]


def _double_signs(outcome) -> list[str]:
    return [violation for violation in outcome.violations if "signed two" in violation]


def test_a_node_restarted_from_an_empty_database_rejoins_without_signing_twice():
    for seed in EMPTY_SEEDS[:10]:
        simulation = Simulation(Scenario.draw(seed))
        outcome = simulation.run()
        assert not outcome.violations, f"seed {seed}: {outcome.violations[:3]}"
        for index, _, up, kind in simulation.scenario.crashes:
            node = simulation.nodes[index]
            # It followed the chain to the heights decided while it was away, then decided new ones itself.
            assert node.incarnation == (kind == "empty") and not node.syncing
            assert any(at > up for at in node.decided_at.values()), f"seed {seed}: {index} decided nothing after {up}"


def test_without_the_guard_a_node_restarted_from_an_empty_database_double_signs():
    outcomes = [Simulation(Scenario.draw(seed), guard=False, wait_for_sync=False).run() for seed in EMPTY_SEEDS[:10]]
    assert sum(bool(_double_signs(outcome)) for outcome in outcomes) >= 5


def test_waiting_for_block_sync_alone_does_not_stop_the_double_sign():
    # It rejoins at the height the network is at, which may be one it already voted in.
    double_signed = (
        seed for seed in EMPTY_SEEDS[:40] if _double_signs(Simulation(Scenario.draw(seed), guard=False).run())
    )
    assert next(double_signed, None) is not None


def test_the_guard_alone_keeps_a_node_that_does_not_wait_from_signing_twice():
    refused = 0
    for seed in EMPTY_SEEDS[:10]:
        outcome = Simulation(Scenario.draw(seed), wait_for_sync=False).run()
        assert not outcome.violations, f"seed {seed}: {outcome.violations[:3]}"
        refused += outcome.refused["conflict"]
    assert refused > 0


def test_a_replay_that_judges_a_proposal_differently_is_refused_by_the_guard():
    caught = 0
    for seed in BEHIND_SEEDS[:6]:
        simulation = Simulation(Scenario.draw(seed))
        outcome = simulation.run()
        assert not outcome.violations, f"seed {seed}: {outcome.violations[:3]}"
        caught += any(index == simulation.scenario.clock.validator for index, _ in simulation.conflicts_refused)
    assert caught >= 3


def test_without_the_guard_a_replay_that_judges_a_proposal_differently_double_signs():
    outcomes = [Simulation(Scenario.draw(seed), guard=False).run() for seed in BEHIND_SEEDS[:6]]
    assert sum(bool(_double_signs(outcome)) for outcome in outcomes) >= 3


def test_with_a_validity_that_ignores_the_clock_a_replay_signs_what_it_signed_before():
    seeds = [seed for seed in CLOCK_SEEDS if seed not in BEHIND_SEEDS][:10]
    for seed in seeds:
        simulation = Simulation(Scenario.draw(seed))
        outcome = simulation.run()
        assert not outcome.violations, f"seed {seed}: {outcome.violations[:3]}"
        clock = simulation.scenario.clock.validator
        assert not [text for index, text in simulation.conflicts_refused if index == clock], f"seed {seed}"


def test_timers_follow_a_clock_that_jumps_and_changes_rate():
    fast = ClockFault(0, start_ms=1_000, fixed_ms=20_000, rate=2.0, jump_ms=0, judges_by_clock=False)
    assert fast.real_time(1_000 + 600, now=1_000) == 1_300  # a 600 ms timeout after 300 ms
    ahead = ClockFault(0, start_ms=1_000, fixed_ms=20_000, rate=1.0, jump_ms=5_000, judges_by_clock=False)
    assert ahead.real_time(1_500, now=1_000) == 1_000  # a pending timer fires at the jump
    behind = ClockFault(0, start_ms=1_000, fixed_ms=60_000, rate=1.0, jump_ms=-40_000, judges_by_clock=False)
    assert behind.real_time(1_500, now=1_000) == 41_500 and behind.offset(2_000) == -40_000
    assert behind.offset(60_000) == 0  # fixed
