"""Long runs of the consensus simulation: many seeds, each a different set of faults.

    .venv/bin/python bench/consensus_sim.py [--seeds N] [--first S] [--quick]
        [--scenario random|lock-attack] [--unlocked] [--no-guard] [--no-wait]

`random` (the default): each seed draws validators, powers, byzantine behaviours, delays, a
partition, restarts (from the write-ahead log or from an empty database) and a wrong clock
(tests/consensus/simulation.py) and checks agreement, validity, double-signs, evidence and
liveness. `lock-attack`: the adversary aimed at the locking rule (`Scenario.lock_attack`).
`--unlocked` runs the machine without its locking rule; `--no-guard` sends without the SignState;
`--no-wait` lets a node restarted from an empty database start consensus before it caught up.
Prints every seed with a violation, then one JSON line: seeds tried, violations found, the failing
seeds, seeds with broken agreement and with a double-sign by a correct validator, signatures the
guard refused (a repeat of what was sent, a conflict with it, or stale), heights decided, and
simulated seconds per wall second.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chain.consensus.machine import Machine  # noqa: E402
from tests.consensus.simulation import Scenario, Simulation, UnlockedMachine  # noqa: E402

SCENARIOS = {"random": Scenario.draw, "lock-attack": Scenario.lock_attack}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=1000, help="seeds to run (default: 1000)")
    parser.add_argument("--first", type=int, default=0, help="first seed (default: 0)")
    parser.add_argument("--quick", action="store_true", help="50 seeds")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="random")
    parser.add_argument("--unlocked", action="store_true", help="the machine without its locking rule")
    parser.add_argument("--no-guard", action="store_true", help="no SignState between the machine and the network")
    parser.add_argument("--no-wait", action="store_true", help="a node restarted from an empty database does not "
                                                                "wait for block sync")
    args = parser.parse_args(argv)
    count = 50 if args.quick else args.seeds
    draw = SCENARIOS[args.scenario]
    options = dict(guard=not args.no_guard, wait_for_sync=not args.no_wait,
                   machine=UnlockedMachine if args.unlocked else Machine)
    started = time.perf_counter()
    failing, violations, heights, simulated_ms, attacked = [], 0, 0, 0, 0
    broken, double_signed = [], []
    refused = {"repeat": 0, "conflict": 0, "stale": 0}
    for seed in range(args.first, args.first + count):
        scenario = draw(seed)
        outcome = Simulation(scenario, **options).run()
        simulated_ms += scenario.run_ms
        heights += min(outcome.heights.values(), default=0)
        attacked += outcome.attacked
        for kind, number in outcome.refused.items():
            refused[kind] += number
        if any("agreement broken" in violation for violation in outcome.violations):
            broken.append(seed)
        if any("signed two" in violation for violation in outcome.violations):
            double_signed.append(seed)
        if outcome.violations:
            failing.append(seed)
            violations += len(outcome.violations)
            print(f"seed {seed}: {outcome.violations[:3]}", flush=True)
    seconds = time.perf_counter() - started
    print(f"{count} {args.scenario} seeds from {args.first}: {violations} violations in {len(failing)} seeds "
          f"(agreement broken in {len(broken)}, a correct validator double-signed in {len(double_signed)}), "
          f"{heights} heights decided by every correct validator, {seconds:.1f} s")
    figures = {"seeds": count, "first_seed": args.first, "scenario": args.scenario, "unlocked": args.unlocked,
               "guard": not args.no_guard, "wait_for_sync": not args.no_wait, "violations": violations,
               "failing_seeds": failing, "agreement_broken": len(broken), "double_signed": len(double_signed),
               "refused": refused, "heights": heights, "simulated_s_per_s": round(simulated_ms / 1000 / seconds, 1)}
    if args.scenario == "lock-attack":
        figures["attacked"] = attacked
    print(json.dumps(figures))
    return 1 if failing else 0


if __name__ == "__main__":
    raise SystemExit(main())
