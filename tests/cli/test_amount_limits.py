"""Amounts that can exist at scale, and numbers past their limit refused naming it (issue 24 item 8, issue 29 item 4).

Amounts are u64 base units at 9 decimals: the supply can reach 18,446,744,073.709551615 INFER, so a
genesis of 10^9 INFER and more loads. Every number read from a person (genesis.json, CLI options, amounts
in tokens) that is past its limit is refused with a message that names the limit and says the number
whole or by its length, never a cut prefix that reads as a smaller, valid value (a genesis balance of
10^27 was once refused quoting '100000000000000000000000', 24 digits).
"""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.cli.errors import EXIT_BAD_INPUT, EXIT_USAGE, CliError
from chain.cli.fields import parse_amount_value, parse_integer
from chain.cli.output import DEFAULT_TOKEN_DECIMALS, Token, parse_amount
from chain.genesis import GenesisError, dev_genesis_document, load_genesis, parse_genesis
from chain.text import quote_input, quote_number
from runtime import balances, staking, system
from runtime.arithmetic import U32_MAX, U64_MAX
from runtime.params import ParamsInvalid
from runtime.params import parse_integer as genesis_integer
from tests.commands import ROOT, inferchain, one_line_error
from tests.nodes import free_port

INFER = 10**9  # base units in one INFER at the chain's 9 decimals
LIMIT = str(U64_MAX)
over_u64 = st.one_of(st.integers(U64_MAX + 1, 10**24), st.integers(10**24, 10**200))


class _Reader:
    def __init__(self, state: dict[bytes, bytes]):
        self.state = state

    def get(self, key: bytes) -> bytes | None:
        return self.state.get(key)


def _says_the_number_whole_or_by_its_length(message: str, number: int) -> bool:
    text = str(number)
    return text in message or f"a {len(text)}-digit number" in message


def _cut_prefix_quoted(message: str, number: int) -> bool:
    """Whether the message holds a run of digits that is a shorter prefix of the number: a cut quote."""
    text = str(number)
    return any(len(run) < len(text) and text.startswith(run) and len(run) > len(LIMIT) - 4
               for run in re.findall(r"[0-9]+", message))


# -- the token and the supply --------------------------------------------------------------------


def test_the_chain_has_9_decimals_and_the_supply_cap_is_18_billion_infer():
    assert balances.Params().token_decimals == DEFAULT_TOKEN_DECIMALS == 9
    assert Token().format(U64_MAX) == "18446744073.709551615 INFER"


def test_the_committed_genesis_issues_6_billion_infer_and_every_model_can_fill_its_executors():
    document = json.loads((ROOT / "genesis.json").read_text())
    assert document["app_state"]["balances"]["params"]["token_decimals"] == 9
    genesis = load_genesis(ROOT / "genesis.json")
    supply = system.read_supply(_Reader(genesis.state()))
    assert supply.total_issuance == 6 * 10**9 * INFER >= 10**9 * INFER
    params = document["app_state"]["staking"]["params"]
    min_bond = int(params["min_bond"])
    assert min_bond == staking.Params().min_bond == 1_000 * INFER
    # 1,000 executors of one model, each at the minimum bond: 10^6 INFER, about 0.005% of the supply cap.
    assert params["max_executors_per_model"] * min_bond == 10**6 * INFER
    assert params["max_executors_per_model"] * min_bond * 10_000 <= U64_MAX


def test_a_genesis_of_the_whole_u64_supply_loads_and_one_unit_more_is_refused_naming_the_limit():
    document = dev_genesis_document()
    entries = document["app_state"]["balances"]["balances"]
    rest = sum(int(entry["amount"]) for entry in entries[1:])
    entries[0]["amount"] = str(U64_MAX - rest)
    genesis = parse_genesis(document)
    assert system.read_supply(_Reader(genesis.state())).total_issuance == U64_MAX  # 18.4 billion INFER

    entries[0]["amount"] = str(U64_MAX - rest + 1)
    with pytest.raises(GenesisError) as refused:
        parse_genesis(document)
    message = str(refused.value)
    assert message.startswith("app_state.balances.balances: the total issuance must be at most "
                              f"{LIMIT} base units (2^64-1, 18446744073.709551615 INFER), got 18446744073709551616")


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(2**62, U64_MAX), min_size=2, max_size=6))
def test_a_total_issuance_past_a_u64_is_refused_naming_the_limit(amounts):
    document = dev_genesis_document()
    entries = document["app_state"]["balances"]["balances"]
    for entry, amount in zip(entries, amounts):
        entry["amount"] = str(amount)
    total = sum(int(entry["amount"]) for entry in entries)
    if total <= U64_MAX:
        parse_genesis(document)
        return
    with pytest.raises(GenesisError, match=f"the total issuance must be at most {LIMIT} base units") as refused:
        parse_genesis(document)
    assert str(total) in str(refused.value)


# -- genesis numbers past their limit ------------------------------------------------------------


def test_the_issue_s_genesis_balance_of_10_27_names_the_limit_not_a_cut_number():
    document = dev_genesis_document()
    document["app_state"]["balances"]["balances"][0]["amount"] = str(10**27)
    with pytest.raises(GenesisError) as refused:
        parse_genesis(document)
    assert str(refused.value) == (f"app_state.balances.balances[0].amount must be in [0, 2^64): at most {LIMIT} "
                                  "base units, got a 28-digit number")


@settings(max_examples=60, deadline=None)
@given(number=over_u64, zeros=st.integers(0, 3), as_json_number=st.booleans(),
       where=st.sampled_from([("balances", "balances", 0, "amount"), ("staking", "stakes", 0, "bonded"),
                              ("staking", "params", "min_bond"), ("system", "params", "base_fee")]))
def test_a_genesis_number_past_u64_is_refused_naming_the_limit(number, zeros, as_json_number, where):
    document = json.loads(json.dumps(dev_genesis_document()))
    section = document["app_state"]
    for key in where[:-1]:
        section = section[key]
    # 64-bit integers are strings of digits in genesis.json; plain JSON numbers are accepted too.
    section[where[-1]] = number if as_json_number else "0" * zeros + str(number)
    with pytest.raises(GenesisError) as refused:
        parse_genesis(document)
    message = str(refused.value)
    assert f"at most {LIMIT}" in message, message
    assert _says_the_number_whole_or_by_its_length(message, number), message
    assert not _cut_prefix_quoted(message, number), message
    assert len(message) < 300


def test_genesis_validate_of_a_10_27_balance_is_one_line_naming_the_limit(tmp_path):
    document = dev_genesis_document()
    document["app_state"]["balances"]["balances"][0]["amount"] = str(10**27)
    path = tmp_path / "genesis.json"
    path.write_text(json.dumps(document))
    result = inferchain("genesis", "validate", str(path))
    assert result.returncode == EXIT_BAD_INPUT
    line = one_line_error(result)
    assert f"must be in [0, 2^64): at most {LIMIT} base units, got a 28-digit number" in line
    assert "100000000000000000000000" not in line


# -- CLI integers and amounts past their limit -----------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(number=over_u64, underscores=st.booleans())
def test_a_cli_integer_past_its_range_names_the_range_and_never_a_cut_number(number, underscores):
    text = f"{number:_}" if underscores else str(number)
    with pytest.raises(CliError) as refused:
        parse_integer(text, "--nonce", 0, U64_MAX)
    message = str(refused.value)
    assert refused.value.exit_code == EXIT_USAGE
    assert message.startswith(f"--nonce must be from 0 to {LIMIT}, got "), message
    assert _says_the_number_whole_or_by_its_length(message, number), message
    assert not _cut_prefix_quoted(message, number), message


@settings(max_examples=200, deadline=None)
@given(text=st.one_of(st.integers(-(10**30), 10**30).map(str), st.text("0123456789", max_size=30),
                      st.text("0123456789+-_ x٣", max_size=12)),
       limit=st.sampled_from([1, 100, U32_MAX, U64_MAX]))
def test_the_cli_and_genesis_read_an_integer_by_one_rule(text, limit):
    """A number both accept (digits only) gets the same value from both; refused, both describe it alike."""
    try:
        by_genesis = genesis_integer(text, "field", limit)
    except ParamsInvalid as error:
        by_genesis = error
    try:
        by_cli = parse_integer(text, "--field", 0, limit)
    except CliError as error:
        by_cli = error
    if isinstance(by_genesis, int):
        assert by_cli == by_genesis
    elif text.isascii() and text.isdigit():  # the text is digits: only the range can refuse it, in both
        assert isinstance(by_cli, CliError)
        assert str(by_genesis).rsplit(", got ", 1)[1] == str(by_cli).rsplit(", got ", 1)[1]


@settings(max_examples=80, deadline=None)
@given(number=over_u64)
def test_an_amount_in_base_units_past_u64_names_the_limit(number):
    def no_node():
        raise AssertionError("a plain number is read without asking the node for its token")

    with pytest.raises(CliError) as refused:
        parse_amount_value(str(number), "--amount", no_node, U64_MAX)
    message = str(refused.value)
    assert message.startswith(f"--amount must be at most {LIMIT} base units, got "), message
    assert _says_the_number_whole_or_by_its_length(message, number), message
    assert not _cut_prefix_quoted(message, number), message


@settings(max_examples=80, deadline=None)
@given(whole=st.integers(18_446_744_074, 10**60), fraction=st.integers(0, 10**9 - 1))
def test_an_amount_in_tokens_past_the_supply_names_the_largest_amount(whole, fraction):
    text = f"{whole}.{fraction:09d} INFER"
    with pytest.raises(ValueError) as refused:
        parse_amount(text, 9, "INFER")
    message = str(refused.value)
    assert "the largest amount" in message and "18446744073.709551615 INFER" in message, message
    assert not _cut_prefix_quoted(message, whole), message


def test_the_largest_amount_in_tokens_is_read_exactly():
    assert parse_amount("18446744073.709551615 INFER", 9, "INFER") == U64_MAX
    assert parse_amount("1_000 INFER", 9, "INFER") == staking.Params().min_bond


@settings(max_examples=60, deadline=None)
@given(digits=st.integers(49, 5_000), fraction=st.booleans())
def test_quoting_a_long_number_describes_it_instead_of_cutting_it(digits, fraction):
    text = "7" * digits + (".5" if fraction else "")
    quoted = quote_number(text)
    assert "7" * 20 not in quoted
    assert (f"{digits} digits before the point" if fraction else f"a {digits}-digit number") in quoted


def test_quoting_a_long_word_still_shows_its_prefix():
    assert quote_input("x" * 100).startswith("'xxxx") and "(100 characters)" in quote_input("x" * 100)


def test_tx_transfer_of_a_28_digit_amount_is_one_line_naming_the_limit():
    # No node listens there: the amount is refused before anything is asked of a node.
    result = inferchain("tx", "transfer", "--from", "alice", "--to", "bob", "--amount", str(10**27),
                        "--node", f"127.0.0.1:{free_port()}")
    assert result.returncode == EXIT_USAGE
    line = one_line_error(result)
    assert f"--amount must be at most {LIMIT} base units, got a 28-digit number" in line


def test_infer_max_tokens_past_u64_names_the_limit_not_a_cut_number():
    # Refused before the model loads; the number was once quoted as its first 24 digits.
    result = inferchain("infer", "hi", "--max-tokens", str(10**30))
    assert result.returncode == EXIT_USAGE
    line = one_line_error(result)
    assert line == "error: max_tokens must be an integer from 1 to 2^64 - 1, got a 31-digit number"


def test_infer_seed_past_u64_names_the_limit():
    result = inferchain("infer", "hi", "--seed", str(10**70))
    assert result.returncode == EXIT_USAGE
    assert "the seed must be from 0 to 18446744073709551615, got a 71-digit number" in result.stderr
    assert "1" + "0" * 30 not in result.stderr
