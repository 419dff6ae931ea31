"""What a runtime module declares, in one place, to join the runtime (runtime/registry.py).

As FRAME's `construct_runtime!` or the Cosmos SDK's module manager: a module hands
the registry its parameters, genesis (parse, build, export, defaults), calls, events,
errors, queries and hooks. The executive, the genesis loader, the client, the CLI and
the node's queries are driven by these declarations, so a new transaction type is
added in its module and its messages in proto/ (the call's message is also a field of
`TransactionBody`'s `call` oneof), nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from proto import state_pb2

from runtime import weights
from runtime.params import ParamsSpec, decode_params
from runtime.primitives import BlockContext, CallContext, DispatchError
from runtime.state import IterableState, Overlay, StateReader

# What an event attribute or call field holds, so the edges can show it to a person:
# an account as an SS58 address, an amount with the token's decimals and symbol.
ACCOUNT = "account"  # 64 lowercase hex characters of a 32-byte account id (bytes on the wire)
AMOUNT = "amount"  # an integer number of base units of the token
INTEGER = "integer"  # any other integer
HASH = "hash"  # 64 lowercase hex characters of a 32-byte hash
TEXT = "text"  # UTF-8 text (a protobuf `string`, or `bytes` holding UTF-8)
BYTES = "bytes"  # any other bytes, shown as lowercase hex
BOOLEAN = "boolean"  # true or false (a protobuf `bool`)

_BYTES = (FieldDescriptor.TYPE_BYTES,)
_INTEGERS = (
    FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED64,
    FieldDescriptor.TYPE_FIXED32, FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_INT32,
    FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED64,
    FieldDescriptor.TYPE_SFIXED32,
)
# Which protobuf field types each kind may describe (checked when a Runtime is built).
KIND_FIELD_TYPES = {
    ACCOUNT: _BYTES,
    HASH: _BYTES,
    BYTES: _BYTES,
    AMOUNT: _INTEGERS,
    INTEGER: _INTEGERS,
    BOOLEAN: (FieldDescriptor.TYPE_BOOL,),
    # UTF-8 text: a protobuf `string`, or `bytes` that the edges encode and check as UTF-8.
    TEXT: (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES),
}


class GenesisInvalid(ValueError):
    """A module's genesis section cannot start a chain; the message names the field."""


@dataclass(frozen=True)
class GenesisContext:
    """What every module's genesis may use besides its own section."""

    chain_id: str
    genesis_hash: bytes
    genesis_time_ms: int
    initial_height: int
    # Turns an address string of the chain into a 32-byte account id; raises ValueError.
    # Passed in by the chain, so the runtime knows no address format.
    decode_account: Callable[[str], bytes]
    # What a block may hold (runtime/block.py BlockLimits), parsed from genesis consensus_params.block;
    # None: the defaults.
    block_limits: Any = None


@dataclass(frozen=True)
class CallSpec:
    """One transaction type: the `TransactionBody.call` field `name` holding a `message`."""

    name: str
    message: type[Message]
    doc: str
    # handler(state, context, call): checks, writes and events; raises the module's DispatchError to
    # fail (fee kept). `context` (runtime/primitives.py CallContext) holds the sender, the transaction's
    # nonce and hash: what a handler needs of the transaction is passed in, never re-derived from state.
    handler: Callable[[Overlay, CallContext, Any], None]
    # cost(state, call): what the call spends from the sender beside the fee, under the rules in
    # `state` (the pool checks the sender can afford it before taking the transaction).
    cost: Callable[[StateReader, Any], int] = lambda state, call: 0
    # check(call): stateless; raises the module's DispatchError for a call that can never succeed.
    check: Callable[[Any], None] = lambda call: None
    # check_state(state, call): the bounds that depend on state (parameters, registered records),
    # declared here so an edge can ask them alone; the handler runs it before it writes anything.
    check_state: Callable[[StateReader, Any], None] = lambda state, call: None
    # How the edges read and show each field of the message (field name -> kind above); a repeated
    # field's kind is that of each value.
    fields: Mapping[str, str] = field(default_factory=dict)
    # weight(call): the declared worst-case execution cost of the handler, in weight units (runtime/weights.py),
    # from the call alone: its list lengths and sizes, bounded by `check`, and the ceilings of runtime/weights.py
    # for what it depends on in state. A block's transactions and hooks declare at most max_block_weight, and the
    # fee pays fee_per_weight for it (docs/protocol.md, "Block validity" and "Transactions").
    weight: Callable[[Any], int] = lambda call: weights.UNDECLARED_CALL


@dataclass(frozen=True)
class EventSpec:
    """One event a module emits: its name and each attribute's kind."""

    name: str
    doc: str
    attributes: Mapping[str, str]


@dataclass(frozen=True)
class QuerySpec:
    """One read-only query of a module's state, served generically by the node's API and the CLI.

    `handler(state, request)` reads the head state and returns a `response`; it raises
    the module's DispatchError (or KeyError for an absent record) to refuse.
    """

    name: str
    doc: str
    request: type[Message]
    response: type[Message]
    handler: Callable[[StateReader, Any], Message]
    # How the edges read each request field and show each response field (field name -> kind above).
    fields: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class GenesisSpec:
    """A module's genesis: parse its `app_state.<module>` section, build state, export it back."""

    parse: Callable[[Mapping[str, Any], GenesisContext], Any]
    build: Callable[[Overlay, Any], None]
    # Exports the section back from state; accounts are written with `encode_account` (the chain's address format).
    export: Callable[[IterableState, Callable[[bytes], str]], dict]
    # default(): the configuration used when genesis leaves the module out (its declared parameter
    # defaults, no records); None when the module cannot start without a section of its own.
    default: Callable[[], Any] | None = None
    # check(state): a rule across modules, run on the genesis state once every module has built its part;
    # raises GenesisInvalid naming the fields (disputes: its windows end before the unbonding period).
    check: Callable[[StateReader], None] | None = None


@dataclass(frozen=True)
class ModuleSpec:
    """Everything a runtime module declares."""

    name: str
    doc: str
    params: ParamsSpec | None
    # None: the module has nothing to configure at genesis (its `app_state` section must be absent or {}).
    genesis: GenesisSpec | None
    calls: tuple[CallSpec, ...] = ()
    events: tuple[EventSpec, ...] = ()
    errors: tuple[type[DispatchError], ...] = ()
    queries: tuple[QuerySpec, ...] = ()
    on_initialize: Callable[[Overlay, BlockContext], None] | None = None
    # Runs after the block's transactions; `fees` is what they paid in total.
    on_finalize: Callable[[Overlay, BlockContext, int], None] | None = None
    # hooks_weight(state, block): the declared worst case of on_initialize and on_finalize together in `block`,
    # from the parent state (parameters, and work already scheduled for this height); work a transaction of the
    # block adds to a hook is declared in that call's weight. Counted against max_block_weight before any
    # transaction (runtime/executive.py). A module with hooks and no declaration is charged weights.UNDECLARED_HOOKS.
    hooks_weight: Callable[[StateReader, BlockContext], int] | None = None

    def read_params(self, state: StateReader):
        """The module's parameters as stored in `state`."""
        return decode_params(self.params, state.get(self.params.key))


def check_section_keys(section: Any, allowed: tuple[str, ...], where: str) -> None:
    """Refuse a genesis section that is not an object or names a field the module does not know."""
    if not isinstance(section, Mapping):
        raise GenesisInvalid(f"{where} must be an object")
    unknown = sorted(set(section) - set(allowed))
    if unknown:
        raise GenesisInvalid(f"{where}: unknown field {str(unknown[0])[:40]!r} (known: {', '.join(allowed)})")


def check_field_kinds(fields: Mapping[str, str], messages: tuple[type[Message], ...], where: str) -> None:
    """Refuse a declaration whose field kinds do not match the protobuf fields they describe (ValueError)."""
    for name, kind in fields.items():
        descriptor = _find_field(name, messages)
        if descriptor is None:
            known = ", ".join(f.name for message in messages for f in message.DESCRIPTOR.fields)
            raise ValueError(f"{where}: no field {name!r} (fields: {known})")
        allowed = KIND_FIELD_TYPES.get(kind)
        if allowed is None:
            raise ValueError(f"{where}.{name}: unknown kind {kind!r} (kinds: {', '.join(KIND_FIELD_TYPES)})")
        if descriptor.type not in allowed:
            raise ValueError(
                f"{where}.{name}: declared {kind}, but the protobuf field is a {_type_name(descriptor)}"
            )


def _find_field(name: str, messages: tuple[type[Message], ...]) -> FieldDescriptor | None:
    return next((m.DESCRIPTOR.fields_by_name[name] for m in messages if name in m.DESCRIPTOR.fields_by_name), None)


def _type_name(descriptor: FieldDescriptor) -> str:
    names = {value: key.removeprefix("TYPE_").lower() for key, value in vars(FieldDescriptor).items()
             if key.startswith("TYPE_") and isinstance(value, int)}
    return names.get(descriptor.type, str(descriptor.type))


class InvalidQuery(DispatchError):
    """A query's request that cannot be answered as asked (an id of the wrong length, a limit out of range)."""

    module = "query"


def require_id(value: bytes, field_name: str) -> bytes:
    """A 32-byte id from a query's request, or InvalidQuery naming the field."""
    if len(value) != 32:
        raise InvalidQuery(f"{field_name} must be 32 bytes, got {len(value)}")
    return value


def params_query(spec: ParamsSpec) -> QuerySpec:
    """The `params` query every module with parameters declares: its parameters as stored."""
    def handler(state: StateReader, request) -> Message:
        raw = state.get(spec.key)
        if raw is None:
            raise KeyError("the module's parameters")
        return spec.message.FromString(raw)

    return QuerySpec(name="params", doc="The module's parameters as stored.", request=state_pb2.NoArguments,
                     response=spec.message, handler=handler)
