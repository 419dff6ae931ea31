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

class SystemParams(_message.Message):
    __slots__ = ("base_fee", "fee_per_byte", "max_transaction_bytes")
    BASE_FEE_FIELD_NUMBER: _ClassVar[int]
    FEE_PER_BYTE_FIELD_NUMBER: _ClassVar[int]
    MAX_TRANSACTION_BYTES_FIELD_NUMBER: _ClassVar[int]
    base_fee: int
    fee_per_byte: int
    max_transaction_bytes: int
    def __init__(self, base_fee: _Optional[int] = ..., fee_per_byte: _Optional[int] = ..., max_transaction_bytes: _Optional[int] = ...) -> None: ...

class BalancesParams(_message.Message):
    __slots__ = ("existential_deposit", "token_symbol", "token_decimals")
    EXISTENTIAL_DEPOSIT_FIELD_NUMBER: _ClassVar[int]
    TOKEN_SYMBOL_FIELD_NUMBER: _ClassVar[int]
    TOKEN_DECIMALS_FIELD_NUMBER: _ClassVar[int]
    existential_deposit: int
    token_symbol: str
    token_decimals: int
    def __init__(self, existential_deposit: _Optional[int] = ..., token_symbol: _Optional[str] = ..., token_decimals: _Optional[int] = ...) -> None: ...
