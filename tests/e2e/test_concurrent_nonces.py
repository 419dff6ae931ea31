"""Automatic nonces against concurrent submitters: 8 processes x 200 transfers from one account all land.

Each process has its own client and asks the node for the next nonce before every transfer, so
they keep taking the same nonce; the client must move on to the next free one and resubmit.
"""

from __future__ import annotations

import multiprocessing
import time

from chain.client import NONCE_ATTEMPTS, Client
from chain.crypto import Keypair, dev_keypair
from proto import types_pb2

PROCESSES = 8
TRANSFERS_EACH = 200
FUNDING = 10**15


def _submit_transfers(target: str, seed: bytes, index: int, results) -> None:
    """One submitter process: TRANSFERS_EACH transfers to Bob, with amounts unique to this process."""
    sender = Keypair.from_seed(seed)
    bob = dev_keypair("bob").public_key
    submissions = []
    try:
        with Client(target) as client:
            for number in range(TRANSFERS_EACH):
                # Distinct bytes per process: identical transactions would be one transaction to the node.
                amount = 1_000 + index * TRANSFERS_EACH + number
                submission = client.submit(sender, types_pb2.Transfer(dest=bob, amount=amount))
                submissions.append((submission.hash, submission.nonce, submission.attempts))
        results.put((index, submissions, None))
    except Exception as error:  # reported to the test, which fails with it
        results.put((index, submissions, f"{type(error).__name__}: {error}"))


def _run_submitters(target: str, sender: Keypair) -> list[tuple[bytes, int, int]]:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    processes = [
        context.Process(target=_submit_transfers, args=(target, sender.seed, index, results))
        for index in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    reports = [results.get(timeout=300) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    failures = [f"process {index}: {error}" for index, _, error in reports if error]
    assert not failures, failures
    return [submission for _, submissions, _ in reports for submission in submissions]


def _wait_for_nonce(client: Client, account: Keypair, nonce: int, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = client.account(account).nonce
        if current >= nonce:
            return current
        time.sleep(0.5)
    return client.account(account).nonce


def test_eight_processes_sharing_one_account_land_all_1600_transfers(node_factory):
    node = node_factory("concurrent")
    sender = Keypair.generate()
    with Client(node.target) as client:
        client.transfer(dev_keypair("alice"), sender.public_key, FUNDING, wait=True, timeout=30)
        start_nonce = client.account(sender).nonce
        bob_before = client.account("bob").free

        submissions = _run_submitters(node.target, sender)

        total = PROCESSES * TRANSFERS_EACH
        assert len(submissions) == total
        assert len({transaction_hash for transaction_hash, _, _ in submissions}) == total
        assert sorted(nonce for _, nonce, _ in submissions) == list(range(start_nonce, start_nonce + total))
        assert max(attempts for _, _, attempts in submissions) < NONCE_ATTEMPTS
        assert _wait_for_nonce(client, sender, start_nonce + total) == start_nonce + total
        for transaction_hash, _, _ in submissions[:: TRANSFERS_EACH // 4]:
            status = client.transaction(transaction_hash)
            assert status.included and status.receipt.success, status
        moved = sum(1_000 + index for index in range(total))
        assert client.account("bob").free == bob_before + moved
