from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListQueriesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class QueryField(_message.Message):
    __slots__ = ("name", "kind")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: str
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[str] = ...) -> None: ...

class QueryDescription(_message.Message):
    __slots__ = ("module", "name", "doc", "request_type", "response_type", "fields")
    MODULE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DOC_FIELD_NUMBER: _ClassVar[int]
    REQUEST_TYPE_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_TYPE_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    module: str
    name: str
    doc: str
    request_type: str
    response_type: str
    fields: _containers.RepeatedCompositeFieldContainer[QueryField]
    def __init__(self, module: _Optional[str] = ..., name: _Optional[str] = ..., doc: _Optional[str] = ..., request_type: _Optional[str] = ..., response_type: _Optional[str] = ..., fields: _Optional[_Iterable[_Union[QueryField, _Mapping]]] = ...) -> None: ...

class ListQueriesResponse(_message.Message):
    __slots__ = ("queries",)
    QUERIES_FIELD_NUMBER: _ClassVar[int]
    queries: _containers.RepeatedCompositeFieldContainer[QueryDescription]
    def __init__(self, queries: _Optional[_Iterable[_Union[QueryDescription, _Mapping]]] = ...) -> None: ...

class QueryRequest(_message.Message):
    __slots__ = ("module", "query", "request")
    MODULE_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    module: str
    query: str
    request: bytes
    def __init__(self, module: _Optional[str] = ..., query: _Optional[str] = ..., request: _Optional[bytes] = ...) -> None: ...

class QueryResponse(_message.Message):
    __slots__ = ("response", "response_type", "height", "block_hash")
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_TYPE_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    BLOCK_HASH_FIELD_NUMBER: _ClassVar[int]
    response: bytes
    response_type: str
    height: int
    block_hash: bytes
    def __init__(self, response: _Optional[bytes] = ..., response_type: _Optional[str] = ..., height: _Optional[int] = ..., block_hash: _Optional[bytes] = ...) -> None: ...
