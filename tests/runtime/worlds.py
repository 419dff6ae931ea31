"""Market worlds at scale for weight tests and bench/market.py: many executors serving one model, filled blocks.

A chain state built from the genesis defaults (staking, jobs, block limits, fees) with `count` executors
bonded and offering one model at capacity `max_capacity`, posters endowed, and blocks filled the way a
proposer fills them (runtime/block.py BlockSpace: weight, bytes, count).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from hashlib import blake2b

from proto import state_pb2, types_pb2
from runtime import balances, jobs, models, staking, system
from runtime.block import BlockLimits, BlockSpace, read_block_limits
from runtime.executive import (
    BlockExecution,
    check_transaction,
    hooks_weight,
    process_block,
    transaction_rules,
    transaction_weight,
)
from runtime.disputes.genesis import GenesisConfig as DisputesGenesis
from runtime.disputes.params import Params as DisputesParams
from runtime.genesis import RuntimeGenesis, build_genesis_state
from runtime.primitives import BlockContext, InvalidTransaction
from runtime.staking.genesis import GenesisConfig as StakingGenesis
from runtime.staking.genesis import GenesisStake
from runtime.state import MemoryState
from tests.runtime.helpers import CHAIN_ID, GENESIS_HASH, GENESIS_TIME_MS, Account, sign
from tests.runtime.market import commitment_of

BLOCK_TIME_MS = 1_000  # genesis.json's block_time_ms: the clock step between blocks

MODEL_ID = blake2b(b"bench model", digest_size=32).digest()
MODEL = types_pb2.ModelInfo(
    id=MODEL_ID, name="bench-model", context_length=8192, end_tokens=(2,), engine="llama-cpp-python 0.3.36",
    thresholds=types_pb2.ModelThresholds(
        worst_margin_micro=-1_000_000, miss_slack_micro=10_000, miss_rate_ppm=152, miss_depth_micro=100_000,
        false_positive_budget_ppb=1_000, max_logprob_error_micro=1_000_000, mean_logprob_error_micro=100_000,
    ),
)
AUTHOR = Account.from_index(0)
POSTERS = [Account.from_index(1_000_000 + index) for index in range(64)]
PRICE = 10**9  # the devnet's price per token
MAX_PRICE = 2 * PRICE
MAX_TOKENS = 16
RESULT_TOKENS = [5] * (MAX_TOKENS - 1) + [2]
# Every account's funds and each executor's bond: the total issuance of 1,000 executors' bonds must fit a u64, so
# the bond is below the default min_bond (which bounds no work: the work depends on how many executors there are).
FUNDS = 10**16
BOND = 10**13
GREEDY = types_pb2.Sampling(temperature_milli=0, top_k=40, top_p_ppm=1_000_000, seed=0)


# --- the world ------------------------------------------------------------------------


@dataclass
class World:
    """A chain state with `executors` executors serving one model; blocks applied one at a time."""

    executors: list[Account]
    state: MemoryState
    nonces: dict = field(default_factory=dict)
    block_time_ms: int = BLOCK_TIME_MS

    @classmethod
    def create(cls, count: int) -> "World":
        executors = [Account.from_index(2_000_000 + index) for index in range(count)]
        staking_params = staking.Params(min_bond=BOND)
        jobs_params = jobs.Params()
        stakes = tuple(
            GenesisStake(account.public_key, BOND, False,
                         state_pb2.Offer(models=[MODEL_ID], price_per_token=PRICE, capacity=staking_params.max_capacity))
            for account in executors
        )
        # One validator so the staking genesis has a set; the bench never checks signatures of votes.
        stakes += (GenesisStake(AUTHOR.public_key, BOND, True, None),)
        endowed = tuple((account.public_key, FUNDS) for account in [AUTHOR, *POSTERS, *executors])
        config = RuntimeGenesis({
            "system": system.GenesisConfig(CHAIN_ID, GENESIS_HASH, GENESIS_TIME_MS, 1, system.Params(), BlockLimits()),
            "balances": balances.GenesisConfig(balances.Params(), endowed),
            "models": models.GenesisConfig(models.Params(), (MODEL,)),
            "staking": StakingGenesis(staking_params, stakes),
            "jobs": jobs.GenesisConfig(jobs_params),
            # Work at full capacity is what this world measures: each executor takes max_capacity jobs, which the
            # collateral rule would refuse at this bond (docs/economics.md, "Disputes and slashing").
            "disputes": DisputesGenesis(DisputesParams(collateral_ppm=0)),
        })
        return cls(executors, MemoryState(build_genesis_state(config)))

    def copy(self) -> "World":
        """The same chain in a state of its own."""
        return World(self.executors, MemoryState(dict(self.state.items)), {}, self.block_time_ms)

    @property
    def height(self) -> int:
        return system.read_chain(self.state).height

    def next_context(self) -> BlockContext:
        chain = system.read_chain(self.state)
        return BlockContext(chain.height + 1, chain.time_ms + self.block_time_ms, AUTHOR.public_key)

    def sign(self, signer: Account, **call) -> bytes:
        """A transaction at the signer's next unused nonce, paying the chain's minimum fee for its size and weight."""
        nonce = self.nonces.get(signer.public_key)
        if nonce is None:
            nonce = system.read_account(self.state, signer.public_key).nonce
        self.nonces[signer.public_key] = nonce + 1
        params = system.read_params(self.state)
        body = types_pb2.TransactionBody(chain_id=CHAIN_ID, genesis_hash=GENESIS_HASH, sender=signer.public_key,
                                         nonce=nonce, **call)
        # The fee's own bytes count in the size it pays for: 16 bytes of room cover its varint.
        size = len(sign(body, signer)) + 16
        body.fee = params.minimum_fee(size, transaction_weight(body, size))
        return sign(body, signer)

    def fill(self, raws: list[bytes]) -> list[bytes]:
        """What a proposer puts in the next block from `raws`, in order: those that fit and apply (BlockSpace)."""
        rules = transaction_rules(self.state)
        limits = read_block_limits(self.state)
        context = self.next_context()
        execution = BlockExecution(self.state, context, rules)
        space = BlockSpace(limits, CHAIN_ID, types_pb2.Commit(), (), hooks_weight=execution.hooks_weight)
        included = []
        for raw in raws:
            if space.full:
                break
            checked = check_transaction(raw, rules)
            weight = transaction_weight(checked.body, checked.size)
            if not space.fits(checked.size, weight):
                break
            try:
                execution.try_apply(checked)
            except InvalidTransaction:
                continue
            space.take(checked.size, weight)
            included.append(raw)
        self.nonces.clear()
        return included

    def block(self, raws: list[bytes]) -> types_pb2.Block:
        return types_pb2.Block(header=b"", transactions=raws)

    def time(self, raws: list[bytes], repeats: int) -> "Timed":
        """process_block on the parent state, best of `repeats` (CPU time of this process, and wall-clock time);
        then the block is applied."""
        block = self.block(raws)
        context = self.next_context()
        cpu = wall = None
        for _ in range(repeats):
            started_cpu, started_wall = time.process_time(), time.perf_counter()
            writes, receipts, checked = process_block(self.state, block, context)
            elapsed_cpu, elapsed_wall = time.process_time() - started_cpu, time.perf_counter() - started_wall
            cpu = elapsed_cpu if cpu is None else min(cpu, elapsed_cpu)
            wall = elapsed_wall if wall is None else min(wall, elapsed_wall)
        weight = block_weight(self.state, context, checked)
        failed = sum(1 for receipt in receipts.transactions if not receipt.success)
        self.state.apply(writes.changes())
        return Timed(cpu * 1000, wall * 1000, len(raws), failed, weight, read_block_limits(self.state).max_block_weight)

    def apply(self, raws: list[bytes]) -> None:
        self.time(raws, 1)

    def advance_to(self, height: int) -> None:
        while self.height < height - 1:
            self.apply([])


def block_weight(state, context: BlockContext, checked) -> int:
    return hooks_weight(state, context) + sum(transaction_weight(tx.body, tx.size) for tx in checked)


@dataclass
class Timed:
    """A block's execution: CPU milliseconds of this process (what contention on a shared machine does not
    inflate), wall-clock milliseconds, its transactions and how many failed, its declared weight and the limit."""

    ms: float
    wall_ms: float
    transactions: int
    failed: int
    weight: int
    max_weight: int


# --- the calls ------------------------------------------------------------------------


def post_call(world: World, index: int) -> dict:
    params = jobs.read_params(world.state)
    redundancy = min(params.max_redundancy, len(world.executors))
    return {"post_job": types_pb2.PostJob(
        model=MODEL_ID, prompt=f"job {index}", prompt_format="chat", max_tokens=MAX_TOKENS, sampling=GREEDY,
        max_price_per_token=MAX_PRICE, redundancy=redundancy,
    )}


def posts(world: World, count: int, start: int = 0) -> list[bytes]:
    """`count` PostJob transactions, spread over the posters."""
    return [world.sign(POSTERS[index % len(POSTERS)], **post_call(world, start + index)) for index in range(count)]


def assignments(world: World, status: int) -> list[tuple[bytes, bytes]]:
    """(job id, executor) of every assignment in `status`, in key order."""
    found = []
    for key, value in world.state.iter_prefix(jobs.JOB_PREFIX):
        job = state_pb2.Job.FromString(value)
        found.extend((job.id, slot.executor) for slot in job.assignments if slot.status == status)
    return found


def salt_of(job_id: bytes, executor: bytes) -> bytes:
    return blake2b(job_id + executor, digest_size=32).digest()


def result_fields() -> dict:
    return dict(prompt_tokens=9, tokens=RESULT_TOKENS, text="x" * len(RESULT_TOKENS),
                logprobs_micronats=[-1000] * len(RESULT_TOKENS), stop_reason="length")


def commits(world: World, pending: list[tuple[bytes, bytes]]) -> list[bytes]:
    by_key = {account.public_key: account for account in world.executors}
    raws = []
    for job_id, executor in pending:
        job = jobs.read_job(world.state, job_id)
        account = by_key[executor]
        commitment = commitment_of(job, account, salt_of(job_id, executor), result_fields())
        raws.append(world.sign(account, commit_result=types_pb2.CommitResult(job_id=job_id, commitment=commitment)))
    return raws


def reveals(world: World, pending: list[tuple[bytes, bytes]]) -> list[bytes]:
    by_key = {account.public_key: account for account in world.executors}
    return [
        world.sign(by_key[executor], reveal_result=types_pb2.RevealResult(job_id=job_id, salt=salt_of(job_id, executor),
                                                                            **result_fields()))
        for job_id, executor in pending
    ]
