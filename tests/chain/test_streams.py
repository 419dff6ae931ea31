"""Stream admission: per-client keys from gRPC peer strings, and places shared fairly between addresses."""

from __future__ import annotations

import pytest

from chain.node.streams import StreamGate, StreamLimits, StreamRefused, client_address


@pytest.mark.parametrize(
    "peer, client",
    [
        ("ipv4:127.0.0.1:53412", "127.0.0.1"),
        ("ipv4:10.1.2.3:1", "10.1.2.3"),
        ("ipv6:[::1]:53412", "::1"),
        ("ipv6:%5B::1%5D:53412", "::1"),
        ("ipv6:%5Bfe80::1:2%5D:443", "fe80::/64"),
        ("ipv6:[2001:db8:1:2:aaaa::7]:443", "2001:db8:1:2::/64"),
        ("ipv6:[::ffff:192.0.2.7]:443", "192.0.2.7"),
        ("unix:/tmp/node.sock", "unix"),
    ],
)
def test_the_client_of_a_peer_is_its_address_without_the_port(peer, client):
    assert client_address(peer) == client


def test_two_connections_from_one_address_are_one_client():
    assert client_address("ipv4:192.0.2.7:40000") == client_address("ipv4:192.0.2.7:40001")


def test_the_addresses_of_one_ipv6_slash_64_are_one_client():
    assert client_address("ipv6:[2001:db8::1]:1") == client_address("ipv6:[2001:db8::ffff:ffff:ffff:ffff]:2")


class FakeContext:
    def __init__(self, address: str):
        self.address = address

    def peer(self) -> str:
        return f"ipv4:{self.address}:40000"


def open_streams(gate: StreamGate, address: str, tries: int) -> tuple[list, list[str]]:
    """Try `tries` streams from `address`: (admitted, refusal messages)."""
    admitted, refusals = [], []
    for _ in range(tries):
        try:
            admitted.append(gate.admit("/inferchain.node.Node/SubscribeBlocks", FakeContext(address)))
        except StreamRefused as refusal:
            refusals.append(str(refusal))
    return admitted, refusals


def test_four_addresses_cannot_take_every_place_of_a_default_node():
    # Issue 28: four addresses took all 64 places. Now the last 16 are kept for addresses with none.
    gate = StreamGate(StreamLimits())
    taken = [len(open_streams(gate, f"127.0.0.{host}", 64)[0]) for host in (1, 2, 3, 4)]
    assert taken == [16, 16, 16, 1]
    assert gate.count() == 49
    assert all(len(open_streams(gate, f"127.0.1.{host}", 1)[0]) == 1 for host in range(15))
    assert gate.count() == 64, "nineteen addresses fill the node"
    _, refusals = open_streams(gate, "127.0.2.1", 1)
    assert "all are taken" in refusals[0]


def test_a_refusal_for_the_kept_places_says_why():
    gate = StreamGate(StreamLimits(per_node=8, per_client=8, kept_for_newcomers=3))
    admitted, refusals = open_streams(gate, "192.0.2.1", 8)
    assert len(admitted) == 5 and len(refusals) == 3
    assert "only 3 of this node's 8 stream places are free" in refusals[0]
    assert "kept for client addresses that have none open" in refusals[0] and "(192.0.2.1) has 5" in refusals[0]
    assert len(open_streams(gate, "192.0.2.2", 2)[0]) == 1, "a new address gets one of the kept places, not two"


def test_a_refusal_for_the_per_address_cap_names_it():
    gate = StreamGate(StreamLimits(per_node=16, per_client=2, kept_for_newcomers=0))
    _, refusals = open_streams(gate, "192.0.2.1", 3)
    assert refusals == ["at most 2 block subscriptions (and other streams) per client address (192.0.2.1); close one first"]
    assert len(open_streams(gate, "192.0.2.2", 2)[0]) == 2


def test_a_released_stream_frees_its_address_and_place():
    gate = StreamGate(StreamLimits(per_node=4, per_client=2, kept_for_newcomers=1))
    admitted, _ = open_streams(gate, "192.0.2.1", 2)
    assert gate.count("192.0.2.1") == 2
    for stream in admitted:
        gate.release(stream)
        gate.release(stream)  # twice is harmless
    assert gate.count("192.0.2.1") == 0 and gate.count() == 0
    assert len(open_streams(gate, "192.0.2.1", 2)[0]) == 2


@pytest.mark.parametrize(
    "limits", [dict(per_node=0), dict(per_client=-1), dict(per_node=8, kept_for_newcomers=8), dict(kept_for_newcomers=-1)]
)
def test_stream_limits_that_cannot_work_are_refused(limits):
    with pytest.raises(ValueError):
        StreamLimits(**limits)


def test_a_node_started_with_more_streams_per_client_serves_that_many_and_refuses_the_next(tmp_path):
    import grpc

    from proto import node_pb2, node_pb2_grpc
    from tests.nodes import NodeProcess, free_port

    node = NodeProcess(tmp_path / "node", free_port(), ("--rpc-max-streams-per-client", "2")).start()
    channel = grpc.insecure_channel(node.target)
    streams = []
    try:
        stub = node_pb2_grpc.NodeStub(channel)
        for _ in range(2):
            streams.append(stub.SubscribeBlocks(node_pb2.SubscribeBlocksRequest()))
            assert next(streams[-1]).height > 0  # served: a block came
        streams.append(stub.SubscribeBlocks(node_pb2.SubscribeBlocksRequest()))
        with pytest.raises(grpc.RpcError) as refused:
            next(streams[-1])
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "at most 2 block subscriptions (and other streams) per client address" in refused.value.details()
    finally:
        for stream in streams:
            stream.cancel()
        channel.close()
        node.kill()
