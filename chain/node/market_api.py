"""The inference market's read API (proto/node.proto): GetJob, ListJobs, WatchJob, WatchAssignments,
ListModels, GetExecutors.

Every call only reads. A request is parsed into a query (`job_query`, `checked_job_id`, ...), one
function answers it from the committed state through the runtime's own readers (runtime/jobs.py,
staking.py, models.py, reputation.py), and `MarketApi` maps a QueryError to its status code.

A job is read at a named block: from the state tree under that block's state root, so the job,
its dispute (chain/node/disputes_api.py), the height and the block hash always agree, and WatchJob
can compare the job block by block. A disputed job is not over: WatchJob follows it to the verdict.
Listings walk the node's latest state (StateView), each from one LevelDB snapshot.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterator

import grpc

from chain.node.core import NodeCore
from chain.node.disputes_api import DISPUTES_MODULE, dispute_of, open_dispute
from chain.ss58 import encode_address
from chain.storage import ChainStore, Head, StoreError
from proto import node_pb2, state_pb2, types_pb2
from runtime import jobs, models, reputation, slashing, staking
from runtime.jobs.events import JOB_ASSIGNED, JOB_POSTED

log = logging.getLogger(__name__)

ID_BYTES = 32
ACCOUNT_BYTES = 32
DEFAULT_LIST_LIMIT = 20
MAX_LIST_LIMIT = 100
# Index keys one ListJobs call reads at most: a status filter that few jobs match then returns a
# short (even empty) page and a page token to go on from, instead of walking every job there is.
MAX_KEYS_WALKED = 10_000
# How long WatchJob waits for the next block before checking that its client is still there.
WATCH_POLL_SECONDS = 1.0
# Job ids one WatchAssignments request may ask to follow: an executor's open jobs are bounded by its
# capacity, far below this; the bound keeps one request's work per block small.
MAX_FOLLOWED_JOBS = 1024
# The modules whose events WatchAssignments reads: the market, the bonds and offers it runs on, and the
# disputes that judge its results (a CandidateJudged names the executor).
EXECUTOR_MODULES = frozenset({jobs.MODULE, staking.MODULE, slashing.MODULE, DISPUTES_MODULE})
# Modules whose events name a job: jobs by `job`, disputes by `dispute` (a dispute's id is its job's id).
_JOB_ATTRIBUTES = {jobs.MODULE: "job", DISPUTES_MODULE: "dispute"}
_HEIGHT_BYTES = 8
_STATUS_VALUES = frozenset(state_pb2.JobStatus.values())


class QueryError(Exception):
    """A request the node cannot answer: `status` is the gRPC status code, the message says why."""

    def __init__(self, status: grpc.StatusCode, message: str):
        super().__init__(message)
        self.status = status


def _invalid(message: str) -> QueryError:
    return QueryError(grpc.StatusCode.INVALID_ARGUMENT, message)


# --- reading at a block ---------------------------------------------------------------


class StateAt:
    """The committed state after one block, read from the state tree under its state root (a StateReader)."""

    __slots__ = ("_tree", "_root")

    def __init__(self, store: ChainStore, state_root: bytes):
        self._tree = store.tree
        self._root = state_root

    def get(self, key: bytes) -> bytes | None:
        return self._tree.get(self._root, key)


def head_at(store: ChainStore, height: int, best: Head) -> Head:
    """The block at `height` (at most the best one) as a Head: height, hash, state root."""
    if height >= best.height:
        return best
    block_hash = store.block_hash_at(height)
    finalized = store.finalized_block(block_hash) if block_hash is not None else None
    if finalized is None:
        raise StoreError(f"{store.path} has no block #{height} below its head #{best.height}")
    header = types_pb2.Header.FromString(finalized.block.header)
    return Head(height, block_hash, header.state_root)


def job_view(store: ChainStore, job_id: bytes, head: Head) -> node_pb2.JobView | None:
    """The job and its dispute (if any) as they stood after block `head`; None when the job did not exist then."""
    state = StateAt(store, head.state_root)
    job = jobs.read_job(state, job_id)
    if job is None:
        return None
    return node_pb2.JobView(job=job, height=head.height, block_hash=head.hash, dispute=dispute_of(state, job_id))


def view_over(view: node_pb2.JobView) -> bool:
    """Whether nothing more will happen to the job: a final status and no dispute waiting for its verdict."""
    return view.job.status in jobs.FINAL_STATUSES and not open_dispute(view.dispute if view.HasField("dispute") else None)


# --- parsing requests -----------------------------------------------------------------


def checked_job_id(job_id: bytes) -> bytes:
    """A job id as sent: 32 bytes, or QueryError(INVALID_ARGUMENT)."""
    if len(job_id) != ID_BYTES:
        raise _invalid(f"a job id is {ID_BYTES} bytes, got {len(job_id)}")
    return job_id


def checked_transaction_hash(tx_hash: bytes) -> bytes:
    """A transaction hash as sent: 32 bytes, or QueryError(INVALID_ARGUMENT)."""
    if len(tx_hash) != ID_BYTES:
        raise _invalid(f"a transaction hash is {ID_BYTES} bytes, got {len(tx_hash)}")
    return tx_hash


def followed_job_ids(job_ids) -> dict[bytes, bytes]:
    """WatchAssignments' job ids, each 32 bytes and at most MAX_FOLLOWED_JOBS, as {id: b""} (nothing sent yet)."""
    if len(job_ids) > MAX_FOLLOWED_JOBS:
        raise _invalid(f"follow at most {MAX_FOLLOWED_JOBS} job ids, got {len(job_ids)}")
    return {checked_job_id(job_id): b"" for job_id in job_ids}


def _checked_account(account: bytes, what: str) -> bytes:
    if len(account) != ACCOUNT_BYTES:
        raise _invalid(f"{what} is a {ACCOUNT_BYTES}-byte account id, got {len(account)} bytes")
    return account


@dataclass(frozen=True)
class JobQuery:
    """One page of ListJobs: the index walked, the status kept, how many, and where the last page ended."""

    index: bytes  # every key under it is index + u64 BE posted height + job id
    status: int  # 0 (JOB_STATUS_UNSPECIFIED): any
    limit: int
    after: bytes | None  # the previous page's last key; None for the first page


def job_query(request: node_pb2.ListJobsRequest) -> JobQuery:
    """The ListJobs request checked; QueryError(INVALID_ARGUMENT) naming the first problem."""
    if request.poster and request.executor:
        raise _invalid("filter by poster or by executor, not both")
    if request.poster:
        index = jobs.JOBS_BY_POSTER + _checked_account(request.poster, "poster")
    elif request.executor:
        index = jobs.JOBS_BY_EXECUTOR + _checked_account(request.executor, "executor")
    else:
        index = jobs.JOBS_BY_HEIGHT
    if request.status not in _STATUS_VALUES:
        raise _invalid(f"status {request.status} is not a JobStatus value")
    if request.limit > MAX_LIST_LIMIT:
        raise _invalid(f"limit is 1 to {MAX_LIST_LIMIT} (0 means {DEFAULT_LIST_LIMIT}), got {request.limit}")
    return JobQuery(index, request.status, request.limit or DEFAULT_LIST_LIMIT, _page_start(request.page_token, index))


def _page_start(token: bytes, index: bytes) -> bytes | None:
    """Where a page token says the walk goes on; it must be a key of the index being walked."""
    if not token:
        return None
    if len(token) != len(index) + _HEIGHT_BYTES + ID_BYTES or not token.startswith(index):
        raise _invalid(
            "page_token does not continue this listing: pass next_page_token from the previous "
            "response unchanged, with the same poster or executor filter"
        )
    return token


# --- answering ------------------------------------------------------------------------


@dataclass(frozen=True)
class JobPage:
    """Jobs newest first; `next_page_token` is empty when the walk reached the end of the index."""

    jobs: tuple[state_pb2.Job, ...]
    next_page_token: bytes


def list_jobs(state, query: JobQuery, max_keys: int = MAX_KEYS_WALKED) -> JobPage:
    """A page of jobs from walking the query's index downwards (newest first), at most `max_keys` keys.

    `state` is the node's StateView (iter_prefix_reverse). The page token is the last key read:
    the last job returned, or where the walk stopped at `max_keys`.
    """
    found: list[state_pb2.Job] = []
    walked = 0
    keys = state.iter_prefix_reverse(query.index, before=query.after)
    try:
        for key, _ in keys:
            walked += 1
            job = jobs.read_job(state, key[-ID_BYTES:])
            if job is None:
                log.warning("job index key %s names no job", key.hex())
            elif not query.status or job.status == query.status:
                found.append(job)
            if len(found) == query.limit or walked == max_keys:
                more = next(keys, None) is not None
                return JobPage(tuple(found), key if more else b"")
    finally:
        keys.close()
    return JobPage(tuple(found), b"")


def _attribute(event: types_pb2.Event, key: str) -> str | None:
    return next((attribute.value for attribute in event.attributes if attribute.key == key), None)


def _job_id_in(event: types_pb2.Event) -> bytes | None:
    """The job a jobs or disputes event names, or None (another module's event, or a malformed attribute)."""
    key = _JOB_ATTRIBUTES.get(event.module)
    if key is None:
        return None
    text = _attribute(event, key)
    if text is None or len(text) != 2 * ID_BYTES:
        return None
    try:
        return bytes.fromhex(text)
    except ValueError:
        return None


def posted_job_id(receipt: types_pb2.Receipt) -> bytes | None:
    """The id in the receipt's JobPosted event; None when the transaction posted no job."""
    for event in receipt.events:
        if event.module == jobs.MODULE and event.name == JOB_POSTED and _job_id_in(event) is not None:
            return _job_id_in(event)
    return None


def _sender(raw: bytes) -> bytes:
    """The sender of an included transaction (its bytes were checked when the block was)."""
    return types_pb2.TransactionBody.FromString(types_pb2.Transaction.FromString(raw).body).sender


def _follows(event: types_pb2.Event, executor_hex: str) -> bool:
    """Whether an event (one naming the executor) makes WatchAssignments follow its job: the job was assigned
    to the executor, or a dispute judged the executor's result (an audit or challenge of a job already over)."""
    if event.module == jobs.MODULE:
        return event.name == JOB_ASSIGNED and _attribute(event, "executor") == executor_hex
    return event.module == DISPUTES_MODULE and _attribute(event, "executor") == executor_hex


def _over_for(job: state_pb2.Job, executor: bytes) -> bool:
    """Whether WatchAssignments stops following the job: it is final, or not (or no longer) the executor's."""
    return job.status in jobs.FINAL_STATUSES or all(slot.executor != executor for slot in job.assignments)


def assignments_update(store: ChainStore, executor: bytes, followed: dict[bytes, bytes], height: int,
                       first: bool) -> node_pb2.AssignmentsUpdate:
    """What block `height` changed for the executor; updates `followed` ({job id: the record last sent}).

    The jobs read are those the block's jobs events name (every change of a job record emits one), in
    the order the events name them, or every followed job in the `first` update.
    """
    block_hash = store.block_hash_at(height)
    finalized = store.finalized_block(block_hash) if block_hash is not None else None
    if finalized is None:
        raise StoreError(f"{store.path} has no block #{height}")
    header = types_pb2.Header.FromString(finalized.block.header)
    receipts = store.receipts(block_hash)
    # Only the modules an executor's work concerns: a block of thousands of transfers is thousands of
    # balances events, each of which would otherwise be searched for the executor's id in Python.
    events = [event for receipt in receipts.transactions for event in receipt.events if event.module in EXECUTOR_MODULES]
    events += [event for event in receipts.block_events if event.module in EXECUTOR_MODULES]
    executor_hex = executor.hex()
    update = node_pb2.AssignmentsUpdate(height=height, block_hash=block_hash, time_ms=header.time_ms)
    update.events.extend(
        event for event in events if any(attribute.value == executor_hex for attribute in event.attributes)
    )
    # In the order the block's events name them: jobs assigned in one block reach the executor in the
    # order the chain assigned them (first posted, first run), not by id.
    touched = dict.fromkeys(job_id for job_id in map(_job_id_in, events) if job_id is not None)
    for event in update.events:
        if _follows(event, executor_hex):
            followed.setdefault(_job_id_in(event) or b"", b"")
    followed.pop(b"", None)
    state = StateAt(store, header.state_root)
    for job_id in list(followed) if first else [job_id for job_id in touched if job_id in followed]:
        job = jobs.read_job(state, job_id)
        if job is None:
            del followed[job_id]
            continue
        record = job.SerializeToString()
        if record != followed[job_id]:
            update.jobs.append(job)
            followed[job_id] = record
        if _over_for(job, executor):
            del followed[job_id]
    # Only a transaction holding the executor's key anywhere in its bytes is decoded: a block of thousands
    # of transfers costs one byte search each (decoding each took 4 us of the node's time per stream).
    update.receipts.extend(
        receipt for raw, receipt in zip(finalized.block.transactions, receipts.transactions)
        if executor in raw and _sender(raw) == executor
    )
    return update


def executor_views(state, model: bytes) -> list[node_pb2.ExecutorView]:
    """Every account with an offer (only those serving `model` when given), by account id."""
    if model:
        if len(model) != ID_BYTES:
            raise _invalid(f"a model id is {ID_BYTES} bytes, got {len(model)}")
        if models.read_model(state, model) is None:
            raise QueryError(grpc.StatusCode.NOT_FOUND, f"model {model.hex()} is not registered")
        accounts = staking.serving(state, model)
    else:
        accounts = [key[len(staking.OFFER_PREFIX):] for key, _ in state.iter_prefix(staking.OFFER_PREFIX)]
    views = []
    for account in accounts:
        offer = staking.read_offer(state, account)
        if offer is None:
            continue
        ledger = staking.read_ledger(state, account)
        views.append(
            node_pb2.ExecutorView(
                account=account,
                address=encode_address(account),
                offer=offer,
                bonded=ledger.bonded if ledger is not None else 0,
                reputation=_reputation(state, account),
                load=jobs.read_load(state, account),
            )
        )
    return views


def _reputation(state, account: bytes) -> int:
    # An executor that has no score yet is weighed at the chain's starting score.
    return reputation.read_reputation(state, account, jobs.read_params(state).reputation_initial)


def model_listing(state) -> tuple[list[types_pb2.ModelInfo], list[state_pb2.ModelProposal]]:
    """The registered models and the open proposals, by model id."""
    registered = [types_pb2.ModelInfo.FromString(value) for _, value in state.iter_prefix(models.MODEL_PREFIX)]
    proposals = [state_pb2.ModelProposal.FromString(value) for _, value in state.iter_prefix(models.PROPOSAL_PREFIX)]
    return registered, proposals


def _compared(view: node_pb2.JobView) -> tuple[bytes, bytes]:
    """What WatchJob compares block by block: the job's record and its dispute's (votes change only the latter)."""
    return view.job.SerializeToString(), view.dispute.SerializeToString()


# --- the servicer ---------------------------------------------------------------------


class MarketApi:
    """The market's calls of the Node service; mixed into NodeApi, which holds `core`."""

    core: NodeCore

    def GetJob(self, request, context):
        try:
            head = self.core.head
            return self._view(checked_job_id(request.job_id), head)
        except QueryError as error:
            context.abort(error.status, str(error))

    def ListJobs(self, request, context):
        try:
            query = job_query(request)
        except QueryError as error:
            context.abort(error.status, str(error))
        height = self.core.head.height
        page = list_jobs(self.core.store.state, query, MAX_KEYS_WALKED)
        return node_pb2.ListJobsResponse(jobs=page.jobs, next_page_token=page.next_page_token, height=height)

    def WatchJob(self, request, context):
        try:
            job_id = checked_job_id(request.job_id) if request.job_id or not request.transaction_hash else b""
            if request.transaction_hash:
                view = self._posted(checked_transaction_hash(request.transaction_hash), job_id, context)
                if view is None:
                    return  # the client went away while the transaction was pending
                job_id = view.job.id
            else:
                view = self._view(job_id, self.core.head)
        except QueryError as error:
            context.abort(error.status, str(error))
        yield view
        try:
            yield from self._changes(job_id, view, context)
        except StoreError as error:  # the edge guard maps this for unary calls only
            log.error("watching job %s: %s", job_id.hex(), error)
            context.abort(grpc.StatusCode.DATA_LOSS, f"the node cannot read its database: {error}")

    def _posted(self, tx_hash: bytes, job_id: bytes, context) -> node_pb2.JobView | None:
        """The job a PostJob created, as it stood after the block that included it; waits while the
        transaction is pending; QueryError when it was dropped, failed or posted no (or another) job."""
        while context.is_active():
            head = self.core.head
            location, pending, rejection = self.core.lookup(tx_hash)
            if location is not None:
                return self._posted_in(tx_hash, job_id, location)
            if pending is None:
                if rejection is not None:
                    raise QueryError(grpc.StatusCode.FAILED_PRECONDITION,
                                     f"transaction {tx_hash.hex()} was dropped from the pool: {rejection}")
                raise QueryError(grpc.StatusCode.NOT_FOUND,
                                 f"transaction {tx_hash.hex()} is neither pending nor included")
            self.core.wait_for_block(head.height, WATCH_POLL_SECONDS)
        return None

    def _posted_in(self, tx_hash: bytes, job_id: bytes, location) -> node_pb2.JobView:
        store = self.core.store
        receipt = store.receipts(store.block_hash_at(location.height)).transactions[location.index]
        if not receipt.success:
            raise QueryError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"transaction {tx_hash.hex()} was included in block #{location.height} and failed: "
                f"{receipt.error_module}.{receipt.error_name}: {receipt.error_message}",
            )
        posted = posted_job_id(receipt)
        if posted is None:
            raise _invalid(f"transaction {tx_hash.hex()} (in block #{location.height}) posted no job")
        if job_id and posted != job_id:
            raise _invalid(f"transaction {tx_hash.hex()} posted job {posted.hex()}, not job {job_id.hex()}")
        return self._view(posted, head_at(store, location.height, self.core.head))

    def WatchAssignments(self, request, context):
        try:
            executor = _checked_account(request.executor, "executor")
            followed = followed_job_ids(request.job_ids)
        except QueryError as error:
            context.abort(error.status, str(error))
        height = max(request.from_height or self.core.head.height + 1, self.core.genesis.initial_height)
        try:
            yield from self._assignment_updates(executor, followed, height, context)
        except StoreError as error:
            log.error("watching the assignments of %s: %s", executor.hex(), error)
            context.abort(grpc.StatusCode.DATA_LOSS, f"the node cannot read its database: {error}")

    def _assignment_updates(self, executor: bytes, followed: dict[bytes, bytes], height: int,
                            context) -> Iterator[node_pb2.AssignmentsUpdate]:
        first = True
        while context.is_active():
            if height > self.core.head.height:
                self.core.wait_for_block(height - 1, WATCH_POLL_SECONDS)
                continue
            yield assignments_update(self.core.store, executor, followed, height, first)
            first = False
            height += 1

    def _changes(self, job_id: bytes, view: node_pb2.JobView, context) -> Iterator[node_pb2.JobView]:
        """The job after each later block whose state changed it or its dispute, until it is over (view_over)."""
        store = self.core.store
        sent = _compared(view)
        height = view.height
        while not view_over(view) and context.is_active():
            if not self.core.wait_for_block(height, WATCH_POLL_SECONDS):
                continue
            best = self.core.head
            for next_height in range(height + 1, best.height + 1):
                view = job_view(store, job_id, head_at(store, next_height, best))
                if view is None:
                    context.abort(grpc.StatusCode.NOT_FOUND, f"job {job_id.hex()} is no longer in the state")
                current = _compared(view)
                if current != sent:
                    sent = current
                    yield view
                if view_over(view):
                    return
            height = best.height

    def _view(self, job_id: bytes, head: Head) -> node_pb2.JobView:
        """The job at `head` with its dispute; QueryError(NOT_FOUND) when there was no such job then."""
        view = job_view(self.core.store, job_id, head)
        if view is None:
            raise QueryError(grpc.StatusCode.NOT_FOUND, f"no job {job_id.hex()} at height {head.height}")
        return view

    def ListModels(self, request, context):
        height = self.core.head.height
        registered, proposals = model_listing(self.core.store.state)
        return node_pb2.ListModelsResponse(models=registered, proposals=proposals, height=height)

    def GetExecutors(self, request, context):
        height = self.core.head.height
        try:
            views = executor_views(self.core.store.state, request.model)
        except QueryError as error:
            context.abort(error.status, str(error))
        return node_pb2.GetExecutorsResponse(executors=views, height=height)
