"""The generic query service (proto/query.proto): every module's declared queries behind one RPC.

A module declares a query once (runtime/module.py QuerySpec: request and response messages, a
handler that reads state, the kind of each field); this servicer serves it, as the `tx` commands
serve every declared call. The edge only translates: it finds the query, decodes the request as
the declared type (refusing fields that type does not have), checks the fields whose kind says
their length (an account or a hash is 32 bytes; text is UTF-8), runs the module's handler against
the head state and returns the serialised response. What a query means is its module's.

The request as a whole is bounded by the server like every other request (chain/node/server.py,
RequestLimits from the genesis); a query's work is its handler's, bounded by its module.
"""

from __future__ import annotations

import logging
from typing import Iterator

import grpc
from google.protobuf import unknown_fields
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message

from chain.storage import ChainStore, Head, StoreError
from chain.text import quote_input
from proto import query_pb2, query_pb2_grpc
from runtime.module import ACCOUNT, HASH, TEXT, QuerySpec
from runtime.primitives import DispatchError
from runtime.registry import RUNTIME, Runtime

log = logging.getLogger(__name__)

ID_BYTES = 32
# Longer than any module or query name: quoted no further in a refusal.
NAME_QUOTE_LIMIT = 64


class QueryRefused(Exception):
    """A query the node does not answer: `status` is the gRPC status code, the message says why."""

    def __init__(self, status: grpc.StatusCode, message: str):
        super().__init__(message)
        self.status = status


class HeadState:
    """The state after block `head` as a runtime StateReader: every `get` reads the state tree under its root.

    `iter_prefix`, for a handler that walks a prefix, reads the node's latest committed state, which
    is `head` or a block after it when one was committed meanwhile (the tree cannot be walked by prefix).
    """

    __slots__ = ("_store", "_root")

    def __init__(self, store: ChainStore, head: Head):
        self._store = store
        self._root = head.state_root

    def get(self, key: bytes) -> bytes | None:
        return self._store.tree.get(self._root, key)

    def iter_prefix(self, prefix: bytes = b"", after: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        """The prefix's keys in order, above `after` (a page in key order reads only from its token on)."""
        return self._store.state.iter_prefix(prefix, after)

    def iter_prefix_reverse(self, prefix: bytes, before: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        """The prefix's keys last to first, below `before` (a newest-first page reads only what it returns)."""
        return self._store.state.iter_prefix_reverse(prefix, before)


def find_query(runtime: Runtime, module_name: str, query_name: str) -> QuerySpec:
    """The declared query; QueryRefused(NOT_FOUND) naming what exists otherwise."""
    module = runtime.module(module_name)
    if module is None:
        known = ", ".join(module.name for module in runtime.modules if module.queries) or "none"
        raise QueryRefused(grpc.StatusCode.NOT_FOUND,
                           f"no module {quote_input(module_name, NAME_QUOTE_LIMIT)} declares queries "
                           f"(modules with queries: {known})")
    spec = next((spec for spec in module.queries if spec.name == query_name), None)
    if spec is None:
        known = ", ".join(spec.name for spec in module.queries) or "none"
        raise QueryRefused(grpc.StatusCode.NOT_FOUND,
                           f"module {module.name} has no query {quote_input(query_name, NAME_QUOTE_LIMIT)} "
                           f"(its queries: {known})")
    return spec


def decode_request(spec: QuerySpec, raw: bytes) -> Message:
    """The request bytes as the query's request message, its fields checked by kind; QueryRefused(INVALID_ARGUMENT)."""
    type_name = spec.request.DESCRIPTOR.full_name
    try:
        request = spec.request.FromString(raw)
    except DecodeError:
        raise _invalid(f"the request does not decode as {type_name} ({len(raw)} bytes)") from None
    if _has_unknown_fields(request):
        raise _invalid(f"the request carries fields that {type_name} does not have (is the client newer than this node?)")
    for field in spec.request.DESCRIPTOR.fields:
        _check_field(request, field, spec.fields.get(field.name))
    return request


def _has_unknown_fields(message: Message) -> bool:
    if len(unknown_fields.UnknownFieldSet(message)):
        return True
    for field, value in message.ListFields():
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            values = value if _is_repeated(field) else [value]
            if any(_has_unknown_fields(item) for item in values):
                return True
    return False


def _is_repeated(field: FieldDescriptor) -> bool:
    if hasattr(field, "is_repeated"):
        return field.is_repeated
    return field.label == FieldDescriptor.LABEL_REPEATED


def _check_field(request: Message, field: FieldDescriptor, kind: str | None) -> None:
    if field.type != FieldDescriptor.TYPE_BYTES or kind not in (ACCOUNT, HASH, TEXT):
        return
    value = getattr(request, field.name)
    for item in value if _is_repeated(field) else [value]:
        if kind == TEXT:
            try:
                item.decode("utf-8")
            except UnicodeDecodeError:
                raise _invalid(f"{field.name} must be UTF-8 text") from None
        elif item and len(item) != ID_BYTES:
            what = "an account id" if kind == ACCOUNT else "a hash"
            raise _invalid(f"{field.name} must be {what} of {ID_BYTES} bytes, got {len(item)} bytes")


def run_query(spec: QuerySpec, module_name: str, state, request: Message) -> Message:
    """The handler's answer; a module's refusal or an absent record as QueryRefused."""
    try:
        response = spec.handler(state, request)
    except DispatchError as error:
        raise _invalid(f"{error.module}.{error.name}: {error.message}") from None
    except KeyError as error:
        what = error.args[0] if error.args and isinstance(error.args[0], str) else "the record asked for"
        raise QueryRefused(grpc.StatusCode.NOT_FOUND, f"{module_name}.{spec.name}: {what} does not exist") from None
    if not isinstance(response, spec.response):
        log.error("%s.%s answered %s, not its declared %s", module_name, spec.name, type(response).__name__,
                  spec.response.DESCRIPTOR.full_name)
        raise QueryRefused(grpc.StatusCode.INTERNAL, f"{module_name}.{spec.name} answered with the wrong type")
    return response


def _invalid(message: str) -> QueryRefused:
    return QueryRefused(grpc.StatusCode.INVALID_ARGUMENT, message)


def describe_queries(runtime: Runtime) -> query_pb2.ListQueriesResponse:
    """Every declared query, module by module in registry order."""
    return query_pb2.ListQueriesResponse(
        queries=[
            query_pb2.QueryDescription(
                module=module.name, name=spec.name, doc=spec.doc,
                request_type=spec.request.DESCRIPTOR.full_name, response_type=spec.response.DESCRIPTOR.full_name,
                fields=[query_pb2.QueryField(name=name, kind=kind) for name, kind in spec.fields.items()],
            )
            for module in runtime.modules
            for spec in module.queries
        ]
    )


class QueryApi(query_pb2_grpc.QueryServicer):
    """Serves the runtime's declared queries against the node's head state."""

    def __init__(self, core, runtime: Runtime = RUNTIME):
        self.core = core  # a NodeCore: `head` and `store`
        self.runtime = runtime
        self._listing = describe_queries(runtime)

    def ListQueries(self, request, context):
        return self._listing

    def Query(self, request, context):
        try:
            spec = find_query(self.runtime, request.module, request.query)
            message = decode_request(spec, request.request)
            head = self.core.head
            response = run_query(spec, request.module, HeadState(self.core.store, head), message)
        except QueryRefused as refused:
            context.abort(refused.status, str(refused))
        except StoreError:
            raise  # DATA_LOSS, said by the server's edge guard
        except Exception:  # a module's handler broke: say so without a traceback to the caller
            log.exception("query %s.%s failed", request.module, request.query)
            context.abort(grpc.StatusCode.INTERNAL,
                          f"the query {request.module}.{request.query} failed on this node (its log says why)")
        return query_pb2.QueryResponse(
            response=response.SerializeToString(deterministic=True),
            response_type=spec.response.DESCRIPTOR.full_name,
            height=head.height,
            block_hash=head.hash,
        )
