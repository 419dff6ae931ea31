"""`inferchain devnet`: run N validators on this machine, post a demo job, show their status until Ctrl-C.

Keys, a genesis derived from genesis.json and each node's data and log live under --base-dir
(BASE_DIR/devnet.json lists the nodes); running the command again with the same directory resumes
that devnet. Validator K serves its API on 127.0.0.(K+1):(9944+K-1) (--rpc-port moves the base;
--p2p-port and --prometheus-port likewise). From another terminal, while it runs:

  inferchain devnet status                 every validator's state and heights
  inferchain devnet stop validator2        stop one (refused when the rest could not finalize, unless --force)
  inferchain devnet start validator2       start it again: it keeps its data and catches up
  inferchain devnet restart validator2     stop it, then start it

docs/cli.md describes the layout, the addresses, the commands and what each step prints.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

from chain.cli.connection import cli_errors
from chain.cli.errors import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_NOT_INCLUDED, EXIT_OK, EXIT_USAGE, CliError
from chain.cli.infer import EXIT_VALID, verify_command
from chain.cli.job import Progress, ending_text, job_document
from chain.cli.node import default_home
from chain.cli.output import token_of
from chain.client import Client, JobTimeout, JobView
from chain.crypto import dev_keypair
from chain.devnet.control import (
    ControlError,
    ControlReply,
    ControlRequest,
    ControlServer,
    Controller,
    send,
    unknown_name_message,
)
from chain.devnet.gateway import GATEWAY_PORT, GATEWAY_POSTER, GatewayNotStarted, RunningGateway, start_gateway
from chain.devnet.launcher import DEFAULT_START_TIMEOUT_S, Devnet, LaunchOptions, RunningNode
from chain.devnet.layout import (
    DEFAULT_VALIDATORS,
    GENESIS_FILE,
    MAX_VALIDATORS,
    P2P_PORT,
    PROMETHEUS_PORT,
    RPC_PORT,
    DevnetError,
    Layout,
    LayoutError,
    PortBases,
    RecordedNode,
    check_port_bases,
    choose_addresses,
    control_socket_path,
    prepare,
    read_port_bases,
    read_record,
    resume,
    running_nodes,
)
from chain.devnet.status import SUMMARY_S, StatusReader, status_display, status_document, table_lines
from chain.ss58 import encode_address
from inference.registration import EMBEDDED_MODEL_ID
from proto import state_pb2

DEMO_PROMPT = "Name three colours of the rainbow."
DEMO_POSTER = "alice"
DEMO_MAX_TOKENS = 64
# From inclusion: the worker may still be loading the model when the job arrives.
DEMO_TIMEOUT_S = 300.0
DEMO_FILE = "demo-job.json"
# The exit code of each outcome a running devnet answers a command with (chain/devnet/control.py).
OUTCOME_EXIT_CODES = {"ok": EXIT_OK, "unknown": EXIT_BAD_INPUT, "refused": EXIT_FAILURE, "failed": EXIT_FAILURE}
FOOTER = "Ctrl-C stops every node; `inferchain devnet stop|start|restart NAME` in another terminal controls one"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "devnet", help="run a local network of validators, post a demo job, show their status until Ctrl-C",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--validators", type=int, metavar="N",
                        help=f"validators, 1 to {MAX_VALIDATORS} (default: {DEFAULT_VALIDATORS} for a new devnet, "
                             "the devnet's own count when resuming)")
    parser.add_argument("--base-dir", type=Path, metavar="DIR",
                        help="where keys, genesis, data and logs live; an existing devnet there is resumed "
                             "(default: $INFERCHAIN_HOME/devnet or ~/.inferchain/devnet)")
    parser.add_argument("--no-demo", action="store_true", help="do not post the demo job (default: posted and verified)")
    parser.add_argument("--prompt", default=DEMO_PROMPT, help=f"the demo job's prompt (default: {DEMO_PROMPT!r})")
    parser.add_argument("--no-worker", action="store_true",
                        help="run the nodes without executor workers (no model loaded; implies --no-demo)")
    parser.add_argument("--no-gateway", action="store_true",
                        help="do not start the OpenAI-compatible gateway and explorer on the first validator "
                             "(default: started, its URL and API key printed)")
    parser.add_argument("--gateway-port", type=int, default=GATEWAY_PORT, metavar="PORT",
                        help=f"the gateway's HTTP port on 127.0.0.1 (default: {GATEWAY_PORT})")
    parser.add_argument("--start-timeout", type=float, default=DEFAULT_START_TIMEOUT_S, metavar="SECONDS",
                        help="give up when a validator is not finalizing after this long, exit 1 "
                             f"(default: {DEFAULT_START_TIMEOUT_S:g})")
    parser.add_argument("--refresh", type=float, default=1.0, metavar="SECONDS",
                        help="status table refresh interval (default: 1)")
    parser.add_argument("--summary", type=float, default=SUMMARY_S, metavar="SECONDS",
                        help="when stdout is not a terminal, print the height progress this often; state changes "
                             f"are printed as they happen (default: {SUMMARY_S:g})")
    for option, default, what in (("--rpc-port", RPC_PORT, "gRPC API"), ("--p2p-port", P2P_PORT, "p2p"),
                                  ("--prometheus-port", PROMETHEUS_PORT, "metrics")):
        parser.add_argument(option, type=int, metavar="BASE",
                            help=f"validator K's {what} port is BASE+K-1 (default: the devnet's own when resuming, "
                                 f"else {default})")
    parser.set_defaults(handler=run)
    actions = parser.add_subparsers(dest="devnet_command", metavar="COMMAND",
                                    title="commands to a devnet running in another terminal")
    _control_parser(actions, "status", "show every validator's state and heights")
    for command, text in (("stop", "stop one validator; it keeps its data"),
                          ("start", "start a stopped validator again; it catches up from the others"),
                          ("restart", "stop one validator, then start it again")):
        action = _control_parser(actions, command, text)
        action.add_argument("name", metavar="NAME", help="the validator, e.g. validator2 (`devnet status` lists them)")
        if command == "stop":
            action.add_argument("--force", action="store_true",
                                help="stop it even when the validators left could not finalize")


def _control_parser(actions, command: str, text: str) -> argparse.ArgumentParser:
    action = actions.add_parser(command, help=text, description=f"{text[0].upper()}{text[1:]}: a command to the devnet "
                                                                  "that `inferchain devnet` runs in another terminal.")
    # SUPPRESS: a --base-dir given before the command word is not overwritten by this one's default.
    action.add_argument("--base-dir", type=Path, metavar="DIR", default=argparse.SUPPRESS,
                        help="the devnet's directory (default: $INFERCHAIN_HOME/devnet or ~/.inferchain/devnet)")
    if command == "status":
        action.add_argument("--output", choices=("text", "json"), default="text",
                            help="text (a table) or json (default: text)")
    action.set_defaults(handler=control)
    return action


def run(args: argparse.Namespace) -> int:
    """Start (or resume) the devnet, wait until it finalizes, run the demo, show status until Ctrl-C; exit 0."""
    if args.validators is not None and not 1 <= args.validators <= MAX_VALIDATORS:
        raise CliError(f"--validators must be between 1 and {MAX_VALIDATORS}, got {args.validators}", EXIT_USAGE)
    if args.start_timeout <= 0 or args.refresh <= 0 or args.summary <= 0:
        raise CliError("--start-timeout, --refresh and --summary must be positive", EXIT_USAGE)
    if not (_base_dir(args) / GENESIS_FILE).exists():
        # A new devnet: bases that cannot hold it are refused before anything is written.
        _check_bases(_port_bases(args, None), args.validators or DEFAULT_VALIDATORS)
    layout = _layout(args)
    recorded = read_record(layout)
    _refuse_running(layout, recorded)
    addresses = _addresses(layout, _port_bases(args, layout))
    devnet = Devnet(layout, addresses, LaunchOptions(worker=not args.no_worker))
    server = ControlServer(control_socket_path(layout.base_dir))
    try:
        server.open()
    except DevnetError as error:
        raise CliError(str(error)) from None
    _stop_on_termination()
    try:
        return _run(args, layout, devnet, server)
    finally:
        server.close()
        _stop(devnet)


def _port_bases(args: argparse.Namespace, layout: Layout | None) -> PortBases:
    """The options' bases, else those devnet.json recorded (a resumed devnet keeps its ports), else the defaults."""
    recorded = (read_port_bases(layout) if layout is not None else None) or PortBases()
    return PortBases(
        p2p=recorded.p2p if args.p2p_port is None else args.p2p_port,
        rpc=recorded.rpc if args.rpc_port is None else args.rpc_port,
        prometheus=recorded.prometheus if args.prometheus_port is None else args.prometheus_port,
    )


def _check_bases(bases: PortBases, count: int) -> None:
    try:
        check_port_bases(bases, count)
    except DevnetError as error:
        raise CliError(str(error), EXIT_USAGE) from None


def _addresses(layout: Layout, bases: PortBases):
    """Every node's addresses; exit 2 for bases that cannot hold the devnet, 1 for a port in use."""
    _check_bases(bases, len(layout.validators))
    try:
        return choose_addresses(layout, bases)
    except DevnetError as error:
        raise CliError(str(error)) from None


def _base_dir(args: argparse.Namespace) -> Path:
    return getattr(args, "base_dir", None) or default_home() / "devnet"


def _layout(args: argparse.Namespace) -> Layout:
    base_dir = _base_dir(args)
    try:
        return prepare(base_dir, args.validators)
    except LayoutError as error:
        raise CliError(str(error), EXIT_BAD_INPUT) from None
    except DevnetError as error:
        raise CliError(str(error)) from None


def _refuse_running(layout: Layout, recorded: list[RecordedNode]) -> None:
    """Refuse to start a devnet whose nodes, as devnet.json records them, still run."""
    running = running_nodes(layout, recorded)
    if running:
        raise CliError(
            f"a devnet is already running from {layout.base_dir} ({running[0].name} is pid {running[0].pid}); "
            "stop it (Ctrl-C in its terminal) or choose another --base-dir"
        )


def _run(args: argparse.Namespace, layout: Layout, devnet: Devnet, server: ControlServer) -> int:
    count = len(layout.validators)
    first = devnet.addresses[layout.validators[0].name]
    _progress(f"devnet {layout.chain_id}: {count} validator{'s' if count != 1 else ''} in {layout.base_dir} "
              f"(genesis {layout.genesis_hash.hex()[:16]}…); validator K listens on 127.0.0.(K+1), API port "
              f"{first.rpc.port}+K-1, p2p {first.p2p.port}+K-1, metrics {first.prometheus.port}+K-1")
    try:
        devnet.start()
        for node in devnet.nodes:
            _progress(f"started {node.name} (pid {node.pid}): rpc {node.addresses.rpc}, p2p {node.addresses.p2p}, "
                      f"metrics http://{node.addresses.prometheus}/metrics, log {node.validator.log_path}")
        devnet.wait_finalizing(args.start_timeout, _progress)
    except DevnetError as error:
        raise CliError(str(error), EXIT_FAILURE) from None
    first = devnet.nodes[0]
    _progress(f"every validator is finalizing; nodes in {layout.record_path}; "
              f"try `inferchain query chain --node {first.addresses.rpc}`")
    if args.no_worker and not args.no_demo:
        _progress("no demo job: with --no-worker no validator executes jobs")
    elif not args.no_demo:
        demo(layout, first, args.prompt)
    try:
        gateway = None if args.no_gateway else _start_gateway(layout, first, args.gateway_port)
    except KeyboardInterrupt:  # Ctrl-C while the gateway starts: stop as watch() does on Ctrl-C
        return EXIT_OK
    try:
        return watch(devnet, server, args.refresh, args.summary)
    finally:
        if gateway is not None:
            gateway.stop()


def _start_gateway(layout: Layout, node: RunningNode, port: int) -> RunningGateway | None:
    """Start the gateway on the first validator and print where to reach it; None (said in one line) when it
    cannot start: the devnet runs on without it."""
    try:
        gateway = start_gateway(layout, str(node.addresses.rpc), port)
    except (GatewayNotStarted, OSError) as error:
        _progress(f"gateway not started on port {port} (--gateway-port, --no-gateway): {error}")
        return None
    _progress(f"gateway: OpenAI-compatible API {gateway.base_url}, API key {gateway.api_key} (jobs signed by "
              f"{GATEWAY_POSTER}), explorer {gateway.explorer}")
    return gateway


# --- the demo job -------------------------------------------------------------------------


def demo(layout: Layout, node: RunningNode, prompt: str) -> None:
    """Post a job to `node`, follow it to its result, verify the result locally and print it."""
    _progress(f"demo: {DEMO_POSTER} posts {prompt!r} to {node.name} ({node.addresses.rpc})")
    with cli_errors(), Client(str(node.addresses.rpc), timeout=30) as client:
        token = token_of(client.chain_info())
        try:
            view = client.post_job(dev_keypair(DEMO_POSTER), prompt, model=bytes.fromhex(EMBEDDED_MODEL_ID),
                                   max_tokens=DEMO_MAX_TOKENS, timeout=DEMO_TIMEOUT_S,
                                   on_update=Progress(token).update)
        except JobTimeout as late:
            raise CliError(f"demo: {late.message}", EXIT_NOT_INCLUDED) from None
    if not view.settled:
        raise CliError(f"demo: job {view.id.hex()} {ending_text(view.job, token)}", EXIT_FAILURE)
    path = layout.base_dir / DEMO_FILE
    path.write_text(json.dumps(job_document(view), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    command = ["verify", str(path), "--node", str(node.addresses.rpc), "--light", str(layout.genesis_path)]
    _progress(f"demo: verifying the result locally, as `inferchain {' '.join(command)}` does")
    # Read by the CLI's own parser, so the demo's options are the command's, whatever it gains.
    from chain.cli import build_parser
    verdict = verify_command(build_parser().parse_args(command))
    if verdict != EXIT_VALID:
        raise CliError(f"demo: the result of job {view.id.hex()} is INVALID (saved in {path})", EXIT_FAILURE)
    print(f"\nthe demo job's verified answer ({len(view.result.tokens)} tokens by {_executor_name(layout, view)}; "
          f"job {view.id.hex()}):\n{view.result.text.strip()}\n", flush=True)


def _executor_name(layout: Layout, view: JobView) -> str:
    """'validator3 (5F…)': the validator whose executor revealed the job's result."""
    account = next(slot.executor for slot in view.job.assignments if slot.status == state_pb2.ASSIGNMENT_STATUS_REVEALED)
    names = {validator.account: validator.name for validator in layout.validators}
    return f"{names.get(account, 'an executor')} ({encode_address(account)})"


# --- the status table ------------------------------------------------------------------


def watch(devnet: Devnet, server: ControlServer, refresh: float, summary: float = SUMMARY_S) -> int:
    """Show the status every `refresh` seconds and carry out commands from other terminals until Ctrl-C; exit 0."""
    reader = StatusReader(devnet)
    display = status_display(sys.stdout, FOOTER, summary)
    controller = Controller(devnet, server, report=lambda line: _progress(f"{time.strftime('%H:%M:%S')} {line}"))
    try:
        while True:
            started = time.monotonic()
            statuses = reader.read()
            controller.step(statuses)
            server.statuses = tuple(statuses)
            display.show(statuses)
            server.wake.clear()
            # A queued command is begun at once, unless one is in progress: that one advances each refresh.
            if controller.operation is not None or server.calls.empty():
                server.wake.wait(max(0.0, refresh - (time.monotonic() - started)))
    except KeyboardInterrupt:
        return 0
    finally:
        controller.abort("the devnet is stopping (Ctrl-C in its terminal)")
        display.close()
        reader.close()


# --- commands to a running devnet -------------------------------------------------------------


def control(args: argparse.Namespace) -> int:
    """`inferchain devnet status|stop|start|restart`: send the command to the running devnet, print its answer."""
    layout = _existing_layout(_base_dir(args))
    name = getattr(args, "name", "")
    command = args.devnet_command
    if command != "status" and name not in {validator.name for validator in layout.validators}:
        raise CliError(unknown_name_message(name, layout), EXIT_BAD_INPUT)
    request = ControlRequest(command, name, getattr(args, "force", False))
    try:
        reply = send(control_socket_path(layout.base_dir), request)
    except ControlError as error:
        raise CliError(_not_answering(layout, error)) from None
    return _print_reply(args, reply)


def _existing_layout(base_dir: Path) -> Layout:
    base_dir = Path(base_dir).expanduser().absolute()
    if not (base_dir / GENESIS_FILE).is_file():
        raise CliError(f"{base_dir} holds no devnet ({GENESIS_FILE} is missing); start one with "
                       f"`inferchain devnet --base-dir {base_dir}`", EXIT_BAD_INPUT)
    try:
        return resume(base_dir)
    except DevnetError as error:
        raise CliError(str(error), EXIT_BAD_INPUT) from None


def _not_answering(layout: Layout, error: ControlError) -> str:
    running = running_nodes(layout, read_record(layout))
    if running:
        return (f"the devnet in {layout.base_dir} has running nodes ({running[0].name} is pid {running[0].pid}) but "
                f"its `inferchain devnet` does not take commands ({error})")
    return (f"no devnet is running from {layout.base_dir} ({error}); start it with "
            f"`inferchain devnet --base-dir {layout.base_dir}`")


def _print_reply(args: argparse.Namespace, reply: ControlReply) -> int:
    code = OUTCOME_EXIT_CODES[reply.outcome]
    if code != EXIT_OK:
        raise CliError(reply.message, code)
    if args.devnet_command != "status":
        print(reply.message, flush=True)
    elif args.output == "json":
        print(json.dumps({"summary": reply.message, "nodes": [status_document(node) for node in reply.nodes]},
                         indent=2), flush=True)
    else:
        print("\n".join(table_lines(reply.nodes)), flush=True)
    return EXIT_OK


# --- stopping -----------------------------------------------------------------------------


def _stop(devnet: Devnet) -> None:
    running = [node for node in devnet.nodes if node.exit_code() is None]
    if running:
        _progress(f"stopping {len(running)} node{'s' if len(running) != 1 else ''} ...")
    codes = devnet.stop()
    if running:
        _progress("stopped: " + ", ".join(f"{name} (exit {code})" for name, code in codes.items()))


def _stop_on_termination() -> None:
    """SIGTERM, and SIGHUP unless ignored (nohup), stop the devnet as Ctrl-C does."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if signal.getsignal(signal.SIGHUP) != signal.SIG_IGN:
        signal.signal(signal.SIGHUP, signal.default_int_handler)


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
