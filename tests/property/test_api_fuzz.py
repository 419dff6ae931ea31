"""Arbitrary bytes and requests against a real node: clear gRPC errors, no state change, still serving.

The calls simulated and the queries asked are generated from the registry: a new call or query is fuzzed with no edit.
"""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from chain.crypto import DEV_ACCOUNT_NAMES, dev_keypair
from chain.ss58 import BASE58_ALPHABET as BASE58
from chain.ss58 import AddressError, decode_address, encode_address
from chain.transactions import sign_transaction
from proto import node_pb2, node_pb2_grpc, query_pb2, query_pb2_grpc, types_pb2
from runtime.registry import RUNTIME
from tests.property.registry_calls import call_strategies

pytestmark = pytest.mark.slow

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def channel(dev_node):
    channel = grpc.insecure_channel(dev_node.target)
    yield channel
    channel.close()


@pytest.fixture(scope="module")
def stub(channel):
    return node_pb2_grpc.NodeStub(channel)


def accounts_snapshot(stub) -> list[tuple[int, int, int]]:
    snapshot = []
    for name in DEV_ACCOUNT_NAMES:
        reply = stub.GetAccount(node_pb2.GetAccountRequest(account=dev_keypair(name).public_key))
        snapshot.append((reply.free, reply.nonce, reply.next_nonce))
    return snapshot


def transaction_like(draw_bytes: bytes, signature: bytes) -> bytes:
    return types_pb2.Transaction(body=draw_bytes, signature=signature).SerializeToString()


@FUZZ
@given(raw=st.one_of(st.binary(max_size=400), st.builds(transaction_like, st.binary(max_size=300), st.binary(max_size=80))))
def test_arbitrary_transaction_bytes_get_a_clear_refusal(stub, raw):
    with pytest.raises(grpc.RpcError) as caught:
        stub.SubmitTransaction(node_pb2.SubmitTransactionRequest(transaction=raw), timeout=10)
    assert caught.value.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION)
    assert caught.value.details()


@FUZZ
@given(raws=st.lists(st.binary(max_size=200), max_size=20))
def test_arbitrary_batches_are_judged_one_by_one(stub, raws):
    reply = stub.SubmitTransactions(node_pb2.SubmitTransactionsRequest(transactions=raws), timeout=10)
    assert len(reply.verdicts) == len(raws)
    assert all(not verdict.accepted and verdict.code and verdict.reason for verdict in reply.verdicts)


def expected_account_outcome(account: bytes, address: str) -> tuple[grpc.StatusCode, str | None]:
    """What GetAccount must answer: OK or INVALID_ARGUMENT, and the exact message where it is known here."""
    if account and address:
        return grpc.StatusCode.INVALID_ARGUMENT, None
    if address:
        try:
            decode_address(address)
        except AddressError as error:
            return grpc.StatusCode.INVALID_ARGUMENT, str(error)
        return grpc.StatusCode.OK, None
    return (grpc.StatusCode.OK if len(account) == 32 else grpc.StatusCode.INVALID_ARGUMENT), None


def outcome(call, request) -> tuple[grpc.StatusCode, str]:
    try:
        call(request, timeout=10)
    except grpc.RpcError as error:
        assert error.details()
        return error.code(), error.details()
    return grpc.StatusCode.OK, ""


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    account=st.one_of(st.binary(max_size=40), st.binary(min_size=32, max_size=32)),
    address=st.one_of(
        st.just(""),
        st.builds(encode_address, st.binary(min_size=32, max_size=32)),
        st.text(max_size=60),
        st.text(alphabet=BASE58, min_size=46, max_size=50),
        st.text(min_size=49, max_size=5000),
    ),
)
def test_arbitrary_account_queries_get_exactly_the_answer_they_deserve(stub, account, address):
    expected_code, expected_message = expected_account_outcome(account, address)
    code, details = outcome(stub.GetAccount, node_pb2.GetAccountRequest(account=account, address=address))
    assert code == expected_code, details
    if expected_message is not None:
        assert details == expected_message


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(digest=st.one_of(st.binary(max_size=40), st.binary(min_size=32, max_size=32)))
def test_arbitrary_hashes_are_refused_or_not_found(stub, digest):
    # Random 32-byte hashes name no block and no transaction; any other length is malformed.
    expected = grpc.StatusCode.NOT_FOUND if len(digest) == 32 else grpc.StatusCode.INVALID_ARGUMENT
    assert outcome(stub.GetTransaction, node_pb2.GetTransactionRequest(transaction_hash=digest))[0] == expected
    assert outcome(stub.GetBlock, node_pb2.GetBlockRequest(hash=digest))[0] == expected


UNARY_METHODS = [method for method in node_pb2.DESCRIPTOR.services_by_name["Node"].methods if not method.server_streaming]


@FUZZ
@given(method=st.sampled_from(UNARY_METHODS + [node_pb2.DESCRIPTOR.services_by_name["Node"].methods_by_name["SubscribeBlocks"]]),
       raw=st.binary(min_size=1, max_size=300))
def test_request_bytes_that_do_not_decode_are_invalid_argument(channel, method, raw):
    try:
        message_factory.GetMessageClass(method.input_type).FromString(raw)
    except DecodeError:
        pass
    else:
        assume(False)  # decodable requests are the other tests' business
    path = f"/inferchain.node.Node/{method.name}"
    if method.server_streaming:
        call = channel.unary_stream(path, request_serializer=bytes, response_deserializer=bytes)
        invoke = lambda: list(call(raw, timeout=10))  # noqa: E731
    else:
        call = channel.unary_unary(path, request_serializer=bytes, response_deserializer=bytes)
        invoke = lambda: call(raw, timeout=10)  # noqa: E731
    with pytest.raises(grpc.RpcError) as raised:
        invoke()
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details() == f"the request does not decode as {method.input_type.full_name} ({len(raw)} bytes)"


def test_garbage_changed_no_state_and_node_still_serves(stub):
    before = accounts_snapshot(stub)
    for raw in (b"", b"\x00" * 100, b"\xff" * 70_000, transaction_like(b"\x0a\x03abc", b"\x01" * 64)):
        with pytest.raises(grpc.RpcError):
            stub.SubmitTransaction(node_pb2.SubmitTransactionRequest(transaction=raw), timeout=10)
    assert accounts_snapshot(stub) == before
    assert stub.GetChainInfo(node_pb2.GetChainInfoRequest(), timeout=5).best_height >= 1


# --- every registered call and every declared query, from the registry -----------------------------

FUZZED_CALLS = call_strategies(RUNTIME, [dev_keypair(name).public_key for name in DEV_ACCOUNT_NAMES])
DECLARED_QUERIES = [(module.name, spec) for module in RUNTIME.modules for spec in module.queries]
NAMES = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80)


def test_every_registered_call_is_fuzzed_against_the_node():
    assert set(FUZZED_CALLS) == set(RUNTIME.calls)


@FUZZ
@given(named_call=st.sampled_from(sorted(FUZZED_CALLS)).flatmap(lambda name: FUZZED_CALLS[name].map(lambda call: (name, call))))
def test_any_registered_call_is_simulated_with_a_verdict_and_a_reason(stub, named_call):
    name, call = named_call
    info = stub.GetChainInfo(node_pb2.GetChainInfoRequest(), timeout=5)
    signed = sign_transaction(dev_keypair("ferdie"), chain_id=info.chain_id, genesis_hash=info.genesis_hash,
                              nonce=0, call=call, fee=10**12)
    reply = stub.SimulateTransaction(node_pb2.SimulateTransactionRequest(transaction=signed.raw), timeout=10)
    assert reply.valid or (reply.code in ("INVALID_ARGUMENT", "FAILED_PRECONDITION") and reply.reason), (name, reply)


@pytest.fixture(scope="module")
def query_stub(channel):
    return query_pb2_grpc.QueryStub(channel)


def test_the_node_lists_every_declared_query(query_stub):
    listed = query_stub.ListQueries(query_pb2.ListQueriesRequest(), timeout=5).queries
    assert [(query.module, query.name, query.request_type, query.response_type) for query in listed] == [
        (module, spec.name, spec.request.DESCRIPTOR.full_name, spec.response.DESCRIPTOR.full_name)
        for module, spec in DECLARED_QUERIES
    ]


@FUZZ
@given(
    module=st.one_of(st.sampled_from([module.name for module in RUNTIME.modules]), NAMES),
    query=st.one_of(st.sampled_from([spec.name for _, spec in DECLARED_QUERIES] or ["none"]), NAMES),
    raw=st.binary(max_size=200),
)
def test_arbitrary_module_queries_are_answered_or_refused_with_a_reason(query_stub, module, query, raw):
    code, details = outcome(query_stub.Query, query_pb2.QueryRequest(module=module, query=query, request=raw))
    assert code in (grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND), details
    assert len(details) < 600


def test_query_request_bytes_that_do_not_decode_are_invalid_argument(channel):
    call = channel.unary_unary("/inferchain.query.Query/Query", request_serializer=bytes, response_deserializer=bytes)
    with pytest.raises(grpc.RpcError) as raised:
        call(b"\xff\xff\xff", timeout=10)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details() == "the request does not decode as inferchain.query.QueryRequest (3 bytes)"
