"""The authenticated state: a compressed sparse Merkle tree stored in LevelDB, and its proofs.

chain.state.tree holds the tree (the node passes it a plyvel database); chain.state.proof verifies
proofs with hashlib and the generated message alone, so the Python client imports only that.
"""

from chain.state.proof import EMPTY_ROOT, compute_root, verify_proof

__all__ = ["EMPTY_ROOT", "compute_root", "verify_proof"]
