"""The fault suite (issue 28): a 4-validator devnet of real processes, broken one way per test.

Each test runs one case of tests/faults/cases.py at the QUICK sizes on one shared devnet
(127.0.0.2-5, 400 ms blocks, --no-worker), made healthy again before each case (or rebuilt when
a case left a validator slashed or finality stuck). Every case asserts that no honest validator
double-signs (no evidence in a block, no `double-sign by` naming one in a log, no stake slashed or
jailed), that no two nodes hold different blocks at one height, that finality continues (or
resumes within the case's bound once quorum is back), and that no node's resident memory passes
1 GiB; and what the case is about. A failing case prints what it saw and the nodes' log tails.

The longer version: `.venv/bin/python bench/faults.py` (docs/operator.md, "Fault testing").
"""

from __future__ import annotations

import pytest

from tests.faults.cases import QUICK, NetHolder, attempts, run_case
from tests.faults.devnet import FaultNet

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def devnets(tmp_path_factory):
    base = tmp_path_factory.mktemp("faults")
    holder = NetHolder(lambda number: FaultNet(base / f"devnet{number}"))
    yield holder
    holder.close()


def check(devnets: NetHolder, name: str) -> None:
    """Run case `name` (more than once for the ones that double-sign by chance); fail on its first failing run."""
    for attempt in range(attempts(name, QUICK)):
        result = run_case(devnets, name, QUICK)
        print(f"attempt {attempt + 1}: {result.summary()}")
        assert result.passed, result.details()


def test_a_validator_killed_with_sigkill_rejoins_and_signs_while_the_rest_go_on(devnets):
    check(devnets, "kill_9")


def test_a_paused_validator_catches_up_and_signs_after_sigcont(devnets):
    check(devnets, "pause")


def test_an_isolated_validator_rejoins_without_double_signing(devnets):
    check(devnets, "isolate")


def test_a_vote_flood_from_a_non_validator_is_not_relayed_and_finality_goes_on(devnets):
    check(devnets, "vote_flood")


def test_a_peer_lying_about_its_height_does_not_stall_a_lagging_validator(devnets):
    check(devnets, "lying_status")


def test_authenticated_strangers_in_every_peer_slot_do_not_keep_a_restarted_validator_out(devnets):
    check(devnets, "strangers")


def test_half_open_streams_do_not_keep_a_restarted_validator_out(devnets):
    check(devnets, "half_open")


def test_a_tx_announce_flood_does_not_stop_transaction_gossip(devnets):
    check(devnets, "announce_flood")


def test_oversized_api_requests_keep_memory_bounded_and_the_api_answering(devnets):
    check(devnets, "oversized_requests")


def test_a_validator_restarted_from_an_empty_database_resyncs_without_double_signing(devnets):
    check(devnets, "empty_database")


def test_a_validator_whose_clock_was_skewed_then_fixed_does_not_double_sign(devnets):
    check(devnets, "clock_skew")
