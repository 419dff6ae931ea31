from proto import types_pb2 as _types_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WalProposal(_message.Message):
    __slots__ = ("proposal", "block")
    PROPOSAL_FIELD_NUMBER: _ClassVar[int]
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    proposal: _types_pb2.SignedProposal
    block: bytes
    def __init__(self, proposal: _Optional[_Union[_types_pb2.SignedProposal, _Mapping]] = ..., block: _Optional[bytes] = ...) -> None: ...

class WalTimeout(_message.Message):
    __slots__ = ("step", "height", "round")
    STEP_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    step: str
    height: int
    round: int
    def __init__(self, step: _Optional[str] = ..., height: _Optional[int] = ..., round: _Optional[int] = ...) -> None: ...

class WalOwnBlock(_message.Message):
    __slots__ = ("round", "block")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    round: int
    block: bytes
    def __init__(self, round: _Optional[int] = ..., block: _Optional[bytes] = ...) -> None: ...

class WalEntry(_message.Message):
    __slots__ = ("proposal", "vote", "timeout", "own_block")
    PROPOSAL_FIELD_NUMBER: _ClassVar[int]
    VOTE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    OWN_BLOCK_FIELD_NUMBER: _ClassVar[int]
    proposal: WalProposal
    vote: _types_pb2.Vote
    timeout: WalTimeout
    own_block: WalOwnBlock
    def __init__(self, proposal: _Optional[_Union[WalProposal, _Mapping]] = ..., vote: _Optional[_Union[_types_pb2.Vote, _Mapping]] = ..., timeout: _Optional[_Union[WalTimeout, _Mapping]] = ..., own_block: _Optional[_Union[WalOwnBlock, _Mapping]] = ...) -> None: ...
