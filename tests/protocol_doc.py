"""docs/protocol.md read by tests, and its generated tables rendered from the runtime's declarations.

The tables of "Events" (every module's events, from runtime/registry.py) and "Genesis" (every
module's parameters, from each ModuleSpec's ParamsSpec) and the list of packed fields of
"Canonical encoding" (from the .proto descriptors) are checked by tests/proto/test_protocol_doc.py.
`python -m tests.protocol_doc` prints what the doc lacks (rows to paste, then describe) or lists wrongly.
"""

from __future__ import annotations

import importlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from proto.build import proto_files
from runtime.module import EventSpec, ModuleSpec
from runtime.params import params_to_json
from runtime.registry import RUNTIME

DOC = Path(__file__).resolve().parents[1] / "docs" / "protocol.md"

_NOT_PACKABLE = (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES, FieldDescriptor.TYPE_MESSAGE,
                 FieldDescriptor.TYPE_GROUP)
_TYPE_NAMES = {value: key.removeprefix("TYPE_").lower() for key, value in vars(FieldDescriptor).items()
               if key.startswith("TYPE_") and isinstance(value, int)}
_PACKAGE = "inferchain."


def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


def section(heading: str, text: str | None = None) -> str:
    """The text under `## heading` (or `### heading`) up to the next heading of the same or a higher level."""
    text = doc_text() if text is None else text
    match = re.search(rf"^(#+) {re.escape(heading)}\n", text, re.MULTILINE)
    if match is None:
        raise AssertionError(f"docs/protocol.md has no section {heading!r}")
    level = len(match.group(1))
    end = re.compile(rf"^#{{1,{level}}} ", re.MULTILINE).search(text, match.end())
    return text[match.end(): end.start() if end else len(text)]


def table_rows(text: str) -> list[list[str]]:
    """The cells of every Markdown table row in `text` (header and separator rows included)."""
    return [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in text.splitlines() if line.startswith("|")]


# --- packed fields ----------------------------------------------------------------------


@dataclass(frozen=True)
class PackedField:
    name: str  # "types.RevealResult.tokens": the full name without the "inferchain." package prefix
    number: int
    type: str  # "uint32", "sint64", "bool", ...


def packed_fields() -> list[PackedField]:
    """Every packed repeated field of every .proto file: repeated scalars other than string and bytes."""
    found = []
    for path in proto_files():
        module = importlib.import_module(f"proto.{path.stem}_pb2")
        for message in module.DESCRIPTOR.message_types_by_name.values():
            found.extend(_packed_in(message))
    return sorted(found, key=lambda field: field.name)


def _packed_in(message: Descriptor) -> list[PackedField]:
    found = [
        PackedField(field.full_name.removeprefix(_PACKAGE), field.number, _TYPE_NAMES[field.type])
        for field in message.fields if _is_repeated(field) and field.type not in _NOT_PACKABLE
    ]
    for nested in message.nested_types:
        found.extend(_packed_in(nested))
    return found


def _is_repeated(field: FieldDescriptor) -> bool:
    repeated = getattr(field, "is_repeated", None)
    return repeated if repeated is not None else field.label == FieldDescriptor.LABEL_REPEATED


def documented_packed_fields() -> list[PackedField]:
    """The list under rule 5 of "Canonical encoding": lines `- `types.X.y` (field N, `type`)`."""
    rule = re.search(r"^5\. (.*?)^6\. ", section("Canonical encoding"), re.MULTILINE | re.DOTALL)
    if rule is None:
        raise AssertionError("'Canonical encoding' has no rule 5")
    entries = re.findall(r"^\s+- `([\w.]+)` \(field (\d+), `(\w+)`\)", rule.group(1), re.MULTILINE)
    return sorted((PackedField(name, int(number), kind) for name, number, kind in entries), key=lambda f: f.name)


def render_packed_field(field: PackedField) -> str:
    return f"   - `{field.name}` (field {field.number}, `{field.type}`)"


# --- events -------------------------------------------------------------------------------


def declared_events() -> dict[str, list[tuple[str, str]]]:
    """`module.Event` -> its attributes as (name, kind), in declaration (= emission) order, for every module."""
    return {f"{module.name}.{event.name}": list(event.attributes.items())
            for module in RUNTIME.modules for event in module.events}


def documented_events() -> dict[str, list[tuple[str, str]]]:
    """The table of "Events": first cell `module.Event`, second cell `` `attribute` kind, ... ``."""
    rows = {}
    for cells in table_rows(section("Events")):
        event = re.fullmatch(r"`(\w+\.\w+)`", cells[0])
        if event is None or len(cells) < 2:
            continue
        if event.group(1) in rows:
            raise AssertionError(f"'Events' lists {event.group(1)} twice")
        rows[event.group(1)] = re.findall(r"`(\w+)` (\w+)", cells[1])
    return rows


def render_event_row(module: ModuleSpec, event: EventSpec) -> str:
    attributes = ", ".join(f"`{name}` {kind}" for name, kind in event.attributes.items()) or "none"
    return f"| `{module.name}.{event.name}` | {attributes} | {event.doc} |"


# --- parameters ------------------------------------------------------------------------------


def declared_params() -> dict[str, tuple[str, str]]:
    """`module.parameter` -> (its JSON form, its default as JSON): every genesis parameter of every module."""
    declared = {}
    for module in RUNTIME.modules:
        if module.params is None:
            continue
        # The dataclass's fields are what genesis accepts; the protobuf field says how JSON writes each.
        for name, default in params_to_json(module.params, module.params.type()).items():
            field = module.params.message.DESCRIPTOR.fields_by_name[name]
            declared[f"{module.name}.{name}"] = (_json_form(field), _json_literal(default))
    return declared


def documented_params() -> dict[str, tuple[str, str]]:
    """The parameters table of "Genesis": `module.parameter` | JSON form | `default` | meaning."""
    rows = {}
    for cells in table_rows(section("Genesis")):
        name = re.fullmatch(r"`(\w+\.\w+)`", cells[0])
        default = re.fullmatch(r"`(.*)`", cells[2]) if len(cells) > 3 else None
        if name is None or default is None:
            continue
        if name.group(1) in rows:
            raise AssertionError(f"'Genesis' lists the parameter {name.group(1)} twice")
        rows[name.group(1)] = (cells[1], default.group(1))
    return rows


def _json_form(field: FieldDescriptor) -> str:
    if field.type in (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64):
        return "u64"
    if field.type in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32):
        return "u32"
    return _TYPE_NAMES[field.type]


def _json_literal(value) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value)


def render_params_row(name: str, form: str, default: str) -> str:
    return f"| `{name}` | {form} | `{default}` | |"


# --- what the doc lacks -------------------------------------------------------------------------


def missing_event_rows() -> list[str]:
    """Rows of "Events" for the declared events the doc does not list yet."""
    documented = documented_events()
    return [render_event_row(module, event) for module in RUNTIME.modules for event in module.events
            if f"{module.name}.{event.name}" not in documented]


def missing_params_rows() -> list[str]:
    """Rows of the parameters table of "Genesis" for the declared parameters the doc does not list yet."""
    documented = documented_params()
    return [render_params_row(name, *declared) for name, declared in declared_params().items() if name not in documented]


def missing_packed_rows() -> list[str]:
    """Lines of rule 5 of "Canonical encoding" for the packed fields the doc does not list yet."""
    listed = {field.name for field in documented_packed_fields()}
    return [render_packed_field(field) for field in packed_fields() if field.name not in listed]


def missing_rows() -> list[str]:
    """Everything docs/protocol.md lacks of the declarations, to paste and then describe."""
    return missing_event_rows() + missing_params_rows() + missing_packed_rows()


def changed_event_rows() -> list[str]:
    """Rows of "Events" whose attributes are no longer the declaration's, as declared now."""
    documented = documented_events()
    return [render_event_row(module, event) for module in RUNTIME.modules for event in module.events
            if documented.get(f"{module.name}.{event.name}", list(event.attributes.items())) != list(event.attributes.items())]


def stale_names() -> list[str]:
    """Events and parameters the doc lists that no module declares any more."""
    return (sorted(set(documented_events()) - set(declared_events()))
            + sorted(set(documented_params()) - set(declared_params())))


def report() -> list[str]:
    """What to change in docs/protocol.md, in words and rows."""
    lines = []
    for title, rows in (("add:", missing_rows()), ("declared differently now (fix the attributes):", changed_event_rows()),
                        ("remove (no longer declared):", stale_names())):
        if rows:
            lines += [title, *rows]
    return lines


if __name__ == "__main__":
    lines = report()
    print("\n".join(lines) if lines else "docs/protocol.md lists every event, parameter and packed field as declared")
    sys.exit(1 if lines else 0)
