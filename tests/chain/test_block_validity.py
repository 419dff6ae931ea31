"""Block validity (docs/protocol.md, "Block validity"): a byzantine proposer's block breaking any rule is refused by
every honest validator, which then prevotes nil (chain/consensus/driver.py `_judge`), and an honest proposer never
builds such a block.

Four validators with real stores; Alice proposes. Her byzantine blocks are built like an honest block (the same
execution and roots), then break one rule each.
"""

from __future__ import annotations

import time

import pytest

from chain.consensus.commit import precommit_time_ms, sign_vote
from chain.crypto import Keypair, dev_keypair
from chain.genesis import dev_genesis_document, parse_genesis
from chain.node.blocks import InvalidProposedBlock
from chain.node.core import NodeCore
from chain.storage import ChainStore
from proto import types_pb2
from runtime.block import MIN_BLOCK_WEIGHT, BlockLimits, read_block_limits
from runtime.arithmetic import U64_MAX
from runtime.executive import (
    TRANSACTION_SIGNING_CONTEXT,
    BlockExecution,
    TooHeavy,
    check_transaction,
    transaction_weight,
)
from runtime.primitives import BlockContext

NAMES = ("alice", "bob", "charlie", "dave")
ALICE, BOB = dev_keypair("alice"), dev_keypair("bob")
STRANGER = Keypair.from_seed(bytes(range(32)))


class Network:
    """Four validators' cores over their own LevelDB stores, decided by hand: Alice proposes, all four precommit."""

    def __init__(self, root, *, zero_fees: bool = False, **limits: int):
        document = dev_genesis_document(validator_names=NAMES)
        document["consensus_params"]["block"].update({name: str(value) for name, value in limits.items()})
        if zero_fees:
            document["app_state"]["system"]["params"].update(base_fee="0", fee_per_byte="0", fee_per_weight="0")
        self.genesis = parse_genesis(document)
        self.stores = [ChainStore(root / name) for name in NAMES]
        for store in self.stores:
            store.initialize(self.genesis.chain_id, self.genesis.hash, self.genesis.initial_height, self.genesis.state())
        self.cores = {name: NodeCore(store, self.genesis, dev_keypair(name)) for name, store in zip(NAMES, self.stores)}

    def close(self) -> None:
        for store in self.stores:
            store.close()

    @property
    def honest(self) -> list[NodeCore]:
        return [self.cores[name] for name in NAMES[1:]]

    def decide(self, block: types_pb2.Block) -> None:
        """Every validator checks and commits `block` with all four precommits."""
        header = types_pb2.Header.FromString(block.header)
        block_hash = self.cores["alice"].blocks.check(block, ALICE.public_key).block_hash
        now_ms = precommit_time_ms(int(time.time() * 1000), header.time_ms)
        precommits = [
            sign_vote(dev_keypair(name), self.genesis.chain_id, types_pb2.VOTE_TYPE_PRECOMMIT, header.height, 0,
                      block_hash, now_ms)
            for name in NAMES
        ]
        commit = types_pb2.Commit(height=header.height, round=0, block_hash=block_hash, precommits=precommits)
        for core in self.cores.values():
            core.commit(core.blocks.check(block, ALICE.public_key), commit)

    def transfer(self, signer: Keypair, nonce: int, *, fee: int | None = None, amount: int = 1) -> bytes:
        rules = self.cores["alice"].rules
        body = types_pb2.TransactionBody(
            chain_id=self.genesis.chain_id, genesis_hash=self.genesis.hash, sender=signer.public_key, nonce=nonce,
            transfer=types_pb2.Transfer(dest=BOB.public_key, amount=amount),
        )
        size = len(_signed(body, signer)) + 8
        body.fee = rules.params.minimum_fee(size, transaction_weight(body, size)) if fee is None else fee
        return _signed(body, signer)

    def forge(self, raws=(), evidence=()) -> types_pb2.Block:
        """Alice's block executed like an honest one from these transactions and evidence, with no limit applied."""
        core = self.cores["alice"]
        builder, head = core.blocks, core.store.head
        context = BlockContext(head.height + 1, builder._next_time_ms(), ALICE.public_key, tuple(evidence))
        execution = BlockExecution(core.store.state, context, core.rules)
        execution.max_weight = U64_MAX  # her code ignores the weight limit
        included = [check_transaction(raw, core.rules) for raw in raws]
        for checked in included:
            execution.try_apply(checked)
        block_state, receipts = execution.finish()
        return builder._finish(block_state, receipts, context, head, included, [], builder._last_commit(head)).block


def _signed(body: types_pb2.TransactionBody, signer: Keypair) -> bytes:
    raw_body = body.SerializeToString()
    return types_pb2.Transaction(body=raw_body, signature=signer.sign(TRANSACTION_SIGNING_CONTEXT + raw_body)).SerializeToString()


def _with_header(block: types_pb2.Block, **changes) -> types_pb2.Block:
    header = types_pb2.Header.FromString(block.header)
    for name, value in changes.items():
        setattr(header, name, value)
    changed = types_pb2.Block()
    changed.CopyFrom(block)
    changed.header = header.SerializeToString()
    return changed


def _with_transaction(block: types_pb2.Block, raw: bytes) -> types_pb2.Block:
    changed = types_pb2.Block()
    changed.CopyFrom(block)
    changed.transactions.append(raw)
    return changed


def _double_sign(key: Keypair, chain_id: str, height: int) -> types_pb2.DuplicateVoteEvidence:
    first, second = (
        sign_vote(key, chain_id, types_pb2.VOTE_TYPE_PREVOTE, height, 0, block_hash) for block_hash in (b"\x0a" * 32, b"\x0b" * 32)
    )
    return types_pb2.DuplicateVoteEvidence(first=first, second=second)


def every_honest_validator_refuses(network: Network, block: types_pb2.Block, reason: str) -> None:
    for core in network.honest:
        with pytest.raises(InvalidProposedBlock, match=reason):
            core.blocks.check(block, ALICE.public_key)
        assert core.head.height == network.genesis.initial_height - 1 + _decided(network)


def _decided(network: Network) -> int:
    return network.cores["alice"].head.height - (network.genesis.initial_height - 1)


# --- the runtime's rules ------------------------------------------------------------------


def test_more_transactions_than_max_block_transactions_is_refused_and_never_built(tmp_path):
    network = Network(tmp_path, max_block_transactions=2)
    try:
        raws = [network.transfer(ALICE, nonce) for nonce in range(3)]
        every_honest_validator_refuses(network, network.forge(raws), "3 transactions, the limit is 2")
        for raw in raws:
            network.cores["alice"].submit(raw)
        assert len(network.cores["alice"].propose().included) == 2
    finally:
        network.close()


def test_a_block_larger_than_max_block_bytes_is_refused_and_never_built(tmp_path):
    network = Network(tmp_path, max_block_bytes=4096, max_evidence_bytes=1024)
    try:
        raws = [network.transfer(ALICE, nonce) for nonce in range(40)]
        forged = network.forge(raws)
        assert forged.ByteSize() > 4096
        every_honest_validator_refuses(network, forged, "bytes, the limit is 4096")
        for raw in raws:
            network.cores["alice"].submit(raw)
        built = network.cores["alice"].propose()
        assert 0 < len(built.included) < 40 and built.block.ByteSize() <= 4096
        for core in network.honest:
            core.blocks.check(built.block, ALICE.public_key)  # what the builder fills, every validator accepts
    finally:
        network.close()


def test_more_evidence_than_max_block_evidence_is_refused_and_never_built(tmp_path):
    network = Network(tmp_path, max_block_evidence=1)
    try:
        network.decide(network.forge())
        evidence = [_double_sign(dev_keypair(name), network.genesis.chain_id, 1) for name in ("charlie", "dave")]
        every_honest_validator_refuses(network, network.forge(evidence=evidence), "2 pieces of evidence, the limit is 1")
        assert len(network.cores["alice"].propose(evidence).block.evidence) == 1
    finally:
        network.close()


def test_more_evidence_bytes_than_max_evidence_bytes_is_refused(tmp_path):
    network = Network(tmp_path, max_evidence_bytes=200)
    try:
        network.decide(network.forge())
        evidence = [_double_sign(dev_keypair("charlie"), network.genesis.chain_id, 1)]
        assert evidence[0].ByteSize() > 200
        every_honest_validator_refuses(network, network.forge(evidence=evidence), "evidence is .* bytes, the limit is 200")
        assert len(network.cores["alice"].propose(evidence).block.evidence) == 0
    finally:
        network.close()


def test_evidence_against_a_key_outside_the_validator_set_is_refused(tmp_path):
    network = Network(tmp_path)
    try:
        network.decide(network.forge())
        evidence = [_double_sign(STRANGER, network.genesis.chain_id, 1)]
        honest = network.forge()
        forged = types_pb2.Block()
        forged.CopyFrom(honest)
        forged.evidence.extend(evidence)
        every_honest_validator_refuses(network, forged, "evidence")
    finally:
        network.close()


def test_a_block_declaring_more_than_max_block_weight_is_refused_and_never_built(tmp_path):
    network = Network(tmp_path, max_block_weight=MIN_BLOCK_WEIGHT)
    try:
        rules = network.cores["alice"].rules
        raws = [network.transfer(ALICE, nonce) for nonce in range(300)]
        weight = transaction_weight(check_transaction(raws[0], rules).body, len(raws[0]))
        assert 300 * weight > MIN_BLOCK_WEIGHT  # the 300 transfers together declare more than a block may
        every_honest_validator_refuses(network, network.forge(raws), "declares weight .* the limit is 50000000")
        for raw in raws:
            network.cores["alice"].submit(raw)
        built = network.cores["alice"].propose()
        hooks = BlockExecution(network.cores["alice"].store.state, built_context(network, built)).hooks_weight
        assert 0 < len(built.included) < 300
        assert hooks + len(built.included) * weight <= MIN_BLOCK_WEIGHT < hooks + (len(built.included) + 1) * weight
        for core in network.honest:
            core.blocks.check(built.block, ALICE.public_key)  # what the builder fills, every validator accepts
    finally:
        network.close()


def built_context(network: Network, candidate) -> BlockContext:
    header = candidate.header
    return BlockContext(header.height, header.time_ms, header.proposer)


def test_a_transaction_heavier_than_a_whole_block_is_refused_by_the_pool_before_any_fee(tmp_path):
    network = Network(tmp_path, max_block_weight=MIN_BLOCK_WEIGHT)
    try:
        rules = network.cores["alice"].rules
        models = [bytes([index % 256, index // 256]) * 16 for index in range(400)]
        body = types_pb2.TransactionBody(
            chain_id=network.genesis.chain_id, genesis_hash=network.genesis.hash, sender=ALICE.public_key, nonce=0,
            fee=10**12, set_offer=types_pb2.SetOffer(models=models, price_per_token=10**9, capacity=1),
        )
        raw = _signed(body, ALICE)
        with pytest.raises(TooHeavy, match="more than a whole block may hold"):
            check_transaction(raw, rules)
        with pytest.raises(Exception, match="more than a whole block may hold"):
            network.cores["alice"].submit(raw)
        every_honest_validator_refuses(network, _with_transaction(network.forge(), raw), "more than a whole block")
    finally:
        network.close()


def test_a_transaction_from_an_account_that_never_existed_is_refused_on_a_zero_fee_chain(tmp_path):
    network = Network(tmp_path, zero_fees=True)
    try:
        raw = network.transfer(STRANGER, 0, fee=0, amount=1)
        every_honest_validator_refuses(network, _with_transaction(network.forge(), raw), "has no account")
        with pytest.raises(Exception, match="has no account"):
            network.cores["alice"].submit(raw)
    finally:
        network.close()


@pytest.mark.parametrize(
    "tamper, reason",
    [
        (lambda raw: raw[:-1] + bytes([raw[-1] ^ 1]), "signature does not verify"),
        (lambda raw: raw + b"\x00", "not .*canonical|transaction 0 is invalid"),
    ],
    ids=["bad signature", "non-canonical bytes"],
)
def test_a_transaction_failing_its_stateless_checks_is_refused(tmp_path, tamper, reason):
    network = Network(tmp_path)
    try:
        raw = tamper(network.transfer(ALICE, 0))
        every_honest_validator_refuses(network, _with_transaction(network.forge(), raw), reason)
    finally:
        network.close()


def test_a_transaction_with_a_nonce_ahead_of_the_account_is_refused(tmp_path):
    network = Network(tmp_path)
    try:
        raw = network.transfer(ALICE, 5)
        every_honest_validator_refuses(network, _with_transaction(network.forge(), raw), "ahead of the account's next nonce")
    finally:
        network.close()


# --- the node's rules (what the state cannot know) ---------------------------------------


@pytest.mark.parametrize(
    "changes, reason",
    [
        ({"chain_id": "another-chain"}, "chain id"),
        ({"height": 7}, "its height is 7"),
        ({"parent_hash": b"\x01" * 32}, "its parent is not the head"),
        ({"validators_hash": b"\x02" * 32}, "validators hash"),
        ({"last_commit_hash": b"\x03" * 32}, "last_commit_hash"),
        ({"time_ms": 10**13}, "median time"),
        ({"state_root": b"\x04" * 32}, "state_root"),
        ({"transactions_root": b"\x05" * 32}, "transactions_root"),
        ({"receipts_root": b"\x06" * 32}, "receipts_root"),
        ({"evidence_root": b"\x07" * 32}, "evidence_root"),
    ],
    ids=lambda value: next(iter(value)) if isinstance(value, dict) else None,
)
def test_a_header_that_executing_the_block_does_not_give_is_refused(tmp_path, changes, reason):
    network = Network(tmp_path)
    try:
        network.decide(network.forge())
        every_honest_validator_refuses(network, _with_header(network.forge(), **changes), reason)
    finally:
        network.close()


def test_a_block_naming_another_proposer_is_refused(tmp_path):
    network = Network(tmp_path)
    try:
        forged = _with_header(network.forge(), proposer=BOB.public_key)
        every_honest_validator_refuses(network, forged, "another proposer")
    finally:
        network.close()


def test_limits_are_read_from_state_set_by_genesis(tmp_path):
    network = Network(tmp_path, max_block_transactions=3, max_block_evidence=2, max_evidence_bytes=999)
    try:
        limits = read_block_limits(network.cores["bob"].store.state)
        assert limits == BlockLimits(max_block_transactions=3, max_block_evidence=2, max_evidence_bytes=999)
    finally:
        network.close()
