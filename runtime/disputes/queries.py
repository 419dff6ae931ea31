"""disputes queries: one dispute, disputes in id order (all or open only), a member's duties, an executor's evidence."""

from __future__ import annotations

from proto import state_pb2
from runtime.disputes.opening import COMMITTING, REVEALING
from runtime.disputes.params import PARAMS
from runtime.disputes.storage import DISPUTE_PREFIX, DUTY_PREFIX, OPEN_PREFIX, read_dispute, read_evidence
from runtime.module import ACCOUNT, AMOUNT, BOOLEAN, HASH, INTEGER, TEXT, InvalidQuery, QuerySpec, params_query, require_id
from runtime.state import IterableState, StateReader

MAX_LISTED = 100
_DISPUTE_FIELDS = {
    "id": HASH, "job": HASH, "candidates": INTEGER, "challenger": ACCOUNT, "bond": AMOUNT, "challenged": INTEGER,
    "opened_height": INTEGER, "draw_height": INTEGER, "commit_deadline": INTEGER, "reveal_deadline": INTEGER,
    "decided_height": INTEGER, "outcome": TEXT,
}


def query_dispute(state: StateReader, request: state_pb2.JobQuery) -> state_pb2.Dispute:
    """A job's dispute: candidates, committee and votes, status, verdicts; KeyError when the job has none."""
    dispute = read_dispute(state, require_id(request.job_id, "job_id"))
    if dispute is None:
        raise KeyError(f"dispute {request.job_id.hex()}")
    return dispute


def _limit(requested: int) -> int:
    if requested > MAX_LISTED:
        raise InvalidQuery(f"limit must be 1 to {MAX_LISTED} (0: {MAX_LISTED}), got {requested}")
    return requested or MAX_LISTED


def query_disputes(state: IterableState, request: state_pb2.DisputeListQuery) -> state_pb2.DisputeList:
    """Disputes in id order after `after` (every one, or the open ones), at most `limit`."""
    limit = _limit(request.limit)
    if request.after:
        require_id(request.after, "after")
    prefix = OPEN_PREFIX if request.open else DISPUTE_PREFIX
    listed = state_pb2.DisputeList()
    # The walk starts after the page token and stops one key past the page (that one only says `more`).
    for key, _ in state.iter_prefix(prefix, prefix + request.after if request.after else None):
        dispute_id = key[len(prefix):]
        if len(listed.disputes) == limit:
            listed.more = True
            break
        listed.disputes.append(read_dispute(state, dispute_id))
    return listed


def waits_for(dispute: state_pb2.Dispute, account: bytes) -> bool:
    """Whether the open dispute waits for the member's commitment or reveal."""
    member = next((member for member in dispute.committee if member.account == account), None)
    if member is None:
        return False
    if dispute.status == COMMITTING:
        return not member.commitment
    return dispute.status == REVEALING and bool(member.commitment) and not member.revealed


def query_duties(state: IterableState, request: state_pb2.AccountQuery) -> state_pb2.DisputeList:
    """The open disputes that wait for this account's commitment or reveal, in id order (at most MAX_LISTED)."""
    account = require_id(request.account, "account")
    prefix = DUTY_PREFIX + account
    listed = state_pb2.DisputeList()
    for key, _ in state.iter_prefix(prefix):
        dispute = read_dispute(state, key[len(prefix):])
        if not waits_for(dispute, account):
            continue
        if len(listed.disputes) == MAX_LISTED:
            listed.more = True
            break
        listed.disputes.append(dispute)
    return listed


def query_evidence(state: StateReader, request: state_pb2.ExecutorModelQuery) -> state_pb2.EvidenceRecord:
    """The positions judged, misses found and jobs re-scored of an executor's results for a model."""
    return read_evidence(state, require_id(request.account, "account"), require_id(request.model, "model"))


QUERIES = (
    QuerySpec(name="dispute", doc="A job's dispute: candidates, committee, votes, status and verdicts.",
              request=state_pb2.JobQuery, response=state_pb2.Dispute, handler=query_dispute,
              fields={"job_id": HASH, **_DISPUTE_FIELDS}),
    QuerySpec(name="disputes", doc="Disputes in id order after `after` (only open ones with `open`), at most `limit`.",
              request=state_pb2.DisputeListQuery, response=state_pb2.DisputeList, handler=query_disputes,
              fields={"after": HASH, "limit": INTEGER, "open": BOOLEAN, "more": BOOLEAN}),
    QuerySpec(name="duties", doc="The open disputes waiting for this member's commitment or reveal.",
              request=state_pb2.AccountQuery, response=state_pb2.DisputeList, handler=query_duties,
              fields={"account": ACCOUNT, "more": BOOLEAN}),
    QuerySpec(name="evidence", doc="An executor's evidence for a model: positions judged, misses, jobs re-scored.",
              request=state_pb2.ExecutorModelQuery, response=state_pb2.EvidenceRecord, handler=query_evidence,
              fields={"account": ACCOUNT, "model": HASH, "positions": INTEGER, "misses": INTEGER, "jobs": INTEGER}),
    params_query(PARAMS),
)
