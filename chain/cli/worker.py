"""`inferchain worker`: execute the jobs the chain assigns to one account, with the engine, and get paid.

It reads the account's offer from the chain, loads the models offered from the model store, then
follows finalized blocks: each job assigned to the account is run (up to the offer's capacity at
once), committed and revealed; when the account is drawn into a dispute's committee, the results judged
are re-scored on the same engines and the votes committed and revealed. Once an epoch it also seals and
posts a probe job, opened for an audit once it settles (`--no-probes`: none). A node whose validator key has
an offer runs one by itself; run this command to serve an account from another machine (a GPU box)
instead (`node --no-worker`). While a job runs, its tokens are published to the node (`--node`) for
the job's poster to stream; the offer's endpoint says where (`--stream-endpoint`), and the worker sets
it on chain at start when it differs.

The worker runs one engine class (`--engine-class`, default "cpu": the pinned CPU build every model
registers as its `engine`). Each offered model must have that class, and the class's engine string
must be this build's `engine_version()`, else it refuses to start (`--allow-engine-mismatch` turns the
second into a warning). Its offer on chain is set to carry that class at start when it differs (a class
change is held by the offer lock like a price change).
"""

from __future__ import annotations

import argparse
import logging
import os
import threading
from pathlib import Path

from chain.cli.connection import add_node_argument, cli_errors, node_target
from chain.cli.errors import EXIT_BAD_INPUT, EXIT_ENGINE, EXIT_FAILURE, EXIT_USAGE, CliError
from chain.cli.fields import checked_endpoint, engine_class_name
from chain.cli.model import _add_store_argument, _positive, inference_exit_code, store_for
from chain.client import Client, ClientError
from chain.crypto import Keypair
from chain.keys import KeyResolutionError, load_signer
from chain.logs import configure_logging
from chain.ss58 import encode_address
from chain.text import quote_input
from chain.worker.executor import EnginePool
from chain.worker.supervisor import MAX_BATCH_JOBS
from chain.worker.follower import MarketReader
from chain.worker.journal import Journal
from chain.worker.juror import pool_rescorer
from chain.worker.worker import Worker
from chain.stop_signals import on_stop_signals
from inference.registration import CPU_CLASS
from inference.engine import EngineConfig, engine_version, gpu_offload_supported
from inference.loading import load_crash
from inference.errors import InferenceError, ModelNotFound
from inference.model_store import ModelStore, default_home
from proto import state_pb2, types_pb2
from runtime.registry import SPEC_VERSION

log = logging.getLogger("inferchain.worker")

PARENT_CHECK_S = 1.0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "worker", help="execute the jobs assigned to an account: run them, commit and reveal", description=__doc__,
    )
    add_node_argument(parser)
    parser.add_argument("--key", required=True,
                        help="the executor's key: a key file, or a dev name such as alice; its account needs an offer")
    parser.add_argument("--gpu-layers", type=int,
                        help="layers offloaded to a GPU (default: all when llama.cpp has a GPU backend, else 0)")
    parser.add_argument("--parallel", type=_positive,
                        help="jobs generated at once; more assigned jobs wait their turn here (default: on CPU "
                             "the offer's capacity, at most one per core; with a GPU 1)")
    parser.add_argument("--threads", type=_positive,
                        help="CPU threads per engine (default: the cores shared among the parallel jobs "
                             "on CPU, all cores with a GPU or with --batch-jobs)")
    parser.add_argument("--canonical-pass", action="store_true",
                        help="re-score every result on a fresh context before committing it and regenerate from "
                             "where it disagrees (default: on with a GPU, off on the CPU, where generation, "
                             "batched or not, already computes exactly what a validator does)")
    parser.add_argument("--batch-jobs", type=_positive, default=0, metavar="N",
                        help="decode up to N assigned jobs of a model together in one llama.cpp batch, each "
                             "result made canonical (re-scored on a fresh context) before it is committed; "
                             "replaces --parallel (default: off, one job per engine; docs/verification.md, "
                             "\"Device classes\", says what batching gains on CPU and GPU)")
    parser.add_argument("--allow-engine-mismatch", action="store_true",
                        help="serve a model whose thresholds were calibrated on another llama.cpp build, "
                             "with a warning (default: refuse: validators would judge this worker's results "
                             "by another engine's arithmetic)")
    parser.add_argument("--engine-class", default="cpu", type=engine_class_name, metavar="NAME",
                        help="the engine class this worker's build belongs to, a class of every offered model "
                             "(lowercase letters, digits, '-'; default: cpu, the pinned CPU build); the offer is "
                             "set to it at start")
    parser.add_argument("--data-dir", type=Path,
                        help="where salts and results wait for their reveal (default: BASE_PATH/worker)")
    _add_store_argument(parser)
    parser.add_argument("--log-level", default="info", choices=("error", "warning", "info", "debug"),
                        help="least severe log lines printed (default: info)")
    parser.add_argument("--log-format", default="plain", choices=("plain", "json"),
                        help="plain lines, or one JSON object per line (default: plain)")
    parser.add_argument("--stream-endpoint", metavar="HOST:PORT",
                        help="the node API where posters stream this executor's tokens, set in its offer; the "
                             "tokens are published to --node, so name that node as posters reach it "
                             "(default: the --node target; \"\": publish none)")
    parser.add_argument("--no-probes", action="store_true",
                        help="post no sealed probes (default: once an epoch, seal and post a probe job copied from "
                             "a recently settled one, and open it for an audit once it settles; docs/protocol.md, "
                             "\"Sealed probes\")")
    parser.add_argument("--parent-pid", type=int,
                        help="stop when the process with this id exits; a node passes its own (default: none)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Serve the key's offer until SIGINT or SIGTERM; exit 0 after a clean stop."""
    configure_logging(args.log_level, args.log_format)
    if args.batch_jobs > MAX_BATCH_JOBS:
        raise CliError(f"--batch-jobs is at most {MAX_BATCH_JOBS} (each job holds a full context of KV cache), got "
                       f"{args.batch_jobs}", EXIT_USAGE)
    if args.batch_jobs >= 2 and args.parallel is not None:
        raise CliError("--batch-jobs replaces --parallel: the batch generates every job at once", EXIT_USAGE)
    stop = stop_on_signals(args.parent_pid)
    target = node_target(args.node)
    endpoint = _stream_endpoint(args.stream_endpoint, target)
    keypair = _signer(args.key)
    address = encode_address(keypair.public_key)
    chain_id, offer, models = _read_chain(target, keypair)
    if offer is None:
        raise CliError(
            f"{address} has no offer on {chain_id}: bond and offer first (`inferchain tx bond`, `inferchain tx offer`)",
            EXIT_FAILURE,
        )
    store = store_for(args)
    _check_offered_in_store(store, offer)
    _check_engines(offer, models, args.allow_engine_mismatch, args.engine_class)
    batch_slots = args.batch_jobs if args.batch_jobs >= 2 else 0
    # Batched: one engine generates every job, with all the cores; others only re-score, one at a time.
    parallel = 1 if batch_slots else _parallel(args, offer)
    config = _engine_config(args, parallel, batch_slots)
    pool = EnginePool(store, config, {model_id: info.context_length for model_id, info in models.items()},
                      parallel=parallel, batch_slots=batch_slots)
    try:
        if config.gpu_layers:
            _check_gpu_build_loads(store, offer, config.gpu_layers)
        _load_offered(pool, offer, models)
        log.info("worker for %s on %s via %s: %d model(s), capacity %d, price %d per token",
                 address, chain_id, target, len(offer.models), offer.capacity, offer.price_per_token)
        data_dir = args.data_dir or (args.base_path or default_home()) / "worker"
        journal = Journal(data_dir / chain_id / address)
        with cli_errors():
            _announce_offer(target, keypair, offer, endpoint, args.engine_class)
            worker = Worker(target, keypair, pool.run, journal, rescore=pool_rescorer(pool),
                            stream_tokens=bool(endpoint), engine_class=args.engine_class,
                            probe=not args.no_probes)
            worker.run(stop)
    finally:
        pool.close()
    return 0


def _read_chain(target: str, keypair: Keypair) -> tuple[str, state_pb2.Offer | None, dict[str, types_pb2.ModelInfo]]:
    """The chain id, the key's offer (None without one) and the registered models by hex id. A chain whose runtime
    is newer than this build's is refused: its jobs may carry rules (a sampling option, a class rule) this worker
    would not follow, and a result computed by older rules is judged invalid and slashed."""
    with cli_errors():
        with Client(target) as client:
            info = client.chain_info()
        chain_id = info.chain_id
        if info.spec_version > SPEC_VERSION:
            raise CliError(f"{chain_id} runs runtime version {info.spec_version}, newer than this inferchain's "
                           f"{SPEC_VERSION}: its jobs may follow rules this worker does not know, and a result by "
                           "older rules would be slashed; upgrade inferchain", EXIT_FAILURE)
        reader = MarketReader(target)
        try:
            return chain_id, reader.offer(keypair.public_key), {model.id.hex(): model for model in reader.models()}
        finally:
            reader.close()


def _stream_endpoint(text: str | None, target: str) -> str:
    """--stream-endpoint checked as the chain checks an offer's endpoint; the --node target when not given."""
    if text is None:
        return checked_endpoint(target, "--stream-endpoint (the --node target)")
    return checked_endpoint(text)



def _announce_offer(target: str, keypair: Keypair, offer: state_pb2.Offer, endpoint: str, engine_class: str) -> None:
    """Set the offer's endpoint and engine class on chain when either differs (the same models, price, region and
    capacity; an endpoint alone is not held by the offer lock, a class change is); a failure is logged and the
    worker runs on."""
    offered_class = offer.engine_class or CPU_CLASS
    if offer.endpoint == endpoint and offered_class == engine_class:
        return
    if offered_class != engine_class:
        log.warning("the offer on chain names engine class %s, this worker runs %s: setting the offer's class "
                    "(draws read it from the next epoch's tables)", quote_input(offered_class), quote_input(engine_class))
    call = types_pb2.SetOffer(models=list(offer.models), price_per_token=offer.price_per_token, region=offer.region,
                              capacity=offer.capacity, endpoint=endpoint,
                              engine_class="" if engine_class == CPU_CLASS else engine_class)
    try:
        with Client(target) as client:
            submission = client.submit(keypair, call)
    except ClientError as error:
        log.warning("cannot set the offer's stream endpoint to %s and engine class to %s: %s (%s); posters may not "
                    "find this worker's token streams", quote_input(endpoint), quote_input(engine_class),
                    error.message, error.code)
        return
    log.info("offer stream endpoint %s -> %s, engine class %s -> %s: submitted SetOffer %s",
             quote_input(offer.endpoint), quote_input(endpoint), quote_input(offered_class), quote_input(engine_class),
             submission.hash.hex()[:16])


def _signer(name: str) -> Keypair:
    try:
        return load_signer(name)
    except KeyResolutionError as error:
        raise CliError(f"cannot load the executor key {quote_input(name)}: {error}", EXIT_BAD_INPUT) from None


def _gpu_layers(args: argparse.Namespace) -> int:
    """--gpu-layers, else all layers when llama.cpp has a GPU backend, else 0."""
    if args.gpu_layers is not None:
        return args.gpu_layers
    return -1 if gpu_offload_supported() else 0


def _parallel(args: argparse.Namespace, offer: state_pb2.Offer) -> int:
    """Jobs generated at once: --parallel, else 1 on a GPU, else the capacity up to one per core."""
    if args.parallel is not None:
        return args.parallel
    if _gpu_layers(args):
        return 1
    return max(1, min(offer.capacity, os.cpu_count() or 1))


def _engine_config(args: argparse.Namespace, parallel: int, batch_slots: int = 0) -> EngineConfig:
    """Threads and GPU layers, said in the log: GPU offload is automatic unless --gpu-layers is given."""
    gpu_layers = _gpu_layers(args)
    threads = args.threads
    if batch_slots:
        log.info("engine: %s, up to %d jobs of a model decoded together in one batch, %s thread(s)",
                 "GPU" if gpu_layers else "CPU", batch_slots, threads or "all")
    elif gpu_layers:
        log.info("engine: GPU, %s layers offloaded (%s), %d job(s) at once", "all" if gpu_layers < 0 else gpu_layers,
                 "--gpu-layers" if args.gpu_layers is not None else "llama.cpp has a GPU backend", parallel)
    elif threads is None:
        # Engines running at once must not ask for more threads than there are cores: llama.cpp's
        # threads spin, and oversubscribed they slowed each other ~100x on 2 cores.
        cores = os.cpu_count() or 1
        threads = max(1, cores // parallel)
        log.info("engine: CPU (%s), %d job(s) at once, %d thread(s) each on %d cores",
                 "--gpu-layers 0" if args.gpu_layers is not None else "this llama.cpp build has no GPU backend",
                 parallel, threads, cores)
    else:
        log.info("engine: CPU, %d job(s) at once, %d thread(s) each", parallel, threads)
    return EngineConfig(threads=threads, gpu_layers=gpu_layers, canonical_pass=True if args.canonical_pass else None)


def _check_offered_in_store(store: ModelStore, offer: state_pb2.Offer) -> None:
    """Refuse to start, before loading anything, when a model the offer lists is not in the store."""
    for model in offer.models:
        model_id = model.hex()
        try:
            store.resolve(model_id)
        except ModelNotFound:
            raise CliError(
                f"the offer lists model {model_id}, which is not in the model store at {store.directory}: "
                "import its GGUF file with `inferchain model add FILE` (same --base-path)",
                EXIT_BAD_INPUT,
            ) from None
        except InferenceError as error:
            raise CliError(f"cannot use model {model_id[:12]}...: {error}", inference_exit_code(error)) from None


def _check_gpu_build_loads(store, offer: state_pb2.Offer, gpu_layers: int) -> None:
    """Refuse, in one line, a GPU build that dies loading a model in a process that imported numpy first (as this
    one has): found in a child process, before this process loads it and dies without a word."""
    record = store.resolve(offer.models[0].hex())
    problem = load_crash(record.path, gpu_layers)
    if problem is not None:
        raise CliError(f"this llama.cpp build ({engine_version()}) cannot serve: {problem}; build it with the system "
                       "compiler (CC=gcc CXX=g++ CUDAHOSTCXX=g++, bench/gpu/README.md)", EXIT_ENGINE)


def _load_offered(pool: EnginePool, offer: state_pb2.Offer, models: dict[str, types_pb2.ModelInfo]) -> None:
    """Load one engine of every model the offer lists, or say which cannot be loaded and why."""
    for model in offer.models:
        model_id = model.hex()
        registered = models.get(model_id)
        try:
            engine = pool.load(model_id)
        except InferenceError as error:
            raise CliError(f"cannot load model {model_id[:12]}...: {error}", inference_exit_code(error)) from None
        log.info("loaded model %s (%s) on %s", model_id[:12], registered.name if registered else "unregistered",
                 engine.device_description())


def _check_engines(offer: state_pb2.Offer, models: dict[str, types_pb2.ModelInfo], allowed: bool,
                   engine_class: str = CPU_CLASS) -> None:
    """Refuse an offered model without this worker's engine class, and refuse (or, when allowed, warn about) one
    whose class names another engine than this one.

    On the pinned build validators recompute an executor's logits bit for bit and judge strictly;
    another build (llamafile, other SIMD widths, a GPU) drifts, and its honest results would fail
    unless the model registers that build as a class of its own, with thresholds measured on it.
    """
    for model in offer.models:
        registered = models.get(model.hex())
        if registered is None:
            continue
        engines = {CPU_CLASS: registered.engine, **{c.name: c.engine for c in registered.engine_classes}}
        if engine_class not in engines:
            raise CliError(f"model {model.hex()[:12]}... has no engine class {quote_input(engine_class)} (its "
                           f"classes: {', '.join(engines)}): this worker cannot serve it as {engine_class}",
                           EXIT_BAD_INPUT)
        expected = engines[engine_class]
        if not expected or expected == engine_version():
            continue
        message = (f"model {model.hex()[:12]}... is verified in engine class {engine_class} with thresholds "
                   f"calibrated on {expected}, this worker runs {engine_version()}: validators would judge its "
                   "results by the other engine's arithmetic")
        if not allowed:
            raise CliError(f"{message}; install the pinned build (`make install`, docs/verification.md "
                           "\"The engine\") or pass --allow-engine-mismatch", EXIT_ENGINE)
        log.warning("%s (--allow-engine-mismatch)", message)


def stop_on_signals(parent_pid: int | None) -> threading.Event:
    """An event set by SIGINT or SIGTERM, or when the parent process (`--parent-pid`) is gone."""
    stop = threading.Event()
    on_stop_signals(stop.set)
    if parent_pid is not None:
        def watch() -> None:
            while not stop.wait(PARENT_CHECK_S):
                if os.getppid() != parent_pid:
                    log.warning("the node (process %d) is gone; stopping", parent_pid)
                    stop.set()
        threading.Thread(target=watch, name="parent-watch", daemon=True).start()
    return stop
