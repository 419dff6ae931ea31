"""The validator's last signature, on disk beside its key: the guard that makes a double-sign impossible.

A Tendermint validator is slashed for signing two different votes (or proposals) for one height,
round and step. The consensus machine never does within one run, and the write-ahead log replays
a height after a restart, but neither survives an operator removing the chain database, a resync
from genesis, or a restart that judges a replayed proposal differently. So, as CometBFT's
`priv_validator_state.json`, every signature first passes `SignState.authorize`, which compares
(height, round, step) with the last one signed, and is recorded durably (fsynced, renamed into
place) before it leaves the node:

- below the last signed (height, round, step): refused, whatever it is;
- the same (height, round, step) and block hash: the bytes signed then are sent again (a vote's
  time may differ on a second signing; the first signature is the one that stays valid);
- the same (height, round, step) and another block hash: refused;
- above: allowed, and recorded before the caller may send it.

The file lives outside the chain database (chain/node/runner.py picks the path: beside a key
file, or in the chain directory for a development key), so removing the database, as the recovery
procedures of docs/operator.md do, keeps it. It names the chain and genesis it belongs to; a
state of another chain or genesis is not applied (a new devnet reusing a key starts afresh).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from chain.durable import write_durably

log = logging.getLogger("inferchain.consensus")

# Steps in the order a validator signs them within one round.
STEP_ORDER = {"propose": 1, "prevote": 2, "precommit": 3}
FILE_VERSION = 1
MAX_FILE_BYTES = 64 * 1024


class SignStateError(Exception):
    """The sign-state file cannot be read or written; the message names the file and what to do."""


class SignRefused(Exception):
    """Signing this would sign twice at one height, round and step (or go back); the message says what was signed."""


@dataclass(frozen=True)
class Signed:
    """The last signature of this validator: where, for which block hash, and the exact bytes sent."""

    height: int
    round: int
    step: str
    block_hash: bytes
    signed: bytes  # the serialised Vote or SignedProposal

    @property
    def position(self) -> tuple[int, int, int]:
        return self.height, self.round, STEP_ORDER[self.step]

    def describe(self) -> str:
        target = self.block_hash.hex()[:16] if self.block_hash else "nil"
        return f"{self.step} for {target} at #{self.height} round {self.round}"


class SignState:
    """The durable record of the last signature of one validator key on one chain."""

    def __init__(self, path: Path, chain_id: str, genesis_hash: bytes, validator: bytes):
        self.path = Path(path)
        self.chain_id = chain_id
        self.genesis_hash = genesis_hash
        self.validator = validator
        self.last: Signed | None = self._load()

    def authorize(self, height: int, round_number: int, step: str, block_hash: bytes) -> bytes | None:
        """None when signing this is allowed (sign, then `record`); the bytes signed before when it was signed
        already for the same block hash; SignRefused otherwise."""
        last = self.last
        if last is None:
            return None
        position = (height, round_number, STEP_ORDER[step])
        if position > last.position:
            return None
        if position == last.position and block_hash == last.block_hash:
            return last.signed
        target = block_hash.hex()[:16] if block_hash else "nil"
        raise SignRefused(
            f"refusing to sign a {step} for {target} at #{height} round {round_number}: this validator already "
            f"signed a {last.describe()} ({self.path}); signing would be a double-sign"
        )

    def record(self, height: int, round_number: int, step: str, block_hash: bytes, signed: bytes) -> None:
        """Store a signature durably before it is sent (SignStateError when the disk refuses: then send nothing)."""
        entry = Signed(height, round_number, step, block_hash, signed)
        document = {
            "version": FILE_VERSION,
            "chain_id": self.chain_id,
            "genesis_hash": self.genesis_hash.hex(),
            "validator": self.validator.hex(),
            "height": str(height),
            "round": round_number,
            "step": step,
            "block_hash": block_hash.hex(),
            "signed": signed.hex(),
        }
        _write_durably(self.path, json.dumps(document, indent=1).encode() + b"\n")
        self.last = entry

    def _load(self) -> Signed | None:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return None
        except OSError as error:
            raise SignStateError(f"cannot read the sign state {self.path}: {error.strerror}") from None
        if size > MAX_FILE_BYTES:
            raise SignStateError(f"the sign state {self.path} is {size} bytes, not a sign state; {_KEEP_ADVICE}")
        try:
            document = json.loads(self.path.read_bytes())
            if document.get("version") != FILE_VERSION:
                raise ValueError(f"version {document.get('version')!r}, expected {FILE_VERSION}")
            if (document["chain_id"], document["genesis_hash"]) != (self.chain_id, self.genesis_hash.hex()):
                log.warning("the sign state %s is of another chain or genesis (%s): starting a new one for this chain",
                            self.path, document["chain_id"])
                return None
            if document["validator"] != self.validator.hex():
                raise ValueError("it belongs to another validator key")
            signed = Signed(
                height=int(document["height"]), round=int(document["round"]), step=document["step"],
                block_hash=bytes.fromhex(document["block_hash"]), signed=bytes.fromhex(document["signed"]),
            )
            if signed.step not in STEP_ORDER:
                raise ValueError(f"unknown step {signed.step!r}")
            return signed
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise SignStateError(f"the sign state {self.path} is unreadable ({error}); {_KEEP_ADVICE}") from None


_KEEP_ADVICE = (
    "it guards this validator against double-signing, so the node will not sign without it: restore it from "
    "a backup, or see docs/operator.md, 'The sign state'"
)


def _write_durably(path: Path, content: bytes) -> None:
    """Replace `path` with `content` durably (chain/durable.py); SignStateError when it cannot be written."""
    try:
        write_durably(path, content)
    except OSError as error:
        raise SignStateError(f"cannot write the sign state {path}: {error.strerror}; nothing was signed") from None


def sign_state_path(chain_path: Path, key_file: Path | None, chain_id: str) -> Path:
    """Where a validator's sign state lives: beside its key file, or in the chain directory for a development key."""
    if key_file is None:
        return Path(chain_path) / "sign_state.json"
    key_file = Path(key_file).resolve()
    return key_file.with_name(f"{key_file.name}.{chain_id}.sign_state.json")
