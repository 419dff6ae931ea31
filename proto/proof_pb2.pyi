from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class StateProof(_message.Message):
    __slots__ = ("depth", "sibling_bitmap", "siblings", "other_key_hash", "other_value_hash")
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    SIBLING_BITMAP_FIELD_NUMBER: _ClassVar[int]
    SIBLINGS_FIELD_NUMBER: _ClassVar[int]
    OTHER_KEY_HASH_FIELD_NUMBER: _ClassVar[int]
    OTHER_VALUE_HASH_FIELD_NUMBER: _ClassVar[int]
    depth: int
    sibling_bitmap: bytes
    siblings: _containers.RepeatedScalarFieldContainer[bytes]
    other_key_hash: bytes
    other_value_hash: bytes
    def __init__(self, depth: _Optional[int] = ..., sibling_bitmap: _Optional[bytes] = ..., siblings: _Optional[_Iterable[bytes]] = ..., other_key_hash: _Optional[bytes] = ..., other_value_hash: _Optional[bytes] = ...) -> None: ...

class MerkleProof(_message.Message):
    __slots__ = ("leaf_index", "leaf_count", "siblings")
    LEAF_INDEX_FIELD_NUMBER: _ClassVar[int]
    LEAF_COUNT_FIELD_NUMBER: _ClassVar[int]
    SIBLINGS_FIELD_NUMBER: _ClassVar[int]
    leaf_index: int
    leaf_count: int
    siblings: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, leaf_index: _Optional[int] = ..., leaf_count: _Optional[int] = ..., siblings: _Optional[_Iterable[bytes]] = ...) -> None: ...
