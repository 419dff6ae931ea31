"""The runtime modules' declared queries through the node's generic Query service (proto/query.proto).

    with Client("127.0.0.1:9944") as client:
        queries = ModuleQueries(client)
        answer = queries.query("staking", "ledger", state_pb2.LedgerRequest(account=alice))
        print(answer.height, answer.response)

A query is named by its module and name and declared once, in its module (runtime/module.py
QuerySpec); the client encodes the declared request message and decodes the declared response.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import DecodeError, Message

from chain.client.errors import ClientError
from chain.text import quote_input
from proto import query_pb2, query_pb2_grpc
from runtime.module import QuerySpec
from runtime.registry import RUNTIME, Runtime


@dataclass(frozen=True)
class QueryAnswer:
    """A query's response message and the block whose state answered it."""

    response: Message
    height: int
    block_hash: bytes


def query_spec(runtime: Runtime, module_name: str, query_name: str) -> QuerySpec:
    """The declared query; ClientError(NOT_FOUND) naming what exists otherwise."""
    module = runtime.module(module_name)
    spec = None if module is None else next((spec for spec in module.queries if spec.name == query_name), None)
    if spec is None:
        known = ", ".join(f"{module.name}.{spec.name}" for module in runtime.modules for spec in module.queries)
        raise ClientError("NOT_FOUND", f"the runtime declares no query {quote_input(module_name)}."
                                       f"{quote_input(query_name)} (queries: {known or 'none'})")
    return spec


class ModuleQueries:
    """The Query service of the node a Client is connected to, read through `runtime`'s declarations."""

    def __init__(self, client, runtime: Runtime = RUNTIME):
        self.client = client
        self.runtime = runtime
        # The client's own connection: one channel per node.
        self._stub = query_pb2_grpc.QueryStub(client._channel)

    def list(self) -> list[query_pb2.QueryDescription]:
        """The queries the node serves (its runtime's, which may differ from this client's)."""
        return list(self.client._call(self._stub.ListQueries, query_pb2.ListQueriesRequest()).queries)

    def query(self, module_name: str, query_name: str, request: Message) -> QueryAnswer:
        """Run a declared query against the node's head state; ClientError with the node's reason otherwise."""
        spec = query_spec(self.runtime, module_name, query_name)
        if not isinstance(request, spec.request):
            raise ClientError("INVALID_ARGUMENT", f"{module_name}.{query_name} takes a "
                                                  f"{spec.request.DESCRIPTOR.full_name}, not {type(request).__name__}")
        reply = self.client._call(
            self._stub.Query,
            query_pb2.QueryRequest(module=module_name, query=query_name, request=request.SerializeToString()),
        )
        expected = spec.response.DESCRIPTOR.full_name
        if reply.response_type != expected:
            raise ClientError("FAILED_PRECONDITION", f"the node answered {module_name}.{query_name} with "
                                                     f"{quote_input(reply.response_type)}, this client expects {expected} "
                                                     "(are the node and the client the same version?)")
        try:
            response = spec.response.FromString(reply.response)
        except DecodeError:
            raise ClientError("DATA_LOSS", f"the node's answer does not decode as {expected}") from None
        return QueryAnswer(response, reply.height, reply.block_hash)
