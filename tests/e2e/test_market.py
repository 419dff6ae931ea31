"""The market end to end: a dev chain, standalone workers for Alice, Bob and Charlie, the real model.

Bob and Charlie bond and offer through the CLI; Dave posts jobs with `inferchain job submit`. A job
with redundancy 3 settles with the text `inferchain infer` gives for the same job locally, the
poster's balance drops by exactly what the executors, the protocol and the fee took, the same job
gives the same output every time, and `inferchain verify` re-checks the job's JSON from the chain.
Each worker runs llama.cpp on one thread, so three at once share the two cores without spinning.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chain.client import Client
from chain.crypto import dev_keypair
from chain.genesis import DEV_PRICE_PER_TOKEN
from inference.registration import EMBEDDED_MODEL_ID
from proto import state_pb2
from runtime import jobs
from runtime.jobs.pricing import charge
from tests.commands import ROOT, inferchain
from tests.gateway.serving import WORKER_READY
from tests.nodes import NodeProcess, free_port, market_genesis

# Windows short enough that a dead worker's slot moves on within seconds (0.5 s blocks).
# A challenge window longer than the module runs, so every payment is still held when it is read.
JOBS_PARAMS = {"commit_blocks": "6", "min_tokens_per_block": "20", "reveal_blocks": "6", "job_timeout_blocks": "30",
               "challenge_window_blocks": "400"}
BOND = str(3 * 10**17)
PRICES = {"bob": 2 * DEV_PRICE_PER_TOKEN, "charlie": 3 * DEV_PRICE_PER_TOKEN}
PROMPT = "Name three colours of the rainbow."


def run_cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return inferchain(*args, timeout=timeout)


class Worker:
    """A standalone `inferchain worker` process for one dev account. It posts no sealed probes: these tests count
    every unit the executors and the poster pay and receive (probes: tests/worker/test_prober.py)."""

    def __init__(self, name: str, target: str, base: Path, *extra: str):
        self.name = name
        self.log_path = base / f"worker-{name}.log"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "chain.cli", "worker", "--node", target, "--key", name, "--threads", "1",
             "--no-probes", "--base-path", str(base / f"worker-{name}"), *extra],
            cwd=ROOT, stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )

    def wait_ready(self, timeout: float = 180.0) -> None:
        """Until the worker has loaded its model and follows its assignments (a job posted before would be missed
        by a worker still loading, and with redundancy 3 nobody else can take its slot)."""
        deadline = time.monotonic() + timeout
        while WORKER_READY not in self.log_path.read_text(errors="replace"):
            assert self.process.poll() is None, f"worker {self.name} exited: {self.log_path.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"worker {self.name} not ready within {timeout} s"
            time.sleep(0.2)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    """A node on the dev genesis (0.5 s blocks, short job windows) and workers for Alice, Bob and Charlie;
    Charlie's generates in a batched engine (--batch-jobs), so a redundant job settles only if its result agrees
    digest for digest with the one-job engines'."""
    base = tmp_path_factory.mktemp("market")
    genesis = market_genesis(base / "genesis.json", 500, **JOBS_PARAMS)
    node = NodeProcess(base / "node", free_port(), ("--chain", str(genesis), "--key", "alice")).start()
    target = node.target
    for name, price in PRICES.items():
        bonded = run_cli("tx", "bond", "--amount", BOND, "--from", name, "--node", target)
        assert bonded.returncode == 0, bonded.stderr
        offered = run_cli("tx", "offer", "--model", EMBEDDED_MODEL_ID, "--price", str(price), "--capacity", "1",
                          "--from", name, "--node", target)
        assert offered.returncode == 0, offered.stderr
    workers = {name: Worker(name, target, base, *(("--batch-jobs", "2") if name == "charlie" else ()))
               for name in ("alice", "bob", "charlie")}
    for worker in workers.values():
        worker.wait_ready()
    yield node, workers, base
    for worker in workers.values():
        worker.kill()
    node.kill()


def submit(target: str, *extra: str) -> dict:
    result = run_cli("job", "submit", PROMPT, "--max-tokens", "24", "--from", "dave", "--node", target, "--wait",
                     "--output", "json", *extra)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def local(*extra: str) -> dict:
    result = run_cli("infer", PROMPT, "--max-tokens", "24", "--threads", "1", "--output", "json", *extra)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


SAMPLINGS = {
    "greedy": (),
    "sampled": ("--temperature", "0.8", "--top-k", "40", "--top-p", "0.95", "--seed", "11"),
}


@pytest.mark.parametrize("sampling", SAMPLINGS)
def test_a_job_with_redundancy_three_settles_with_the_local_output_and_exact_payments(market, sampling):
    node, _workers, base = market
    dave = dev_keypair("dave").public_key
    with Client(node.target) as client:
        before = client.account(dave)
        executors_before = {name: client.account(dev_keypair(name).public_key) for name in ("alice", "bob", "charlie")}
    job = submit(node.target, "--redundancy", "3", *SAMPLINGS[sampling])
    assert job["status"] == "settled", job
    # The same job: its id seeds the sampler, so the local run is told the chain's id.
    expected = local(*SAMPLINGS[sampling], "--job-id", job["job_id"])
    assert (job["text"], job["tokens"]) == (expected["text"], expected["tokens"])
    paid = [slot for slot in job["executors"] if int(slot["payment"])]
    assert len(paid) == 3 and len({slot["account"] for slot in paid}) == 3

    with Client(node.target) as client:
        after = client.account(dave)
        post = client.transaction(bytes.fromhex(job["transaction_hash"])) if "transaction_hash" in job else None
        executors_after = {name: client.account(dev_keypair(name).public_key) for name in ("alice", "bob", "charlie")}
    # Each executor is paid its output tokens and the prompt tokens it evaluated, a prompt token at
    # prompt_price_ppm of its price (genesis.json keeps the default); the 1% fees exceed the minimum here.
    gross = sum(charge(int(slot["price_per_token"]), job["prompt_tokens"], len(job["tokens"]), jobs.Params().prompt_price_ppm)
                for slot in paid)
    assert int(job["cost"]) == gross
    assert sum(int(slot["payment"]) for slot in paid) + int(job["protocol_fee"]) == gross
    deposit = int(job["storage_deposit"])
    fee = before.free - after.free - gross - deposit
    # Only the storage deposit stays reserved, until the record is pruned a challenge window later.
    # (Dave's earlier jobs in this module may still hold theirs: `before` counts them.)
    assert after.reserved - before.reserved == deposit > 0
    assert 0 < fee < 10**9, "the poster paid the executors, the protocol and one transaction fee, nothing else"
    if post is not None:
        assert post.receipt.fee_paid == fee
    for slot in paid:
        name = next(n for n in executors_before if dev_keypair(n).public_key.hex() == slot["account"])
        # Held, not yet free: the payment sits in the executor's reserved balance during the challenge window.
        held = executors_after[name].reserved - executors_before[name].reserved
        assert held == int(slot["payment"])
        if name != "alice":  # Alice also authors the blocks and earns their fees
            # Free balance only paid the commit and reveal fees: the payment is not free yet.
            assert 0 < executors_before[name].free - executors_after[name].free < 10**6


def test_the_same_job_gives_the_same_output_every_time(market):
    # A greedy job depends on nothing but its request; a sampled one also on its id (the sampler's
    # seed), which is fixed by the chain, poster and nonce, and checked against a local run above.
    node, _workers, _base = market
    first = submit(node.target, "--redundancy", "2")
    second = submit(node.target, "--redundancy", "2")
    assert first["status"] == second["status"] == "settled"
    assert first["job_id"] != second["job_id"]
    assert (first["text"], first["tokens"]) == (second["text"], second["tokens"])


def test_verify_rechecks_a_settled_job_from_the_chain(market, tmp_path):
    node, _workers, _base = market
    job = submit(node.target)
    status = run_cli("job", "status", job["job_id"], "--node", node.target, "--output", "json")
    assert status.returncode == 0, status.stderr
    path = tmp_path / "job.json"
    path.write_text(status.stdout)
    verdict = run_cli("verify", str(path), "--node", node.target, "--threads", "1")
    assert verdict.returncode == 0, verdict.stdout + verdict.stderr
    assert "valid" in verdict.stdout and "registered on the chain" in verdict.stdout


def test_a_worker_killed_mid_job_leaves_the_job_reassigned_or_refunded_never_lost(market):
    node, workers, _base = market
    dave = dev_keypair("dave").public_key
    with Client(node.target) as client:
        before = client.account(dave)
        view = client.post_job(dev_keypair("dave"), "Write a long story about a lighthouse keeper.",
                               model=bytes.fromhex(EMBEDDED_MODEL_ID), max_tokens=200, max_price_per_token=PRICES["charlie"],
                               wait=False)
        posted = view.job
        # Drawn two blocks after its inclusion (docs/protocol.md, "Assignment").
        view = next(seen for seen in client.watch_job(view.id, timeout=60) if seen.job.assignments)
        victim = next(name for name in workers if dev_keypair(name).public_key == view.job.assignments[0].executor)
        time.sleep(1.0)  # it has started generating
        workers[victim].kill()
        final = None
        for final in client.watch_job(view.id, timeout=120):
            pass
        assert final is not None and final.final, "the job never reached a final status"
        victim_slot = next(slot for slot in final.job.assignments if slot.executor == dev_keypair(victim).public_key)
        assert victim_slot.status == state_pb2.ASSIGNMENT_STATUS_MISSED and victim_slot.payment == 0
        after = client.account(dave)
    if final.status == "settled":
        assert len(final.job.assignments) >= 2, "a settled job went to another executor"
    else:
        # The whole escrow comes back, less the queue fee if the job had to wait for a free executor.
        assert final.status == "expired" and final.job.refunded in (posted.escrow, posted.escrow - posted.queue_fee)
    # Nothing stays reserved but the job record's storage deposit, returned when it is pruned.
    assert after.reserved == before.reserved + final.job.storage_deposit
