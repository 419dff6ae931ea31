"""chain/node/randao.py through a real NodeCore: each proposed block carries the next layer of the node's onion,
and a block whose reveal is missing or wrong is refused where blocks are imported, not only where they are built."""

from __future__ import annotations

import pytest

from chain.crypto import dev_keypair
from chain.genesis import dev_genesis_document, parse_genesis
from chain.node.blocks import InvalidProposedBlock
from chain.node.core import NodeCore
from chain.storage import ChainStore
from proto import types_pb2
from runtime import randomness

GENESIS = parse_genesis(dev_genesis_document())


@pytest.fixture
def core(tmp_path):
    store = ChainStore(tmp_path / "db")
    store.initialize(GENESIS.chain_id, GENESIS.hash, GENESIS.initial_height, GENESIS.state())
    node = NodeCore(store, GENESIS, dev_keypair("alice"), clock=lambda: GENESIS.genesis_time_ms / 1000 + 3600)
    yield node
    store.close()


def reveal_of(core: NodeCore, block_hash: bytes) -> bytes:
    return types_pb2.Header.FromString(core.store.finalized_block(block_hash).block.header).randao_reveal


def test_the_first_block_registers_the_tip_and_each_next_one_reveals_its_preimage(core):
    reveals = [reveal_of(core, core.produce_block().hash) for _ in range(4)]
    assert reveals[0] == core.randao.layer(0, randomness.ONION_LAYERS)
    for earlier, later in zip(reveals, reveals[1:]):
        assert randomness.layer(later) == earlier
    record = randomness.read_record(core.store.state, dev_keypair("alice").public_key)
    assert record.last == reveals[-1] and record.revealed == 3
    assert randomness.read_mix(core.store.state) != randomness.initial_mix(GENESIS.hash)


@pytest.mark.parametrize("reveal", [b"", bytes(32), b"\x01" * 16])
def test_a_proposed_block_with_a_missing_or_wrong_reveal_is_refused_by_check(core, reveal):
    core.produce_block()  # alice is committed from now on
    honest = core.propose().block
    header = types_pb2.Header.FromString(honest.header)
    header.randao_reveal = reveal
    forged = types_pb2.Block()
    forged.CopyFrom(honest)
    forged.header = header.SerializeToString()
    with pytest.raises(InvalidProposedBlock, match="reveal|preimage|32 bytes"):
        core.blocks.check(forged, header.proposer)
    assert core.blocks.check(honest, header.proposer).block_hash == core.propose().block_hash
