"""The consensus driver with real stores and write-ahead logs, linked by an in-process network.

The real gRPC network is exercised by tests/p2p and tests/e2e/test_consensus_network.py; here the
links are direct calls, so restarts and hostile peers can be staged exactly.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from chain.consensus.driver import Driver
from chain.consensus.signer import Signer
from chain.consensus.signstate import SignState
from chain.consensus.wal import Wal
from chain.crypto import dev_keypair
from chain.genesis import dev_genesis_document, parse_genesis
from chain.node.core import NodeCore
from chain.storage import ChainStore
from proto import p2p_pb2, types_pb2
from runtime.hashing import blake2b_256, transaction_hash
from runtime.votes import MAX_PROPOSAL_BYTES, MAX_VOTE_BYTES, VoteError, check_proposal, check_vote

NAMES = ("alice", "bob", "charlie", "dave")


class Links:
    """Direct calls between drivers, with each driver's first-seen set and a log of what was sent. Nothing
    passes to or from a validator named in `cut` (a partition)."""

    def __init__(self, me: str, drivers: dict[str, Driver], sent: list, cut: set[str]):
        self.me, self.drivers, self.sent, self.cut, self.seen = me, drivers, sent, cut, set()

    def broadcast(self, envelope, exclude=None):
        self.first_seen(envelope)
        self.sent.append((self.me, envelope))
        for name, driver in list(self.drivers.items()):
            if name != self.me and name.encode() != exclude and not {name, self.me} & self.cut:
                driver.on_message(self.me.encode(), envelope)

    def send(self, peer, envelope):
        self.sent.append((self.me, envelope))
        if peer.decode() in self.drivers and not {peer.decode(), self.me} & self.cut:
            self.drivers[peer.decode()].on_message(self.me.encode(), envelope)
        return True

    def first_seen(self, envelope):
        digest = blake2b_256(envelope.SerializeToString())
        if digest in self.seen:
            return False
        self.seen.add(digest)
        return True

    def peers(self):
        return [name.encode() for name in self.drivers if name != self.me]

    def peer_count(self):
        return len(self.peers())

    def disconnect(self, peer, reason):
        self.sent.append((self.me, reason))

    def penalize(self, peer, reason, points):
        self.sent.append((self.me, f"penalized {points}: {reason}"))


class Validators:
    def __init__(self, root: Path, block_time_ms: int = 200, epoch_blocks: int | None = None):
        document = dev_genesis_document(validator_names=NAMES)
        document["consensus_params"]["block"]["block_time_ms"] = str(block_time_ms)
        if epoch_blocks is not None:
            document["app_state"]["staking"]["params"]["epoch_blocks"] = str(epoch_blocks)
        self.genesis = parse_genesis(document)
        self.root = root
        self.drivers: dict[str, Driver] = {}
        self.opened: dict[str, tuple] = {}
        self.sent: list = []
        self.cut: set[str] = set()

    def start(self, name: str, run: bool = True) -> Driver:
        store = ChainStore(self.root / name / "db")
        if not store.is_initialized():
            store.initialize(self.genesis.chain_id, self.genesis.hash, self.genesis.initial_height, self.genesis.state())
        wal = Wal(self.root / name / "wal")
        key = dev_keypair(name)
        sign_state = SignState(self.root / name / "sign_state.json", self.genesis.chain_id, self.genesis.hash,
                               key.public_key)
        driver = Driver(NodeCore(store, self.genesis, key), Signer(key, self.genesis.chain_id, sign_state), wal)
        driver.attach(Links(name, self.drivers, self.sent, self.cut))
        self.drivers[name] = driver
        self.opened[name] = (store, wal)
        if run:
            driver.start()
        return driver

    def stop(self, name: str) -> None:
        driver = self.drivers.pop(name)
        driver.stop()
        store, wal = self.opened.pop(name)
        wal.close()
        store.close()

    def wait_heights(self, target: int, names=None, timeout: float = 30) -> None:
        names = names or list(self.drivers)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.drivers[name].core.head.height >= target for name in names):
                return
            time.sleep(0.05)
        raise AssertionError({name: self.drivers[name].core.head.height for name in names})


@pytest.fixture
def validators(tmp_path):
    network = Validators(tmp_path)
    yield network
    for name in list(network.drivers):
        network.stop(name)


def my_votes(sent, name: str) -> dict[tuple, bytes]:
    """(height, round, type) -> block hash of every vote `name` sent; AssertionError on a second, different one."""
    votes: dict[tuple, bytes] = {}
    key = dev_keypair(name).public_key
    for sender, envelope in sent:
        if isinstance(envelope, p2p_pb2.Envelope) and envelope.WhichOneof("message") == "vote":
            body = types_pb2.VoteBody.FromString(envelope.vote.body)
            if body.validator != key:
                continue
            slot = (body.height, body.round, body.type)
            assert votes.setdefault(slot, body.block_hash) == body.block_hash, f"{name} signed twice for {slot}"
    return votes


def test_four_drivers_decide_the_same_blocks(validators):
    for name in NAMES:
        validators.start(name)
    validators.wait_heights(5)
    hashes = {name: validators.drivers[name].core.store.block_hash_at(5) for name in NAMES}
    assert len(set(hashes.values())) == 1
    for name in NAMES:
        my_votes(validators.sent, name)


def test_a_validator_restarted_at_any_moment_replays_its_log_and_never_signs_twice(validators):
    for name in NAMES:
        validators.start(name)
    for restart in range(4):
        validators.wait_heights(2 + 2 * restart, ["alice", "bob", "charlie"])
        time.sleep(0.05 * restart)  # a different moment within the height each time
        assert validators.drivers["dave"].signer.refused == 0  # the log replays exactly: nothing to refuse
        validators.stop("dave")
        validators.start("dave")
    validators.wait_heights(12)
    assert validators.drivers["dave"].signer.refused == 0
    my_votes(validators.sent, "dave")
    assert not any(len(driver.evidence) for driver in validators.drivers.values())


def test_a_peer_claiming_a_height_it_cannot_serve_is_not_asked_again_and_again(validators):
    driver = validators.start("alice")  # alone it cannot decide (1 of 4); it can only sync
    status = p2p_pb2.Envelope(status=p2p_pb2.Status(height=10**15))
    driver.on_message(b"liar", status)
    time.sleep(3)
    requests = [envelope for sender, envelope in validators.sent
                if isinstance(envelope, p2p_pb2.Envelope) and envelope.WhichOneof("message") == "blocks_request"]
    assert 1 <= len(requests) <= 2
    assert driver.core.head.height == 0


def test_a_block_sync_answer_that_does_not_verify_disconnects_the_peer(validators):
    driver = validators.start("alice")
    forged = types_pb2.FinalizedBlock(block=types_pb2.Block(header=b"\x08\x01"), commit=types_pb2.Commit(height=1))
    driver.on_message(b"liar", p2p_pb2.Envelope(status=p2p_pb2.Status(height=5)))
    driver.on_message(b"liar", p2p_pb2.Envelope(blocks_response=p2p_pb2.BlocksResponse(blocks=[forged])))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not any(isinstance(item, str) for _, item in validators.sent):
        time.sleep(0.05)
    reasons = [item for _, item in validators.sent if isinstance(item, str)]
    assert reasons and "does not verify" in reasons[0]
    assert driver.core.head.height == 0


def test_a_validator_elected_at_an_epoch_boundary_starts_voting_and_the_chain_goes_on(tmp_path):
    from chain.transactions import FeeRule, sign_transaction

    network = Validators(tmp_path, epoch_blocks=4)
    try:
        for name in (*NAMES, "eve"):
            network.start(name)
        eve = network.drivers["eve"]
        assert not eve.status().is_validator
        bond = sign_transaction(
            dev_keypair("eve"), chain_id=network.genesis.chain_id, genesis_hash=network.genesis.hash, nonce=0,
            call=types_pb2.Bond(amount=2 * 10**17, validate=True), fee_rule=FeeRule(10**6, 10**4),
        ).raw
        for name in NAMES:  # no transaction gossip between these drivers: every pool gets it
            network.drivers[name].core.submit(bond)
        network.wait_heights(4)
        bonded_at = next(h for h in range(1, 5) if network.drivers["alice"].core.store.receipts(
            network.drivers["alice"].core.store.block_hash_at(h)).transactions)
        boundary = (bonded_at // 4 + 1) * 4  # the set elected there signs from the next height on
        network.wait_heights(boundary + 3)
        assert eve.status().is_validator and eve.status().validators == 5
        eve_votes = my_votes(network.sent, "eve")
        assert not any(height <= boundary for height, _, _ in eve_votes)  # a follower until elected
        assert {height for height, _, _ in eve_votes} >= {boundary + 1, boundary + 2}
        for height in range(1, boundary + 4):
            assert len({d.core.store.block_hash_at(height) for d in network.drivers.values()}) == 1
    finally:
        for name in list(network.drivers):
            network.stop(name)


def test_oversized_votes_and_proposals_are_refused_before_decoding():
    with pytest.raises(VoteError, match="more than"):
        check_vote(types_pb2.Vote(body=b"\x00" * (MAX_VOTE_BYTES + 1)), "c")
    with pytest.raises(VoteError, match="more than"):
        check_proposal(types_pb2.SignedProposal(body=b"\x00" * (MAX_PROPOSAL_BYTES + 1)), "c")


def test_a_validator_restarted_from_an_empty_database_follows_the_chain_and_never_signs_twice(validators):
    import shutil

    for name in NAMES:
        validators.start(name)
    validators.wait_heights(4)
    for lost in (("db",), ("db", "wal")):  # the documented recovery; and the consensus log lost as well
        validators.stop("dave")
        for part in lost:
            shutil.rmtree(validators.root / "dave" / part)
        validators.start("dave")
        target = validators.drivers["alice"].core.head.height + 3
        validators.wait_heights(target, timeout=60)
    my_votes(validators.sent, "dave")  # AssertionError on a second, different vote for one slot
    assert not any(len(driver.evidence) for driver in validators.drivers.values())
    heights = range(1, validators.drivers["dave"].core.head.height + 1)
    assert all(len({d.core.store.block_hash_at(h) for d in validators.drivers.values()}) == 1 for h in heights)


def test_votes_of_a_key_outside_the_validator_set_are_not_kept_logged_or_relayed_and_their_sender_is_dropped(validators):
    from chain.consensus.commit import sign_vote

    alice = all_running(validators)
    stranger = dev_keypair("ferdie")
    relayed_before = votes_sent_of(validators.sent, stranger.public_key)
    for round_number in range(200):
        vote = sign_vote(stranger, validators.genesis.chain_id, types_pb2.VOTE_TYPE_PREVOTE,
                         alice.height, round_number, b"\x01" * 32)
        alice.on_message(b"flooder", p2p_pb2.Envelope(vote=vote))
    validators.wait_heights(alice.core.head.height + 2)
    assert votes_sent_of(validators.sent, stranger.public_key) == relayed_before == 0
    reasons = [item for sender, item in validators.sent if sender == "alice" and isinstance(item, str)]
    assert len(reasons) == 1 and "not a validator" in reasons[0]  # disconnected once; the rest is not read
    assert stranger.public_key not in alice.votes.voters()


def all_running(validators) -> Driver:
    """Start the four validators, wait until they decided two blocks; Alice's driver."""
    for name in NAMES:
        validators.start(name)
    validators.wait_heights(2)
    return validators.drivers["alice"]


def votes_sent_of(sent, validator: bytes) -> int:
    """How many votes signed by `validator` any driver sent or relayed."""
    return sum(1 for _, item in sent if isinstance(item, p2p_pb2.Envelope) and item.WhichOneof("message") == "vote"
               and types_pb2.VoteBody.FromString(item.vote.body).validator == validator)


def test_a_validator_signing_votes_for_endless_rounds_cannot_evict_the_votes_that_decide(validators):
    from chain.consensus.commit import sign_vote

    alice = all_running(validators)
    dave = dev_keypair("dave")
    height = alice.height
    for round_number in range(1, 2_000):  # far more than any store cap
        vote = sign_vote(dave, validators.genesis.chain_id, types_pb2.VOTE_TYPE_PREVOTE, height + 1, round_number,
                         b"")
        alice.on_message(b"relay", p2p_pb2.Envelope(vote=vote))
    validators.wait_heights(height + 3)
    assert len(alice.votes) < 1_000


def test_a_lagging_node_catches_up_while_a_peer_claims_a_height_it_does_not_have(validators):
    for name in ("alice", "bob", "charlie"):
        validators.start(name)
    validators.wait_heights(8)
    dave = validators.start("dave")
    dave.on_message(b"liar", p2p_pb2.Envelope(status=p2p_pb2.Status(height=10**12)))
    validators.wait_heights(validators.drivers["alice"].core.head.height, ["dave"], timeout=15)
    assert dave.catch_up.sync.best() < 10**12


def test_the_event_queue_is_bounded_in_bytes_not_only_in_messages(tmp_path):
    from chain.consensus.inbox import EVENT_QUEUE_BYTES

    network = Validators(tmp_path)
    driver = network.start("alice")
    driver.stop()  # nothing takes events out now
    part = p2p_pb2.Envelope(block_part=p2p_pb2.BlockPart(height=1, data=b"\x00" * (256 * 1024)))
    fits = EVENT_QUEUE_BYTES // part.ByteSize()
    for _ in range(fits + 50):
        driver.on_message(b"flooder", part)
    assert len(driver.inbox) <= fits and driver.inbox.dropped >= 50
    network.drivers.pop("alice")
    store, wal = network.opened.pop("alice")
    wal.close()
    store.close()


def test_gossiped_evidence_of_a_double_sign_at_the_height_being_decided_is_kept_relayed_and_punished(validators):
    from chain.consensus.commit import sign_vote
    from runtime import slashing
    from runtime.evidence import make_evidence
    from runtime.votes import check_vote

    alice = all_running(validators)
    dave = dev_keypair("dave")
    height = alice.height
    votes = [check_vote(sign_vote(dave, validators.genesis.chain_id, types_pb2.VOTE_TYPE_PREVOTE, height, 9_000, value),
                        validators.genesis.chain_id) for value in (b"\x01" * 32, b"\x02" * 32)]
    evidence = make_evidence(*votes)
    alice.on_message(b"witness", p2p_pb2.Envelope(evidence=evidence))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not slashing.punished(alice.core.store.state, dave.public_key, height):
        time.sleep(0.1)
    assert slashing.punished(alice.core.store.state, dave.public_key, height)
    assert any(sender == "alice" and isinstance(item, p2p_pb2.Envelope) and item.WhichOneof("message") == "evidence"
               for sender, item in validators.sent)


def test_evidence_against_a_key_outside_the_validator_set_drops_its_sender_before_any_signature_is_checked(
        validators, monkeypatch):
    from chain.consensus.commit import sign_vote
    from runtime import evidence as evidence_rules
    from runtime.evidence import make_evidence
    from runtime.votes import check_vote

    alice = all_running(validators)
    stranger = dev_keypair("ferdie")
    votes = [check_vote(sign_vote(stranger, validators.genesis.chain_id, types_pb2.VOTE_TYPE_PREVOTE, alice.height, 0,
                                  value), validators.genesis.chain_id) for value in (b"\x01" * 32, b"\x02" * 32)]
    checked = []
    monkeypatch.setattr(evidence_rules, "check_evidence_format", lambda *args: checked.append(args))
    alice.on_message(b"junk", p2p_pb2.Envelope(evidence=make_evidence(*votes)))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not any(sender == "alice" and isinstance(item, str)
                                                  for sender, item in validators.sent):
        time.sleep(0.05)
    reasons = [item for sender, item in validators.sent if sender == "alice" and isinstance(item, str)]
    assert reasons and "not a validator" in reasons[0] and not checked and len(alice.evidence) == 0


def test_status_is_an_immutable_snapshot_that_the_loop_replaces_after_its_steps(validators):
    import dataclasses

    alice = all_running(validators)
    snapshot = alice.status()
    with pytest.raises(dataclasses.FrozenInstanceError):
        snapshot.height = 0
    height = snapshot.height
    validators.wait_heights(height + 1)
    deadline = time.monotonic() + 5
    while alice.status().height <= height and time.monotonic() < deadline:
        time.sleep(0.02)
    later = alice.status()
    assert snapshot.height == height and later.height > height  # the old one never changes; a new one replaced it
    assert later.is_validator and later.validators == 4 and later.validator_keys == {
        dev_keypair(name).public_key for name in NAMES}
    assert later.step in ("propose", "prevote", "precommit", "new height") and not later.syncing and not later.halted


def test_heights_with_work_start_at_once_while_the_idle_ticks_left_credit_then_half_a_block_time_apart(tmp_path):
    """An idle chain keeps its tick; after it, the heights that include transactions start at once until one and a
    half block times of credit are spent (chain/consensus/pace.py), then half a block time after the last one
    began."""
    from chain.transactions import FeeRule, sign_transaction, transfer_call

    network = Validators(tmp_path, block_time_ms=3_000)
    try:
        for name in NAMES:
            network.start(name)
        alice = network.drivers["alice"]
        network.wait_heights(4)  # the first height waits for every validator to start: not a whole block time
        store = alice.core.store
        header_times = [types_pb2.Header.FromString(store.finalized_block(store.block_hash_at(h)).block.header).time_ms
                        for h in (3, 4)]
        assert header_times[1] - header_times[0] >= 2_500, header_times  # idle: one block time apart
        network.wait_heights(alice.core.head.height + 1)  # just decided: the next tick is almost a block time away
        waits = []
        for nonce in range(4):  # each submitted once the one before is included
            transfer = sign_transaction(
                dev_keypair("eve"), chain_id=network.genesis.chain_id, genesis_hash=network.genesis.hash,
                nonce=nonce, call=transfer_call(dev_keypair("ferdie").public_key, 10**12),
                fee_rule=FeeRule(10**6, 10**4),
            )
            submitted = time.monotonic()
            for name in NAMES:  # no transaction gossip between these drivers: every pool gets it
                network.drivers[name].core.submit(transfer.raw)
            while alice.core.pool_contains(transfer.hash) and time.monotonic() - submitted < 10:
                time.sleep(0.01)
            assert not alice.core.pool_contains(transfer.hash)
            waits.append(time.monotonic() - submitted)
        # Three idle heights left 4.5 s of credit: the first three heights start once their transaction is gathered
        # (150 ms), taking about 1.3 s of it each; the fourth waits for the floor less what is left (about 0.9 s after
        # the third began), not for the 3 s tick.
        assert all(wait < 0.5 for wait in waits[:3]), waits
        assert 0.6 < waits[3] < 2.3, waits
    finally:
        for name in list(network.drivers):
            network.stop(name)


def test_transactions_sent_together_to_an_idle_chain_land_in_one_block(tmp_path):
    """A gateway's concurrent requests reach the pool one after another over some 80 ms: an idle node started a
    height for the first at once, and the rest went to later heights (the jobs among them drawn half a block time
    later). The pace gathers them for a twentieth of the block time from when the node first saw one."""
    from chain.transactions import FeeRule, sign_transaction, transfer_call

    network = Validators(tmp_path, block_time_ms=4_000)  # 200 ms of gathering
    try:
        for name in NAMES:
            network.start(name)
        alice = network.drivers["alice"]
        network.wait_heights(3)
        network.wait_heights(alice.core.head.height + 1)  # just decided: idle until the next tick
        time.sleep(2.2)  # past the half-block floor: without gathering, the first transaction starts a height
        hashes = []
        for nonce in range(4):  # 90 ms from the first to the last
            transfer = sign_transaction(
                dev_keypair("eve"), chain_id=network.genesis.chain_id, genesis_hash=network.genesis.hash,
                nonce=nonce, call=transfer_call(dev_keypair("ferdie").public_key, 10**12),
                fee_rule=FeeRule(10**6, 10**4),
            )
            for name in NAMES:  # no transaction gossip between these drivers: every pool gets it
                network.drivers[name].core.submit(transfer.raw)
            hashes.append(transfer.hash)
            time.sleep(0.03)
        deadline = time.monotonic() + 10
        while any(alice.core.pool_contains(tx_hash) for tx_hash in hashes) and time.monotonic() < deadline:
            time.sleep(0.01)
        store = alice.core.store
        included = {tx_hash: height for height in range(1, store.head.height + 1)
                    for tx_hash in hashes if tx_hash in transaction_hashes(store, height)}
        assert set(included) == set(hashes) and len(set(included.values())) == 1, included
    finally:
        for name in list(network.drivers):
            network.stop(name)


def transaction_hashes(store: ChainStore, height: int) -> set[bytes]:
    block = store.finalized_block(store.block_hash_at(height)).block
    return {transaction_hash(raw) for raw in block.transactions}


def test_a_validator_back_from_a_partition_takes_the_votes_it_first_got_too_early_and_the_chain_goes_on(validators):
    """CI once halted a devnet for good: validators back from a halt got the others' votes of the halted height
    while still behind (too far ahead, or kept before block sync made a new machine), and never took the
    rebroadcasts of those same bytes afterwards."""
    alice = all_running(validators)
    validators.cut.add("dave")  # dave falls behind
    validators.wait_heights(alice.core.head.height + 3, ["alice", "bob", "charlie"])
    validators.cut.add("charlie")  # 2 of 4 left: no height is final any more
    time.sleep(1.0)
    halted = alice.core.head.height
    assert validators.drivers["dave"].core.head.height < halted - 2
    validators.cut.discard("dave")  # alice, bob and dave are more than 2/3 again, once dave took their votes
    validators.wait_heights(halted + 3, ["alice", "bob", "dave"], timeout=40)
    validators.cut.clear()


def test_a_vote_kept_before_a_new_machine_started_its_height_counts_in_that_machine(validators):
    """Block sync and restarts start a new machine for a height whose votes may have arrived before: the log
    replays them into it, also when the vote store already holds them."""
    from chain.consensus.commit import sign_vote
    from chain.consensus.machine import PREVOTE

    charlie = validators.start("charlie", run=False)
    charlie._begin_height()
    vote = sign_vote(dev_keypair("alice"), validators.genesis.chain_id, types_pb2.VOTE_TYPE_PREVOTE, charlie.height,
                     0, b"")
    charlie._on_vote(b"alice", p2p_pb2.Envelope(vote=vote))
    assert dev_keypair("alice").public_key in charlie.machine._votes(PREVOTE, 0)
    charlie.machine = None  # what block sync does before it starts the next height
    charlie._begin_height()
    assert dev_keypair("alice").public_key in charlie.machine._votes(PREVOTE, 0)


def test_a_vote_too_far_ahead_is_not_marked_seen_so_its_rebroadcast_is_taken_later(validators):
    from chain.consensus.commit import sign_vote
    from chain.consensus.machine import FUTURE_HEIGHTS

    charlie = validators.start("charlie", run=False)
    charlie._begin_height()
    ahead = sign_vote(dev_keypair("alice"), validators.genesis.chain_id, types_pb2.VOTE_TYPE_PREVOTE,
                      charlie.height + FUTURE_HEIGHTS + 1, 0, b"")
    envelope = p2p_pb2.Envelope(vote=ahead)
    charlie._on_vote(b"alice", envelope)
    assert len(charlie.votes) == 0
    assert charlie.peers.first_seen(envelope)  # never marked: the same bytes are read again when they come again
