"""Peer-to-peer networking between nodes: the Network facade (network) and its parts, transaction gossip (txgossip), the node key (node_key), peer scores (scoring)."""

from chain.p2p.limits import NetworkLimits
from chain.p2p.network import Network, PeerHandler, PeerInfo
from chain.p2p.node_key import NodeKeyError, load_or_create_node_key
from chain.p2p.rates import MessageRates, Rate
from chain.p2p.scoring import PENALTY_INVALID, PENALTY_RATE, PENALTY_THRESHOLD, PENALTY_USELESS
from chain.p2p.txgossip import TxGossip, TxGossipLimits

__all__ = [
    "MessageRates", "Network", "NetworkLimits", "NodeKeyError", "PENALTY_INVALID", "PENALTY_RATE", "PENALTY_THRESHOLD",
    "PENALTY_USELESS", "PeerHandler", "PeerInfo", "Rate", "TxGossip", "TxGossipLimits", "load_or_create_node_key",
]
