"""Property tests: nobody can choose an assignment (issue 24, "Assignment can be chosen").

Each attacker does its best with everything it knows when it must act: the chain's state, the
RANDAO mix so far, the job ids, the tables, and the draw's code. Against a chain whose proposer
reveals nothing, the mix never moves and the seed is known before submission, as the seed
H(job id || height || count) was before: the same attackers then win nearly every time (the
baseline each test asserts). Against a proposer that reveals (chain/node/randao.py), each wins only
its target's share, within a binomial bound.
"""

from __future__ import annotations

from dataclasses import replace
from hashlib import blake2b

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chain.crypto import Keypair
from chain.node.randao import Randao
from proto import state_pb2, types_pb2
from runtime import jobs, randomness, system
from runtime.jobs import assignment
from runtime.state import Overlay
from tests.runtime.helpers import CHAIN_ID, GENESIS_HASH, sign
from tests.runtime.market import EXECUTORS, FEE, JOBS, MODEL_ID, POSTER, STAKING, Market, executor_stake

AUTHOR_KEY = Keypair.from_seed(blake2b(b"account 0", digest_size=32).digest())
SHARE = 1 / len(EXECUTORS)
JOBS_PER_RUN = 16
# Long epochs and windows: every draw of a run uses one table, and no deadline passes mid-run.
PARAMS = replace(JOBS, commit_blocks=200, job_timeout_blocks=400)
LONG_EPOCHS = replace(STAKING, epoch_blocks=1_000)
REQUEST = dict(model=MODEL_ID, prompt="hello", prompt_format="chat", max_tokens=8,
               sampling=types_pb2.Sampling(top_k=40, top_p_ppm=950_000), max_price_per_token=5_000, redundancy=1)


def market(reveals: bool) -> Market:
    chain = Market.create(executors=tuple(executor_stake(a, 1_000, capacity=64) for a in EXECUTORS),
                          jobs_params=PARAMS, staking_params=LONG_EPOCHS)
    chain.randao = Randao(AUTHOR_KEY) if reveals else None
    chain.post()  # the epoch's table is built by the first draw
    return chain


def predicted(chain: Market, job_id: bytes, draw_height: int, state=None) -> bytes:
    """The executor the attacker expects for `job_id`: the draw's code, today's tables and today's mix."""
    state = state if state is not None else chain.state
    job = state_pb2.Job(id=job_id, request=types_pb2.PostJob(**REQUEST), status=state_pb2.JOB_STATUS_QUEUED)
    seed = jobs.assignment_seed(job_id, randomness.read_mix(state), draw_height, 0)
    (entry,) = assignment.draw(Overlay(state), job, PARAMS, seed)
    return entry.account


def transaction_at(signer, nonce: int, **call) -> bytes:
    body = types_pb2.TransactionBody(chain_id=CHAIN_ID, genesis_hash=GENESIS_HASH, sender=signer.public_key, nonce=nonce,
                                     fee=FEE, **call)
    return sign(body, signer)


def bound(runs: int) -> float:
    """At most this many hits for a target with SHARE of the weight: mean plus four standard deviations."""
    return runs * SHARE + 4 * (runs * SHARE * (1 - SHARE)) ** 0.5 + 1


def drawn(chain: Market, job_id: bytes) -> bytes:
    chain.advance_to(chain.job(job_id).draw_height)
    return chain.job(job_id).assignments[0].executor


# --- a poster burning nonces -----------------------------------------------------------------


def nonce_grinding_hits(chain: Market, target: bytes, tries: int) -> int:
    """The poster burns nonces (self-transfers in the post's block) until the job id it predicts lands on `target`."""
    hits = 0
    for _ in range(JOBS_PER_RUN):
        nonce = system.read_account(chain.state, POSTER.public_key).nonce
        draw_height = chain.height + 1 + PARAMS.assignment_delay_blocks
        burn = next((skip for skip in range(tries)
                     if predicted(chain, jobs.job_id(GENESIS_HASH, POSTER.public_key, nonce + skip), draw_height) == target),
                    0)
        raws = []
        for skip in range(burn + 1):
            call = dict(post_job=types_pb2.PostJob(**REQUEST)) if skip == burn else dict(
                transfer=types_pb2.Transfer(dest=POSTER.public_key, amount=1))
            raws.append(transaction_at(POSTER, nonce + skip, **call))
        receipts = chain.block(raws)
        assert all(receipt.success for receipt in receipts.transactions)
        hits += drawn(chain, jobs.job_id(GENESIS_HASH, POSTER.public_key, nonce + burn)) == target
    return hits


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(target=st.integers(0, len(EXECUTORS) - 1), tries=st.integers(12, 16))
def test_a_poster_burning_nonces_wins_only_its_targets_share(target, tries):
    target_key = EXECUTORS[target].public_key
    assert nonce_grinding_hits(market(reveals=False), target_key, tries) > bound(JOBS_PER_RUN)
    assert nonce_grinding_hits(market(reveals=True), target_key, tries) <= bound(JOBS_PER_RUN)


# --- a poster waiting for a good height -------------------------------------------------------


def waiting_hits(chain: Market, target: bytes, patience: int) -> int:
    """The poster waits (empty blocks) until the height it predicts lands its next job on `target`, then posts."""
    hits = 0
    for _ in range(JOBS_PER_RUN):
        nonce = system.read_account(chain.state, POSTER.public_key).nonce
        job_id = jobs.job_id(GENESIS_HASH, POSTER.public_key, nonce)
        for _ in range(patience):
            if predicted(chain, job_id, chain.height + 1 + PARAMS.assignment_delay_blocks) == target:
                break
            chain.advance(1)
        chain.block([chain.transaction(POSTER, post_job=types_pb2.PostJob(**REQUEST))])
        hits += drawn(chain, job_id) == target
    return hits


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(target=st.integers(0, len(EXECUTORS) - 1), patience=st.integers(12, 16))
def test_a_poster_waiting_for_a_good_height_wins_only_its_targets_share(target, patience):
    target_key = EXECUTORS[target].public_key
    assert waiting_hits(market(reveals=False), target_key, patience) > bound(JOBS_PER_RUN)
    assert waiting_hits(market(reveals=True), target_key, patience) <= bound(JOBS_PER_RUN)


# --- an executor grinding its bond against a pending job ---------------------------------------


def bond_grinding_hits(chain: Market, attacker, extra: int) -> int:
    """The executor sees a pending post, tries bond amounts offline, and bonds the best one in the same block."""
    hits = 0
    for _ in range(JOBS_PER_RUN):
        nonce = system.read_account(chain.state, POSTER.public_key).nonce
        job_id = jobs.job_id(GENESIS_HASH, POSTER.public_key, nonce)
        draw_height = chain.height + 1 + PARAMS.assignment_delay_blocks
        amount = 1
        for candidate in range(1, extra + 1):
            trial = Overlay(chain.state)
            ledger = assignment.staking.read_ledger(trial, attacker.public_key)
            ledger.bonded += candidate
            trial.set(assignment.staking.LEDGER_PREFIX + attacker.public_key, ledger.SerializeToString(deterministic=True))
            if predicted(chain, job_id, draw_height, trial) == attacker.public_key:
                amount = candidate
                break
        chain.block([chain.transaction(attacker, bond=types_pb2.Bond(amount=amount)),
                     chain.transaction(POSTER, post_job=types_pb2.PostJob(**REQUEST))])
        hits += drawn(chain, job_id) == attacker.public_key
    return hits


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(attacker=st.integers(0, len(EXECUTORS) - 1), extra=st.integers(5, 20))
def test_an_executor_grinding_its_bond_wins_only_its_share(attacker, extra):
    assert bond_grinding_hits(market(reveals=True), EXECUTORS[attacker], extra) <= bound(JOBS_PER_RUN)


# --- an executor raising its price to the poster's maximum ---------------------------------------


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(attacker=st.integers(0, len(EXECUTORS) - 1), price=st.integers(1_001, 5_000))
def test_an_executor_raising_its_price_before_the_posts_is_paid_its_old_price_and_wins_no_more(attacker, price):
    chain = market(reveals=True)
    account = EXECUTORS[attacker]
    chain.ok(account, set_offer=types_pb2.SetOffer(models=[MODEL_ID], price_per_token=price, capacity=64))
    hits = 0
    for _ in range(JOBS_PER_RUN):
        job_id, _ = chain.post()
        (slot,) = chain.job(job_id).assignments
        assert slot.price_per_token == 1_000
        hits += slot.executor == account.public_key
    assert hits <= bound(JOBS_PER_RUN)
    again = chain.call(account, set_offer=types_pb2.SetOffer(models=[MODEL_ID], price_per_token=price, capacity=64))
    assert again.error_name == "OfferLocked"


# --- an executor declaring a region of its own ---------------------------------------------------


def region_hits(attacker: int, region: str, params) -> int:
    """Jobs naming `region`, which only the attacker declared, that land on the attacker."""
    stakes = tuple(executor_stake(account, 1_000, capacity=64, region=region if index == attacker else "")
                   for index, account in enumerate(EXECUTORS))
    chain = Market.create(executors=stakes, jobs_params=params, staking_params=LONG_EPOCHS)
    chain.randao = Randao(AUTHOR_KEY)
    return sum(chain.executors_of(chain.post(region=region)[0]) == [EXECUTORS[attacker]] for _ in range(JOBS_PER_RUN))


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(attacker=st.integers(0, len(EXECUTORS) - 1),
       region=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=32))
def test_an_executor_alone_in_its_region_wins_only_its_share(attacker, region):
    # As before: a region any one executor names is a selector (region_min_candidates 1).
    assert region_hits(attacker, region, replace(PARAMS, region_min_candidates=1)) == JOBS_PER_RUN
    assert region_hits(attacker, region, PARAMS) <= bound(JOBS_PER_RUN)
