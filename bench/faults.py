"""The fault suite, longer: tests/e2e/test_faults.py's cases on a 4-validator devnet, with the attacks' full sizes.

    .venv/bin/python bench/faults.py [--quick | --seconds N] [--cases kill_9,vote_flood,...] [--keep DIR]

Cases (tests/faults/cases.py): kill -9, pause, isolate, a vote flood from a non-validator (110,000
votes), a lying Status, peer slots taken by authenticated strangers, half-open streams, a
TxAnnounce flood, 200 API requests of 30 MiB, a restart from an empty chain database (8 times,
each on a fresh devnet) and a clock skewed by -40 s then fixed (4 times). Each case asserts that
no honest validator double-signs (no evidence, no slash), no fork, finality continues or resumes within its bound,
and no node's resident memory passes the bound.

--quick runs the test suite's sizes (tests/faults/cases.QUICK); --seconds N scales the long
sizes so that the longest fault lasts about N seconds. Prints a summary per case and, last, one
JSON line: cases, passed, failed, double_signs, forks, max_rss_mb, max_resume_s (and details).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).absolute().parent.parent
sys.path.insert(0, str(ROOT))

from tests.faults.cases import CASES, LONG, QUICK, NetHolder, attempts, run_case  # noqa: E402
from tests.faults.devnet import FaultNet  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the test suite's sizes (a few minutes in all)")
    parser.add_argument("--seconds", type=float, help="scale the long sizes so the longest fault lasts about N s")
    parser.add_argument("--cases", help=f"comma-separated, from: {', '.join(CASES)} (default: all)")
    parser.add_argument("--keep", type=Path, help="put the devnets in DIR and keep them (logs) afterwards")
    return parser.parse_args(argv)


def choose_scale(args):
    if args.quick:
        return QUICK
    if args.seconds:
        return LONG.scaled(args.seconds / LONG.vote_flood_s)
    return LONG


def main(argv=None) -> int:
    args = parse_args(argv)
    names = args.cases.split(",") if args.cases else list(CASES)
    unknown = [name for name in names if name not in CASES]
    if unknown:
        print(f"error: unknown case {unknown[0]!r}; choose from {', '.join(CASES)}", file=sys.stderr)
        return 2
    scale = choose_scale(args)
    base = args.keep or Path(tempfile.mkdtemp(prefix="inferchain-faults-"))
    holder = NetHolder(lambda number: FaultNet(base / f"devnet{number}"))
    results = []
    started = time.monotonic()
    print(f"fault suite ({scale.name} sizes), devnets in {base}", flush=True)
    runs = [(name, attempt) for name in names
            for attempt in range(attempts(name, scale))]
    try:
        for name, attempt in runs:
            label = name if attempt == 0 else f"{name}#{attempt + 1}"
            print(f"--- {label} ...", flush=True)
            result = run_case(holder, name, scale)
            results.append((label, result))
            # A failure is printed whole (its traceback and the log tails it quotes), not only its first line.
            print(result.summary() if result.passed else result.details(), flush=True)
    finally:
        holder.close()
    failed = [name for name, result in results if not result.passed]
    resumes = [result.resume_s for _, result in results if result.resume_s is not None]
    print(json.dumps({
        "cases": len(results),
        "passed": len(results) - len(failed),
        "failed": len(failed),
        "double_signs": sum(result.double_signs for _, result in results),
        "forks": sum(result.forks for _, result in results),
        "max_rss_mb": round(max((result.max_rss_mb for _, result in results), default=0.0), 1),
        "max_resume_s": round(max(resumes, default=0.0), 1),
        "failed_cases": failed,
        "scale": scale.name,
        "seconds": round(time.monotonic() - started, 1),
        "per_case": {name: {"passed": result.passed, "resume_s": result.resume_s and round(result.resume_s, 1),
                            "max_rss_mb": round(result.max_rss_mb, 1), "seconds": round(result.seconds, 1)}
                     for name, result in results},
    }), flush=True)
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
