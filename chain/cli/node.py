"""`inferchain node`: run a validator node (`--dev` for a single-validator development chain)."""

from __future__ import annotations

import argparse
import logging
import math
import os
import shutil
import tempfile
from pathlib import Path

from chain.cli.errors import EXIT_BAD_INPUT, EXIT_USAGE, CliError
from chain.cli.fields import checked_endpoint, engine_class_name
from chain.crypto import dev_keypair
from chain.genesis import GenesisError, load_genesis, parse_genesis, dev_genesis_document
from chain.p2p.wire import parse_addr, parse_dial_addr
from chain.logs import configure_logging
from chain.node.streams import StreamLimits
from chain.worker.supervisor import MAX_BATCH_JOBS
from chain.text import quote_input
from chain.stop_signals import on_stop_signals

log = logging.getLogger("inferchain.node")

CLOCK_OFFSET_VARIABLE = "INFERCHAIN_CLOCK_OFFSET_S"


def default_home() -> Path:
    """$INFERCHAIN_HOME, else ~/.inferchain."""
    return Path(os.environ.get("INFERCHAIN_HOME", Path.home() / ".inferchain"))


def register(subparsers) -> None:
    parser = subparsers.add_parser("node", help="run a validator node", description=__doc__)
    parser.add_argument("--dev", action="store_true", help="development chain: dev genesis, Alice validating (default: off)")
    parser.add_argument("--tmp", action="store_true",
                        help="keep the chain in a temporary directory, removed at exit (default: off)")
    parser.add_argument("--chain", metavar="GENESIS.json", help="genesis file (default: the dev genesis with --dev)")
    parser.add_argument("--base-path", type=Path, help="data directory (default: $INFERCHAIN_HOME or ~/.inferchain)")
    parser.add_argument("--key", help="validator key: a dev name (alice) or a key file (default: alice with --dev)")
    parser.add_argument("--port", type=int, default=30333,
                        help="peer-to-peer port on 127.0.0.1, when --listen-addr is not given (default: 30333)")
    parser.add_argument("--listen-addr", metavar="HOST:PORT",
                        help="peer-to-peer address to listen on; port 0 picks a free one (default: 127.0.0.1:--port)")
    parser.add_argument("--public-addr", metavar="HOST:PORT",
                        help="peer-to-peer address other nodes dial, if not the listen address (default: the listen "
                             "address, unless its port is 0)")
    parser.add_argument("--rpc-port", type=int, default=9944,
                        help="gRPC API port: what clients and `--node` connect to (default: 9944)")
    parser.add_argument("--rpc-external", action="store_true",
                        help="serve the API on all interfaces (default: 127.0.0.1 only)")
    parser.add_argument("--rpc-addr", metavar="HOST:PORT",
                        help="address of the gRPC API; overrides --rpc-port and --rpc-external (default: 127.0.0.1:9944)")
    parser.add_argument("--prometheus-addr", metavar="HOST:PORT",
                        help="address of the Prometheus metrics; overrides --prometheus-port (default: 127.0.0.1:9615)")
    parser.add_argument("--prometheus-port", type=int, default=9615, help="Prometheus metrics port, HTTP, not the API; 0 picks a free one (default: 9615)")
    parser.add_argument("--no-prometheus", action="store_true", help="do not serve metrics (default: served)")
    parser.add_argument("--bootnodes", nargs="*", default=[], metavar="HOST:PORT",
                        help="peer-to-peer addresses of nodes to connect to first (default: none)")
    parser.add_argument("--no-worker", action="store_true",
                        help="do not execute jobs here even if the validator key has an offer; serve them with "
                             "`inferchain worker` elsewhere (default: a worker runs while the key has an offer)")
    parser.add_argument("--worker-threads", type=int, metavar="N",
                        help="the worker's llama.cpp threads per job (default: the worker's own default)")
    parser.add_argument("--worker-parallel", type=int, metavar="N",
                        help="jobs the worker generates at once (default: the worker's own default)")
    parser.add_argument("--worker-engine-class", type=engine_class_name, metavar="NAME",
                        help="the worker's engine class, a class of every offered model (default: the worker's "
                             "own default, cpu)")
    parser.add_argument("--worker-batch-jobs", type=int, metavar="N",
                        help="jobs of a model the worker decodes together in one batch (default: off)")
    parser.add_argument("--worker-no-probes", action="store_true",
                        help="the worker posts no sealed probes (default: one an epoch; docs/protocol.md, "
                             "\"Sealed probes\")")
    parser.add_argument("--rpc-max-streams-per-client", type=int, metavar="N", default=StreamLimits().per_client,
                        help="open API streams (block subscriptions, job watches, token streams) one client address "
                             "may hold, 1 to the node's shared places (a gateway host serving many streaming "
                             f"clients raises it; default: {StreamLimits().per_client})")
    parser.add_argument("--stream-endpoint", metavar="HOST:PORT",
                        help="where posters reach this node's API for the worker's token streams, set in the "
                             "validator's offer (use the public address with --rpc-external; \"\" for none; "
                             "default: the API address the worker uses)")
    parser.add_argument("--log-level", default="info", choices=("error", "warning", "info", "debug"),
                        help="least severe log lines printed (default: info)")
    parser.add_argument("--log-format", default="plain", choices=("plain", "json"),
                        help="plain lines, or one JSON object per line (default: plain)")
    parser.set_defaults(handler=run)


def _genesis(args):
    try:
        if args.chain:
            return load_genesis(args.chain)
        if args.dev:
            return parse_genesis(dev_genesis_document())
    except GenesisError as error:
        raise CliError(f"invalid genesis: {error}", EXIT_BAD_INPUT) from None
    raise CliError("name a genesis file with --chain, or run a development chain with --dev", EXIT_USAGE)


def _validator_key(args):
    name = args.key or ("alice" if args.dev else None)
    if name is None:
        raise CliError("name the validator key with --key (a dev name such as alice, or a key file)", EXIT_USAGE)
    try:
        from chain.keys import load_signer
    except ImportError:
        load_signer = None
    try:
        if load_signer is not None:
            return load_signer(name)
        return dev_keypair(name)
    except (ValueError, OSError) as error:
        raise CliError(f"cannot load the validator key {quote_input(name)}: {error}", EXIT_BAD_INPUT) from None


def _validator_key_file(args) -> Path | None:
    """The validator's key file (its sign state is kept beside it), or None for a development key."""
    from chain.keys import is_dev_name, key_file_path

    name = args.key or "alice"
    return None if is_dev_name(name) else key_file_path(name).resolve()


def _clock_offset_s() -> float:
    """INFERCHAIN_CLOCK_OFFSET_S: seconds added to this node's wall clock, to test a skewed clock (docs/operator.md)."""
    text = os.environ.get(CLOCK_OFFSET_VARIABLE, "").strip()
    if not text:
        return 0.0
    try:
        offset = float(text)
    except ValueError:
        offset = math.nan
    if not math.isfinite(offset) or abs(offset) > 10 * 365 * 86400:
        raise CliError(f"{CLOCK_OFFSET_VARIABLE} must be a number of seconds, got {quote_input(text)}", EXIT_USAGE)
    return offset


def _worker_key(args) -> str:
    """The validator key as the worker process is told it: a dev name, or the key file's absolute path."""
    name = args.key or "alice"
    path = Path(name)
    return str(path.resolve()) if path.exists() else name


def _check_port(value: int, option: str) -> None:
    if not 0 <= value <= 65535:
        raise CliError(f"{option} must be a port number between 0 and 65535, got {value}", EXIT_USAGE)


def _address(value: str | None, option: str, default_host: str, default_port: int, dialed: bool = False) -> tuple[str, int]:
    """HOST:PORT from an option (the peer-to-peer layer's own parser), or the default; a CliError naming the option."""
    if value is None:
        return default_host, default_port
    try:
        host, port = (parse_dial_addr if dialed else parse_addr)(value)
    except ValueError as error:
        raise CliError(f"{option} must be HOST:PORT: {error}", EXIT_USAGE) from None
    return host.strip("[]"), port


def _check_base_path(path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise CliError(f"the data directory {quote_input(str(path))} is a file, not a directory (--base-path)", EXIT_BAD_INPUT)


def run(args: argparse.Namespace) -> int:
    """Run until SIGINT or SIGTERM; exit 0 after a clean stop."""
    from chain.node.runner import Node, NodeConfig, NodeStartError
    from chain.worker.supervisor import WorkerLaunch

    configure_logging(args.log_level, args.log_format)
    for value, option in ((args.rpc_port, "--rpc-port"), (args.prometheus_port, "--prometheus-port"), (args.port, "--port")):
        _check_port(value, option)
    rpc_host, rpc_port = _address(args.rpc_addr, "--rpc-addr", "0.0.0.0" if args.rpc_external else "127.0.0.1",
                                  args.rpc_port)
    prometheus_host, prometheus_port = _address(args.prometheus_addr, "--prometheus-addr", "127.0.0.1",
                                                args.prometheus_port)
    listen_host, listen_port = _address(args.listen_addr, "--listen-addr", "127.0.0.1", args.port)
    if args.public_addr is not None:
        _address(args.public_addr, "--public-addr", "", 0, dialed=True)
    for bootnode in args.bootnodes:
        _address(bootnode, "--bootnodes", "", 0, dialed=True)
    for value, option, most in ((args.worker_threads, "--worker-threads", 256),
                                (args.worker_parallel, "--worker-parallel", 256),
                                (args.worker_batch_jobs, "--worker-batch-jobs", MAX_BATCH_JOBS)):
        if value is not None and not 1 <= value <= most:
            raise CliError(f"{option} must be between 1 and {most}, got {value}", EXIT_USAGE)
    if args.stream_endpoint:
        checked_endpoint(args.stream_endpoint)
    shared = StreamLimits().per_node - StreamLimits().kept_for_newcomers
    if not 1 <= args.rpc_max_streams_per_client <= shared:
        raise CliError(f"--rpc-max-streams-per-client must be between 1 and {shared} (the node's {StreamLimits().per_node} "
                       f"stream places less the {StreamLimits().kept_for_newcomers} kept for new addresses), got "
                       f"{args.rpc_max_streams_per_client}", EXIT_USAGE)
    genesis = _genesis(args)
    validator = _validator_key(args)
    temporary = Path(tempfile.mkdtemp(prefix="inferchain-")) if args.tmp else None
    base_path = temporary or args.base_path or default_home()
    _check_base_path(base_path)
    config = NodeConfig(
        genesis=genesis,
        base_path=base_path,
        validator=validator,
        key_file=_validator_key_file(args),
        clock_offset_s=_clock_offset_s(),
        rpc_host=rpc_host,
        rpc_port=rpc_port,
        prometheus_host=prometheus_host,
        prometheus_port=None if args.no_prometheus else prometheus_port,
        listen_host=listen_host,
        listen_port=listen_port,
        public_addr=args.public_addr,
        bootnodes=tuple(args.bootnodes),
        worker=None if args.no_worker else WorkerLaunch(
            _worker_key(args), args.log_level, args.log_format, threads=args.worker_threads,
            parallel=args.worker_parallel, stream_endpoint=args.stream_endpoint,
            engine_class=args.worker_engine_class, batch_jobs=args.worker_batch_jobs,
            no_probes=args.worker_no_probes,
        ),
        rpc_streams_per_client=args.rpc_max_streams_per_client,
    )
    try:
        try:
            node = Node(config)
        except NodeStartError as error:
            raise CliError(str(error)) from None
        on_stop_signals(node.request_stop)
        try:
            node.start()
        except NodeStartError as error:
            raise CliError(str(error)) from None
        node.wait()
        node.stop()
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
    return 0
