"""Bad transactions through the client: the right gRPC code, a message that says why, no state change.

Each case submits one bad transaction from an account whose balance and nonce are read before and
after (proven by the client), and checks the node still answers.
"""

from __future__ import annotations

import time

import grpc
import pytest
from grpc_health.v1 import health_pb2

from chain.client import Client, ClientError
from chain.crypto import Keypair, dev_keypair
from chain.transactions import sign_transaction, transfer_call
from proto import node_pb2, node_pb2_grpc, types_pb2
from runtime.executive import TRANSACTION_SIGNING_CONTEXT

ALICE = dev_keypair("alice")
BOB = dev_keypair("bob")
POOR_FUNDS = 5_000_000


@pytest.fixture(scope="module")
def client(dev_node):
    with Client(dev_node.target) as client:
        yield client


@pytest.fixture(scope="module")
def poor(client):
    """An account holding only POOR_FUNDS, so affordability can be broken cheaply."""
    keypair = Keypair.generate()
    client.transfer(ALICE, keypair.public_key, POOR_FUNDS, wait=True, timeout=20)
    return keypair


def _signed(client, keypair, *, nonce=None, amount=1_000_000, fee=None, chain_id=None, genesis_hash=None, dest=None):
    info = client.chain_info()
    return sign_transaction(
        keypair,
        chain_id=info.chain_id if chain_id is None else chain_id,
        genesis_hash=info.genesis_hash if genesis_hash is None else genesis_hash,
        nonce=client.next_nonce(keypair) if nonce is None else nonce,
        call=transfer_call(BOB.public_key if dest is None else dest, amount),
        fee=fee,
        fee_rule=info.fee_rule,
    ).raw


def _raw_from_body(keypair, body: types_pb2.TransactionBody) -> bytes:
    body_bytes = body.SerializeToString()
    signature = keypair.sign(TRANSACTION_SIGNING_CONTEXT + body_bytes)
    return types_pb2.Transaction(body=body_bytes, signature=signature).SerializeToString()


def _refused(client, raw, code, *words, sender=ALICE):
    """Submit `raw`; assert the code and message words, that the sender's state did not move, and the node serves."""
    before = client.account(sender)
    with pytest.raises(ClientError) as raised:
        client.submit_raw(raw)
    error = raised.value
    assert error.code == code, error.message
    for word in words:
        assert word in error.message.lower(), error.message
    after = client.account(sender)
    assert (after.free, after.nonce, after.next_nonce) == (before.free, before.nonce, before.next_nonce)
    assert client.chain_info().chain_id == "inferchain-dev"
    return error


@pytest.mark.parametrize("raw", [b"\xff\xff\xff", b"\x0a\x05abc", b"garbage" * 10])
def test_malformed_bytes_are_invalid_argument(client, raw):
    _refused(client, raw, "INVALID_ARGUMENT", "decode")


def test_empty_bytes_are_invalid_argument(client):
    _refused(client, b"", "INVALID_ARGUMENT")


def test_a_bad_signature_is_invalid_argument(client):
    transaction = types_pb2.Transaction.FromString(_signed(client, ALICE))
    signature = bytearray(transaction.signature)
    signature[10] ^= 0x01
    transaction.signature = bytes(signature)
    _refused(client, transaction.SerializeToString(), "INVALID_ARGUMENT", "signature")


def test_a_signature_by_another_key_is_invalid_argument(client):
    transaction = types_pb2.Transaction.FromString(_signed(client, ALICE))
    transaction.signature = BOB.sign(TRANSACTION_SIGNING_CONTEXT + transaction.body)
    _refused(client, transaction.SerializeToString(), "INVALID_ARGUMENT", "signature")


def test_a_wrong_chain_id_is_invalid_argument(client):
    _refused(client, _signed(client, ALICE, chain_id="another-chain"), "INVALID_ARGUMENT", "chain id", "another-chain")


def test_a_wrong_genesis_hash_is_invalid_argument(client):
    _refused(client, _signed(client, ALICE, genesis_hash=b"\x01" * 32), "INVALID_ARGUMENT", "genesis", "0101")


def test_a_transaction_without_a_call_is_invalid_argument(client):
    info = client.chain_info()
    body = types_pb2.TransactionBody(
        chain_id=info.chain_id, genesis_hash=info.genesis_hash, sender=ALICE.public_key, nonce=0, fee=10**6
    )
    _refused(client, _raw_from_body(ALICE, body), "INVALID_ARGUMENT", "call")


def test_a_fee_below_the_minimum_is_invalid_argument(client):
    _refused(client, _signed(client, ALICE, fee=1), "INVALID_ARGUMENT", "fee", "minimum")


def test_an_oversized_transaction_is_invalid_argument(client):
    limit = client.chain_info().max_transaction_bytes
    raw = _signed(client, ALICE, dest=b"\x07" * (limit + 100), fee=10**12)
    assert len(raw) > limit
    _refused(client, raw, "INVALID_ARGUMENT", "bytes", str(limit))


def test_a_transaction_beyond_the_message_limit_is_refused_and_the_node_survives(client):
    raw = b"\x00" * (5 * 1024 * 1024)
    with pytest.raises(ClientError) as raised:
        client.submit_raw(raw)
    assert raised.value.code in ("INVALID_ARGUMENT", "RESOURCE_EXHAUSTED"), raised.value.message
    assert client.chain_info().chain_id == "inferchain-dev"


def test_a_replayed_transaction_is_failed_precondition(client, poor):
    raw = _signed(client, poor, amount=1_000)  # to Bob, who exists: no existential deposit needed
    transaction_hash = client.submit_raw(raw)
    client.wait_for_inclusion(transaction_hash, timeout=20)
    _refused(client, raw, "FAILED_PRECONDITION", "nonce", "already used", sender=poor)


def test_a_reused_nonce_in_a_new_transaction_is_failed_precondition(client):
    used = client.account(ALICE).nonce - 1
    assert used >= 0
    _refused(client, _signed(client, ALICE, nonce=used, amount=2_000_000), "FAILED_PRECONDITION", "nonce")


def test_a_nonce_far_ahead_is_failed_precondition(client):
    ahead = client.account(ALICE).nonce + 1_000_000
    _refused(client, _signed(client, ALICE, nonce=ahead), "FAILED_PRECONDITION", "nonce", str(ahead))


def test_a_skipped_nonce_is_failed_precondition(client):
    sender = Keypair.generate()
    client.transfer(ALICE, sender.public_key, POOR_FUNDS, wait=True, timeout=20)
    error = _refused(client, _signed(client, sender, nonce=2), "FAILED_PRECONDITION", "skips ahead", sender=sender)
    assert "next nonce is 0" in error.message


def test_an_unaffordable_fee_is_failed_precondition(client, poor):
    _refused(client, _signed(client, poor, fee=POOR_FUNDS * 10), "FAILED_PRECONDITION", "fee", sender=poor)


def test_an_unaffordable_transfer_is_failed_precondition(client, poor):
    _refused(client, _signed(client, poor, amount=POOR_FUNDS * 10), "FAILED_PRECONDITION", "balance", sender=poor)


def test_a_sender_without_an_account_cannot_pay(client):
    nobody = Keypair.generate()
    _refused(client, _signed(client, nobody, nonce=0, fee=10_000), "FAILED_PRECONDITION", "fee", sender=nobody)


def test_batch_verdicts_carry_the_code_and_reason_of_each_refusal(client):
    good = _signed(client, ALICE, amount=1_000)
    bad_chain = _signed(client, ALICE, chain_id="another-chain")
    verdicts = client.submit_many([b"\x01\x02", good, bad_chain])
    assert [v.accepted for v in verdicts] == [False, True, False]
    assert verdicts[0].code == "INVALID_ARGUMENT" and "decode" in verdicts[0].reason
    assert verdicts[2].code == "INVALID_ARGUMENT" and "chain id" in verdicts[2].reason
    assert client.wait_for_inclusion(verdicts[1].hash, timeout=20).receipt.success


@pytest.mark.parametrize(
    "call, code",
    [
        (lambda c: c._call(c._stub.GetAccount, node_pb2.GetAccountRequest(account=b"\x01" * 5)), "INVALID_ARGUMENT"),
        (lambda c: c._call(c._stub.GetAccount, node_pb2.GetAccountRequest(address="5Gxyz")), "INVALID_ARGUMENT"),
        (lambda c: c.block(hash=b"\x01" * 5), "INVALID_ARGUMENT"),
        (lambda c: c.block(hash=b"\x01" * 32), "NOT_FOUND"),
        (lambda c: c.transaction(b"\x01" * 5), "INVALID_ARGUMENT"),
        (lambda c: c._call(c._stub.GetChainInfo, node_pb2.GetChainInfoRequest(signer=b"\x01" * 5)), "INVALID_ARGUMENT"),
    ],
)
def test_malformed_queries_get_clear_codes(client, call, code):
    with pytest.raises(ClientError) as raised:
        call(client)
    assert raised.value.code == code and raised.value.message
    assert client.chain_info().best_height >= 1


# --- the gRPC edge: undecodable requests, oversized input, echoed input ----------------------

NODE_METHODS = list(node_pb2.DESCRIPTOR.services_by_name["Node"].methods)


@pytest.fixture(scope="module")
def channel(dev_node):
    with grpc.insecure_channel(dev_node.target) as channel:
        yield channel


def _raw_call(channel, method, payload: bytes, timeout: float = 5):
    """Send `payload` as the request bytes of `method`, as any client in any language could."""
    path = f"/{method.containing_service.full_name}/{method.name}"
    if method.server_streaming:
        return list(channel.unary_stream(path, request_serializer=bytes, response_deserializer=bytes)(payload, timeout=timeout))
    return channel.unary_unary(path, request_serializer=bytes, response_deserializer=bytes)(payload, timeout=timeout)


@pytest.mark.parametrize("method", NODE_METHODS, ids=lambda method: method.name)
@pytest.mark.parametrize("payload", [b"\xff\xff\xff", b"\x0a\x05ab"], ids=["garbage", "truncated"])
def test_undecodable_requests_are_invalid_argument_naming_the_type(channel, method, payload):
    with pytest.raises(grpc.RpcError) as raised:
        _raw_call(channel, method, payload)
    error = raised.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert error.details() == f"the request does not decode as {method.input_type.full_name} ({len(payload)} bytes)"


def test_an_address_that_is_not_utf8_is_invalid_argument(channel):
    # GetAccountRequest.address (field 2) holding bytes that are not UTF-8.
    with pytest.raises(grpc.RpcError) as raised:
        _raw_call(channel, node_pb2.DESCRIPTOR.services_by_name["Node"].methods_by_name["GetAccount"], b"\x12\x02\xc3\x28")
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "inferchain.node.GetAccountRequest" in raised.value.details()


def test_an_undecodable_health_check_is_invalid_argument(channel):
    method = health_pb2.DESCRIPTOR.services_by_name["Health"].methods_by_name["Check"]
    with pytest.raises(grpc.RpcError) as raised:
        _raw_call(channel, method, b"\xff\xff")
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "grpc.health.v1.HealthCheckRequest" in raised.value.details()


def test_a_huge_address_is_refused_at_once_with_a_short_message(channel):
    stub = node_pb2_grpc.NodeStub(channel)
    address = "5" * 320_000  # decoding this once took 10 s of CPU and came back whole in the message
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as raised:
        stub.GetAccount(node_pb2.GetAccountRequest(address=address), timeout=5)
    assert time.monotonic() - started < 1
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = raised.value.details()
    assert "at most 48 characters" in details and "(320000 characters)" in details
    assert len(details) < 200


def test_an_account_given_both_ways_is_invalid_argument(channel):
    stub = node_pb2_grpc.NodeStub(channel)
    request = node_pb2.GetAccountRequest(account=BOB.public_key, address=ALICE.address)
    with pytest.raises(grpc.RpcError) as raised:
        stub.GetAccount(request, timeout=5)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not both" in raised.value.details()


def _long_chain_id_transaction(client) -> bytes:
    info = client.chain_info()
    body = types_pb2.TransactionBody(
        chain_id="c" * 50_000, genesis_hash=info.genesis_hash, sender=ALICE.public_key, nonce=0, fee=10**9,
        transfer=types_pb2.Transfer(dest=BOB.public_key, amount=10**7),
    )
    return _raw_from_body(ALICE, body)


def test_a_rejection_quoting_a_long_input_is_cut_short(client, channel):
    stub = node_pb2_grpc.NodeStub(channel)
    raw = _long_chain_id_transaction(client)
    with pytest.raises(grpc.RpcError) as raised:
        stub.SubmitTransaction(node_pb2.SubmitTransactionRequest(transaction=raw), timeout=5)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert len(raised.value.details()) < 700
    verdict = stub.SubmitTransactions(node_pb2.SubmitTransactionsRequest(transactions=[raw]), timeout=5).verdicts[0]
    assert not verdict.accepted and len(verdict.reason) < 700
    simulated = stub.SimulateTransaction(node_pb2.SimulateTransactionRequest(transaction=raw), timeout=5)
    assert not simulated.valid and len(simulated.reason) < 700
