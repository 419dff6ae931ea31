"""Building, signing and submitting the executor's two transactions: CommitResult and RevealResult.

The commitment is blake2b-256(b"inferchain/commit/v2" || job id || executor || salt || output
digest || log-probabilities digest), with the output digest of inference.result and the
log-probabilities digest of proto/digest.py (runtime/jobs recomputes all three from the reveal,
so the log-probabilities revealed are the ones committed). Nonces come from the node's
next_nonce; when another submitter from the same account takes one first, the client moves on to
the next (chain/client/client.py).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Callable

from chain.client import Client, ClientError, Submission, TransactionStatus
from chain.crypto import Keypair
from chain.worker.journal import SALT_BYTES, JournalEntry
from inference.result import InferenceResult
from proto import types_pb2
from proto.digest import logprobs_digest
from runtime import jobs

log = logging.getLogger("inferchain.worker")

# Blocks a submitted transaction may stay out of every block before its status is looked up (and, when the
# node dropped it, it is sent again).
RESEND_AFTER_BLOCKS = 3


@dataclass
class Sent:
    """A transaction submitted (a job's commit or reveal, a vote), and whether it is in a block."""

    transaction_hash: bytes
    head: int  # the head height when it was submitted
    included: bool = False


def resend_due(sent: Sent | None, head: int, lookup: Callable[[bytes], TransactionStatus], what: str) -> bool:
    """Whether to send a transaction (again): never sent, or sent RESEND_AFTER_BLOCKS ago and dropped by the node
    (`lookup` reads its status; a failed lookup waits for the next block). `what` names it in the log."""
    if sent is None:
        return True
    if sent.included or head - sent.head < RESEND_AFTER_BLOCKS:
        return False
    try:
        status = lookup(sent.transaction_hash)
    except ClientError as error:
        log.warning("cannot look up transaction %s: %s", sent.transaction_hash.hex(), error.message)
        return False
    if status.status == "pending":
        return False
    if status.status == "included":
        sent.included = True
        return False
    log.warning("the %s was dropped (%s); sending it again", what, status.reason or status.status)
    return True


def new_salt() -> bytes:
    """32 random bytes that hide a result inside its commitment until the reveal."""
    return secrets.token_bytes(SALT_BYTES)


def commitment(job_id: bytes, executor: bytes, salt: bytes, result: InferenceResult) -> bytes:
    """What CommitResult carries for this result."""
    return jobs.commitment(job_id, executor, salt, result.output_digest(), logprobs_digest(result.logprobs_micronats))


def commit_call(entry: JournalEntry, executor: bytes) -> types_pb2.CommitResult:
    return types_pb2.CommitResult(
        job_id=entry.job_id, commitment=commitment(entry.job_id, executor, entry.salt, entry.result)
    )


def reveal_call(entry: JournalEntry) -> types_pb2.RevealResult:
    result = entry.result
    return types_pb2.RevealResult(
        job_id=entry.job_id,
        salt=entry.salt,
        prompt_tokens=result.prompt_tokens,
        tokens=result.tokens,
        text=result.text,
        logprobs_micronats=result.logprobs_micronats,
        stop_reason=result.stop_reason,
    )


class Submitter:
    """Signs the executor's calls with its key and submits them to the node (ClientError on refusal)."""

    def __init__(self, client: Client, keypair: Keypair):
        self.client = client
        self.keypair = keypair

    @property
    def executor(self) -> bytes:
        return self.keypair.public_key

    def commit(self, entry: JournalEntry) -> Submission:
        return self.client.submit(self.keypair, commit_call(entry, self.executor))

    def reveal(self, entry: JournalEntry) -> Submission:
        return self.client.submit(self.keypair, reveal_call(entry))
