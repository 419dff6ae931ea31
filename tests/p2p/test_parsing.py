"""What the network parses from peers (addresses, Envelopes, Hellos) is refused with one exception type, never crashes."""

from __future__ import annotations

import grpc
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from chain.crypto import Keypair
from chain.p2p.wire import (
    ChainIdentity, HandshakeRefused, MAX_ADDR_CHARS, PROTOCOL_VERSION, ProtocolViolation, check_clock, check_hello,
    encode_envelope,
    parse_addr, parse_dial_addr, parse_envelope, parse_hello_ack,
)
from proto import p2p_pb2, types_pb2
from tests.p2p.conftest import CHAIN_ID, GENESIS_HASH, addr, peer_ids, wait_until
from tests.p2p.test_network import RawPeer, handshake

OURS = ChainIdentity(chain_id=CHAIN_ID, genesis_hash=GENESIS_HASH)
OWN_ID = b"\x55" * 32


@pytest.mark.parametrize("text", ["127.0.0.2:4000", "node-1.example.org:30333", "[::1]:1", "localhost:65535"])
def test_dialable_addresses_parse(text):
    host, port = parse_dial_addr(text)
    assert f"{host}:{port}" == text


@pytest.mark.parametrize(
    "text",
    ["", "127.0.0.2", ":4000", "host:", "host:65536", "host:0x10", "host:²", "host:007", "ho st:1", "[::1:1",
     "-bad.example:1", "a..b:1", "x" * 300 + ":1", "é.example:1", "[zz]:1", "0.0.0.0:80", "host:0"],
)
def test_undialable_addresses_are_refused(text):
    with pytest.raises(ValueError):
        parse_dial_addr(text)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=300))
def test_any_text_parses_as_an_address_or_raises_value_error(text):
    try:
        host, port = parse_addr(text)
    except ValueError:
        return
    assert len(text) <= MAX_ADDR_CHARS and text.isascii() and f"{host}:{port}" == text and 0 <= port <= 65535


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_parse_as_an_envelope_or_raise_a_protocol_violation(raw):
    try:
        envelope = parse_envelope(raw)
    except ProtocolViolation:
        return
    assert envelope.WhichOneof("message") is not None and encode_envelope(envelope) == raw


def test_a_non_canonical_envelope_is_refused():
    vote = p2p_pb2.Envelope(vote=types_pb2.Vote(body=b"b", signature=b"s"))
    raw = encode_envelope(vote)
    with pytest.raises(ProtocolViolation, match="not canonically encoded"):
        parse_envelope(raw + raw)  # the oneof written twice: the last wins in a parser, so it is refused


hellos = st.builds(
    p2p_pb2.Hello,
    protocol_version=st.one_of(st.just(PROTOCOL_VERSION), st.integers(0, 2**32 - 1)),
    chain_id=st.one_of(st.just(CHAIN_ID), st.text(max_size=20)),
    genesis_hash=st.one_of(st.just(GENESIS_HASH), st.binary(max_size=40)),
    node_id=st.one_of(st.binary(min_size=32, max_size=32), st.binary(max_size=40), st.just(OWN_ID)),
    public_addr=st.one_of(st.just(""), st.just("127.0.0.9:30333"), st.text(max_size=40)),
    height=st.integers(0, 2**64 - 1),
    nonce=st.one_of(st.binary(min_size=32, max_size=32), st.binary(max_size=40)),
    signature=st.one_of(st.just(b""), st.binary(max_size=70)),
    validator_key=st.one_of(st.just(b""), st.binary(min_size=32, max_size=32), st.binary(max_size=40)),
    validator_signature=st.one_of(st.just(b""), st.binary(max_size=70)),
    time_ms=st.integers(0, 2**64 - 1),
)


@settings(max_examples=500, deadline=None)
@given(hellos)
def test_any_hello_is_accepted_only_when_it_fits_or_refused_with_a_status(hello):
    try:
        check_hello(OURS, OWN_ID, hello)
    except HandshakeRefused as refusal:
        assert refusal.code in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT,
                                grpc.StatusCode.ALREADY_EXISTS)
        assert refusal.detail
        return
    assert (hello.protocol_version, hello.chain_id, hello.genesis_hash) == (PROTOCOL_VERSION, CHAIN_ID, GENESIS_HASH)
    assert len(hello.node_id) == 32 and hello.node_id != OWN_ID
    assert len(hello.nonce) == 32 and hello.signature == b""
    assert len(hello.validator_key) in (0, 32) and hello.validator_signature == b""


@settings(max_examples=500, deadline=None)
@given(peer_time_ms=st.integers(0, 2**64 - 1), own_time_s=st.floats(0, 4e9), max_offset_s=st.floats(0, 3600))
def test_any_peer_clock_is_accepted_within_the_bound_or_refused_with_a_reason_to_act_on(peer_time_ms, own_time_s,
                                                                                         max_offset_s):
    try:
        offset = check_clock(peer_time_ms, own_time_s, max_offset_s)
    except HandshakeRefused as refusal:
        assert refusal.code == grpc.StatusCode.FAILED_PRECONDITION
        assert refusal.detail.startswith("your clock is ") and "fix the system clock (NTP)" in refusal.detail
        assert abs(peer_time_ms / 1000 - own_time_s) > max_offset_s
        return
    assert abs(offset) <= max_offset_s


def test_a_clock_41_s_behind_is_told_so():
    with pytest.raises(HandshakeRefused, match="your clock is 41 s behind this node's .*fix the system clock"):
        check_clock(1_000_000, 1041.0, 30.0)
    with pytest.raises(HandshakeRefused, match="its clock is 41 s ahead of this node's"):
        check_clock(1_041_000, 1000.0, 30.0, "its")


@settings(max_examples=500, deadline=None)
@given(st.one_of(
    st.binary(max_size=120),
    st.binary(max_size=80).map(lambda s: encode_envelope(p2p_pb2.Envelope(hello_ack=p2p_pb2.HelloAck(signature=s)))),
))
def test_any_bytes_parse_as_a_hello_ack_or_are_refused_as_unauthenticated(raw):
    try:
        ack = parse_hello_ack(raw)
    except HandshakeRefused as refusal:
        assert refusal.code == grpc.StatusCode.UNAUTHENTICATED and refusal.detail
        return
    assert encode_envelope(p2p_pb2.Envelope(hello_ack=ack)) == raw


@pytest.fixture(scope="module")
def one_network():
    from chain.p2p.network import Network
    from tests.p2p.conftest import FAST, RecordingHandler, next_host

    handler = RecordingHandler()
    network = Network(chain_id=CHAIN_ID, genesis_hash=GENESIS_HASH, node_key=Keypair.generate(),
                      listen_addr=f"{next_host()}:0", public_addr=None, bootnodes=[], handler=handler,
                      height=lambda: 0, limits=FAST)
    network.start()
    yield network
    network.stop()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=st.binary(max_size=64), then=st.lists(st.binary(max_size=64), max_size=3))
def test_arbitrary_bytes_on_a_real_stream_end_only_that_stream(one_network, first, then):
    peer = RawPeer(addr(one_network))
    try:
        peer.send(first)
        for raw in then:
            peer.send(raw)
        peer.send(None)
        code, _ = peer.final_status(timeout=3.0)
        assert code != grpc.StatusCode.UNKNOWN and code != grpc.StatusCode.INTERNAL
    finally:
        peer.close()
    # The node still takes a proper peer.
    good_key = Keypair.generate()
    good_id = good_key.public_key
    good = RawPeer(addr(one_network))
    try:
        assert handshake(good, good_key).node_id == one_network.node_id
        wait_until(lambda: good_id in peer_ids(one_network), timeout=3)
    finally:
        good.close()


def test_the_handshake_transcript_is_the_documented_bytes_and_binds_every_part():
    from chain.p2p.wire import DIALER_ROLE, LISTENER_ROLE, handshake_transcript

    dialer, listener, dialer_nonce, listener_nonce = b"\x01" * 32, b"\x02" * 32, b"\x03" * 32, b"\x04" * 32
    transcript = handshake_transcript(LISTENER_ROLE, OURS, dialer, listener, dialer_nonce, listener_nonce)
    chain = CHAIN_ID.encode()
    assert transcript == (
        b"inferchain/p2p-handshake/v1" + b"\x08listener" + PROTOCOL_VERSION.to_bytes(4, "big")
        + len(chain).to_bytes(4, "big") + chain + (32).to_bytes(4, "big") + GENESIS_HASH
        + dialer + listener + dialer_nonce + listener_nonce
    )
    others = {
        handshake_transcript(DIALER_ROLE, OURS, dialer, listener, dialer_nonce, listener_nonce),
        handshake_transcript(LISTENER_ROLE, ChainIdentity(chain_id="other", genesis_hash=GENESIS_HASH), dialer, listener,
                             dialer_nonce, listener_nonce),
        handshake_transcript(LISTENER_ROLE, ChainIdentity(chain_id=CHAIN_ID, genesis_hash=b"\xee" * 32), dialer,
                             listener, dialer_nonce, listener_nonce),
        handshake_transcript(LISTENER_ROLE, OURS, listener, dialer, dialer_nonce, listener_nonce),
        handshake_transcript(LISTENER_ROLE, OURS, dialer, listener, listener_nonce, dialer_nonce),
    }
    assert transcript not in others and len(others) == 5
