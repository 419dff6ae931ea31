from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class VoteType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VOTE_TYPE_UNSPECIFIED: _ClassVar[VoteType]
    VOTE_TYPE_PREVOTE: _ClassVar[VoteType]
    VOTE_TYPE_PRECOMMIT: _ClassVar[VoteType]
VOTE_TYPE_UNSPECIFIED: VoteType
VOTE_TYPE_PREVOTE: VoteType
VOTE_TYPE_PRECOMMIT: VoteType

class Transaction(_message.Message):
    __slots__ = ("body", "signature")
    BODY_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    body: bytes
    signature: bytes
    def __init__(self, body: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class TransactionBody(_message.Message):
    __slots__ = ("chain_id", "genesis_hash", "sender", "nonce", "fee", "transfer")
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    GENESIS_HASH_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    FEE_FIELD_NUMBER: _ClassVar[int]
    TRANSFER_FIELD_NUMBER: _ClassVar[int]
    chain_id: str
    genesis_hash: bytes
    sender: bytes
    nonce: int
    fee: int
    transfer: Transfer
    def __init__(self, chain_id: _Optional[str] = ..., genesis_hash: _Optional[bytes] = ..., sender: _Optional[bytes] = ..., nonce: _Optional[int] = ..., fee: _Optional[int] = ..., transfer: _Optional[_Union[Transfer, _Mapping]] = ...) -> None: ...

class Transfer(_message.Message):
    __slots__ = ("dest", "amount")
    DEST_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    dest: bytes
    amount: int
    def __init__(self, dest: _Optional[bytes] = ..., amount: _Optional[int] = ...) -> None: ...

class Header(_message.Message):
    __slots__ = ("chain_id", "height", "time_ms", "parent_hash", "state_root", "transactions_root", "receipts_root", "proposer", "validators_hash", "last_commit_hash")
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    TIME_MS_FIELD_NUMBER: _ClassVar[int]
    PARENT_HASH_FIELD_NUMBER: _ClassVar[int]
    STATE_ROOT_FIELD_NUMBER: _ClassVar[int]
    TRANSACTIONS_ROOT_FIELD_NUMBER: _ClassVar[int]
    RECEIPTS_ROOT_FIELD_NUMBER: _ClassVar[int]
    PROPOSER_FIELD_NUMBER: _ClassVar[int]
    VALIDATORS_HASH_FIELD_NUMBER: _ClassVar[int]
    LAST_COMMIT_HASH_FIELD_NUMBER: _ClassVar[int]
    chain_id: str
    height: int
    time_ms: int
    parent_hash: bytes
    state_root: bytes
    transactions_root: bytes
    receipts_root: bytes
    proposer: bytes
    validators_hash: bytes
    last_commit_hash: bytes
    def __init__(self, chain_id: _Optional[str] = ..., height: _Optional[int] = ..., time_ms: _Optional[int] = ..., parent_hash: _Optional[bytes] = ..., state_root: _Optional[bytes] = ..., transactions_root: _Optional[bytes] = ..., receipts_root: _Optional[bytes] = ..., proposer: _Optional[bytes] = ..., validators_hash: _Optional[bytes] = ..., last_commit_hash: _Optional[bytes] = ...) -> None: ...

class Block(_message.Message):
    __slots__ = ("header", "transactions", "last_commit")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    TRANSACTIONS_FIELD_NUMBER: _ClassVar[int]
    LAST_COMMIT_FIELD_NUMBER: _ClassVar[int]
    header: bytes
    transactions: _containers.RepeatedScalarFieldContainer[bytes]
    last_commit: Commit
    def __init__(self, header: _Optional[bytes] = ..., transactions: _Optional[_Iterable[bytes]] = ..., last_commit: _Optional[_Union[Commit, _Mapping]] = ...) -> None: ...

class VoteBody(_message.Message):
    __slots__ = ("chain_id", "type", "height", "round", "block_hash", "time_ms", "validator")
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    BLOCK_HASH_FIELD_NUMBER: _ClassVar[int]
    TIME_MS_FIELD_NUMBER: _ClassVar[int]
    VALIDATOR_FIELD_NUMBER: _ClassVar[int]
    chain_id: str
    type: VoteType
    height: int
    round: int
    block_hash: bytes
    time_ms: int
    validator: bytes
    def __init__(self, chain_id: _Optional[str] = ..., type: _Optional[_Union[VoteType, str]] = ..., height: _Optional[int] = ..., round: _Optional[int] = ..., block_hash: _Optional[bytes] = ..., time_ms: _Optional[int] = ..., validator: _Optional[bytes] = ...) -> None: ...

class Vote(_message.Message):
    __slots__ = ("body", "signature")
    BODY_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    body: bytes
    signature: bytes
    def __init__(self, body: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class Commit(_message.Message):
    __slots__ = ("height", "round", "block_hash", "precommits")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    BLOCK_HASH_FIELD_NUMBER: _ClassVar[int]
    PRECOMMITS_FIELD_NUMBER: _ClassVar[int]
    height: int
    round: int
    block_hash: bytes
    precommits: _containers.RepeatedCompositeFieldContainer[Vote]
    def __init__(self, height: _Optional[int] = ..., round: _Optional[int] = ..., block_hash: _Optional[bytes] = ..., precommits: _Optional[_Iterable[_Union[Vote, _Mapping]]] = ...) -> None: ...

class Validator(_message.Message):
    __slots__ = ("public_key", "voting_power")
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    VOTING_POWER_FIELD_NUMBER: _ClassVar[int]
    public_key: bytes
    voting_power: int
    def __init__(self, public_key: _Optional[bytes] = ..., voting_power: _Optional[int] = ...) -> None: ...

class ValidatorSet(_message.Message):
    __slots__ = ("validators",)
    VALIDATORS_FIELD_NUMBER: _ClassVar[int]
    validators: _containers.RepeatedCompositeFieldContainer[Validator]
    def __init__(self, validators: _Optional[_Iterable[_Union[Validator, _Mapping]]] = ...) -> None: ...

class EventAttribute(_message.Message):
    __slots__ = ("key", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: str
    def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("module", "name", "attributes")
    MODULE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    module: str
    name: str
    attributes: _containers.RepeatedCompositeFieldContainer[EventAttribute]
    def __init__(self, module: _Optional[str] = ..., name: _Optional[str] = ..., attributes: _Optional[_Iterable[_Union[EventAttribute, _Mapping]]] = ...) -> None: ...

class Receipt(_message.Message):
    __slots__ = ("transaction_hash", "success", "error_module", "error_name", "error_message", "fee_paid", "events")
    TRANSACTION_HASH_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    ERROR_MODULE_FIELD_NUMBER: _ClassVar[int]
    ERROR_NAME_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FEE_PAID_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    transaction_hash: bytes
    success: bool
    error_module: str
    error_name: str
    error_message: str
    fee_paid: int
    events: _containers.RepeatedCompositeFieldContainer[Event]
    def __init__(self, transaction_hash: _Optional[bytes] = ..., success: _Optional[bool] = ..., error_module: _Optional[str] = ..., error_name: _Optional[str] = ..., error_message: _Optional[str] = ..., fee_paid: _Optional[int] = ..., events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ...) -> None: ...

class BlockReceipts(_message.Message):
    __slots__ = ("transactions", "block_events")
    TRANSACTIONS_FIELD_NUMBER: _ClassVar[int]
    BLOCK_EVENTS_FIELD_NUMBER: _ClassVar[int]
    transactions: _containers.RepeatedCompositeFieldContainer[Receipt]
    block_events: _containers.RepeatedCompositeFieldContainer[Event]
    def __init__(self, transactions: _Optional[_Iterable[_Union[Receipt, _Mapping]]] = ..., block_events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ...) -> None: ...

class FinalizedBlock(_message.Message):
    __slots__ = ("block", "commit")
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    block: Block
    commit: Commit
    def __init__(self, block: _Optional[_Union[Block, _Mapping]] = ..., commit: _Optional[_Union[Commit, _Mapping]] = ...) -> None: ...
