"""Long runs of the consensus simulation: many seeds, each a different set of faults.

    .venv/bin/python bench/consensus_sim.py [--seeds N] [--first S] [--quick]

Each seed draws validators, powers, byzantine behaviours, delays, a partition and crash-restarts
(tests/consensus/simulation.py) and checks agreement, validity, evidence and liveness. Prints
every seed with a violation, then one JSON line: seeds tried, violations found, the failing seeds,
heights decided, and simulated seconds per wall second.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.consensus.simulation import Scenario, simulate  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=1000, help="seeds to run (default: 1000)")
    parser.add_argument("--first", type=int, default=0, help="first seed (default: 0)")
    parser.add_argument("--quick", action="store_true", help="50 seeds")
    args = parser.parse_args(argv)
    count = 50 if args.quick else args.seeds
    started = time.perf_counter()
    failing, violations, heights, simulated_ms = [], 0, 0, 0
    for seed in range(args.first, args.first + count):
        outcome = simulate(seed)
        simulated_ms += Scenario.draw(seed).run_ms
        heights += min(outcome.heights.values(), default=0)
        if outcome.violations:
            failing.append(seed)
            violations += len(outcome.violations)
            print(f"seed {seed}: {outcome.violations[:3]}", flush=True)
    seconds = time.perf_counter() - started
    print(f"{count} seeds from {args.first}: {violations} violations in {len(failing)} seeds, "
          f"{heights} heights decided by every correct validator, {seconds:.1f} s")
    print(json.dumps({"seeds": count, "first_seed": args.first, "violations": violations, "failing_seeds": failing,
                      "heights": heights, "simulated_s_per_s": round(simulated_ms / 1000 / seconds, 1)}))
    return 1 if failing else 0


if __name__ == "__main__":
    raise SystemExit(main())
