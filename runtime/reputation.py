"""reputation: an integer score per executor, bought with burned fees, lost by missed deadlines, decaying.

The score weighs executor assignment (runtime/jobs/assignment.py: stake x reputation). Its rules are
parameters of the jobs module (`jobs.params.reputation_*`), as slashing's are staking's; since the
jobs module imports this one, the rules are read from their stored record (`jobs/params`, a
`JobsParams`) by `read_rules`. The module has no calls, no parameters of its own and nothing in
genesis. The rule (docs/economics.md, "Reputation"; docs/protocol.md, "Jobs"):

- A score is stored with the epoch it last moved in. Read in a later epoch, the part above
  `reputation_initial` has shrunk by `reputation_decay_ppm` per epoch elapsed (`decay_factor_ppm`,
  at most 64 steps whatever the age), so a score must be kept up by work, and a fresh key, at the
  low `reputation_initial`, is worth less than a used one.
- A settled payment adds one point per `reputation_price` base units of protocol fee burned on it
  (the remainder is kept as credit toward the next point); none when the poster is the executor
  (self-dealing the chain can see; a zero price burns nothing); at most
  `reputation_gain_cap_per_epoch` points per epoch and never above `reputation_max`.
- A missed deadline takes `reputation_loss` points; a score never falls below 1.

Shape: storage keys, rules, storage access, the rule's moves, queries, declaration.
"""

from __future__ import annotations

from dataclasses import dataclass

from proto import state_pb2
from runtime import staking, system
from runtime.arithmetic import PPM
from runtime.module import ACCOUNT, AMOUNT, INTEGER, ModuleSpec, QuerySpec, require_id
from runtime.params import ParamsInvalid
from runtime.state import Overlay, StateReader

MODULE = "reputation"

# --- storage keys ---------------------------------------------------------------

PREFIX = b"reputation/"  # + account -> ReputationRecord
JOBS_PARAMS_KEY = b"jobs/params"  # the jobs module's JobsParams, which hold this module's rules


def key(account: bytes) -> bytes:
    return PREFIX + account


# --- rules ----------------------------------------------------------------------


@dataclass(frozen=True)
class Rules:
    """The reputation parameters (from jobs.params) and the current epoch."""

    initial: int
    maximum: int
    loss: int
    price: int
    gain_cap_per_epoch: int
    decay_ppm: int
    epoch: int


def current_epoch(state: StateReader) -> int:
    """The epoch of the block being built (staking's epochs; 0 at genesis)."""
    return max(0, staking.epoch_of(system.read_chain(state).height, staking.read_params(state)))


def read_rules(state: StateReader) -> Rules:
    """The rules as stored in `state`, at the current epoch."""
    raw = state.get(JOBS_PARAMS_KEY)
    if raw is None:
        raise ParamsInvalid("no jobs parameters are stored: reputation's rules are among them")
    params = state_pb2.JobsParams.FromString(raw)
    return Rules(
        initial=params.reputation_initial,
        maximum=params.reputation_max,
        loss=params.reputation_loss,
        price=params.reputation_price,
        gain_cap_per_epoch=params.reputation_gain_cap_per_epoch,
        decay_ppm=params.reputation_decay_ppm,
        epoch=current_epoch(state),
    )


def decay_factor_ppm(decay_ppm: int, epochs: int) -> int:
    """(1 - decay_ppm / 10^6) ** epochs in parts per million: square-and-multiply, each product rounded down."""
    factor, base = PPM, PPM - decay_ppm
    while epochs and factor:
        if epochs & 1:
            factor = factor * base // PPM
        base = base * base // PPM
        epochs >>= 1
    return factor


def decayed(score: int, epochs: int, rules: Rules) -> int:
    """`score` after `epochs` epochs untouched: the part above `initial` shrinks, a part below stays."""
    if epochs <= 0 or score <= rules.initial:
        return score
    return rules.initial + (score - rules.initial) * decay_factor_ppm(rules.decay_ppm, epochs) // PPM


# --- storage access -------------------------------------------------------------


def read_record(state: StateReader, account: bytes, rules: Rules, initial: int | None = None) -> state_pb2.ReputationRecord:
    """The account's record as of the current epoch: decayed, with this epoch's gains (not yet written)."""
    raw = state.get(key(account))
    if raw is None:
        return state_pb2.ReputationRecord(score=rules.initial if initial is None else initial, epoch=rules.epoch)
    record = state_pb2.ReputationRecord.FromString(raw)
    if record.epoch >= rules.epoch:
        return record
    score = decayed(record.score, rules.epoch - record.epoch, rules)
    return state_pb2.ReputationRecord(score=score, epoch=rules.epoch, gained=0, credit=record.credit)


def read_reputation(state: StateReader, account: bytes, initial: int | None = None, rules: Rules | None = None) -> int:
    """The account's score now (decayed to this epoch); `initial` (default reputation_initial) when it has no record.

    A caller scoring many accounts in one block passes `rules` (read_rules) to read them once.
    """
    return read_record(state, account, rules or read_rules(state), initial).score


def _write(state: Overlay, account: bytes, record: state_pb2.ReputationRecord) -> None:
    state.set(key(account), record.SerializeToString(deterministic=True))


# --- the rule's moves -----------------------------------------------------------


def reward(state: Overlay, executor: bytes, poster: bytes, burned: int) -> int:
    """Credit the fee burned on an executor's payment; the points gained (none for a job it posted itself)."""
    if executor == poster or burned <= 0:
        return 0
    rules = read_rules(state)
    record = read_record(state, executor, rules)
    credit = record.credit + burned
    points = credit // rules.price
    room = max(0, min(rules.gain_cap_per_epoch - record.gained, rules.maximum - record.score))
    gained = min(points, room)
    record.score += gained
    record.gained += gained
    # Burned fee beyond the cap buys nothing: a point cannot be bought faster by paying more.
    record.credit = credit - points * rules.price if gained == points else 0
    _write(state, executor, record)
    return gained


def penalize(state: Overlay, executor: bytes) -> int:
    """Take reputation_loss points for a missed deadline (never below 1); the new score."""
    rules = read_rules(state)
    record = read_record(state, executor, rules)
    record.score = max(1, record.score - rules.loss)
    _write(state, executor, record)
    return record.score


# --- queries --------------------------------------------------------------------


def query_score(state: StateReader, request: state_pb2.AccountQuery) -> state_pb2.ReputationScore:
    """An executor's score now (decayed to this epoch); KeyError when it has no record (it is at reputation_initial)."""
    account = require_id(request.account, "account")
    if state.get(key(account)) is None:
        raise KeyError(f"a score for {account.hex()} (none yet: it is at jobs.params.reputation_initial)")
    record = read_record(state, account, read_rules(state))
    return state_pb2.ReputationScore(account=account, score=record.score, gained_this_epoch=record.gained,
                                     credit=record.credit)


QUERIES = (
    QuerySpec(name="score", doc="An executor's reputation score now (its weight in assignment, with its stake).",
              request=state_pb2.AccountQuery, response=state_pb2.ReputationScore, handler=query_score,
              fields={"account": ACCOUNT, "score": INTEGER, "gained_this_epoch": INTEGER, "credit": AMOUNT}),
)

# --- declaration ----------------------------------------------------------------

SPEC = ModuleSpec(
    name=MODULE,
    doc="An integer score per executor, bought with burned fees and decaying, used as an assignment weight.",
    params=None,
    genesis=None,
    queries=QUERIES,
)
