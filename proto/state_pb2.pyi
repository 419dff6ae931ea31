from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class AccountInfo(_message.Message):
    __slots__ = ("nonce", "free", "reserved")
    NONCE_FIELD_NUMBER: _ClassVar[int]
    FREE_FIELD_NUMBER: _ClassVar[int]
    RESERVED_FIELD_NUMBER: _ClassVar[int]
    nonce: int
    free: int
    reserved: int
    def __init__(self, nonce: _Optional[int] = ..., free: _Optional[int] = ..., reserved: _Optional[int] = ...) -> None: ...

class SupplyInfo(_message.Message):
    __slots__ = ("total_issuance", "burned", "minted")
    TOTAL_ISSUANCE_FIELD_NUMBER: _ClassVar[int]
    BURNED_FIELD_NUMBER: _ClassVar[int]
    MINTED_FIELD_NUMBER: _ClassVar[int]
    total_issuance: int
    burned: int
    minted: int
    def __init__(self, total_issuance: _Optional[int] = ..., burned: _Optional[int] = ..., minted: _Optional[int] = ...) -> None: ...

class ChainState(_message.Message):
    __slots__ = ("chain_id", "genesis_hash", "height", "time_ms")
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    GENESIS_HASH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    TIME_MS_FIELD_NUMBER: _ClassVar[int]
    chain_id: str
    genesis_hash: bytes
    height: int
    time_ms: int
    def __init__(self, chain_id: _Optional[str] = ..., genesis_hash: _Optional[bytes] = ..., height: _Optional[int] = ..., time_ms: _Optional[int] = ...) -> None: ...
