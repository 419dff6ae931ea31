"""The disputes' read API (proto/node.proto): GetDispute, ListDisputes, GetSlashes, and a job's dispute for
GetJob and WatchJob (JobView.dispute).

Every answer comes from the runtime's own declared queries (disputes.dispute, disputes.disputes,
disputes.duties, slashing.slashes), run by the same functions as the generic Query service
(chain/node/queries.py), so what a dispute or a duty is stays written once, in its module. The edge
checks what the request carries (ids and accounts 32 bytes, limits 0 to 100), names the problem
in an INVALID_ARGUMENT, and says NOT_FOUND in words a person can act on.
"""

from __future__ import annotations

import grpc

from chain.node.core import NodeCore
from chain.node.queries import HeadState, QueryRefused, find_query, run_query
from chain.storage import ChainStore, Head
from proto import node_pb2, state_pb2
from runtime import jobs
from runtime.jobs.phases import job_status_name
from runtime.registry import RUNTIME

DISPUTES_MODULE = "disputes"
SLASHING_MODULE = "slashing"
ID_BYTES = 32
ACCOUNT_BYTES = 32
# ListDisputes and GetSlashes: at most this many per answer; 0 asks for this many (proto/node.proto).
MAX_PAGE = 100


def _invalid(message: str) -> QueryRefused:
    return QueryRefused(grpc.StatusCode.INVALID_ARGUMENT, message)


# --- parsing requests -----------------------------------------------------------------


def checked_dispute_id(dispute_id: bytes) -> bytes:
    """A dispute id as sent: its job's 32-byte id, or QueryRefused(INVALID_ARGUMENT)."""
    if len(dispute_id) != ID_BYTES:
        raise _invalid(f"a dispute id is {ID_BYTES} bytes (the id of its job), got {len(dispute_id)}")
    return dispute_id


def _optional_bytes(value: bytes, name: str, what: str) -> bytes:
    """An optional 32-byte field: empty, or exactly 32 bytes."""
    if value and len(value) != ID_BYTES:
        raise _invalid(f"{name} is {what} of {ID_BYTES} bytes (or empty), got {len(value)} bytes")
    return value


def checked_limit(limit: int) -> int:
    """A page size as sent: 0 (meaning MAX_PAGE) to MAX_PAGE, or QueryRefused(INVALID_ARGUMENT)."""
    if limit > MAX_PAGE:
        raise _invalid(f"limit is 1 to {MAX_PAGE} (0 means {MAX_PAGE}), got {limit}")
    return limit or MAX_PAGE


def dispute_list_request(request: node_pb2.ListDisputesRequest) -> node_pb2.ListDisputesRequest:
    """The ListDisputes request checked; QueryRefused(INVALID_ARGUMENT) naming the first problem."""
    _optional_bytes(request.after, "after", "a dispute id")
    _optional_bytes(request.member, "member", "an account id")
    checked_limit(request.limit)
    return request


def slash_query(request: node_pb2.GetSlashesRequest) -> state_pb2.SlashQuery:
    """The GetSlashes request as the slashing.slashes query; QueryRefused(INVALID_ARGUMENT) when malformed."""
    account = _optional_bytes(request.account, "account", "an account id")
    return state_pb2.SlashQuery(account=account, limit=checked_limit(request.limit))


# --- answering from the modules' queries ------------------------------------------------


def module_query(module: str, name: str, state, request):
    """The answer of the runtime's declared query `module.name`; QueryRefused as the Query service says it."""
    return run_query(find_query(RUNTIME, module, name), module, state, request)


def dispute_of(state, job_id: bytes) -> state_pb2.Dispute | None:
    """The job's dispute in `state` (a StateReader), or None when it has none."""
    try:
        return module_query(DISPUTES_MODULE, "dispute", state, state_pb2.JobQuery(job_id=job_id))
    except QueryRefused as refused:
        if refused.status == grpc.StatusCode.NOT_FOUND:
            return None
        raise


def get_dispute(store: ChainStore, head: Head, dispute_id: bytes) -> state_pb2.Dispute:
    """The dispute with this id at `head`; NOT_FOUND saying whether the job is unknown or has no dispute."""
    state = HeadState(store, head)
    dispute = dispute_of(state, checked_dispute_id(dispute_id))
    if dispute is not None:
        return dispute
    job = jobs.read_job(state, dispute_id)
    if job is None:
        raise QueryRefused(grpc.StatusCode.NOT_FOUND,
                           f"no dispute {dispute_id.hex()}: there is no job with this id at height {head.height}")
    raise QueryRefused(grpc.StatusCode.NOT_FOUND,
                       f"job {dispute_id.hex()} has no dispute at height {head.height} (it is "
                       f"{job_status_name(job.status)}; a dispute's id is its job's id)")


def list_disputes(store: ChainStore, head: Head, request: node_pb2.ListDisputesRequest) -> state_pb2.DisputeList:
    """A page of disputes by id after `after`: every one, the open ones, or a member's duties."""
    request = dispute_list_request(request)
    state = HeadState(store, head)
    if not request.member:
        query = state_pb2.DisputeListQuery(after=request.after, limit=request.limit, open=request.open)
        return module_query(DISPUTES_MODULE, "disputes", state, query)
    duties = module_query(DISPUTES_MODULE, "duties", state, state_pb2.AccountQuery(account=request.member))
    return page_of(duties, request.after, checked_limit(request.limit))


def page_of(listing: state_pb2.DisputeList, after: bytes, limit: int) -> state_pb2.DisputeList:
    """The disputes of `listing` whose id follows `after`, by id, at most `limit`; `more` when some were left."""
    following = sorted((dispute for dispute in listing.disputes if dispute.id > after), key=lambda dispute: dispute.id)
    return state_pb2.DisputeList(disputes=following[:limit], more=len(following) > limit or listing.more)


def get_slashes(store: ChainStore, head: Head, request: node_pb2.GetSlashesRequest) -> state_pb2.SlashList:
    """Slashes newest first, of one account or of all."""
    return module_query(SLASHING_MODULE, "slashes", HeadState(store, head), slash_query(request))


def open_dispute(dispute: state_pb2.Dispute | None) -> bool:
    """Whether a dispute still waits for its verdict."""
    return dispute is not None and dispute.status != state_pb2.DISPUTE_STATUS_DECIDED


# --- the servicer ---------------------------------------------------------------------


class DisputesApi:
    """The disputes' calls of the Node service; mixed into NodeApi, which holds `core`."""

    core: NodeCore

    def GetDispute(self, request, context):
        try:
            return get_dispute(self.core.store, self.core.head, request.dispute)
        except QueryRefused as refused:
            context.abort(refused.status, str(refused))

    def ListDisputes(self, request, context):
        try:
            return list_disputes(self.core.store, self.core.head, request)
        except QueryRefused as refused:
            context.abort(refused.status, str(refused))

    def GetSlashes(self, request, context):
        try:
            return get_slashes(self.core.store, self.core.head, request)
        except QueryRefused as refused:
            context.abort(refused.status, str(refused))
