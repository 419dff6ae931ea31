"""This validator's RANDAO reveals: the layers of its hash onions, derived from its key (runtime/randomness.py).

Onion `i` has secret s_i = H("inferchain/randao/secret/v1" || Ed25519 seed || u64le(i)) and layers
L_0 = s_i, L_{k+1} = layer(L_k); its tip is L_N (N = ONION_LAYERS). The first block a validator
proposes carries the tip of onion 0; the j-th block after that carries L_{N-j}, whose layer is the
value revealed before it; after L_0 the next block carries the tip of onion i+1. Which value is due
is read from the chain's record of the validator, so a restarted node needs no file of its own.
Only the secret derives from the seed, never the other way, so revealing a layer shows nothing of
the key. Checkpoints every CHECKPOINT_EVERY layers make each reveal cost at most that many hashes.
"""

from __future__ import annotations

import struct
from hashlib import blake2b

from chain.crypto import Keypair
from runtime import randomness
from runtime.state import StateReader

SECRET_DOMAIN = b"inferchain/randao/secret/v1"
CHECKPOINT_EVERY = 256


class RandaoError(RuntimeError):
    """The chain's record of this validator does not match the onions its key derives (another key or software)."""


class Randao:
    """The reveals of one validator key."""

    def __init__(self, keypair: Keypair, layers: int = randomness.ONION_LAYERS):
        self.keypair = keypair
        self.layers = layers
        self._onion: int | None = None
        self._checkpoints: list[bytes] = []

    def reveal(self, state: StateReader) -> bytes:
        """The value the next block this validator proposes on top of `state` must carry."""
        record = randomness.read_record(state, self.keypair.public_key)
        if record is None:
            return self.layer(0, self.layers)
        if record.revealed >= self.layers:
            return self.layer(record.onion + 1, self.layers)
        value = self.layer(record.onion, self.layers - record.revealed - 1)
        if randomness.layer(value) != record.last:
            raise RandaoError(
                f"the chain's last reveal of {self.keypair.public_key.hex()} ({record.last.hex()}) is not from this "
                "key's onion: the validator cannot propose a valid block"
            )
        return value

    def layer(self, onion: int, index: int) -> bytes:
        """L_index of onion `onion` (0: the secret, self.layers: the tip)."""
        if self._onion != onion:
            self._build(onion)
        value = self._checkpoints[index // CHECKPOINT_EVERY]
        for _ in range(index % CHECKPOINT_EVERY):
            value = randomness.layer(value)
        return value

    def _build(self, onion: int) -> None:
        value = blake2b(SECRET_DOMAIN + self.keypair.seed + struct.pack("<Q", onion), digest_size=32).digest()
        checkpoints = []
        for index in range(self.layers + 1):
            if index % CHECKPOINT_EVERY == 0:
                checkpoints.append(value)
            value = randomness.layer(value)
        self._onion, self._checkpoints = onion, checkpoints
