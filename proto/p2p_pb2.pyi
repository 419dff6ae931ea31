from proto import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Hello(_message.Message):
    __slots__ = ("protocol_version", "chain_id", "genesis_hash", "node_id", "public_addr", "height", "nonce", "signature", "validator_key", "validator_signature", "time_ms")
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    GENESIS_HASH_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_ADDR_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    VALIDATOR_KEY_FIELD_NUMBER: _ClassVar[int]
    VALIDATOR_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    TIME_MS_FIELD_NUMBER: _ClassVar[int]
    protocol_version: int
    chain_id: str
    genesis_hash: bytes
    node_id: bytes
    public_addr: str
    height: int
    nonce: bytes
    signature: bytes
    validator_key: bytes
    validator_signature: bytes
    time_ms: int
    def __init__(self, protocol_version: _Optional[int] = ..., chain_id: _Optional[str] = ..., genesis_hash: _Optional[bytes] = ..., node_id: _Optional[bytes] = ..., public_addr: _Optional[str] = ..., height: _Optional[int] = ..., nonce: _Optional[bytes] = ..., signature: _Optional[bytes] = ..., validator_key: _Optional[bytes] = ..., validator_signature: _Optional[bytes] = ..., time_ms: _Optional[int] = ...) -> None: ...

class HelloAck(_message.Message):
    __slots__ = ("signature", "validator_signature")
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    VALIDATOR_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    signature: bytes
    validator_signature: bytes
    def __init__(self, signature: _Optional[bytes] = ..., validator_signature: _Optional[bytes] = ...) -> None: ...

class Status(_message.Message):
    __slots__ = ("height", "block_hash", "round")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    BLOCK_HASH_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    height: int
    block_hash: bytes
    round: int
    def __init__(self, height: _Optional[int] = ..., block_hash: _Optional[bytes] = ..., round: _Optional[int] = ...) -> None: ...

class TxAnnounce(_message.Message):
    __slots__ = ("hashes",)
    HASHES_FIELD_NUMBER: _ClassVar[int]
    hashes: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, hashes: _Optional[_Iterable[bytes]] = ...) -> None: ...

class TxRequest(_message.Message):
    __slots__ = ("hashes",)
    HASHES_FIELD_NUMBER: _ClassVar[int]
    hashes: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, hashes: _Optional[_Iterable[bytes]] = ...) -> None: ...

class TxBatch(_message.Message):
    __slots__ = ("transactions",)
    TRANSACTIONS_FIELD_NUMBER: _ClassVar[int]
    transactions: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, transactions: _Optional[_Iterable[bytes]] = ...) -> None: ...

class BlockPart(_message.Message):
    __slots__ = ("height", "round", "block_hash", "index", "data")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    BLOCK_HASH_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    height: int
    round: int
    block_hash: bytes
    index: int
    data: bytes
    def __init__(self, height: _Optional[int] = ..., round: _Optional[int] = ..., block_hash: _Optional[bytes] = ..., index: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class BlocksRequest(_message.Message):
    __slots__ = ("from_height", "count")
    FROM_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    from_height: int
    count: int
    def __init__(self, from_height: _Optional[int] = ..., count: _Optional[int] = ...) -> None: ...

class BlocksResponse(_message.Message):
    __slots__ = ("blocks",)
    BLOCKS_FIELD_NUMBER: _ClassVar[int]
    blocks: _containers.RepeatedCompositeFieldContainer[_types_pb2.FinalizedBlock]
    def __init__(self, blocks: _Optional[_Iterable[_Union[_types_pb2.FinalizedBlock, _Mapping]]] = ...) -> None: ...

class PeersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Peers(_message.Message):
    __slots__ = ("addrs",)
    ADDRS_FIELD_NUMBER: _ClassVar[int]
    addrs: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, addrs: _Optional[_Iterable[str]] = ...) -> None: ...

class Envelope(_message.Message):
    __slots__ = ("hello", "status", "tx_announce", "tx_request", "tx_batch", "proposal", "block_part", "vote", "evidence", "blocks_request", "blocks_response", "peers_request", "peers", "hello_ack")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TX_ANNOUNCE_FIELD_NUMBER: _ClassVar[int]
    TX_REQUEST_FIELD_NUMBER: _ClassVar[int]
    TX_BATCH_FIELD_NUMBER: _ClassVar[int]
    PROPOSAL_FIELD_NUMBER: _ClassVar[int]
    BLOCK_PART_FIELD_NUMBER: _ClassVar[int]
    VOTE_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    BLOCKS_REQUEST_FIELD_NUMBER: _ClassVar[int]
    BLOCKS_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    PEERS_REQUEST_FIELD_NUMBER: _ClassVar[int]
    PEERS_FIELD_NUMBER: _ClassVar[int]
    HELLO_ACK_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    status: Status
    tx_announce: TxAnnounce
    tx_request: TxRequest
    tx_batch: TxBatch
    proposal: _types_pb2.SignedProposal
    block_part: BlockPart
    vote: _types_pb2.Vote
    evidence: _types_pb2.DuplicateVoteEvidence
    blocks_request: BlocksRequest
    blocks_response: BlocksResponse
    peers_request: PeersRequest
    peers: Peers
    hello_ack: HelloAck
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., status: _Optional[_Union[Status, _Mapping]] = ..., tx_announce: _Optional[_Union[TxAnnounce, _Mapping]] = ..., tx_request: _Optional[_Union[TxRequest, _Mapping]] = ..., tx_batch: _Optional[_Union[TxBatch, _Mapping]] = ..., proposal: _Optional[_Union[_types_pb2.SignedProposal, _Mapping]] = ..., block_part: _Optional[_Union[BlockPart, _Mapping]] = ..., vote: _Optional[_Union[_types_pb2.Vote, _Mapping]] = ..., evidence: _Optional[_Union[_types_pb2.DuplicateVoteEvidence, _Mapping]] = ..., blocks_request: _Optional[_Union[BlocksRequest, _Mapping]] = ..., blocks_response: _Optional[_Union[BlocksResponse, _Mapping]] = ..., peers_request: _Optional[_Union[PeersRequest, _Mapping]] = ..., peers: _Optional[_Union[Peers, _Mapping]] = ..., hello_ack: _Optional[_Union[HelloAck, _Mapping]] = ...) -> None: ...
