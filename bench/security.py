"""The security bench (issue 25, "Shown, not claimed"): cheating and honest executors on a real local chain,
judged by real committees, and whether each cheat was detected and slashed and no honest party was.

    .venv/bin/python bench/security.py [--jobs N] [--quick] [--challenge] [--output FILE.json] [--keep DIR]

1. A 4-validator devnet (chain/devnet) from the checkout's genesis.json with these changes: every
   settled job is audited (disputes audit_probability_ppm 1,000,000, so no challenge is needed to
   bring a result before a committee), a region with one executor is used (jobs
   region_min_candidates 1), and windows long enough for 2 shared cores (commit_blocks 150 per job of
   a row, vote_commit_blocks 300, vote_reveal_blocks 150). Validators 1-3 run the node's own worker, whose
   juror re-scores every candidate of the disputes it is drawn for; validator 4 runs
   `bench.adversaries worker --behaviour byzantine-juror --vote` instead, with half the others'
   stake, so that two honest members of a committee hold the supermajority against it.
2. One executor account per cheating behaviour of bench/adversaries.py (not validators: never on a
   committee), bonded in genesis and offering the embedded model in a region named after its row,
   each served by `python -m bench.adversaries worker --behaviour NAME`; each takes every job of its
   row at once, before any verdict jails it. withhold-reveal's jobs have redundancy 2 with an honest
   partner in its region (it commits, then withholds the reveal).
   Honest rows: executors on 1 thread with the prompt cache reused, on 2 threads, and with n_batch 8
   without prefix reuse (the validators' workers run 1 thread, n_batch 512), each alone (redundancy
   1) and the three together (redundancy 3); greedy and sampled jobs alternate.
3. N jobs per row (64 tokens: docs/verification.md's length for every cheat; sampled-only cheats get
   sampled jobs), posted at once with each row's region, then followed until every job is final and
   its audit decided. With --challenge there are no audits (audit_probability_ppm 0): Ferdie
   challenges every settled job (the row's cheat's result, else the first revealed one) with the
   minimum bond, and the challenge's committee decides.
4. Per row: jobs (those the row's executors held and revealed, or for a withholding cheat held; for
   byzantine-juror, disputes it voted in that found a result invalid), judged (a committee gave the
   row's result a verdict), detected (the committee judged the cheat's result invalid, its assignment
   missed its deadline, for steer-2-positions the committee reported its misses, for byzantine-juror
   its vote was outvoted), slashed (a slash of the offender for that job; for steer-2-positions, its
   jobs decided before a conviction), wrongly_slashed (an honest executor or honest validator slashed
   for a judgement, invalid_result, conviction or contrary_vote, in the row's jobs). Apart: late
   (a result to be revealed was not, in time: not counted in jobs) and late_slashed (honest parties
   slashed for a missed commit, reveal or vote: the windows were too short for the machine).
   Printed as a table, then as one JSON line:
   {"rows": [{"name", "kind", "jobs", "detected", "slashed", "wrongly_slashed", ...}], ...}.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.adversaries import BEHAVIOURS, BY_DEADLINE, BY_EVIDENCE, BY_VERIFIER, REVEALS, WITHHOLDS  # noqa: E402
from chain.client import Client, ClientError  # noqa: E402
from chain.client.queries import ModuleQueries  # noqa: E402
from chain.crypto import Keypair, dev_keypair  # noqa: E402
from chain.devnet.launcher import Devnet, LaunchOptions  # noqa: E402
from chain.devnet.layout import (  # noqa: E402
    GENESIS_FILE, Address, Layout, NodeAddresses, prepare, resume, template_document, write_atomically,
)
from chain.genesis import DEV_BOND, DEV_PRICE_PER_TOKEN  # noqa: E402
from chain.keys import generate_key_file, load_key_file  # noqa: E402
from chain.ss58 import encode_address  # noqa: E402
from chain.transactions import sign_transaction  # noqa: E402
from inference.calibration import load_prompts  # noqa: E402
from inference.registration import EMBEDDED_MODEL_ID  # noqa: E402
from proto import state_pb2, types_pb2  # noqa: E402
from runtime import jobs  # noqa: E402

MAX_TOKENS = 64
GREEDY = types_pb2.Sampling(temperature_milli=0, top_k=40, top_p_ppm=950_000, seed=0)
SAMPLED_TEMPERATURE_MILLI, SAMPLED_TOP_K, SAMPLED_TOP_P_PPM = 700, 40, 950_000
POST_PRICE = 10**10  # above every executor's price
POSTERS = ("bob", "charlie", "dave", "eve")
CHALLENGER = "ferdie"  # --challenge: a poster's friend who challenges every settled job
CHALLENGE_BOND = 10**11  # genesis.json's min_challenge_bond
EXECUTOR_ENDOWMENT = 10**17
EXECUTOR_BOND = 10**16
BYZANTINE = "validator4"
# What the bench changes in the checkout's genesis (section, parameter, value).
# What the bench changes in the checkout's genesis (section, parameter, value). The windows are sized
# for 2 cores shared with other work (a load of 30 was seen): every job of a row is assigned at once
# and its executor runs them one after the other, and a juror re-scores its disputes one at a time.
GENESIS_CHANGES = (
    ("disputes", "audit_probability_ppm", 1_000_000),
    ("disputes", "vote_commit_blocks", 300),
    ("disputes", "vote_reveal_blocks", 150),
    ("jobs", "region_min_candidates", 1),
)
# jobs.commit_blocks per job of a row (at least one row's worth), and the job timeout beyond it.
COMMIT_BLOCKS_PER_JOB = 150
TIMEOUT_BEYOND_COMMIT_BLOCKS = 600
START_TIMEOUT_S = 300.0
WORKER_READY_TIMEOUT_S = 300.0
POLL_S = 3.0
# Executors offer this many slots beyond the jobs of their row.
CAPACITY_SPARE = 2
# A settled job without a dispute counts as final this many blocks after its audit's draw height.
AUDIT_GRACE_BLOCKS = 3


@dataclass(frozen=True)
class Process:
    """One worker process: a behaviour and an engine configuration."""

    name: str
    behaviour: str
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class Row:
    """One line of the table: a behaviour, the region its executors offer in, how its jobs are posted."""

    name: str
    kind: str
    behaviour: str
    redundancy: int = 1
    # Executors in the row's region: (account name, the process that serves it).
    executors: tuple[tuple[str, str], ...] = ()

    @property
    def region(self) -> str:
        return self.name


HONEST_PROCESSES = (
    Process("honest-1-thread", "honest", ("--threads", "1")),
    Process("honest-2-threads", "honest", ("--threads", "2")),
    Process("honest-batch-8", "honest", ("--threads", "1", "--batch", "8", "--no-prefix-reuse")),
)
# withhold-reveal's honest partner, in a process of its own so that the honest rows' timing is their own.
PARTNER = Process("honest-partner", "honest", ("--threads", "1"))
CHEATS = ("cheaper-model", "cheaper-model-real-logprobs", "truncate", "edit-tokens", "other-prompt", "copy-reveal",
          "withhold-reveal", "greedy-for-sampled", "wrong-seed", "steer-2-positions", "lazy-probe")


def plan_rows() -> list[Row]:
    """Every row: each cheat, the byzantine juror, the honest executors alone and at redundancy 3."""
    rows = []
    for name in CHEATS:
        executors = ((name, name),)
        redundancy = 1
        if BEHAVIOURS[name].acts == WITHHOLDS:
            # Commit, then withhold: a partner's commitment moves the job to its reveal phase.
            executors += ((f"{name}-partner", PARTNER.name),)
            redundancy = 2
        rows.append(Row(name, "fraud", name, redundancy, executors))
    rows.append(Row("byzantine-juror", "fraud", "byzantine-juror"))
    for process in HONEST_PROCESSES:
        rows.append(Row(process.name, "honest", "honest", 1, ((process.name, process.name),)))
    rows.append(Row("honest-redundancy-3", "honest", "honest", 3,
                    tuple((f"redundancy-3-{process.name}", process.name) for process in HONEST_PROCESSES)))
    return rows


def worker_processes() -> list[Process]:
    """The worker processes the rows' executors run in (validator 4's byzantine juror apart)."""
    return [Process(name, name) for name in CHEATS] + list(HONEST_PROCESSES) + [PARTNER]


# -- the chain -------------------------------------------------------------------------------------


def free_port(host: str) -> int:
    """A TCP port on `host` that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class SecurityDevnet(Devnet):
    """The launcher's devnet, with the node's own worker left out for the validators in `own_workers`."""

    def __init__(self, layout: Layout, addresses, options: LaunchOptions, own_workers: set[str]):
        super().__init__(layout, addresses, options)
        self.own_workers = own_workers

    def _spawn(self, validator):
        if validator.name not in self.own_workers:
            return super()._spawn(validator)
        options = self.options
        self.options = dataclasses.replace(options, worker=False)
        try:
            return super()._spawn(validator)
        finally:
            self.options = options


def executor_keys(base: Path, rows: list[Row]) -> dict[str, tuple[Path, Keypair]]:
    """A new key file per executor account."""
    directory = base / "executors"
    directory.mkdir(parents=True, exist_ok=True)
    keys = {}
    for row in rows:
        for account, _ in row.executors:
            keys[account] = generate_key_file(directory / f"{account}.json")
    return keys


def genesis_for(base: Path, rows: list[Row], keys: dict[str, tuple[Path, Keypair]], capacity: int,
                challenge: bool = False) -> Layout:
    """The devnet's layout, its genesis changed for the bench: parameters (no audits when every job is
    challenged instead), the executors' stakes and offers, and the byzantine validator's half stake."""
    template = template_document()
    commit_blocks = COMMIT_BLOCKS_PER_JOB * max(1, capacity - CAPACITY_SPARE)
    changes = GENESIS_CHANGES + (
        ("jobs", "commit_blocks", commit_blocks),
        ("jobs", "job_timeout_blocks", commit_blocks + TIMEOUT_BEYOND_COMMIT_BLOCKS),
    ) + ((("disputes", "audit_probability_ppm", 0),) if challenge else ())
    for section, name, value in changes:
        params = template["app_state"].setdefault(section, {}).setdefault("params", {})
        params[name] = str(value) if isinstance(params.get(name), str) else value
    extra = [(keypair.public_key, EXECUTOR_ENDOWMENT) for _, keypair in keys.values()]
    layout = prepare(base / "devnet", 4, template=template, extra_balances=extra)
    document = json.loads(layout.genesis_path.read_text())
    stakes = document["app_state"]["staking"]["stakes"]
    for row in rows:
        for account, _ in row.executors:
            stakes.append(executor_stake(account, keys[account][1].public_key, row.region, capacity))
    byzantine = next(validator for validator in layout.validators if validator.name == BYZANTINE)
    half = str(DEV_BOND // 2)
    for entry in document["validators"]:
        if entry["address"] == byzantine.address:
            entry["power"] = half
    for entry in stakes:
        if entry["address"] == byzantine.address:
            entry["bonded"] = half
    write_atomically(layout.base_dir / GENESIS_FILE, json.dumps(document, indent=2).encode() + b"\n")
    return resume(layout.base_dir)


def executor_stake(name: str, account: bytes, region: str, capacity: int) -> dict:
    """A genesis stake that bonds, does not validate, and offers the embedded model in `region`."""
    return {
        "name": name,
        "address": encode_address(account),
        "bonded": str(EXECUTOR_BOND),
        "validate": False,
        "offer": {"models": [EMBEDDED_MODEL_ID], "price_per_token": str(DEV_PRICE_PER_TOKEN), "region": region,
                  "capacity": capacity},
    }


# -- worker processes --------------------------------------------------------------------------------


@dataclass
class RunningWorker:
    process_spec: Process
    keys: list[Path]
    log_path: Path
    popen: subprocess.Popen | None = None


def start_workers(base: Path, layout: Layout, addresses, rows: list[Row],
                  keys: dict[str, tuple[Path, Keypair]]) -> list[RunningWorker]:
    """One adversary worker process per behaviour (and the honest ones), each serving its accounts."""
    served: dict[str, list[Path]] = {process.name: [] for process in worker_processes()}
    for row in rows:
        for account, process_name in row.executors:
            served[process_name].append(keys[account][0])
    targets = [str(addresses[validator.name].rpc) for validator in layout.validators]
    byzantine = next(validator for validator in layout.validators if validator.name == BYZANTINE)
    running = []
    specs = [(process, served[process.name], ()) for process in worker_processes()]
    specs.append((Process(BYZANTINE, "byzantine-juror"), [byzantine.key_path], ("--vote",)))
    for index, (process, key_paths, extra) in enumerate(specs):
        directory = base / "workers" / process.name
        directory.mkdir(parents=True, exist_ok=True)
        target = str(addresses[BYZANTINE].rpc) if process.name == BYZANTINE else targets[index % len(targets)]
        command = [sys.executable, "-m", "bench.adversaries", "worker", "--behaviour", process.behaviour,
                   "--node", target, "--base-path", str(directory), "--parent-pid", str(os.getpid()),
                   *process.options, *extra]
        for path in key_paths:
            command += ["--key", str(path)]
        worker = RunningWorker(process, key_paths, directory / "worker.log")
        with open(worker.log_path, "ab") as log_file:
            worker.popen = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log_file,
                                            stderr=subprocess.STDOUT,
                                            env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT),
                                                 "GRPC_VERBOSITY": "NONE"})
        running.append(worker)
    return running


def wait_workers_ready(workers: list[RunningWorker], timeout: float) -> None:
    """Until every worker process follows the chain for each of its keys (SystemExit naming one that exits)."""
    deadline = time.monotonic() + timeout
    pending = list(workers)
    while pending:
        for worker in list(pending):
            if worker.popen.poll() is not None:
                raise SystemExit(f"worker {worker.process_spec.name} exited ({worker.popen.returncode}); "
                                 f"see {worker.log_path}")
            text = worker.log_path.read_text(errors="replace")
            if text.count("executing jobs for ") >= len(worker.keys):
                pending.remove(worker)
        if pending and time.monotonic() > deadline:
            raise SystemExit(f"worker {pending[0].process_spec.name} not ready after {timeout:g} s; "
                             f"see {pending[0].log_path}")
        time.sleep(1.0)


def stop_workers(workers: list[RunningWorker]) -> None:
    for worker in workers:
        if worker.popen is not None and worker.popen.poll() is None:
            worker.popen.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    for worker in workers:
        if worker.popen is None:
            continue
        try:
            worker.popen.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            worker.popen.kill()
            worker.popen.wait(10)


# -- jobs ----------------------------------------------------------------------------------------------


@dataclass
class PostedJob:
    row: Row
    job_id: bytes
    sampled: bool
    offender: bytes = b""  # the row's cheating executor (empty for an honest row)
    view: object | None = None
    done: bool = False
    challenged: bool = False


def sampling_for(row: Row, index: int, seed: int) -> types_pb2.Sampling:
    """Sampled for a cheat only a sampled job shows, else greedy and sampled in turn."""
    sampled = BEHAVIOURS[row.behaviour].sampled_only or index % 2 == 1
    if not sampled:
        return GREEDY
    return types_pb2.Sampling(temperature_milli=SAMPLED_TEMPERATURE_MILLI, top_k=SAMPLED_TOP_K,
                              top_p_ppm=SAMPLED_TOP_P_PPM, seed=seed)


def post_jobs(client: Client, rows: list[Row], per_row: dict[str, int], accounts: dict[str, bytes]) -> list[PostedJob]:
    """Every row's jobs in one batch, spread over the dev posters; ids computed from the posters' nonces."""
    info = client.chain_info()
    prompts = load_prompts()
    nonces = {name: client.next_nonce(dev_keypair(name).public_key) for name in POSTERS}
    posted, raws = [], []
    count = 0
    for row in rows:
        if row.behaviour == "byzantine-juror":
            continue  # it votes on the other rows' disputes
        for index in range(per_row[row.name]):
            poster = dev_keypair(POSTERS[count % len(POSTERS)])
            name = POSTERS[count % len(POSTERS)]
            sampling = sampling_for(row, index, seed=1000 + count)
            call = types_pb2.PostJob(model=bytes.fromhex(EMBEDDED_MODEL_ID), prompt=prompts[count % len(prompts)],
                                     prompt_format="chat", max_tokens=MAX_TOKENS, sampling=sampling,
                                     max_price_per_token=POST_PRICE, redundancy=row.redundancy, region=row.region)
            nonce = nonces[name]
            nonces[name] += 1
            signed = sign_transaction(poster, chain_id=info.chain_id, genesis_hash=info.genesis_hash, nonce=nonce,
                                      call=call, fee_rule=info.fee_rule)
            raws.append(signed.raw)
            offender = accounts[row.executors[0][0]] if row.kind == "fraud" else b""
            posted.append(PostedJob(row, jobs.job_id(info.genesis_hash, poster.public_key, nonce),
                                    sampling.temperature_milli > 0, offender))
            count += 1
    verdicts = client.submit_many(raws)
    refused = [verdict for verdict in verdicts if not verdict.accepted]
    if refused:
        raise SystemExit(f"the node refused a job: {refused[0].reason}")
    return posted


def follow(client: Client, posted: list[PostedJob], audit_delay: int, timeout: float,
           challenger: Keypair | None = None) -> bool:
    """Read every job until each is final with its audit (or, with a challenger, its challenge) decided; False
    when `timeout` passed first."""
    deadline = time.monotonic() + timeout
    last_line = ""
    while True:
        head = client.chain_info().best_height
        for job in posted:
            if job.done:
                continue
            try:
                job.view = client.get_job(job.job_id)
            except ClientError as error:
                if error.code == "NOT_FOUND":
                    continue  # not included yet
                raise
            if challenger is not None:
                challenge_settled(client, job, challenger)
                job.done = job.view.dispute is not None and is_done(job.view, head, audit_delay) or (
                    job.view.dispute is None and job.view.job.status in CLOSED_UNJUDGED)
            else:
                job.done = is_done(job.view, head, audit_delay)
        states: dict[str, int] = {}
        for job in posted:
            state = "done" if job.done else (job.view.status if job.view is not None else "posting")
            states[state] = states.get(state, 0) + 1
        line = f"#{head}: " + ", ".join(f"{count} {state}" for state, count in sorted(states.items()))
        if line != last_line:
            print(line, flush=True)
            last_line = line
        if all(job.done for job in posted):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_S)


# Statuses of a job that will never be judged (no result settled on).
CLOSED_UNJUDGED = (state_pb2.JOB_STATUS_EXPIRED, state_pb2.JOB_STATUS_CANCELLED, state_pb2.JOB_STATUS_REJECTED)


def challenge_settled(client: Client, job: PostedJob, challenger: Keypair) -> None:
    """Challenge a settled, undisputed job once, as a poster who distrusts it would: the row's offender's
    result, else the first revealed one (an honest row's, or a job reassigned after a miss)."""
    record = job.view.job
    if job.challenged or job.view.dispute is not None or record.status != state_pb2.JOB_STATUS_SETTLED:
        return
    revealed = [index for index, slot in enumerate(record.assignments)
                if slot.status == state_pb2.ASSIGNMENT_STATUS_REVEALED]
    if not revealed:
        return
    offender = job.offender
    candidate = next((index for index in revealed if record.assignments[index].executor == offender), revealed[0])
    call = types_pb2.Challenge(job_id=job.job_id, candidate=candidate, bond=CHALLENGE_BOND)
    try:
        client.submit(challenger, call)
    except ClientError as error:
        print(f"cannot challenge job {job.job_id.hex()[:16]}: {error.message}", flush=True)
        return
    job.challenged = True


def is_done(view, head: int, audit_delay: int) -> bool:
    """Final, its dispute decided; a settled job without one only once its audit draw is past."""
    job = view.job
    if view.dispute is not None:
        return view.dispute.status == state_pb2.DISPUTE_STATUS_DECIDED and job.status in jobs.FINAL_STATUSES
    if job.status == state_pb2.JOB_STATUS_SETTLED:
        return head > job.final_height + audit_delay + AUDIT_GRACE_BLOCKS
    return job.status in jobs.FINAL_STATUSES


# -- the table -----------------------------------------------------------------------------------


# Slashes for what a party did wrong, and those for being late (a missed commit, reveal or vote): the
# first must never reach an honest party; the second can, on a machine too slow for the windows.
JUDGEMENT_OFFENCES = ("invalid_result", "conviction", "contrary_vote")
LATENESS_OFFENCES = ("missed_result", "missed_vote")


@dataclass
class Tally:
    jobs: int = 0
    detected: int = 0
    slashed: int = 0
    wrongly_slashed: int = 0
    # Honest parties slashed for lateness in the row's jobs (a missed commit, reveal or vote).
    late_slashed: int = 0
    # Jobs the row's executors never held (drawn elsewhere), or did not reveal in time (a cheat that
    # reveals, an honest executor): not counted in `jobs`.
    not_executed: int = 0
    late: int = 0
    # Jobs whose offender's result was judged invalid and whose poster got that result's payment back (none held,
    # the escrow returned).
    made_whole: int = 0
    # Jobs whose row results a committee judged (valid or invalid), and the offender's slashes by offence.
    judged: int = 0
    offences: dict[str, int] = field(default_factory=dict)


def tabulate(rows: list[Row], posted: list[PostedJob], accounts: dict[str, bytes], honest: set[bytes],
             byzantine: bytes, slashes: dict[bytes, list[state_pb2.SlashRecord]],
             jailed: set[bytes] = frozenset()) -> list[dict]:
    """The rows of the result, from the jobs, their disputes and the slashes."""
    by_job: dict[bytes, list[state_pb2.SlashRecord]] = {}
    for records in slashes.values():
        for record in records:
            by_job.setdefault(record.job, []).append(record)
    table = []
    for row in rows:
        offender = None
        if row.behaviour == "byzantine-juror":
            tally = tally_byzantine(posted, byzantine, by_job, honest)
        else:
            row_accounts = {accounts[name] for name, _ in row.executors}
            offender = accounts[row.executors[0][0]] if row.kind == "fraud" else None
            tally = Tally()
            for job in posted:
                if job.row is row:
                    tally_job(tally, job, row, row_accounts, offender, by_job, honest)
            if row.behaviour == "steer-2-positions" and offender is not None:
                tally.slashed += convicted_jobs(posted, row, offender, slashes.get(offender, []))
        entry = {"name": row.name, "kind": row.kind, "jobs": tally.jobs, "detected": tally.detected,
                 "slashed": tally.slashed, "wrongly_slashed": tally.wrongly_slashed,
                 "caught_by": BEHAVIOURS[row.behaviour].caught_by, "judged": tally.judged,
                 "late": tally.late, "late_slashed": tally.late_slashed, "not_executed": tally.not_executed,
                 "offences": tally.offences, "made_whole": tally.made_whole,
                 "jailed": offender in jailed if offender else None}
        table.append(entry)
    return table


def tally_job(tally: Tally, job: PostedJob, row: Row, row_accounts: set[bytes], offender: bytes | None,
              by_job: dict[bytes, list[state_pb2.SlashRecord]], honest: set[bytes]) -> None:
    """Count one job of a cheat's or an honest row."""
    record = job.view.job if job.view is not None else None
    mine = [(index, slot) for index, slot in enumerate(record.assignments if record is not None else ())
            if slot.executor in row_accounts]
    if not mine:
        tally.not_executed += 1
        return
    job_slashes = by_job.get(job.job_id, [])
    for slash in job_slashes:
        if slash.account == offender:
            tally.offences[slash.offence] = tally.offences.get(slash.offence, 0) + 1
    tally.late_slashed += sum(1 for slash in job_slashes
                              if slash.account in honest and slash.offence in LATENESS_OFFENCES)
    behaviour = BEHAVIOURS[row.behaviour]
    expected = [slot for _, slot in mine if slot.executor != offender or behaviour.acts == REVEALS]
    if any(slot.status != state_pb2.ASSIGNMENT_STATUS_REVEALED for slot in expected):
        tally.late += 1  # a result that was to be revealed was not (a missed deadline): not judged
        return
    tally.jobs += 1
    tally.wrongly_slashed += any(slash.account in honest and slash.offence in JUDGEMENT_OFFENCES
                                 for slash in job_slashes)
    tally.judged += any(slot.verdict in (state_pb2.CANDIDATE_VERDICT_VALID, state_pb2.CANDIDATE_VERDICT_INVALID)
                        for _, slot in mine)
    if offender is None:  # an honest row: a detection would be a false accusation
        tally.detected += any(slot.verdict == state_pb2.CANDIDATE_VERDICT_INVALID for _, slot in mine)
        return
    index, slot = next((index, slot) for index, slot in mine if slot.executor == offender)
    tally.made_whole += (slot.verdict == state_pb2.CANDIDATE_VERDICT_INVALID and slot.payment == 0
                         and record.escrow == 0)
    if behaviour.caught_by == BY_VERIFIER:
        tally.detected += slot.verdict == state_pb2.CANDIDATE_VERDICT_INVALID
    elif behaviour.caught_by == BY_DEADLINE:
        tally.detected += slot.status == state_pb2.ASSIGNMENT_STATUS_MISSED
    elif behaviour.caught_by == BY_EVIDENCE:
        tally.detected += reported_misses(job.view.dispute, index) > 0
    tally.slashed += any(slash.account == offender and slash.offence in ("invalid_result", "missed_result")
                         for slash in job_slashes)


def convicted_jobs(posted: list[PostedJob], row: Row, offender: bytes, records: list[state_pb2.SlashRecord]) -> int:
    """The row's jobs whose misses the committee reported before the offender's last conviction (the
    evidence a conviction punished; later jobs' evidence waits for the next one)."""
    heights = [record.height for record in records if record.offence == "conviction"]
    if not heights:
        return 0
    count = 0
    for job in posted:
        if job.row is not row or job.view is None or job.view.dispute is None:
            continue
        dispute = job.view.dispute
        mine = [index for index, slot in enumerate(job.view.job.assignments) if slot.executor == offender]
        if mine and reported_misses(dispute, mine[0]) > 0 and dispute.decided_height <= max(heights):
            count += 1
    return count


def reported_misses(dispute: state_pb2.Dispute | None, candidate: int) -> int:
    """The most misses any revealed member reported for the candidate (0 without a dispute)."""
    if dispute is None:
        return 0
    return max((vote.misses for member in dispute.committee if member.revealed for vote in member.votes
                if vote.candidate == candidate), default=0)


def tally_byzantine(posted: list[PostedJob], byzantine: bytes, by_job: dict[bytes, list[state_pb2.SlashRecord]],
                    honest: set[bytes]) -> Tally:
    """The byzantine member: the disputes it voted in that found a result invalid, and whether it was outvoted
    (detected) and slashed for its contrary vote."""
    tally = Tally()
    for job in posted:
        dispute = job.view.dispute if job.view is not None else None
        if dispute is None or dispute.status != state_pb2.DISPUTE_STATUS_DECIDED:
            continue
        member = next((member for member in dispute.committee if member.account == byzantine), None)
        if member is None or not member.revealed:
            continue
        invalid = {candidate for candidate, verdict in zip(dispute.candidates, dispute.verdicts)
                   if verdict == state_pb2.CANDIDATE_VERDICT_INVALID}
        if not invalid:
            continue
        tally.jobs += 1
        tally.judged += 1
        tally.detected += any(vote.valid for vote in member.votes if vote.candidate in invalid)
        job_slashes = by_job.get(job.job_id, [])
        tally.slashed += any(slash.account == byzantine and slash.offence == "contrary_vote" for slash in job_slashes)
        for slash in job_slashes:
            if slash.account == byzantine:
                tally.offences[slash.offence] = tally.offences.get(slash.offence, 0) + 1
        tally.wrongly_slashed += any(slash.account in honest and slash.offence in JUDGEMENT_OFFENCES
                                     for slash in job_slashes)
    return tally


def print_table(table: list[dict]) -> None:
    print("| row | kind | caught by | jobs | judged | detected | slashed | wrongly slashed | late (not counted) | "
          "honest parties slashed for lateness | offender's slashes |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for entry in table:
        offences = ", ".join(f"{name} {count}" for name, count in sorted(entry["offences"].items())) or "-"
        print(f"| {entry['name']} | {entry['kind']} | {entry['caught_by']} | {entry['jobs']} | {entry['judged']} | "
              f"{entry['detected']} | {entry['slashed']} | {entry['wrongly_slashed']} | {entry['late']} | "
              f"{entry['late_slashed']} | {offences} |")


# -- the run -------------------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, help="jobs per row (default 3; --quick 1, steer-2-positions at least 2)")
    parser.add_argument("--quick", action="store_true", help="one job per row")
    parser.add_argument("--output", type=Path, help="also write the JSON document to this file")
    parser.add_argument("--keep", type=Path, help="run in DIR and keep it (logs, chain) afterwards")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for the verdicts (default 3600)")
    parser.add_argument("--challenge", action="store_true",
                        help="no audits: challenge every settled job instead (bond 10^11 from ferdie)")
    parser.add_argument("--rows", help="only these rows, comma-separated (default: every row; "
                                       "`python -m bench.adversaries list` names the behaviours)")
    args = parser.parse_args(argv)
    known = [row.name for row in plan_rows()]
    args.rows = [name.strip() for name in args.rows.split(",")] if args.rows else known
    unknown = [name for name in args.rows if name not in known]
    if unknown:
        parser.error(f"--rows: no row {unknown[0]!r} (rows: {', '.join(known)})")
    args.jobs = args.jobs or (1 if args.quick else 3)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    rows = [row for row in plan_rows() if row.name in args.rows]
    # Conviction needs the evidence of two steered jobs (tests/security/test_adversaries.py).
    per_row = {row.name: max(args.jobs, 2) if row.behaviour == "steer-2-positions" else args.jobs for row in rows}
    base = args.keep or Path(tempfile.mkdtemp(prefix="inferchain-security-"))
    base.mkdir(parents=True, exist_ok=True)
    total = sum(count for name, count in per_row.items() if name != "byzantine-juror")
    print(f"security bench: {total} jobs over {len(rows) - 1} rows ({'challenged' if args.challenge else 'audited'}), "
          f"files in {base}", flush=True)
    keys = executor_keys(base, rows)
    accounts = {name: keypair.public_key for name, (_, keypair) in keys.items()}
    layout = genesis_for(base, rows, keys, capacity=max(per_row.values()) + CAPACITY_SPARE, challenge=args.challenge)
    addresses = {validator.name: NodeAddresses(*(Address(validator.host, free_port(validator.host)) for _ in range(3)))
                 for validator in layout.validators}
    devnet = SecurityDevnet(layout, addresses, LaunchOptions(worker_probes=False), own_workers={BYZANTINE})
    workers: list[RunningWorker] = []
    try:
        devnet.start()
        devnet.wait_finalizing(START_TIMEOUT_S, report=lambda line: print(line, flush=True))
        workers = start_workers(base, layout, addresses, rows, keys)
        wait_workers_ready(workers, WORKER_READY_TIMEOUT_S)
        print(f"every worker follows the chain ({time.monotonic() - started:.0f} s)", flush=True)
        with Client(str(addresses[layout.validators[0].name].rpc), timeout=60) as client:
            posted = post_jobs(client, rows, per_row, accounts)
            challenger = dev_keypair(CHALLENGER) if args.challenge else None
            finished = follow(client, posted, audit_delay_blocks(layout), args.timeout, challenger)
            byzantine = load_key_file(next(v for v in layout.validators if v.name == BYZANTINE).key_path).public_key
            honest = honest_accounts(rows, accounts, {load_key_file(validator.key_path).public_key
                                                      for validator in layout.validators if validator.name != BYZANTINE})
            slashes = {account: list(client.slashes(account)) for account in set(accounts.values()) | {byzantine}
                       | honest}
            jailed = {account for account in set(accounts.values()) if jailed_now(client, account)}
    finally:
        stop_workers(workers)
        devnet.stop()
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    table = tabulate(rows, posted, accounts, honest, byzantine, slashes, jailed)
    print_table(table)
    document = {
        "rows": table,
        "finished": finished,
        "jobs_per_row": args.jobs,
        "max_tokens": MAX_TOKENS,
        "validators": len(layout.validators),
        "audit_probability_ppm": 0 if args.challenge else 1_000_000,
        "challenged": args.challenge,
        "seconds": round(time.monotonic() - started, 1),
        "files": str(base) if args.keep else None,
        "command": " ".join(["bench/security.py", *(argv if argv is not None else sys.argv[1:])]),
    }
    text = json.dumps(document)
    if args.output:
        args.output.write_text(text + "\n")
    print(text, flush=True)
    return 0 if finished else 1


def jailed_now(client: Client, account: bytes) -> bool:
    """Whether the account's stake ledger is jailed by a dispute's slash now (staking.ledger query)."""
    try:
        answer = ModuleQueries(client).query("staking", "ledger", state_pb2.AccountQuery(account=account))
    except ClientError:
        return False  # no ledger left
    return answer.response.jailed


def audit_delay_blocks(layout: Layout) -> int:
    """The devnet genesis's audit delay: a settled job is audited (or not) that many blocks after it settles."""
    document = json.loads(layout.genesis_path.read_text())
    return int(document["app_state"]["disputes"]["params"].get("audit_delay_blocks", 2))


def honest_accounts(rows: list[Row], accounts: dict[str, bytes], validators: set[bytes]) -> set[bytes]:
    """The honest parties: the honest validators given, the honest rows' executors and the cheats' partners."""
    honest = set(validators)
    for row in rows:
        for name, _ in row.executors:
            if row.kind == "honest" or name != row.executors[0][0]:
                honest.add(accounts[name])
    return honest


if __name__ == "__main__":
    raise SystemExit(main())
