"""Offers: a bonded account offers to execute jobs for listed models at a price per token.

An executor is a bonded account with an offer; the accounts serving each model are indexed
(storage.SERVING_PREFIX) for assignment (runtime/jobs/assignment.py). Assignment reads offers
through a table frozen for the epoch, and an offer stays as set for `offer_lock_blocks`: an
executor once raised its price to a poster's maximum in the block before the posts and took 6 of
10 jobs at that price (docs/economics.md, "Price in the draw"). The offer's endpoint (where its
executor's tokens stream to posters) is not read by the draw, so a SetOffer that changes only the
endpoint is not held by the lock and does not restart it.

An offer names the engine class its executor runs (models.py, "cpu" when empty, stored empty for "cpu"):
every listed model must have that class, and the class is a term the draw reads (tables are per class),
so changing it is held by the lock like the price or the region.
"""

from __future__ import annotations

import struct

from proto import state_pb2, types_pb2
from runtime import models, system
from runtime.primitives import CallContext, DispatchError
import runtime.staking.events as events
from runtime.staking.errors import InvalidOffer, NoOffer, NotBonded, OfferLocked, TooManyExecutors, UnknownModel
from runtime.staking.params import MAX_REGION_BYTES, read_params
from runtime.staking.storage import OFFER_PREFIX, SERVING_PREFIX, bonded, read_offer, serving, write_accounts
from runtime.state import Overlay, StateReader

OFFER_SET_PREFIX = b"staking/offer_set/"  # + account -> u64 big-endian height of its last SetOffer
MAX_ENDPOINT_BYTES = 255
MAX_PORT = 65_535


def offer_set_height(state: StateReader, account: bytes) -> int | None:
    """The height of the account's last SetOffer in a transaction, or None (never, or only at genesis)."""
    raw = state.get(OFFER_SET_PREFIX + account)
    return None if raw is None else struct.unpack(">Q", raw)[0]


def offer_unlock_height(state: StateReader, account: bytes, lock_blocks: int) -> int | None:
    """The first height at which the account may set its offer again; None when it may now."""
    set_at = offer_set_height(state, account)
    if set_at is None:
        return None
    unlock = set_at + lock_blocks
    return unlock if system.read_chain(state).height < unlock else None


def check_region(region: str, error: type[DispatchError]) -> None:
    """A region is lowercase ASCII letters, digits and '-', at most MAX_REGION_BYTES (empty: none)."""
    if len(region) > MAX_REGION_BYTES or not all(c.islower() or c.isdigit() or c == "-" for c in region) or not region.isascii():
        raise error(f"a region is at most {MAX_REGION_BYTES} lowercase ASCII letters, digits or '-'")


def check_endpoint(endpoint: str, error: type[DispatchError]) -> None:
    """An endpoint is HOST:PORT in printable ASCII without whitespace, at most MAX_ENDPOINT_BYTES (empty: none)."""
    if not endpoint:
        return
    if len(endpoint) > MAX_ENDPOINT_BYTES:
        raise error(f"an endpoint is at most {MAX_ENDPOINT_BYTES} bytes, got {len(endpoint)} characters")
    if not all("!" <= c <= "~" for c in endpoint):
        raise error(f"an endpoint is printable ASCII without spaces, got {endpoint[:40]!r}")
    host, colon, port = endpoint.rpartition(":")
    if not colon or not host:
        raise error(f"an endpoint is HOST:PORT, got {endpoint[:40]!r}")
    # Canonical decimal only (no sign, no leading zero): one endpoint has one spelling.
    if not port.isdigit() or port != str(int(port)) or not 1 <= int(port) <= MAX_PORT:
        raise error(f"an endpoint's port is a decimal number from 1 to {MAX_PORT}, got {port[:8]!r}")


def stored_class(engine_class: str) -> str:
    """The engine class as an Offer stores it: empty for "cpu" (so a cpu offer is stored as before classes)."""
    return "" if engine_class == models.CPU_CLASS else engine_class


def offer_class(offer: state_pb2.Offer | types_pb2.SetOffer) -> str:
    """The engine class an offer or a SetOffer names, "cpu" when empty."""
    return offer.engine_class or models.CPU_CLASS


def check_offer(call: types_pb2.SetOffer) -> None:
    """What makes an offer invalid whatever the state."""
    if not call.models:
        raise InvalidOffer("an offer lists at least one model")
    for model in call.models:
        if len(model) != 32:
            raise InvalidOffer(f"a model id is 32 bytes, got {len(model)}")
    if len(set(call.models)) != len(call.models):
        raise InvalidOffer("an offer lists each model once")
    if call.capacity == 0:
        raise InvalidOffer("capacity (jobs at once) must be at least 1")
    if call.price_per_token == 0:
        raise InvalidOffer("price_per_token must be at least 1 (and at least staking.params.min_price_per_token)")
    check_region(call.region, InvalidOffer)
    check_endpoint(call.endpoint, InvalidOffer)
    if call.engine_class:
        problem = models.class_name_problem(call.engine_class)
        if problem is not None:
            raise InvalidOffer(problem)


def changes_only_endpoint(old: state_pb2.Offer | None, call: types_pb2.SetOffer) -> bool:
    """True when the call sets a new endpoint and keeps every term the draw reads (models in order, price, region,
    capacity, engine class); a call that changes nothing is not one (it is held by the lock as before)."""
    return (
        old is not None
        and old.endpoint != call.endpoint
        and list(old.models) == list(call.models)
        and old.price_per_token == call.price_per_token
        and old.region == call.region
        and old.capacity == call.capacity
        and old.engine_class == stored_class(call.engine_class)
    )


def check_offer_limits(state: StateReader, call: types_pb2.SetOffer) -> None:
    """The chain's bounds on an offer: how many models, the capacity, that each model is registered and has the
    offer's engine class."""
    params = read_params(state)
    if len(call.models) > params.max_offer_models:
        raise InvalidOffer(f"an offer lists at most {params.max_offer_models} models")
    if call.capacity > params.max_capacity:
        raise InvalidOffer(f"capacity is at most {params.max_capacity} jobs at once")
    if call.price_per_token < params.min_price_per_token:
        raise InvalidOffer(
            f"price_per_token {call.price_per_token} is below the minimum {params.min_price_per_token} per token"
        )
    engine_class = offer_class(call)
    for model in call.models:
        registered = models.read_model(state, model)
        if registered is None:
            raise UnknownModel(f"model {model.hex()} is not registered")
        if models.class_engine(registered, engine_class) is None:
            raise InvalidOffer(f"model {model.hex()} has no engine class {engine_class!r} (its classes: "
                               f"{', '.join(models.class_names(registered))})")


def set_offer(state: Overlay, context: CallContext, call: types_pb2.SetOffer) -> None:
    """Offer to execute jobs; replaces an earlier offer."""
    origin = context.origin
    check_offer(call)
    check_offer_limits(state, call)
    params = read_params(state)
    have = bonded(state, origin)
    if have < params.min_bond:
        raise NotBonded(f"an executor needs at least {params.min_bond} bonded, this account has {have}")
    old = read_offer(state, origin)
    endpoint_only = changes_only_endpoint(old, call)
    unlock = None if endpoint_only else offer_unlock_height(state, origin, params.offer_lock_blocks)
    if unlock is not None:
        raise OfferLocked(
            f"this account set its offer at height {offer_set_height(state, origin)}; it may change it from height "
            f"{unlock} (staking.params.offer_lock_blocks = {params.offer_lock_blocks})"
        )
    old_models = set(old.models) if old else set()
    for model in sorted(set(call.models) - old_models):
        accounts = serving(state, model)
        if len(accounts) >= params.max_executors_per_model:
            raise TooManyExecutors(f"model {model.hex()} already has {len(accounts)} executors (the limit)")
        write_accounts(state, SERVING_PREFIX + model, accounts + [origin])
    for model in sorted(old_models - set(call.models)):
        write_accounts(state, SERVING_PREFIX + model, [a for a in serving(state, model) if a != origin])
    offer = state_pb2.Offer(
        models=list(call.models),
        price_per_token=call.price_per_token,
        region=call.region,
        capacity=call.capacity,
        endpoint=call.endpoint,
        engine_class=stored_class(call.engine_class),
    )
    state.set(OFFER_PREFIX + origin, offer.SerializeToString(deterministic=True))
    if context.transaction_hash and not endpoint_only:
        # Genesis offers (no transaction) are not locked: the chain starts with them. A new endpoint
        # alone changes nothing the draw reads, so it neither waits for the lock nor restarts it.
        state.set(OFFER_SET_PREFIX + origin, struct.pack(">Q", system.read_chain(state).height))
    state.deposit_event(
        events.event(
            events.OFFER_SET,
            account=origin.hex(),
            models=",".join(model.hex() for model in call.models),
            price_per_token=call.price_per_token,
            region=call.region,
            capacity=call.capacity,
            endpoint=call.endpoint,
            engine_class=offer_class(call),
        )
    )


def clear_offer(state: Overlay, context: CallContext, call: types_pb2.ClearOffer) -> None:
    """Take no new jobs; assigned ones run to their end."""
    origin = context.origin
    offer = read_offer(state, origin)
    if offer is None:
        raise NoOffer("this account has no offer")
    for model in offer.models:
        write_accounts(state, SERVING_PREFIX + model, [a for a in serving(state, model) if a != origin])
    state.delete(OFFER_PREFIX + origin)
    state.deposit_event(events.event(events.OFFER_CLEARED, account=origin.hex()))
