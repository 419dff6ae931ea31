"""Who gets a slot: strangers cannot crowd out validators or boot nodes; per-address and handshake limits."""

from __future__ import annotations

import dataclasses
import logging
import os
import time

import grpc
import pytest

from chain.crypto import Keypair
from chain.p2p.wire import DIALER_ROLE, VALIDATOR_CONTEXT, handshake_transcript
from proto import p2p_pb2
from tests.p2p.conftest import FAST, addr, peer_ids, wait_until
from tests.p2p.test_network import OURS, dialer_signature, handshake, hello, hello_ack, raw_peers  # noqa: F401

# Two inbound slots, no learned dials, and handshakes that would be held long if nothing made room.
SMALL = dataclasses.replace(FAST, max_inbound=2, max_outbound=0, max_pending_handshakes=4, handshake_timeout_s=30.0)


def fill_with_strangers(target, raw_peers, count: int) -> list:
    """Authenticated fake peers with fresh node keys in every inbound slot."""
    peers = []
    for _ in range(count):
        peer = raw_peers(addr(target))
        handshake(peer, Keypair.generate())
        peers.append(peer)
    wait_until(lambda: len(target.peers()) == count, what="the strangers to take every slot")
    return peers


def hold_half_open(target, raw_peers, count: int) -> list:
    """Streams that never send a Hello."""
    peers = [raw_peers(addr(target)) for _ in range(count)]
    wait_until(lambda: target.handshakes_in_progress == min(count, SMALL.max_pending_handshakes),
               what="the half-open streams to be held")
    return peers


@pytest.mark.parametrize("strangers", ["authenticated", "half-open"])
def test_a_validator_connects_while_strangers_hold_every_free_slot(make_network, raw_peers, strangers):
    validator = Keypair.generate()
    target, _ = make_network(limits=SMALL, is_validator=lambda key: key == validator.public_key)
    if strangers == "authenticated":
        fill_with_strangers(target, raw_peers, SMALL.max_inbound)
        stranger, _ = make_network([addr(target)], limits=SMALL)
        started = time.monotonic()
    else:
        hold_half_open(target, raw_peers, SMALL.max_pending_handshakes + 4)
        started = time.monotonic()
    node, _ = make_network([addr(target)], limits=SMALL, validator_key=validator)
    # Within a few seconds, though the strangers' handshakes would be held for 30 s.
    wait_until(lambda: node.node_id in peer_ids(target), timeout=10.0, what="the validator to connect")
    assert time.monotonic() - started < 10.0
    if strangers == "authenticated":
        assert len(target.peers()) == SMALL.max_inbound + 1
        assert stranger.node_id not in peer_ids(target)  # a stranger without a validator key is refused


def test_a_boot_node_connects_while_strangers_hold_every_inbound_slot(make_network, raw_peers):
    boot_key = Keypair.generate()
    boot, _ = make_network(key=boot_key, limits=SMALL)
    host, port = boot.listen_host, boot.port
    target, _ = make_network([addr(boot)], limits=SMALL)
    wait_until(lambda: peer_ids(target) == {boot.node_id}, what="the first connection to the boot node")
    boot.stop()
    wait_until(lambda: not target.peers(), what="the boot node to go")
    fill_with_strangers(target, raw_peers, SMALL.max_inbound)
    # The boot node returns and dials the target itself: its proven id earns a reserved slot there.
    make_network([addr(target)], key=boot_key, host=host, port=port, limits=SMALL)
    wait_until(lambda: boot_key.public_key in peer_ids(target), timeout=10.0, what="the boot node to reconnect")
    assert len(target.peers()) == SMALL.max_inbound + 1


def test_a_claimed_validator_key_without_its_signature_is_refused(make_network, raw_peers, caplog):
    caplog.set_level(logging.INFO, "inferchain.p2p")
    validator = Keypair.generate()
    target, _ = make_network(limits=SMALL, is_validator=lambda key: key == validator.public_key)
    fill_with_strangers(target, raw_peers, SMALL.max_inbound)
    key, nonce = Keypair.generate(), os.urandom(32)
    peer = raw_peers(addr(target))
    peer.send(hello(node_id=key.public_key, nonce=nonce, validator_key=validator.public_key))
    listener = p2p_pb2.Envelope.FromString(peer.receive()).hello  # a provisional slot on the claim
    forged = Keypair.generate().sign(handshake_transcript(
        DIALER_ROLE, OURS, key.public_key, target.node_id, nonce, listener.nonce, VALIDATOR_CONTEXT))
    peer.send(encode_ack(dialer_signature(key, listener, nonce), forged))
    code, details = peer.final_status()
    assert code == grpc.StatusCode.UNAUTHENTICATED and "does not prove validator key" in details
    assert key.public_key not in peer_ids(target) and target.failed_authentications == 1


def test_a_validator_proof_signed_for_another_connection_is_refused(make_network, raw_peers):
    validator = Keypair.generate()
    target, _ = make_network(limits=SMALL, is_validator=lambda key: key == validator.public_key)
    key, nonce = Keypair.generate(), os.urandom(32)
    peer = raw_peers(addr(target))
    peer.send(hello(node_id=key.public_key, nonce=nonce, validator_key=validator.public_key))
    listener = p2p_pb2.Envelope.FromString(peer.receive()).hello
    # The validator's signature under the node-key context (or for another nonce) proves nothing here.
    wrong = validator.sign(handshake_transcript(DIALER_ROLE, OURS, key.public_key, target.node_id, nonce, listener.nonce))
    peer.send(encode_ack(dialer_signature(key, listener, nonce), wrong))
    code, details = peer.final_status()
    assert code == grpc.StatusCode.UNAUTHENTICATED and "validator key" in details


def test_a_proven_validator_takes_a_reserved_slot_both_ways(make_network):
    first, second = Keypair.generate(), Keypair.generate()
    validators = {first.public_key, second.public_key}
    a, _ = make_network(limits=SMALL, validator_key=first, is_validator=validators.__contains__)
    b, _ = make_network([addr(a)], limits=SMALL, validator_key=second, is_validator=validators.__contains__)
    wait_until(lambda: peer_ids(a) == {b.node_id} and peer_ids(b) == {a.node_id})
    assert a.peer_table.get(b.node_id).reserved and b.peer_table.get(a.node_id).reserved
    assert a.peer_table.get(b.node_id).validator_key == second.public_key


def test_streams_from_one_address_beyond_its_limit_are_refused_at_once(make_network, raw_peers):
    a, _ = make_network(limits=dataclasses.replace(SMALL, max_per_address=2))
    raw_peers(addr(a)), raw_peers(addr(a))
    wait_until(lambda: a.handshakes_in_progress == 2)
    third = raw_peers(addr(a))
    started = time.monotonic()
    code, details = third.final_status()
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "too many connections from 127.0.0.1 (at most 2)" in details
    # Well before any handshake deadline (30 s here): refused as the stream opened (slack for loaded machines).
    assert time.monotonic() - started < 5.0 and a.handshakes_in_progress == 2


def test_a_stream_without_a_hello_is_ended_after_the_short_handshake_deadline(make_network, raw_peers):
    a, _ = make_network()  # FAST: 2 s; the default is 3 s
    peer = raw_peers(addr(a))
    started = time.monotonic()
    code, details = peer.final_status()
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED and "no Hello within 2 s" in details
    assert time.monotonic() - started < 6.0


def encode_ack(signature: bytes, validator_signature: bytes) -> bytes:
    from chain.p2p.wire import encode_envelope
    return encode_envelope(p2p_pb2.Envelope(hello_ack=p2p_pb2.HelloAck(
        signature=signature, validator_signature=validator_signature)))
