"""staking queries: an account's stake and offer, a model's executors, the validator set, the parameters."""

from __future__ import annotations

from proto import state_pb2, types_pb2
from runtime.module import ACCOUNT, AMOUNT, BOOLEAN, HASH, INTEGER, TEXT, QuerySpec, params_query, require_id
from runtime.staking.params import PARAMS
from runtime.staking.storage import read_ledger, read_offer, read_validator_set, serving
from runtime.state import StateReader


def query_ledger(state: StateReader, request: state_pb2.AccountQuery) -> state_pb2.StakeLedger:
    """An account's bonded and unbonding stake; KeyError when it has none."""
    ledger = read_ledger(state, require_id(request.account, "account"))
    if ledger is None:
        raise KeyError(f"stake of {request.account.hex()}")
    return ledger


def query_offer(state: StateReader, request: state_pb2.AccountQuery) -> state_pb2.Offer:
    """An account's executor offer; KeyError when it has none."""
    offer = read_offer(state, require_id(request.account, "account"))
    if offer is None:
        raise KeyError(f"offer of {request.account.hex()}")
    return offer


def query_executors(state: StateReader, request: state_pb2.ModelQuery) -> state_pb2.AccountList:
    """The accounts whose offer lists the model, sorted (bounded by max_executors_per_model)."""
    return state_pb2.AccountList(accounts=serving(state, require_id(request.model, "model")))


def query_validators(state: StateReader, request: state_pb2.NoArguments) -> types_pb2.ValidatorSet:
    """The current epoch's validator set."""
    return read_validator_set(state)


QUERIES = (
    QuerySpec(name="ledger", doc="An account's bonded and unbonding stake, whether it validates, its jail.",
              request=state_pb2.AccountQuery, response=state_pb2.StakeLedger, handler=query_ledger,
              fields={"account": ACCOUNT, "bonded": AMOUNT, "validate": BOOLEAN, "jailed_until": INTEGER,
                      "jailed": BOOLEAN}),
    QuerySpec(name="offer", doc="An account's executor offer: models, price per token, region, capacity.",
              request=state_pb2.AccountQuery, response=state_pb2.Offer, handler=query_offer,
              fields={"account": ACCOUNT, "models": HASH, "price_per_token": AMOUNT, "region": TEXT,
                      "capacity": INTEGER}),
    QuerySpec(name="executors", doc="The accounts offering to execute jobs for a model.",
              request=state_pb2.ModelQuery, response=state_pb2.AccountList, handler=query_executors,
              fields={"model": HASH, "accounts": ACCOUNT}),
    QuerySpec(name="validators", doc="The current epoch's validator set and voting powers.",
              request=state_pb2.NoArguments, response=types_pb2.ValidatorSet, handler=query_validators),
    params_query(PARAMS),
)
