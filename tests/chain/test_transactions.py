"""Signing transactions: chain binding, exact signed bytes, and the minimum-fee fixed point."""

from __future__ import annotations

import pytest

from chain.crypto import dev_keypair, verify
from chain.transactions import FeeRule, sign_transaction, transfer_call
from proto import types_pb2
from runtime.executive import TRANSACTION_SIGNING_CONTEXT, TransactionRules, check_transaction
from runtime.hashing import transaction_hash
from runtime.system import Params

GENESIS = bytes(range(32))
RULE = FeeRule(base_fee=1_000, fee_per_byte=10, fee_per_weight=5_000)
RULES = TransactionRules(chain_id="test-chain", genesis_hash=GENESIS, params=Params())


def _body(signed) -> types_pb2.TransactionBody:
    return types_pb2.TransactionBody.FromString(types_pb2.Transaction.FromString(signed.raw).body)


def _sign(nonce=0, amount=5, fee=None, fee_rule=RULE, chain_id="test-chain", genesis_hash=GENESIS):
    return sign_transaction(
        dev_keypair("alice"),
        chain_id=chain_id,
        genesis_hash=genesis_hash,
        nonce=nonce,
        call=transfer_call(dev_keypair("bob").public_key, amount),
        fee=fee,
        fee_rule=fee_rule,
    )


def test_signed_transaction_carries_the_body_as_signed():
    signed = _sign(nonce=3, amount=7)
    transaction = types_pb2.Transaction.FromString(signed.raw)
    body = types_pb2.TransactionBody.FromString(transaction.body)
    assert (body.chain_id, body.genesis_hash, body.nonce) == ("test-chain", GENESIS, 3)
    assert body.sender == dev_keypair("alice").public_key
    assert body.transfer.dest == dev_keypair("bob").public_key and body.transfer.amount == 7
    assert verify(body.sender, transaction.signature, TRANSACTION_SIGNING_CONTEXT + transaction.body)


def test_hash_is_blake2b_of_the_exact_bytes():
    signed = _sign()
    assert signed.hash == transaction_hash(signed.raw)


def test_default_fee_is_exactly_the_minimum_for_the_final_size():
    signed = _sign()
    assert signed.fee == RULE.minimum_for(_body(signed), len(signed.raw))
    assert types_pb2.TransactionBody.FromString(types_pb2.Transaction.FromString(signed.raw).body).fee == signed.fee


@pytest.mark.parametrize("base_fee, per_byte", [(0, 0), (1, 1), (127, 1), (10**12, 1_000), (2**40, 2**20)])
def test_minimum_fee_fixed_point_holds_across_varint_boundaries(base_fee, per_byte):
    rule = FeeRule(base_fee, per_byte, per_byte * 100)
    signed = _sign(fee_rule=rule)
    assert signed.fee == rule.minimum_for(_body(signed), len(signed.raw))


def test_explicit_fee_is_kept_even_below_the_minimum():
    signed = _sign(fee=1)
    assert signed.fee == 1


def test_a_fee_or_a_fee_rule_is_required():
    with pytest.raises(ValueError):
        _sign(fee=None, fee_rule=None)


def test_signed_transaction_passes_the_runtime_stateless_checks():
    checked = check_transaction(_sign().raw, RULES)
    assert checked.sender == dev_keypair("alice").public_key


def test_a_transaction_for_another_chain_id_is_refused_by_the_runtime():
    from runtime.executive import WrongChain

    with pytest.raises(WrongChain, match="chain id"):
        check_transaction(_sign(chain_id="other-chain").raw, RULES)


def test_a_transaction_for_another_genesis_is_refused_by_the_runtime():
    from runtime.executive import WrongChain

    with pytest.raises(WrongChain, match="genesis"):
        check_transaction(_sign(genesis_hash=bytes(32)).raw, RULES)


def test_signatures_differ_across_nonces():
    assert _sign(nonce=0).raw != _sign(nonce=1).raw
