"""Transfers per second through a dev node, against this machine's Ed25519 verification rate.

    .venv/bin/python bench/transfers.py [--seconds 20 | --quick] [--node HOST:PORT]

1. Measure single-thread Ed25519 verifications per second (cryptography), before any load.
2. Start `inferchain node --dev --tmp` on a free port (unless --node names one).
3. Fund fresh sender accounts from the six dev accounts, then pre-sign every transfer.
4. Client threads submit them in batches (SubmitTransactions) for the window; a subscriber
   counts the transactions INCLUDED in blocks (from the blocks, never from submissions).
5. Print a summary, then one JSON line: tx_per_s, verify_per_s, ratio (and details).

The rate is included transactions between the last block before the window and the last block
inside it, divided by the header time between those two blocks. The node's own log lines
("produced #N with K transactions in M ms") give where its time goes per block.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey  # noqa: E402

from chain.client import Client, ClientError  # noqa: E402
from chain.crypto import DEV_ACCOUNT_NAMES, Keypair, dev_keypair  # noqa: E402
from chain.transactions import sign_transaction, transfer_call  # noqa: E402
from runtime.executive import TRANSACTION_SIGNING_CONTEXT  # noqa: E402
from tests.nodes import free_port, wait_serving  # noqa: E402

FUNDING = 10**15
# The pool refuses a nonce more than 1,000 ahead of the account's; more senders keep each gap small.
DEFAULT_SENDERS = 120
# Submitted but not yet included, across all senders: enough to fill several blocks, far below
# the pool's 50,000.
DEFAULT_WINDOW = 24_000
PRODUCED = re.compile(r"produced #(\d+) \(\w+\) with (\d+) transactions in (\d+) ms")


# --- the baseline -------------------------------------------------------------------


def measure_verify_per_s(seconds: float = 2.0) -> float:
    """Single-thread Ed25519 verifications per second of a real transfer's signed bytes (best of 4)."""
    keypair = dev_keypair("alice")
    signed = sign_transaction(
        keypair, chain_id="inferchain-dev", genesis_hash=bytes(32), nonce=7,
        call=transfer_call(dev_keypair("bob").public_key, 1), fee=3_000,
    )
    from proto import types_pb2

    transaction = types_pb2.Transaction.FromString(signed.raw)
    message = TRANSACTION_SIGNING_CONTEXT + transaction.body
    public_key = Ed25519PublicKey.from_public_bytes(keypair.public_key)
    best = 0.0
    for _ in range(4):
        count = 0
        started = time.perf_counter()
        deadline = started + seconds / 4
        while time.perf_counter() < deadline:
            for _ in range(100):
                public_key.verify(transaction.signature, message)
            count += 100
        best = max(best, count / (time.perf_counter() - started))
    return best


# --- the node -----------------------------------------------------------------------


@dataclass
class StartedNode:
    process: subprocess.Popen
    target: str
    log_path: Path
    base: tempfile.TemporaryDirectory

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.base.cleanup()

    def produced_lines(self) -> list[tuple[int, int, int]]:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return [tuple(map(int, match.groups())) for match in PRODUCED.finditer(text)]


def start_node() -> StartedNode:
    base = tempfile.TemporaryDirectory(prefix="inferchain-bench-")
    port = free_port()
    log_path = Path(base.name) / "node.log"
    command = [
        sys.executable, "-m", "chain.cli", "node", "--dev", "--tmp",
        "--rpc-port", str(port), "--no-prometheus",
    ]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)},
        )
    node = StartedNode(process, f"127.0.0.1:{port}", log_path, base)
    try:
        wait_serving(node.target, timeout=60, process=process)
    except Exception:
        node.stop()
        raise
    return node


# --- accounts and transactions --------------------------------------------------------


def fund_senders(client: Client, count: int) -> list[Keypair]:
    """Fresh accounts, each funded by one of the six dev accounts, all in one or two blocks."""
    senders = [Keypair.generate() for _ in range(count)]
    fund(client, senders, FUNDING)
    return senders


def fund(client: Client, senders: list[Keypair], amount: int) -> None:
    """Send `amount` to each of `senders` from the six dev accounts in turn, all in one or two blocks."""
    funders = [dev_keypair(name) for name in DEV_ACCOUNT_NAMES]
    nonces = {funder.public_key: client.next_nonce(funder) for funder in funders}
    raws = []
    for index, sender in enumerate(senders):
        funder = funders[index % len(funders)]
        nonce = nonces[funder.public_key]
        nonces[funder.public_key] += 1
        raws.append(client.sign_transfer(funder, sender.public_key, amount, nonce=nonce).raw)
    verdicts = client.submit_many(raws)
    refused = [verdict for verdict in verdicts if not verdict.accepted]
    if refused:
        raise SystemExit(f"funding refused: {refused[0].code} {refused[0].reason}")
    for verdict in verdicts[-len(funders):]:
        client.wait_for_inclusion(verdict.hash, timeout=60)


def presign(client: Client, senders: list[Keypair], per_sender: int) -> list[deque[bytes]]:
    """Every sender's transfers, nonces 0.., to the dev accounts (which exist: no deposit rule)."""
    info = client.chain_info()
    dests = [dev_keypair(name).public_key for name in DEV_ACCOUNT_NAMES]
    queues = []
    for index, sender in enumerate(senders):
        queue = deque()
        for nonce in range(per_sender):
            queue.append(
                sign_transaction(
                    sender, chain_id=info.chain_id, genesis_hash=info.genesis_hash, nonce=nonce,
                    call=transfer_call(dests[(index + nonce) % len(dests)], 1), fee_rule=info.fee_rule,
                ).raw
            )
        queues.append(queue)
    return queues


# --- load and counting ------------------------------------------------------------------


@dataclass
class Load:
    """Shared between submitter threads and the block counter."""

    window: int
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    accepted: int = 0
    included_total: int = 0
    rejected: Counter = field(default_factory=Counter)
    calls: int = 0
    call_seconds: float = 0.0
    drained_at: float = 0.0  # when a submitter ran out of pre-signed transactions

    def in_flight(self) -> int:
        return self.accepted - self.included_total


def submitter(target: str, queues: list[deque[bytes]], load: Load, batch: int) -> None:
    """Submit the heads of this thread's sender queues, round robin, keeping each sender's order."""
    per_sender = max(1, batch // max(1, len(queues)))
    with Client(target, timeout=60) as client:
        while not load.stop.is_set():
            if load.in_flight() > load.window:
                time.sleep(0.01)
                continue
            taken: list[tuple[int, list[bytes]]] = []
            for index, queue in enumerate(queues):
                chunk = [queue.popleft() for _ in range(min(per_sender, len(queue)))]
                if chunk:
                    taken.append((index, chunk))
            if not taken:
                with load.lock:
                    load.drained_at = load.drained_at or time.time()
                return
            raws = [raw for _, chunk in taken for raw in chunk]
            started = time.perf_counter()
            try:
                verdicts = client.submit_many(raws, chunk=len(raws))
            except ClientError as error:
                load.rejected[f"call {error.code}"] += len(raws)
                _requeue(queues, taken, [False] * len(raws))
                time.sleep(0.05)
                continue
            elapsed = time.perf_counter() - started
            accepted = [verdict.accepted or verdict.code == "ALREADY_EXISTS" for verdict in verdicts]
            _requeue(queues, taken, accepted)
            with load.lock:
                load.calls += 1
                load.call_seconds += elapsed
                load.accepted += sum(accepted)
                for verdict, ok in zip(verdicts, accepted):
                    if not ok:
                        load.rejected[f"{verdict.code}: {_reason_kind(verdict.reason)}"] += 1
            if not all(accepted):
                time.sleep(0.02)


def _requeue(queues, taken, accepted) -> None:
    """Put back, in order at the front, each sender's first refused transaction and those after it."""
    position = 0
    for index, chunk in taken:
        flags = accepted[position : position + len(chunk)]
        position += len(chunk)
        if all(flags):
            continue
        first = flags.index(False)
        queues[index].extendleft(reversed(chunk[first:]))


def _reason_kind(reason: str) -> str:
    return re.sub(r"\d+", "N", reason)[:80]


@dataclass(frozen=True)
class SeenBlock:
    height: int
    time_ms: int
    transactions: int
    arrived: float


def count_blocks(target: str, from_height: int, load: Load, seen: list[SeenBlock], done: threading.Event) -> None:
    """Record every block from `from_height` on, with its included transaction count."""
    with Client(target, timeout=60) as client:
        stream = client.subscribe_blocks(from_height=from_height)
        try:
            for block in stream:
                seen.append(SeenBlock(block.height, block.time_ms, len(block.transactions), time.monotonic()))
                with load.lock:
                    load.included_total += len(block.transactions)
                if done.is_set():
                    return
        except ClientError:
            return
        finally:
            stream.close()


def included_rate(seen: list[SeenBlock], window_start_ms: int, window_end_ms: int) -> tuple[float, int, float]:
    """(transactions per second, transactions, seconds) between the last block before the window and the last in it."""
    before = [block for block in seen if block.time_ms <= window_start_ms]
    inside = [block for block in seen if window_start_ms < block.time_ms <= window_end_ms]
    if not before or not inside:
        return 0.0, 0, 0.0
    first, last = before[-1], inside[-1]
    count = sum(block.transactions for block in inside)
    seconds = (last.time_ms - first.time_ms) / 1000
    return (count / seconds if seconds > 0 else 0.0), count, seconds


# --- main ----------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--node", help="use this running node (HOST:PORT) instead of starting a --dev --tmp one")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the measured window (default 20)")
    parser.add_argument("--quick", action="store_true", help="a 5-second window and fewer transactions")
    parser.add_argument("--threads", type=int, default=4, help="client threads submitting (default 4)")
    parser.add_argument("--senders", type=int, default=DEFAULT_SENDERS, help=f"funded sender accounts (default {DEFAULT_SENDERS})")
    parser.add_argument("--batch", type=int, default=500, help="transactions per SubmitTransactions call (default 500)")
    parser.add_argument("--max-rate", type=int, default=None,
                        help="pre-sign enough for this many tx/s over the window (default 1.5 x verify_per_s)")
    parser.add_argument("--window", type=int, default=DEFAULT_WINDOW, help="most transactions submitted but not included")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds = 5.0
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    print("measuring single-thread Ed25519 verification ...", flush=True)
    verify_per_s = measure_verify_per_s()
    print(f"  {verify_per_s:,.0f} verifications/s (cryptography {_cryptography_version()})", flush=True)

    node = None
    target = args.node
    if target is None:
        print("starting inferchain node --dev --tmp ...", flush=True)
        node = start_node()
        target = node.target
    try:
        return run(args, target, verify_per_s, node)
    finally:
        if node is not None:
            node.stop()


def run(args, target: str, verify_per_s: float, node: StartedNode | None) -> int:
    with Client(target, timeout=60) as client:
        print(f"funding {args.senders} senders from the dev accounts ...", flush=True)
        senders = fund_senders(client, args.senders)
        # Headroom over the window: submission must not run dry before the window closes.
        max_rate = args.max_rate or int(1.5 * verify_per_s)
        per_sender = int(max_rate * (args.seconds + 3) / args.senders) + 1
        started = time.perf_counter()
        queues = presign(client, senders, per_sender)
        signing_s = time.perf_counter() - started
        total = per_sender * args.senders
        print(f"pre-signed {total:,} transfers in {signing_s:.1f} s ({total / signing_s:,.0f}/s)", flush=True)
        start_height = client.chain_info().best_height

    load = Load(window=args.window)
    seen: list[SeenBlock] = []
    done = threading.Event()
    counter = threading.Thread(target=count_blocks, args=(target, start_height, load, seen, done), daemon=True)
    counter.start()
    threads = [
        threading.Thread(target=submitter, args=(target, queues[i :: args.threads], load, args.batch), daemon=True)
        for i in range(args.threads)
    ]
    print(f"submitting with {args.threads} threads for {args.seconds:g} s ...", flush=True)
    window_start_ms = int(time.time() * 1000)
    for thread in threads:
        thread.start()
    time.sleep(args.seconds)
    window_end_ms = int(time.time() * 1000)
    load.stop.set()
    for thread in threads:
        thread.join(timeout=30)
    # Let the block that closes the window arrive.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not any(block.time_ms > window_end_ms for block in seen):
        time.sleep(0.1)
    done.set()

    tx_per_s, included, seconds = included_rate(seen, window_start_ms, window_end_ms)
    report(args, verify_per_s, tx_per_s, included, seconds, load, seen, window_start_ms, window_end_ms, node)
    return 0


def report(args, verify_per_s, tx_per_s, included, seconds, load, seen, start_ms, end_ms, node) -> None:
    inside = [block for block in seen if start_ms < block.time_ms <= end_ms]
    ratio = tx_per_s / verify_per_s if verify_per_s else 0.0
    submitted_per_s = load.accepted / args.seconds
    mean_call_ms = 1000 * load.call_seconds / load.calls if load.calls else 0.0
    print()
    print(f"window                 {args.seconds:g} s, {len(inside)} blocks, {seconds:.2f} s of block time")
    print(f"included               {included:,} transactions ({tx_per_s:,.0f}/s)")
    print(f"accepted by the node   {load.accepted:,} ({submitted_per_s:,.0f}/s), {load.calls} calls, "
          f"mean {mean_call_ms:.0f} ms per call")
    if inside:
        sizes = [block.transactions for block in inside]
        print(f"per block              min {min(sizes):,}, max {max(sizes):,}")
    for reason, count in load.rejected.most_common(5):
        print(f"refused                {count:,} x {reason}")
    production = _production(node, {block.height for block in inside})
    if production and seconds:
        blocks, transactions, milliseconds = production
        per_tx_us = 1000 * milliseconds / transactions if transactions else 0.0
        print(f"node block production  {milliseconds:,} ms for {transactions:,} tx in {blocks} blocks "
              f"({per_tx_us:.0f} us per tx; {milliseconds / (1000 * seconds):.0%} of the window)")
    if load.drained_at and load.drained_at * 1000 < end_ms:
        print(f"WARNING                pre-signed transactions ran out {end_ms / 1000 - load.drained_at:.1f} s "
              "before the window closed: the rate is a lower bound (raise --max-rate)")
    print(f"verify (1 thread)      {verify_per_s:,.0f}/s")
    print(f"ratio                  {ratio:.3f} (goal >= 0.5)")
    print(json.dumps({
        "tx_per_s": round(tx_per_s, 1),
        "verify_per_s": round(verify_per_s, 1),
        "ratio": round(ratio, 4),
        "included": included,
        "window_s": round(seconds, 3),
        "accepted_per_s": round(submitted_per_s, 1),
        "threads": args.threads,
        "senders": args.senders,
        "cpus": os.cpu_count(),
        "ran_dry": bool(load.drained_at and load.drained_at * 1000 < end_ms),
    }))


def _production(node: StartedNode | None, heights: set[int]):
    if node is None:
        return None
    lines = [line for line in node.produced_lines() if line[0] in heights]
    if not lines:
        return None
    return len(lines), sum(line[1] for line in lines), sum(line[2] for line in lines)


def _cryptography_version() -> str:
    import cryptography

    return cryptography.__version__


if __name__ == "__main__":
    sys.exit(main())
