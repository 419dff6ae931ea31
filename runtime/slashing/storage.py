"""slashing storage: the keys under `slashing/` (and, for double-signs, `staking/evidence/`) and their records.

Double-sign records keep the prefix they had when slashing was part of staking, so the state roots
did not change when it became a module. Each SlashRecord is written twice, under the account and
under the height, so that "one account's slashes" and "every slash" are each one prefix walk that
reads only the records it returns.
"""

from __future__ import annotations

from hashlib import blake2b

from proto import state_pb2
from runtime.staking.storage import read_accounts
from runtime.state import Overlay, StateReader

# + u64be(height) -> AccountList of the validators punished for a double-sign at that height;
# keyed by height so that each block deletes the one height that just became too old.
OFFENCE_PREFIX = b"staking/evidence/"
# + blake2b-256(offence || job || account) -> u64be(height it was punished at). One offence is punished once.
# The offence names (penalties.OFFENCES) are fixed and none is a prefix of another, and the job id and the
# account have fixed lengths, so the concatenation is unambiguous.
PUNISHED_PREFIX = b"slashing/offence/"
# + account || u64be(height) || u32be(index) -> SlashRecord: one account's slashes, oldest first by key.
SLASH_PREFIX = b"slashing/slash/"
# + u64be(height) || u32be(index) || account -> SlashRecord: every slash, oldest first by key.
RECENT_PREFIX = b"slashing/recent/"
# u64be(height) || u32be(next index): the index the next SlashRecord at that height takes.
CURSOR_KEY = b"slashing/cursor"
# + account -> b"": a validator pulls the brake on dispute slashing (SlashingBrake engage); deleted on release.
BRAKE_PREFIX = b"slashing/brake/"
# u32be: the number of records under BRAKE_PREFIX, so that a block with none learns it from one read.
BRAKE_COUNT_KEY = b"slashing/brake_count"
# b"" while the brake is engaged: decided at the start of each block (the current set may have changed at the
# epoch boundary) and after each SlashingBrake; what `slash` reads, one key instead of the whole set.
BRAKE_ENGAGED_KEY = b"slashing/brake_engaged"


def offence_key(height: int) -> bytes:
    """The key of the double-sign offences punished for `height`."""
    return OFFENCE_PREFIX + height.to_bytes(8, "big")


def punished(state: StateReader, validator: bytes, height: int) -> bool:
    """Whether the validator was already punished for a double-sign at `height`."""
    return validator in read_accounts(state, offence_key(height))


def punished_key(offence: str, job: bytes, account: bytes) -> bytes:
    """The key that marks `offence` in `job` by `account` as punished."""
    return PUNISHED_PREFIX + blake2b(offence.encode() + job + account, digest_size=32).digest()


def already_punished(state: StateReader, offence: str, job: bytes, account: bytes) -> bool:
    """Whether `account` was already punished for `offence` in `job`."""
    return state.get(punished_key(offence, job, account)) is not None


def mark_punished(state: Overlay, offence: str, job: bytes, account: bytes, height: int) -> None:
    state.set(punished_key(offence, job, account), height.to_bytes(8, "big"))


def slash_key(account: bytes, height: int, index: int) -> bytes:
    return SLASH_PREFIX + account + height.to_bytes(8, "big") + index.to_bytes(4, "big")


def recent_key(height: int, index: int, account: bytes) -> bytes:
    return RECENT_PREFIX + height.to_bytes(8, "big") + index.to_bytes(4, "big") + account


def _next_index(state: Overlay, height: int) -> int:
    """The index of the next SlashRecord at `height` (records of one height in the order written), advanced."""
    raw = state.get(CURSOR_KEY)
    index = 0
    if raw is not None and int.from_bytes(raw[:8], "big") == height:
        index = int.from_bytes(raw[8:], "big")
    state.set(CURSOR_KEY, height.to_bytes(8, "big") + (index + 1).to_bytes(4, "big"))
    return index


def write_slash_record(state: Overlay, record: state_pb2.SlashRecord) -> None:
    """Store `record` under its account and under its height."""
    index = _next_index(state, record.height)
    raw = record.SerializeToString(deterministic=True)
    state.set(slash_key(record.account, record.height, index), raw)
    state.set(recent_key(record.height, index, record.account), raw)


def brake_pulled(state: StateReader, account: bytes) -> bool:
    """Whether `account` has a brake record (it pulled the brake and has not released it)."""
    return state.get(BRAKE_PREFIX + account) is not None


def brake_records(state: StateReader) -> int:
    """The number of brake records, those of accounts no longer in the set included."""
    raw = state.get(BRAKE_COUNT_KEY)
    return 0 if raw is None else int.from_bytes(raw, "big")


def write_brake_record(state: Overlay, account: bytes, engage: bool) -> None:
    """Store (engage) or delete (release) the account's brake record, and keep the count; the caller checked that
    the record is absent, or present, as the case may be."""
    count = brake_records(state) + (1 if engage else -1)
    if engage:
        state.set(BRAKE_PREFIX + account, b"")
    else:
        state.delete(BRAKE_PREFIX + account)
    if count:
        state.set(BRAKE_COUNT_KEY, count.to_bytes(4, "big"))
    else:
        state.delete(BRAKE_COUNT_KEY)


def brake_engaged(state: StateReader) -> bool:
    """Whether the brake is engaged, as last decided (at the start of this block or by a SlashingBrake since)."""
    return state.get(BRAKE_ENGAGED_KEY) is not None


def write_brake_engaged(state: Overlay, engaged: bool) -> None:
    if engaged:
        state.set(BRAKE_ENGAGED_KEY, b"")
    else:
        state.delete(BRAKE_ENGAGED_KEY)
