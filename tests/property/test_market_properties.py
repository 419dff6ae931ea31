"""Property tests of the market: arbitrary sequences of stake, offer, post, commit, reveal, cancel and time.

After every block (tests/runtime/market.py checks it) the supply is conserved, every reserved base
unit is owed to a bond, an escrow, a held payment or a deposit, and no escrow is negative. At the
end: nobody was paid twice for a job, a job's payments never exceed what it escrowed, and every
job is either still running or ended with its escrow gone.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from proto import state_pb2, types_pb2
from runtime import jobs, staking
from runtime.slashing.storage import SLASH_PREFIX
from tests.runtime.market import ACCOUNTS, MIN_BOND, MODEL_ID, Market, commitment_of, output

PEOPLE = ACCOUNTS[1:6]
# Windows long enough for several executors to commit and reveal one call (one block) at a time.
WINDOWS = jobs.Params(commit_blocks=15, reveal_blocks=15, job_timeout_blocks=60, challenge_window_blocks=5, min_tokens_per_block=8,
                      min_job_escrow=10**6)

step = st.one_of(
    st.tuples(st.just("bond"), st.integers(0, 4), st.sampled_from([MIN_BOND, 3 * MIN_BOND, 10**15])),
    st.tuples(st.just("unbond"), st.integers(0, 4), st.sampled_from([1, MIN_BOND, 10**13])),
    st.tuples(st.just("withdraw"), st.integers(0, 4), st.just(0)),
    st.tuples(st.just("offer"), st.integers(0, 4), st.sampled_from([1_000, 4_000, 9_000])),
    st.tuples(st.just("clear"), st.integers(0, 4), st.just(0)),
    st.tuples(st.just("post"), st.integers(0, 4), st.integers(1, 3)),
    st.tuples(st.just("work"), st.integers(0, 4), st.integers(0, 3)),
    st.tuples(st.just("work"), st.integers(1, 3), st.integers(1, 3)),  # the genesis executors, honestly
    st.tuples(st.just("cancel"), st.integers(0, 4), st.just(0)),
    st.tuples(st.just("wait"), st.just(0), st.integers(1, 12)),
)


def _open_slots(market: Market, account: bytes):
    for key, value in market.state.iter_prefix(jobs.JOB_PREFIX):
        job = state_pb2.Job.FromString(value)
        for slot in job.assignments:
            if slot.executor == account and slot.status in jobs.ACTIVE_SLOTS:
                yield job, slot


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=10, max_size=60))
def test_any_sequence_of_market_calls_keeps_every_invariant(steps):
    market = Market.create(jobs_params=WINDOWS)
    salts: dict[tuple[bytes, bytes], bytes] = {}
    posted: list[bytes] = []
    escrows: dict[bytes, int] = {}  # as reserved at post (a pruned record no longer has the prompt it was priced by)
    for name, who, value in steps:
        person = PEOPLE[who]
        key = person.public_key
        if name == "bond":
            market.call(person, bond=types_pb2.Bond(amount=value, validate=bool(value % 2)))
        elif name == "unbond":
            market.call(person, unbond=types_pb2.Unbond(amount=value))
        elif name == "withdraw":
            market.call(person, withdraw_unbonded=types_pb2.WithdrawUnbonded())
        elif name == "offer":
            market.call(person, set_offer=types_pb2.SetOffer(models=[MODEL_ID], price_per_token=value, capacity=2))
        elif name == "clear":
            market.call(person, clear_offer=types_pb2.ClearOffer())
        elif name == "post":
            job_id, receipt = market.post_only(person, redundancy=value, max_tokens=4)
            if receipt.success:
                posted.append(job_id)
                record = market.job(job_id)
                escrows[job_id] = record.escrow + record.queue_fee  # the queue fee is burned at once if it waits
                assert escrows[job_id] == jobs.escrow_of(record.request, WINDOWS) + WINDOWS.queue_fee
                market.advance_to(market.job(job_id).draw_height)  # its executors are drawn then
        elif name == "cancel" and posted:
            market.call(person, cancel_job=types_pb2.CancelJob(job_id=posted[value % len(posted)]))
        elif name == "work":
            # The executor does the next step of each of its jobs; `value` picks an honest or a wrong result.
            result = output(tokens=(7, 7, 7, 7), stop_reason="length") if value else output(tokens=(5, 2))
            for job, slot in list(_open_slots(market, key)):
                if slot.status == jobs.SLOT_ASSIGNED:
                    salt = salts.setdefault((job.id, key), os.urandom(32))
                    market.call(person, commit_result=types_pb2.CommitResult(job_id=job.id, commitment=commitment_of(job, person, salt, result)))
                    if job.request.redundancy == 1 and value == 3:
                        continue
                market.call(person, reveal_result=types_pb2.RevealResult(job_id=job.id, salt=salts.get((job.id, key), bytes(32)), **result))
        else:
            market.advance(value if name == "wait" else 1)
    market.advance(100)  # every deadline, timeout and challenge window passes

    for key, value in market.state.iter_prefix(jobs.JOB_PREFIX):
        job = state_pb2.Job.FromString(value)
        event(f"a job ended {state_pb2.JobStatus.Name(job.status)}")
        paid = sum(slot.payment for slot in job.assignments)
        executors = [slot.executor for slot in job.assignments if slot.payment]
        assert len(executors) == len(set(executors)), "an executor was paid twice for one job"
        # The escrow held the queue fee too: burned when the job waited (job.queue_fee), else refunded.
        assert paid + job.protocol_fee + job.queue_fee + job.refunded + job.escrow == escrows[job.id]
        assert job.status in jobs.FINAL_STATUSES and job.escrow == 0
        if job.status == jobs.SETTLED:
            assert job.protocol_fee >= WINDOWS.min_protocol_fee
        # Pruned once its challenge window closed: the prompt and reveals gone, the deposit returned.
        assert job.pruned_height and job.storage_deposit == 0 and not job.request.prompt
        assert not any(slot.reveal.tokens or slot.reveal.text or slot.reveal.salt for slot in job.assignments)
        assert all(slot.released for slot in job.assignments if slot.payment)
    for account in PEOPLE:
        assert jobs.read_load(market.state, account.public_key) == 0
        ledger = staking.read_ledger(market.state, account.public_key)
        # Unbonding never leaves dust below the minimum bond; a slash (a missed result) may.
        slashed = any(True for _ in market.state.iter_prefix(SLASH_PREFIX + account.public_key))
        assert ledger is None or ledger.bonded == 0 or ledger.bonded >= MIN_BOND or slashed


def _fields(draw_bytes, draw_text, draw_int, draw_u32):
    return {
        "post_job": lambda d: types_pb2.PostJob(
            model=d(st.sampled_from([MODEL_ID, bytes(32), b"", b"x" * 33])), prompt=d(draw_text),
            prompt_format=d(st.sampled_from(["chat", "raw", "", "CHAT"])), max_tokens=d(draw_u32),
            sampling=types_pb2.Sampling(temperature_milli=d(draw_u32), top_k=d(draw_u32), top_p_ppm=d(draw_u32), seed=d(draw_int)),
            max_price_per_token=d(draw_int), redundancy=d(draw_u32), region=d(draw_text)),
        "commit_result": lambda d: types_pb2.CommitResult(job_id=d(draw_bytes), commitment=d(draw_bytes)),
        "reveal_result": lambda d: types_pb2.RevealResult(
            job_id=d(draw_bytes), salt=d(draw_bytes), prompt_tokens=d(draw_int), tokens=d(st.lists(draw_u32, max_size=12)),
            text=d(draw_text), logprobs_micronats=d(st.lists(st.integers(-2**63, 2**63 - 1), max_size=12)),
            stop_reason=d(st.sampled_from(["eos", "length", "", "EOS"]))),
        "set_offer": lambda d: types_pb2.SetOffer(models=d(st.lists(st.sampled_from([MODEL_ID, bytes(32), b"ab"]), max_size=3)),
                                                  price_per_token=d(draw_int), region=d(draw_text), capacity=d(draw_u32)),
        "bond": lambda d: types_pb2.Bond(amount=d(draw_int), validate=d(st.booleans())),
        "unbond": lambda d: types_pb2.Unbond(amount=d(draw_int)),
        "vote_model": lambda d: types_pb2.VoteModel(model=d(draw_bytes), approve=d(st.booleans())),
        "cancel_job": lambda d: types_pb2.CancelJob(job_id=d(draw_bytes)),
        "challenge": lambda d: types_pb2.Challenge(job_id=d(draw_bytes), candidate=d(draw_u32), bond=d(draw_int)),
        "commit_vote": lambda d: types_pb2.CommitVote(dispute=d(draw_bytes), commitment=d(draw_bytes)),
        "reveal_vote": lambda d: types_pb2.RevealVote(dispute=d(draw_bytes), salt=d(draw_bytes), votes=d(st.lists(
            st.builds(types_pb2.CandidateVote, candidate=draw_u32, valid=st.booleans(), positions=draw_u32,
                      misses=draw_u32, worst_margin_micro=st.integers(-2**63, 2**63 - 1)), max_size=9))),
    }


CALL_BUILDERS = _fields(
    st.one_of(st.binary(max_size=40), st.just(bytes(32))),
    st.text(max_size=40),
    st.one_of(st.integers(0, 2**64 - 1), st.integers(0, 10**6)),
    st.one_of(st.integers(0, 2**32 - 1), st.integers(0, 10)),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(CALL_BUILDERS)), st.integers(0, 4), st.data())
def test_arbitrary_market_call_fields_are_refused_or_applied_cleanly(name, who, data):
    from runtime.executive import check_transaction, transaction_rules
    from runtime.primitives import InvalidTransaction

    market = Market.create()
    call = CALL_BUILDERS[name](data.draw)
    raw = market.transaction(PEOPLE[who], **{name: call})
    try:
        check_transaction(raw, transaction_rules(market.state))
    except InvalidTransaction as refused:
        assert str(refused)
        return
    receipt = market.block([raw]).transactions[0]  # invariants are checked after the block
    assert receipt.success or (receipt.error_module in ("staking", "models", "jobs", "disputes")
                               and receipt.error_message)
