"""Stream admission: per-client keys from gRPC peer strings."""

from __future__ import annotations

import pytest

from chain.node.streams import client_address


@pytest.mark.parametrize(
    "peer, client",
    [
        ("ipv4:127.0.0.1:53412", "127.0.0.1"),
        ("ipv4:10.1.2.3:1", "10.1.2.3"),
        ("ipv6:[::1]:53412", "::1"),
        ("ipv6:%5B::1%5D:53412", "::1"),
        ("ipv6:%5Bfe80::1:2%5D:443", "fe80::1:2"),
        ("unix:/tmp/node.sock", "unix"),
    ],
)
def test_the_client_of_a_peer_is_its_address_without_the_port(peer, client):
    assert client_address(peer) == client


def test_two_connections_from_one_address_are_one_client():
    assert client_address("ipv4:192.0.2.7:40000") == client_address("ipv4:192.0.2.7:40001")
