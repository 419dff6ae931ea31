"""Adversarial executors for the tests and the security bench (issue 25, item 8): each cheat as a named
transformation from the honest computation to what a cheating executor reveals, and a worker that
runs with one of them against a real node.

    .venv/bin/python -m bench.adversaries list
    .venv/bin/python -m bench.adversaries worker --behaviour NAME --node HOST:PORT --key FILE [--key FILE ...]

The behaviours (`BEHAVIOURS`; docs/verification.md sections 7 and 9 give the lengths at which the
verifier catches each, `Behaviour.caught_from_tokens` here):

  honest                       the job's own result (the bench's honest rows vary the engine instead)
  cheaper-model                a Q4_0 requantisation of the model, made at run time in a scratch
                               directory, claimed as the real model, with its own log-probabilities
  cheaper-model-real-logprobs  its tokens, with the real model's log-probabilities (one batched pass)
  truncate                     the honest output cut to its first half and ended with end-of-sequence
  edit-tokens                  3 honest tokens replaced by random ordinary tokens
  other-prompt                 the answer to another prompt, with this job's id and sampling
  copy-reveal                  the result of another job of the same model, revealed as it was
  withhold-reveal              computes and commits, never reveals
  greedy-for-sampled           a sampled job answered greedily
  wrong-seed                   a sampled job answered with another seed
  steer-2-positions            the real model and sampler, but 2 positions per 64 tokens forced to a
                               rival that lost by 0.02-0.2 logits: passes every per-job test (section 9),
                               caught only by the evidence across jobs (issue 25, item 4)
  lazy-probe                   ignores the jobs it suspects are probes; here it answers none
  byzantine-juror              executes honestly, but as a committee member votes every candidate valid

Forgers claim the real model's log-probabilities (they score their output with the real model, the
forger's best move, so only their tokens can betray them), except `cheaper-model`. A test forges a
result with `forge(name, job, forger)`; the worker runs the chain's worker (chain/worker) with the
computation, the submitter or the juror swapped, never changing those files.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import sys
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from inference import frauds  # noqa: E402
from inference.engine import Engine, EngineConfig, logprobs_micronats  # noqa: E402
from inference.result import InferenceJob, InferenceResult  # noqa: E402
from inference.sampler import MAX_SEED, candidate_scores, choose_token  # noqa: E402
from inference.verifier import Verdict, rescore_and_judge  # noqa: E402

log = logging.getLogger("inferchain.adversary")

# What a behaviour's executor does on chain.
REVEALS = "reveals"  # commits and reveals the result forge() returns
WITHHOLDS = "withholds"  # computes and commits, never reveals
SILENT = "silent"  # neither computes nor commits
# How the chain can tell.
BY_VERIFIER = "verifier"  # one re-score judges the result invalid
BY_DEADLINE = "deadline"  # the assignment misses its deadline
BY_EVIDENCE = "evidence"  # only the misses summed over jobs convict (runtime/disputes/evidence.py)
BY_VOTES = "votes"  # its votes oppose the committee's verdict
NOT_A_CHEAT = "none"

CHEAP_QUANTISATION = "Q4_0"
EDITED_TOKENS = 3
# Another prompt's answer: what a lazy executor keeps at hand for every job.
OTHER_PROMPT = "Write one sentence about the weather today."
# The job an executor with nothing to copy yet computes once, to copy from then on.
DONOR_PROMPT = "List three colours."
DONOR_JOB_ID = bytes(range(32))
# Steering inside the per-job tolerance (docs/verification.md section 9): at most this many positions
# per 64-token window, each taking a rival that lost by more than the miss slack (0.01 logits, so the
# position counts as a miss) and at most STEER_MOST logits, so that the two depths together stay far
# inside the budget (two misses of up to 0.2 logits in 64 tokens: an honest chance of 10^-4.0, against
# the budget of 10^-6; at 0.5 logits each, 10^-6.0).
STEER_PER_WINDOW = 2
STEER_WINDOW = 64
STEER_LEAST = 0.02
STEER_MOST = 0.2


class Forger:
    """What a cheating executor has at hand: the real model, a cheaper copy made on first use in a
    scratch directory, and the results of other jobs it has seen."""

    def __init__(self, engine: Engine, scratch: str | Path, cheap_quantisation: str = CHEAP_QUANTISATION):
        self.engine = engine
        self.scratch = Path(scratch)
        self.cheap_quantisation = cheap_quantisation
        self._cheap: Engine | None = None
        self._seen: deque[InferenceResult] = deque(maxlen=32)
        self._lock = threading.Lock()
        # Held by whoever uses the engines (a job's forgery, a juror's re-score): one at a time.
        self.lock = threading.RLock()

    # -- computing ---------------------------------------------------------------------------

    def honest(self, job: InferenceJob) -> InferenceResult:
        """The job's honest result, computed once (on the pinned engine a job has one honest result);
        remembered, so that a copier can copy it later."""
        for result in self._seen:
            if result.job == job:
                return result
        result = self.engine.generate(job)
        self.remember(result)
        return result

    def cheap(self) -> Engine:
        """The cheaper model: the real file requantised by llama.cpp, loaded under the real model's id."""
        with self._lock:
            if self._cheap is None:
                self.scratch.mkdir(parents=True, exist_ok=True)
                target = self.scratch / f"cheaper-{self.cheap_quantisation.lower()}.gguf"
                if not target.exists():
                    log.info("requantising %s to %s in %s", self.engine.model_path, self.cheap_quantisation, target)
                    frauds.requantise(self.engine.model_path, target, self.cheap_quantisation)
                self._cheap = Engine(target, self.engine.model_id, self.engine.config)
            return self._cheap

    def real_logprobs(self, result: InferenceResult) -> InferenceResult:
        """The same output with the real model's log-probabilities (one batched evaluation)."""
        if not result.tokens:
            return result
        if any(not 0 <= token < self.engine.vocabulary_size for token in result.tokens):
            return result
        prompt = self.engine.prompt_tokens(result.job.prompt, result.job.prompt_format)
        rows = self.engine.output_logits(prompt, result.tokens)
        logprobs = logprobs_micronats(rows, result.tokens)
        return result.replace(logprobs_micronats=tuple(int(value) for value in logprobs))

    def prompt_length(self, job: InferenceJob) -> int:
        """The job's prompt token count, as an honest executor (and the verifier) counts it."""
        return len(self.engine.prompt_tokens(job.prompt, job.prompt_format))

    # -- other jobs' results -----------------------------------------------------------------

    def remember(self, result: InferenceResult) -> None:
        """Keep a result of some job, for copy-reveal."""
        self._seen.append(result)

    def donor(self, job: InferenceJob) -> InferenceResult:
        """A result of another job of the same model: the latest seen, else one computed once for the purpose."""
        for result in reversed(self._seen):
            if result.job.job_id != job.job_id and result.job.model == job.model:
                return result
        donor_job = InferenceJob(job.model, DONOR_JOB_ID, DONOR_PROMPT, job.max_tokens, job.sampling)
        return self.honest(donor_job)

    def close(self) -> None:
        if self._cheap is not None:
            self._cheap.close()
            self._cheap = None


# -- the transformations -------------------------------------------------------------------------


def _honest(job: InferenceJob, forger: Forger) -> InferenceResult:
    return forger.honest(job)


def _cheaper_model(job: InferenceJob, forger: Forger) -> InferenceResult:
    return forger.cheap().generate(job)


def _cheaper_model_real_logprobs(job: InferenceJob, forger: Forger) -> InferenceResult:
    return forger.real_logprobs(forger.cheap().generate(job))


def _truncate(job: InferenceJob, forger: Forger) -> InferenceResult:
    engine = forger.engine
    cut = frauds.truncate(forger.honest(job), engine.end_of_sequence_token, engine.detokenize)
    return forger.real_logprobs(cut)


def _edit_tokens(job: InferenceJob, forger: Forger) -> InferenceResult:
    engine = forger.engine
    edited = frauds.replace_tokens(forger.honest(job), EDITED_TOKENS, engine.vocabulary_size,
                                   set(engine.end_of_generation_tokens()), engine.detokenize)
    return forger.real_logprobs(edited)


def _other_prompt(job: InferenceJob, forger: Forger) -> InferenceResult:
    other = forger.engine.generate(dataclasses.replace(job, prompt=OTHER_PROMPT, prompt_format="chat"))
    return forger.real_logprobs(_claimed_for(job, other, forger))


def _copy_reveal(job: InferenceJob, forger: Forger) -> InferenceResult:
    # Copied as it was, log-probabilities included: a copier computes nothing.
    return _claimed_for(job, forger.donor(job), forger)


def _greedy_for_sampled(job: InferenceJob, forger: Forger) -> InferenceResult:
    return forger.engine.generate(job, choose=frauds.sampler_for(job, temperature_milli=0))


def _wrong_seed(job: InferenceJob, forger: Forger) -> InferenceResult:
    return forger.engine.generate(job, choose=frauds.sampler_for(job, seed=(job.sampling.seed + 1) & MAX_SEED))


def _steer_2_positions(job: InferenceJob, forger: Forger) -> InferenceResult:
    return forger.engine.generate(job, choose=NearRivalSteering(job))


def _claimed_for(job: InferenceJob, other: InferenceResult, forger: Forger) -> InferenceResult:
    """Another result's output (tokens, text, log-probabilities, stop) claimed as the answer to `job`."""
    return InferenceResult(job=job, prompt_tokens=forger.prompt_length(job), tokens=other.tokens, text=other.text,
                           logprobs_micronats=other.logprobs_micronats, stop_reason=other.stop_reason)


class NearRivalSteering:
    """The job's own sampler, except that at up to `per_window` positions of each `window` tokens the
    runner-up is taken where it lost by more than `least` and at most `most` logits (of the raw
    logits for a greedy or top-k 1 job, of T x the Gumbel scores for a sampled one). `steered`
    lists the positions taken."""

    def __init__(self, job: InferenceJob, per_window: int = STEER_PER_WINDOW, window: int = STEER_WINDOW,
                 least: float = STEER_LEAST, most: float = STEER_MOST):
        self.job = job
        self.per_window = per_window
        self.window = window
        self.least = least
        self.most = most
        self.steered: list[int] = []

    def __call__(self, logits: np.ndarray, position: int) -> int:
        params = self.job.sampling
        choice = choose_token(logits, params, self.job.job_id, position)
        if self._used(position) >= self.per_window:
            return choice
        rival, gap = self._runner_up(logits, position, choice)
        if rival is None or not self.least < gap <= self.most:
            return choice
        self.steered.append(position)
        return rival

    def _used(self, position: int) -> int:
        window = position // self.window
        return sum(1 for steered in self.steered if steered // self.window == window)

    def _runner_up(self, logits: np.ndarray, position: int, choice: int) -> tuple[int | None, float]:
        """The best token other than the choice, and how far it lost by (in logits)."""
        params = self.job.sampling
        if params.greedy or params.top_k == 1:
            ids, scores, scale = np.arange(len(logits)), np.asarray(logits, dtype=np.float64), 1.0
        else:
            ids, scores = candidate_scores(logits, params, self.job.job_id, position)
            scale = params.temperature
        if len(ids) < 2:
            return None, 0.0
        chosen = int(np.flatnonzero(ids == choice)[0])
        others = scores.copy()
        others[chosen] = -np.inf
        second = int(np.argmax(others))
        return int(ids[second]), float(scale * (scores[chosen] - scores[second]))


@dataclass(frozen=True)
class Behaviour:
    """One executor behaviour: what it reveals, and how the chain is expected to tell."""

    name: str
    summary: str
    forge: Callable[[InferenceJob, Forger], InferenceResult] | None
    acts: str = REVEALS
    caught_by: str = BY_VERIFIER
    # The job length from which docs/verification.md reports every job caught (0: any length).
    caught_from_tokens: int = 0
    # Only a sampled job can tell this behaviour from an honest one.
    sampled_only: bool = False
    # As a committee member, votes every candidate valid whatever it re-scores.
    votes_valid: bool = False
    # Runs the cheaper model (its worker makes it before following the chain, not at the first job).
    uses_cheaper_model: bool = False

    @property
    def cheats(self) -> bool:
        return self.caught_by != NOT_A_CHEAT


BEHAVIOURS: dict[str, Behaviour] = {behaviour.name: behaviour for behaviour in (
    Behaviour("honest", "the job's own result", _honest, caught_by=NOT_A_CHEAT),
    Behaviour("cheaper-model", f"a {CHEAP_QUANTISATION} requantisation claimed as the model, its own log-probabilities",
              _cheaper_model, caught_from_tokens=64, uses_cheaper_model=True),
    Behaviour("cheaper-model-real-logprobs", "the cheaper model's tokens with the real model's log-probabilities",
              _cheaper_model_real_logprobs, caught_from_tokens=64, uses_cheaper_model=True),
    Behaviour("truncate", "the honest output cut in half and ended with end-of-sequence", _truncate),
    Behaviour("edit-tokens", f"{EDITED_TOKENS} honest tokens replaced by random ones", _edit_tokens),
    Behaviour("other-prompt", "the answer to another prompt", _other_prompt, caught_from_tokens=16),
    Behaviour("copy-reveal", "another job's result, copied", _copy_reveal, caught_from_tokens=16),
    Behaviour("withhold-reveal", "computes and commits, never reveals", _honest, acts=WITHHOLDS,
              caught_by=BY_DEADLINE),
    Behaviour("greedy-for-sampled", "a sampled job answered greedily", _greedy_for_sampled, caught_from_tokens=64,
              sampled_only=True),
    Behaviour("wrong-seed", "a sampled job answered with another seed", _wrong_seed, caught_from_tokens=64,
              sampled_only=True),
    Behaviour("steer-2-positions", "2 positions per 64 tokens forced to a rival within 0.2 logits",
              _steer_2_positions, caught_by=BY_EVIDENCE, caught_from_tokens=64),
    Behaviour("lazy-probe", "ignores the jobs it suspects are probes (here: every job)", None, acts=SILENT,
              caught_by=BY_DEADLINE),
    Behaviour("byzantine-juror", "executes honestly; as a committee member votes every candidate valid", _honest,
              caught_by=BY_VOTES, votes_valid=True),
)}


def behaviour(name: str) -> Behaviour:
    """The behaviour called `name` (ValueError naming the known ones otherwise)."""
    try:
        return BEHAVIOURS[name]
    except KeyError:
        raise ValueError(f"unknown behaviour {name!r}; known: {', '.join(BEHAVIOURS)}") from None


def forge(name: str, job: InferenceJob, forger: Forger) -> InferenceResult | None:
    """What an executor with this behaviour reveals for `job` (None: it reveals nothing)."""
    chosen = behaviour(name)
    if chosen.forge is None or chosen.acts != REVEALS:
        return None
    return chosen.forge(job, forger)


def forging_behaviours() -> list[Behaviour]:
    """The behaviours whose revealed result a re-score judges invalid."""
    return [entry for entry in BEHAVIOURS.values() if entry.caught_by == BY_VERIFIER]


# -- the worker ----------------------------------------------------------------------------------


class ForgingRunner:
    """A worker Runner (chain/worker/executor.py) that computes with a behaviour instead of the engine
    pool; one job at a time, since the behaviours share one engine."""

    def __init__(self, chosen: Behaviour, forger: Forger):
        self.behaviour = chosen
        self.forger = forger

    def __call__(self, job: InferenceJob, cancelled: Callable[[], bool]) -> InferenceResult:
        from chain.worker.executor import JobCancelled

        with self.forger.lock:
            if cancelled():
                raise JobCancelled()
            result = self.behaviour.forge(job, self.forger)
        if self.behaviour.forge is not _honest:
            log.info("%s: forged a result for job %s (%d tokens)", self.behaviour.name, job.job_id.hex()[:16],
                     len(result.tokens))
        return result


def adversarial_worker_class(chosen: Behaviour):
    """chain.worker.worker.Worker with the behaviour's submissions: reveals withheld, or jobs ignored."""
    from chain.worker.worker import REVEAL, Worker

    class AdversarialWorker(Worker):
        """The chain's worker, except for what `behaviour` changes."""

        behaviour = chosen

        def start_run(self, job, tracked) -> None:
            if self.behaviour.acts == SILENT:
                tracked.error = f"ignored ({self.behaviour.name})"
                log.info("%s: ignoring job %s", self.behaviour.name, job.id.hex()[:16])
                return
            super().start_run(job, tracked)

        def send(self, tracked, phase: str) -> None:
            if phase == REVEAL and self.behaviour.acts == WITHHOLDS:
                if REVEAL not in tracked.failed:
                    log.info("%s: withholding the reveal of job %s", self.behaviour.name, tracked.job_id.hex()[:16])
                    tracked.failed.add(REVEAL)  # never sent, never tried again
                return
            super().send(tracked, phase)

    return AdversarialWorker


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.adversaries", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the behaviours, one a line")
    worker = commands.add_parser("worker", help="run the chain's executor worker with one behaviour")
    worker.add_argument("--behaviour", required=True, choices=sorted(BEHAVIOURS))
    worker.add_argument("--node", required=True, help="the node's API, HOST:PORT")
    worker.add_argument("--key", required=True, action="append",
                        help="an executor key (file or dev name); repeat for several executors in this process")
    worker.add_argument("--base-path", type=Path, required=True,
                        help="journals under BASE_PATH/worker, the cheaper model under BASE_PATH/scratch")
    worker.add_argument("--threads", type=int, default=1, help="llama.cpp threads (default 1)")
    worker.add_argument("--batch", type=int, default=512, help="llama.cpp n_batch (default 512)")
    worker.add_argument("--context", type=int, default=2048, help="context tokens (default 2048)")
    worker.add_argument("--no-prefix-reuse", action="store_true", help="evaluate every prompt from the start")
    worker.add_argument("--vote", action="store_true",
                        help="also vote on the account's dispute duties (a validator's worker; a byzantine-juror "
                             "votes every candidate valid)")
    worker.add_argument("--log-level", default="info", choices=("error", "warning", "info", "debug"))
    worker.add_argument("--parent-pid", type=int, help="stop when the process with this id exits")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "list":
        for entry in BEHAVIOURS.values():
            print(f"{entry.name:30} {entry.caught_by:9} {entry.summary}")
        return 0
    return run_worker(args)


def run_worker(args: argparse.Namespace) -> int:
    """Serve every key with the behaviour until SIGTERM or SIGINT (or the parent process exits)."""
    from chain.cli.worker import stop_on_signals
    from chain.keys import load_signer
    from chain.logs import configure_logging
    from chain.worker.journal import Journal
    from chain.client import Client
    from inference.loading import load_engine
    from inference.model_store import ModelStore

    configure_logging(args.log_level, "plain")
    stop = stop_on_signals(args.parent_pid)
    chosen = behaviour(args.behaviour)
    keypairs = [load_signer(key) for key in args.key]
    with Client(args.node) as client:
        chain_id = client.chain_info().chain_id
    config = EngineConfig(threads=args.threads, batch=args.batch, context=args.context,
                          gpu_layers=0, reuse_prefix=not args.no_prefix_reuse)
    engine = load_engine(ModelStore(args.base_path / "models"), None, config)
    forger = Forger(engine, args.base_path / "scratch")
    if chosen.uses_cheaper_model:
        forger.cheap()
    runner = ForgingRunner(chosen, forger)
    worker_class = adversarial_worker_class(chosen)
    rescore = juror_rescorer(chosen, forger) if args.vote else None
    threads = []
    for keypair in keypairs:
        journal = Journal(args.base_path / "worker" / chain_id / keypair.address)
        worker = worker_class(args.node, keypair, runner, journal, rescore=rescore)
        thread = threading.Thread(target=worker.run, args=(stop,), name=f"worker-{keypair.address[:8]}", daemon=True)
        thread.start()
        threads.append(thread)
    log.info("%s: %d executor(s) on %s via %s", chosen.name, len(keypairs), chain_id, args.node)
    try:
        while not stop.wait(0.5):
            if not any(thread.is_alive() for thread in threads):
                break
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=15)
        forger.close()
        engine.close()
    return 0


def juror_rescorer(chosen: Behaviour, forger: Forger):
    """The Rescorer (chain/worker/juror.py) a member with this behaviour votes with: the verifier on the
    real model, or, for a byzantine member, a verdict of valid without re-scoring anything."""

    def rescore(result: InferenceResult, thresholds, cancelled: Callable[[], bool]) -> Verdict:
        if chosen.votes_valid:
            log.info("%s: voting job %s valid without re-scoring it", chosen.name, result.job.job_id.hex()[:16])
            return _valid_verdict(result, thresholds)
        with forger.lock:
            return rescore_and_judge(result, forger.engine, thresholds)
    return rescore


def _valid_verdict(result: InferenceResult, thresholds) -> Verdict:
    """A verdict of valid with no miss, whatever the result holds."""

    return Verdict(valid=True, model=result.job.model, job_id=result.job.job_id_hex, positions=len(result.tokens),
                   worst_margin_micro=0, worst_position=0, misses=0, depth_sum_micro=0, worst_window_start=-1,
                   window_depth_sum_micro=0, honest_chance_log10=0.0,
                   honest_chance_budget_log10=0.0, mean_logprob_error_micro=0, max_logprob_error_micro=0, reasons=())


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    raise SystemExit(main())
