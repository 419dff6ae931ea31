"""The committed generated code matches what `python -m proto.build` produces now."""

from __future__ import annotations

from pathlib import Path

from proto.build import PROTO_DIR, generate, proto_files


def test_generated_python_is_fresh(tmp_path: Path):
    generate(tmp_path)
    generated = sorted(path.name for path in (tmp_path / "proto").iterdir())
    assert generated, "protoc produced nothing"
    stale = [
        name for name in generated
        if not (PROTO_DIR / name).exists() or (PROTO_DIR / name).read_bytes() != (tmp_path / "proto" / name).read_bytes()
    ]
    assert not stale, f"stale generated files {stale}: run `make proto` (python -m proto.build) and commit"


def test_every_proto_file_is_compiled():
    modules = {path.stem + "_pb2.py" for path in proto_files()}
    assert modules <= {path.name for path in PROTO_DIR.glob("*_pb2.py")}
