#!/usr/bin/env bash
# The GPU measurement's device side (bench/gpu/README.md), one stage per `run` call, from the
# repository root with $OUT set. The machine keeps /tmp only while it stays warm (about 30 s after a
# call), so the calls are issued back to back and every stage says in one line what it lacks.
#
#   start    (carry .gpu/call1)  device facts; model part 1 and wheels into /tmp/gpu; unpacks the
#                                trimmed source and starts the CUDA build in the background
#   finish   (carry .gpu/call2)  model part 2, reassembled and checked against its blake2b-256 id;
#                                waits for the build; import-order check; measure.py within the call
#   measure                      measure.py again (after a finish that ran out of time)
#   status                       what /tmp/gpu holds, the build log's tail
#   build-here                   the same build, in the foreground (prepare.sh --verify-build runs it
#                                with INFERCHAIN_GPU_BACKEND=cpu to build the pinned CPU flags here)
#
# Environment: GPU_WORK (default /tmp/gpu), OUT (default $GPU_WORK/out), PYTHON (default python3),
# INFERCHAIN_GPU_BACKEND (cuda, default; cpu for testing on a machine without a GPU),
# MEASURE_ARGS (extra measure.py arguments, e.g. --quick), CALL_SECONDS (a call's limit, 600).
set -uo pipefail

STAGE="${1:-}"
ROOT="${GPU_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}"
WORK="${GPU_WORK:-/tmp/gpu}"
OUT="${OUT:-$WORK/out}"
PY="${PYTHON:-python3}"
BACKEND="${INFERCHAIN_GPU_BACKEND:-cuda}"
CALL_SECONDS="${CALL_SECONDS:-600}"
VERSION=0.3.36
MODEL_ID=d63af87b96e2fd6551e9e7320602f3934f34c41a91004117dd24981571d02f79
MODEL="$WORK/models/$MODEL_ID.gguf"
SITE="$WORK/site"
STARTED=$SECONDS
mkdir -p "$WORK" "$OUT"

say() { echo "device.sh $STAGE: $*"; }
fail() { echo "device.sh $STAGE: $*" >&2; exit 1; }

# The pinned CPU flags (Makefile LLAMA_CMAKE_ARGS): the CUDA build compiles the same CPU backend.
CPU_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF \
-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DGGML_LLAMAFILE=OFF \
-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF"

cuda_args() {
    # One architecture, the device's own (e.g. 9.0 -> 90-real): a build for every architecture takes
    # several times as long. FlashAttention kernels are left out: the engine turns flash attention
    # off (inference/llama_context.py), so they would never run. NCCL is for several GPUs.
    local cap
    cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')
    [ -n "$cap" ] || fail "nvidia-smi reports no GPU compute capability"
    echo "$CPU_ARGS -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=${cap}-real -DGGML_CUDA_FA=OFF \
-DGGML_CUDA_NCCL=OFF -DCMAKE_CUDA_HOST_COMPILER=g++"
}

site_path() {  # llama_cpp and the carried wheels first, then the repository
    echo "$SITE:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
}

build() {  # foreground; writes $WORK/build.log and, at the end, $WORK/build.rc
    local args
    rm -f "$WORK/build.rc"
    if [ "$BACKEND" = cuda ]; then
        command -v nvcc >/dev/null || export PATH="/usr/local/cuda/bin:$PATH"
        args=$(cuda_args) || { echo "nvidia-smi reports no compute capability" >> "$WORK/build.log"; echo 1 > "$WORK/build.rc"; return 1; }
    else
        args="$CPU_ARGS"
    fi
    [ -d "$WORK/src/llama_cpp_python-$VERSION" ] || fail "no unpacked source in $WORK/src: run the start stage"
    echo "CMAKE_ARGS=$args" > "$WORK/build.log"
    # The system compiler for the host side too: a CUDA build linked against another libstdc++ than
    # numpy's crashed when numpy was imported first (issue 27).
    CC=gcc CXX=g++ CUDAHOSTCXX=g++ CMAKE_ARGS="$args" \
        CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" \
        "$PY" -m pip install -v --no-index --no-build-isolation --no-deps --no-cache-dir \
        --target "$SITE" --upgrade "$WORK/src/llama_cpp_python-$VERSION" >> "$WORK/build.log" 2>&1
    local rc=$?
    echo "$rc" > "$WORK/build.rc"
    return "$rc"
}

take_parts() {  # copies whatever model parts and wheels this call carried into $WORK
    mkdir -p "$WORK/parts"
    local part
    for part in "$ROOT"/.gpu/call*/model.part*; do
        [ -f "$part" ] && cp "$part" "$WORK/parts/"
    done
    return 0
}

assemble_model() {
    [ -f "$MODEL" ] && return 0
    local missing=""
    for part in model.part1 model.part2; do [ -f "$WORK/parts/$part" ] || missing="$missing $part"; done
    [ -z "$missing" ] || fail "missing$missing in $WORK/parts (the machine was given back between calls?): issue the start call again, then finish"
    mkdir -p "$WORK/models"
    cat "$WORK/parts/model.part1" "$WORK/parts/model.part2" > "$MODEL.tmp"
    local actual
    actual=$("$PY" -c "
import hashlib, sys
h = hashlib.blake2b(digest_size=32)
with open(sys.argv[1], 'rb') as f:
    for chunk in iter(lambda: f.read(1 << 20), b''):
        h.update(chunk)
print(h.hexdigest())" "$MODEL.tmp")
    [ "$actual" = "$MODEL_ID" ] || { rm -f "$MODEL.tmp"; fail "reassembled model hashes to $actual, not $MODEL_ID"; }
    mv "$MODEL.tmp" "$MODEL"
    echo "{\"name\": \"SmolLM2-135M-Instruct-Q4_1\"}" > "$WORK/models/$MODEL_ID.json"
    say "model reassembled, blake2b-256 $actual"
}

wait_build() {  # waits at most $1 seconds for the background build
    local limit=$1 waited=0
    while [ ! -f "$WORK/build.rc" ]; do
        [ -f "$WORK/build.pid" ] && kill -0 "$(cat "$WORK/build.pid")" 2>/dev/null \
            || fail "no build under way in $WORK (the machine was given back between calls?): issue the start call again"
        [ "$waited" -ge "$limit" ] && fail "build still running after ${limit}s; tail: $(tail -c 300 "$WORK/build.log" | tr '\n' ' ')"
        sleep 5; waited=$((waited + 5))
    done
    local rc
    rc=$(cat "$WORK/build.rc")
    cp "$WORK/build.log" "$OUT/build.log" 2>/dev/null
    [ "$rc" = 0 ] || fail "the build failed (rc $rc); \$OUT/build.log; tail: $(grep -m3 -i 'error' "$WORK/build.log" | tr '\n' ' ' | cut -c1-600)"
    say "build done after $((SECONDS - STARTED))s of this call"
}

import_check() {  # the numpy-first import order that crashed the earlier CUDA build, in fresh processes
    local order
    for order in "import numpy; import llama_cpp" "import llama_cpp; import numpy"; do
        PYTHONPATH=$(site_path) "$PY" -c "$order
import llama_cpp
llama_cpp.llama_backend_init()
print(llama_cpp.llama_print_system_info().decode())" > "$WORK/import.txt" 2>&1
        local rc=$?
        [ "$rc" = 0 ] || { cat "$WORK/import.txt" >&2; fail "'$order' exits $rc: the build does not load in that order"; }
    done
    say "import check: numpy-first and llama_cpp-first both load; $(tail -1 "$WORK/import.txt" | cut -c1-200)"
}

measure() {
    local left=$((CALL_SECONDS - (SECONDS - STARTED) - 45))
    [ "$left" -ge 60 ] || fail "only ${left}s left in this call: run the measure stage as its own call"
    [ -f "$MODEL" ] || fail "no model in $WORK/models: run start and finish first"
    PYTHONPATH=$(site_path) PYTHONUNBUFFERED=1 timeout "$left" "$PY" "$ROOT/bench/gpu/measure.py" \
        --model "$MODEL" --out "$OUT/results.json" --deadline-s "$((left - 15))" ${MEASURE_ARGS:-} \
        2>&1 | tee "$OUT/measure.log"
    local rc=${PIPESTATUS[0]}
    [ "$rc" = 124 ] && say "measure.py stopped at this call's limit; \$OUT/results.json holds the parts and rows that finished"
    return "$rc"
}

device_facts() {
    {
        echo "date: $(date -u +%FT%TZ)"
        nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv 2>&1
        (command -v nvcc >/dev/null && nvcc --version || /usr/local/cuda/bin/nvcc --version) 2>&1 | tail -2
        "$PY" --version 2>&1
        gcc --version 2>&1 | head -1
        cmake --version 2>&1 | head -1
        "$PY" -c "import importlib.metadata as m
for p in ('numpy', 'scikit-build-core', 'protobuf', 'jinja2', 'typing_extensions', 'diskcache'):
    try: print(p, m.version(p))
    except Exception: print(p, 'missing')" 2>&1
        echo "cores: $(nproc)"
    } > "$OUT/device.txt"
    cp "$OUT/device.txt" "$WORK/device.txt"
    cat "$OUT/device.txt"
}

case "$STAGE" in
start)
    device_facts
    [ "$BACKEND" != cuda ] || nvidia-smi >/dev/null 2>&1 || fail "no GPU: nvidia-smi fails"
    tarball="$ROOT/.gpu/call1/llama-cpp-python-$VERSION-trimmed.tar.xz"
    [ -f "$tarball" ] || fail "no $tarball: run bench/gpu/prepare.sh here and carry .gpu/call1"
    take_parts
    mkdir -p "$SITE"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$SITE" "$ROOT"/.gpu/call1/wheels/*.whl \
        || fail "could not install the carried wheels"
    rm -rf "$WORK/src" && mkdir -p "$WORK/src"
    "$PY" -c "import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])" "$tarball" "$WORK/src" \
        || fail "could not unpack $tarball"
    # A new session (setsid) outlives this call; the next call waits for it.
    rm -f "$WORK/build.pid" "$WORK/build.rc"
    # From a copy: bash reads a script as it goes, and the next call's working tree replaces this one.
    cp "$ROOT/bench/gpu/device.sh" "$WORK/device.sh"
    GPU_ROOT="$ROOT" GPU_WORK="$WORK" setsid nohup bash "$WORK/device.sh" build-here > /dev/null 2>&1 < /dev/null &
    sleep 20
    [ -f "$WORK/build.rc" ] && [ "$(cat "$WORK/build.rc")" != 0 ] && fail "the build stopped at once: $(tail -5 "$WORK/build.log")"
    say "build under way (pid $(cat "$WORK/build.pid")); issue the finish call now. $(grep -m1 -o 'CUDA_ARCHITECTURES=[^ ]*' "$WORK/build.log")"
    ;;
finish)
    take_parts
    assemble_model
    wait_build $((CALL_SECONDS - 240))
    import_check
    measure
    ;;
measure)
    [ -f "$WORK/build.rc" ] && [ "$(cat "$WORK/build.rc")" = 0 ] || fail "no finished build in $WORK: run start and finish first"
    measure
    ;;
status)
    ls -la "$WORK" "$WORK/parts" "$WORK/models" 2>&1
    tail -20 "$WORK/build.log" 2>&1
    ;;
build-here)
    echo $$ > "$WORK/build.pid"
    build && say "built into $SITE in $((SECONDS - STARTED))s"
    ;;
*)
    fail "usage: bash bench/gpu/device.sh start|finish|measure|status|build-here"
    ;;
esac
