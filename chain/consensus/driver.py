"""The node's consensus: runs the Tendermint machine over the network, the write-ahead log and the store.

One thread owns everything here. Peers' messages, timers and block sync answers arrive as events in a
bounded queue; the thread checks each (signatures, block parts, the block itself by re-executing it),
records it in the write-ahead log, feeds it to the machine (chain/consensus/machine.py) and acts on
what the machine says: sign and send our proposal or vote (after the log is on disk), arm a timer,
commit a decided block with the precommits that prove it, or keep evidence of a double-sign for the
next block we propose. After a decision the next height starts one block time after the last one
started, with the validator set that the committed state names.

A node behind its peers (new, restarted, or cut off) follows the chain first: it asks peers that are
ahead for blocks by range (block sync, chain/consensus/sync.py), commits each after checking its commit
against that height's validator set and re-executing it, and joins consensus only once no trusted peer
claims more than the next height. Every signature goes through the validator's sign state
(chain/consensus/signer.py), which refuses to sign twice at one height, round and step whatever the
database or the log hold. Votes are taken only from the validator set of their height, within a window
of heights; a peer that sends what no honest peer would is disconnected and banned by the network.
`--dev` is the same code with one validator and no peers.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable, Container

from chain.consensus import parts as block_parts
from chain.consensus.commit import CommitError, VotingPower, precommit_time_ms
from chain.consensus.evidence_pool import EvidencePool
from chain.consensus.machine import (
    EVIDENCE_HEIGHTS, FUTURE_HEIGHTS, MAX_ROUND, PRECOMMIT, PREVOTE, PROPOSE, Broadcast, Decide, Evidence, Machine,
    Proposal, Schedule, Timeout, Timeouts, Vote,
)
from chain.consensus.proposer import Priorities
from chain.consensus.signer import Signer
from chain.consensus.signstate import SignRefused, SignStateError
from chain.consensus.sync import SYNC_BATCH, BlockSync
from chain.consensus.vote_store import SignedVotes
from chain.consensus.wal import Wal, WalError
from chain.node.blocks import Candidate, InvalidProposedBlock
from chain.p2p.scoring import PENALTY_USELESS
from chain.node.core import NodeCore, ProductionHalted
from chain.storage import StoreError
from proto import consensus_pb2, p2p_pb2, types_pb2
from runtime import evidence as evidence_rules
from runtime import slashing, staking
from runtime.encoding import EncodingError, decode_canonical
from runtime.hashing import blake2b_256
from runtime.votes import SignedVote, VoteError, check_proposal, decode_vote, verify_vote

log = logging.getLogger("inferchain.consensus")

EVENT_QUEUE = 20_000
# And at most this many bytes of peer messages wait in it (20,000 block parts would be 5 GB).
EVENT_QUEUE_BYTES = 64 * 1024 * 1024
SYNC_RESPONSE_BYTES = 8 * 1024 * 1024
REBROADCAST_S = 2.0
SYNCED = "by block sync"
# Messages already queued from a peer disconnected for misbehaving are dropped for this long.
IGNORE_MISBEHAVING_S = 60.0
# Proposals are taken for at most this many rounds beyond the current one, and this many blocks are
# assembled at once: a validator signing proposals for every round cannot fill memory.
ROUNDS_AHEAD = 8
MAX_ASSEMBLIES = 32
# With other validators, a proposer stops adding transactions once executing them took this share of the
# block time (at least MIN_BUILD_S): each of them executes the block again before it may prevote for it.
BUILD_SHARE_OF_BLOCK_TIME = 0.3
MIN_BUILD_S = 0.1
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
    signatures_refused: int = 0


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
    def __init__(self, core: NodeCore, signer: Signer, wal: Wal, clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time):
        self.core = core
        self.builder = core.blocks
        self.signer = signer
        self.me = signer.public_key
        self.wal = wal
        self.clock = clock
        self.wall_clock = wall_clock  # only for the time in this validator's precommits (BFT time)
        self.chain_id = core.genesis.chain_id
        self.block_time_s = core.genesis.consensus.block_time_ms / 1000
        self.timeouts = timeouts_for(core.genesis.consensus.block_time_ms)
        self.max_parts = block_parts.max_parts(core.genesis.consensus.max_block_bytes)
        self.network = None
        # Called with the seconds from the start of a height to its block's commit (the node's metrics).
        self.observe_block: Callable[[float], None] | None = None
        self.events: queue.Queue = queue.Queue(maxsize=EVENT_QUEUE)
        self.dropped_events = 0
        self._queued_bytes = 0
        self._queued_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="consensus", daemon=True)
        self._timers: list[tuple[float, int, Timeout]] = []
        self._sequence = itertools.count()
        self.machine: Machine | None = None
        self.height = core.head.height + 1
        # Known before the thread starts, so that status() is right from the first moment.
        self.voting = VotingPower.of(self.builder.validator_set(self.height))
        self.halted = False
        self.sync = BlockSync(clock)
        self._height_started = 0.0
        self._next_start: float | None = None
        self._last_progress = 0.0
        self._last_rebroadcast = 0.0
        self._last_catch_up_log = 0.0
        self.assemblies: dict[tuple[int, int, bytes], block_parts.Assembly] = {}
        self.waiting_blocks: dict[tuple[int, int, bytes], block_parts.Assembly] = {}
        self._reset_height_state()
        # Votes as signed, for commits and evidence; validator sets of recent heights, to check their votes.
        self.votes = SignedVotes()
        self._voter_sets: dict[int, frozenset[bytes]] = {}
        self.evidence = EvidencePool()
        self._orphans = block_parts.OrphanParts()
        self._ignored: dict[bytes, float] = {}  # peers disconnected for misbehaving, until when

    def _reset_height_state(self) -> None:
        """Forget what belonged to decided heights; keep parts and blocks already received for later ones."""
        self.verdicts: dict[bytes, Candidate | None] = {}
        self.assemblies = {key: value for key, value in self.assemblies.items() if key[0] >= self.height}
        self.waiting_blocks = {key: value for key, value in self.waiting_blocks.items() if key[0] >= self.height}
        self.own_blocks: dict[int, bytes] = {}
        self.own_messages: list[p2p_pb2.Envelope] = []
        # What this validator signed at this height before a restart (from the log): sent again as it was.
        self.signed_before: dict[tuple[int, str], tuple[bytes, p2p_pb2.Envelope]] = {}

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
        voting = self.voting
        return ConsensusStatus(
            height=self.height,
            round=max(machine.round, 0) if machine is not None else 0,
            syncing=machine is None,
            is_validator=self.me in voting.powers,
            validators=len(voting.powers),
            total_power=voting.total,
            peers=len(self.network.peers()) if self.network is not None else 0,
            signatures_refused=self.signer.refused,
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
        size = event[2].ByteSize() if event[2] is not None else 0
        with self._queued_lock:
            full = self._queued_bytes + size > EVENT_QUEUE_BYTES
            if not full:
                self._queued_bytes += size
        try:
            if full:
                raise queue.Full
            self.events.put_nowait((*event, size))
        except queue.Full:
            if not full:
                with self._queued_lock:
                    self._queued_bytes -= size
            self.dropped_events += 1
            if self.dropped_events % 1000 == 1:
                log.warning("consensus queue full: %d peer messages dropped so far", self.dropped_events)

    # --- the loop ----------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._begin_height()
        except ProductionHalted:
            self.halted = True
            return
        except (StoreError, SignStateError, WalError) as error:
            self.halted = True
            self.core.halt_production(error)
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
                    *event, size = event
                    with self._queued_lock:
                        self._queued_bytes -= size
                    self._dispatch(*event)
                self._fire_timers()
                self._maybe_advance()
                self._maybe_sync()
                self._maybe_join()
                self._maybe_rebroadcast()
            except ProductionHalted:
                self.halted = True
                log.error("consensus stopped: the node can no longer write blocks")
                return
            except (StoreError, SignStateError, WalError) as error:  # the disk failed: nothing more is signed
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
            self.sync.forget(peer_id)
            return
        if self._ignored.get(peer_id, 0.0) > self.clock():
            return  # disconnected for misbehaving: what it sent before that is not read
        message = envelope.WhichOneof("message")
        if self.machine is None and message in ("proposal", "block_part", "vote"):
            return  # following the chain: this node takes part again once it has caught up
        handler = getattr(self, f"_on_{message}")
        handler(peer_id, envelope)

    # --- heights -----------------------------------------------------------------------------

    def _begin_height(self) -> None:
        """Start deciding head + 1 with its validator set; a new machine first replays that height's log."""
        head = self.core.head
        self.height = head.height + 1
        self.voting = VotingPower.of(self.builder.validator_set(self.height))
        if not self.voting.powers:
            raise RuntimeError(f"the validator set for #{self.height} is empty: the chain cannot go on")
        self._reset_height_state()
        self._next_start = None
        self._height_started = self.clock()
        self._last_progress = self._height_started
        self._orphans.forget_below(self.height)
        if self._waits_for_signed_heights():
            self.machine = None
            self._timers = []
            return
        if self.machine is not None and self.machine.paused and self.machine.height == self.height:
            self._act(self.machine.advance(self.voting.powers, self._priorities(self.voting.powers)))
        else:
            self._start_machine()
        self._adopt_waiting_blocks()

    def _start_machine(self) -> None:
        """A new machine at this height, fed what the log recorded for it, so it signs what it signed before."""
        entries = list(self.wal.entries(self.height))
        for entry in entries:  # blocks we proposed before a restart are proposed again, never new ones
            if entry.WhichOneof("entry") == "own_block":
                self._replay_own_block(entry.own_block)
        self.machine = Machine(
            self.me, self.voting.powers, self.height, self._is_valid, self._new_value,
            self.timeouts, self._priorities(self.voting.powers), auto_advance=False, may_sign=self._may_sign,
        )
        self._timers = []
        for entry in entries:  # our own signatures first: the machine's outputs are checked against them
            if entry.WhichOneof("entry") == "vote":
                self._remember_own_vote(entry.vote)
            elif entry.WhichOneof("entry") == "proposal":
                self._remember_own_proposal(entry.proposal.proposal)
        self._act(self.machine.start())
        if entries:
            self._replay(entries)

    def _waits_for_signed_heights(self) -> bool:
        """Whether this validator signed at a later height than this one before (its database was removed or is
        behind): the sign state would refuse every signature here, so it only follows the chain until there."""
        last = self.signer.state.last
        if last is None or self.me not in self.voting.powers or self.height >= last.height:
            return False
        now = self.clock()
        if now - self._last_catch_up_log > 30:
            self._last_catch_up_log = now
            log.info("following the chain without voting up to #%d, where this validator last signed (%s); now at #%d",
                     last.height, self.signer.state.path, self.height - 1)
        return True

    def _priorities(self, powers: dict[bytes, int]) -> Priorities:
        """Priorities at this height: from the epoch's first height, one step per height (deterministic on restart)."""
        epoch = staking.read_params(self.core.store.state).epoch_blocks
        first = max(((self.height - 1) // epoch) * epoch + 1, self.core.genesis.initial_height)
        priorities = Priorities.start(powers)
        for _ in range(self.height - first):
            priorities = priorities.next_height()
        return priorities

    def _replay(self, entries: list[consensus_pb2.WalEntry]) -> None:
        """Feed the machine what the log recorded for this height, in order (our own votes are not inputs)."""
        for entry in entries:
            which = entry.WhichOneof("entry")
            if which == "proposal" and entry.proposal.block:  # ours are logged without the block: not inputs
                self._replay_proposal(entry.proposal)
            elif which == "vote" and not self._is_own(entry.vote):
                self._take_vote(entry.vote, None, log_entry=False)
            elif which == "timeout":
                timeout = entry.timeout
                if timeout.step in (PROPOSE, PREVOTE, PRECOMMIT):
                    self._act(self.machine.handle(Timeout(timeout.step, timeout.height, timeout.round)))
        log.info("replayed %d consensus log entries for #%d", len(entries), self.height)

    def _is_own(self, vote: types_pb2.Vote) -> bool:
        try:
            return decode_vote(vote, self.chain_id).body.validator == self.me
        except VoteError:
            return False

    def _remember_own_vote(self, vote: types_pb2.Vote) -> None:
        try:
            body = decode_vote(vote, self.chain_id).body
        except VoteError:
            return
        if body.validator == self.me and body.height == self.height:
            self.signed_before[(body.round, _KINDS[body.type])] = (body.block_hash, p2p_pb2.Envelope(vote=vote))

    def _remember_own_proposal(self, proposal: types_pb2.SignedProposal) -> None:
        try:
            body = check_proposal(proposal, self.chain_id)
        except VoteError:
            return
        if body.proposer == self.me and body.height == self.height:
            self.signed_before[(body.round, PROPOSE)] = (body.block_hash, p2p_pb2.Envelope(proposal=proposal))

    def _may_sign(self, message: Proposal | Vote) -> bool:
        """The machine's signing guard: what this validator signed at this round and step before a restart (the
        log), else the sign state. A refusal is one log line; the machine then neither sends nor counts it."""
        step = PROPOSE if isinstance(message, Proposal) else message.kind
        if self.me not in self.voting.powers:
            return True  # a follower signs nothing (_send_own), and its own messages count for nothing
        before = self._signed_again(message.round, step, message.value)
        if before is not None:
            return before.ByteSize() > 0  # the same message again; an empty envelope: another one (refused)
        try:
            self.signer.state.authorize(message.height, message.round, step, message.value)
        except SignRefused as refusal:
            self.signer.refused += 1
            log.error("%s", refusal)
            return False
        return True

    def _maybe_advance(self) -> None:
        if self._next_start is not None and self.clock() >= self._next_start:
            self._begin_height()

    def _maybe_join(self) -> None:
        """Take part in consensus again once caught up (after block sync, or after the heights signed before)."""
        if self.machine is None and self._next_start is None and not self.sync.behind(self.core.head.height):
            self._begin_height()

    # --- machine callbacks -------------------------------------------------------------------------

    def _is_valid(self, value: bytes) -> bool:
        return self.verdicts.get(value) is not None

    def _new_value(self, height: int) -> bytes:
        round_number = self.machine.round
        if round_number in self.own_blocks:
            return self.own_blocks[round_number]
        budget = None
        if len(self.voting.powers) > 1:
            budget = max(MIN_BUILD_S, BUILD_SHARE_OF_BLOCK_TIME * self.block_time_s)
        candidate = self.core.propose(self.evidence.pending(), budget)
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
            candidate = self.builder.check(block, self.me)
        except InvalidProposedBlock as error:  # the log is of another head (the database was replaced)
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
        if self.me not in self.voting.powers:
            return  # a node that follows without a vote
        self.wal.sync()  # what made us sign is on disk before anything signed leaves
        envelopes = self._sign_proposal(message) if isinstance(message, Proposal) else self._sign_vote(message)
        self.own_messages.extend(envelopes)
        for envelope in envelopes:
            self._broadcast(envelope)

    def _sign_proposal(self, message: Proposal) -> list[p2p_pb2.Envelope]:
        candidate = self.verdicts[message.value]
        pieces = block_parts.split(candidate.block)
        before = self._signed_again(message.round, PROPOSE, message.value)
        if before is not None:
            if not before.HasField("proposal"):
                return []
            signed = before.proposal
        else:
            signed = self.signer.proposal(
                message.height, message.round, message.valid_round, message.value, block_parts.part_hashes(pieces)
            )
            if signed is None:
                return []
            self.wal.append(message.height, consensus_pb2.WalEntry(proposal=consensus_pb2.WalProposal(proposal=signed)))
        return [p2p_pb2.Envelope(proposal=signed)] + [
            p2p_pb2.Envelope(block_part=p2p_pb2.BlockPart(
                height=message.height, round=message.round, block_hash=message.value, index=index, data=data,
            ))
            for index, data in enumerate(pieces)
        ]

    def _signed_again(self, round_number: int, step: str, value: bytes) -> p2p_pb2.Envelope | None:
        """What this validator signed at this round and step before a restart (from the log): None when nothing,
        an empty Envelope when it signed another value (refused, one line), else the envelope as signed."""
        before = self.signed_before.get((round_number, step))
        if before is None:
            return None
        signed_value, envelope = before
        if signed_value != value:
            log.error("not signing a %s for %s at #%d round %d: before the restart this validator signed one for %s",
                      step, value.hex()[:16] or "nil", self.height, round_number, signed_value.hex()[:16] or "nil")
            self.signer.refused += 1
            return p2p_pb2.Envelope()
        return envelope

    def _sign_vote(self, message: Vote) -> list[p2p_pb2.Envelope]:
        before = self._signed_again(message.round, message.kind, message.value)
        if before is not None:
            if not before.HasField("vote"):
                return []
            vote = before.vote
        else:
            time_ms = 0
            if message.kind == PRECOMMIT and message.value:
                block_time_ms = self.verdicts[message.value].header.time_ms
                time_ms = precommit_time_ms(int(self.wall_clock() * 1000), block_time_ms)
            vote = self.signer.vote(_TYPES[message.kind], message.height, message.round, message.value, time_ms)
            if vote is None:
                return []
            self.wal.append(message.height, consensus_pb2.WalEntry(vote=vote))
        self.votes.add(message, SignedVote(types_pb2.VoteBody.FromString(vote.body), vote))
        return [p2p_pb2.Envelope(vote=vote)]

    def _decided(self, decision: Decide) -> None:
        candidate = self.verdicts[decision.value]
        signed = [self.votes.get(vote) for vote in decision.precommits]
        precommits = sorted((vote.vote for vote in signed if vote is not None), key=lambda vote: vote.body)
        commit = types_pb2.Commit(
            height=decision.height, round=decision.round, block_hash=decision.value, precommits=precommits
        )
        try:
            self.builder.check_commit(decision.height, decision.value, commit)
        except CommitError as error:  # only when one of our own votes was refused: block sync brings the block
            log.error("decided #%d but cannot prove it (%s): waiting for block sync", decision.height, error)
            self.machine = None
            return
        self._commit(candidate, commit, f"round {decision.round}")
        self._next_start = max(self.clock(), self._height_started + self.block_time_s)

    def _commit(self, candidate: Candidate, commit: types_pb2.Commit, how: str) -> None:
        started = time.perf_counter()
        self.core.commit(candidate, commit)
        self.wal.forget_below(candidate.height + 1)
        self.votes.forget_below(candidate.height + 1 - EVIDENCE_HEIGHTS)
        self.evidence.prune(self.core.store.state, candidate.height + 1)
        self._last_progress = self.clock()
        log.info(
            "finalized #%d (%s) with %d transactions, %s, in %.0f ms",
            candidate.height, candidate.block_hash.hex()[:16], len(candidate.included), how,
            (time.perf_counter() - started) * 1000,
        )
        if how != SYNCED:  # block sync announces once per batch: peers limit Status messages per second
            self._broadcast(self._status_envelope())
        if self.observe_block is not None:
            self.observe_block(self.clock() - self._height_started)

    # --- messages from peers --------------------------------------------------------------------------

    def _on_vote(self, peer_id: bytes, envelope: p2p_pb2.Envelope) -> None:
        if not self._first_seen(envelope):
            return
        self._take_vote(envelope.vote, peer_id)

    def _take_vote(self, vote: types_pb2.Vote, peer_id: bytes | None, log_entry: bool = True) -> None:
        """Check a vote (who signed it for which height before its signature), keep it, log it, relay it, decide."""
        try:
            decoded = decode_vote(vote, self.chain_id)
        except VoteError as error:
            self._misbehaved(peer_id, f"an invalid vote: {error}")
            return
        body = decoded.body
        if body.round > MAX_ROUND or not self.height - EVIDENCE_HEIGHTS < body.height <= self.height + FUTURE_HEIGHTS:
            return
        if body.validator not in self._voters(body.height):
            if body.height <= self.height:  # that height's set is known to every honest node: none relays this
                self._misbehaved(peer_id, f"a vote for #{body.height} from {body.validator.hex()[:16]}, "
                                          "not a validator at that height")
            return
        message = Vote(_KINDS[body.type], body.height, body.round, body.block_hash, body.validator)
        if message in self.votes:
            return
        try:
            signed = verify_vote(decoded)
        except VoteError as error:
            self._misbehaved(peer_id, f"an invalid vote: {error}")
            return
        if not self.votes.add(message, signed):
            return  # the validator signed more votes at this height than any honest one does: not kept, not relayed
        if peer_id is not None and body.height + 1 >= self.height:  # old heights' votes only matter here
            self._broadcast(p2p_pb2.Envelope(vote=vote), exclude=peer_id)
        if log_entry and body.height >= self.height:
            self.wal.append(body.height, consensus_pb2.WalEntry(vote=vote))
        self._act(self.machine.handle(message))

    def _voters(self, height: int) -> Container[bytes]:
        """The validators whose votes count at `height`: its set when known, else (later heights) the current one.
        Past heights' sets are read once and kept for the evidence window."""
        if height >= self.height:
            return self.voting.powers
        voters = self._voter_sets.get(height)
        if voters is None:
            try:
                voters = frozenset(v.public_key for v in self.builder.validator_set(height).validators)
            except KeyError:
                voters = frozenset()
            if len(self._voter_sets) >= EVIDENCE_HEIGHTS:
                self._voter_sets.pop(min(self._voter_sets))
            self._voter_sets[height] = voters
        return voters

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
        if len(part.data) > block_parts.PART_BYTES:
            self._misbehaved(peer_id, f"a block part of {len(part.data)} bytes (at most {block_parts.PART_BYTES})")
            return
        if not self.height <= part.height <= self.height + 1:
            if not self.height - 1 <= part.height <= self.height + FUTURE_HEIGHTS:  # no honest peer is that far off
                self._penalize(peer_id, f"a block part for #{part.height} at #{self.height}", PENALTY_USELESS)
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
        """Keep and relay evidence only when the next block could carry it (the runtime's own rule): junk from a
        peer is not stored or passed on, however much of it there is."""
        if not self._first_seen(envelope):
            return
        try:  # who and where first, before any signature is checked: a stranger's keys cost nothing to make
            accused = decode_vote(envelope.evidence.first, self.chain_id).body
        except VoteError as error:
            self._misbehaved(peer_id, f"invalid evidence: {error}")
            return
        if not self.height - EVIDENCE_HEIGHTS < accused.height <= self.height + 1:
            return  # too old to check cheaply here, or further ahead than any honest peer
        if accused.validator not in self._voters(min(accused.height, self.height)):
            self._misbehaved(peer_id, f"evidence against {accused.validator.hex()[:16]}, not a validator at "
                                      f"#{accused.height}")
            return
        try:
            first, _ = evidence_rules.check_evidence_format(envelope.evidence, self.chain_id)
        except ValueError as error:
            self._misbehaved(peer_id, f"invalid evidence: {error}")
            return
        offence_height = first.body.height
        # A double-sign at the height being decided goes into a later block: judged as that block would judge it.
        block_height = max(self.core.head.height + 1, offence_height + 1)
        if slashing.check_evidence(self.core.store.state, envelope.evidence, block_height) is not None:
            return  # punished already or too old: honest peers may still gossip these
        if self.evidence.add(envelope.evidence, first.key):
            self._broadcast(envelope, exclude=peer_id)

    def _record_evidence(self, first: Vote, second: Vote) -> None:
        signed = [self.votes.get(vote) for vote in (first, second)]
        if None in signed:
            return
        evidence = evidence_rules.make_evidence(*signed)
        log.warning(
            "double-sign by %s at #%d round %d (%s): evidence kept for the next block",
            first.sender.hex()[:16], first.height, first.round, first.kind,
        )
        if self.evidence.add(evidence, signed[0].key):
            self._broadcast(p2p_pb2.Envelope(evidence=evidence))

    def _on_status(self, peer_id: bytes, envelope: p2p_pb2.Envelope) -> None:
        self.sync.on_status(peer_id, envelope.status.height)

    # --- timers ----------------------------------------------------------------------------------------

    def _fire_timers(self) -> None:
        now = self.clock()
        while self._timers and self._timers[0][0] <= now:
            _, _, timeout = heapq.heappop(self._timers)
            if self.machine is None or timeout.height != self.height or self.machine.paused:
                continue
            self.wal.append(timeout.height, consensus_pb2.WalEntry(
                timeout=consensus_pb2.WalTimeout(step=timeout.step, height=timeout.height, round=timeout.round)
            ))
            self._act(self.machine.handle(timeout))

    # --- block sync ------------------------------------------------------------------------------------

    def _maybe_sync(self) -> None:
        if self.network is None:
            return
        head = self.core.head.height
        # One block behind is normal for a moment (peers decide at slightly different times).
        stalled = self.clock() - self._last_progress >= 2 * self.block_time_s + 1
        for peer_id, request in self.sync.due(head, stalled):
            self._send(peer_id, p2p_pb2.Envelope(blocks_request=request))
        self._report_sync_faults()

    def _serve_blocks(self, peer_id: bytes, request: p2p_pb2.BlocksRequest) -> None:
        """Answer a block sync request from the store (on the network's thread: reads only)."""
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
        self.sync.on_response(peer_id, envelope.blocks_response)
        self._commit_synced()
        self._report_sync_faults()

    def _commit_synced(self) -> None:
        """Commit the blocks block sync holds, in height order, each checked; then follow on or join consensus."""
        committed = 0
        while (item := self.sync.take(self.core.head.height + 1)) is not None:
            peer_id, finalized = item
            try:
                candidate = self._check_synced(self.core.head.height + 1, finalized)
            except (EncodingError, CommitError, InvalidProposedBlock) as error:
                self.sync.reject(peer_id, f"a block that does not verify in sync: {error}")
                break
            self._commit(candidate, finalized.commit, SYNCED)
            committed += 1
        if not committed:
            return
        self._broadcast(self._status_envelope())
        self.machine = None  # the heights it was deciding are final now
        self._timers = []
        self._next_start = None
        head = self.core.head.height
        if not self.sync.behind(head):
            self._begin_height()
        elif self.clock() - self._last_catch_up_log > 10:
            self._last_catch_up_log = self.clock()
            log.info("catching up by block sync: #%d of #%d; taking part in consensus once caught up",
                     head, self.sync.best())

    def _check_synced(self, height: int, finalized: types_pb2.FinalizedBlock) -> Candidate:
        header = decode_canonical(types_pb2.Header, finalized.block.header, "block header")
        if header.height != height:
            raise InvalidProposedBlock(f"a block of #{header.height} where #{height} was asked for")
        self.builder.check_commit(height, blake2b_256(finalized.block.header), finalized.commit)
        return self.builder.check(finalized.block)

    def _report_sync_faults(self) -> None:
        for fault in self.sync.faults():
            if fault.severe:
                self._misbehaved(fault.peer, f"{fault.reason} in block sync")
            else:
                log.info("block sync: %s from peer %s; asking others", fault.reason, fault.peer.hex()[:16])

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

    def _penalize(self, peer_id: bytes | None, what: str, points: int) -> None:
        """Score a peer for something an honest peer rarely sends; the network bans it past a threshold."""
        if peer_id is not None and self.network is not None:
            self.network.penalize(peer_id, what, points)

    def _misbehaved(self, peer_id: bytes | None, what: str) -> None:
        if peer_id is None:
            return
        if self._ignored.get(peer_id, 0.0) > self.clock():
            return
        self._ignored = {peer: until for peer, until in self._ignored.items() if until > self.clock()}
        self._ignored[peer_id] = self.clock() + IGNORE_MISBEHAVING_S
        log.warning("peer %s sent %s; disconnecting", peer_id.hex()[:16], what)
        if self.network is not None:
            self.network.disconnect(peer_id, what)
