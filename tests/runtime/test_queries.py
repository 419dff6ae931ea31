"""Each module's declared queries (runtime/module.py QuerySpec) answer from state, refuse malformed ids, and
say when a record does not exist (KeyError, which the node's generic Query RPC answers NOT_FOUND)."""

from __future__ import annotations

import pytest

from proto import state_pb2, types_pb2
from runtime import jobs, models, staking
from runtime.module import InvalidQuery
from runtime.registry import RUNTIME
from runtime.state import MemoryState
from tests.runtime.helpers import ACCOUNTS, ENDOWMENT
from tests.runtime.market import EXECUTORS, MODEL, MODEL_ID, POSTER, PRICES, STAKING, Market, commit_and_reveal, output


def ask(module: str, query: str, request):
    spec = next(spec for spec in RUNTIME.module(module).queries if spec.name == query)
    assert isinstance(request, spec.request)
    response = spec.handler(MARKET.state, request)
    assert isinstance(response, spec.response)
    return response


MARKET = Market.create()


def test_every_module_with_parameters_answers_them_as_stored():
    for module in RUNTIME.modules:
        if module.params is None or not module.queries:
            continue
        answer = ask(module.name, "params", state_pb2.NoArguments())
        assert answer.SerializeToString(deterministic=True) == MARKET.state.get(module.params.key)
    assert ask("staking", "params", state_pb2.NoArguments()).min_bond == STAKING.min_bond


def test_balances_account_answers_an_account_or_says_it_does_not_exist():
    account = ask("balances", "account", state_pb2.AccountQuery(account=POSTER.public_key))
    assert account.free <= ENDOWMENT and account.nonce == 0
    with pytest.raises(KeyError, match="account " + "ab" * 32):
        ask("balances", "account", state_pb2.AccountQuery(account=b"\xab" * 32))
    for short in (b"", b"\x01" * 31):
        with pytest.raises(InvalidQuery, match=f"account must be 32 bytes, got {len(short)}"):
            ask("balances", "account", state_pb2.AccountQuery(account=short))


def test_models_are_listed_by_page_and_answered_one_by_one():
    assert ask("models", "model", state_pb2.ModelQuery(model=MODEL_ID)) == MODEL
    with pytest.raises(KeyError):
        ask("models", "model", state_pb2.ModelQuery(model=b"\x09" * 32))
    page = ask("models", "models", state_pb2.ModelListQuery())
    assert [model.id for model in page.models] == [MODEL_ID] and not page.more
    assert not ask("models", "models", state_pb2.ModelListQuery(after=MODEL_ID)).models
    with pytest.raises(InvalidQuery, match="limit is at most 100, got 101"):
        ask("models", "models", state_pb2.ModelListQuery(limit=101))


def test_models_pages_stop_at_the_limit_and_say_more_follow():
    market = Market.create()
    extra = types_pb2.ModelInfo()
    extra.CopyFrom(MODEL)
    extra.id = b"\xff" * 32
    market.state.items[models.MODEL_PREFIX + extra.id] = extra.SerializeToString(deterministic=True)
    spec = next(spec for spec in RUNTIME.module("models").queries if spec.name == "models")
    first = spec.handler(market.state, state_pb2.ModelListQuery(limit=1))
    assert [model.id for model in first.models] == [MODEL_ID] and first.more
    second = spec.handler(market.state, state_pb2.ModelListQuery(after=MODEL_ID, limit=1))
    assert [model.id for model in second.models] == [extra.id] and not second.more


class CountingState:
    """A state whose prefix walks count the records they read."""

    def __init__(self, state: MemoryState):
        self.state, self.read = state, 0

    def get(self, key):
        return self.state.get(key)

    def iter_prefix(self, prefix=b"", after=None):
        for item in self.state.iter_prefix(prefix, after):
            self.read += 1
            yield item


def registered_models(count: int) -> tuple[MemoryState, list[bytes]]:
    """The market's state with `count` more models registered; every model id in order."""
    state = MemoryState(Market.create().state.items)
    for index in range(count):
        extra = types_pb2.ModelInfo()
        extra.CopyFrom(MODEL)
        extra.id = bytes([index + 1]) * 32
        state.items[models.MODEL_PREFIX + extra.id] = extra.SerializeToString(deterministic=True)
    return state, sorted(key[len(models.MODEL_PREFIX):] for key, _ in state.iter_prefix(models.MODEL_PREFIX))


def test_a_page_of_models_reads_only_what_it_returns_and_one_record_to_say_more_follow():
    state, ids = registered_models(20)
    counting = CountingState(state)
    page = models.query_models(counting, state_pb2.ModelListQuery(after=ids[9], limit=3))
    assert [model.id for model in page.models] == ids[10:13] and page.more
    assert counting.read == 4  # none of the ten before the token
    counting.read = 0
    last = models.query_models(counting, state_pb2.ModelListQuery(after=ids[-3], limit=5))
    assert [model.id for model in last.models] == ids[-2:] and not last.more and counting.read == 2


def test_staking_answers_offers_executors_ledgers_and_the_validator_set():
    executor = EXECUTORS[0].public_key
    offer = ask("staking", "offer", state_pb2.AccountQuery(account=executor))
    assert (list(offer.models), offer.price_per_token) == ([MODEL_ID], PRICES[0])
    executors = ask("staking", "executors", state_pb2.ModelQuery(model=MODEL_ID))
    assert list(executors.accounts) == sorted(account.public_key for account in EXECUTORS)
    assert ask("staking", "ledger", state_pb2.AccountQuery(account=executor)).bonded == staking.bonded(MARKET.state, executor)
    assert ask("staking", "validators", state_pb2.NoArguments()) == staking.read_validator_set(MARKET.state)
    with pytest.raises(KeyError, match="offer of"):
        ask("staking", "offer", state_pb2.AccountQuery(account=POSTER.public_key))
    with pytest.raises(InvalidQuery, match="model must be 32 bytes"):
        ask("staking", "executors", state_pb2.ModelQuery(model=b"short"))


def test_a_job_and_its_executor_s_reputation_are_answered_after_settlement():
    market = Market.create()
    job_id, receipt = market.post(redundancy=1)
    assert receipt.success
    commit_and_reveal(market, job_id, output())
    spec = next(spec for spec in RUNTIME.module("jobs").queries if spec.name == "job")
    job = spec.handler(market.state, state_pb2.JobQuery(job_id=job_id))
    assert job.status == jobs.SETTLED and job.poster == POSTER.public_key
    with pytest.raises(KeyError, match="job " + "00" * 32):
        spec.handler(market.state, state_pb2.JobQuery(job_id=bytes(32)))
    executor = job.assignments[0].executor
    score = next(spec for spec in RUNTIME.module("reputation").queries if spec.name == "score")
    answer = score.handler(market.state, state_pb2.AccountQuery(account=executor))
    # The fee burned on its payment is credited toward its next point (a point costs reputation_price burned).
    assert answer.score == jobs.Params().reputation_initial and 0 < answer.credit <= job.protocol_fee
    with pytest.raises(KeyError, match="none yet"):
        score.handler(market.state, state_pb2.AccountQuery(account=ACCOUNTS[0].public_key))


def test_a_page_of_disputes_reads_only_what_it_returns_and_one_key_to_say_more_follow():
    from runtime.disputes import queries as dispute_queries
    from runtime.disputes.storage import DISPUTE_PREFIX, OPEN_PREFIX
    state = MemoryState(Market.create().state.items)
    ids = [bytes([index + 1]) * 32 for index in range(20)]
    for dispute_id in ids:
        record = state_pb2.Dispute(id=dispute_id, job=dispute_id, status=state_pb2.DISPUTE_STATUS_DECIDED)
        state.items[DISPUTE_PREFIX + dispute_id] = record.SerializeToString(deterministic=True)
    for dispute_id in ids[::2]:
        state.items[OPEN_PREFIX + dispute_id] = b""
    counting = CountingState(state)
    page = dispute_queries.query_disputes(counting, state_pb2.DisputeListQuery(after=ids[9], limit=3))
    assert [dispute.id for dispute in page.disputes] == ids[10:13] and page.more
    assert counting.read == 4  # none of the ten before the token
    counting.read = 0
    opened = dispute_queries.query_disputes(counting, state_pb2.DisputeListQuery(after=ids[9], limit=10, open=True))
    assert [dispute.id for dispute in opened.disputes] == ids[10::2] and not opened.more and counting.read == 5
