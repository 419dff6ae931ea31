"""`inferchain job submit|status|watch|list`, `tx bond|unbond|withdraw|offer|clear-offer` and `query
models|executors` through the real console entry, against a dev chain served in this process.

The chain makes a block every 0.1 s; Alice (the dev genesis bonds her with an offer of the embedded
model) is played by a stand-in executor that runs no engine: it reveals "echo: PROMPT" for every job
assigned to her, except jobs whose prompt contains HOLD, which it never answers. No test loads the
model.
"""

from __future__ import annotations

import json
import threading

import grpc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.cli import main
from chain.cli.errors import EXIT_BAD_INPUT, EXIT_NOT_INCLUDED, EXIT_REFUSED, EXIT_USAGE, CliError
from chain.cli.job import job_id_argument, progress_lines, sampling_of
from chain.cli.output import Token
from chain.client import Client
from chain.crypto import dev_keypair
from chain.genesis import DEV_PRICE_PER_TOKEN
from chain.node.api import NodeApi
from chain.node.core import NodeCore
from chain.node.server import ApiServer
from chain.storage import ChainStore
from inference.registration import EMBEDDED_MODEL_ID
from inference.result import InferenceResult
from proto import state_pb2, types_pb2
from runtime import jobs
from runtime.jobs.pricing import charge, escrow_of
from tests.chain.test_jobs_api import GENESIS, Chain, reveal_for
from tests.commands import inferchain, one_line_error

HOLD = "HOLD"
ALICE = dev_keypair("alice")
BOB = dev_keypair("bob")


def stand_in_executor(target: str, stop: threading.Event) -> None:
    """Alice without an engine: reveal "echo: PROMPT" for each job assigned to her (not HOLD ones)."""
    answered: set[bytes] = set()
    with Client(target) as client:
        while not stop.is_set():
            for job in client.list_jobs(executor="alice", status="assigned", limit=100).jobs:
                if job.id in answered or HOLD in job.request.prompt:
                    continue
                client.submit(ALICE, reveal_for(job, f"echo: {job.request.prompt}"))
                answered.add(job.id)
            stop.wait(0.05)


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    store = ChainStore(tmp_path_factory.mktemp("job-cli") / "db")
    store.initialize(GENESIS.chain_id, GENESIS.hash, GENESIS.initial_height, GENESIS.state())
    core = NodeCore(store, GENESIS, ALICE)
    core.produce_block()
    server = ApiServer(NodeApi(core, 100), "127.0.0.1", 0)
    server.start()
    server.mark_serving()
    running = Chain(core, f"127.0.0.1:{server.port}")
    running.start_producing(interval=0.1)
    stop = threading.Event()
    executor = threading.Thread(target=stand_in_executor, args=(running.target, stop), daemon=True)
    executor.start()
    yield running
    stop.set()
    executor.join(timeout=10)
    running.stop_producing()
    server.stop(grace=0)
    store.close()


def job(chain, *args: str):
    return inferchain("job", *args, "--node", chain.target)


def submitted(chain, prompt: str, *args: str) -> dict:
    """Post a job with the CLI (no --wait) and return its JSON document."""
    result = job(chain, "submit", prompt, "--from", "bob", "--max-tokens", "4", "--output", "json", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# --- job submit ------------------------------------------------------------------------


def test_submit_wait_prints_the_text_and_reports_each_step_on_stderr(chain):
    result = job(chain, "submit", "Name a colour.", "--from", "bob", "--max-tokens", "3", "--wait", "--timeout", "60")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "echo: Name a colour.\n"
    lines = result.stderr.splitlines()
    assert lines[0].startswith("posted job ") and lines[1].startswith("drawing: its executors are drawn at height ")
    assert f"assigned to {ALICE.address}" in lines[2]
    assert lines[3].startswith(f"revealed: {ALICE.address}, 3 tokens")
    assert lines[4].startswith("settled at height ") and "3 tokens; paid " in lines[4] and len(lines) == 5


class CallCounter(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """A client interceptor that notes the method of every call made on the channels it wraps."""

    def __init__(self):
        self.methods: list[str] = []

    def intercept_unary_unary(self, continuation, details, request):
        self.methods.append(details.method.rsplit("/", 1)[-1])
        return continuation(details, request)

    def intercept_unary_stream(self, continuation, details, request):
        self.methods.append(details.method.rsplit("/", 1)[-1])
        return continuation(details, request)


def test_submit_wait_makes_four_requests_end_to_end(chain, monkeypatch, capsys):
    counter = CallCounter()
    plain = grpc.insecure_channel
    monkeypatch.setattr(grpc, "insecure_channel", lambda *args, **kwargs: grpc.intercept_channel(
        plain(*args, **kwargs), counter))
    code = main(["job", "submit", "Count the calls.", "--from", "bob", "--max-tokens", "2", "--wait",
                 "--node", chain.target])
    assert code == 0 and capsys.readouterr().out == "echo: Count the calls.\n"
    # The chain info carries Bob's nonce; the verdict names the job; one stream follows it to the end
    # (it was 13: a simulation with its account proof, a nonce, inclusion polling, a GetJob).
    assert counter.methods == ["GetChainInfo", "GetExecutors", "SubmitTransaction", "WatchJob"]


MARKET = jobs.Params()


def posted_escrow(prompt: str, max_tokens: int, price: int) -> int:
    """What a redundancy-1 chat job holds at post: its worst-case charge, the minimum fee and the queue fee."""
    call = types_pb2.PostJob(prompt=prompt, max_tokens=max_tokens, redundancy=1, max_price_per_token=price)
    return escrow_of(call, MARKET) + MARKET.queue_fee


def test_submit_wait_json_carries_the_result_that_verify_reads(chain):
    result = job(chain, "submit", "Say hi.", "--from", "bob", "--max-tokens", "4", "--temperature", "0.7",
                 "--top-k", "20", "--top-p", "0.9", "--seed", "42", "--wait", "--output", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["status"] == "settled" and document["text"] == "echo: Say hi." and document["tokens"] == [7] * 4
    assert document["model"] == EMBEDDED_MODEL_ID and document["poster"] == BOB.address
    assert document["sampling"] == {"temperature_milli": 700, "top_k": 20, "top_p_ppm": 900_000, "seed": "42",
                                    "seed_only": False}
    [executor] = document["executors"]
    assert executor["executor"] == ALICE.address and executor["status"] == "revealed" and executor["tokens"] == 4
    # Output and prompt tokens are paid (runtime/jobs/pricing.py); the rest of the escrow comes back.
    gross = charge(DEV_PRICE_PER_TOKEN, document["prompt_tokens"], 4, MARKET.prompt_price_ppm)
    assert int(executor["payment"]) + int(document["protocol_fee"]) == gross == int(document["cost"])
    assert int(document["refunded"]) == posted_escrow("Say hi.", 4, int(document["max_price_per_token"])) - gross
    # The chain's output digest is the digest of the result document (docs/verification.md).
    result_document = InferenceResult.from_json(document["result"])
    assert result_document.output_digest().hex() == document["output_digest"]
    assert document["result"]["job_id"] == document["job_id"] and document["result"]["text"] == "echo: Say hi."


def test_submit_without_wait_prints_the_job_id_and_where_it_stands(chain):
    document = submitted(chain, f"{HOLD} this one")
    assert len(document["job_id"]) == 64 and document["status"] in ("drawing", "assigned", "queued")
    assert int(document["escrow"]) == posted_escrow(f"{HOLD} this one", 4, int(document["max_price_per_token"]))
    text = job(chain, "submit", f"{HOLD} another", "--from", "bob", "--max-tokens", "4")
    assert text.returncode == 0 and text.stdout.startswith("job ") and "status" in text.stdout


@pytest.mark.parametrize(
    "args, code, message",
    [
        (("--temperature", "warm"), EXIT_USAGE, "temperature 'warm' is not a number"),
        (("--top-p", "0"), EXIT_USAGE, "top-p must be greater than 0"),
        (("--max-tokens", "0"), EXIT_USAGE, "--max-tokens must be from 1"),
        (("--seed", "-1"), EXIT_USAGE, "--seed must be from 0"),
        (("--max-price", "1.5"), EXIT_USAGE, "must be whole"),
        (("--model", "no-such-model"), EXIT_BAD_INPUT, "no registered model has the id or name 'no-such-model'"),
        (("--from", "./missing.json"), EXIT_BAD_INPUT, "does not exist"),
        (("--max-tokens", "100000"), EXIT_REFUSED, "max_tokens 100000 is above the limit"),
        (("--redundancy", "2"), EXIT_REFUSED, "1 executors serve model"),
        (("--max-price", "1"), EXIT_REFUSED, "escrow 10000172 is below jobs.params.min_job_escrow"),
        (("--max-price", "100000000", "--max-tokens", "200"), EXIT_REFUSED,
         "only 0 executors serve the model at max_price_per_token 100000000"),
        (("--region", "Not A Region"), EXIT_USAGE, "region"),
        (("--engine-class", "GPU A"), EXIT_USAGE, "--engine-class: an engine class name is 1 to 32 lowercase"),
        (("--engine-class", "gpu-a"), EXIT_REFUSED, "0 executors serve model"),
        (("--engine-class", "gpu-a", "--max-price", "1"), EXIT_REFUSED, "has no engine class 'gpu-a' (its classes: cpu)"),
    ],
)
def test_a_bad_submission_is_one_line_with_its_exit_code_and_costs_nothing(chain, args, code, message):
    with Client(chain.target) as client:
        before = client.account("charlie")
    result = job(chain, "submit", "Hello", "--from", "charlie", *args)
    assert result.returncode == code, result.stderr
    assert message in one_line_error(result)
    with Client(chain.target) as client:
        after = client.account("charlie")
    assert (after.free, after.nonce) == (before.free, before.nonce)


# --- job status, watch, list -------------------------------------------------------------


def test_status_and_watch_of_a_settled_job(chain):
    settled = json.loads(job(chain, "submit", "Once more.", "--from", "bob", "--max-tokens", "2", "--wait",
                             "--output", "json").stdout)
    status = job(chain, "status", settled["job_id"], "--output", "json")
    assert status.returncode == 0 and json.loads(status.stdout)["status"] == "settled"
    text = job(chain, "status", "0x" + settled["job_id"].upper())
    assert text.returncode == 0 and "settled at height" in text.stdout and "echo: Once more." in text.stdout
    watched = job(chain, "watch", settled["job_id"])
    assert watched.returncode == 0 and watched.stdout == "echo: Once more.\n"
    assert "settled at height" in watched.stderr


def test_watch_of_a_job_that_does_not_end_in_time_exits_7(chain):
    held = submitted(chain, f"{HOLD} watch me")
    result = job(chain, "watch", held["job_id"], "--timeout", "1")
    assert result.returncode == EXIT_NOT_INCLUDED
    assert "was not final within 1 s" in result.stderr.splitlines()[-1]
    assert result.stderr.splitlines()[0].startswith("posted job " + held["job_id"])


def test_status_of_an_unknown_job_is_refused_and_a_malformed_id_is_a_usage_error(chain):
    unknown = job(chain, "status", "ab" * 32)
    assert unknown.returncode == EXIT_REFUSED and "NOT_FOUND" in one_line_error(unknown)
    malformed = job(chain, "status", "ab" * 31)
    assert malformed.returncode == EXIT_USAGE and "is not a job id (64 hex digits)" in one_line_error(malformed)


def test_list_filters_by_poster_executor_and_status_newest_first(chain):
    first = submitted(chain, "list me 1")["job_id"]
    second = submitted(chain, "list me 2")["job_id"]
    listing = json.loads(job(chain, "list", "--poster", "bob", "--output", "json").stdout)
    ids = [document["job_id"] for document in listing["jobs"]]
    assert ids.index(second) < ids.index(first)
    assert all(document["poster"] == BOB.address for document in listing["jobs"])
    executed = json.loads(job(chain, "list", "--executor", ALICE.address, "--status", "settled", "--limit", "100",
                              "--output", "json").stdout)
    assert executed["jobs"] and all(document["status"] == "settled" for document in executed["jobs"])
    paged = json.loads(job(chain, "list", "--limit", "1", "--output", "json").stdout)
    assert len(paged["jobs"]) == 1 and paged["next_page_token"]
    following = json.loads(job(chain, "list", "--limit", "1", "--page-token", paged["next_page_token"],
                               "--output", "json").stdout)
    assert following["jobs"][0]["job_id"] != paged["jobs"][0]["job_id"]
    table = job(chain, "list", "--poster", "bob", "--limit", "2")
    assert table.returncode == 0 and table.stdout.startswith("job ") and "more: --page-token " in table.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (("--poster", "bob", "--executor", "alice"), "give --poster or --executor, not both"),
        (("--limit", "0"), "--limit must be from 1 to 100"),
        (("--limit", "101"), "--limit must be from 1 to 100"),
        (("--status", "done"), "--status: 'done' is not a job status"),
        (("--page-token", "zz"), "--page-token must be the hex next_page_token"),
    ],
)
def test_a_bad_listing_is_a_one_line_usage_error(chain, args, message):
    result = job(chain, "list", *args)
    assert result.returncode == EXIT_USAGE and message in one_line_error(result)


def test_a_page_token_from_another_listing_is_refused_by_the_node(chain):
    paged = json.loads(job(chain, "list", "--limit", "1", "--output", "json").stdout)
    result = job(chain, "list", "--poster", "bob", "--page-token", paged["next_page_token"])
    assert result.returncode == EXIT_REFUSED and "page_token does not continue this listing" in one_line_error(result)


# --- staking and the market's queries --------------------------------------------------


def tx(chain, *args: str):
    return inferchain("tx", *args, "--node", chain.target)


def test_bond_offer_query_and_clear_offer_as_a_new_executor(chain):
    dave = dev_keypair("dave")
    bonded = tx(chain, "bond", "--from", "dave", "--amount", "300000000INFER", "--validate", "--wait", "--output", "json")
    assert bonded.returncode == 0, bonded.stderr
    document = json.loads(bonded.stdout)
    assert document["arguments"] == {"amount": str(3 * 10**17), "validate": True}
    assert any(event["name"] == "Bonded" for event in document["receipt"]["events"])
    offered = tx(chain, "offer", "--from", "dave", "--model", EMBEDDED_MODEL_ID, "--price", "2000000000",
                 "--region", "eu-west", "--capacity", "3", "--wait", "--output", "json")
    assert offered.returncode == 0, offered.stderr
    assert json.loads(offered.stdout)["arguments"]["models"] == [EMBEDDED_MODEL_ID]
    listed = json.loads(inferchain("query", "executors", "--model", "SmolLM2-135M-Instruct-Q4_1", "--node",
                                   chain.target, "--output", "json").stdout)
    mine = next(executor for executor in listed["executors"] if executor["address"] == dave.address)
    assert mine == {"account": dave.public_key.hex(), "address": dave.address, "models": [EMBEDDED_MODEL_ID],
                    "price_per_token": "2000000000", "region": "eu-west", "engine_class": "cpu", "capacity": 3, "load": 0,
                    "bonded": str(3 * 10**17), "reputation": mine["reputation"]}
    table = inferchain("query", "executors", "--node", chain.target)
    assert table.returncode == 0 and dave.address in table.stdout and "eu-west" in table.stdout
    cleared = tx(chain, "clear-offer", "--from", "dave", "--wait")
    assert cleared.returncode == 0, cleared.stderr
    after = json.loads(inferchain("query", "executors", "--node", chain.target, "--output", "json").stdout)
    assert dave.address not in [executor["address"] for executor in after["executors"]]
    unbonded = tx(chain, "unbond", "--from", "dave", "--amount", "1000", "--wait")
    assert unbonded.returncode == 0, unbonded.stderr
    early = tx(chain, "withdraw", "--from", "dave")
    assert early.returncode == EXIT_REFUSED and "withdraw_unbonded not submitted" in one_line_error(early)


@pytest.mark.parametrize(
    "args, code, message",
    [
        (("offer", "--from", "eve", "--model", "abc", "--price", "1"), EXIT_USAGE, "--model must be"),
        (("offer", "--from", "eve", "--model", EMBEDDED_MODEL_ID, "--price", "1", "--capacity", "0"), EXIT_USAGE,
         "capacity (jobs at once) must be at least 1"),
        (("offer", "--from", "eve", "--model", EMBEDDED_MODEL_ID, "--price", "1"), EXIT_REFUSED, "set_offer not submitted"),
        (("bond", "--from", "eve", "--amount", "lots"), EXIT_USAGE, "is not an amount"),
        (("unbond", "--from", "eve", "--amount", "5"), EXIT_REFUSED, "unbond not submitted"),
    ],
)
def test_bad_staking_commands_are_one_line_errors(chain, args, code, message):
    result = tx(chain, *args)
    assert result.returncode == code, result.stderr
    assert message in one_line_error(result)


def test_query_models_lists_the_embedded_model(chain):
    result = inferchain("query", "models", "--node", chain.target, "--output", "json")
    assert result.returncode == 0, result.stderr
    [model] = json.loads(result.stdout)["models"]
    assert model["id"] == EMBEDDED_MODEL_ID and model["name"] == "SmolLM2-135M-Instruct-Q4_1"
    table = inferchain("query", "models", "--node", chain.target)
    assert EMBEDDED_MODEL_ID in table.stdout
    unknown = inferchain("query", "executors", "--model", "nothing-like-it", "--node", chain.target)
    assert unknown.returncode == EXIT_BAD_INPUT and "no registered model" in one_line_error(unknown)


# --- parsing and progress, in this process ----------------------------------------------


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=90) | st.binary(min_size=32, max_size=32).map(lambda raw: raw.hex()))
def test_a_job_id_argument_is_32_bytes_or_a_usage_error(text):
    try:
        job_id = job_id_argument(text)
    except CliError as error:
        assert error.exit_code == EXIT_USAGE and "job id" in str(error)
    else:
        assert len(job_id) == 32 and job_id.hex() == text.strip().lower().removeprefix("0x")


class SamplingArgs:
    def __init__(self, temperature, top_k, top_p, seed, seed_only=False):
        self.temperature, self.top_k, self.top_p, self.seed = temperature, top_k, top_p, seed
        self.seed_only = seed_only


@settings(max_examples=200, deadline=None)
@given(temperature=st.text(max_size=12) | st.decimals(0, 200, places=3).map(str),
       top_k=st.text(max_size=6) | st.integers(-3, 2**33).map(str),
       top_p=st.text(max_size=10) | st.decimals(0, 2, places=6).map(str),
       seed=st.text(max_size=6) | st.integers(-3, 2**65).map(str))
def test_sampling_options_are_read_exactly_or_refused_in_one_line(temperature, top_k, top_p, seed):
    try:
        sampling = sampling_of(SamplingArgs(temperature, top_k, top_p, seed))
    except CliError as error:
        assert error.exit_code == EXIT_USAGE and "\n" not in str(error)
    else:
        assert 0 < sampling.top_p_ppm <= 1_000_000 and sampling.temperature_milli <= 100_000
        assert sampling.seed == int(seed.strip().replace("_", "")) and sampling.top_k == int(top_k.strip().replace("_", ""))
        assert not sampling.seed_only


def test_seed_only_reaches_the_sampling_message():
    assert sampling_of(SamplingArgs("0.8", "40", "0.95", "7", seed_only=True)).seed_only


def copy(job: state_pb2.Job, **changes) -> state_pb2.Job:
    changed = state_pb2.Job()
    changed.CopyFrom(job)
    for name, value in changes.items():
        setattr(changed, name, value)
    return changed


def test_progress_lines_name_each_step_once():
    token = Token()
    posted = state_pb2.Job(id=bytes(32), status=state_pb2.JOB_STATUS_QUEUED, posted_height=9, timeout_height=300,
                           escrow=60, request=types_pb2.PostJob(max_tokens=4))
    assigned = copy(posted, status=state_pb2.JOB_STATUS_ASSIGNED)
    assigned.assignments.add(executor=ALICE.public_key, price_per_token=5, status=state_pb2.ASSIGNMENT_STATUS_ASSIGNED,
                             deadline_height=30)
    committed = copy(assigned, status=state_pb2.JOB_STATUS_REVEALING)
    committed.assignments[0].status = state_pb2.ASSIGNMENT_STATUS_COMMITTED
    committed.assignments[0].deadline_height = 40
    settled = copy(committed, status=state_pb2.JOB_STATUS_SETTLED, final_height=35, protocol_fee=1)
    slot = settled.assignments[0]
    slot.status = state_pb2.ASSIGNMENT_STATUS_REVEALED
    slot.reveal.tokens.extend([1, 1, 1])
    slot.reveal.height = 35
    slot.payment = 14
    steps = [progress_lines(None, posted, token), progress_lines(posted, assigned, token),
             progress_lines(assigned, committed, token), progress_lines(committed, settled, token),
             progress_lines(settled, settled, token)]
    assert [len(lines) for lines in steps] == [2, 1, 2, 2, 0]
    assert steps[0][0].startswith("posted job 0000") and steps[0][1].startswith("queued: ")
    assert steps[1][0].startswith(f"assigned to {ALICE.address}") and "deadline height 30" in steps[1][0]
    assert steps[2] == [f"committed: {ALICE.address}", "revealing: every commitment is in, reveals due by height 40"]
    assert steps[3][0] == f"revealed: {ALICE.address}, 3 tokens at height 35"
    assert steps[3][1].startswith("settled at height 35: 3 tokens; paid ") and "to 1 executor," in steps[3][1]


def test_progress_lines_say_who_missed_and_why_the_job_ended():
    assigned = state_pb2.Job(id=bytes(32), status=state_pb2.JOB_STATUS_ASSIGNED, posted_height=9)
    assigned.assignments.add(executor=ALICE.public_key, status=state_pb2.ASSIGNMENT_STATUS_ASSIGNED)
    expired = copy(assigned, status=state_pb2.JOB_STATUS_EXPIRED, final_height=50, refunded=60,
                   reason="no executor was free before the job's timeout")
    expired.assignments[0].status = state_pb2.ASSIGNMENT_STATUS_MISSED
    lines = progress_lines(assigned, expired, Token())
    assert lines[0] == f"missed its deadline: {ALICE.address}"
    assert lines[1] == ("expired at height 50: no executor was free before the job's timeout; "
                        "refunded 0.000000060 INFER")


def test_a_pruned_job_is_shown_as_pruned_without_its_deleted_result(capsys):
    """`job status` of a job whose record the runtime pruned says so, and shows no (deleted) text or result."""
    from chain.cli.job import _print_job, job_document
    from chain.client import JobView
    from tests.runtime.market import JOBS, Market, commit_and_reveal, output

    market = Market.create()
    job_id, _ = market.post(prompt="a prompt to forget", redundancy=1, max_tokens=4)
    commit_and_reveal(market, job_id, output(tokens=(5, 6, 7, 2)))
    market.advance(JOBS.challenge_window_blocks)
    record = market.job(job_id)
    assert record.pruned_height
    view = JobView(record, market.height, b"")
    document = job_document(view)
    assert document["pruned_height"] == str(record.pruned_height) and document["prompt"] == ""
    assert document["storage_deposit"] == "0" and document["output_digest"] == record.output_digest.hex()
    assert not {"text", "tokens", "result"} & set(document)
    _print_job(view, "text", Token())
    shown = capsys.readouterr().out
    assert f"at height {record.pruned_height}, when its challenge window closed" in shown
    assert "(pruned)" in shown and "a prompt to forget" not in shown and "tokens pruned" in shown
