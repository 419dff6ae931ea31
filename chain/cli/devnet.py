"""`inferchain devnet`: run N validators on this machine, post a demo job, show their status until Ctrl-C.

Keys, a genesis derived from genesis.json and each node's data and log live under --base-dir
(BASE_DIR/devnet.json lists the nodes); running the command again with the same directory resumes
that devnet. docs/cli.md describes the layout, the addresses and what each step prints.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

from chain.cli.connection import cli_errors
from chain.cli.errors import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_NOT_INCLUDED, EXIT_USAGE, CliError
from chain.cli.infer import EXIT_VALID, verify_command
from chain.cli.job import Progress, ending_text, job_document
from chain.cli.node import default_home
from chain.cli.output import token_of
from chain.client import Client, JobTimeout, JobView
from chain.crypto import dev_keypair
from chain.devnet.launcher import DEFAULT_START_TIMEOUT_S, Devnet, LaunchOptions, RunningNode
from chain.devnet.layout import (
    DEFAULT_VALIDATORS,
    MAX_VALIDATORS,
    DevnetError,
    Layout,
    LayoutError,
    RecordedNode,
    choose_addresses,
    prepare,
    read_record,
    running_nodes,
)
from chain.devnet.status import StatusDisplay, StatusReader
from chain.ss58 import encode_address
from inference.registration import EMBEDDED_MODEL_ID
from proto import state_pb2

DEMO_PROMPT = "Name three colours of the rainbow."
DEMO_POSTER = "alice"
DEMO_MAX_TOKENS = 64
# From inclusion: the worker may still be loading the model when the job arrives.
DEMO_TIMEOUT_S = 300.0
DEMO_FILE = "demo-job.json"


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
    parser.add_argument("--start-timeout", type=float, default=DEFAULT_START_TIMEOUT_S, metavar="SECONDS",
                        help="give up when a validator is not finalizing after this long, exit 1 "
                             f"(default: {DEFAULT_START_TIMEOUT_S:g})")
    parser.add_argument("--refresh", type=float, default=1.0, metavar="SECONDS",
                        help="status table refresh interval (default: 1)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Start (or resume) the devnet, wait until it finalizes, run the demo, show status until Ctrl-C; exit 0."""
    if args.validators is not None and not 1 <= args.validators <= MAX_VALIDATORS:
        raise CliError(f"--validators must be between 1 and {MAX_VALIDATORS}, got {args.validators}", EXIT_USAGE)
    if args.start_timeout <= 0 or args.refresh <= 0:
        raise CliError("--start-timeout and --refresh must be positive", EXIT_USAGE)
    layout = _layout(args)
    recorded = read_record(layout)
    _refuse_running(layout, recorded)
    # The addresses the nodes had last time, so a resumed devnet keeps them where they are still free.
    preferred = {node.name: node.addresses for node in recorded if node.addresses is not None}
    devnet = Devnet(layout, choose_addresses(layout, preferred), LaunchOptions(worker=not args.no_worker))
    _stop_on_termination()
    try:
        return _run(args, layout, devnet)
    finally:
        _stop(devnet)


def _layout(args: argparse.Namespace) -> Layout:
    base_dir = args.base_dir or default_home() / "devnet"
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


def _run(args: argparse.Namespace, layout: Layout, devnet: Devnet) -> int:
    count = len(layout.validators)
    _progress(f"devnet {layout.chain_id}: {count} validator{'s' if count != 1 else ''} in {layout.base_dir} "
              f"(genesis {layout.genesis_hash.hex()[:16]}…)")
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
    return watch(devnet, args.refresh)


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
    _progress(f"demo: verifying the result locally, as `inferchain verify {path} --node {node.addresses.rpc}` does")
    verdict = verify_command(argparse.Namespace(result=str(path), node=str(node.addresses.rpc), thresholds=None,
                                                threads=None, context=4096, batch=512,
                                                gpu_layers=None, base_path=None, output="text"))
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


def watch(devnet: Devnet, refresh: float) -> int:
    """Show the status every `refresh` seconds until Ctrl-C; exit 0."""
    reader = StatusReader(devnet.nodes)
    display = StatusDisplay(sys.stdout, footer="Ctrl-C stops every node")
    try:
        while True:
            started = time.monotonic()
            display.show(reader.read())
            time.sleep(max(0.0, refresh - (time.monotonic() - started)))
    except KeyboardInterrupt:
        return 0
    finally:
        reader.close()


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
