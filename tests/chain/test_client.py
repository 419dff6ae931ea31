"""The Python client against a real dev node: queries with verified proofs, transfers, batches, waiting."""

from __future__ import annotations

import itertools
import time

import pytest

from chain.client import (
    Client,
    ClientError,
    InclusionTimeout,
    ProofError,
    Submission,
    TransactionRejected,
    decode_hash,
    describe_transaction,
)
from chain.crypto import Keypair, dev_keypair
from chain.genesis import load_genesis
from proto import types_pb2
from tests.nodes import ROOT, free_port
from tests.tampering import TamperingStub

ALICE = dev_keypair("alice")
FUNDING = 10**15


@pytest.fixture(scope="module")
def client(dev_node):
    with Client(dev_node.target) as client:
        yield client


@pytest.fixture(scope="module")
def funded(client):
    """Fresh accounts funded by Alice in one block, handed out one per test that moves money."""
    keypairs = [Keypair.generate() for _ in range(17)]
    nonce = client.next_nonce(ALICE)
    raws = [client.sign_transfer(ALICE, keypair.public_key, FUNDING, nonce=nonce + i).raw for i, keypair in enumerate(keypairs)]
    verdicts = client.submit_many(raws)
    assert all(verdict.accepted for verdict in verdicts), verdicts
    client.wait_for_inclusion(verdicts[-1].hash, timeout=20)
    return iter(keypairs)


def test_chain_info_names_the_dev_chain(client):
    info = client.chain_info()
    genesis = load_genesis(ROOT / "genesis.json")
    assert info.chain_id == genesis.chain_id == "inferchain-dev"
    assert info.genesis_hash == genesis.hash
    assert info.best_height >= 1 and len(info.best_hash) == 32
    assert info.fee_rule.minimum(100, 10**6) == info.base_fee + 100 * info.fee_per_byte + info.fee_per_weight
    assert info.block_time_ms == 1000
    assert (info.token_symbol, info.token_decimals) == ("INFER", 9)


def test_chain_info_with_a_signer_carries_its_next_nonce(client):
    assert client.chain_info("charlie").signer_next_nonce == client.next_nonce("charlie") == 0
    assert client.chain_info().signer_next_nonce == 0


def test_account_is_the_same_for_every_way_of_naming_it(client):
    bob = dev_keypair("bob")
    views = [client.account(name) for name in ("bob", "BOB", bob.address, bob.public_key.hex(), bob.public_key, bob)]
    assert {view.public_key for view in views} == {bob.public_key}
    assert all(view.exists and view.free > 0 for view in views)


def test_account_figures_are_proven_against_the_named_header(client):
    account = client.account("charlie")
    block = client.block(hash=account.block_hash)
    assert block.state_root == account.state_root and block.height == account.height
    assert account.free == 10**18 and account.nonce == 0 and account.reserved == 0


def test_an_unknown_account_is_proven_absent(client):
    account = client.account(Keypair.generate().public_key)
    assert not account.exists
    assert (account.free, account.reserved, account.nonce, account.next_nonce) == (0, 0, 0, 0)


def test_transfer_with_wait_moves_the_amount_and_bumps_the_nonce(client, funded):
    sender = next(funded)
    dest = Keypair.generate()
    result = client.transfer(sender, dest.address, 2_000_000, wait=True, timeout=20)
    assert isinstance(result, Submission) and result.call == "transfer"
    assert result.inclusion.included and result.receipt.success
    assert result.inclusion.height >= 1 and result.nonce == 0
    names = [event.name for event in result.inclusion.receipt.events]
    assert "Transfer" in names
    assert client.account(dest.public_key).free == 2_000_000
    after = client.account(sender)
    assert after.nonce == 1 and after.free == FUNDING - 2_000_000 - result.fee
    status = client.transaction(result.hash)
    assert status.included and status.height == result.inclusion.height and status.index == result.inclusion.index
    assert describe_transaction(status.raw).amount == 2_000_000


def test_next_nonce_counts_pending_transactions(client, funded):
    sender = next(funded)
    first = client.transfer(sender, "dave", 1_000_000)
    second = client.transfer(sender, "dave", 1_000_000)
    assert (first.nonce, second.nonce) == (0, 1)
    # Whether or not a block included them meanwhile, the next nonce is 2.
    assert client.next_nonce(sender) == 2
    assert client.wait_for_inclusion(second.hash, timeout=20).included


def test_submit_many_answers_each_transaction_in_order(client, funded):
    sender = next(funded)
    raws = [client.sign_transfer(sender, "eve", 1_000_000, nonce=n).raw for n in range(5)]
    raws.insert(2, b"\x00not a transaction")
    verdicts = client.submit_many(raws, chunk=2)
    assert [verdict.accepted for verdict in verdicts] == [True, True, False, True, True, True]
    assert verdicts[2].code == "INVALID_ARGUMENT" and verdicts[2].reason
    last = client.wait_for_inclusion(verdicts[-1].hash, timeout=20)
    assert last.receipt.success
    assert client.account(sender).nonce == 5


def test_a_submission_carries_the_nodes_dry_run_verdict(client, funded):
    sender = next(funded)
    first = client.submit(sender, types_pb2.Transfer(dest=dev_keypair("eve").public_key, amount=2_000_000))
    # Applied alone to the latest state at admission: its events, so no simulation is needed first.
    assert first.dry_run.success and first.dry_run.transaction_hash == first.hash
    assert any(event.name == "Transfer" for event in first.dry_run.events)
    second = client.submit(sender, types_pb2.Transfer(dest=dev_keypair("eve").public_key, amount=2_000_000))
    assert second.dry_run is None  # behind the first: judged when its turn comes
    raws = [client.sign_transfer(sender, "eve", 1_000_000, nonce=nonce).raw for nonce in (2, 3)]
    unasked = client.submit_many(raws)
    assert [verdict.dry_run for verdict in unasked] == [None, None]  # not asked for
    client.wait_for_inclusion(unasked[-1].hash, timeout=20)
    raws = [client.sign_transfer(sender, "eve", 1_000_000, nonce=nonce).raw for nonce in (4, 5)]
    verdicts = client.submit_many(raws, dry_runs=True)
    # Asked for: the one at the account's next nonce ran, the one behind it waits its turn.
    assert [verdict.accepted for verdict in verdicts] == [True, True]
    assert verdicts[0].dry_run.success and verdicts[1].dry_run is None
    assert client.wait_for_inclusion(verdicts[-1].hash, timeout=20).receipt.success


def test_simulate_reports_fee_and_events_without_applying(client, funded):
    sender = next(funded)
    signed = client.sign_transfer(sender, "ferdie", 3_000_000)
    simulation = client.simulate(signed.raw)
    assert simulation.valid and simulation.hash == signed.hash
    assert simulation.fee == simulation.minimum_fee == signed.fee
    assert any(event.name == "Transfer" for event in simulation.events)
    time.sleep(1.2)
    assert client.account(sender).nonce == 0
    assert client.transaction(signed.hash).status == "unknown"


def test_simulate_explains_an_invalid_transaction(client, funded):
    sender = next(funded)
    signed = client.sign_transfer(sender, "ferdie", FUNDING * 10)
    simulation = client.simulate(signed.raw)
    assert not simulation.valid
    assert simulation.code == "FAILED_PRECONDITION" and "balance" in simulation.reason


def test_submit_takes_any_call_message_and_returns_one_submission_type(client, funded):
    sender = next(funded)
    dest = Keypair.generate()
    submission = client.submit(sender, types_pb2.Transfer(dest=dest.public_key, amount=4_000_000), wait=True, timeout=20)
    assert (submission.call, submission.nonce, submission.attempts) == ("transfer", 0, 1)
    assert submission.inclusion.included and submission.receipt.success
    # The automatic fee is the minimum for the signed size.
    size = len(client.transaction(submission.hash).raw)
    body = types_pb2.TransactionBody(transfer=types_pb2.Transfer(dest=dest.public_key, amount=4_000_000))
    assert submission.receipt.fee_paid == submission.fee == client.chain_info().fee_rule.minimum_for(body, size)
    assert client.account(dest).free == 4_000_000
    pending = client.submit(sender, types_pb2.Transfer(dest=dest.public_key, amount=1_000_000))
    assert pending.inclusion is None and pending.receipt is None and pending.nonce == 1
    assert client.wait_for_inclusion(pending.hash, timeout=20).receipt.success


def test_submit_refuses_a_message_that_is_no_call(client):
    with pytest.raises(ClientError) as raised:
        client.submit(ALICE, types_pb2.Header(height=1))
    assert raised.value.code == "INVALID_ARGUMENT" and "not a transaction call" in raised.value.message


@pytest.mark.parametrize(
    "call, words",
    [(types_pb2.Transfer(dest=bytes(32), amount=0), "positive"), (types_pb2.Transfer(dest=b"12345", amount=5), "32-byte")],
)
def test_submit_refuses_a_call_that_can_never_succeed_before_it_costs_a_fee(client, call, words):
    before = client.account(ALICE)
    with pytest.raises(ClientError) as raised:
        client.submit(ALICE, call)
    assert raised.value.code == "INVALID_ARGUMENT" and words in raised.value.message
    # Alice authors the blocks, so only her nonces tell that nothing was submitted.
    after = client.account(ALICE)
    assert (after.nonce, after.next_nonce) == (before.nonce, before.next_nonce)


def test_an_explicit_nonce_is_used_as_given_even_when_taken(client, funded):
    sender = next(funded)
    blocks = client.subscribe_blocks()
    next(blocks)  # right after a block: a whole block time for the first to stay pending
    first = client.transfer(sender, "bob", 1_000_000)
    with pytest.raises(ClientError) as raised:
        client.submit(sender, types_pb2.Transfer(dest=dev_keypair("charlie").public_key, amount=1), nonce=first.nonce)
    blocks.close()
    assert raised.value.code == "FAILED_PRECONDITION" and "already pending" in raised.value.message
    with pytest.raises(ClientError) as raised:
        client.transfer(sender, "bob", 1_000_000, nonce=first.nonce + 5)
    assert "skips ahead" in raised.value.message
    assert client.wait_for_inclusion(first.hash, timeout=20).included
    assert client.account(sender).nonce == 1


def test_a_refusal_that_is_not_about_the_nonce_is_raised_at_once(client, funded):
    sender = next(funded)
    started = time.monotonic()
    with pytest.raises(ClientError) as raised:
        client.transfer(sender, "bob", FUNDING * 10)
    assert raised.value.code == "FAILED_PRECONDITION" and "balance" in raised.value.message
    assert "no free nonce" not in raised.value.message and time.monotonic() - started < 2


def test_dry_run_simulates_a_call_without_submitting_it(client, funded):
    sender = next(funded)
    good = client.dry_run(sender, types_pb2.Transfer(dest=dev_keypair("dave").public_key, amount=1_000_000))
    assert good.valid and good.fee == good.minimum_fee
    assert any(event.name == "Transfer" for event in good.events)
    doomed = client.dry_run(sender, types_pb2.Transfer(dest=Keypair.generate().public_key, amount=5))
    assert not doomed.valid and "ExistentialDeposit" in doomed.reason
    assert client.account(sender).next_nonce == 0


def test_dry_run_judges_the_call_while_the_sender_has_pending_transactions(client, funded):
    sender = next(funded)
    blocks = client.subscribe_blocks()
    next(blocks)
    pending = client.transfer(sender, "bob", 1_000_000)
    blocks.close()
    # The node applies only the on-chain nonce; the client simulates there, not at the pending one's next.
    simulation = client.dry_run(sender, types_pb2.Transfer(dest=dev_keypair("eve").public_key, amount=1_000_000))
    assert simulation.valid, simulation.reason
    assert client.wait_for_inclusion(pending.hash, timeout=20).included


@pytest.mark.parametrize("option, value", [("fee", -1), ("nonce", 2**64), ("nonce", "3"), ("fee", True)])
def test_submit_refuses_a_fee_or_nonce_out_of_range(client, option, value):
    with pytest.raises(ClientError) as raised:
        client.submit(ALICE, types_pb2.Transfer(dest=dev_keypair("bob").public_key, amount=1), **{option: value})
    assert raised.value.code == "INVALID_ARGUMENT" and option in raised.value.message


def test_blocks_by_height_hash_and_best_agree(client):
    best = client.block()
    by_height = client.block(height=best.height)
    by_hash = client.block(hash=best.hash)
    assert by_height.hash == by_hash.hash == best.hash
    assert best.chain_id == "inferchain-dev" and best.proposer == ALICE.public_key
    if best.height > 1:
        assert client.block(height=best.height - 1).hash == best.parent_hash


def test_an_unknown_block_is_not_found(client):
    with pytest.raises(ClientError) as raised:
        client.block(height=10**9)
    assert raised.value.code == "NOT_FOUND" and "10000000" in raised.value.message


def test_subscribe_blocks_yields_consecutive_finalized_blocks(client):
    stream = client.subscribe_blocks()
    heights = [block.height for block in itertools.islice(stream, 3)]
    stream.close()
    assert heights == list(range(heights[0], heights[0] + 3))


def test_subscribe_blocks_replays_from_a_past_height(client):
    stream = client.subscribe_blocks(from_height=1)
    first = next(stream)
    stream.close()
    assert first.height == 1


def test_an_unknown_transaction_has_status_unknown(client):
    assert client.transaction(bytes(32)).status == "unknown"


def test_wait_for_inclusion_times_out_on_a_transaction_that_cannot_be_included(client, funded):
    sender = next(funded)
    # Signed but never submitted: the node never learns of it.
    result = client.sign_transfer(sender, "bob", 1_000_000)
    started = time.monotonic()
    with pytest.raises(InclusionTimeout) as raised:
        client.wait_for_inclusion(result.hash, timeout=1.5)
    assert 1.4 <= time.monotonic() - started < 6
    assert raised.value.code == "DEADLINE_EXCEEDED" and result.hash.hex() in raised.value.message


def test_wait_for_inclusion_raises_when_a_pending_transaction_is_replaced(client, funded):
    sender = next(funded)
    # Right after a block, a whole block time (1 s) remains to replace the transaction while it is pending.
    blocks = client.subscribe_blocks()
    next(blocks)
    original = client.transfer(sender, "bob", 1_000_000)
    replacement = client.transfer(sender, "bob", 1_000_000, nonce=original.nonce, fee=original.fee * 2)
    assert replacement.hash != original.hash
    with pytest.raises(TransactionRejected) as raised:
        client.wait_for_inclusion(original.hash, timeout=5)
    assert raised.value.reason


def test_a_bad_account_name_is_a_client_error(client):
    with pytest.raises(ClientError) as raised:
        client.account("mallory")
    assert raised.value.code == "INVALID_ARGUMENT" and "mallory" in raised.value.message


def test_transfer_refuses_non_positive_amounts(client):
    with pytest.raises(ClientError, match="positive"):
        client.transfer(ALICE, "bob", 0)


def test_connection_refused_names_the_target():
    target = f"127.0.0.1:{free_port()}"
    with Client(target, timeout=5) as client:
        with pytest.raises(ClientError) as raised:
            client.chain_info()
    assert raised.value.code == "UNAVAILABLE"
    assert target in raised.value.message and "refused" in raised.value.message


def test_decode_hash_accepts_hex_with_or_without_0x():
    assert decode_hash("0x" + "ab" * 32) == bytes.fromhex("ab" * 32)
    with pytest.raises(ClientError, match="64 hex digits"):
        decode_hash("abc")


def test_decode_hash_refuses_long_text_quoting_only_its_start():
    with pytest.raises(ClientError) as raised:
        decode_hash("ab" * 100_000)
    assert "200000 characters" in raised.value.message and len(raised.value.message) < 150


def test_describe_transaction_carries_any_call_as_its_message(client):
    signed = client.sign(ALICE, types_pb2.Transfer(dest=dev_keypair("bob").public_key, amount=42), nonce=7)
    summary = describe_transaction(signed.raw)
    assert (summary.call, summary.nonce, summary.sender) == ("transfer", 7, ALICE.public_key)
    assert summary.arguments == types_pb2.Transfer(dest=dev_keypair("bob").public_key, amount=42)
    assert (summary.dest, summary.amount) == (dev_keypair("bob").public_key, 42)


# --- a node that lies: the client must notice --------------------------------------


def _inflate_balance(reply):
    reply.free += 1


def _forge_value(reply):
    from proto import state_pb2

    info = state_pb2.AccountInfo.FromString(reply.state_value)
    info.free += 10**6
    reply.state_value = info.SerializeToString()
    reply.free = info.free


def _claim_absence(reply):
    reply.state_value = b""
    reply.exists = False
    reply.free = reply.reserved = reply.nonce = 0


def _deny_existence_but_send_value(reply):
    reply.exists = False


def _break_sibling(reply):
    sibling = bytearray(reply.proof.siblings[0])
    sibling[0] ^= 1
    reply.proof.siblings[0] = bytes(sibling)


def _claim_other_root(reply):
    # A self-consistent proof, but under a root that is not in the named block's header.
    from chain.state.proof import compute_root
    from runtime.system import account_key

    reply.state_root = compute_root({account_key(reply.account): reply.state_value})
    reply.proof.Clear()


@pytest.mark.parametrize("tamper", [_inflate_balance, _forge_value, _claim_absence, _deny_existence_but_send_value, _break_sibling])
def test_a_tampered_account_proof_is_refused(dev_node, tamper):
    with Client(dev_node.target) as client:
        client._stub = TamperingStub(client._stub, "GetAccount", tamper)
        with pytest.raises(ProofError) as raised:
            client.account("bob")
    assert raised.value.code == "DATA_LOSS"


def test_a_proof_under_a_root_not_in_the_header_is_refused(dev_node):
    with Client(dev_node.target) as client:
        client._stub = TamperingStub(client._stub, "GetAccount", _claim_other_root)
        with pytest.raises(ProofError, match="not the state root"):
            client.account("bob")


def test_submit_many_splits_batches_by_count_and_by_bytes():
    from chain.client.client import _batches

    small = [b"x" * 10] * 7
    assert [len(batch) for batch in _batches(small, 3, 1_000)] == [3, 3, 1]
    large = [b"y" * 400] * 5 + [b"z" * 2_000]
    assert [sum(map(len, batch)) for batch in _batches(large, 100, 1_000)] == [800, 800, 400, 2_000]


def test_an_offer_call_names_its_engine_class_and_a_bad_one_costs_nothing():
    from chain.client.calls import set_offer

    model = bytes(range(32))
    call = set_offer([model], 5, engine_class="gpu-a", capacity=2)
    assert (list(call.models), call.price_per_token, call.capacity, call.engine_class) == ([model], 5, 2, "gpu-a")
    assert set_offer([model], 5).engine_class == ""  # cpu
    with pytest.raises(ClientError, match="engine class name is 1 to 32 lowercase"):
        set_offer([model], 5, engine_class="GPU A")
