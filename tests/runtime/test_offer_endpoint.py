"""runtime/staking/offers.py: an offer's endpoint (where its executor's tokens stream) is checked, stored,
announced, set at genesis, and free of the offer lock when it is all that changes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proto import types_pb2
from runtime import staking
from runtime.executive import InvalidCall, check_transaction, transaction_rules
from runtime.module import GenesisContext, GenesisInvalid
from runtime.staking.errors import InvalidOffer
from runtime.staking.genesis import export_genesis, parse_genesis
from runtime.staking.offers import MAX_ENDPOINT_BYTES, OFFER_SET_PREFIX, check_endpoint, offer_set_height
from tests.runtime.market import EXECUTORS, MODEL_ID, PRICES, STAKING, Market, executor_stake

CONTEXT = GenesisContext("endpoint-test", b"\x01" * 32, 1_700_000_000_000, 1, bytes.fromhex)
PRINTABLE = "".join(chr(c) for c in range(0x21, 0x7F))


def offer(price: int = PRICES[0], capacity: int = 1, region: str = "", endpoint: str = "",
          models=(MODEL_ID,)) -> dict:
    return dict(set_offer=types_pb2.SetOffer(models=list(models), price_per_token=price, region=region,
                                             capacity=capacity, endpoint=endpoint))


def refused(endpoint: str) -> bool:
    try:
        check_endpoint(endpoint, InvalidOffer)
    except InvalidOffer:
        return True
    return False


# -- check_endpoint -------------------------------------------------------------------------------


@given(
    host=st.text(alphabet=PRINTABLE, min_size=1, max_size=200),
    port=st.integers(min_value=1, max_value=65_535),
)
def test_any_printable_host_and_a_port_from_1_to_65535_is_an_endpoint(host, port):
    endpoint = f"{host}:{port}"
    assert refused(endpoint) == (len(endpoint) > MAX_ENDPOINT_BYTES)


@given(st.text(max_size=300))
def test_an_endpoint_is_accepted_exactly_when_it_is_empty_or_a_bounded_printable_host_and_canonical_port(text):
    host, colon, port = text.rpartition(":")
    valid = text == "" or (
        len(text) <= MAX_ENDPOINT_BYTES
        and all(c in PRINTABLE for c in text)
        and bool(colon) and bool(host)
        and port.isascii() and port.isdigit() and port == str(int(port)) and 1 <= int(port) <= 65_535
    )
    assert refused(text) == (not valid)


@pytest.mark.parametrize("endpoint", [
    "node.example:0", "node.example:65536", "node.example:050051", "node.example:+80", "node.example:-1",
    "node.example:８０", "node.example:²", ":50051", "node.example", "node.example:", "node example:80",
    "node.example:80 ", "\tnode:80", "nöde:80", "node:80\n", "a" * 250 + ":50051",
])
def test_a_malformed_endpoint_is_refused_naming_the_rule(endpoint):
    with pytest.raises(InvalidOffer, match="endpoint"):
        check_endpoint(endpoint, InvalidOffer)


@pytest.mark.parametrize("endpoint", ["", "127.0.0.1:50051", "[::1]:50051", "node-1.example.org:443", "h:1"])
def test_a_host_and_port_or_nothing_is_an_endpoint(endpoint):
    check_endpoint(endpoint, InvalidOffer)


def test_a_huge_endpoint_is_refused_by_its_length_with_a_short_message():
    with pytest.raises(InvalidOffer) as refusal:
        check_endpoint("x" * 1_000_000 + ":1", InvalidOffer)
    assert len(str(refusal.value)) < 120


def test_an_offer_with_a_malformed_endpoint_is_refused_before_the_fee():
    market = Market.create()
    with pytest.raises(InvalidCall, match="endpoint"):
        check_transaction(market.transaction(EXECUTORS[0], **offer(endpoint="no port")), transaction_rules(market.state))


# -- set_offer ------------------------------------------------------------------------------------


def test_the_endpoint_is_stored_and_announced_in_the_offer_set_event():
    market = Market.create()
    receipt = market.ok(EXECUTORS[0], **offer(price=1_500, endpoint="node.example:50051"))
    assert staking.read_offer(market.state, EXECUTORS[0].public_key).endpoint == "node.example:50051"
    [event] = [event for event in receipt.events if event.name == "OfferSet"]
    attributes = {attribute.key: attribute.value for attribute in event.attributes}
    assert attributes["endpoint"] == "node.example:50051"
    assert list(attributes)[-2:] == ["endpoint", "engine_class"]
    assert attributes["engine_class"] == "cpu"


def test_an_endpoint_alone_changes_inside_the_lock_and_does_not_restart_it():
    market = Market.create()
    market.ok(EXECUTORS[0], **offer(price=1_500))
    set_at = market.height
    market.ok(EXECUTORS[0], **offer(price=1_500, endpoint="a.example:1"))
    market.ok(EXECUTORS[0], **offer(price=1_500, endpoint="b.example:2"))
    assert staking.read_offer(market.state, EXECUTORS[0].public_key).endpoint == "b.example:2"
    assert offer_set_height(market.state, EXECUTORS[0].public_key) == set_at
    market.advance_to(set_at + STAKING.offer_lock_blocks - 1)
    market.ok(EXECUTORS[0], **offer(price=4_000, endpoint="b.example:2"))  # the lock ran from the price, not the endpoint


@pytest.mark.parametrize("change", [dict(price=1_600), dict(capacity=2), dict(region="eu-west")])
def test_an_endpoint_with_any_other_change_is_held_by_the_lock_and_changes_nothing(change):
    market = Market.create()
    market.ok(EXECUTORS[0], **offer(price=1_500))
    before = staking.read_offer(market.state, EXECUTORS[0].public_key)
    terms = dict(price=1_500) | change
    receipt = market.call(EXECUTORS[0], **offer(endpoint="node.example:50051", **terms))
    assert receipt.error_name == "OfferLocked"
    assert staking.read_offer(market.state, EXECUTORS[0].public_key) == before


def test_an_unchanged_offer_is_still_held_by_the_lock():
    market = Market.create()
    market.ok(EXECUTORS[0], **offer(price=1_500, endpoint="node.example:50051"))
    assert market.call(EXECUTORS[0], **offer(price=1_500, endpoint="node.example:50051")).error_name == "OfferLocked"


def test_after_clearing_an_endpoint_change_is_a_new_offer_and_held_by_the_lock():
    market = Market.create()
    market.ok(EXECUTORS[0], **offer(price=1_500))
    market.ok(EXECUTORS[0], clear_offer=types_pb2.ClearOffer())
    assert market.call(EXECUTORS[0], **offer(price=1_500, endpoint="node.example:50051")).error_name == "OfferLocked"


def test_a_genesis_offer_takes_a_new_endpoint_at_once_and_its_terms_stay_unlocked():
    market = Market.create()  # EXECUTORS[0] offers at PRICES[0] from genesis, unlocked
    market.ok(EXECUTORS[0], **offer(endpoint="node.example:50051"))
    assert market.state.get(OFFER_SET_PREFIX + EXECUTORS[0].public_key) is None
    market.ok(EXECUTORS[0], **offer(price=PRICES[0] + 1, endpoint="node.example:50051"))


# -- genesis --------------------------------------------------------------------------------------


def genesis_section(**offer_fields) -> dict:
    return {"stakes": [{
        "address": EXECUTORS[0].public_key.hex(),
        "bonded": str(STAKING.min_bond),
        "offer": {"models": [MODEL_ID.hex()], "price_per_token": "1000", **offer_fields},
    }]}


def test_a_genesis_offer_may_carry_an_endpoint():
    config = parse_genesis(genesis_section(endpoint="node.example:50051"), CONTEXT)
    assert config.stakes[0].offer.endpoint == "node.example:50051"
    assert parse_genesis(genesis_section(), CONTEXT).stakes[0].offer.endpoint == ""


@pytest.mark.parametrize("endpoint", [50051, "node.example", "x" * 300 + ":1"])
def test_a_genesis_offer_with_a_malformed_endpoint_is_refused_naming_it(endpoint):
    with pytest.raises(GenesisInvalid, match=r"stakes\[0\]\.offer.*endpoint"):
        parse_genesis(genesis_section(endpoint=endpoint), CONTEXT)


def test_a_genesis_offer_endpoint_is_set_and_exported():
    stake = executor_stake(EXECUTORS[0], 1_000)
    stake.offer.endpoint = "node.example:50051"
    market = Market.create(executors=(stake,))
    assert staking.read_offer(market.state, EXECUTORS[0].public_key).endpoint == "node.example:50051"
    [exported] = [entry for entry in export_genesis(market.state)["stakes"] if "offer" in entry]
    assert exported["offer"]["endpoint"] == "node.example:50051"
