"""Hypothesis strategies for every call a runtime declares, built from its protobuf descriptor and field kinds.

Nothing here names a call: a module's new call is fuzzed as soon as it is registered. Each field is
drawn by its declared kind (runtime/module.py), mixing values that may pass (known accounts, known
ids, small amounts) with values that must be refused cleanly (wrong lengths, the type's extremes);
fields without a declared kind are drawn by their wire type; nested messages to depth 2.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import strategies as st

from chain.cli.fields import INTEGER_RANGES, field_kind, is_repeated
from runtime.module import ACCOUNT, AMOUNT, BOOLEAN, BYTES, HASH, INTEGER, TEXT, CallSpec
from runtime.registry import RUNTIME, Runtime

def _integers(field: FieldDescriptor, small: int) -> st.SearchStrategy:
    low, high = INTEGER_RANGES[field.type]
    return st.one_of(st.integers(max(low, 0), min(high, small)), st.integers(low, high), st.sampled_from([low, high]))


def field_values(
    field: FieldDescriptor, kind: str | None, accounts: Sequence[bytes], hashes: Sequence[bytes]
) -> st.SearchStrategy:
    """One value of a scalar field, by its kind."""
    if kind == ACCOUNT:
        return st.one_of(st.sampled_from(list(accounts) or [bytes(32)]), st.binary(min_size=32, max_size=32),
                         st.binary(max_size=40))
    if kind == HASH:
        return st.one_of(st.sampled_from(list(hashes) or [bytes(32)]), st.binary(min_size=32, max_size=32),
                         st.binary(max_size=40))
    if kind == AMOUNT:
        return _integers(field, 10**15)
    if kind == INTEGER:
        return _integers(field, 10)
    if kind == BOOLEAN:
        return st.booleans()
    if kind == TEXT:
        text = st.text(max_size=40)
        return text.map(str.encode) if field.type == FieldDescriptor.TYPE_BYTES else text
    if kind == BYTES:
        return st.binary(max_size=40)
    if field.type == FieldDescriptor.TYPE_ENUM:
        return st.integers(0, 5)  # open enums keep values the schema does not name
    return st.floats(allow_nan=False)


def messages(
    descriptor: Descriptor, kinds: Mapping[str, str] = {}, accounts: Sequence[bytes] = (),
    hashes: Sequence[bytes] = (), depth: int = 0,
) -> st.SearchStrategy:
    """Arbitrary messages of a type, each field by its declared kind (nested messages by wire type, to depth 2)."""
    message_class = GetMessageClass(descriptor)
    values = {}
    for field in descriptor.fields:
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            if depth >= 2:
                continue
            value = messages(field.message_type, {}, accounts, hashes, depth + 1)
        else:
            value = field_values(field, field_kind(kinds, field), accounts, hashes)
        values[field.name] = st.lists(value, max_size=4) if is_repeated(field) else value
    return st.fixed_dictionaries({}, optional=values).map(lambda chosen: _build(message_class, chosen))


def _build(message_class, chosen: dict) -> Message:
    message = message_class()
    for name, value in chosen.items():
        field = message_class.DESCRIPTOR.fields_by_name[name]
        if is_repeated(field):
            getattr(message, name).extend(value)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            getattr(message, name).CopyFrom(value)
        else:
            setattr(message, name, value)
    return message


def call_strategy(spec: CallSpec, accounts: Sequence[bytes] = (), hashes: Sequence[bytes] = ()) -> st.SearchStrategy:
    """Arbitrary messages of one call."""
    return messages(spec.message.DESCRIPTOR, spec.fields, accounts, hashes)


def call_strategies(
    runtime: Runtime = RUNTIME, accounts: Sequence[bytes] = (), hashes: Sequence[bytes] = ()
) -> dict[str, st.SearchStrategy]:
    """A strategy for every call the runtime declares, by call name."""
    return {name: call_strategy(spec, accounts, hashes) for name, spec in runtime.calls.items()}


def any_call(runtime: Runtime = RUNTIME, accounts: Sequence[bytes] = (), hashes: Sequence[bytes] = ()) -> st.SearchStrategy:
    """(call name, call message) for any declared call."""
    strategies = call_strategies(runtime, accounts, hashes)
    return st.sampled_from(sorted(strategies)).flatmap(lambda name: strategies[name].map(lambda call: (name, call)))
