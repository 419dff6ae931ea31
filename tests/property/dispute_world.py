"""A market with disputes for the property tests: honest and forging executors, honest, byzantine, griefing and
absent committee members, posters and an outsider, on the real runtime.

Every block goes through the executive (BlockExecution) with three checks besides the invariants of
runtime/invariants.py: each call's handler is first run alone on a throw-away layer, and a refusal
must leave that layer without a write or an event (checks before writes: the executive's discard would
hide a partial write); a refused call in the block changes nothing but the sender's fee and nonce; and
each call's outcome matches what the test expected from the state it ran on (the errors it may be
refused with, or success).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from proto import state_pb2, types_pb2
from runtime import jobs, slashing, staking, system
from runtime.disputes import params as disputes
from runtime.disputes.recipes import vote_commitment
from runtime.disputes.storage import DISPUTE_PREFIX, read_dispute
from runtime.executive import BlockExecution, NoRoomInBlock, check_transaction, transaction_rules
from runtime.invariants import reserved_is_accounted, staking_totals_match, supply_is_conserved
from runtime.primitives import BlockContext, CallContext, DispatchError, InvalidTransaction
from runtime.registry import RUNTIME
from runtime.slashing.storage import SLASH_PREFIX
from runtime.staking.genesis import GenesisStake
from runtime.state import MemoryState, StateReader
from tests.runtime.helpers import ACCOUNTS, AUTHOR, GENESIS_HASH, Account, assert_events_declared, genesis_state, sign
from tests.runtime.helpers import CHAIN_ID
from tests.runtime.market import BOND, FEE, MIN_BOND, MODEL, MODEL_ID, commitment_of, output

# --- who is who ---------------------------------------------------------------------------------

POSTERS = (ACCOUNTS[1], Account.from_index(201))
OUTSIDER = ACCOUNTS[5]
HONEST_EXECUTORS = (ACCOUNTS[2], ACCOUNTS[3])
FORGERS = (ACCOUNTS[4], Account.from_index(202))
STEERER = Account.from_index(203)  # reveals a result the committee passes with misses: evidence across jobs
# Honest committee members; the last one also executes (honestly), so it judges others' jobs and not its own.
HONEST_VOTERS = (Account.from_index(100), Account.from_index(101), Account.from_index(204))
HYBRID = HONEST_VOTERS[2]
BYZANTINE = Account.from_index(102)  # votes every candidate valid
GRIEFER = Account.from_index(103)  # votes every candidate invalid
ABSENT = Account.from_index(104)  # never votes
# The second poster validates too, and would vote every result invalid (a refund for free inference) if it ever sat
# on its own job's committee.
POSTING_GRIEFER = POSTERS[1]
GRIEFERS = frozenset({GRIEFER.public_key, POSTING_GRIEFER.public_key})
EXECUTORS = (*HONEST_EXECUTORS, HYBRID, *FORGERS, STEERER)
VALIDATORS = (*HONEST_VOTERS, BYZANTINE, GRIEFER, ABSENT, POSTING_GRIEFER)
EVERYONE = (*POSTERS, OUTSIDER, *HONEST_EXECUTORS, *FORGERS, STEERER, *VALIDATORS[:-1])
BY_KEY = {account.public_key: account for account in (*EVERYONE, AUTHOR)}
HONEST_KEYS = frozenset(account.public_key for account in (*HONEST_EXECUTORS, HYBRID))
HONEST_VOTER_KEYS = frozenset(account.public_key for account in HONEST_VOTERS)

# The reference result of every job (what the pinned engine produces), a forgery, and a steered result the
# committee passes with a miss in half its positions.
REFERENCE = output()
FORGED = output(tokens=(9, 9, 9, 2), text="zzz")
STEERED = output(tokens=(5, 6, 8, 2), text="abd")
JUDGE_PRICE = 1_000_000  # above every job's max_price_per_token: a pure validator never executes

# --- the rules ------------------------------------------------------------------------------------

STAKING = staking.Params(min_bond=MIN_BOND, unbonding_period_blocks=50, epoch_blocks=10)
SLASHING = slashing.Params(jail_blocks=12, max_evidence_age_blocks=20)  # below every unbonding period used here
# Windows long enough for three executors to commit and reveal one call (one block) at a time.
JOBS = jobs.Params(commit_blocks=10, reveal_blocks=8, job_timeout_blocks=60, challenge_window_blocks=12,
                   min_tokens_per_block=8, min_job_escrow=10**6)
# Audits are frequent so that they happen within a short sequence; few open disputes so the limit is reached.
DISPUTES = disputes.Params(vote_commit_blocks=6, vote_reveal_blocks=4, audit_probability_ppm=500_000,
                           max_open_disputes=4)
MIN_CHALLENGE_BOND = DISPUTES.min_challenge_bond


def _offer(price: int, capacity: int = 3) -> state_pb2.Offer:
    return state_pb2.Offer(models=[MODEL_ID], price_per_token=price, capacity=capacity)


def genesis_stakes() -> tuple[GenesisStake, ...]:
    executors = tuple(GenesisStake(account.public_key, BOND, False, _offer(price)) for account, price in
                      zip((*HONEST_EXECUTORS, *FORGERS, STEERER), (1_000, 2_000, 1_500, 2_500, 3_000)))
    validators = (
        GenesisStake(HONEST_VOTERS[0].public_key, 3 * BOND, True, _offer(JUDGE_PRICE)),
        GenesisStake(HONEST_VOTERS[1].public_key, 3 * BOND, True, _offer(JUDGE_PRICE)),
        GenesisStake(HYBRID.public_key, 2 * BOND, True, _offer(1_200)),
        GenesisStake(BYZANTINE.public_key, BOND, True, _offer(JUDGE_PRICE)),
        # As much stake as an honest member: where it outweighs the honest votes, an honest result can fall.
        GenesisStake(GRIEFER.public_key, 3 * BOND, True, _offer(JUDGE_PRICE)),
        GenesisStake(ABSENT.public_key, BOND, True, _offer(JUDGE_PRICE)),
        GenesisStake(POSTING_GRIEFER.public_key, BOND, True, _offer(JUDGE_PRICE)),
    )
    return executors + validators


def new_state() -> MemoryState:
    extra = tuple(account for account in EVERYONE if account not in ACCOUNTS)
    return genesis_state(endowed=6, more_endowed=extra, registered=(MODEL,), stakes=genesis_stakes(),
                         jobs_params=JOBS, staking_params=STAKING, slashing_params=SLASHING,
                         disputes_params=DISPUTES)


# --- votes ----------------------------------------------------------------------------------------


def vote_salt(dispute_id: bytes, member: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(dispute_id, member))


def ballot(member: bytes, dispute: state_pb2.Dispute, job: state_pb2.Job, reference: bytes) -> list[types_pb2.CandidateVote]:
    """What a member of each kind votes: honest ones re-score against the reference, the byzantine one passes
    everything, the griefer fails everything."""
    votes = []
    for candidate in dispute.candidates:
        reveal = job.assignments[candidate].reveal
        positions = 4
        if member == BYZANTINE.public_key:
            valid, misses = True, 0
        elif member in GRIEFERS:
            valid, misses = False, positions
        elif reveal.output_digest == reference:
            valid, misses = True, 0
        elif reveal.output_digest == job_digest(job, STEERED):
            valid, misses = True, 2  # passes alone; fails the test across jobs
        else:
            valid, misses = False, 3
        votes.append(types_pb2.CandidateVote(candidate=candidate, valid=valid, positions=positions, misses=misses,
                                             worst_margin_micro=-1_000 if valid else -9_000_000))
    return votes


def job_digest(job: state_pb2.Job, result: dict) -> bytes:
    return jobs.output_digest(job, result["prompt_tokens"], result["tokens"], result["text"], result["stop_reason"])


def commitment(dispute_id: bytes, member: bytes, votes) -> bytes:
    return vote_commitment(dispute_id, member, vote_salt(dispute_id, member), votes)


# --- the chain ------------------------------------------------------------------------------------

# What the test expects of a call, from the state it runs on and its height: the error names it may be refused
# with (an empty set: it must succeed), or None (either outcome is fine).
Expectation = Callable[[StateReader, int], "set[str] | None"]


@dataclass
class Outcome:
    """A call's fate: applied, refused in the block (fee paid), or refused before any fee (stateless check)."""

    success: bool
    error: str = ""
    in_block: bool = True


@dataclass
class World:
    """The chain's state, built a block at a time through the executive, checked after every call and block."""

    state: MemoryState = field(default_factory=new_state)
    # The calls the market makes by itself in every block (executors working, members voting), after the block's own.
    background: Callable[[], list] = lambda: []

    @property
    def height(self) -> int:
        return system.read_chain(self.state).height

    def transaction(self, signer: Account, nonce: int, **call) -> bytes:
        body = types_pb2.TransactionBody(chain_id=CHAIN_ID, genesis_hash=GENESIS_HASH, sender=signer.public_key,
                                         nonce=nonce, fee=FEE, **call)
        return sign(body, signer)

    def block(self, calls: list[tuple[Account, dict, Expectation | None]] = ()) -> list[Outcome]:
        """Apply one block holding `calls` (signer, call fields, expectation); the invariants hold after it."""
        rules = transaction_rules(self.state)
        chain = system.read_chain(self.state)
        context = BlockContext(chain.height + 1, chain.time_ms + 1000, AUTHOR.public_key)
        jailed_before = self.jailed(context.height)
        execution = BlockExecution(self.state, context, rules)
        outcomes = []
        own = len(calls)
        for signer, fields, expect in [*calls, *self.background()]:
            nonce = system.read_account(execution.state, signer.public_key).nonce
            raw = self.transaction(signer, nonce, **fields)
            outcome = self._apply(execution, raw, context.height, expect)
            outcomes.append(outcome)
        writes, receipts = execution.finish()
        assert_events_declared(receipts)
        self.state.apply(writes.changes())
        self.check_invariants()
        self.check_draws(context.height, jailed_before)
        return outcomes[:own]

    def _apply(self, execution: BlockExecution, raw: bytes, height: int, expect: Expectation | None) -> Outcome:
        """Apply one transaction in the block being built, checking its outcome against `expect` and, when refused,
        that it changed nothing but its sender's fee and nonce."""
        rules = execution.rules
        allowed = expect(execution.state, height) if expect is not None else None
        try:
            checked = check_transaction(raw, rules)
        except InvalidTransaction as refused:
            name = str(refused).split(":", 1)[0].rsplit(".", 1)[-1]
            assert allowed is None or name in allowed, f"refused before the fee with {refused}; expected {allowed}"
            return Outcome(False, name, in_block=False)
        call_name = checked.body.WhichOneof("call")
        probe_error = self._probe(execution, checked, call_name)
        before = dict(execution.state.writes)
        try:
            receipt = execution.try_apply(checked)
        except NoRoomInBlock:  # the block is full: a producer leaves the call for a later block
            assert execution.state.writes == before, "a transaction with no room in the block wrote to it"
            return Outcome(False, "NoRoomInBlock", in_block=False)
        except InvalidTransaction as refused:  # e.g. a sender left unable to pay the fee: no trace in the block
            assert execution.state.writes == before, f"a transaction refused with {refused} wrote to the block"
            assert allowed is None or refused.name in allowed, f"refused before the fee with {refused}"
            return Outcome(False, refused.name, in_block=False)
        if receipt.success:
            assert probe_error is None, f"{call_name}: alone it failed with {probe_error}, in the block it succeeded"
            assert allowed is None or not allowed, f"{call_name} succeeded; expected a refusal in {allowed}"
            return Outcome(True)
        assert probe_error == receipt.error_name, (probe_error, receipt.error_name)
        assert allowed is None or receipt.error_name in allowed, (
            f"{call_name} refused with {receipt.error_module}.{receipt.error_name}: {receipt.error_message}; "
            f"expected {'success' if not allowed else allowed}"
        )
        after = execution.state.writes
        changed = {key for key in set(before) | set(after) if before.get(key, b"?") != after.get(key, b"?")}
        assert changed <= {system.ACCOUNT_PREFIX + checked.sender}, f"a refused {call_name} wrote {changed}"
        return Outcome(False, receipt.error_name)

    @staticmethod
    def _probe(execution: BlockExecution, checked, call_name: str) -> str | None:
        """Run the call's handler alone on a throw-away layer after the fee; a refusal must have written nothing."""
        layer = execution.state.child()
        account = system.read_account(layer, checked.sender)
        system.charge_fee(layer, checked.sender, account, checked.fee)
        call_layer = layer.child()
        try:
            RUNTIME.calls[call_name].handler(call_layer, CallContext(checked.sender, checked.nonce, checked.hash),
                                            getattr(checked.body, call_name))
        except DispatchError as error:
            assert not call_layer.writes and not call_layer.events, (
                f"{call_name} was refused with {error.name} after writing {sorted(call_layer.writes)}"
            )
            return error.name
        return None

    def advance(self, blocks: int) -> None:
        for _ in range(blocks):
            self.block()

    # --- reads --------------------------------------------------------------------------------------

    def job(self, job_id: bytes) -> state_pb2.Job:
        return jobs.read_job(self.state, job_id)

    def dispute(self, dispute_id: bytes) -> state_pb2.Dispute | None:
        return read_dispute(self.state, dispute_id)

    def disputes(self) -> list[state_pb2.Dispute]:
        return [state_pb2.Dispute.FromString(value) for _, value in self.state.iter_prefix(DISPUTE_PREFIX)]

    def slashes(self) -> list[state_pb2.SlashRecord]:
        return [state_pb2.SlashRecord.FromString(value) for _, value in self.state.iter_prefix(SLASH_PREFIX)]

    def ledger(self, account: bytes) -> state_pb2.StakeLedger | None:
        return staking.read_ledger(self.state, account)

    # --- after every block --------------------------------------------------------------------------

    def check_invariants(self) -> None:
        items = list(self.state.iter_prefix())
        assert supply_is_conserved(self.state, items), "the supply is not conserved"
        assert reserved_is_accounted(items), "a reserved balance is not owed to a bond, escrow, held pay or deposit"
        assert staking_totals_match(self.state, items), "the staking totals differ from the ledgers"
        for key, value in items:
            # Stored as unsigned integers, so a negative amount could not even be written: what is checked here is
            # that none is left where it means nothing (an empty unbonding chunk, a held payment already released).
            if key.startswith(staking.LEDGER_PREFIX):
                ledger = state_pb2.StakeLedger.FromString(value)
                assert all(chunk.amount > 0 for chunk in ledger.unbonding), "an empty unbonding chunk is kept"
            elif key.startswith(jobs.JOB_PREFIX):
                job = state_pb2.Job.FromString(value)
                assert job.escrow >= 0 and job.refunded >= 0 and all(slot.payment >= 0 for slot in job.assignments)

    def jailed(self, height: int) -> set[bytes]:
        """The accounts jailed at `height` (by a dispute until they unjail, or for a double-sign's term)."""
        return {key[len(staking.LEDGER_PREFIX):] for key, value in self.state.iter_prefix(staking.LEDGER_PREFIX)
                if staking.jailed(state_pb2.StakeLedger.FromString(value), height)}

    def check_draws(self, height: int, jailed_before: set[bytes]) -> None:
        """Nobody jailed is drawn: as an executor while jailed for the whole block (an unjail in the block may come
        before a retried draw), as a committee member when jailed as the block began (committees are drawn first)."""
        jailed_throughout = jailed_before & self.jailed(height)
        for _, value in self.state.iter_prefix(jobs.JOB_PREFIX):
            job = state_pb2.Job.FromString(value)
            for slot in job.assignments:
                assert not (slot.assigned_height == height and slot.executor in jailed_throughout), (
                    f"jailed executor {slot.executor.hex()} drawn for job {job.id.hex()} at height {height}"
                )
        for dispute in self.disputes():
            if dispute.draw_height == height:
                drawn = {member.account for member in dispute.committee}
                assert not drawn & jailed_before, f"a jailed validator sits on the committee of {dispute.id.hex()}"


# --- the steps of the market ---------------------------------------------------------------------------


def post_request(redundancy: int) -> types_pb2.PostJob:
    return types_pb2.PostJob(model=MODEL_ID, prompt="hello", prompt_format="chat", max_tokens=8,
                             sampling=types_pb2.Sampling(top_k=40, top_p_ppm=950_000), max_price_per_token=5_000,
                             redundancy=redundancy)


def result_of(executor: bytes) -> dict:
    """What each executor reveals: the honest ones the reference, the forgers a forgery, the steerer its steer."""
    if executor == STEERER.public_key:
        return STEERED
    if executor in {account.public_key for account in FORGERS}:
        return FORGED
    return REFERENCE


def result_salt(job_id: bytes, executor: bytes) -> bytes:
    return bytes(a ^ b ^ 0x5A for a, b in zip(job_id, executor))


def commit_call(job: state_pb2.Job, executor: Account) -> dict:
    result = result_of(executor.public_key)
    salt = result_salt(job.id, executor.public_key)
    return {"commit_result": types_pb2.CommitResult(job_id=job.id, commitment=commitment_of(job, executor, salt, result))}


def reveal_call(job: state_pb2.Job, executor: Account) -> dict:
    result = result_of(executor.public_key)
    return {"reveal_result": types_pb2.RevealResult(job_id=job.id, salt=result_salt(job.id, executor.public_key),
                                                    **result)}
