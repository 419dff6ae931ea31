"""Reading a GGUF file's header (metadata and tensor table) without loading its weights.

The model store reads headers of files it did not write, so every count and length is checked
against the bytes that are actually there: a truncated or hostile file raises InvalidModelFile,
never an IndexError, a MemoryError or a hang.
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass
from typing import Any, Mapping

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, LlamaFileType

from inference.errors import InvalidModelFile

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
# Arrays longer than this keep only their length: a vocabulary has ~50k-250k strings and the
# store only needs its size.
KEPT_ARRAY_ITEMS = 64
MAX_DIMENSIONS = 8

_SCALAR_FORMATS = {
    0: "<B",  # uint8
    1: "<b",  # int8
    2: "<H",  # uint16
    3: "<h",  # int16
    4: "<I",  # uint32
    5: "<i",  # int32
    6: "<f",  # float32
    7: "<?",  # bool
    10: "<Q",  # uint64
    11: "<q",  # int64
    12: "<d",  # float64
}
_STRING = 8
_ARRAY = 9


@dataclass(frozen=True)
class ArrayValue:
    """A metadata array: its item type, its length, and its first items."""

    item_type: int
    length: int
    head: tuple


@dataclass(frozen=True)
class TensorInfo:
    """One entry of the tensor table: name, shape, ggml type and offset in the data section."""

    name: str
    shape: tuple[int, ...]
    ggml_type: int
    offset: int

    @property
    def elements(self) -> int:
        count = 1
        for dimension in self.shape:
            count *= dimension
        return count


@dataclass(frozen=True)
class GgufHeader:
    """What a GGUF file says about itself, checked against the file's size."""

    version: int
    metadata: Mapping[str, Any]
    tensors: tuple[TensorInfo, ...]
    data_offset: int
    data_size: int

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", "unknown"))

    @property
    def name(self) -> str:
        return str(self.metadata.get("general.name", ""))

    @property
    def parameters(self) -> int:
        return sum(tensor.elements for tensor in self.tensors)

    @property
    def context_length(self) -> int:
        return int(self.metadata.get(f"{self.architecture}.context_length", 0))

    @property
    def vocabulary_size(self) -> int:
        tokens = self.metadata.get("tokenizer.ggml.tokens")
        if isinstance(tokens, ArrayValue):
            return tokens.length
        if isinstance(tokens, tuple):
            return len(tokens)
        return int(self.metadata.get(f"{self.architecture}.vocab_size", 0))

    @property
    def quantisation(self) -> str:
        return quantisation_name(self.metadata.get("general.file_type"), self.tensors)

    @property
    def chat_template(self) -> str | None:
        template = self.metadata.get("tokenizer.chat_template")
        return template if isinstance(template, str) else None


def read_header(path: str | os.PathLike) -> GgufHeader:
    """Read and check a GGUF file's header; raise InvalidModelFile if it is not a whole GGUF file."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InvalidModelFile(f"{path}: no such file")
    if not os.path.isfile(path):
        raise InvalidModelFile(f"{path}: not a regular file")
    size = os.path.getsize(path)
    if size < 24:
        raise InvalidModelFile(f"{path}: not a GGUF file ({size} bytes, too short for a header)")
    try:
        with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
            return parse_header(view, source=path)
    except OSError as error:
        raise InvalidModelFile(f"{path}: cannot read ({error.strerror or error})") from None


def parse_header(buffer, source: str = "<bytes>") -> GgufHeader:
    """Parse a GGUF header from a bytes-like object holding the whole file."""
    view = memoryview(buffer)
    try:
        return _parse(_Reader(view, source))
    finally:
        # Released here so that a memory map can be closed even while an error propagates.
        view.release()


def _parse(reader: "_Reader") -> GgufHeader:
    source = reader.source
    if reader.take(4) != GGUF_MAGIC:
        raise InvalidModelFile(f"{source}: not a GGUF file (bad magic bytes)")
    version = reader.scalar("<I")
    if version not in SUPPORTED_VERSIONS:
        raise InvalidModelFile(f"{source}: unsupported GGUF version {version}")
    tensor_count = reader.scalar("<Q")
    metadata_count = reader.scalar("<Q")
    # Each metadata entry and tensor entry takes at least 12 bytes: reject absurd counts before looping.
    reader.require_items(metadata_count + tensor_count, 12, "entries")
    metadata = {}
    for _ in range(metadata_count):
        key = reader.string()
        metadata[key] = reader.value(reader.scalar("<I"))
    tensors = tuple(_read_tensor_info(reader) for _ in range(tensor_count))
    alignment = _alignment(metadata, source)
    data_offset = _align(reader.position, alignment)
    data_size = _data_size(tensors, source)
    if data_offset + data_size > len(reader.buffer):
        raise InvalidModelFile(
            f"{source}: truncated GGUF file ({len(reader.buffer)} bytes, "
            f"its tensors need {data_offset + data_size})"
        )
    return GgufHeader(version, metadata, tensors, data_offset, data_size)


def quantisation_name(file_type: Any, tensors: tuple[TensorInfo, ...] = ()) -> str:
    """The quantisation a file declares (general.file_type), else its most common tensor type."""
    if isinstance(file_type, int):
        try:
            return LlamaFileType(file_type).name.replace("MOSTLY_", "").replace("ALL_", "")
        except ValueError:
            return f"file type {file_type}"
    counts: dict[int, int] = {}
    for tensor in tensors:
        counts[tensor.ggml_type] = counts.get(tensor.ggml_type, 0) + tensor.elements
    if not counts:
        return "unknown"
    return _ggml_type_name(max(counts, key=counts.get))


def _read_tensor_info(reader: "_Reader") -> TensorInfo:
    name = reader.string()
    dimensions = reader.scalar("<I")
    if dimensions > MAX_DIMENSIONS:
        raise InvalidModelFile(f"{reader.source}: tensor {name!r} has {dimensions} dimensions")
    shape = tuple(reader.scalar("<Q") for _ in range(dimensions))
    ggml_type = reader.scalar("<I")
    offset = reader.scalar("<Q")
    return TensorInfo(name, shape, ggml_type, offset)


def _alignment(metadata: Mapping[str, Any], source: str) -> int:
    alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise InvalidModelFile(f"{source}: general.alignment {alignment!r} is not a power of two")
    return alignment


def _align(position: int, alignment: int) -> int:
    return (position + alignment - 1) // alignment * alignment


def _data_size(tensors: tuple[TensorInfo, ...], source: str) -> int:
    end = 0
    for tensor in tensors:
        end = max(end, tensor.offset + _tensor_bytes(tensor, source))
    return end


def _tensor_bytes(tensor: TensorInfo, source: str) -> int:
    try:
        block_size, block_bytes = GGML_QUANT_SIZES[GGMLQuantizationType(tensor.ggml_type)]
    except (ValueError, KeyError):
        raise InvalidModelFile(
            f"{source}: tensor {tensor.name!r} has unknown ggml type {tensor.ggml_type}"
        ) from None
    if tensor.elements % block_size:
        raise InvalidModelFile(
            f"{source}: tensor {tensor.name!r} has {tensor.elements} elements, "
            f"not a multiple of its block size {block_size}"
        )
    return tensor.elements // block_size * block_bytes


def _ggml_type_name(ggml_type: int) -> str:
    try:
        return GGMLQuantizationType(ggml_type).name
    except ValueError:
        return f"ggml type {ggml_type}"


class _Reader:
    """A cursor over the file's bytes that refuses to read past the end."""

    def __init__(self, buffer: memoryview, source: str):
        self.buffer = buffer
        self.source = source
        self.position = 0

    def take(self, length: int) -> bytes:
        end = self.position + length
        if end > len(self.buffer):
            raise InvalidModelFile(
                f"{self.source}: truncated GGUF header (needs byte {end}, file has {len(self.buffer)})"
            )
        chunk = bytes(self.buffer[self.position:end])
        self.position = end
        return chunk

    def skip(self, length: int) -> None:
        if self.position + length > len(self.buffer):
            self.take(length)  # raises the truncation error
        self.position += length

    def scalar(self, fmt: str):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        length = self.scalar("<Q")
        self.require_items(length, 1, "string bytes")
        return self.take(length).decode("utf-8", errors="replace")

    def require_items(self, count: int, item_bytes: int, what: str) -> None:
        remaining = len(self.buffer) - self.position
        if count * item_bytes > remaining:
            raise InvalidModelFile(
                f"{self.source}: truncated or corrupt GGUF header ({count} {what} "
                f"cannot fit in the {remaining} bytes left)"
            )

    def value(self, value_type: int):
        if value_type in _SCALAR_FORMATS:
            return self.scalar(_SCALAR_FORMATS[value_type])
        if value_type == _STRING:
            return self.string()
        if value_type == _ARRAY:
            return self.array()
        raise InvalidModelFile(f"{self.source}: unknown GGUF metadata type {value_type}")

    def array(self):
        item_type = self.scalar("<I")
        length = self.scalar("<Q")
        if item_type == _ARRAY:
            raise InvalidModelFile(f"{self.source}: nested GGUF arrays are not supported")
        self.require_items(length, _smallest_item_bytes(item_type, self.source), "array items")
        if item_type in _SCALAR_FORMATS:
            return self._scalar_array(item_type, length)
        head = []
        for index in range(length):
            item = self.string()
            if index < KEPT_ARRAY_ITEMS:
                head.append(item)
        return _array_result(item_type, length, head)

    def _scalar_array(self, item_type: int, length: int):
        fmt = _SCALAR_FORMATS[item_type]
        item_bytes = struct.calcsize(fmt)
        kept = min(length, KEPT_ARRAY_ITEMS)
        head = list(struct.unpack(f"<{kept}{fmt[1]}", self.take(kept * item_bytes)))
        self.skip((length - kept) * item_bytes)
        return _array_result(item_type, length, head)


def _smallest_item_bytes(item_type: int, source: str) -> int:
    if item_type in _SCALAR_FORMATS:
        return struct.calcsize(_SCALAR_FORMATS[item_type])
    if item_type == _STRING:
        return 8
    raise InvalidModelFile(f"{source}: unknown GGUF array item type {item_type}")


def _array_result(item_type: int, length: int, head: list):
    if length <= KEPT_ARRAY_ITEMS:
        return tuple(head)
    return ArrayValue(item_type, length, tuple(head))
