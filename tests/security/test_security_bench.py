"""bench/security.py's plan and counting rules, on records built here (the bench itself runs a devnet for
minutes; this checks what it concludes from what the chain says): a cheat counts as detected and slashed
only from its own verdict and slash, an honest party's slash for a judgement is a wrongful one, and lateness
is reported apart from both."""

from __future__ import annotations

import json
import re

from bench import security
from bench.adversaries import BEHAVIOURS
from chain.client.jobs import JobView
from chain.genesis import parse_genesis
from proto import state_pb2, types_pb2

INVALID, VALID = state_pb2.CANDIDATE_VERDICT_INVALID, state_pb2.CANDIDATE_VERDICT_VALID
REVEALED, MISSED = state_pb2.ASSIGNMENT_STATUS_REVEALED, state_pb2.ASSIGNMENT_STATUS_MISSED
VALIDATOR, BYZANTINE, POSTER = b"v" * 32, b"z" * 32, b"p" * 32


def account(name: str) -> bytes:
    return name.encode().ljust(32, b".")[:32]


ROWS = security.plan_rows()
ACCOUNTS = {name: account(name) for row in ROWS for name, _ in row.executors}
HONEST = security.honest_accounts(ROWS, ACCOUNTS, {VALIDATOR})


def row(name: str) -> security.Row:
    return next(entry for entry in ROWS if entry.name == name)


def judged_job(row_name: str, number: int, slots, members=(), verdicts=(), decided_height=50) -> security.PostedJob:
    job_id = bytes([number]) * 32
    record = state_pb2.Job(id=job_id, status=state_pb2.JOB_STATUS_SETTLED, assignments=list(slots))
    dispute = None
    if verdicts:
        dispute = state_pb2.Dispute(id=job_id, job=job_id, candidates=list(range(len(verdicts))),
                                    status=state_pb2.DISPUTE_STATUS_DECIDED, verdicts=list(verdicts),
                                    committee=list(members), decided_height=decided_height)
    posted = security.PostedJob(row(row_name), job_id, sampled=False)
    posted.view = JobView(record, 100, b"", dispute)
    posted.done = True
    return posted


def slot(executor: bytes, status=REVEALED, verdict=VALID) -> state_pb2.Assignment:
    return state_pb2.Assignment(executor=executor, status=status, verdict=verdict)


def member(who: bytes, valid: bool, misses: int = 0) -> state_pb2.CommitteeMember:
    vote = types_pb2.CandidateVote(candidate=0, valid=valid, positions=64, misses=misses)
    return state_pb2.CommitteeMember(account=who, stake=1, revealed=True, votes=[vote])


def slash(who: bytes, offence: str, job: security.PostedJob, height: int = 60) -> state_pb2.SlashRecord:
    return state_pb2.SlashRecord(account=who, offence=offence, job=job.job_id, height=height, amount=1)


def table_for(posted, slashes) -> dict[str, dict]:
    by_account: dict[bytes, list] = {}
    for record in slashes:
        by_account.setdefault(record.account, []).append(record)
    rows = security.tabulate(ROWS, posted, ACCOUNTS, HONEST, BYZANTINE, by_account)
    return {entry["name"]: entry for entry in rows}


def test_the_honest_parties_are_the_honest_executors_partners_and_validators():
    assert HONEST == {VALIDATOR, ACCOUNTS["withhold-reveal-partner"]} | {
        ACCOUNTS[name] for entry in ROWS if entry.kind == "honest" for name, _ in entry.executors}


def test_the_plan_has_a_row_for_every_behaviour_with_a_valid_region():
    assert {entry.behaviour for entry in ROWS} == set(BEHAVIOURS)
    assert {entry.kind for entry in ROWS if entry.behaviour == "honest"} == {"honest"}
    assert {entry.redundancy for entry in ROWS if entry.kind == "honest"} == {1, 3}
    for entry in ROWS:
        assert re.fullmatch(r"[a-z0-9-]{1,32}", entry.region), entry.region
    served = {process for entry in ROWS for _, process in entry.executors}
    assert served <= {process.name for process in security.worker_processes()}


def test_a_judged_cheat_is_detected_and_slashed_an_honest_member_is_not_wronged():
    cheat = ACCOUNTS["truncate"]
    job = judged_job("truncate", 1, [slot(cheat, verdict=INVALID)], [member(VALIDATOR, False)], [INVALID])
    table = table_for([job], [slash(cheat, "invalid_result", job)])
    entry = table["truncate"]
    assert (entry["jobs"], entry["judged"], entry["detected"], entry["slashed"], entry["wrongly_slashed"]) == (1, 1, 1, 1, 0)


def test_an_honest_executor_slashed_for_a_result_is_wronged_and_lateness_is_counted_apart():
    honest = ACCOUNTS["honest-2-threads"]
    first = judged_job("honest-2-threads", 2, [slot(honest)], [member(VALIDATOR, True)], [VALID])
    second = judged_job("honest-2-threads", 3, [slot(honest)], [member(VALIDATOR, True)], [VALID])
    table = table_for([first, second], [slash(honest, "invalid_result", first), slash(VALIDATOR, "missed_vote", second)])
    entry = table["honest-2-threads"]
    assert (entry["jobs"], entry["detected"], entry["wrongly_slashed"], entry["late_slashed"]) == (2, 0, 1, 1)


def test_a_cheat_that_revealed_nothing_in_time_is_late_not_counted():
    cheat = ACCOUNTS["wrong-seed"]
    job = judged_job("wrong-seed", 4, [slot(cheat, status=MISSED, verdict=0), slot(VALIDATOR)])
    entry = table_for([job], [slash(cheat, "missed_result", job)])["wrong-seed"]
    assert (entry["jobs"], entry["late"], entry["detected"]) == (0, 1, 0)
    assert entry["offences"] == {"missed_result": 1}


def test_withholding_is_detected_by_the_missed_deadline():
    cheat, partner = ACCOUNTS["withhold-reveal"], ACCOUNTS["withhold-reveal-partner"]
    job = judged_job("withhold-reveal", 5, [slot(cheat, status=MISSED, verdict=0), slot(partner)],
                     [member(VALIDATOR, True)], [VALID])
    entry = table_for([job], [slash(cheat, "missed_result", job)])["withhold-reveal"]
    assert (entry["jobs"], entry["detected"], entry["slashed"], entry["wrongly_slashed"]) == (1, 1, 1, 0)


def test_a_byzantine_member_outvoted_on_a_forgery_is_detected_and_slashed():
    cheat = ACCOUNTS["other-prompt"]
    job = judged_job("other-prompt", 6, [slot(cheat, verdict=INVALID)],
                     [member(VALIDATOR, False), member(BYZANTINE, True)], [INVALID])
    entry = table_for([job], [slash(BYZANTINE, "contrary_vote", job)])["byzantine-juror"]
    assert (entry["jobs"], entry["detected"], entry["slashed"]) == (1, 1, 1)


def test_steering_counts_as_slashed_only_for_the_jobs_a_conviction_covered():
    steerer = ACCOUNTS["steer-2-positions"]
    jobs = [judged_job("steer-2-positions", 7 + index, [slot(steerer)], [member(VALIDATOR, True, misses=2)], [VALID],
                       decided_height=50 + 10 * index) for index in range(3)]
    conviction = slash(steerer, "conviction", jobs[1], height=60)
    entry = table_for(jobs, [conviction])["steer-2-positions"]
    assert (entry["jobs"], entry["detected"], entry["slashed"], entry["wrongly_slashed"]) == (3, 3, 2, 0)


def test_the_bench_genesis_audits_every_job_and_bonds_every_executor(tmp_path):
    keys = security.executor_keys(tmp_path, ROWS)
    layout = security.genesis_for(tmp_path, ROWS, keys, capacity=5)
    document = json.loads(layout.genesis_path.read_text())
    genesis = parse_genesis(document)
    assert genesis.hash == layout.genesis_hash
    assert document["app_state"]["disputes"]["params"]["audit_probability_ppm"] == 1_000_000
    stakes = {entry["name"]: entry for entry in document["app_state"]["staking"]["stakes"]}
    for entry in ROWS:
        for name, _ in entry.executors:
            assert stakes[name]["offer"]["region"] == entry.region and not stakes[name]["validate"]
    powers = {validator.name: validator.power for validator in genesis.validators}
    assert 2 * powers[security.BYZANTINE] == powers["validator1"]
