"""Arbitrary bytes and requests against a real node: clear gRPC errors, no state change, still serving."""

from __future__ import annotations

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chain.crypto import DEV_ACCOUNT_NAMES, dev_keypair
from proto import node_pb2, node_pb2_grpc, types_pb2

pytestmark = pytest.mark.slow

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def stub(dev_node):
    channel = grpc.insecure_channel(dev_node.target)
    yield node_pb2_grpc.NodeStub(channel)
    channel.close()


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


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(account=st.binary(max_size=40), address=st.text(max_size=60), tx_hash=st.binary(max_size=40))
def test_arbitrary_queries_answer_or_refuse_clearly(stub, account, address, tx_hash):
    for call, request in (
        (stub.GetAccount, node_pb2.GetAccountRequest(account=account, address=address)),
        (stub.GetTransaction, node_pb2.GetTransactionRequest(transaction_hash=tx_hash)),
        (stub.GetBlock, node_pb2.GetBlockRequest(hash=tx_hash)),
    ):
        try:
            call(request, timeout=10)
        except grpc.RpcError as error:
            assert error.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND), error
            assert error.details()


def test_garbage_changed_no_state_and_node_still_serves(stub):
    before = accounts_snapshot(stub)
    for raw in (b"", b"\x00" * 100, b"\xff" * 70_000, transaction_like(b"\x0a\x03abc", b"\x01" * 64)):
        with pytest.raises(grpc.RpcError):
            stub.SubmitTransaction(node_pb2.SubmitTransactionRequest(transaction=raw), timeout=10)
    assert accounts_snapshot(stub) == before
    assert stub.GetChainInfo(node_pb2.GetChainInfoRequest(), timeout=5).best_height >= 1
