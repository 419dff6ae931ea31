"""The Python client of a node (`chain.client`): connect, sign, submit, wait, query, subscribe.

    from chain.client import Client
    from chain.crypto import dev_keypair
    from proto import types_pb2

    with Client("127.0.0.1:9944") as client:
        alice = dev_keypair("alice")
        result = client.transfer(alice, "bob", 5_000_000, wait=True)
        print(result.inclusion.height, result.receipt.success, client.account("bob").free)
        # Any call the runtime knows, by its protobuf message: one path, one Submission type.
        client.submit(alice, types_pb2.Transfer(dest=client.account("bob").public_key, amount=1))
        # An inference job, followed until it is final (chain/client/jobs.py).
        job = client.post_job(dev_keypair("bob"), "Name three colours.", model=model_id, max_tokens=32)
        print(job.status, job.result.text if job.settled else job.job.reason)

`submit` pays the minimum fee for the size and takes the sender's next free nonce, moving on to
the next one when another submitter from the same account takes it first; its Submission carries
the node's admission verdict (`dry_run`: the call applied alone to the latest state, with its
events; a call that would fail is refused, at no fee), so nothing needs simulating first. `dry_run`
says what a call would do without submitting it.

Accounts are accepted everywhere as a dev name (alice, bob, ... any case), an SS58 address, a
64-character hex public key, a key file, a Keypair or 32 raw bytes (chain.keys).

The client trusts the node for nothing it can check (chain/client/verification.py). Every failure
is a ClientError carrying the gRPC status code name (`code`) and a readable message.

The parts: errors.py (what is raised), results.py (what is returned), calls.py (what is signed),
verification.py (checking the node's answers), parsing.py (transaction bytes and hashes from
callers), jobs.py (the inference market's requests), disputes.py (disputes and slashes), client.py
(the Client).
"""

from chain.client.calls import AccountLike
from chain.client.client import DEFAULT_TIMEOUT_S, DEFAULT_WAIT_S, NONCE_ATTEMPTS, SUBMIT_CHUNK, Client
from chain.client.disputes import DisputePage, dispute_status_name, reason_name, verdict_name
from chain.client.errors import DEFAULT_TARGET, ClientError, InclusionTimeout, ProofError, TransactionRejected
from chain.client.jobs import Executor, JobPage, JobTimeout, JobView, ModelRegistry, answer_of, job_id_of, status_name
from chain.client.parsing import decode_hash, describe_transaction
from chain.client.results import (
    Account,
    Block,
    ChainInfo,
    Event,
    Receipt,
    Simulation,
    Submission,
    TransactionStatus,
    TransactionSummary,
    Verdict,
)

__all__ = [
    "DEFAULT_TARGET",
    "DEFAULT_TIMEOUT_S",
    "DEFAULT_WAIT_S",
    "NONCE_ATTEMPTS",
    "SUBMIT_CHUNK",
    "Account",
    "AccountLike",
    "Block",
    "ChainInfo",
    "Client",
    "ClientError",
    "DisputePage",
    "Event",
    "Executor",
    "InclusionTimeout",
    "JobPage",
    "JobTimeout",
    "JobView",
    "ModelRegistry",
    "ProofError",
    "Receipt",
    "Simulation",
    "Submission",
    "TransactionRejected",
    "TransactionStatus",
    "TransactionSummary",
    "Verdict",
    "answer_of",
    "decode_hash",
    "describe_transaction",
    "dispute_status_name",
    "job_id_of",
    "reason_name",
    "status_name",
    "verdict_name",
]
