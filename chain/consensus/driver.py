"""The node's consensus: runs the Tendermint machine over the network, the write-ahead log and the store.

One thread owns everything here. Peers' messages, timers and block sync answers arrive as events in a
bounded queue; the thread checks each (signatures, block parts, the block itself by re-executing it),
records it in the write-ahead log, feeds it to the machine (chain/consensus/machine.py) and acts on
what the machine says: sign and send our proposal or vote (after the log is on disk), arm a timer,
commit a decided block with the precommits that prove it, or keep evidence of a double-sign for the
next block we propose. After a decision the next height starts one block time after the last one
started, with the validator set that the committed state names.

A node behind its peers (new, restarted, or cut off) asks one that is ahead for blocks by range
(block sync) and commits each after checking its commit against that height's validator set and
re-executing it. `--dev` is the same code with one validator and no peers.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable

from chain.consensus import parts as block_parts
from chain.consensus.commit import CommitError, VotingPower, sign_proposal, sign_vote
from chain.consensus.machine import (
    FUTURE_HEIGHTS, MAX_ROUND, PRECOMMIT, PREVOTE, PROPOSE, Broadcast, Decide, Evidence, Machine, Proposal,
    Schedule, Timeout, Timeouts, Vote,
)
from chain.consensus.proposer import Priorities
from chain.consensus.wal import Wal
from chain.crypto import Keypair
from chain.node.blocks import Candidate, InvalidProposedBlock
from chain.node.core import NodeCore, ProductionHalted
from chain.storage import StoreError
from proto import consensus_pb2, p2p_pb2, types_pb2
from runtime import evidence as evidence_rules
from runtime import staking
from runtime.encoding import EncodingError, decode_canonical
from runtime.hashing import blake2b_256
from runtime.votes import SignedVote, VoteError, check_proposal, check_vote

log = logging.getLogger("inferchain.consensus")

EVENT_QUEUE = 20_000
SYNC_BATCH = 64
SYNC_RESPONSE_BYTES = 8 * 1024 * 1024
SYNC_RETRY_S = 5.0
REBROADCAST_S = 2.0
# Proposals are taken for at most this many rounds beyond the current one, and this many blocks are
# assembled at once: a validator signing proposals for every round cannot fill memory.
ROUNDS_AHEAD = 8
MAX_ASSEMBLIES = 32
# A peer's block sync requests are served at most this often.
SYNC_SERVE_INTERVAL_S = 0.2
# With other validators, a proposer stops adding transactions once executing them took this share of the
# block time (at least MIN_BUILD_S): each of them executes the block again before it may prevote for it.
BUILD_SHARE_OF_BLOCK_TIME = 0.3
MIN_BUILD_S = 0.1
MAX_EVIDENCE_POOL = 1_000
MAX_SIGNED_VOTES = 100_000
_KINDS = {types_pb2.VOTE_TYPE_PREVOTE: PREVOTE, types_pb2.VOTE_TYPE_PRECOMMIT: PRECOMMIT}
_TYPES = {PREVOTE: types_pb2.VOTE_TYPE_PREVOTE, PRECOMMIT: types_pb2.VOTE_TYPE_PRECOMMIT}


@dataclass(frozen=True)
class ConsensusStatus:
    height: int  # the height being decided
    round: int
    syncing: bool
    is_validator: bool
    validators: int
    total_power: int
    peers: int


def timeouts_for(block_time_ms: int) -> Timeouts:
    """Round timeouts scaled to the block time: a proposal has two block times to be built, sent and re-executed
    by every validator (a round that times out costs more than waiting: its block is built again)."""
    return Timeouts(
        propose_ms=max(2_000, 2 * block_time_ms),
        prevote_ms=max(500, block_time_ms // 2),
        precommit_ms=max(500, block_time_ms // 2),
        increase_ms=500,
    )


class Driver:
    def __init__(self, core: NodeCore, key: Keypair, wal: Wal, clock: Callable[[], float] = time.monotonic):
        self.core = core
        self.builder = core.blocks
        self.key = key
        self.wal = wal
        self.clock = clock
        self.chain_id = core.genesis.chain_id
        self.block_time_s = core.genesis.consensus.block_time_ms / 1000
        self.timeouts = timeouts_for(core.genesis.consensus.block_time_ms)
        self.max_parts = block_parts.max_parts(core.genesis.consensus.max_block_bytes)
        self.network = None
        # Called with the seconds from the start of a height to its block's commit (the node's metrics).
        self.observe_block: Callable[[float], None] | None = None
        self.events: queue.Queue = queue.Queue(maxsize=EVENT_QUEUE)
        self.dropped_events = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="consensus", daemon=True)
        self._timers: list[tuple[float, int, Timeout]] = []
        self._sequence = itertools.count()
        self.machine: Machine | None = None
        self.voting = VotingPower({}, 0, b"")
        self.height = 0
        self.halted = False
        self.peer_heights: dict[bytes, int] = {}
        self._sync_asked_at = 0.0
        self._served_at: dict[bytes, float] = {}
        self._height_started = 0.0
        self._next_start: float | None = None
        self._last_progress = 0.0
        self._last_rebroadcast = 0.0
        self.assemblies: dict[tuple[int, int, bytes], block_parts.Assembly] = {}
        self.waiting_blocks: dict[tuple[int, int, bytes], block_parts.Assembly] = {}
        self._reset_height_state()
        # Every vote seen, as the machine knows it, to the vote as signed: commits and evidence carry the latter.
        self.signed_votes: dict[Vote, SignedVote] = {}
        self.evidence_pool: dict[tuple, types_pb2.DuplicateVoteEvidence] = {}
        self._orphans = block_parts.OrphanParts()

    def _reset_height_state(self) -> None:
        """Forget what belonged to decided heights; keep parts and blocks already received for later ones."""
        self.verdicts: dict[bytes, Candidate | None] = {}
        self.assemblies = {key: value for key, value in self.assemblies.items() if key[0] >= self.height}
        self.waiting_blocks = {key: value for key, value in self.waiting_blocks.items() if key[0] >= self.height}
        self.own_blocks: dict[int, bytes] = {}
        self.own_messages: list[p2p_pb2.Envelope] = []

    # --- lifecycle -----------------------------------------------------------------------

    def attach(self, network) -> None:
        self.network = network

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def status(self) -> ConsensusStatus:
        machine = self.machine
        best_peer = max(self.peer_heights.values(), default=0)
        return ConsensusStatus(
            height=self.height,
            round=max(machine.round, 0) if machine is not None else 0,
            syncing=best_peer > self.core.head.height + 1,
            is_validator=self.key.public_key in self.voting.powers,
            validators=len(self.voting.powers),
            total_power=self.voting.total,
            peers=len(self.network.peers()) if self.network is not None else 0,
        )

    # --- events in (called from network threads) -------------------------------------------

    def on_message(self, peer_id: bytes, envelope: p2p_pb2.Envelope) -> None:
        kind = envelope.WhichOneof("message")
        if kind == "blocks_request":
            self._serve_blocks(peer_id, envelope.blocks_request)
        elif kind in ("proposal", "block_part", "vote", "evidence", "status", "blocks_response"):
            self._post(("message", peer_id, envelope))

    def on_peer_connected(self, peer_id: bytes) -> None:
        self._post(("connected", peer_id, None))

    def on_peer_disconnected(self, peer_id: bytes) -> None:
        self._post(("disconnected", peer_id, None))

    def _post(self, event) -> None:
        try:
            self.events.put_nowait(event)
        except queue.Full:
            self.dropped_events += 1
            if self.dropped_events % 1000 == 1:
                log.warning("consensus queue full: %d peer messages dropped so far", self.dropped_events)

    # --- the loop ----------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._begin_height(replay=True)
        except ProductionHalted:
            self.halted = True
            return
        while not self._stop.is_set():
            wait = 0.2
            if self._timers:
                wait = min(wait, max(0.0, self._timers[0][0] - self.clock()))
            if self._next_start is not None:
                wait = min(wait, max(0.0, self._next_start - self.clock()))
            try:
                event = self.events.get(timeout=wait)
            except queue.Empty:
                event = None
            try:
                if event is not None:
                    self._dispatch(*event)
                self._fire_timers()
                self._maybe_advance()
                self._maybe_sync()
                self._maybe_rebroadcast()
            except ProductionHalted:
                self.halted = True
                log.error("consensus stopped: the node can no longer write blocks")
                return
            except StoreError as error:
                self.halted = True
                self.core.halt_production(error)
                return
            except Exception:  # a bug, not bad input: keep deciding and say so loudly
                log.exception("consensus step failed")

    def _dispatch(self, kind: str, peer_id: bytes, envelope) -> None:
        if kind == "connected":
            self._send(peer_id, self._status_envelope())
            for own in self.own_messages:
                self._send(peer_id, own)
            return
        if kind == "disconnected":
            self.peer_heights.pop(peer_id, None)
            return
        message = envelope.WhichOneof("message")
        handler = getattr(self, f"_on_{message}")
        handler(peer_id, envelope)

    # --- heights -----------------------------------------------------------------------------

    def _begin_height(self, replay: bool = False) -> None:
        """Start deciding head + 1 with its validator set; at startup, replay the log of that height first."""
        head = self.core.head
        self.height = head.height + 1
        self.voting = VotingPower.of(self.builder.validator_set(self.height))
        if not self.voting.powers:
            raise RuntimeError(f"the validator set for #{self.height} is empty: the chain cannot go on")
        priorities = self._priorities(self.voting.powers)
        self._reset_height_state()
        self._next_start = None
        self._height_started = self.clock()
        self._last_progress = self._height_started
        self._orphans.forget_below(self.height)
        entries = list(self.wal.entries(self.height)) if replay else []
        for entry in entries:  # blocks we proposed before a restart are proposed again, never new ones
            if entry.WhichOneof("entry") == "own_block":
                self._replay_own_block(entry.own_block)
        if self.machine is not None and self.machine.paused and self.machine.height == self.height:
            outputs = self.machine.advance(self.voting.powers, priorities)
        else:
            self.machine = Machine(
                self.key.public_key, self.voting.powers, self.height, self._is_valid, self._new_value,
                self.timeouts, priorities, auto_advance=False,
            )
            outputs = self.machine.start()
        self._act(outputs)
        if entries:
            self._replay(entries)
        self._adopt_waiting_blocks()

    def _priorities(self, powers: dict[bytes, int]) -> Priorities:
        """Priorities at this height: from the epoch's first height, one step per height (deterministic on restart)."""
        epoch = staking.read_params(self.core.store.state).epoch_blocks
        first = max(((self.height - 1) // epoch) * epoch + 1, self.core.genesis.initial_height)
        priorities = Priorities.start(powers)
        for _ in range(self.height - first):
            priorities = priorities.next_height()
        return priorities

    def _replay(self, entries: list[consensus_pb2.WalEntry]) -> None:
        """Feed the machine what the log recorded for this height, in order, so it signs what it signed before."""
        for entry in entries:
            which = entry.WhichOneof("entry")
            if which == "proposal":
                self._replay_proposal(entry.proposal)
            elif which == "vote":
                self._take_vote(entry.vote, None, log_entry=False)
            elif which == "timeout":
                timeout = entry.timeout
                if timeout.step in (PROPOSE, PREVOTE, PRECOMMIT):
                    self._act(self.machine.handle(Timeout(timeout.step, timeout.height, timeout.round)))
        log.info("replayed %d consensus log entries for #%d", len(entries), self.height)

    def _maybe_advance(self) -> None:
        if self._next_start is not None and self.clock() >= self._next_start:
            self._begin_height()

    # --- machine callbacks -------------------------------------------------------------------------

    def _is_valid(self, value: bytes) -> bool:
        return self.verdicts.get(value) is not None

    def _new_value(self, height: int) -> bytes:
        round_number = self.machine.round
        if round_number in self.own_blocks:
            return self.own_blocks[round_number]
        evidence = list(self.evidence_pool.values())
        budget = None
        if len(self.voting.powers) > 1:
            budget = max(MIN_BUILD_S, BUILD_SHARE_OF_BLOCK_TIME * self.block_time_s)
        candidate = self.core.propose(evidence, budget)
        self.verdicts[candidate.block_hash] = candidate
        self.own_blocks[round_number] = candidate.block_hash
        entry = consensus_pb2.WalEntry(
            own_block=consensus_pb2.WalOwnBlock(round=round_number, block=candidate.block.SerializeToString())
        )
        self.wal.append(height, entry)
        return candidate.block_hash

    def _replay_own_block(self, own: consensus_pb2.WalOwnBlock) -> None:
        block = types_pb2.Block.FromString(own.block)
        try:
            candidate = self.builder.check(block, self.key.public_key)
        except InvalidProposedBlock as error:  # time moved backwards past the drift bound: propose anew
            log.warning("not re-proposing the logged block of round %d: %s", own.round, error)
            return
        self.verdicts[candidate.block_hash] = candidate
        self.own_blocks[own.round] = candidate.block_hash

    # --- acting on the machine's outputs ---------------------------------------------------------------

    def _act(self, outputs) -> None:
        for output in outputs:
            if isinstance(output, Broadcast):
                self._send_own(output.message)
            elif isinstance(output, Schedule):
                due = self.clock() + output.delay_ms / 1000
                heapq.heappush(self._timers, (due, next(self._sequence), output.timeout))
            elif isinstance(output, Decide):
                self._decided(output)
            elif isinstance(output, Evidence):
                self._record_evidence(output.first, output.second)

    def _send_own(self, message) -> None:
        if self.key.public_key not in self.voting.powers:
            return  # a node that follows without a vote
        self.wal.sync()  # what made us sign is on disk before anything signed leaves
        if isinstance(message, Proposal):
            candidate = self.verdicts[message.value]
            pieces = block_parts.split(candidate.block)
            signed = sign_proposal(
                self.key, self.chain_id, message.height, message.round, message.valid_round, message.value,
                block_parts.part_hashes(pieces),
            )
            envelopes = [p2p_pb2.Envelope(proposal=signed)] + [
                p2p_pb2.Envelope(block_part=p2p_pb2.BlockPart(
                    height=message.height, round=message.round, block_hash=message.value, index=index, data=data,
                ))
                for index, data in enumerate(pieces)
            ]
        else:
            vote = sign_vote(self.key, self.chain_id, _TYPES[message.kind], message.height, message.round, message.value)
            self._remember_vote(message, SignedVote(types_pb2.VoteBody.FromString(vote.body), vote))
            envelopes = [p2p_pb2.Envelope(vote=vote)]
        self.own_messages.extend(envelopes)
        for envelope in envelopes:
            self._broadcast(envelope)

    def _decided(self, decision: Decide) -> None:
        candidate = self.verdicts[decision.value]
        precommits = sorted(
            (self.signed_votes[vote].vote for vote in decision.precommits),
            key=lambda vote: vote.body,
        )
        commit = types_pb2.Commit(
            height=decision.height, round=decision.round, block_hash=decision.value, precommits=precommits
        )
        self._commit(candidate, commit, f"round {decision.round}")
        self._next_start = max(self.clock(), self._height_started + self.block_time_s)

    def _commit(self, candidate: Candidate, commit: types_pb2.Commit, how: str) -> None:
        started = time.perf_counter()
        self.core.commit(candidate, commit)
        self.wal.forget_below(candidate.height + 1)
        self._forget_old_votes(candidate.height)
        self._prune_evidence(candidate)
        self._last_progress = self.clock()
        log.info(
            "finalized #%d (%s) with %d transactions, %s, in %.0f ms",
            candidate.height, candidate.block_hash.hex()[:16], len(candidate.included), how,
            (time.perf_counter() - started) * 1000,
        )
        self._broadcast(self._status_envelope())
        if self.observe_block is not None:
            self.observe_block(self.clock() - self._height_started)

    # --- messages from peers --------------------------------------------------------------------------

    def _on_vote(self, peer_id: bytes, envelope: p2p_pb2.Envelope) -> None:
        if not self._first_seen(envelope):
            return
        self._take_vote(envelope.vote, peer_id)

    def _take_vote(self, vote: types_pb2.Vote, peer_id: bytes | None, log_entry: bool = True) -> None:
        try:
            signed = check_vote(vote, self.chain_id)
        except VoteError as error:
            self._misbehaved(peer_id, f"an invalid vote: {error}")
            return
        body = signed.body
        if body.round > MAX_ROUND or body.height > self.height + FUTURE_HEIGHTS:
            return
        message = Vote(_KINDS[body.type], body.height, body.round, body.block_hash, body.validator)
        self._remember_vote(message, signed)
        if peer_id is not None and body.height + 1 >= self.height:  # old heights' votes only matter here
            self._broadcast(p2p_pb2.Envelope(vote=vote), exclude=peer_id)
        if log_entry and body.height >= self.height:
            self.wal.append(body.height, consensus_pb2.WalEntry(vote=vote))
        self._act(self.machine.handle(message))

    def _remember_vote(self, message: Vote, signed: SignedVote) -> None:
        if len(self.signed_votes) < MAX_SIGNED_VOTES:
            self.signed_votes[message] = signed

    def _forget_old_votes(self, decided: int) -> None:
        # Votes of the last heights stay for evidence (the machine keeps as many); older ones go.
        oldest = decided - 100
        if len(self.signed_votes) > 1_000 or len(self.signed_votes) >= MAX_SIGNED_VOTES:
            self.signed_votes = {key: vote for key, vote in self.signed_votes.items() if key.height > oldest}

    def _on_proposal(self, peer_id: bytes, envelope: p2p_pb2.Envelope) -> None:
        if not self._first_seen(envelope):
            return
        try:
            body = check_proposal(envelope.proposal, self.chain_id)
        except VoteError as error:
            self._misbehaved(peer_id, f"an invalid proposal: {error}")
            return
        if not self.height <= body.height <= self.height + 1 or body.round > self._round() + ROUNDS_AHEAD:
            return
        if body.proposer not in self.voting.powers or (
            body.height == self.height and body.proposer != self.machine.proposer(body.round)
        ):
            return  # not this round's proposer: the machine would ignore it
        if len(self.assemblies) + len(self.waiting_blocks) >= MAX_ASSEMBLIES:
            return
        if len(body.part_hashes) > self.max_parts:
            self._misbehaved(peer_id, f"a proposal of {len(body.part_hashes)} parts")
            return
        self._broadcast(envelope, exclude=peer_id)
        key = (body.height, body.round, body.block_hash)
        if key in self.assemblies:
            return
        assembly = block_parts.Assembly(envelope.proposal, body)
        self.assemblies[key] = assembly
        for index, data in self._orphans.take(*key):
            if assembly.add(index, data):
                self._broadcast(p2p_pb2.Envelope(block_part=p2p_pb2.BlockPart(
                    height=body.height, round=body.round, block_hash=body.block_hash, index=index, data=data,
                )), exclude=peer_id)
        self._maybe_complete(key)

    def _round(self) -> int:
        return max(self.machine.round, 0) if self.machine is not None else 0

    def _on_block_part(self, peer_id: bytes, envelope: p2p_pb2.Envelope) -> None:
        part = envelope.block_part
        if not self.height <= part.height <= self.height + 1 or len(part.data) > block_parts.PART_BYTES:
            return
        if not self._first_seen(envelope):
            return
        key = (part.height, part.round, part.block_hash)
        assembly = self.assemblies.get(key)
        if assembly is None:
            self._orphans.add(part)
            return
        if not assembly.add(part.index, part.data):
            return
        self._broadcast(envelope, exclude=peer_id)
        self._maybe_complete(key)

    def _maybe_complete(self, key) -> None:
        assembly = self.assemblies.get(key)
        if assembly is None or not assembly.complete:
            return
        del self.assemblies[key]
        if key[0] > self.height:
            self.waiting_blocks[key] = assembly  # judged once this node reaches that height
            return
        self._take_proposal(assembly.proposal, assembly.body, assembly.data(), log_entry=True)

    def _adopt_waiting_blocks(self) -> None:
        waiting = [(key, assembly) for key, assembly in self.waiting_blocks.items() if key[0] == self.height]
        self.waiting_blocks = {}
        for _, assembly in waiting:
            self._take_proposal(assembly.proposal, assembly.body, assembly.data(), log_entry=True)

    def _replay_proposal(self, logged: consensus_pb2.WalProposal) -> None:
        try:
            body = check_proposal(logged.proposal, self.chain_id)
        except VoteError:
            return
        self._take_proposal(logged.proposal, body, logged.block, log_entry=False)

    def _take_proposal(self, proposal: types_pb2.SignedProposal, body: types_pb2.ProposalBody, data: bytes,
                       log_entry: bool) -> None:
        """Judge a complete proposed block once (by re-executing it) and give the proposal to the machine."""
        if body.block_hash not in self.verdicts:
            self.verdicts[body.block_hash] = self._judge(body, data)
        if log_entry:
            self.wal.append(body.height, consensus_pb2.WalEntry(
                proposal=consensus_pb2.WalProposal(proposal=proposal, block=data)
            ))
        self._act(self.machine.handle(
            Proposal(body.height, body.round, body.block_hash, body.valid_round, body.proposer)
        ))

    def _judge(self, body: types_pb2.ProposalBody, data: bytes) -> Candidate | None:
        try:
            block = decode_canonical(types_pb2.Block, data, "proposed block")
            if blake2b_256(block.header) != body.block_hash:
                raise InvalidProposedBlock("its header does not hash to the proposed block hash")
            return self.builder.check(block, body.proposer)
        except (EncodingError, InvalidProposedBlock) as error:
            log.warning("prevoting nil on the block proposed for #%d round %d: %s", body.height, body.round, error)
            return None

    def _on_evidence(self, peer_id: bytes, envelope: p2p_pb2.Envelope) -> None:
        if not self._first_seen(envelope):
            return
        try:
            first, second = evidence_rules.check_evidence_format(envelope.evidence, self.chain_id)
        except ValueError as error:
            self._misbehaved(peer_id, f"invalid evidence: {error}")
            return
        self._add_evidence(envelope.evidence, first.key)
        self._broadcast(envelope, exclude=peer_id)

    def _record_evidence(self, first: Vote, second: Vote) -> None:
        signed = [self.signed_votes.get(vote) for vote in (first, second)]
        if None in signed:
            return
        evidence = evidence_rules.make_evidence(*signed)
        log.warning(
            "double-sign by %s at #%d round %d (%s): evidence kept for the next block",
            first.sender.hex()[:16], first.height, first.round, first.kind,
        )
        self._add_evidence(evidence, signed[0].key)
        self._broadcast(p2p_pb2.Envelope(evidence=evidence))

    def _add_evidence(self, evidence: types_pb2.DuplicateVoteEvidence, key: tuple) -> None:
        if key not in self.evidence_pool and len(self.evidence_pool) < MAX_EVIDENCE_POOL:
            self.evidence_pool[key] = evidence

    def _prune_evidence(self, candidate: Candidate) -> None:
        state = self.core.store.state
        for key, evidence in list(self.evidence_pool.items()):
            if staking.check_evidence(state, evidence, candidate.height + 1) is not None:
                del self.evidence_pool[key]

    def _on_status(self, peer_id: bytes, envelope: p2p_pb2.Envelope) -> None:
        self.peer_heights[peer_id] = envelope.status.height

    # --- timers ----------------------------------------------------------------------------------------

    def _fire_timers(self) -> None:
        now = self.clock()
        while self._timers and self._timers[0][0] <= now:
            _, _, timeout = heapq.heappop(self._timers)
            if timeout.height != self.height or self.machine.paused:
                continue
            self.wal.append(timeout.height, consensus_pb2.WalEntry(
                timeout=consensus_pb2.WalTimeout(step=timeout.step, height=timeout.height, round=timeout.round)
            ))
            self._act(self.machine.handle(timeout))

    # --- block sync ------------------------------------------------------------------------------------

    def _maybe_sync(self) -> None:
        if self.network is None or not self.peer_heights:
            return
        head = self.core.head.height
        peer_id, best = max(self.peer_heights.items(), key=lambda item: item[1])
        if best <= head or self.clock() - self._sync_asked_at < SYNC_RETRY_S:
            return
        # One block behind is normal for a moment (peers decide at slightly different times).
        if best == head + 1 and self.clock() - self._last_progress < 2 * self.block_time_s + 1:
            return
        self._sync_asked_at = self.clock()
        request = p2p_pb2.BlocksRequest(from_height=head + 1, count=SYNC_BATCH)
        self._send(peer_id, p2p_pb2.Envelope(blocks_request=request))

    def _serve_blocks(self, peer_id: bytes, request: p2p_pb2.BlocksRequest) -> None:
        """Answer a block sync request from the store (on the network's thread: reads only)."""
        now = self.clock()
        if now - self._served_at.get(peer_id, -SYNC_SERVE_INTERVAL_S) < SYNC_SERVE_INTERVAL_S:
            return  # asking faster than anyone syncing needs
        self._served_at[peer_id] = now
        if len(self._served_at) > 4096:
            self._served_at.clear()
        store = self.core.store
        response = p2p_pb2.BlocksResponse()
        size = 0
        for height in range(request.from_height, request.from_height + min(request.count, SYNC_BATCH)):
            block_hash = store.block_hash_at(height)
            if block_hash is None:
                break
            finalized = store.finalized_block(block_hash)
            size += finalized.ByteSize()
            if response.blocks and size > SYNC_RESPONSE_BYTES:
                break
            response.blocks.append(finalized)
        self._send(peer_id, p2p_pb2.Envelope(blocks_response=response))

    def _on_blocks_response(self, peer_id: bytes, envelope: p2p_pb2.Envelope) -> None:
        start = self.core.head.height
        for finalized in envelope.blocks_response.blocks:
            height = self.core.head.height + 1
            block_hash = blake2b_256(finalized.block.header)
            try:
                header = decode_canonical(types_pb2.Header, finalized.block.header, "block header")
                if header.height != height:
                    continue
                self.builder.check_commit(height, block_hash, finalized.commit)
                candidate = self.builder.check(finalized.block)
            except (EncodingError, CommitError, InvalidProposedBlock) as error:
                self._misbehaved(peer_id, f"a block that does not verify in sync: {error}")
                return
            self._commit(candidate, finalized.commit, "by block sync")
        if self.core.head.height == start:
            # Nothing new: the peer claimed a height it does not serve. Believe its next status instead.
            self.peer_heights[peer_id] = start
            return
        self.machine = None  # the heights it was deciding are final now
        self._timers = []
        self._begin_height()
        self._sync_asked_at = 0.0  # more to fetch: ask again at once

    # --- sending -----------------------------------------------------------------------------------------

    def _status_envelope(self) -> p2p_pb2.Envelope:
        head = self.core.head
        round_number = max(self.machine.round, 0) if self.machine is not None else 0
        return p2p_pb2.Envelope(status=p2p_pb2.Status(height=head.height, block_hash=head.hash, round=round_number))

    def _broadcast(self, envelope: p2p_pb2.Envelope, exclude: bytes | None = None) -> None:
        if self.network is not None:
            self.network.broadcast(envelope, exclude=exclude)

    def _send(self, peer_id: bytes, envelope: p2p_pb2.Envelope) -> None:
        if self.network is not None:
            self.network.send(peer_id, envelope)

    def _first_seen(self, envelope: p2p_pb2.Envelope) -> bool:
        return self.network is None or self.network.first_seen(envelope)

    def _maybe_rebroadcast(self) -> None:
        """Send our messages of this height again while it makes no progress: a peer may have missed them."""
        now = self.clock()
        if now - self._last_progress < REBROADCAST_S or now - self._last_rebroadcast < REBROADCAST_S:
            return
        self._last_rebroadcast = now
        for envelope in self.own_messages[-64:]:
            self._broadcast(envelope)
        self._broadcast(self._status_envelope())

    def _misbehaved(self, peer_id: bytes | None, what: str) -> None:
        if peer_id is None:
            return
        log.warning("peer %s sent %s; disconnecting", peer_id.hex()[:16], what)
        if self.network is not None:
            self.network.disconnect(peer_id, what)
