"""Generate the Python modules for every .proto file in proto/: `python -m proto.build`.

The generated files are committed so that `pip install` needs no protoc; a test
(tests/proto/test_generated.py) regenerates into a temporary folder and fails
when the committed files are stale.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PROTO_DIR = Path(__file__).resolve().parent
ROOT = PROTO_DIR.parent


def proto_files() -> list[Path]:
    """Every .proto file of the project, sorted so that output is stable."""
    return sorted(PROTO_DIR.glob("*.proto"))


def generate(out_dir: Path) -> None:
    """Run protoc (from grpcio-tools) over proto/*.proto, writing *_pb2.py and *_pb2_grpc.py under out_dir."""
    from grpc_tools import protoc  # only needed for generation, not at run time
    import grpc_tools

    include = Path(grpc_tools.__file__).resolve().parent / "_proto"
    args = [
        "protoc",
        f"-I{ROOT}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *[str(path.relative_to(ROOT)) for path in proto_files()],
    ]
    status = protoc.main(args)
    if status != 0:
        raise SystemExit(f"protoc failed with status {status}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT, help="output root (default: the checkout)")
    args = parser.parse_args()
    generate(args.out)
    print(f"generated {len(proto_files())} proto files into {args.out / 'proto'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
