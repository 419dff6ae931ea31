"""`notes`: a small module that exists only in tests, to prove that a module joins the runtime in one place.

Everything it adds is here: its protobuf messages (built with protobuf's descriptor API, so no .proto
file and no generated code), params with genesis defaults, one call whose fields cover every field
kind (runtime/module.py), two events, one query, block hooks with their declared weight, and its
ModuleSpec. tests/runtime/test_module_joins.py registers it beside the real modules and shows the
edges and the executive serve it with no other file edited.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.message_factory import GetMessageClass

from runtime.module import (
    ACCOUNT,
    AMOUNT,
    BOOLEAN,
    BYTES,
    HASH,
    INTEGER,
    TEXT,
    CallSpec,
    EventSpec,
    GenesisContext,
    GenesisSpec,
    ModuleSpec,
    ParamsSpec,
    QuerySpec,
    check_section_keys,
)
from runtime.params import encode_params, params_from_json, params_to_json
from runtime.primitives import BlockContext, CallContext, DispatchError, make_event
from runtime.state import IterableState, Overlay, StateReader

MODULE = "notes"

# --- wire format: what `proto/*.proto` would hold for a real module ---------------------------------

_T = descriptor_pb2.FieldDescriptorProto
_PACKAGE = "inferchain.test.notes"


def _file() -> descriptor_pb2.FileDescriptorProto:
    file = descriptor_pb2.FileDescriptorProto(name="tests/runtime/notes.proto", package=_PACKAGE, syntax="proto3")

    def message(name: str, *fields: tuple[str, int, int, bool] | tuple[str, int, int, bool, str]) -> None:
        added = file.message_type.add(name=name)
        for field_name, number, kind, repeated, *type_name in fields:
            field = added.field.add(name=field_name, number=number, type=kind,
                                    label=_T.LABEL_REPEATED if repeated else _T.LABEL_OPTIONAL)
            if type_name:
                field.type_name = f".{_PACKAGE}.{type_name[0]}"

    message("PostNote",
            ("to", 1, _T.TYPE_BYTES, False), ("tip", 2, _T.TYPE_UINT64, False),
            ("priority", 3, _T.TYPE_UINT32, False), ("topic", 4, _T.TYPE_BYTES, False),
            ("text", 5, _T.TYPE_STRING, False), ("payload", 6, _T.TYPE_BYTES, False),
            ("pinned", 7, _T.TYPE_BOOL, False), ("labels", 8, _T.TYPE_STRING, True),
            ("title", 9, _T.TYPE_BYTES, False), ("refs", 10, _T.TYPE_BYTES, True))
    message("NotesParams", ("max_text_bytes", 1, _T.TYPE_UINT32, False))
    message("NoteRecord", ("author", 1, _T.TYPE_BYTES, False), ("count", 2, _T.TYPE_UINT64, False),
            ("last", 3, _T.TYPE_MESSAGE, False, "PostNote"))
    message("NoteQuery", ("author", 1, _T.TYPE_BYTES, False))
    return file


# The default pool, where proto/'s messages are: a TransactionBody carrying this module's call beside the
# real ones (tests/runtime/test_module_joins.py) refers to messages of both.
_POOL = descriptor_pool.Default()
_POOL.Add(_file())
PostNote = GetMessageClass(_POOL.FindMessageTypeByName(f"{_PACKAGE}.PostNote"))
NotesParamsMessage = GetMessageClass(_POOL.FindMessageTypeByName(f"{_PACKAGE}.NotesParams"))
NoteRecord = GetMessageClass(_POOL.FindMessageTypeByName(f"{_PACKAGE}.NoteRecord"))
NoteQuery = GetMessageClass(_POOL.FindMessageTypeByName(f"{_PACKAGE}.NoteQuery"))

# --- params -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Params:
    max_text_bytes: int = 280

    def validate(self) -> None:
        if not 1 <= self.max_text_bytes <= 10_000:
            raise ValueError(f"max_text_bytes must be from 1 to 10000, got {self.max_text_bytes}")


PARAMS_KEY = b"notes/params"
PARAMS = ParamsSpec(Params, NotesParamsMessage, PARAMS_KEY)

# --- storage keys -----------------------------------------------------------------------------------

NOTE_PREFIX = b"notes/note/"
# Notes posted in the block being applied: opened by on_initialize, closed by on_finalize (never kept
# between blocks).
IN_BLOCK_KEY = b"notes/in_block"


def note_key(author: bytes) -> bytes:
    return NOTE_PREFIX + author

# --- errors -----------------------------------------------------------------------------------------


class NotesError(DispatchError):
    module = MODULE


class InvalidNote(NotesError):
    """The note can never be posted as written."""


class NoteTooLong(NotesError):
    """The note's text is longer than the chain allows."""

# --- events -----------------------------------------------------------------------------------------


EVENTS = (
    EventSpec("NotePosted", "An account posted a note.",
              {"author": ACCOUNT, "to": ACCOUNT, "tip": AMOUNT, "topic": HASH, "count": INTEGER}),
    EventSpec("NotesInBlock", "The block closed with this many notes posted in it.",
              {"height": INTEGER, "count": INTEGER}),
)

# --- calls ------------------------------------------------------------------------------------------


def check_post_note(call) -> None:
    if len(call.to) != 32:
        raise InvalidNote(f"to must be a 32-byte account id, got {len(call.to)} bytes")
    if call.topic and len(call.topic) != 32:
        raise InvalidNote(f"topic must be a 32-byte hash or empty, got {len(call.topic)} bytes")
    if any(len(ref) != 32 for ref in call.refs):
        raise InvalidNote("every ref must be a 32-byte hash")


def post_note(state: Overlay, context: CallContext, call) -> None:
    origin = context.origin
    params = SPEC.read_params(state)
    size = len(call.text.encode("utf-8"))
    if size > params.max_text_bytes:
        raise NoteTooLong(f"the note is {size} bytes of text, the limit is {params.max_text_bytes}")
    record = read_note(state, origin) or NoteRecord(author=origin)
    record.count += 1
    record.last.CopyFrom(call)
    state.set(note_key(origin), record.SerializeToString(deterministic=True))
    state.set(IN_BLOCK_KEY, _count_bytes(_in_block(state) + 1))
    state.deposit_event(make_event(MODULE, "NotePosted", author=origin.hex(), to=call.to.hex(), tip=call.tip,
                                   topic=call.topic.hex(), count=record.count))


CALLS = (
    CallSpec(name="post_note", message=PostNote, doc="Post a note to an account.", handler=post_note,
             check=check_post_note,
             fields={"to": ACCOUNT, "tip": AMOUNT, "priority": INTEGER, "topic": HASH, "text": TEXT,
                     "payload": BYTES, "pinned": BOOLEAN, "labels": TEXT, "title": TEXT, "refs": HASH}),
)

# --- hooks ------------------------------------------------------------------------------------------

# Each hook reads or writes one record.
HOOKS_WEIGHT = 2_000


def open_block(state: Overlay, block: BlockContext) -> None:
    """on_initialize: no note posted in this block yet."""
    state.set(IN_BLOCK_KEY, _count_bytes(0))


def close_block(state: Overlay, block: BlockContext, fees: int) -> None:
    """on_finalize: say how many notes the block carried; nothing is kept for the next block."""
    count = _in_block(state)
    state.delete(IN_BLOCK_KEY)
    if count:
        state.deposit_event(make_event(MODULE, "NotesInBlock", height=block.height, count=count))


def hooks_weight(state: StateReader, block: BlockContext) -> int:
    return HOOKS_WEIGHT


def _in_block(state: StateReader) -> int:
    raw = state.get(IN_BLOCK_KEY)
    return 0 if raw is None else int.from_bytes(raw, "big")


def _count_bytes(count: int) -> bytes:
    return count.to_bytes(8, "big")

# --- queries ----------------------------------------------------------------------------------------


def read_note(state: StateReader, author: bytes):
    raw = state.get(note_key(author))
    return None if raw is None else NoteRecord.FromString(raw)


def query_note(state: StateReader, request):
    if len(request.author) != 32:
        raise InvalidNote("author must be a 32-byte account id")
    record = read_note(state, request.author)
    if record is None:
        raise KeyError(f"a note by {request.author.hex()}")
    return record


QUERIES = (
    QuerySpec(name="note", doc="The last note an account posted, and how many it posted.", request=NoteQuery,
              response=NoteRecord, handler=query_note, fields={"author": ACCOUNT, "count": INTEGER}),
)

# --- genesis ----------------------------------------------------------------------------------------


def parse_genesis(section: Mapping[str, Any], context: GenesisContext) -> Params:
    """`app_state.notes`: {"params": {"max_text_bytes": 280}}; every field has a default."""
    check_section_keys(section, ("params",), "app_state.notes")
    return params_from_json(PARAMS, section.get("params", {}), "app_state.notes.params")


def genesis(state: Overlay, params: Params) -> None:
    params.validate()
    state.set(PARAMS_KEY, encode_params(PARAMS, params))


def export_genesis(state: IterableState, encode_account=bytes.hex) -> dict:
    return {"params": params_to_json(PARAMS, SPEC.read_params(state))}

# --- declaration ------------------------------------------------------------------------------------


SPEC = ModuleSpec(
    name=MODULE,
    doc="Notes accounts post to each other (a test-only module).",
    params=PARAMS,
    genesis=GenesisSpec(parse=parse_genesis, build=genesis, export=export_genesis, default=Params),
    calls=CALLS,
    events=EVENTS,
    errors=(InvalidNote, NoteTooLong),
    queries=QUERIES,
    on_initialize=open_block,
    on_finalize=close_block,
    hooks_weight=hooks_weight,
)
