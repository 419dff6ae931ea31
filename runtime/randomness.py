"""randomness: the chain's RANDAO mix, from hash-onion reveals that each block's proposer must make.

A seed that a poster knows before it submits can be ground (a poster burning nonces once landed 20
of 20 jobs on the executor it wanted). So assignment draws from a mix no single party can preview
or choose: each validator commits to the tip of a hash onion (`tip = layer^N(secret)`) and, in
every block it proposes afterwards, reveals the next layer inward, whose hash is the value it
revealed last. A reveal is thus fixed long before the block, and the mix moves as
`mix' = H(domain || mix || reveal)`. The proposer's only choice is to propose or not (withholding
costs its block and its fees), and it knows its own reveal in advance (docs/protocol.md,
"Assignment randomness"; docs/economics.md, "Assignment randomness").

Shape: constants, storage keys, errors, events, storage access, hooks, queries, declaration. No
parameters and nothing in genesis: the mix starts as H(domain || genesis hash), and each validator
registers its own onion with its first reveal.
"""

from __future__ import annotations

from hashlib import blake2b

from proto import state_pb2
from runtime import system, weights
from runtime.module import ACCOUNT, HASH, INTEGER, EventSpec, ModuleSpec, QuerySpec, require_id
from runtime.primitives import BlockContext, DispatchError, make_event
from runtime.state import Overlay, StateReader

MODULE = "randomness"

# --- constants ------------------------------------------------------------------

# Layers of one onion: a validator reveals this many times before it registers a new tip. 2^16 layers
# take a node about 0.08 s to compute once per onion (chain/node/randao.py keeps checkpoints), and last
# 65,536 of its blocks; a new tip contributes nothing to the mix, so it cannot be ground.
ONION_LAYERS = 1 << 16
REVEAL_BYTES = 32
LAYER_DOMAIN = b"inferchain/randao/layer/v1"
MIX_DOMAIN = b"inferchain/randao/mix/v1"

# --- storage keys ---------------------------------------------------------------

MIX_KEY = b"randomness/mix"  # 32 bytes: the mix after the last block's reveal
RECORD_PREFIX = b"randomness/reveal/"  # + validator account -> RandaoRecord

# --- errors ---------------------------------------------------------------------


class RandomnessError(DispatchError):
    """A block's RANDAO reveal breaks the rules; the block is invalid."""

    module = MODULE


class MalformedReveal(RandomnessError):
    """Header.randao_reveal is neither empty nor 32 bytes."""


class MissingReveal(RandomnessError):
    """The proposer committed to an onion but its block carries no reveal."""


class WrongReveal(RandomnessError):
    """The reveal does not hash to the value the proposer revealed last."""


ERRORS = (MalformedReveal, MissingReveal, WrongReveal)

# --- events ---------------------------------------------------------------------

ONION_REGISTERED = "OnionRegistered"

EVENTS = (
    EventSpec(ONION_REGISTERED, "A proposer committed to the tip of a new hash onion (it adds nothing to the mix).",
              {"validator": ACCOUNT, "onion": INTEGER, "tip": HASH}),
)

# --- storage access -------------------------------------------------------------


def layer(value: bytes) -> bytes:
    """One layer of an onion outward: H(domain || value); a reveal is checked by layer(reveal) == last."""
    return blake2b(LAYER_DOMAIN + value, digest_size=32).digest()


def initial_mix(genesis_hash: bytes) -> bytes:
    """The mix before any reveal."""
    return blake2b(MIX_DOMAIN + genesis_hash, digest_size=32).digest()


def next_mix(mix: bytes, reveal: bytes) -> bytes:
    """The mix after a counted reveal."""
    return blake2b(MIX_DOMAIN + mix + reveal, digest_size=32).digest()


def read_mix(state: StateReader) -> bytes:
    """The mix after the latest block's reveal (the initial mix until the first counted reveal)."""
    stored = state.get(MIX_KEY)
    return stored if stored is not None else initial_mix(system.read_chain(state).genesis_hash)


def read_record(state: StateReader, validator: bytes) -> state_pb2.RandaoRecord | None:
    """The validator's onion commitment, or None when it never revealed."""
    raw = state.get(RECORD_PREFIX + validator)
    return None if raw is None else state_pb2.RandaoRecord.FromString(raw)


def _write_record(state: Overlay, validator: bytes, record: state_pb2.RandaoRecord) -> None:
    state.set(RECORD_PREFIX + validator, record.SerializeToString(deterministic=True))


# --- hooks ----------------------------------------------------------------------


def check_reveal(record: state_pb2.RandaoRecord | None, reveal: bytes) -> bool:
    """Whether `reveal` is a valid reveal after `record`, and counts in the mix (False: it registers a tip).

    Raises the module's errors for a reveal that makes the block invalid.
    """
    if reveal and len(reveal) != REVEAL_BYTES:
        raise MalformedReveal(f"a RANDAO reveal is empty or {REVEAL_BYTES} bytes, got {len(reveal)}")
    if record is None or record.revealed >= ONION_LAYERS:
        if record is not None and not reveal:
            raise MissingReveal(
                f"the proposer's onion {record.onion} is used up: its block must carry the tip of the next one"
            )
        return False
    if not reveal:
        raise MissingReveal(
            f"the proposer committed to onion {record.onion}: its block must carry the preimage of "
            f"{record.last.hex()} (layer {record.revealed + 1} of {ONION_LAYERS})"
        )
    if layer(reveal) != record.last:
        raise WrongReveal(f"the reveal {reveal.hex()} does not hash to the proposer's last value {record.last.hex()}")
    return True


def on_initialize(state: Overlay, block: BlockContext) -> None:
    """Check the proposer's reveal; mix it in, or register it as the tip of the proposer's next onion."""
    reveal = block.randao_reveal
    record = read_record(state, block.author)
    counted = check_reveal(record, reveal)
    if counted:
        record.last = reveal
        record.revealed += 1
        _write_record(state, block.author, record)
        state.set(MIX_KEY, next_mix(read_mix(state), reveal))
        return
    if not reveal:
        return
    onion = 0 if record is None else record.onion + 1
    _write_record(state, block.author, state_pb2.RandaoRecord(last=reveal, revealed=0, onion=onion))
    state.deposit_event(make_event(MODULE, ONION_REGISTERED, validator=block.author.hex(), onion=onion,
                                   tip=reveal.hex()))


# --- queries --------------------------------------------------------------------


def query_mix(state: StateReader, request: state_pb2.NoArguments) -> state_pb2.RandaoMix:
    """The mix after the head block's reveal."""
    return state_pb2.RandaoMix(mix=read_mix(state))


def query_record(state: StateReader, request: state_pb2.AccountQuery) -> state_pb2.RandaoRecord:
    """A validator's onion commitment; KeyError when it never revealed."""
    record = read_record(state, require_id(request.account, "account"))
    if record is None:
        raise KeyError(f"a RANDAO commitment of {request.account.hex()}")
    return record


QUERIES = (
    QuerySpec(name="mix", doc="The RANDAO mix after the head block's reveal.", request=state_pb2.NoArguments,
              response=state_pb2.RandaoMix, handler=query_mix, fields={"mix": HASH}),
    QuerySpec(name="record", doc="A validator's onion: its last reveal, layers revealed, which onion.",
              request=state_pb2.AccountQuery, response=state_pb2.RandaoRecord, handler=query_record,
              fields={"account": ACCOUNT, "last": HASH, "revealed": INTEGER, "onion": INTEGER}),
)

# --- declaration ----------------------------------------------------------------

SPEC = ModuleSpec(
    name=MODULE,
    doc="The RANDAO mix: each proposer reveals the next layer of its hash onion.",
    params=None,
    genesis=None,
    events=EVENTS,
    errors=ERRORS,
    queries=QUERIES,
    on_initialize=on_initialize,
    # The proposer's record and the mix read and written, one hash (runtime/weights.py).
    hooks_weight=lambda state, block: 2 * weights.READ + 2 * weights.WRITE,
)
