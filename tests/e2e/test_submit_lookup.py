"""An accepted transaction is findable from the moment SubmitTransaction returns (issue 29: a lookup once
answered NOT_FOUND, "neither pending nor included", for a transaction that was being included)."""

from __future__ import annotations

import threading

from chain.client import Client
from chain.crypto import dev_keypair
from proto import types_pb2

SENDERS = ("bob", "charlie", "dave", "eve")
TRANSFERS_EACH = 60


def test_every_accepted_transaction_is_pending_or_included_when_looked_up_at_once(dev_node):
    unknown: list[str] = []
    errors: list[str] = []
    ferdie = dev_keypair("ferdie").public_key

    def submit_then_get(name: str) -> None:
        sender = dev_keypair(name)
        try:
            with Client(dev_node.target) as client:
                for number in range(TRANSFERS_EACH):
                    sent = client.submit(sender, types_pb2.Transfer(dest=ferdie, amount=1_000 + number))
                    status = client.transaction(sent.hash)
                    if status.status not in ("pending", "included"):
                        unknown.append(f"{name} #{number}: {status.status}")
        except Exception as error:  # reported by the test below
            errors.append(f"{name}: {type(error).__name__}: {error}")

    threads = [threading.Thread(target=submit_then_get, args=(name,)) for name in SENDERS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    assert not unknown, unknown
