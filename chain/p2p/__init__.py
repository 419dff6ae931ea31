"""Peer-to-peer networking between nodes: connections and handshakes (network), transaction gossip (txgossip), the node key (node_key)."""

from chain.p2p.network import Network, NetworkLimits, PeerHandler, PeerInfo
from chain.p2p.node_key import NodeKeyError, load_or_create_node_key
from chain.p2p.txgossip import TxGossip, TxGossipLimits

__all__ = [
    "Network", "NetworkLimits", "NodeKeyError", "PeerHandler", "PeerInfo", "TxGossip", "TxGossipLimits",
    "load_or_create_node_key",
]
