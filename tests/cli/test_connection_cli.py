"""What `--node` says when no inferchain node answers there: each case named, exit code 3 (docs/cli.md)."""

from __future__ import annotations

import http.server
import re
import socket
import threading
from concurrent import futures

import grpc
import pytest

from chain.cli.errors import EXIT_UNREACHABLE, EXIT_USAGE
from tests.commands import inferchain, one_line_error
from tests.nodes import free_port


class _QuietHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"inferchain_best_height 7\n")

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    """A real HTTP/1.1 server on a free port, as the node's Prometheus endpoint is."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def closing_listener():
    """A TCP port that accepts connections and closes them at once."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            connection.close()

    threading.Thread(target=serve, daemon=True).start()
    yield f"127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    listener.close()


@pytest.fixture
def other_grpc_server():
    """A real gRPC server that serves no inferchain service."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(None)


def test_an_http_server_is_not_reported_as_connection_refused(http_server):
    result = inferchain("query", "chain", "--node", http_server)
    line = one_line_error(result)
    assert result.returncode == EXIT_UNREACHABLE
    assert "refused" not in line
    assert f"{http_server} answered, but not as an inferchain gRPC node" in line
    assert "Prometheus" in line and "--rpc-port" in line and "9944" in line


def test_the_nodes_own_prometheus_port_is_named_as_the_wrong_port(dev_node):
    dev_node.metrics()  # the metrics page is up
    metrics_port = re.search(r"prometheus metrics on http://[^:]+:(\d+)/metrics", dev_node.log()).group(1)
    result = inferchain("query", "account", "bob", "--node", f"127.0.0.1:{metrics_port}")
    line = one_line_error(result)
    assert result.returncode == EXIT_UNREACHABLE
    assert "not as an inferchain gRPC node" in line and "Prometheus" in line


def test_a_port_that_closes_connections_is_named_as_such(closing_listener):
    result = inferchain("query", "account", "alice", "--node", closing_listener)
    line = one_line_error(result)
    assert result.returncode == EXIT_UNREACHABLE
    assert "refused" not in line and "closed it without answering gRPC" in line


def test_a_grpc_server_without_the_inferchain_service_is_named_as_such(other_grpc_server):
    result = inferchain("query", "chain", "--node", other_grpc_server)
    line = one_line_error(result)
    assert result.returncode == EXIT_UNREACHABLE
    assert "does not serve this inferchain call" in line


def test_nothing_listening_is_connection_refused():
    target = f"127.0.0.1:{free_port()}"
    result = inferchain("query", "chain", "--node", target)
    line = one_line_error(result)
    assert result.returncode == EXIT_UNREACHABLE
    assert target in line and "connection refused" in line


@pytest.mark.parametrize("target", ["localhost", "127.0.0.1:99999", "127.0.0.1:0", ":9944", "127.0.0.1:port",
                                    "127.0.0.1:" + "9" * 10_000])
def test_a_malformed_node_address_is_a_usage_error(target):
    result = inferchain("query", "chain", "--node", target)
    line = one_line_error(result)
    assert result.returncode == EXIT_USAGE and "HOST:PORT" in line and len(line) < 200
