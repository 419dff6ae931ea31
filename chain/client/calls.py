"""What the client signs, checked before it costs anything: the call, its sender's account, fee and nonce."""

from __future__ import annotations

from typing import Union

from google.protobuf.message import Message

from chain.client.errors import ClientError
from chain.crypto import Keypair
from chain.keys import KeyResolutionError, ResolvedAccount, account_id
from chain.text import quote_input
from chain.transactions import transfer_call
from proto import types_pb2
from runtime.arithmetic import U64_MAX
from runtime.module import CallSpec
from runtime.primitives import DispatchError
from runtime.registry import RUNTIME, Runtime

# A dev name (alice, bob, ... any case), an SS58 address, a 64-character hex public key, a key file,
# a Keypair or 32 raw bytes (chain.keys).
AccountLike = Union[str, bytes, Keypair, ResolvedAccount]


def checked_call(call: Message, runtime: Runtime = RUNTIME) -> str:
    """The call's name in `runtime` (its `TransactionBody` field), after its module's stateless checks; ClientError otherwise."""
    spec = call_spec(call, runtime)
    try:
        spec.check(call)
    except DispatchError as error:
        # It could never succeed: refuse it before it costs a fee.
        raise ClientError("INVALID_ARGUMENT", f"{spec.name} refused: {error.message}") from None
    return spec.name


def call_spec(call: Message, runtime: Runtime = RUNTIME) -> CallSpec:
    """The runtime's declaration of the call this message is; ClientError when it declares none."""
    descriptor = getattr(call, "DESCRIPTOR", None)
    spec = next((spec for spec in runtime.calls.values() if spec.message.DESCRIPTOR is descriptor), None)
    if spec is None:
        name = descriptor.full_name if descriptor is not None else type(call).__name__
        known = ", ".join(spec.message.DESCRIPTOR.name for spec in runtime.calls.values())
        raise ClientError("INVALID_ARGUMENT", f"{name} is not a transaction call (calls: {known})")
    return spec


def transfer(dest: AccountLike, amount: int) -> types_pb2.Transfer:
    """A balances transfer of `amount` base units to `dest`, in any account form."""
    if not isinstance(amount, int) or isinstance(amount, bool) or not 0 < amount <= U64_MAX:
        raise ClientError("INVALID_ARGUMENT", f"amount must be a positive integer below 2^64, got {quote_input(amount)}")
    return transfer_call(account_public_key(dest), amount)


def set_offer(models, price_per_token: int, *, region: str = "", capacity: int = 1, endpoint: str = "",
              engine_class: str = "") -> types_pb2.SetOffer:
    """A staking SetOffer of the listed 32-byte model ids at `price_per_token`, run on `engine_class` (empty or "cpu":
    the pinned CPU build), after the stateless checks; ClientError(INVALID_ARGUMENT) naming the problem."""
    try:
        call = types_pb2.SetOffer(models=list(models), price_per_token=price_per_token, region=region,
                                  capacity=capacity, endpoint=endpoint, engine_class=engine_class)
    except (TypeError, ValueError) as error:  # a value outside its field's type or range
        raise ClientError("INVALID_ARGUMENT", f"set_offer refused: {error}") from None
    checked_call(call)
    return call


def optional_u64(value: int | None, what: str) -> int | None:
    """`value` when it is None or a 64-bit unsigned integer; ClientError naming `what` otherwise."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= U64_MAX:
        raise ClientError("INVALID_ARGUMENT", f"{what} must be an integer from 0 to 2^64-1, got {quote_input(value)}")
    return value


def account_public_key(account: AccountLike) -> bytes:
    """The 32-byte account id of any account form; ClientError when it names none."""
    try:
        return account_id(account)
    except KeyResolutionError as error:
        raise ClientError("INVALID_ARGUMENT", str(error)) from None
