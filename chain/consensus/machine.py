"""One validator's Tendermint state machine, pure: inputs in, outputs out (Algorithm 1 of the paper).

Inputs are `Proposal`s, `Vote`s and `Timeout`s (already authenticated by the caller: a message's
`sender` is the validator that signed it). `handle(input)` returns the outputs it caused:
`Broadcast` (a proposal or vote of ours to sign and send), `Schedule` (a timeout to fire later),
`Decide` (a value is final at a height, with the precommits that prove it) and `Evidence` (two
conflicting votes of one validator). Nothing here reads a clock, the network or the disk, so the
simulation (tests/consensus) can drive many machines on a virtual network, and a restarted node
rebuilds the same machine by replaying the inputs it recorded before acting on them (its
write-ahead log): the same inputs give the same outputs, so a restart never signs a second,
different vote for a height, round and step. `_signed` guards that too.

The rules keep the paper's names (line numbers of Algorithm 1 in comments). Values are block
hashes; `is_valid(value)` and `new_value(height)` come from the application. Voting power is
stake-weighted: a quorum is more than 2/3 of the total power, "f+1" is more than 1/3.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Union

from chain.consensus.proposer import Priorities

PROPOSE, PREVOTE, PRECOMMIT = "propose", "prevote", "precommit"
STEPS = (PROPOSE, PREVOTE, PRECOMMIT)
NIL = b""
# Messages for heights this far ahead are kept (a peer may be a little ahead); farther ones are
# dropped (block sync brings those heights). Rounds above MAX_ROUND are dropped, so a validator
# cannot make others store votes for endless rounds.
FUTURE_HEIGHTS = 2
MAX_ROUND = 10_000
# Votes of this many decided heights are kept to catch a double-sign that arrives late.
EVIDENCE_HEIGHTS = 100
# Different values kept per validator, round and step: two prove a double-sign; more only cost memory.
MAX_VALUES_PER_VOTER = 2


@dataclass(frozen=True)
class Proposal:
    height: int
    round: int
    value: bytes
    valid_round: int  # -1 when the proposer holds no valid value from an earlier round
    sender: bytes


@dataclass(frozen=True)
class Vote:
    kind: str  # PREVOTE or PRECOMMIT
    height: int
    round: int
    value: bytes  # NIL for a vote for nothing
    sender: bytes


@dataclass(frozen=True)
class Timeout:
    step: str
    height: int
    round: int


Input = Union[Proposal, Vote, Timeout]


@dataclass(frozen=True)
class Broadcast:
    message: Union[Proposal, Vote]


@dataclass(frozen=True)
class Schedule:
    timeout: Timeout
    delay_ms: int


@dataclass(frozen=True)
class Decide:
    height: int
    round: int
    value: bytes
    precommits: tuple[Vote, ...]


@dataclass(frozen=True)
class Evidence:
    first: Vote
    second: Vote


Output = Union[Broadcast, Schedule, Decide, Evidence]


@dataclass(frozen=True)
class Timeouts:
    """Timeout lengths that grow with the round, so a round eventually lasts long enough after GST."""

    propose_ms: int = 1_000
    prevote_ms: int = 500
    precommit_ms: int = 500
    increase_ms: int = 500

    def delay(self, step: str, round_number: int) -> int:
        base = {PROPOSE: self.propose_ms, PREVOTE: self.prevote_ms, PRECOMMIT: self.precommit_ms}[step]
        return base + self.increase_ms * round_number


@dataclass
class _Height:
    """Everything received for one height: proposals by round, sender and value; votes by (kind, round),
    then by sender and value (a validator that signed two values counts for both, as in the paper: quorums of
    more than 2/3 still meet in a correct validator, and a polka one peer saw is one every peer sees)."""

    proposals: dict[int, dict[bytes, dict[bytes, Proposal]]] = field(default_factory=dict)
    votes: dict[tuple[str, int], dict[bytes, dict[bytes, Vote]]] = field(default_factory=dict)


class Machine:
    """The consensus state of one validator (`me`) over a fixed validator set."""

    def __init__(
        self,
        me: bytes,
        powers: Mapping[bytes, int],
        height: int,
        is_valid: Callable[[bytes], bool],
        new_value: Callable[[int], bytes],
        timeouts: Timeouts = Timeouts(),
        priorities: Priorities | None = None,
        auto_advance: bool = True,
        may_sign: Callable[[Union[Proposal, Vote]], bool] = lambda message: True,
    ):
        self.me = me
        # The caller's signing guard (the sign state): a message it refuses is neither sent nor counted in
        # this machine's own tallies, so a vote never signed cannot complete a polka or a commit here.
        self.may_sign = may_sign
        # False: after a decision the machine waits at the next height until `advance()` (a node
        # commits the block first, then starts the next height with that height's validator set).
        self.auto_advance = auto_advance
        self.paused = False
        self.powers = dict(powers)
        self.total = sum(self.powers.values())
        self.is_valid = is_valid
        self.new_value = new_value
        self.timeouts = timeouts
        self.priorities = priorities or Priorities.start(self.powers)
        self.height = height
        self.round = -1
        self.step = PROPOSE
        self.decisions: dict[int, bytes] = {}
        self._reset_height()
        self._signed: dict[tuple[int, int, str], bytes] = {}
        self._messages: dict[int, _Height] = {}
        self._evidence_seen: set[tuple[bytes, int, int, str]] = set()
        self._past_votes: dict[int, dict[tuple[str, int], dict[bytes, Vote]]] = {}

    # --- entry points ------------------------------------------------------------------

    def start(self) -> list[Output]:
        """Begin the first round of the current height (StartRound(0), line 10)."""
        outputs: list[Output] = []
        self._start_round(0, outputs)
        self._evaluate(outputs)
        return outputs

    def advance(self, powers: Mapping[bytes, int] | None = None, priorities: Priorities | None = None) -> list[Output]:
        """Start the height a decision paused at (auto_advance False), with a new validator set if given."""
        if not self.paused:
            raise RuntimeError("advance() is only for a machine paused after a decision")
        if powers is not None:
            if dict(powers) != self.powers:
                self.powers = dict(powers)
                self.total = sum(self.powers.values())
                self._drop_non_members()
            self.priorities = priorities or Priorities.start(self.powers)
            self._reset_height()
        self.paused = False
        return self.start()

    def _drop_non_members(self) -> None:
        """After a validator set change: forget buffered messages of senders that no longer vote."""
        for messages in self._messages.values():
            for by_sender in list(messages.proposals.values()) + list(messages.votes.values()):
                for sender in [sender for sender in by_sender if sender not in self.powers]:
                    del by_sender[sender]

    def handle(self, message: Input) -> list[Output]:
        """Take one input; the outputs it caused, in order."""
        outputs: list[Output] = []
        if isinstance(message, Timeout):
            self._on_timeout(message, outputs)
        elif isinstance(message, (Proposal, Vote)):
            if not self._record(message, outputs):
                return outputs
        else:
            raise TypeError(f"not a consensus input: {type(message).__name__}")
        self._evaluate(outputs)
        return outputs

    def proposer(self, round_number: int) -> bytes:
        """The proposer of a round of the current height (weighted round-robin, chain/consensus/proposer.py)."""
        cache = self._proposers
        while len(cache) <= round_number:
            proposer, self._round_priorities = self._round_priorities.step()
            cache.append(proposer)
        return cache[round_number]

    # --- state ---------------------------------------------------------------------------

    def _reset_height(self) -> None:
        self._proposers: list[bytes] = []
        self._round_priorities = self.priorities
        self.locked_value: bytes | None = None
        self.locked_round = -1
        self.valid_value: bytes | None = None
        self.valid_round = -1
        # "for the first time" guards of lines 34, 36 and 47, per round.
        self._prevote_timer: set[int] = set()
        self._precommit_timer: set[int] = set()
        self._line36_done: set[int] = set()

    def _record(self, message: Union[Proposal, Vote], outputs: list[Output]) -> bool:
        """Store a message of the current or a near later height; False when it changes nothing."""
        if message.sender not in self.powers or not 0 <= message.round <= MAX_ROUND:
            return False
        if message.height < self.height:
            # A decided height: its votes only matter as evidence, so they are kept (late ones too)
            # for EVIDENCE_HEIGHTS heights, to catch a double-sign whose halves arrive late.
            if isinstance(message, Vote) and message.height in self._past_votes:
                by_value = self._past_votes[message.height].setdefault((message.kind, message.round), {}).setdefault(
                    message.sender, {}
                )
                self._conflict(by_value, message, outputs)
                if message.value not in by_value and len(by_value) < MAX_VALUES_PER_VOTER:
                    by_value[message.value] = message
            return False
        if message.height > self.height + FUTURE_HEIGHTS:
            return False
        messages = self._messages.setdefault(message.height, _Height())
        if isinstance(message, Proposal):
            # At the current height only the round's proposer counts; a later height's proposals
            # are kept by sender and judged when the machine gets there.
            if message.height == self.height and message.sender != self.proposer(message.round):
                return False
            # A proposer that proposed two values: the first one received is prevoted (line 22), but
            # either may gather the precommits that decide it (line 49), so both are kept.
            by_value = messages.proposals.setdefault(message.round, {}).setdefault(message.sender, {})
            if message.value in by_value or len(by_value) >= MAX_VALUES_PER_VOTER:
                return False
            by_value[message.value] = message
            return True
        if message.kind not in (PREVOTE, PRECOMMIT):
            return False
        by_value = messages.votes.setdefault((message.kind, message.round), {}).setdefault(message.sender, {})
        if message.value in by_value:
            return False
        self._conflict(by_value, message, outputs)
        if len(by_value) >= MAX_VALUES_PER_VOTER:
            return False
        by_value[message.value] = message
        return True

    def _conflict(self, by_value: Mapping[bytes, Vote], message: Vote, outputs: list[Output]) -> None:
        """Evidence, once, when the sender already voted otherwise in this height, round and step."""
        known = next((vote for value, vote in by_value.items() if value != message.value), None)
        if known is None:
            return
        key = (message.sender, message.height, message.round, message.kind)
        if key not in self._evidence_seen:
            self._evidence_seen.add(key)
            outputs.append(Evidence(known, message))

    def _power(self, votes: Mapping[bytes, Mapping[bytes, Vote]], value: bytes | None = None) -> int:
        """The voting power of the validators that voted (anything, or `value`)."""
        return sum(self.powers[sender] for sender, by_value in votes.items() if value is None or value in by_value)

    def _quorum(self, power: int) -> bool:
        return 3 * power > 2 * self.total

    def _votes(self, kind: str, round_number: int) -> dict[bytes, dict[bytes, Vote]]:
        return self._messages.get(self.height, _Height()).votes.get((kind, round_number), {})

    def _proposals(self, round_number: int) -> list[Proposal]:
        """The current height's proposals for a round from that round's proposer, first received first."""
        by_sender = self._messages.get(self.height, _Height()).proposals.get(round_number)
        if not by_sender:
            return []
        return list(by_sender.get(self.proposer(round_number), {}).values())

    def _proposal(self, round_number: int) -> Proposal | None:
        proposals = self._proposals(round_number)
        return proposals[0] if proposals else None

    # --- actions -------------------------------------------------------------------------

    def _start_round(self, round_number: int, outputs: list[Output]) -> None:
        """StartRound (line 11): propose if ours, else wait for the proposal until a timeout."""
        self.round = round_number
        self.step = PROPOSE
        if self.proposer(round_number) == self.me:
            value = self.valid_value if self.valid_value is not None else self.new_value(self.height)
            self._broadcast(Proposal(self.height, round_number, value, self.valid_round, self.me), outputs)
        else:
            self._schedule(PROPOSE, round_number, outputs)

    def _broadcast(self, message: Union[Proposal, Vote], outputs: list[Output]) -> None:
        kind = message.kind if isinstance(message, Vote) else PROPOSE
        key = (message.height, message.round, kind)
        signed = self._signed.get(key)
        if signed is not None:
            if signed != message.value:
                raise AssertionError(f"refusing to sign a second {kind} at height {message.height} round {message.round}")
            return
        if not self.may_sign(message):
            return
        self._signed[key] = message.value
        outputs.append(Broadcast(message))
        self._record(message, outputs)  # our own message counts like anyone's

    def _vote(self, kind: str, value: bytes, outputs: list[Output]) -> None:
        self._broadcast(Vote(kind, self.height, self.round, value, self.me), outputs)
        self.step = PREVOTE if kind == PREVOTE else PRECOMMIT

    def _schedule(self, step: str, round_number: int, outputs: list[Output]) -> None:
        outputs.append(Schedule(Timeout(step, self.height, round_number), self.timeouts.delay(step, round_number)))

    def _on_timeout(self, timeout: Timeout, outputs: list[Output]) -> None:
        if self.paused or timeout.height != self.height or timeout.round != self.round:
            return
        if timeout.step == PROPOSE and self.step == PROPOSE:  # line 57
            self._vote(PREVOTE, NIL, outputs)
        elif timeout.step == PREVOTE and self.step == PREVOTE:  # line 61
            self._vote(PRECOMMIT, NIL, outputs)
        elif timeout.step == PRECOMMIT:  # line 65
            self._start_round(self.round + 1, outputs)

    # --- the upon-rules, applied until none fires ----------------------------------------

    def _evaluate(self, outputs: list[Output]) -> None:
        while not self.paused and (self._decide(outputs) or self._skip_round(outputs) or self._step_rules(outputs)):
            pass

    def _decide(self, outputs: list[Output]) -> bool:
        """Line 49: a proposal and precommits of more than 2/3 for it, in any round: decide."""
        if self.height in self.decisions:
            return False
        messages = self._messages.get(self.height)
        if messages is None:
            return False
        for round_number, proposal in ((r, p) for r in sorted(messages.proposals) for p in self._proposals(r)):
            precommits = messages.votes.get((PRECOMMIT, round_number), {})
            if not self._quorum(self._power(precommits, proposal.value)) or not self.is_valid(proposal.value):
                continue
            proof = tuple(by_value[proposal.value] for _, by_value in sorted(precommits.items()) if proposal.value in by_value)
            self.decisions[self.height] = proposal.value
            outputs.append(Decide(self.height, round_number, proposal.value, proof))
            decided = self._messages.pop(self.height)
            self._past_votes[self.height] = decided.votes
            self._past_votes.pop(self.height - EVIDENCE_HEIGHTS, None)
            self.height += 1
            self.priorities = self.priorities.next_height()
            self._reset_height()
            if self.auto_advance:
                self._start_round(0, outputs)
            else:
                self.paused = True
            return True
        return False

    def _skip_round(self, outputs: list[Output]) -> bool:
        """Line 55: messages from more than 1/3 of the power for a later round: go to that round."""
        messages = self._messages.get(self.height)
        if messages is None:
            return False
        senders: dict[int, set[bytes]] = {}
        for round_number in messages.proposals:
            if self._proposals(round_number):
                senders.setdefault(round_number, set()).add(self.proposer(round_number))
        for (_, round_number), votes in messages.votes.items():
            senders.setdefault(round_number, set()).update(votes)
        for round_number in sorted(senders):
            if round_number > self.round and 3 * sum(self.powers[s] for s in senders[round_number]) > self.total:
                self._start_round(round_number, outputs)
                return True
        return False

    def _step_rules(self, outputs: list[Output]) -> bool:
        round_number = self.round
        proposal = self._proposal(round_number)
        prevotes = self._votes(PREVOTE, round_number)
        if self.step == PROPOSE and proposal is not None:
            if proposal.valid_round == -1:  # line 22
                good = self.is_valid(proposal.value) and (self.locked_round == -1 or self.locked_value == proposal.value)
                self._vote(PREVOTE, proposal.value if good else NIL, outputs)
                return True
            for candidate in self._proposals(round_number):  # line 28
                if not 0 <= candidate.valid_round < round_number:
                    continue
                earlier = self._votes(PREVOTE, candidate.valid_round)
                if self._quorum(self._power(earlier, candidate.value)):
                    good = self.is_valid(candidate.value) and (
                        self.locked_round <= candidate.valid_round or self.locked_value == candidate.value
                    )
                    self._vote(PREVOTE, candidate.value if good else NIL, outputs)
                    return True
        if self.step == PREVOTE and round_number not in self._prevote_timer and self._quorum(self._power(prevotes)):
            self._prevote_timer.add(round_number)  # line 34
            self._schedule(PREVOTE, round_number, outputs)
            return True
        if self.step in (PREVOTE, PRECOMMIT) and round_number not in self._line36_done:
            for candidate in self._proposals(round_number):  # line 36
                if self._quorum(self._power(prevotes, candidate.value)) and self.is_valid(candidate.value):
                    self._line36_done.add(round_number)
                    if self.step == PREVOTE:
                        self.locked_value, self.locked_round = candidate.value, round_number
                        self._vote(PRECOMMIT, candidate.value, outputs)
                    self.valid_value, self.valid_round = candidate.value, round_number
                    return True
        if self.step == PREVOTE and self._quorum(self._power(prevotes, NIL)):  # line 44
            self._vote(PRECOMMIT, NIL, outputs)
            return True
        precommits = self._votes(PRECOMMIT, round_number)
        if round_number not in self._precommit_timer and self._quorum(self._power(precommits)):
            self._precommit_timer.add(round_number)  # line 47
            self._schedule(PRECOMMIT, round_number, outputs)
            return True
        return False
