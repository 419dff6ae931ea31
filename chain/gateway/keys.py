"""The gateway's API-key file: which API key signs with which poster key.

A JSON file, mode 0600, written only by this module:

    {"api_keys": {"ick-...": "/path/to/poster.json", "ick-...": "bob"}}

Each value is a key file from `inferchain keys generate` (its absolute path) or a dev account name.
The API keys are secrets: they are never logged, and a request's key is compared in constant time.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from chain.crypto import Keypair
from chain.durable import write_durably
from chain.keys import KeyResolutionError, is_dev_name, load_signer

API_KEY_PREFIX = "ick-"
# The file is tiny; anything larger is not ours.
MAX_FILE_BYTES = 1024 * 1024


class ApiKeyFileError(ValueError):
    """The API-key file cannot be read or written; the message says why (and never quotes a key)."""


@dataclass(frozen=True)
class Poster:
    """A poster key the gateway signs with, and where it came from (a key file path or a dev name)."""

    keypair: Keypair
    source: str


class ApiKeys:
    """API keys mapped to poster keys; `poster(key)` is the one lookup."""

    def __init__(self, mapping: dict[str, Poster]):
        self._mapping = dict(mapping)

    def poster(self, api_key: str) -> Poster | None:
        """The poster an API key maps to; None for an unknown key (compared in constant time)."""
        found = None
        for known, poster in self._mapping.items():
            if hmac.compare_digest(known.encode(), api_key.encode()):
                found = poster
        return found

    def keys(self) -> list[str]:
        return list(self._mapping)


def new_api_key() -> str:
    """A fresh API key: the prefix and 32 random bytes, URL-safe."""
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def poster_source(name_or_file: str) -> str:
    """How the file records a poster: a dev name as it is, a key file as its absolute path."""
    return name_or_file.strip().lower() if is_dev_name(name_or_file) else str(Path(name_or_file).expanduser().resolve())


def open_api_keys(path: str | os.PathLike, key_sources: list[str]) -> tuple[ApiKeys, str]:
    """Read the API-key file (creating it, mode 0600, when absent), adding a new API key for each poster key
    in `key_sources` that has none; the keys, and an API key to print (the first for key_sources[0])."""
    path = Path(path).expanduser()
    entries = read_entries(path) if path.exists() else {}
    added = False
    for source in key_sources:
        recorded = poster_source(source)
        if recorded not in entries.values():
            entries[new_api_key()] = recorded
            added = True
    if not entries:
        raise ApiKeyFileError(f"{path} maps no API key to a poster key: give --key FILE")
    mapping = {key: Poster(_load(source), source) for key, source in entries.items()}  # all readable first
    if added:
        write_entries(path, entries)
    wanted = poster_source(key_sources[0]) if key_sources else None
    shown = next((key for key, source in entries.items() if source == wanted), next(iter(entries)))
    return ApiKeys(mapping), shown


def read_entries(path: Path) -> dict[str, str]:
    """The file's {API key: poster source}; ApiKeyFileError when it is not such a file."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ApiKeyFileError(f"{path} is larger than {MAX_FILE_BYTES} bytes: not an API-key file")
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ApiKeyFileError(f"cannot read {path}: {error.strerror or error}") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ApiKeyFileError(f"{path} is not an API-key file (not JSON)") from None
    entries = document.get("api_keys") if isinstance(document, dict) else None
    if not isinstance(entries, dict) or not all(
        isinstance(key, str) and key and isinstance(source, str) and source for key, source in entries.items()
    ):
        raise ApiKeyFileError(f"{path} is not an API-key file (no \"api_keys\" object of strings)")
    return dict(entries)


def write_entries(path: Path, entries: dict[str, str]) -> None:
    """Write the file whole, mode 0600 from the start, replacing the old one at once (rename)."""
    if not path.parent.is_dir():
        raise ApiKeyFileError(f"cannot write {path}: directory {path.parent} does not exist")
    content = (json.dumps({"api_keys": entries}, indent=2) + "\n").encode()
    try:
        write_durably(path, content)  # a temporary file made 0600, fsynced, renamed over the old one
    except OSError as error:
        raise ApiKeyFileError(f"cannot write {path}: {error.strerror or error}") from None


def _load(source: str) -> Keypair:
    try:
        return load_signer(source)
    except KeyResolutionError as error:
        raise ApiKeyFileError(f"a poster key of the API-key file: {error}") from None
