"""Prometheus metrics in the text exposition format, served on their own port."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable


def render_metrics(core) -> str:
    """The node's counters and gauges as Prometheus text."""
    head = core.head
    stats = core.stats
    lines = [
        ("inferchain_block_height", "gauge", "Height of the best block.", head.height),
        ("inferchain_finalized_height", "gauge", "Height of the latest finalized block.", head.height),
        ("inferchain_mempool_transactions", "gauge", "Transactions waiting in the pool.", len(core.pool)),
        ("inferchain_mempool_bytes", "gauge", "Bytes of the transactions in the pool.", core.pool.total_bytes),
        ("inferchain_transactions_submitted_total", "counter", "Transactions admitted or refused by validation.", stats.submitted),
        ("inferchain_transactions_rejected_total", "counter", "Transactions refused at submission.", stats.rejected),
        ("inferchain_transactions_included_total", "counter", "Transactions included in blocks produced here.", stats.included),
        ("inferchain_blocks_produced_total", "counter", "Blocks produced by this node.", stats.blocks),
        ("inferchain_last_block_transactions", "gauge", "Transactions in the last produced block.", stats.last_block_transactions),
        ("inferchain_last_block_seconds", "gauge", "Time taken to build and commit the last block.", stats.last_block_seconds),
        ("inferchain_block_production_halted", "gauge", "1 when a storage failure stopped block production until a restart.", int(stats.production_halted)),
        ("inferchain_storage_errors_total", "counter", "Storage failures that halted block production (a failed write, a damaged read).", stats.storage_errors),
    ]
    text = []
    for name, kind, help_text, value in lines:
        text += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name} {value}"]
    return "\n".join(text) + "\n"


class MetricsServer:
    """GET /metrics on host:port in a background thread."""

    def __init__(self, render: Callable[[], str], host: str, port: int):
        handler = _handler_for(render)
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="metrics", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _handler_for(render: Callable[[], str]):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404, "metrics are at /metrics")
                return
            body = render().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):  # keep scrapes out of the node's log
            pass

    return Handler
