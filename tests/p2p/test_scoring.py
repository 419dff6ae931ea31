"""Peer scores, bans, message rates and the clock check, on real networks and on PeerScores alone."""

from __future__ import annotations

import dataclasses
import logging
import time

import grpc
import pytest

from chain.crypto import Keypair
from chain.p2p import PENALTY_INVALID, PENALTY_USELESS
from chain.p2p.scoring import BanPolicy, PeerScores
from chain.p2p.wire import encode_envelope
from proto import p2p_pb2
from tests.p2p.conftest import FAST, addr, peer_ids, wait_until
from tests.p2p.test_network import handshake, hello, raw_peers  # noqa: F401


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bans_escalate_from_the_first_length_doubling_up_to_the_maximum():
    clock = FakeClock()
    scores = PeerScores(BanPolicy(first_ban_s=60, max_ban_s=3600), clock)
    lengths = [scores.ban(b"p" * 32, None, "spam") for _ in range(8)]
    assert lengths == [60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert scores.banned_id(b"p" * 32)[1] == "spam"
    clock.now += 3601
    assert scores.banned_id(b"p" * 32) is None


def test_a_score_decays_so_only_penalties_close_together_ban():
    clock = FakeClock()
    scores = PeerScores(BanPolicy(decay_per_s=2.0), clock)
    for _ in range(50):
        assert not scores.penalize(b"q" * 32, 10)  # 10 points every 5 s: forgotten as fast as they come
        clock.now += 5
    assert scores.score(b"q" * 32) == 0
    assert not any(scores.penalize(b"q" * 32, 10) for _ in range(9))
    assert scores.penalize(b"q" * 32, 10)  # ten at once reach the threshold


def test_a_host_ban_applies_to_the_address_only_when_given():
    scores = PeerScores(BanPolicy(), FakeClock())
    scores.ban(b"r" * 32, "10.0.0.9", "invalid vote")
    scores.ban(b"s" * 32, None, "invalid vote")
    assert scores.banned_host("10.0.0.9") is not None and scores.banned_host("10.0.0.8") is None


def connected_pair(make_network, **kwargs):
    a, handler_a = make_network(**kwargs)
    b, handler_b = make_network([addr(a)], **kwargs)
    wait_until(lambda: peer_ids(a) == {b.node_id} and peer_ids(b) == {a.node_id})
    return a, handler_a, b, handler_b


def test_small_penalties_keep_a_peer_and_an_invalid_message_bans_it_with_the_reason(make_network, raw_peers):
    a, _ = make_network()
    key = Keypair.generate()
    peer = raw_peers(addr(a))
    handshake(peer, key)
    wait_until(lambda: peer_ids(a) == {key.public_key})
    for _ in range(10):
        a.penalize(key.public_key, "a stale vote", PENALTY_USELESS)
    assert peer_ids(a) == {key.public_key}
    a.penalize(key.public_key, "a vote from a non-validator", PENALTY_INVALID)
    code, details = peer.final_status()
    assert code == grpc.StatusCode.PERMISSION_DENIED and "banned for 1 s: a vote from a non-validator" in details
    again = raw_peers(addr(a))
    again.send(hello(node_id=key.public_key))
    code, details = again.final_status()
    assert code == grpc.StatusCode.PERMISSION_DENIED and "a vote from a non-validator" in details


def test_an_inbound_peers_address_is_banned_for_strangers_but_not_for_validators(make_network, raw_peers):
    validator = Keypair.generate()
    limits = dataclasses.replace(FAST, ban_s=30.0)
    a, _ = make_network(limits=limits, is_validator=lambda key: key == validator.public_key)
    rogue = Keypair.generate()
    peer = raw_peers(addr(a))
    handshake(peer, rogue)
    wait_until(lambda: peer_ids(a) == {rogue.public_key})
    a.disconnect(rogue.public_key, "an invalid proposal")
    peer.final_status()
    stranger = raw_peers(addr(a))
    stranger.send(hello())  # another node id from the same address, 127.0.0.1
    code, details = stranger.final_status()
    assert code == grpc.StatusCode.PERMISSION_DENIED and "an invalid proposal" in details
    node, _ = make_network([addr(a)], limits=limits, validator_key=validator)
    wait_until(lambda: node.node_id in peer_ids(a), timeout=5.0, what="the validator from the banned address")


def test_a_tx_announce_over_the_size_limit_ends_the_stream_with_invalid_argument(make_network, raw_peers):
    a, _ = make_network()
    peer = raw_peers(addr(a))
    handshake(peer)
    peer.send(encode_envelope(p2p_pb2.Envelope(tx_announce=p2p_pb2.TxAnnounce(hashes=[bytes(32)] * 4097))))
    code, details = peer.final_status()
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "a TxAnnounce with 4097 hashes (limit 4096)" in details


@pytest.mark.parametrize("kind, envelope", [
    ("status", p2p_pb2.Envelope(status=p2p_pb2.Status(height=1))),
    ("peers_request", p2p_pb2.Envelope(peers_request=p2p_pb2.PeersRequest())),
    ("tx_request", p2p_pb2.Envelope(tx_request=p2p_pb2.TxRequest(hashes=[bytes(32)]))),
])
def test_a_flood_beyond_a_rate_gets_the_peer_banned_while_others_stay(make_network, raw_peers, caplog, kind, envelope):
    caplog.set_level(logging.INFO, "inferchain.p2p")
    a, handler_a, b, _ = connected_pair(make_network)
    peer = raw_peers(addr(a))
    key = Keypair.generate()
    handshake(peer, key)
    wait_until(lambda: key.public_key in peer_ids(a))
    raw = encode_envelope(envelope)
    for _ in range(3000):
        peer.send(raw)
    code, details = peer.final_status(timeout=10.0)
    assert code == grpc.StatusCode.PERMISSION_DENIED and f"{kind} messages beyond" in details
    assert b.node_id in peer_ids(a)
    assert [r for r in caplog.records if "banned it for" in r.getMessage() and kind in r.getMessage()]


def test_a_dialer_whose_clock_is_41_s_behind_is_refused_and_told_to_fix_it(make_network, caplog):
    caplog.set_level(logging.INFO, "inferchain.p2p")
    a, _ = make_network()
    slow, _ = make_network([addr(a)], wall_clock=lambda: time.time() - 41)
    wait_until(lambda: any("your clock is 41 s behind this node's" in r.getMessage() and "NTP" in r.getMessage()
                           for r in caplog.records if f"{addr(a)} refused the handshake" in r.getMessage()),
               what="the slow dialer's log line")
    assert not a.peers() and not slow.peers()


def test_a_listener_whose_clock_is_off_refuses_dialers_with_the_offset_both_sides_log(make_network, caplog):
    caplog.set_level(logging.INFO, "inferchain.p2p")
    fast, _ = make_network(wall_clock=lambda: time.time() + 45)
    b, _ = make_network([addr(fast)])
    expected = "your clock is 45 s behind this node's (at most 30 s allowed): fix the system clock (NTP) of whichever"
    wait_until(lambda: any(expected in r.getMessage() for r in caplog.records
                           if f"{addr(fast)} refused the handshake" in r.getMessage()), what="the dialer's line")
    assert any(expected in r.getMessage() for r in caplog.records if "refused peer at" in r.getMessage())
    assert not b.peers() and not fast.peers()


def test_a_clock_a_few_seconds_off_connects_with_a_warning(make_network, caplog):
    caplog.set_level(logging.INFO, "inferchain.p2p")
    a, _ = make_network()
    b, _ = make_network([addr(a)], wall_clock=lambda: time.time() - 8)
    wait_until(lambda: peer_ids(a) == {b.node_id})
    assert any("clock of the peer" in r.getMessage() and "8 s" in r.getMessage() for r in caplog.records
               if r.levelno == logging.WARNING)
