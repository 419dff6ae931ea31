"""The explorer: a live web page of the chain (head, blocks, jobs, executors, models, disputes, slashes).

    routes = explorer_routes("127.0.0.1:9944")   # mounted by chain/gateway/app.py

GET /explorer is the page (chain/gateway/static/explorer.html, .css, .js: every asset local, no CDN);
/explorer/static/... its assets; /explorer/api/... JSON. The page polls /explorer/api/snapshot (all
of it in one answer) about once a second.

Many browsers must not multiply the node's load: every endpoint answers from one snapshot, read
from the node at most once per block interval (clamped to MIN_REFRESH_S..MAX_REFRESH_S) by one
refresh at a time; requests that arrive during a refresh wait for it. A refresh reads only the
blocks it has not seen (at most BLOCKS_PER_REFRESH), and every list is bounded (the *_SHOWN
constants). The node's gRPC calls block, so they run in a worker thread (anyio.to_thread).

When the node does not answer, every API endpoint says so in JSON with status 503:
{"error": {"type": "node_unreachable", "message": ..., "node": ...}}; the page keeps what it
showed last and says that the node is unreachable.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import anyio
import anyio.to_thread
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from chain.client import Client, ClientError, answer_of, dispute_status_name, reason_name, status_name, verdict_name
from chain.client.disputes import is_open
from chain.client.results import Block, ChainInfo
from chain.ss58 import encode_address
from proto import state_pb2
from runtime import jobs
from runtime.jobs.events import JOB_POSTED, JOB_SETTLED, RESULT_REVEALED
from runtime.models import CPU_CLASS, class_names
from runtime.staking.offers import offer_class

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
# The snapshot is read again after one block interval, but never more than MAX_REFRESH_S apart
# (a fresh page) nor less than MIN_REFRESH_S (a chain with very short blocks).
MIN_REFRESH_S = 0.5
MAX_REFRESH_S = 5.0
NODE_TIMEOUT_S = 3.0
# Bounds of what one snapshot holds and one refresh reads.
BLOCKS_KEPT = 60
BLOCKS_SHOWN = 20
BLOCKS_PER_REFRESH = 20
JOBS_SHOWN = 30
DISPUTES_SHOWN = 20
SLASHES_SHOWN = 20
EXECUTORS_SHOWN = 100
MODELS_SHOWN = 50
PREVIEW_CHARS = 160
UNREACHABLE_CODES = ("UNAVAILABLE", "DEADLINE_EXCEEDED")


# --- what a snapshot holds -------------------------------------------------------------


@dataclass(frozen=True)
class BlockSummary:
    """One block as the explorer shows it: its size and what the market did in it."""

    height: int
    hash: str
    time_ms: int
    proposer: str
    transactions: int
    jobs_posted: int
    jobs_settled: int
    tokens_revealed: int

    def document(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Snapshot:
    """Everything the explorer shows, as read from the node at `read_at` (unix seconds)."""

    read_at: float
    head: dict
    blocks: list[dict]
    jobs: list[dict]
    executors: list[dict]
    models: list[dict]
    disputes: list[dict]
    slashes: list[dict]

    def document(self) -> dict:
        return {
            "read_at": self.read_at, "head": self.head, "blocks": self.blocks, "jobs": self.jobs,
            "executors": self.executors, "models": self.models, "disputes": self.disputes, "slashes": self.slashes,
        }


# --- reading the node -------------------------------------------------------------------


@dataclass
class ChainReader:
    """Reads a Snapshot from one node; keeps the recent blocks it has read so each refresh reads only new ones.

    Used by one thread at a time (ExplorerCache serialises refreshes)."""

    client: Client
    blocks: "OrderedDict[int, BlockSummary]" = field(default_factory=OrderedDict)

    def read(self) -> Snapshot:
        """One snapshot; ClientError when the node does not answer."""
        info = self.client.chain_info()
        amount = _amounts(info)
        registry = self.client.list_models()
        model_names = {model.id: model.name for model in registry.models}
        executors = self.client.get_executors()
        disputes = {dispute.id: dispute for dispute in self.client.disputes().disputes}
        self._read_blocks(info.finalized_height)
        return Snapshot(
            read_at=time.time(),
            head=head_document(info, len(executors)),
            blocks=[summary.document() for summary in reversed(list(self.blocks.values())[-BLOCKS_KEPT:])],
            jobs=[job_document(job, disputes.get(job.id), model_names, amount)
                  for job in self.client.list_jobs(limit=JOBS_SHOWN).jobs],
            executors=[executor_document(executor, model_names, amount) for executor in executors[:EXECUTORS_SHOWN]],
            models=[model_document(model, executors) for model in registry.models[:MODELS_SHOWN]],
            disputes=[dispute_document(dispute) for dispute in _recent_disputes(disputes.values())],
            slashes=[slash_document(slash, amount) for slash in self.client.slashes(limit=SLASHES_SHOWN)],
        )

    def _read_blocks(self, finalized: int) -> None:
        """Read the finalized blocks not yet seen, newest first, at most BLOCKS_PER_REFRESH of them."""
        lowest = max(1, finalized - BLOCKS_KEPT + 1)
        wanted = [height for height in range(finalized, lowest - 1, -1) if height not in self.blocks]
        for height in wanted[:BLOCKS_PER_REFRESH]:
            self.blocks[height] = block_summary(self.client.block(height=height))
        for height in sorted(self.blocks):
            if height < lowest or len(self.blocks) > BLOCKS_KEPT:
                del self.blocks[height]
        self.blocks = OrderedDict(sorted(self.blocks.items()))


def block_summary(block: Block) -> BlockSummary:
    """A block's transaction count and the jobs posted, settled and tokens revealed in it (from its events)."""
    events = [event for receipt in block.receipts for event in receipt.events] + list(block.block_events)
    market = [event for event in events if event.module == jobs.MODULE]
    tokens = sum(_integer(event.attribute("tokens")) for event in market if event.name == RESULT_REVEALED)
    return BlockSummary(
        height=block.height, hash=block.hash.hex(), time_ms=block.time_ms,
        proposer=encode_address(block.proposer) if len(block.proposer) == 32 else block.proposer.hex(),
        transactions=len(block.transactions),
        jobs_posted=sum(event.name == JOB_POSTED for event in market),
        jobs_settled=sum(event.name == JOB_SETTLED for event in market),
        tokens_revealed=tokens,
    )


def head_document(info: ChainInfo, executors: int) -> dict:
    """The header line: chain, head, finality, validators."""
    return {
        "chain_id": info.chain_id, "node_version": info.node_version, "spec_version": info.spec_version,
        "best_height": info.best_height, "best_hash": info.best_hash.hex(),
        "finalized_height": info.finalized_height, "finalized_hash": info.finalized_hash.hex(),
        "block_time_ms": info.block_time_ms, "validators": info.validators,
        "total_voting_power": str(info.total_voting_power), "peers": info.peers,
        "consensus_round": info.consensus_round, "syncing": info.syncing,
        "pending_transactions": info.pending_transactions, "executors": executors,
        "token_symbol": info.token_symbol, "token_decimals": info.token_decimals,
    }


def job_document(job: state_pb2.Job, dispute: state_pb2.Dispute | None, model_names: dict, amount) -> dict:
    """A job row: status, verdict, executors, price paid, time to settle, the answer's start."""
    answer = answer_of(job, dispute)
    paid = sum(slot.payment for slot in job.assignments)
    final = job.final_height if job.final_height else None
    return {
        "id": job.id.hex(), "poster": encode_address(job.poster), "status": status_name(job.status),
        "verdict": job_verdict(job, dispute),
        "model": model_names.get(job.request.model, job.request.model.hex()[:16]),
        "posted_height": job.posted_height, "final_height": final,
        "blocks_to_settle": final - job.posted_height if final else None,
        "max_tokens": job.request.max_tokens, "redundancy": job.request.redundancy,
        "tokens": len(answer.tokens) if answer is not None else None,
        "paid": str(paid), "paid_text": amount(paid), "protocol_fee_text": amount(job.protocol_fee),
        "escrow_text": amount(job.escrow), "refunded_text": amount(job.refunded),
        "executors": [
            {"address": encode_address(slot.executor), "status": _slot_status(slot.status),
             "verdict": verdict_name(slot.verdict) if slot.verdict else None,
             "price_text": amount(slot.price_per_token), "engine_class": slot.engine_class or CPU_CLASS}
            for slot in job.assignments
        ],
        "answer": answer.text[:PREVIEW_CHARS] if answer is not None else None,
        "reason": job.reason[:PREVIEW_CHARS], "probe": job.probe,
    }


def job_verdict(job: state_pb2.Job, dispute: state_pb2.Dispute | None) -> str:
    """What became of the job, in one word: pending, settled, disputed, refunded or rejected."""
    if is_open(dispute) or job.status == state_pb2.JOB_STATUS_DISPUTED:
        return "disputed"
    if job.status == state_pb2.JOB_STATUS_SETTLED:
        return "settled"
    if job.status == state_pb2.JOB_STATUS_REJECTED:
        return "rejected"
    if job.status in (state_pb2.JOB_STATUS_EXPIRED, state_pb2.JOB_STATUS_CANCELLED):
        return "refunded"
    return "pending"


def executor_document(executor, model_names: dict, amount) -> dict:
    """An executor row: stake, reputation, price, region, engine class, load of capacity, models."""
    offer = executor.offer
    return {
        "address": executor.address, "bonded": str(executor.bonded), "bonded_text": amount(executor.bonded),
        "reputation": executor.reputation, "price_text": amount(offer.price_per_token),
        "region": offer.region, "engine_class": offer_class(offer),
        "capacity": offer.capacity, "load": executor.load,
        "models": [model_names.get(model, model.hex()[:16]) for model in offer.models],
    }


def model_document(model, executors: list) -> dict:
    """A model row: name, id, context, engine, its engine classes, size, executors serving it."""
    serving = [executor for executor in executors if model.id in executor.offer.models]
    return {
        "name": model.name, "id": model.id.hex(), "context_length": model.context_length, "engine": model.engine,
        "engine_classes": class_names(model), "size_bytes": model.size_bytes, "executors": len(serving),
        "free_slots": sum(max(0, executor.offer.capacity - executor.load) for executor in serving),
    }


def dispute_document(dispute: state_pb2.Dispute) -> dict:
    """A dispute row: job, reason, status, committee, verdicts, outcome."""
    return {
        "job": dispute.job.hex(), "reason": reason_name(dispute.reason), "status": dispute_status_name(dispute.status),
        "opened_height": dispute.opened_height, "decided_height": dispute.decided_height or None,
        "committee": len(dispute.committee), "revealed": sum(member.revealed for member in dispute.committee),
        "verdicts": [verdict_name(verdict) for verdict in dispute.verdicts],
        "outcome": dispute.outcome[:PREVIEW_CHARS],
    }


def slash_document(slash: state_pb2.SlashRecord, amount) -> dict:
    """A slash row: who, for what, how much, at which height."""
    return {
        "account": encode_address(slash.account), "offence": slash.offence, "job": slash.job.hex() or None,
        "height": slash.height, "amount_text": amount(slash.amount), "burned_text": amount(slash.burned),
        "jailed_until": slash.jailed_until or None, "braked": slash.braked,
    }


def _recent_disputes(disputes) -> list[state_pb2.Dispute]:
    # ListDisputes pages in id order (a hash); the newest opened are the ones worth showing.
    return sorted(disputes, key=lambda dispute: (dispute.opened_height, dispute.id), reverse=True)[:DISPUTES_SHOWN]


def _amounts(info: ChainInfo) -> Callable[[int], str]:
    """Base units as tokens, trimmed: 1.500000000 INFER shows as 1.5 INFER."""
    def amount(raw: int) -> str:
        whole, fraction = divmod(int(raw), 10**info.token_decimals)
        digits = f"{whole:,}"
        if fraction:
            digits += "." + f"{fraction:0{info.token_decimals}d}".rstrip("0")
        return f"{digits} {info.token_symbol}".strip()
    return amount


def _slot_status(status: int) -> str:
    try:
        return state_pb2.AssignmentStatus.Name(status).removeprefix("ASSIGNMENT_STATUS_").lower()
    except ValueError:
        return str(status)


def _integer(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0


# --- the cache many browsers share ------------------------------------------------------


class NodeUnreachable(Exception):
    """The node did not answer the snapshot's reads; the message says why."""


class ExplorerCache:
    """The latest snapshot, read again at most once per block interval, by one refresh at a time."""

    def __init__(self, node_target: str, clock: Callable[[], float] = time.monotonic):
        self.node_target = node_target
        self.clock = clock
        self._client: Client | None = None
        self._reader: ChainReader | None = None
        self._snapshot: Snapshot | None = None
        self._failure: NodeUnreachable | None = None
        self._read_at = float("-inf")
        self._interval = 1.0
        self._lock: anyio.Lock | None = None
        self._client_lock = threading.Lock()

    async def snapshot(self) -> Snapshot:
        """The cached snapshot, or a fresh one when it is older than the interval; NodeUnreachable otherwise.

        A failed read is remembered for the interval too, so an unreachable node is not asked once per request."""
        if self._lock is None:
            self._lock = anyio.Lock()
        if self._fresh():
            return self._cached()
        async with self._lock:
            if self._fresh():  # another request refreshed it while this one waited
                return self._cached()
            try:
                snapshot = await anyio.to_thread.run_sync(self._read)
            except ClientError as error:
                self._read_at = self.clock()
                happened = "did not answer" if error.code in UNREACHABLE_CODES else f"answered {error.code}"
                self._failure = NodeUnreachable(f"node {self.node_target} {happened}: {error.message}")
                raise self._failure from None
            self._snapshot, self._failure, self._read_at = snapshot, None, self.clock()
            block_s = snapshot.head["block_time_ms"] / 1000
            self._interval = min(MAX_REFRESH_S, max(MIN_REFRESH_S, block_s))
            return snapshot

    def close(self) -> None:
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client, self._reader = None, None

    def _fresh(self) -> bool:
        return self.clock() - self._read_at < self._interval

    def _cached(self) -> Snapshot:
        if self._failure is not None:
            raise self._failure
        return self._snapshot

    def _read(self) -> Snapshot:
        with self._client_lock:
            if self._reader is None:
                self._client = Client(self.node_target, timeout=NODE_TIMEOUT_S)
                self._reader = ChainReader(self._client)
            return self._reader.read()


# --- the routes -------------------------------------------------------------------------

SECTIONS = ("head", "blocks", "jobs", "executors", "models", "disputes", "slashes")


def explorer_routes(node_target: str) -> list:
    """The explorer's routes for the node at `node_target`: the page, its assets and the JSON API."""
    cache = ExplorerCache(node_target)

    async def page(request: Request):
        return FileResponse(STATIC_DIR / "explorer.html", headers={"Cache-Control": "no-cache"})

    async def snapshot(request: Request):
        return await _answer(cache, None)

    def section_endpoint(name: str):
        async def endpoint(request: Request):
            return await _answer(cache, name)
        return endpoint

    async def slash_redirect(request: Request):
        return RedirectResponse("/explorer", status_code=308)

    routes = [
        Route("/explorer", page, methods=["GET"], name="explorer"),
        Route("/explorer/", slash_redirect, methods=["GET"]),
        Route("/explorer/api/snapshot", snapshot, methods=["GET"]),
        *(Route(f"/explorer/api/{name}", section_endpoint(name), methods=["GET"]) for name in SECTIONS),
        Mount("/explorer/static", app=StaticFiles(directory=STATIC_DIR), name="explorer-static"),
    ]
    return routes


async def _answer(cache: ExplorerCache, section: str | None) -> JSONResponse:
    headers = {"Cache-Control": "no-store"}
    try:
        snapshot = await cache.snapshot()
    except NodeUnreachable as error:
        body = {"error": {"type": "node_unreachable", "message": str(error), "node": cache.node_target}}
        return JSONResponse(body, status_code=503, headers={**headers, "Retry-After": "1"})
    except Exception as error:  # a node answer this explorer cannot read: say so, stay up
        logger.exception("explorer snapshot failed")
        body = {"error": {"type": "explorer_error", "message": f"{type(error).__name__}: {str(error)[:200]}",
                          "node": cache.node_target}}
        return JSONResponse(body, status_code=502, headers=headers)
    document = snapshot.document()
    if section is None:
        return JSONResponse(document, headers=headers)
    return JSONResponse({"read_at": snapshot.read_at, section: document[section]}, headers=headers)
