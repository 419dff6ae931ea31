"""Turning what a person types into keys: dev names, key files, SS58 addresses, hex public keys.

A signer (who can sign) is a development account name (alice, bob, ... any case) or a key file
written by `inferchain keys generate`. An account (whose public key is all that is needed) is
any of those, or an SS58 address, or a 64-character hex public key (optionally 0x-prefixed).
Development names win over files of the same name, as they do everywhere on the command line.

A key file is JSON with the seed in hex, the public key and the address; it is created with mode
0600 and never overwritten. A name without a suffix means the file NAME.json.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from chain.crypto import DEV_ACCOUNT_NAMES, Keypair, dev_keypair
from chain.ss58 import AddressError, decode_address, encode_address
from chain.text import quote_input

KEY_FILE_TYPE = "ed25519"
KEY_FILE_SUFFIX = ".json"


class KeyResolutionError(ValueError):
    """A name, file or address that does not give the key asked for; the message says why."""


@dataclass(frozen=True)
class ResolvedAccount:
    """An account named on the command line, and the signing key when the name carries one."""

    public_key: bytes
    source: str  # "dev account", "key file", "address" or "public key"
    keypair: Keypair | None = None
    path: Path | None = None

    @property
    def address(self) -> str:
        return encode_address(self.public_key)

    @property
    def can_sign(self) -> bool:
        return self.keypair is not None


def is_dev_name(text: str) -> bool:
    """True when `text` names a development account (case-insensitive)."""
    return text.strip().lower() in DEV_ACCOUNT_NAMES


def key_file_path(name_or_file: str | Path) -> Path:
    """The file a name refers to: the path itself, or NAME.json when it has no suffix."""
    path = Path(name_or_file).expanduser()
    return path if path.suffix else path.with_name(path.name + KEY_FILE_SUFFIX)


def generate_key_file(name_or_file: str | Path) -> tuple[Path, Keypair]:
    """Create a new random key and write it to a new file (mode 0600); never overwrites."""
    text = str(name_or_file)
    if not text.strip():
        raise KeyResolutionError("give a name or a file path for the new key")
    if is_dev_name(text):
        raise KeyResolutionError(f"{quote_input(text)} is a development account name; choose another name for a new key")
    path = key_file_path(text)
    if path.exists():
        raise KeyResolutionError(f"{path} already exists; refusing to overwrite a key file")
    if not path.parent.is_dir():
        raise KeyResolutionError(f"cannot write {path}: directory {path.parent} does not exist")
    keypair = Keypair.generate()
    _write_new_file(path, _key_file_document(keypair))
    return path, keypair


def _key_file_document(keypair: Keypair) -> bytes:
    document = {
        "type": KEY_FILE_TYPE,
        "seed": keypair.seed.hex(),
        "public_key": keypair.public_key.hex(),
        "address": keypair.address,
    }
    return (json.dumps(document, indent=2) + "\n").encode()


def _write_new_file(path: Path, content: bytes) -> None:
    # O_EXCL: two concurrent `keys generate` to one path cannot both succeed; 0600 from the start,
    # so the seed is never readable by others, not even for an instant.
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyResolutionError(f"{path} already exists; refusing to overwrite a key file") from None
    except OSError as error:
        raise KeyResolutionError(f"cannot write {path}: {error.strerror or error}") from None
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)


def load_key_file(path: str | Path) -> Keypair:
    """The key pair stored in a key file; KeyResolutionError when it is unreadable or inconsistent."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise KeyResolutionError(f"cannot read key file {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise KeyResolutionError(f"{path} is not a key file (not text)") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        raise KeyResolutionError(f"{path} is not a key file (not JSON)") from None
    if not isinstance(document, dict) or not isinstance(document.get("seed"), str):
        raise KeyResolutionError(f"{path} is not a key file (no \"seed\" field)")
    if document.get("type", KEY_FILE_TYPE) != KEY_FILE_TYPE:
        raise KeyResolutionError(f"{path} holds a {document.get('type')!r} key; only {KEY_FILE_TYPE} is supported")
    seed = _hex_bytes(document["seed"], 32, f"{path}: seed")
    keypair = Keypair.from_seed(seed)
    stated = document.get("public_key")
    if stated is not None and stated != keypair.public_key.hex():
        raise KeyResolutionError(f"{path}: public_key does not match the seed (the file was edited or damaged)")
    return keypair


def resolve_signer(name_or_file: str) -> Keypair:
    """The signing key named by a dev name or a key file; an address or public key cannot sign."""
    resolved = resolve_account(name_or_file)
    if resolved.keypair is None:
        raise KeyResolutionError(
            f"{quote_input(name_or_file)} is {'an' if resolved.source == 'address' else 'a'} {resolved.source}, "
            "which cannot sign; give a dev account name or a key file from `inferchain keys generate`"
        )
    return resolved.keypair


def load_signer(name_or_file: str) -> Keypair:
    """The signing key for a node's --key or a CLI --from: a dev name or a key file."""
    return resolve_signer(name_or_file)


def resolve_account(text: str) -> ResolvedAccount:
    """A dev name, key file, SS58 address or 64-character hex public key, as an account."""
    if not isinstance(text, str) or not text.strip():
        raise KeyResolutionError("an account is required: a dev name, key file, SS58 address or hex public key")
    text = text.strip()
    if is_dev_name(text):
        keypair = dev_keypair(text)
        return ResolvedAccount(keypair.public_key, "dev account", keypair)
    path = _existing_key_file(text)
    if path is not None:
        keypair = load_key_file(path)
        return ResolvedAccount(keypair.public_key, "key file", keypair, path)
    if _looks_like_path(text):
        raise KeyResolutionError(_not_a_key_file(text))
    public_key = _public_key_hex(text)
    if public_key is not None:
        return ResolvedAccount(public_key, "public key")
    try:
        return ResolvedAccount(decode_address(text), "address")
    except AddressError as error:
        raise KeyResolutionError(
            f"{quote_input(text)} is not a dev account ({', '.join(DEV_ACCOUNT_NAMES)}), a key file, "
            f"a 64-character hex public key, or a valid SS58 address ({error})"
        ) from None


def account_id(account: str | bytes | Keypair | ResolvedAccount) -> bytes:
    """The 32-byte public key of anything that names an account."""
    if isinstance(account, Keypair):
        return account.public_key
    if isinstance(account, ResolvedAccount):
        return account.public_key
    if isinstance(account, (bytes, bytearray)):
        if len(account) != 32:
            raise KeyResolutionError(f"an account id is a 32-byte public key, got {len(account)} bytes")
        return bytes(account)
    return resolve_account(account).public_key


def _existing_key_file(text: str) -> Path | None:
    try:
        return next((path for path in (Path(text).expanduser(), key_file_path(text)) if path.is_file()), None)
    except (OSError, ValueError, RuntimeError):  # a name the OS or pathlib refuses (too long, NUL, "/") is no file
        return None


def _looks_like_path(text: str) -> bool:
    # SS58 addresses and hex keys never hold a path separator or a dot: such a name means a file.
    return "/" in text or os.sep in text or text.startswith("~") or text.lower().endswith(KEY_FILE_SUFFIX)


def _not_a_key_file(text: str) -> str:
    try:
        exists = Path(text).expanduser().exists()
    except (OSError, ValueError, RuntimeError):
        exists = False
    if exists:
        return f"{quote_input(text)} is not a key file (it is not a regular file)"
    return f"key file {quote_input(text)} does not exist"


def _public_key_hex(text: str) -> bytes | None:
    digits = text[2:] if text.lower().startswith("0x") else text
    if len(digits) != 64:
        return None
    try:
        return bytes.fromhex(digits)
    except ValueError:
        return None


def _hex_bytes(text: str, size: int, where: str) -> bytes:
    try:
        raw = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raise KeyResolutionError(f"{where} must be hex") from None
    if len(raw) != size:
        raise KeyResolutionError(f"{where} must be {size} bytes ({2 * size} hex digits), got {len(raw)}")
    return raw
