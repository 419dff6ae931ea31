"""A transfer that can never succeed, or would fail now, is refused at the door: no fee, no block slot.

Issue 13, item 7: a zero amount and a 5-byte destination used to be admitted to the pool and
then charged a fee in the block. Submitted straight through the gRPC stub to a real node.
"""

from __future__ import annotations

import time

import grpc
import pytest

from chain.crypto import Keypair, dev_keypair
from chain.transactions import FeeRule, sign_transaction, transfer_call
from proto import node_pb2, node_pb2_grpc, state_pb2

ALICE = dev_keypair("alice")
BOB = dev_keypair("bob")


@pytest.fixture(scope="module")
def stub(dev_node):
    with grpc.insecure_channel(dev_node.target) as channel:
        yield node_pb2_grpc.NodeStub(channel)


def _transfer(stub, dest: bytes, amount: int) -> bytes:
    info = stub.GetChainInfo(node_pb2.GetChainInfoRequest(), timeout=10)
    nonce = stub.GetAccount(node_pb2.GetAccountRequest(account=ALICE.public_key), timeout=10).next_nonce
    return sign_transaction(
        ALICE, chain_id=info.chain_id, genesis_hash=info.genesis_hash, nonce=nonce,
        call=transfer_call(dest, amount), fee_rule=FeeRule(info.base_fee, info.fee_per_byte, info.fee_per_weight),
    ).raw


def _wait_blocks(stub, count: int, timeout_s: float = 15.0) -> None:
    target = stub.GetChainInfo(node_pb2.GetChainInfoRequest(), timeout=10).best_height + count
    deadline = time.monotonic() + timeout_s
    while stub.GetChainInfo(node_pb2.GetChainInfoRequest(), timeout=10).best_height < target:
        assert time.monotonic() < deadline, f"no block #{target} within {timeout_s} s"
        time.sleep(0.1)


def _alice(stub) -> state_pb2.AccountInfo:
    reply = stub.GetAccount(node_pb2.GetAccountRequest(account=ALICE.public_key), timeout=10)
    return state_pb2.AccountInfo(nonce=reply.nonce, free=reply.free)


@pytest.mark.parametrize(
    "dest, amount, code, words",
    [
        (BOB.public_key, 0, grpc.StatusCode.INVALID_ARGUMENT, "balances.ZeroAmount"),
        (b"\x05" * 5, 1_000_000, grpc.StatusCode.INVALID_ARGUMENT, "balances.InvalidDestination"),
        (Keypair.generate().public_key, 999_999, grpc.StatusCode.FAILED_PRECONDITION, "balances.ExistentialDeposit"),
    ],
)
def test_a_doomed_transfer_is_refused_with_its_reason_and_costs_nothing(stub, dest, amount, code, words):
    before = _alice(stub)
    raw = _transfer(stub, dest, amount)
    with pytest.raises(grpc.RpcError) as refused:
        stub.SubmitTransaction(node_pb2.SubmitTransactionRequest(transaction=raw), timeout=10)
    assert refused.value.code() == code
    assert words in refused.value.details()
    _wait_blocks(stub, 2)
    assert _alice(stub) == before  # no fee taken, nonce unchanged, two blocks later


def test_the_same_transfer_at_the_existential_deposit_is_admitted_and_included(stub):
    raw = _transfer(stub, Keypair.generate().public_key, 1_000_000)
    reply = stub.SubmitTransaction(node_pb2.SubmitTransactionRequest(transaction=raw), timeout=10)
    assert len(reply.transaction_hash) == 32
