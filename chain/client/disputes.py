"""Disputes and slashes in the client: a job's dispute, pages of disputes (open ones, a member's duties), slashes.

    with Client("127.0.0.1:9944") as client:
        dispute = client.dispute(job_id)          # NOT_FOUND when the job has none
        print(reason_name(dispute.reason), dispute_status_name(dispute.status), verdict_names(dispute))
        for dispute in client.disputes(member="alice").disputes:   # what Alice must still vote on
            ...
        for slash in client.slashes("bob"):        # newest first
            print(slash.offence, slash.amount)

A dispute's id is its job's id (a job has at most one dispute). What the client can check it does: the
dispute sent is the one asked for, a page holds only disputes that match its filters, in id order after
`after`, and slashes are of the account asked for, newest first.
"""

from __future__ import annotations

from dataclasses import dataclass

from chain.client.calls import AccountLike, account_public_key
from chain.client.errors import ClientError, ProofError
from proto import node_pb2, state_pb2

ID_BYTES = 32
# ListDisputes and GetSlashes answer at most this many; 0 asks for this many (proto/node.proto).
MAX_PAGE = 100


@dataclass(frozen=True)
class DisputePage:
    """Disputes in id order; `more` when disputes follow the last one (pass its id as `after`)."""

    disputes: tuple[state_pb2.Dispute, ...]
    more: bool


def reason_name(reason: int) -> str:
    """"digests", "quorum", "audit" or "challenge" (the number for a value this client does not know)."""
    return _enum_name(state_pb2.DisputeReason, reason, "DISPUTE_REASON_")


def dispute_status_name(status: int) -> str:
    """"committing", "revealing" or "decided"."""
    return _enum_name(state_pb2.DisputeStatus, status, "DISPUTE_STATUS_")


def verdict_name(verdict: int) -> str:
    """"valid", "invalid", "none" (no verdict could be given) or "unspecified" (never judged)."""
    return _enum_name(state_pb2.CandidateVerdict, verdict, "CANDIDATE_VERDICT_")


def _enum_name(enum, value: int, prefix: str) -> str:
    try:
        return enum.Name(value).removeprefix(prefix).lower()
    except ValueError:
        return str(value)


def is_open(dispute: state_pb2.Dispute | None) -> bool:
    """Whether a dispute still waits for its verdict (None: no dispute)."""
    return dispute is not None and dispute.status != state_pb2.DISPUTE_STATUS_DECIDED


class DisputeCalls:
    """The disputes' requests; mixed into Client, which provides the connection."""

    _stub: object

    def dispute(self, job_id: bytes) -> state_pb2.Dispute:
        """The dispute of a job (its id is the job's); ClientError NOT_FOUND when the job has none."""
        reply = self._call(self._stub.GetDispute, node_pb2.GetDisputeRequest(dispute=_checked_id(job_id, "a job id")))
        if reply.id != job_id:
            raise ProofError(f"asked for the dispute of job {job_id.hex()}, the node sent dispute {reply.id.hex()}")
        return reply

    def disputes(self, *, after: bytes = b"", limit: int = 0, open: bool = False,
                 member: AccountLike | None = None) -> DisputePage:
        """Disputes by id after `after` (limit 1-100, 0: 100); only open ones with `open`; with `member`, the
        open disputes that still wait for that account's vote commitment or reveal."""
        request = node_pb2.ListDisputesRequest(
            after=_checked_id(after, "after") if after else b"", limit=_checked_limit(limit), open=bool(open),
            member=account_public_key(member) if member is not None else b"",
        )
        reply = self._call(self._stub.ListDisputes, request)
        check_dispute_page(request, reply)
        return DisputePage(tuple(reply.disputes), reply.more)

    def slashes(self, account: AccountLike | None = None, limit: int = 0) -> tuple[state_pb2.SlashRecord, ...]:
        """Slashes newest first, of `account` (every account when None); limit 1-100 (0: 100)."""
        request = node_pb2.GetSlashesRequest(account=account_public_key(account) if account is not None else b"",
                                             limit=_checked_limit(limit))
        reply = self._call(self._stub.GetSlashes, request)
        check_slashes(request, reply)
        return tuple(reply.slashes)


# --- checking what the node sends ----------------------------------------------------


def check_dispute_page(request: node_pb2.ListDisputesRequest, reply: state_pb2.DisputeList) -> None:
    """Every dispute listed matches the filters, in id order after `after`; ProofError otherwise."""
    if len(reply.disputes) > (request.limit or MAX_PAGE):
        raise ProofError(f"the node listed {len(reply.disputes)} disputes for a page of {request.limit or MAX_PAGE}")
    previous = request.after
    for dispute in reply.disputes:
        if dispute.id <= previous:
            raise ProofError("the node's dispute listing is not in id order after the id asked for")
        if (request.open or request.member) and not is_open(dispute):
            raise ProofError(f"the node listed dispute {dispute.id.hex()}, decided, among open disputes")
        if request.member and request.member not in (member.account for member in dispute.committee):
            raise ProofError(f"the node listed dispute {dispute.id.hex()}, whose committee lacks the member asked for")
        previous = dispute.id


def check_slashes(request: node_pb2.GetSlashesRequest, reply: state_pb2.SlashList) -> None:
    """Every slash is of the account asked for, newest first; ProofError otherwise."""
    if len(reply.slashes) > (request.limit or MAX_PAGE):
        raise ProofError(f"the node listed {len(reply.slashes)} slashes for a page of {request.limit or MAX_PAGE}")
    heights = [slash.height for slash in reply.slashes]
    if heights != sorted(heights, reverse=True):
        raise ProofError("the node's slashes are not newest first")
    if request.account and any(slash.account != request.account for slash in reply.slashes):
        raise ProofError("the node listed slashes of another account than the one asked for")


def _checked_id(value: bytes, what: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != ID_BYTES:
        raise ClientError("INVALID_ARGUMENT", f"{what} is {ID_BYTES} bytes (64 hex digits)")
    return value


def _checked_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= MAX_PAGE:
        raise ClientError("INVALID_ARGUMENT", f"limit is 1 to {MAX_PAGE} (0 means {MAX_PAGE}), got {str(limit)[:24]}")
    return limit
