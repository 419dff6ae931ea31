"""`inferchain job status|watch|challenge`, `query disputes|slashes` and `tx unjail` through the real console
entry, on disputes opened and judged by the real runtime, against a chain served in this process.

The chain (tests/chain/test_disputes_api.py DisputeChain) has three validators offering the embedded model;
its genesis turns random audits off (so a settled job stays challengeable whatever the mix) and jails for
JAIL_BLOCKS. The fixture leaves three jobs: JUDGED, whose executors revealed "honest" and "forged" and whose
committee judged the forged result invalid (the forger slashed and jailed); SETTLED, a redundancy-1 job that
settled on "honest"; OPEN, disputed the same way with its committee drawn and not yet voting. The
tests run in file order: the dispute of OPEN stays open (its commit phase is VOTE_COMMIT_BLOCKS long) until
the last tests make blocks. No test loads the model.
"""

from __future__ import annotations

import json

import pytest

from chain.cli.errors import EXIT_BAD_INPUT, EXIT_REFUSED, EXIT_USAGE
from chain.cli.job import dispute_lines
from chain.client import Client
from chain.crypto import dev_keypair
from chain.genesis import dev_genesis_document, parse_genesis
from proto import state_pb2
from runtime.staking.storage import read_ledger
from tests.chain.test_disputes_api import FORGED, HONEST, VALIDATORS, honest, serving
from tests.commands import inferchain, one_line_error

JAIL_BLOCKS = 12
# Long enough for the open dispute to stay open while the fixture judges another (about 15 blocks).
VOTE_COMMIT_BLOCKS = 40
NAMES = {dev_keypair(name).public_key: name for name in VALIDATORS}
CHALLENGER = dev_keypair("eve")
MIN_BOND = 10**11  # the dev genesis' min_challenge_bond: 100 INFER


def cli_genesis():
    document = dev_genesis_document(validator_names=VALIDATORS)
    document["app_state"]["disputes"]["params"]["audit_probability_ppm"] = 0
    document["app_state"]["disputes"]["params"]["vote_commit_blocks"] = str(VOTE_COMMIT_BLOCKS)
    document["app_state"]["slashing"]["params"]["jail_blocks"] = str(JAIL_BLOCKS)
    return parse_genesis(document)


def chain_open(chain, dispute_id: bytes) -> bool:
    return chain.dispute(dispute_id).status == state_pb2.DISPUTE_STATUS_COMMITTING


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    with serving(cli_genesis(), tmp_path_factory.mktemp("dispute-cli")) as running:
        # The open dispute first: once the forger of JUDGED is jailed, no validator is left to judge another.
        opened = running.disputed()
        running.draw_committee(opened.id)
        settled = running.run(running.post_and_draw(1), (HONEST,))
        assert settled.status == state_pb2.JOB_STATUS_SETTLED
        judged = running.disputed()
        running.draw_committee(judged.id)
        running.judge(judged.id, honest)
        assert chain_open(running, opened.id)
        running.ids = {"judged": judged.id.hex(), "settled": settled.id.hex(), "open": opened.id.hex()}
        running.forger = judged.assignments[1].executor
        yield running


def run(chain, *args: str):
    return inferchain(*args, "--node", chain.target)


def as_json(result) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def field_values(stdout: str, name: str) -> list[str]:
    """The values of the `name  value` lines `job status` printed."""
    return [line[len(name):].strip() for line in stdout.splitlines() if line.split("  ")[0] == name]


# --- job status and watch -------------------------------------------------------------------


def test_status_of_an_open_dispute_shows_it_and_no_answer(chain):
    text = run(chain, "job", "status", chain.ids["open"])
    assert text.returncode == 0, text.stderr
    assert field_values(text.stdout, "status") == ["disputed"]
    assert field_values(text.stdout, "dispute") == [f"digests: the revealed results differ; opened at height "
                                                    f"{chain.dispute(bytes.fromhex(chain.ids['open'])).opened_height}"]
    assert field_values(text.stdout, "dispute status")[0].startswith("committing: votes committed by height ")
    [committee] = field_values(text.stdout, "committee")
    assert committee.startswith("1 (0 committed, 0 revealed), drawn at height ")
    [seat] = field_values(text.stdout, "member")
    assert "not committed, not revealed" in seat
    assert field_values(text.stdout, "verdict #0")[0].startswith("pending (")
    assert field_values(text.stdout, "answer")[0].startswith("none yet")
    # Neither revealed text is shown as the job's answer while the committee has not judged them.
    assert HONEST not in text.stdout and FORGED not in text.stdout
    document = as_json(run(chain, "job", "status", chain.ids["open"], "--output", "json"))
    assert document["status"] == "disputed" and not {"text", "result", "tokens"} & set(document)
    dispute = document["dispute"]
    assert dispute["reason"] == "digests" and dispute["status"] == "committing"
    assert [candidate["verdict"] for candidate in dispute["candidates"]] == ["pending", "pending"]
    assert [member["committed"] for member in dispute["committee"]] == [False] and document["slashes"] == []


def test_status_of_a_judged_job_shows_committee_verdicts_slashes_and_the_valid_answer(chain):
    forger = dev_keypair(NAMES[chain.forger]).address
    text = run(chain, "job", "status", chain.ids["judged"])
    assert text.returncode == 0, text.stderr
    assert field_values(text.stdout, "status") == ["settled"]
    assert field_values(text.stdout, "verdict #0")[0].startswith("valid (")
    assert field_values(text.stdout, "verdict #1") == [f"invalid ({forger})"]
    assert field_values(text.stdout, "dispute status")[0].startswith("decided at height ")
    [seat] = field_values(text.stdout, "member")
    assert "committed, revealed: #0 valid (0 misses in 4 positions); #1 invalid (4 misses in 4 positions)" in seat
    assert any(line.startswith(f"{forger} invalid_result at height ") and "jailed until height" in line
               for line in field_values(text.stdout, "slash"))
    assert field_values(text.stdout, "text") == [HONEST] and FORGED not in text.stdout
    document = as_json(run(chain, "job", "status", chain.ids["judged"], "--output", "json"))
    assert document["text"] == HONEST and document["result"]["text"] == HONEST
    assert [executor["verdict"] for executor in document["executors"]] == ["valid", "invalid"]
    assert [candidate["verdict"] for candidate in document["dispute"]["candidates"]] == ["valid", "invalid"]
    assert document["dispute"]["candidates"][1]["executor"] == forger
    offences = {(slash["address"], slash["offence"]) for slash in document["slashes"]}
    assert (forger, "invalid_result") in offences and all(address == forger for address, _ in offences)


def test_watch_of_a_judged_job_prints_the_valid_answer(chain):
    watched = run(chain, "job", "watch", chain.ids["judged"])
    assert watched.returncode == 0, watched.stderr
    assert watched.stdout == f"{HONEST}\n"
    assert "dispute decided at height " in watched.stderr and "#0 valid, #1 invalid" in watched.stderr


def test_progress_lines_follow_a_dispute_from_its_draw_to_its_verdict():
    drawn = state_pb2.Dispute(reason=state_pb2.DISPUTE_REASON_CHALLENGE, status=state_pb2.DISPUTE_STATUS_COMMITTING,
                              draw_height=9, commit_deadline=29, candidates=[0])
    drawn.committee.add(account=b"\x01" * 32, stake=5)
    revealing = state_pb2.Dispute()
    revealing.CopyFrom(drawn)
    revealing.status, revealing.reveal_deadline = state_pb2.DISPUTE_STATUS_REVEALING, 40
    revealing.committee[0].commitment = b"\x02" * 32
    decided = state_pb2.Dispute()
    decided.CopyFrom(revealing)
    decided.status, decided.decided_height, decided.outcome = state_pb2.DISPUTE_STATUS_DECIDED, 33, "all valid"
    decided.committee[0].revealed = True
    decided.verdicts.append(state_pb2.CANDIDATE_VERDICT_VALID)
    assert dispute_lines(None, None) == [] and dispute_lines(drawn, drawn) == []
    assert dispute_lines(None, drawn) == ["dispute opened (challenge): committee drawn at height 9",
                                          "committee drawn: 1 members, commitments by height 29"]
    assert dispute_lines(drawn, revealing) == ["votes committed: 1 of 1", "votes revealing: reveals by height 40"]
    assert dispute_lines(revealing, decided) == ["votes revealed: 1 of 1",
                                                 "dispute decided at height 33: #0 valid; all valid"]


# --- query disputes and slashes ---------------------------------------------------------------


def test_query_disputes_lists_every_open_and_waiting_dispute(chain):
    every = as_json(run(chain, "query", "disputes", "--output", "json"))
    assert [dispute["id"] for dispute in every["disputes"]] == sorted([chain.ids["judged"], chain.ids["open"]])
    assert every["more"] is False
    opened = as_json(run(chain, "query", "disputes", "--open", "--output", "json"))
    assert [dispute["id"] for dispute in opened["disputes"]] == [chain.ids["open"]]
    [seat] = chain.dispute(bytes.fromhex(chain.ids["open"])).committee
    waiting = as_json(run(chain, "query", "disputes", "--member", NAMES[seat.account], "--output", "json"))
    assert [dispute["id"] for dispute in waiting["disputes"]] == [chain.ids["open"]]
    idle = as_json(run(chain, "query", "disputes", "--member", "dave", "--output", "json"))
    assert idle == {"disputes": [], "more": False}
    table = run(chain, "query", "disputes", "--limit", "1")
    assert table.returncode == 0 and table.stdout.startswith("dispute ") and "digests" in table.stdout
    assert f"more: --after {min(chain.ids['judged'], chain.ids['open'])}" in table.stdout
    after = as_json(run(chain, "query", "disputes", "--after", min(chain.ids["judged"], chain.ids["open"]),
                        "--output", "json"))
    assert [dispute["id"] for dispute in after["disputes"]] == [max(chain.ids["judged"], chain.ids["open"])]
    assert run(chain, "query", "disputes", "--member", "dave").stdout == "no open disputes\n"
    # The disputes module's own queries stay reachable under the same command.
    module = as_json(run(chain, "query", "disputes", "dispute", "--job-id", chain.ids["open"], "--output", "json"))
    assert module["response"]["id"] == chain.ids["open"]


def test_query_slashes_of_the_forger_and_of_everyone(chain):
    forger = dev_keypair(NAMES[chain.forger])
    mine = as_json(run(chain, "query", "slashes", NAMES[chain.forger], "--output", "json"))["slashes"]
    assert mine and all(slash["address"] == forger.address for slash in mine)
    assert "invalid_result" in [slash["offence"] for slash in mine]
    assert all(slash["job"] == chain.ids["judged"] for slash in mine)
    every = as_json(run(chain, "query", "slashes", "--output", "json"))["slashes"]
    assert every == mine  # nobody else was punished
    table = run(chain, "query", "slashes", forger.address)
    assert table.returncode == 0 and "invalid_result" in table.stdout and "INFER" in table.stdout
    assert run(chain, "query", "slashes", "dave").stdout == f"no slashes of {dev_keypair('dave').address}\n"


@pytest.mark.parametrize(
    "args, code, message",
    [
        (("disputes", "--limit", "0"), EXIT_USAGE, "--limit must be from 1 to 100"),
        (("disputes", "--limit", "lots"), EXIT_USAGE, "--limit must be a whole number"),
        (("disputes", "--after", "zz"), EXIT_USAGE, "--after: 'zz' is not a dispute id (64 hex digits)"),
        (("disputes", "--member", "nobody-known"), EXIT_BAD_INPUT, "nobody-known"),
        (("slashes", "nobody-known"), EXIT_BAD_INPUT, "nobody-known"),
        (("slashes", "--limit", "101"), EXIT_USAGE, "--limit must be from 1 to 100"),
    ],
)
def test_a_bad_dispute_or_slash_query_is_one_line_with_its_exit_code(chain, args, code, message):
    result = run(chain, "query", *args)
    assert result.returncode == code, result.stderr
    assert message in one_line_error(result)


# --- job challenge ----------------------------------------------------------------------------


def balance_and_nonce(chain) -> tuple[int, int]:
    with Client(chain.target) as client:
        account = client.account(CHALLENGER.public_key)
    return account.free, account.next_nonce


@pytest.mark.parametrize(
    "job, args, code, message",
    [
        ("ab" * 31, ("--candidate", "0", "--bond", "100INFER"), EXIT_USAGE, "is not a job id (64 hex digits)"),
        ("settled", ("--candidate", "-1", "--bond", "100INFER"), EXIT_USAGE, "--candidate must be from 0 to"),
        ("settled", ("--candidate", "0", "--bond", "lots"), EXIT_USAGE, "is not an amount"),
        ("settled", ("--candidate", "0", "--bond", "0"), EXIT_USAGE, "challenge can never succeed: a challenge's bond is 0"),
        ("settled", ("--candidate", "0", "--bond", "1"), EXIT_REFUSED, "below disputes.params.min_challenge_bond"),
        ("settled", ("--candidate", "5", "--bond", "100INFER"), EXIT_REFUSED, "challenge not submitted"),
        ("judged", ("--candidate", "0", "--bond", "100INFER"), EXIT_REFUSED, "challenge not submitted"),
        ("cd" * 32, ("--candidate", "0", "--bond", "100INFER"), EXIT_REFUSED, "challenge not submitted"),
    ],
    ids=["malformed-id", "negative-candidate", "bad-bond", "zero-bond", "bond-too-low", "unknown-candidate",
         "already-disputed", "unknown-job"],
)
def test_a_bad_challenge_is_one_line_with_its_exit_code_and_costs_nothing(chain, job, args, code, message):
    before = balance_and_nonce(chain)
    result = run(chain, "job", "challenge", chain.ids.get(job, job), *args, "--from", "eve")
    assert result.returncode == code, result.stderr
    assert message in one_line_error(result)
    assert balance_and_nonce(chain) == before


def test_job_challenge_opens_a_challenge_dispute_with_the_bond_reserved(chain):
    free, _ = balance_and_nonce(chain)
    result = as_json(run(chain, "job", "challenge", chain.ids["settled"], "--candidate", "0", "--bond", "100INFER",
                         "--from", "eve", "--output", "json"))
    assert result["call"] == "challenge" and result["status"] == "submitted"
    assert result["arguments"] == {"job_id": chain.ids["settled"], "candidate": 0, "bond": str(MIN_BOND)}
    chain.core.produce_block()
    document = as_json(run(chain, "job", "status", chain.ids["settled"], "--output", "json"))
    assert document["status"] == "disputed" and "text" not in document
    challenge = document["dispute"]["challenge"]
    assert challenge == {"challenger": CHALLENGER.address, "candidate": 0, "bond": str(MIN_BOND)}
    with Client(chain.target) as client:
        account = client.account(CHALLENGER.public_key)
    assert account.reserved >= MIN_BOND and account.free <= free - MIN_BOND
    text = run(chain, "job", "status", chain.ids["settled"])
    assert field_values(text.stdout, "challenge") == [f"by {CHALLENGER.address} of executor #0, bond 100.000000000 INFER"]


# --- a job nobody can judge ------------------------------------------------------------------


def test_a_disputed_job_no_committee_can_judge_is_rejected_and_watch_says_so_in_one_line(chain):
    # With the forger of JUDGED jailed, the only validators left are this job's own executors: no committee.
    job = chain.disputed()
    chain.produce_until(chain.dispute(job.id).draw_height)
    watched = run(chain, "job", "watch", job.id.hex())
    assert watched.returncode == 1 and watched.stdout == ""
    assert one_line_error_after_progress(watched).startswith(f"error: job {job.id.hex()} rejected at height ")
    text = run(chain, "job", "status", job.id.hex())
    assert field_values(text.stdout, "status") == ["rejected"]
    assert field_values(text.stdout, "committee") == ["none: too few eligible validators"]
    assert field_values(text.stdout, "verdict #0")[0].startswith("none (")
    assert field_values(text.stdout, "answer") == ["none: no revealed result was judged valid"]
    assert HONEST not in text.stdout and FORGED not in text.stdout
    document = as_json(run(chain, "job", "status", job.id.hex(), "--output", "json"))
    assert int(document["refunded"]) > 0 and document["paid"] == "0" and "text" not in document


def one_line_error_after_progress(result) -> str:
    """The last stderr line of a command that reported progress first; the only `error:` line, no traceback."""
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and result.stderr.splitlines()[-1] == errors[0], result.stderr
    return errors[0]


# --- tx unjail --------------------------------------------------------------------------------


def test_tx_unjail_has_help_and_refuses_an_account_not_jailed_or_still_jailed(chain):
    helped = run(chain, "tx", "unjail", "--help")
    assert helped.returncode == 0 and "jail" in helped.stdout.lower() and "--from" in helped.stdout
    free = run(chain, "tx", "unjail", "--from", "dave")
    assert free.returncode == EXIT_REFUSED
    assert "unjail not submitted" in one_line_error(free) and "not jailed" in one_line_error(free)
    early = run(chain, "tx", "unjail", "--from", NAMES[chain.forger])
    assert early.returncode == EXIT_REFUSED and "is jailed until height" in one_line_error(early)


def test_tx_unjail_after_the_jail_returns_the_forger(chain):
    until = read_ledger(chain.core.store.state, chain.forger).jailed_until
    chain.produce_until(until)
    chain.start_producing()
    result = run(chain, "tx", "unjail", "--from", NAMES[chain.forger], "--wait")
    assert result.returncode == 0, result.stderr
    assert "status  included" in result.stdout and "slashing.Unjailed account=" in result.stdout
    assert not read_ledger(chain.core.store.state, chain.forger).jailed


def test_a_braked_slash_says_nothing_was_taken_and_why():
    from chain.cli.market_queries import slash_document, slash_text
    from chain.cli.output import Token
    braked = state_pb2.SlashRecord(account=bytes(32), offence="invalid_result", job=bytes(range(32)), height=12,
                                   braked=True)
    assert "nothing taken, the brake on slashing held" in slash_text(braked, Token())
    assert slash_document(braked)["braked"] is True and slash_document(braked)["amount"] == "0"
    taken = state_pb2.SlashRecord(account=bytes(32), offence="invalid_result", job=bytes(32), height=12, amount=5)
    assert "brake" not in slash_text(taken, Token()) and slash_document(taken)["braked"] is False
