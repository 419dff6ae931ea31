"""The node's consensus loop: runs the Tendermint machine over the network, the write-ahead log and the store.

One thread, the loop, owns all consensus state: the machine, the height and its validator set, the
timers, the votes and evidence kept, the blocks being assembled and block sync's bookkeeping. Network
threads only put what peers send into the loop's bounded inbox (chain/consensus/inbox.py), except
block requests, which go to the block server's own worker (chain/consensus/block_server.py). The API
and metrics threads only read the ConsensusStatus snapshot the loop publishes after each step
(chain/consensus/status.py).

Each step: take one event (a peer's message, a connect or disconnect) or wake for a timer; check what
came (signatures, block parts, the block itself by re-executing it), record it in the write-ahead log,
feed it to the machine (chain/consensus/machine.py) and act on what the machine says: sign and send
our proposal or vote (after the log is on disk), arm a timer, commit a decided block with the
precommits that prove it, or keep evidence of a double-sign for the next block we propose. After a
decision the next height starts one block time after the last one started, or sooner when transactions
wait in the pool, a posted job waits for its draw or a peer has already proposed it (CometBFT's idea for
create_empty_blocks=false: an idle chain keeps its tick, a busy one does not make transactions wait for
it); how much sooner is the pace's rule (pace.py).

The parts, one file each: proposals and block parts (proposals.py, parts.py), block sync
(catch_up.py, sync.py, block_server.py), the evidence pool (evidence_pool.py), signed votes
(vote_store.py), this validator's own proposals and votes (own_messages.py) and what it signed
before a restart (signed_before.py), timers (timers.py), rebroadcast (rebroadcast.py) and the
network as consensus sees it (peer_link.py).

A node behind its peers (new, restarted, or cut off) follows the chain first by block sync and joins
consensus only once no trusted peer claims more than the next height. Every signature goes through
the validator's sign state (chain/consensus/signer.py), which refuses to sign twice at one height,
round and step whatever the database or the log hold. Votes are taken only from the validator set of
their height, within a window of heights; a peer that sends what no honest peer would is disconnected
and banned by the network. `--dev` is the same code with one validator and no peers.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Container

from chain.consensus import parts as block_parts
from chain.consensus.block_server import BlockServer
from chain.consensus.catch_up import CatchUp
from chain.consensus.commit import CommitError, VotingPower
from chain.consensus.evidence_pool import EvidencePool
from chain.consensus.inbox import CONNECTED, DISCONNECTED, MESSAGE, Inbox
from chain.consensus.machine import (
    EVIDENCE_HEIGHTS, FUTURE_HEIGHTS, MAX_ROUND, PRECOMMIT, PREVOTE, PROPOSE, Broadcast, Decide, Evidence, Machine,
    Proposal, Schedule, Timeout, Timeouts, Vote,
)
from chain.consensus.own_messages import OwnMessages
from chain.consensus.pace import Pace
from chain.consensus.peer_link import Misbehaviour, PeerLink
from chain.consensus.proposals import Proposals
from chain.consensus.proposer import Priorities
from chain.consensus.rebroadcast import Rebroadcast
from chain.consensus.signed_before import VOTE_STEPS, SignedBefore
from chain.consensus.signer import Signer
from chain.consensus.signstate import SignStateError
from chain.consensus.status import STEP_HALTED, STEP_NEW_HEIGHT, STEP_SYNCING, ConsensusStatus
from chain.consensus.timers import Timers
from chain.consensus.vote_store import SignedVotes
from chain.consensus.wal import Wal, WalError
from chain.node.blocks import Candidate, InvalidProposedBlock
from chain.node.core import NodeCore, ProductionHalted
from chain.storage import StoreError
from proto import consensus_pb2, p2p_pb2, types_pb2
from runtime import staking
from runtime.encoding import EncodingError, decode_canonical
from runtime.hashing import blake2b_256
from runtime.votes import VoteError, check_proposal, decode_vote, verify_vote

log = logging.getLogger("inferchain.consensus")

SYNCED = "by block sync"
# The loop wakes at least this often; between heights, this often (a transaction reaching the pool does not wake
# it, and the pace gathers transactions from when the loop first saw them).
MAX_WAIT_S = 0.2
IDLE_POLL_S = 0.02
# With other validators, a proposer stops adding transactions once executing them took this share of the
# block time (at least MIN_BUILD_S): each of them executes the block again before it may prevote for it.
BUILD_SHARE_OF_BLOCK_TIME = 0.3
MIN_BUILD_S = 0.1


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
        self.chain_id = core.genesis.chain_id
        self.block_time_s = core.genesis.consensus.block_time_ms / 1000
        self.pace = Pace(self.block_time_s)
        self.timeouts = timeouts_for(core.genesis.consensus.block_time_ms)
        # Called with the seconds from the start of a height to its block's commit (the node's metrics).
        self.observe_block: Callable[[float], None] | None = None
        self.inbox = Inbox()
        self.peers = PeerLink(clock)
        self.block_server = BlockServer(core.store, self.peers.send)
        self.proposals = Proposals(self.chain_id, block_parts.max_parts(core.genesis.consensus.max_block_bytes),
                                   self.peers)
        self.catch_up = CatchUp(core, self.peers, clock, lambda candidate, commit: self._commit(candidate, commit,
                                                                                                  SYNCED))
        self.evidence = EvidencePool()
        # Votes as signed, for commits and evidence; validator sets of recent heights, to check their votes.
        self.votes = SignedVotes()
        self._voter_sets: dict[int, frozenset[bytes]] = {}
        self.signed_before = SignedBefore(self.chain_id, self.me, signer)
        self.rebroadcast = Rebroadcast(clock)
        self.own_messages = OwnMessages(signer, wal, self.votes, self.peers, self.rebroadcast, self.signed_before,
                                        wall_clock)
        self.timers = Timers()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="consensus", daemon=True)
        self.machine: Machine | None = None
        self.halted = False
        self.height = core.head.height + 1
        self.voting = VotingPower.of(self.builder.validator_set(self.height))
        self._validator_keys = frozenset(self.voting.powers)
        self._height_started = 0.0
        self._next_start: float | None = None
        self._last_progress = 0.0
        self._last_follow_log = float("-inf")
        self._reset_height_state()
        # Published before the thread starts, so that status() is right from the first moment.
        self._status = self._snapshot()

    def _reset_height_state(self) -> None:
        """Forget what belonged to decided heights; keep parts and blocks already received for later ones."""
        self.verdicts: dict[bytes, Candidate | None] = {}
        self.own_blocks: dict[int, bytes] = {}
        self.proposals.forget_below(self.height)
        self.rebroadcast.reset()
        self.signed_before.reset()

    # --- lifecycle -----------------------------------------------------------------------

    def attach(self, network) -> None:
        self.peers.attach(network)

    def start(self) -> None:
        self.block_server.start()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        self.block_server.stop()

    def status(self) -> ConsensusStatus:
        """The loop's latest snapshot (immutable; safe to read from any thread)."""
        return self._status

    def _publish(self) -> None:
        self._status = self._snapshot()

    def _snapshot(self) -> ConsensusStatus:
        machine = self.machine
        if self.halted:
            step = STEP_HALTED
        elif machine is None:
            step = STEP_SYNCING
        elif machine.paused or self._next_start is not None:
            step = STEP_NEW_HEIGHT
        else:
            step = machine.step
        return ConsensusStatus(
            height=self.height,
            round=max(machine.round, 0) if machine is not None else 0,
            step=step,
            syncing=machine is None,
            is_validator=self.me in self.voting.powers,
            validators=len(self.voting.powers),
            total_power=self.voting.total,
            peers=self.peers.count(),
            signatures_refused=self.signer.refused,
            halted=self.halted,
            block_requests_refused=self.block_server.refused,
            events_dropped=self.inbox.dropped,
            validator_keys=self._validator_keys,
        )

    # --- events in (called from network threads: they only queue) -------------------------------------

    def on_message(self, peer_id: bytes, envelope: p2p_pb2.Envelope) -> None:
        kind = envelope.WhichOneof("message")
        if kind == "blocks_request":
            self.block_server.submit(peer_id, envelope.blocks_request)
        elif kind in ("proposal", "block_part", "vote", "evidence", "status", "blocks_response"):
            self.inbox.put(MESSAGE, peer_id, envelope)

    def on_peer_connected(self, peer_id: bytes) -> None:
        self.inbox.put(CONNECTED, peer_id)

    def on_peer_disconnected(self, peer_id: bytes) -> None:
        self.inbox.put(DISCONNECTED, peer_id)

    # --- the loop ----------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._begin_height()
        except ProductionHalted:
            self._halt(None)
            return
        except (StoreError, SignStateError, WalError) as error:
            self._halt(error)
            return
        self._publish()
        while not self._stop.is_set():
            event = self.inbox.take(self._wait_s())
            try:
                if event is not None:
                    self._dispatch(event.kind, event.peer_id, event.envelope)
                self._fire_timers()
                self._maybe_advance()
                self._maybe_sync()
                self._maybe_join()
                self._maybe_rebroadcast()
            except ProductionHalted:
                self._halt(None)
                return
            except (StoreError, SignStateError, WalError) as error:  # the disk failed: nothing more is signed
                self._halt(error)
                return
            except Exception:  # a bug, not bad input: keep deciding and say so loudly
                log.exception("consensus step failed")
            self._publish()

    def _wait_s(self) -> float:
        """How long the loop may wait for an event: until the next timer or the next height's start."""
        now = self.clock()
        wait = MAX_WAIT_S
        next_due = self.timers.next_due()
        if next_due is not None:
            wait = min(wait, max(0.0, next_due - now))
        if self._next_start is not None:  # then the pool is looked at every IDLE_POLL_S
            wait = min(wait, IDLE_POLL_S, max(0.0, self._next_start - now))
        return wait

    def _halt(self, error: Exception | None) -> None:
        """Stop deciding for good: a write failed (the core says so once), or the core had halted already."""
        self.halted = True
        if error is not None:
            self.core.halt_production(error)
        else:
            log.error("consensus stopped: the node can no longer write blocks")
        self._publish()

    def _dispatch(self, kind: str, peer_id: bytes, envelope: p2p_pb2.Envelope | None) -> None:
        if kind == CONNECTED:
            self.peers.send(peer_id, self._status_envelope())
            for own in self.rebroadcast.messages:
                self.peers.send(peer_id, own)
            return
        if kind == DISCONNECTED:
            self.catch_up.forget(peer_id)
            return
        if self.peers.ignores(peer_id):
            return  # disconnected for misbehaving: what it sent before that is not read
        message = envelope.WhichOneof("message")
        if self.machine is None and message in ("proposal", "block_part", "vote"):
            return  # following the chain: this node takes part again once it has caught up
        try:
            getattr(self, f"_on_{message}")(peer_id, envelope)
        except Misbehaviour as misbehaviour:
            self.peers.misbehaved(peer_id, str(misbehaviour))

    # --- heights -----------------------------------------------------------------------------

    def _begin_height(self) -> None:
        """Start deciding head + 1 with its validator set; a new machine first replays that height's log."""
        head = self.core.head
        self.height = head.height + 1
        self.voting = VotingPower.of(self.builder.validator_set(self.height))
        if not self.voting.powers:
            raise RuntimeError(f"the validator set for #{self.height} is empty: the chain cannot go on")
        self._validator_keys = frozenset(self.voting.powers)
        self._reset_height_state()
        self._next_start = None
        self._height_started = self.clock()
        self.pace.began(self._height_started)
        self._last_progress = self._height_started
        if self._waits_for_signed_heights():
            self.machine = None
            self.timers.clear()
            return
        if self.machine is not None and self.machine.paused and self.machine.height == self.height:
            self._act(self.machine.advance(self.voting.powers, self._priorities(self.voting.powers)))
        else:
            self._start_machine()
        for assembly in self.proposals.take_waiting(self.height):
            self._take_proposal(assembly.proposal, assembly.body, assembly.data(), log_entry=True)

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
        self.timers.clear()
        for entry in entries:  # our own signatures first: the machine's outputs are checked against them
            if entry.WhichOneof("entry") == "vote":
                self.signed_before.remember_vote(entry.vote, self.height)
            elif entry.WhichOneof("entry") == "proposal":
                self.signed_before.remember_proposal(entry.proposal.proposal, self.height)
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
        if now - self._last_follow_log > 30:
            self._last_follow_log = now
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
            elif which == "vote" and not self.signed_before.is_own(entry.vote):
                self._take_vote(entry.vote, None, replayed=True)
            elif which == "timeout":
                timeout = entry.timeout
                if timeout.step in (PROPOSE, PREVOTE, PRECOMMIT):
                    self._act(self.machine.handle(Timeout(timeout.step, timeout.height, timeout.round)))
        log.info("replayed %d consensus log entries for #%d", len(entries), self.height)

    def _may_sign(self, message: Proposal | Vote) -> bool:
        """The machine's signing guard (own_messages.py); a follower signs nothing, so it may count anything."""
        if self.me not in self.voting.powers:
            return True  # a follower signs nothing (_send_own), and its own messages count for nothing
        return self.own_messages.may_sign(message, self.height)

    def _maybe_advance(self) -> None:
        """Start the next height on the block-time tick, or sooner (as soon as the pace allows) when there is
        something to decide."""
        if self._next_start is None:
            return
        now = self.clock()
        # Looked at on every wake between heights, so that the pace knows when transactions came (pace.py).
        gathered = len(self.core.pool) > 0 and self.pace.gathered(now)
        if now >= self._next_start or (now >= self.pace.earliest_with_work() and (gathered or self._work_waits())):
            self._begin_height()

    def _work_waits(self) -> bool:
        """A posted job waits for the block that draws its executors, or a peer's proposal for the next height is here
        already (transactions in the pool: _maybe_advance)."""
        return self.core.draws_pending() or self.proposals.next_height_proposed(self.height)

    def _maybe_join(self) -> None:
        """Take part in consensus again once caught up (after block sync, or after the heights signed before)."""
        if self.machine is None and self._next_start is None and not self.catch_up.behind():
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
                self.timers.arm(self.clock() + output.delay_ms / 1000, output.timeout)
            elif isinstance(output, Decide):
                self._decided(output)
            elif isinstance(output, Evidence):
                self._record_evidence(output.first, output.second)

    def _send_own(self, message: Proposal | Vote) -> None:
        if self.me not in self.voting.powers:
            return  # a node that follows without a vote
        self.own_messages.send(message, self.height, self.verdicts)

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
        # The block-time tick is the latest start; _maybe_advance starts sooner when there is work.
        self._next_start = max(self.clock(), self._height_started + self.block_time_s)
        self.pace.decided(transactions_waiting=len(self.core.pool) > 0)

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
            self.peers.broadcast(self._status_envelope())
        if self.observe_block is not None:
            self.observe_block(self.clock() - self._height_started)

    # --- messages from peers --------------------------------------------------------------------------

    def _on_vote(self, peer_id: bytes, envelope: p2p_pb2.Envelope) -> None:
        self._take_vote(envelope.vote, peer_id, envelope)

    def _take_vote(self, vote: types_pb2.Vote, peer_id: bytes | None, envelope: p2p_pb2.Envelope | None = None,
                   replayed: bool = False) -> None:
        """Check a vote (who signed it for which height before its signature), keep it, log it, relay it, decide.

        A vote is marked seen only once it would be kept: one dropped as too early comes again in its
        validator's rebroadcast (the same bytes) and is taken then. A vote kept before this machine started
        (it came for a later height, then block sync or a restart made a new machine) is given to the machine
        when the log is replayed (`replayed`)."""
        try:
            decoded = decode_vote(vote, self.chain_id)
        except VoteError as error:
            self.peers.misbehaved(peer_id, f"an invalid vote: {error}")
            return
        body = decoded.body
        if body.round > MAX_ROUND or not self.height - EVIDENCE_HEIGHTS < body.height <= self.height + FUTURE_HEIGHTS:
            return
        if body.validator not in self._voters(body.height):
            if body.height <= self.height:  # that height's set is known to every honest node: none relays this
                self.peers.misbehaved(peer_id, f"a vote for #{body.height} from {body.validator.hex()[:16]}, "
                                               "not a validator at that height")
            return
        message = Vote(VOTE_STEPS[body.type], body.height, body.round, body.block_hash, body.validator)
        if message in self.votes:
            if replayed:
                self._act(self.machine.handle(message))
            return
        if envelope is not None and not self.peers.first_seen(envelope):
            return  # a copy of a vote not kept (beyond its validator's cap): its signature is not checked again
        try:
            signed = verify_vote(decoded)
        except VoteError as error:
            self.peers.misbehaved(peer_id, f"an invalid vote: {error}")
            return
        if not self.votes.add(message, signed):
            return  # the validator signed more votes at this height than any honest one does: not kept, not relayed
        if peer_id is not None and body.height + 1 >= self.height:  # old heights' votes only matter here
            self.peers.broadcast(p2p_pb2.Envelope(vote=vote), exclude=peer_id)
        if not replayed and body.height >= self.height:
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
        complete = self.proposals.on_proposal(peer_id, envelope, self.height, self._round(), self.voting.powers,
                                              self.machine.proposer)
        if complete is not None:
            self._take_proposal(complete.proposal, complete.body, complete.data(), log_entry=True)

    def _on_block_part(self, peer_id: bytes, envelope: p2p_pb2.Envelope) -> None:
        complete = self.proposals.on_block_part(peer_id, envelope, self.height)
        if complete is not None:
            self._take_proposal(complete.proposal, complete.body, complete.data(), log_entry=True)

    def _round(self) -> int:
        return max(self.machine.round, 0) if self.machine is not None else 0

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
        if not self.peers.first_seen(envelope):
            return
        if self.evidence.add_gossiped(envelope.evidence, self.chain_id, self.height, self._voters,
                                      self.core.store.state, self.core.head.height):
            self.peers.broadcast(envelope, exclude=peer_id)

    def _record_evidence(self, first: Vote, second: Vote) -> None:
        signed = [self.votes.get(vote) for vote in (first, second)]
        if None in signed:
            return
        log.warning(
            "double-sign by %s at #%d round %d (%s): evidence kept for the next block",
            first.sender.hex()[:16], first.height, first.round, first.kind,
        )
        evidence = self.evidence.add_double_sign(*signed)
        if evidence is not None:
            self.peers.broadcast(p2p_pb2.Envelope(evidence=evidence))

    def _on_status(self, peer_id: bytes, envelope: p2p_pb2.Envelope) -> None:
        self.catch_up.on_status(peer_id, envelope.status.height)

    # --- timers ----------------------------------------------------------------------------------------

    def _fire_timers(self) -> None:
        for timeout in self.timers.pop_due(self.clock()):
            if self.machine is None or timeout.height != self.height or self.machine.paused:
                continue
            self.wal.append(timeout.height, consensus_pb2.WalEntry(
                timeout=consensus_pb2.WalTimeout(step=timeout.step, height=timeout.height, round=timeout.round)
            ))
            self._act(self.machine.handle(timeout))

    # --- block sync ------------------------------------------------------------------------------------

    def _maybe_sync(self) -> None:
        # One block behind is normal for a moment (peers decide at slightly different times).
        stalled = self.clock() - self._last_progress >= 2 * self.block_time_s + 1
        self.catch_up.request(stalled)

    def _on_blocks_response(self, peer_id: bytes, envelope: p2p_pb2.Envelope) -> None:
        if not self.catch_up.on_response(peer_id, envelope.blocks_response):
            return
        self.peers.broadcast(self._status_envelope())
        self.machine = None  # the heights it was deciding are final now
        self.timers.clear()
        self._next_start = None
        if not self.catch_up.behind():
            self._begin_height()

    # --- sending -----------------------------------------------------------------------------------------

    def _status_envelope(self) -> p2p_pb2.Envelope:
        head = self.core.head
        return p2p_pb2.Envelope(status=p2p_pb2.Status(height=head.height, block_hash=head.hash, round=self._round()))

    def _maybe_rebroadcast(self) -> None:
        """Send our messages of this height again while it makes no progress: a peer may have missed them."""
        again = self.rebroadcast.due(self._last_progress)
        if again is None:
            return
        for envelope in again:
            self.peers.broadcast(envelope)
        self.peers.broadcast(self._status_envelope())
