"""Peer-to-peer networking between nodes: connections and handshakes (network), transaction gossip (txgossip), the node key (node_key)."""

from chain.p2p.network import Network, NetworkLimits, PeerHandler, PeerInfo

__all__ = ["Network", "NetworkLimits", "PeerHandler", "PeerInfo"]
