"""A small market world for runtime tests: one registered model, bonded executors with offers."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from proto import state_pb2, types_pb2
from proto.digest import logprobs_digest
from runtime import jobs, models, staking, system
from runtime.disputes import params as disputes
from runtime.executive import apply_block, check_transaction, transaction_rules
from runtime.disputes.recipes import vote_commitment
from runtime.disputes.storage import read_dispute
from runtime.invariants import reserved_by_purpose, supply_is_conserved
from runtime.primitives import BlockContext
from runtime.staking.genesis import GenesisStake
from runtime.state import MemoryState
from tests.runtime.helpers import (
    ACCOUNTS,
    AUTHOR,
    CHAIN_ID,
    GENESIS_HASH,
    Account,
    assert_events_declared,
    genesis_state,
    sign,
)

MODEL_ID = bytes(range(32))
END_TOKENS = (2,)
MIN_BOND = 10**12
BOND = 10**13
STAKING = staking.Params(min_bond=MIN_BOND, unbonding_period_blocks=50, epoch_blocks=10)
# Short windows so deadlines come within a test: commit window 3 + ceil(max_tokens / 8) blocks.
JOBS = jobs.Params(commit_blocks=3, reveal_blocks=3, job_timeout_blocks=30, challenge_window_blocks=5, min_tokens_per_block=8,
                  min_job_escrow=10**6)
FEE = 10**8

MODEL = types_pb2.ModelInfo(
    id=MODEL_ID,
    name="test-model",
    context_length=512,
    end_tokens=END_TOKENS,
    engine="llama-cpp-python 0.3.36",
    thresholds=types_pb2.ModelThresholds(
        worst_margin_micro=-1_700_000, miss_slack_micro=50_000, miss_rate_ppm=21_000, miss_depth_micro=90_000,
        false_positive_budget_ppb=1_000, max_logprob_error_micro=1_200_000, mean_logprob_error_micro=180_000,
    ),
)

# ACCOUNTS[0] authors blocks; 1 posts jobs; 2, 3, 4 execute at these prices.
POSTER = ACCOUNTS[1]
EXECUTORS = ACCOUNTS[2:5]
PRICES = (1_000, 2_000, 3_000)
# Validators that serve the model at a price above every test job's maximum: never drawn to execute, always
# eligible for a dispute's committee (runtime/disputes/committee.py). Market.create(judges=...) endows and bonds them.
JUDGES = tuple(Account.from_index(100 + index) for index in range(3))
JUDGE_PRICE = 1_000_000


def executor_stake(account: Account, price: int, capacity: int = 1, region: str = "") -> GenesisStake:
    offer = state_pb2.Offer(models=[MODEL_ID], price_per_token=price, region=region, capacity=capacity)
    return GenesisStake(account.public_key, BOND, False, offer)


def judge_stake(account: Account, bond: int = BOND) -> GenesisStake:
    """A validator serving the model, priced out of every test job: a committee member, never an executor."""
    offer = state_pb2.Offer(models=[MODEL_ID], price_per_token=JUDGE_PRICE, capacity=1)
    return GenesisStake(account.public_key, bond, True, offer)


# Probes and the probe fund off (tests/runtime/test_probes.py turns them on).
NO_PROBES = disputes.Params(probe_fund_ppm=0, probes_per_epoch=0)


@dataclass
class Market:
    """A chain state with blocks applied one at a time; every block checks the invariants."""

    state: MemoryState
    nonces: dict = field(default_factory=dict)
    # The author's RANDAO reveals (chain/node/randao.py): None, blocks carry none (the mix never moves).
    randao: object = None

    @classmethod
    def create(cls, executors=None, jobs_params: jobs.Params = JOBS, staking_params: staking.Params = STAKING,
               models_params: models.Params = models.Params(proposal_deposit=10**9),
               judges: tuple[GenesisStake, ...] = (), **params) -> "Market":
        # The tests written before probes see the market they were written for: every protocol fee burned, no probe.
        params.setdefault("disputes_params", NO_PROBES)
        stakes = executors if executors is not None else tuple(
            executor_stake(account, price) for account, price in zip(EXECUTORS, PRICES)
        )
        judged = tuple(account for account in JUDGES if any(stake.account == account.public_key for stake in judges))
        state = genesis_state(endowed=6, registered=(MODEL,), stakes=stakes + judges, jobs_params=jobs_params,
                              staking_params=staking_params, models_params=models_params, more_endowed=judged, **params)
        return cls(state)

    @property
    def height(self) -> int:
        return system.read_chain(self.state).height

    def transaction(self, signer: Account, **call) -> bytes:
        nonce = system.read_account(self.state, signer.public_key).nonce
        body = types_pb2.TransactionBody(
            chain_id=CHAIN_ID, genesis_hash=GENESIS_HASH, sender=signer.public_key, nonce=nonce, fee=FEE, **call
        )
        return sign(body, signer)

    def block(self, raws: list[bytes] = ()) -> types_pb2.BlockReceipts:
        rules = transaction_rules(self.state)
        chain = system.read_chain(self.state)
        reveal = self.randao.reveal(self.state) if self.randao is not None else b""
        context = BlockContext(chain.height + 1, chain.time_ms + 1000, AUTHOR.public_key, randao_reveal=reveal)
        writes, receipts = apply_block(self.state, context, [check_transaction(raw, rules) for raw in raws], rules)
        assert_events_declared(receipts)
        self.state.apply(writes.changes())
        self.check_invariants()
        return receipts

    def call(self, signer: Account, **call) -> types_pb2.Receipt:
        """Apply one transaction in its own block; its receipt (success or the error)."""
        return self.block([self.transaction(signer, **call)]).transactions[0]

    def ok(self, signer: Account, **call) -> types_pb2.Receipt:
        receipt = self.call(signer, **call)
        assert receipt.success, f"{receipt.error_module}.{receipt.error_name}: {receipt.error_message}"
        return receipt

    def advance(self, blocks: int) -> list[types_pb2.Event]:
        events = []
        for _ in range(blocks):
            events.extend(self.block().block_events)
        return events

    def advance_to(self, height: int) -> list[types_pb2.Event]:
        return self.advance(max(0, height - self.height))

    def check_invariants(self) -> None:
        items = list(self.state.iter_prefix())
        assert supply_is_conserved(self.state, items)
        assert reserved(items) == reserved_by_purpose(items)
        for key, value in items:
            if key.startswith(jobs.JOB_PREFIX):
                assert state_pb2.Job.FromString(value).escrow >= 0

    # --- the market's own steps -------------------------------------------------

    def post(self, poster: Account = POSTER, **fields) -> tuple[bytes, types_pb2.Receipt]:
        request = dict(
            model=MODEL_ID, prompt="hello", prompt_format="chat", max_tokens=8,
            sampling=types_pb2.Sampling(top_k=40, top_p_ppm=950_000), max_price_per_token=5_000, redundancy=1,
        )
        request.update(fields)
        nonce = system.read_account(self.state, poster.public_key).nonce
        job_id = jobs.job_id(GENESIS_HASH, poster.public_key, nonce)
        receipt = self.call(poster, post_job=types_pb2.PostJob(**request))
        if receipt.success:
            # The job's executors are drawn assignment_delay_blocks later (runtime/jobs/assignment.py).
            self.advance_to(self.job(job_id).draw_height)
        return job_id, receipt

    def post_only(self, poster: Account = POSTER, **fields) -> tuple[bytes, types_pb2.Receipt]:
        """Post a job and return at once, before its draw."""
        draw_delay = self.advance
        self.advance = lambda blocks: []
        try:
            return self.post(poster, **fields)
        finally:
            self.advance = draw_delay

    def job(self, job_id: bytes) -> state_pb2.Job:
        return jobs.read_job(self.state, job_id)

    def dispute(self, dispute_id: bytes) -> state_pb2.Dispute | None:
        return read_dispute(self.state, dispute_id)

    def executors_of(self, job_id: bytes) -> list[Account]:
        by_key = {account.public_key: account for account in ACCOUNTS}
        return [by_key[slot.executor] for slot in self.job(job_id).assignments if slot.status in jobs.ACTIVE_SLOTS]


def output(tokens=(5, 6, 7, 2), text="abc", stop_reason="eos", prompt_tokens=9) -> dict:
    """A revealed result's fields (the salt is added per executor)."""
    return dict(prompt_tokens=prompt_tokens, tokens=list(tokens), text=text,
                logprobs_micronats=[-1000] * len(tokens), stop_reason=stop_reason)


def commitment_of(job: state_pb2.Job, account: Account, salt: bytes, result: dict) -> bytes:
    """The commitment an executor makes to `result` (output and log-probabilities) with `salt`."""
    digest = jobs.output_digest(job, result["prompt_tokens"], result["tokens"], result["text"], result["stop_reason"])
    return jobs.commitment(job.id, account.public_key, salt, digest, logprobs_digest(result["logprobs_micronats"]))


def commit_and_reveal(market: Market, job_id: bytes, result: dict, executors=None) -> None:
    """Every executor commits, then every executor reveals the same result."""
    executors = executors or market.executors_of(job_id)
    job = market.job(job_id)
    salts = {}
    for account in executors:
        salts[account.public_key] = salt = os.urandom(32)
        market.ok(account, commit_result=types_pb2.CommitResult(job_id=job_id, commitment=commitment_of(job, account, salt, result)))
    for account in executors:
        market.ok(account, reveal_result=types_pb2.RevealResult(job_id=job_id, salt=salts[account.public_key], **result))


# --- reserved balances ------------------------------------------------------------------


def reserved(items) -> dict[bytes, int]:
    """Every account's reserved balance (those holding any)."""
    found = {}
    for key, value in items:
        if key.startswith(system.ACCOUNT_PREFIX):
            amount = state_pb2.AccountInfo.FromString(value).reserved
            if amount:
                found[key[len(system.ACCOUNT_PREFIX):]] = amount
    return found


# --- committee votes ----------------------------------------------------------------------


def judge_votes(dispute: state_pb2.Dispute, valid: list[bool], positions: int = 64,
                misses: list[int] | None = None) -> list[types_pb2.CandidateVote]:
    """One vote per candidate of the dispute, in its order: valid or not, with re-score statistics."""
    misses = misses if misses is not None else [0 if ok else 20 for ok in valid]
    return [types_pb2.CandidateVote(candidate=candidate, valid=ok, positions=positions, misses=missed,
                                    worst_margin_micro=-1_000 if ok else -9_000_000)
            for candidate, ok, missed in zip(dispute.candidates, valid, misses)]


def salt_for(dispute_id: bytes, member: Account) -> bytes:
    return bytes(a ^ b for a, b in zip(dispute_id, member.public_key))


def commit_votes(market: Market, dispute_id: bytes, ballots: dict) -> None:
    """Each member of `ballots` (Account -> list of CandidateVote) commits to its votes, one block each."""
    for member, votes in ballots.items():
        commitment = vote_commitment(dispute_id, member.public_key, salt_for(dispute_id, member), votes)
        market.ok(member, commit_vote=types_pb2.CommitVote(dispute=dispute_id, commitment=commitment))


def reveal_votes(market: Market, dispute_id: bytes, ballots: dict) -> None:
    """Each member of `ballots` reveals the votes it committed to, one block each."""
    for member, votes in ballots.items():
        market.ok(member, reveal_vote=types_pb2.RevealVote(dispute=dispute_id, salt=salt_for(dispute_id, member),
                                                           votes=votes))


def committee_of(market: Market, dispute_id: bytes) -> list[Account]:
    """The drawn members of a dispute, as test accounts."""
    by_key = {account.public_key: account for account in (*ACCOUNTS, *JUDGES)}
    return [by_key[member.account] for member in market.dispute(dispute_id).committee]


# --- disputes: worlds and steps ---------------------------------------------------------------

HONEST = output()
FORGED = output(tokens=(9, 9, 9, 2), text="zzz")
OUTSIDER = ACCOUNTS[5]  # endowed, neither poster, executor nor validator
# Audits off unless a test turns them on, so each test sees only the dispute it opens.
NO_AUDITS = disputes.Params(audit_probability_ppm=0)


def market_with(executors: int = 2, judges=tuple(judge_stake(judge) for judge in JUDGES),
                params: disputes.Params = NO_AUDITS, **create) -> Market:
    """A market of `executors` executors (EXECUTORS at PRICES) and the JUDGES validating, under dispute `params`."""
    stakes = tuple(executor_stake(account, price) for account, price in zip(EXECUTORS[:executors], PRICES))
    return Market.create(executors=stakes, judges=judges, disputes_params=params, **create)


def reveal_each(market: Market, job_id: bytes, results: dict, revealing=None) -> None:
    """Each executor commits to its own result; then those in `revealing` (all when None) reveal it."""
    job = market.job(job_id)
    salt = bytes(32)
    for account, result in results.items():
        market.ok(account, commit_result=types_pb2.CommitResult(
            job_id=job_id, commitment=commitment_of(job, account, salt, result)))
    for account, result in results.items():
        if revealing is None or account in revealing:
            market.ok(account, reveal_result=types_pb2.RevealResult(job_id=job_id, salt=salt, **result))


def index_of(job: state_pb2.Job, account) -> int:
    """The position of the account's assignment in the job."""
    return next(i for i, slot in enumerate(job.assignments) if slot.executor == account.public_key)


def ledger(market: Market, account) -> state_pb2.StakeLedger:
    """The account's stake ledger."""
    return staking.read_ledger(market.state, account.public_key)


def forged_at_redundancy_two(market: Market) -> tuple[bytes, object, object, int]:
    """A job of redundancy 2 whose second executor forges: (job id, honest, forger, escrow at post)."""
    job_id, _ = market.post(redundancy=2)
    escrow = market.job(job_id).escrow
    honest, forger = market.executors_of(job_id)
    reveal_each(market, job_id, {honest: HONEST, forger: FORGED})
    return job_id, honest, forger, escrow


def vote_all(market: Market, dispute_id: bytes, ballots: dict) -> None:
    """Every member of `ballots` commits, then every one reveals."""
    commit_votes(market, dispute_id, ballots)
    reveal_votes(market, dispute_id, ballots)


def settled_alone(market: Market, result=HONEST) -> tuple[bytes, object]:
    """A job of redundancy 1, its result revealed and settled: (job id, executor)."""
    job_id, _ = market.post()
    (executor,) = market.executors_of(job_id)
    reveal_each(market, job_id, {executor: result})
    assert market.job(job_id).status == state_pb2.JOB_STATUS_SETTLED
    return job_id, executor
