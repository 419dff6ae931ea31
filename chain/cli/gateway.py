"""`inferchain gateway`: serve the chain over OpenAI's HTTP API (and the explorer), signing with poster keys.

    inferchain gateway --node 127.0.0.1:9944 --key ./poster.json --listen 127.0.0.1:8080

prints the base URL (http://127.0.0.1:8080/v1) and an API key that maps to the first --key, then serves
until SIGINT or SIGTERM (exit 0). The API-key file (--api-keys, mode 0600) is created when absent and
keeps the keys across restarts; a --key it does not map yet gets a new API key. docs/gateway.md.
"""

from __future__ import annotations

import argparse
import socket
import sys

from chain.cli.connection import add_node_argument, node_target
from chain.cli.errors import EXIT_BAD_INPUT, EXIT_USAGE, CliError
from chain.logs import configure_logging
from chain.text import quote_input

DEFAULT_LISTEN = "127.0.0.1:8080"
DEFAULT_API_KEYS = "gateway-api-keys.json"


def register(subparsers) -> None:
    """Add `gateway`."""
    parser = subparsers.add_parser(
        "gateway", help="serve an OpenAI-compatible HTTP API (and the explorer) over the chain's jobs",
        description="Serve OpenAI's /v1/models, /v1/chat/completions and /v1/completions: each request becomes a "
                    "PostJob signed with the poster key its API key maps to, and is answered with the settled "
                    "result (docs/gateway.md). Prints the base URL and an API key, then serves until SIGINT or "
                    "SIGTERM.",
    )
    add_node_argument(parser)
    parser.add_argument("--key", action="append", required=True, metavar="FILE",
                        help="a poster key the gateway signs jobs with: a key file from `inferchain keys generate` "
                             "or a dev account name; repeat for several (each gets its own API key)")
    parser.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT",
                        help=f"where the HTTP server listens; port 0 picks a free one (default: {DEFAULT_LISTEN})")
    parser.add_argument("--api-keys", default=DEFAULT_API_KEYS, metavar="FILE",
                        help="the API-key file mapping API keys to the poster keys, created with mode 0600 when "
                             f"absent (default: ./{DEFAULT_API_KEYS})")
    parser.add_argument("--log-level", default="info", choices=("error", "warning", "info", "debug"),
                        help="least severe log lines written to stderr (default: info); no API key, poster key or "
                             "prompt is ever logged")
    parser.set_defaults(handler=gateway_command)


def gateway_command(args: argparse.Namespace) -> int:
    """Open the key file, bind the socket, print where to connect, serve until a signal."""
    from chain.gateway.keys import ApiKeyFileError, open_api_keys

    target = node_target(args.node)
    host, port = listen_address(args.listen)
    try:
        api_keys, shown = open_api_keys(args.api_keys, args.key)
    except ApiKeyFileError as error:
        raise CliError(str(error), EXIT_BAD_INPUT) from None
    listener = bind(host, port)
    configure_logging(args.log_level)
    bound_host, bound_port = listener.getsockname()[:2]
    shown_host = f"[{bound_host}]" if ":" in bound_host else bound_host
    print(f"OpenAI-compatible API: http://{shown_host}:{bound_port}/v1", flush=True)
    print(f"API key: {shown}", flush=True)
    print(f"explorer: http://{shown_host}:{bound_port}/explorer", flush=True)
    serve(target, api_keys, listener, args.log_level)
    return 0


def listen_address(text: str) -> tuple[str, int]:
    """--listen as (host, port); a readable CliError otherwise."""
    host, _, port = text.strip().rpartition(":")
    host = host.strip("[]")
    if not host or not (port.isascii() and port.isdigit() and len(port) <= 5 and int(port) <= 65535):
        raise CliError(f"--listen must be HOST:PORT with a port from 0 to 65535, got {quote_input(text)}", EXIT_USAGE)
    return host, int(port)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, bound here so that a taken port is one line, not uvicorn's exit."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(512)
    except OSError as error:
        raise CliError(f"cannot listen on {host}:{port}: {error.strerror or error}", EXIT_USAGE) from None
    listener.set_inheritable(True)
    return listener


def serve(target: str, api_keys, listener: socket.socket, log_level: str) -> None:
    """Run uvicorn on `listener` until SIGINT or SIGTERM, then return (exit 0, not the signal re-raised)."""
    import uvicorn

    from chain.gateway.app import create_app
    from chain.gateway.server import uvicorn_config

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            # uvicorn would record the signal and raise it again after its shutdown (exit 130 or -15):
            # a stop asked for is a clean exit here, as for `inferchain node`.
            if self.should_exit:
                self.force_exit = True
            self.should_exit = True

    Server(uvicorn_config(create_app(target, api_keys), log_level)).run(sockets=[listener])
    sys.stdout.flush()
