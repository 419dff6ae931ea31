"""The node key: the Ed25519 key whose public key is this node's id on the p2p network.

It is not an account or validator key; it only names the node, so that peers keep one
connection per pair of nodes. The file holds the 32-byte seed as 64 lowercase hex digits and a
newline, mode 0600. A file that is anything else is refused, never replaced: a node that changed
its id silently would look like a new peer to every other node.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from chain.crypto import Keypair

# The seed's 64 hex digits and a newline; anything much larger is not a node key.
MAX_FILE_BYTES = 1024
_SEED_HEX = re.compile(r"[0-9a-f]{64}\n?")


class NodeKeyError(ValueError):
    """A node key file that cannot be read, written or parsed; the message says which file and why."""


def load_or_create_node_key(path: Path) -> Keypair:
    """The node key stored at `path`, created (mode 0600) when the file does not exist."""
    path = Path(path)
    if not path.exists():
        _create(path)
    return _load(path)


def _load(path: Path) -> Keypair:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise NodeKeyError(f"node key file {path} is {size} bytes; a node key is 64 hex digits")
        raw = path.read_bytes()
    except OSError as error:
        raise NodeKeyError(f"cannot read node key file {path}: {error.strerror or error}") from None
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise NodeKeyError(f"node key file {path} is malformed: it is not ASCII text") from None
    if not _SEED_HEX.fullmatch(text):
        raise NodeKeyError(
            f"node key file {path} is malformed: expected 64 lowercase hex digits (an Ed25519 seed) and a "
            f"newline; move it away to have a new key created"
        )
    return Keypair.from_seed(bytes.fromhex(text.strip()))


def _create(path: Path) -> None:
    """Write a new random key; a file another process created meanwhile is kept (and loaded by the caller)."""
    if not path.parent.is_dir():
        raise NodeKeyError(f"cannot create node key file {path}: directory {path.parent} does not exist")
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    content = Keypair.generate().seed.hex().encode() + b"\n"
    try:
        # 0600 from the start, written in full before it appears under its name (a crash leaves
        # no half-written key), and never over an existing file (link fails when the name exists).
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
    except OSError as error:
        raise NodeKeyError(f"cannot create node key file {path}: {error.strerror or error}") from None
    finally:
        temporary.unlink(missing_ok=True)
