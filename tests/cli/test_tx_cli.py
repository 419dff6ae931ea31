"""`inferchain tx CALL` through the real console entry, against a real dev node.

The commands are built from the runtime registry; the in-process tests at the end check that
every call gets one, and the value parsers against arbitrary input (hypothesis).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.cli import build_parser
from chain.cli.errors import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_USAGE, CliError
from chain.cli.tx import (
    INTEGER,
    CallOption,
    argument_fields,
    arguments_document,
    build_call,
    call_options,
    parse_enum,
    parse_hex,
    parse_integer,
    parse_value,
)
from chain.cli.output import Token
from chain.client import Client
from chain.crypto import Keypair, dev_keypair
from chain.keys import generate_key_file
from proto import types_pb2
from runtime.registry import RUNTIME
from tests.commands import inferchain, one_line_error
from tests.nodes import free_port


@pytest.fixture(scope="module")
def client(dev_node):
    with Client(dev_node.target) as client:
        yield client


def _funded_key_file(client, tmp_path, amount: int = 50_000_000) -> tuple[Keypair, str]:
    """A new key file whose account Alice funded: a sender no other test touches."""
    path, keypair = generate_key_file(tmp_path / "sender.json")
    client.transfer(dev_keypair("alice"), keypair.public_key, amount, wait=True, timeout=20)
    return keypair, str(path)


# --- transfers ------------------------------------------------------------------------


def test_transfer_wait_json_reports_inclusion_and_moves_funds(dev_node, client):
    dest = Keypair.generate()
    result = inferchain(
        "tx", "transfer", "--from", "alice", "--to", dest.address, "--amount", "3000000", "--wait",
        "--node", dev_node.target, "--output", "json",
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["status"] == "included" and document["receipt"]["success"] is True
    assert document["call"] == "transfer" and document["from"] == dev_keypair("alice").address
    assert document["arguments"] == {"dest": dest.address, "amount": "3000000"}
    assert client.account(dest).free == 3_000_000
    assert client.transaction(bytes.fromhex(document["hash"])).height == int(document["height"])


def test_transfer_without_wait_prints_the_hash(dev_node, client):
    result = inferchain("tx", "transfer", "--from", "Bob", "--to", "charlie", "--amount", "1000", "--node", dev_node.target)
    assert result.returncode == 0, result.stderr
    assert "submitted" in result.stdout and "0.000001000 INFER" in result.stdout
    transaction_hash = next(line.split()[-1] for line in result.stdout.splitlines() if line.startswith("hash"))
    assert client.wait_for_inclusion(bytes.fromhex(transaction_hash), timeout=20).receipt.success


def test_amounts_may_be_written_in_tokens(dev_node, client):
    dest = Keypair.generate()
    result = inferchain(
        "tx", "transfer", "--from", "dave", "--to", dest.public_key.hex(), "--amount", "0.002INFER",
        "--wait", "--node", dev_node.target, "--output", "json",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["arguments"]["amount"] == "2000000"
    assert client.account(dest).free == 2_000_000


def test_transfer_from_a_key_file(dev_node, client, tmp_path):
    key_file = tmp_path / "sender.json"
    assert inferchain("keys", "generate", str(key_file)).returncode == 0
    sender = json.loads(key_file.read_text())["address"]
    client.transfer(dev_keypair("alice"), sender, 50_000_000, wait=True, timeout=20)
    result = inferchain(
        "tx", "transfer", "--from", str(key_file), "--to", "dave", "--amount", "1000000", "--wait",
        "--node", dev_node.target, "--output", "json",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["from"] == sender and client.account(sender).nonce == 1


def test_transfer_with_explicit_fee_and_nonce(dev_node, client):
    nonce = client.next_nonce("eve")
    result = inferchain(
        "tx", "transfer", "--from", "eve", "--to", "ferdie", "--amount", "1000", "--fee", "50000",
        "--nonce", str(nonce), "--wait", "--node", dev_node.target, "--output", "json",
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["nonce"] == str(nonce) and document["fee"] == "50000"
    assert document["receipt"]["fee_paid"] == "50000"


# --- simulation first, and --dry-run --------------------------------------------------


def test_a_transfer_that_would_fail_is_refused_before_it_costs_a_fee(dev_node, client, tmp_path):
    sender, key_file = _funded_key_file(client, tmp_path)
    before = client.account(sender)
    # Below the existential deposit to a new account: the call would fail in its block, fee paid.
    result = inferchain(
        "tx", "transfer", "--from", key_file, "--to", Keypair.generate().address,
        "--amount", "5", "--wait", "--node", dev_node.target,
    )
    assert result.returncode == EXIT_REFUSED
    line = one_line_error(result)
    assert "not submitted" in line and "ExistentialDeposit" in line
    assert result.stdout == ""
    after = client.account(sender)
    assert (after.free, after.nonce, after.next_nonce) == (before.free, before.nonce, before.next_nonce)


def test_no_separate_simulation_is_asked_for_the_node_s_admission_is_the_check(dev_node, client, tmp_path):
    """SubmitTransaction returns the pool's dry run: `tx` sends the call once and reads the verdict (issue 23)."""
    sender, key_file = _funded_key_file(client, tmp_path)
    result = inferchain(
        "tx", "transfer", "--from", key_file, "--to", Keypair.generate().address,
        "--amount", "5", "--no-simulate", "--node", dev_node.target,
    )
    assert result.returncode == EXIT_REFUSED
    line = one_line_error(result)
    assert "transfer not submitted" in line and "ExistentialDeposit" in line
    assert client.account(sender).next_nonce == 0


def test_an_unaffordable_transfer_is_refused_in_one_line(dev_node, client):
    before = client.account("charlie")
    result = inferchain(
        "tx", "transfer", "--from", "charlie", "--to", "bob", "--amount", str(10**19), "--node", dev_node.target
    )
    assert result.returncode == EXIT_REFUSED
    line = one_line_error(result)
    assert "FAILED_PRECONDITION" in line and "balance" in line
    after = client.account("charlie")
    assert (after.free, after.next_nonce) == (before.free, before.next_nonce)


def test_dry_run_prints_verdict_fee_and_events_and_submits_nothing(dev_node, client, tmp_path):
    sender, key_file = _funded_key_file(client, tmp_path)
    result = inferchain(
        "tx", "transfer", "--from", key_file, "--to", "bob", "--amount", "1000000",
        "--dry-run", "--node", dev_node.target, "--output", "json",
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["dry_run"] is True and document["valid"] is True
    assert int(document["fee"]) == int(document["minimum_fee"]) > 0
    transfer = next(event for event in document["events"] if event["name"] == "Transfer")
    assert transfer["attributes"]["dest"] == dev_keypair("bob").address
    assert client.account(sender).next_nonce == 0


def test_dry_run_of_a_doomed_call_says_why_with_exit_1(dev_node, client):
    result = inferchain(
        "tx", "transfer", "--from", "ferdie", "--to", Keypair.generate().address, "--amount", "5",
        "--dry-run", "--node", dev_node.target,
    )
    assert result.returncode == EXIT_FAILURE, result.stderr
    assert "would fail: balances.ExistentialDeposit" in result.stdout and "no (dry run)" in result.stdout


def test_a_replayed_nonce_is_refused_in_one_line(dev_node, client):
    assert client.account("alice").nonce >= 1
    result = inferchain(
        "tx", "transfer", "--from", "alice", "--to", "bob", "--amount", "1000", "--nonce", "0",
        "--node", dev_node.target,
    )
    assert result.returncode == EXIT_REFUSED and "nonce" in one_line_error(result)


# --- the call as JSON -----------------------------------------------------------------


def test_call_json_gives_the_fields_and_options_override_them(dev_node, client):
    dest = Keypair.generate()
    call = json.dumps({"dest": dest.address, "amount": "9000000"})
    result = inferchain(
        "tx", "transfer", "--from", "bob", "--call-json", call, "--amount", "7000000", "--wait",
        "--node", dev_node.target, "--output", "json",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["arguments"] == {"dest": dest.address, "amount": "7000000"}
    assert client.account(dest).free == 7_000_000


@pytest.mark.parametrize(
    "call, words",
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        ('{"dest": "bob", "amount": "1", "memo": "x"}', "memo"),
        ('{"dest": "bob", "dest": "alice", "amount": "1"}', "twice"),
        ('{"dest": "bob", "amount": -5}', "amount"),
        ('{"dest": 7, "amount": "5"}', "string"),
        ('{"dest": "bob", "amount": "' + "9" * 1_000 + '"}', "must be at most 18446744073709551615 base units, got a 1000-digit number"),
        ("{" + " " * 110_000 + "}", "at most"),
        ("[" * 50_000 + "]" * 50_000, "nests deeper"),
        ('{"dest": "bob", "amount": "1", ' + ", ".join(f'"k{i}": 0' for i in range(6_000)) + ', "k5": 1}', "twice"),
    ],
)
def test_bad_call_json_is_a_usage_error(dev_node, call, words):
    result = inferchain("tx", "transfer", "--from", "alice", "--call-json", call, "--node", dev_node.target)
    assert result.returncode == EXIT_USAGE
    line = one_line_error(result)
    assert words in line and len(line) < 400


def test_a_missing_field_is_a_usage_error_naming_its_option(dev_node):
    result = inferchain("tx", "transfer", "--from", "alice", "--to", "bob", "--node", dev_node.target)
    assert result.returncode == EXIT_USAGE and "--amount" in one_line_error(result)


# --- bad command lines ----------------------------------------------------------------


def test_an_address_cannot_sign(dev_node):
    result = inferchain(
        "tx", "transfer", "--from", dev_keypair("bob").address, "--to", "alice", "--amount", "1", "--node", dev_node.target
    )
    assert result.returncode == EXIT_BAD_INPUT and "cannot sign" in one_line_error(result)


@pytest.mark.parametrize(
    "option, value, words",
    [
        ("--amount", "0", "can never succeed: transfer amount must be positive"),
        ("--amount", "ten", "--amount"),
        ("--amount", str(2**64), "--amount"),
        ("--amount", "1.5", "--amount"),
        ("--amount", "1.0000000001INFER", "decimals"),
        ("--fee", "-1", "--fee"),
        ("--nonce", "x", "--nonce"),
        ("--nonce", "²", "--nonce"),
    ],
)
def test_bad_numbers_are_usage_errors(dev_node, option, value, words):
    args = {"--amount": "1000", option: value}
    flat = [item for pair in args.items() for item in pair]
    result = inferchain("tx", "transfer", "--from", "alice", "--to", "bob", *flat, "--node", dev_node.target)
    assert result.returncode == EXIT_USAGE and words in one_line_error(result)


def test_an_unknown_destination_is_a_one_line_error(dev_node):
    result = inferchain("tx", "transfer", "--from", "alice", "--to", "mallory", "--amount", "1", "--node", dev_node.target)
    assert result.returncode == EXIT_BAD_INPUT and "mallory" in one_line_error(result)


def test_no_node_is_a_one_line_error_naming_the_target():
    target = f"127.0.0.1:{free_port()}"
    result = inferchain("tx", "transfer", "--from", "alice", "--to", "bob", "--amount", "1", "--node", target)
    assert result.returncode == EXIT_UNREACHABLE and target in one_line_error(result)


# --- built from the registry (in process) ----------------------------------------------


def test_every_registered_call_is_a_tx_command_with_an_option_per_field():
    parser = build_parser()
    for name, spec in RUNTIME.calls.items():
        options = call_options(spec)
        given = [item for option in options for item in (option.option, "1")]
        args = parser.parse_args(["tx", name, "--from", "alice", "--dry-run", "--call-json", "{}", *given])
        assert args.call_spec is spec and args.dry_run and args.call_json == "{}"
        assert all(getattr(args, option.dest) == (["1"] if option.repeated else "1") for option in options)


def test_tx_help_lists_every_call_with_its_doc():
    result = inferchain("tx", "--help")
    assert result.returncode == 0
    for name, spec in RUNTIME.calls.items():
        assert name in result.stdout and spec.doc.split()[0] in result.stdout
    transfer = inferchain("tx", "transfer", "--help").stdout
    assert "--to ACCOUNT" in transfer and "--amount AMOUNT" in transfer and "--dry-run" in transfer


def test_transfer_keeps_to_for_its_destination():
    options = {option.field.name: option for option in call_options(RUNTIME.calls["transfer"])}
    assert options["dest"].option == "--to" and options["dest"].kind == "account"
    assert options["amount"].option == "--amount" and options["amount"].kind == "amount"


def _option(message, name: str, kind: str) -> CallOption:
    return CallOption(message.DESCRIPTOR.fields_by_name[name], f"--{name}", kind)


def test_enums_are_read_by_name_with_or_without_their_prefix():
    field = types_pb2.VoteBody.DESCRIPTOR.fields_by_name["type"]
    assert parse_enum("precommit", "--type", field) == types_pb2.VOTE_TYPE_PRECOMMIT
    assert parse_enum("VOTE_TYPE_PREVOTE", "--type", field) == types_pb2.VOTE_TYPE_PREVOTE
    with pytest.raises(CliError, match="VOTE_TYPE_PREVOTE"):
        parse_enum("maybe", "--type", field)


def test_hex_bytes_accept_0x_and_refuse_odd_lengths():
    assert parse_hex("0xABcd", "--data") == b"\xab\xcd"
    with pytest.raises(CliError, match="hex"):
        parse_hex("abc", "--data")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_integer_options_give_a_value_in_range_or_a_usage_error(text):
    option = _option(types_pb2.VoteBody, "round", INTEGER)  # uint32
    try:
        value = parse_value(option, text, "--round")
    except CliError as error:
        assert error.exit_code == EXIT_USAGE and "--round" in str(error) and len(str(error)) < 200
        return
    assert isinstance(value, int) and 0 <= value < 2**32
    assert value == int(text.strip().replace("_", ""))


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=80), st.integers(), st.booleans(), st.none(), st.floats()))
def test_amounts_from_any_json_value_are_read_or_refused_cleanly(value):
    option = _option(types_pb2.Transfer, "amount", "amount")
    try:
        amount = parse_value(option, value, "--call-json 'amount'")
    except CliError as error:
        assert error.exit_code == EXIT_USAGE and "amount" in str(error)
        return
    assert isinstance(amount, int) and 0 <= amount < 2**64


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=-(2**70), max_value=2**70))
def test_u64_range_is_exact(number):
    try:
        value = parse_integer(str(number), "--fee", 0, 2**64 - 1)
    except CliError:
        assert not 0 <= number < 2**64
        return
    assert value == number


# --- every field kind, repeated fields and the people's names (in process) --------------------

MODEL_A, MODEL_B, MODEL_C = "aa" * 32, "bb" * 32, "cc" * 32


def _built(*argv: str):
    args = build_parser().parse_args(["tx", *argv, "--from", "alice"])
    return args.call_spec, build_call(args.call_spec, args, Token)


def test_a_repeated_field_is_given_once_per_value_or_as_a_comma_list():
    spec, call = _built("set_offer", "--model", MODEL_A, "--model", f"{MODEL_B},{MODEL_C}", "--price", "5")
    assert list(call.models) == [bytes.fromhex(MODEL_A), bytes.fromhex(MODEL_B), bytes.fromhex(MODEL_C)]
    assert arguments_document(spec, call)["models"] == [MODEL_A, MODEL_B, MODEL_C]
    assert ("model", ",".join([MODEL_A, MODEL_B, MODEL_C])) in argument_fields(spec, call, Token())


def test_offer_withdraw_and_clear_offer_are_the_registry_commands_under_shorter_names():
    spec, call = _built("offer", "--model", MODEL_A, "--price", "1INFER")
    assert spec.name == "set_offer"
    # What `tx offer` always meant: no region, capacity 1, unless given.
    assert (call.price_per_token, call.region, call.capacity) == (10**9, "", 1)
    assert _built("withdraw")[0].name == "withdraw_unbonded"
    assert _built("clear-offer")[0].name == "clear_offer"


def test_an_offer_names_its_engine_class_and_a_job_the_classes_it_accepts():
    assert _built("offer", "--model", MODEL_A, "--price", "5")[1].engine_class == ""  # cpu
    assert _built("offer", "--model", MODEL_A, "--price", "5", "--engine-class", "gpu-a")[1].engine_class == "gpu-a"
    _, call = _built("post_job", "--model", MODEL_A, "--prompt", "p", "--prompt-format", "chat", "--max-tokens", "1",
                     "--max-price-per-token", "1", "--redundancy", "1", "--region", "",
                     "--engine-classes", "cpu", "--engine-classes", "gpu-a",
                     "--call-json", json.dumps({"sampling": {"top_p_ppm": 1}}))
    assert list(call.engine_classes) == ["cpu", "gpu-a"]


def test_a_repeated_field_in_call_json_is_a_list_read_as_its_option_reads_it():
    call_json = json.dumps({"models": [MODEL_A, "0x" + MODEL_B], "region": "eu-west"})
    spec, call = _built("set_offer", "--call-json", call_json, "--price", "5")
    assert list(call.models) == [bytes.fromhex(MODEL_A), bytes.fromhex(MODEL_B)]
    assert call.region == "eu-west" and call.capacity == 1  # a default never overrides the JSON
    with pytest.raises(CliError, match="must be a JSON list"):
        _built("set_offer", "--call-json", json.dumps({"models": MODEL_A}), "--price", "5")


def test_booleans_are_true_or_false_and_the_option_alone_is_true():
    assert _built("bond", "--amount", "5", "--validate")[1].validate is True
    assert _built("bond", "--amount", "5", "--validate", "false")[1].validate is False
    assert _built("bond", "--amount", "5")[1].validate is False
    assert arguments_document(*_built("bond", "--amount", "5", "--validate", "yes"))["validate"] is True
    with pytest.raises(CliError, match="--validate must be true or false"):
        _built("bond", "--amount", "5", "--validate", "maybe")


def test_text_is_taken_as_written_never_as_hex():
    spec, call = _built("offer", "--model", MODEL_A, "--price", "5", "--region", "abcd")
    assert call.region == "abcd"


def test_bytes_fields_take_hex_and_a_text_kind_on_bytes_takes_utf8():
    from chain.cli.fields import field_options, message_document, parse_value as read
    from runtime.module import BYTES, TEXT

    options = field_options(types_pb2.RevealResult.DESCRIPTOR, {"salt": BYTES, "job_id": TEXT})
    by_name = {option.field.name: option for option in options}
    assert (by_name["salt"].kind, by_name["job_id"].kind) == (BYTES, TEXT)
    assert read(by_name["salt"], "0x00ff", "--salt") == b"\x00\xff"
    assert read(by_name["job_id"], "ab", "--job-id") == b"ab"  # UTF-8, not the byte 0xab
    shown = message_document(types_pb2.RevealResult(job_id="é".encode(), salt=b"\x01"), {"job_id": TEXT})
    assert (shown["job_id"], shown["salt"]) == ("é", "01")
    with pytest.raises(CliError, match="hex digits"):
        read(by_name["salt"], "zz", "--salt")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="0123456789abcdefx,", max_size=70), max_size=4))
def test_repeated_hex_values_are_read_or_refused_cleanly(values):
    from chain.cli.fields import parse_values

    option = next(option for option in call_options(RUNTIME.calls["set_offer"]) if option.field.name == "models")
    try:
        models = parse_values(option, values, "--model")
    except CliError as error:
        assert error.exit_code == EXIT_USAGE and "--model" in str(error)
        return
    assert all(isinstance(model, bytes) for model in models)


def test_a_call_field_named_like_a_command_option_gets_a_field_option_instead():
    import argparse
    from dataclasses import replace

    from chain.cli import tx as tx_cli
    from runtime.module import CallSpec
    from runtime.registry import Runtime

    # TransactionBody has fields named nonce and fee, as `tx` has options: a module's call may too.
    spec = CallSpec(name="odd", message=types_pb2.TransactionBody, doc="A call with awkward field names.",
                    handler=lambda state, origin, call: None)
    module = replace(RUNTIME.modules[0], name="odd", calls=(spec,), queries=())
    parser = argparse.ArgumentParser()
    tx_cli.register(parser.add_subparsers(), runtime=Runtime(modules=(module,)))
    args = parser.parse_args(["tx", "odd", "--from", "alice", "--fee", "5", "--field-fee", "7", "--field-nonce", "2"])
    assert (args.fee, args.field_fee, args.field_nonce) == ("5", "7", "2")
    assert {option.option for option in call_options(spec)} >= {"--field-fee", "--field-nonce", "--sender"}


def test_a_nested_message_round_trips_from_the_json_output_to_call_json():
    from tests.runtime.market import MODEL

    proposal = types_pb2.ProposeModel(model=MODEL)
    # A proposal names the file validators fetch (runtime/models.py check_fetchable).
    proposal.model.source, proposal.model.size_bytes = "https://example.com/model.gguf", 1
    spec = RUNTIME.calls["propose_model"]
    shown = arguments_document(spec, proposal)
    assert shown["model"]["id"] == MODEL.id.hex()  # bytes in nested messages are hex, as at the top level
    assert _built("propose_model", "--call-json", json.dumps(shown))[1] == proposal
    with pytest.raises(CliError, match="--call-json 'model' 'id' must be hex digits"):
        _built("propose_model", "--call-json", json.dumps({"model": {**shown["model"], "id": "not hex"}}))
