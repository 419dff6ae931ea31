"""A small market world for runtime tests: one registered model, bonded executors with offers."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from proto import state_pb2, types_pb2
from proto.digest import logprobs_digest
from runtime import jobs, models, staking, system
from runtime.executive import apply_block, check_transaction, transaction_rules
from runtime.invariants import reserved_is_accounted, supply_is_conserved
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


def executor_stake(account: Account, price: int, capacity: int = 1, region: str = "") -> GenesisStake:
    offer = state_pb2.Offer(models=[MODEL_ID], price_per_token=price, region=region, capacity=capacity)
    return GenesisStake(account.public_key, BOND, False, offer)


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
               **params) -> "Market":
        stakes = executors if executors is not None else tuple(
            executor_stake(account, price) for account, price in zip(EXECUTORS, PRICES)
        )
        state = genesis_state(endowed=6, registered=(MODEL,), stakes=stakes, jobs_params=jobs_params,
                              staking_params=staking_params, models_params=models_params, **params)
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
        assert reserved_is_accounted(items)
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
