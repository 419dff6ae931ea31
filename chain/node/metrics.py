"""Prometheus metrics (prometheus_client), one registry per node, served on their own port.

Gauges and counters are read from the core at scrape time; the block production time is a
histogram fed by the producer. No global registry: several nodes may run in one process.
"""

from __future__ import annotations

import threading
from typing import Iterator
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, Histogram, generate_latest, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import Collector

METRICS_PATH = "/metrics"
# Block production on the dev chain takes milliseconds empty and up to seconds for full blocks.
BLOCK_PRODUCTION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class CoreCollector(Collector):
    """The node's counters and gauges, read from the core (head, pool, NodeStats) at each scrape."""

    def __init__(self, core):
        self.core = core

    def collect(self) -> Iterator[Metric]:
        core = self.core
        head = core.head
        stats = core.stats
        yield GaugeMetricFamily("inferchain_block_height", "Height of the best block.", value=head.height)
        yield GaugeMetricFamily("inferchain_finalized_height", "Height of the latest finalized block.", value=head.height)
        yield GaugeMetricFamily("inferchain_mempool_transactions", "Transactions waiting in the pool.", value=len(core.pool))
        yield GaugeMetricFamily("inferchain_mempool_bytes", "Bytes of the transactions in the pool.", value=core.pool.total_bytes)
        yield CounterMetricFamily(
            "inferchain_transactions_submitted", "Transactions admitted or refused by validation.", value=stats.submitted
        )
        yield CounterMetricFamily("inferchain_transactions_rejected", "Transactions refused at submission.", value=stats.rejected)
        yield CounterMetricFamily(
            "inferchain_transactions_included", "Transactions in blocks committed here.", value=stats.included
        )
        yield CounterMetricFamily("inferchain_blocks_produced", "Blocks committed by this node.", value=stats.blocks)
        yield GaugeMetricFamily(
            "inferchain_last_block_transactions", "Transactions in the last produced block.", value=stats.last_block_transactions
        )
        yield GaugeMetricFamily(
            "inferchain_last_block_seconds", "Time taken to build and commit the last block.", value=stats.last_block_seconds
        )
        yield GaugeMetricFamily(
            "inferchain_block_production_halted",
            "1 when a storage failure stopped block production until a restart.",
            value=int(getattr(stats, "production_halted", False)),
        )
        yield CounterMetricFamily(
            "inferchain_storage_errors",
            "Storage failures that halted block production (a failed write, a damaged read).",
            value=getattr(stats, "storage_errors", 0),
        )
        yield from _consensus_metrics(core)


def _consensus_metrics(core) -> Iterator[Metric]:
    """From the snapshot the consensus loop published last (chain/consensus/status.py): no live state is read."""
    if getattr(core, "consensus_status", None) is None:
        return
    status = core.consensus_status()
    yield GaugeMetricFamily("inferchain_peers", "Connected peer-to-peer peers.", value=status.peers)
    yield GaugeMetricFamily("inferchain_consensus_round", "Round of the height being decided.", value=status.round)
    yield GaugeMetricFamily("inferchain_syncing", "1 while the node catches up by block sync.", value=int(status.syncing))
    yield GaugeMetricFamily("inferchain_is_validator", "1 when this node's key is in the validator set.",
                            value=int(status.is_validator))
    yield GaugeMetricFamily("inferchain_validators", "Validators in the current set.", value=status.validators)
    yield CounterMetricFamily("inferchain_signatures_refused",
                              "Signatures the sign state refused (each would have been a double-sign).",
                              value=status.signatures_refused)
    yield CounterMetricFamily("inferchain_block_requests_refused",
                              "Peers' block sync requests refused because the block server's queue was full.",
                              value=status.block_requests_refused)
    yield CounterMetricFamily("inferchain_consensus_events_dropped",
                              "Peer messages dropped because the consensus inbox was full.",
                              value=status.events_dropped)


class NodeMetrics:
    """A node's own registry: the core's figures and the histogram of block production time."""

    def __init__(self, core):
        self.registry = CollectorRegistry()
        self.registry.register(CoreCollector(core))
        self.block_production_seconds = Histogram(
            "inferchain_block_production_seconds",
            "Time taken to build, execute and commit a block.",
            buckets=BLOCK_PRODUCTION_BUCKETS,
            registry=self.registry,
        )

    def observe_block(self, elapsed_s: float) -> None:
        """Record the production time of one block."""
        self.block_production_seconds.observe(elapsed_s)

    def render(self) -> bytes:
        """Everything in the registry, in the Prometheus text format."""
        return generate_latest(self.registry)


class MetricsServer:
    """GET /metrics on host:port in a background thread, served by prometheus_client's WSGI app."""

    def __init__(self, node_metrics: NodeMetrics, host: str, port: int):
        self.node_metrics = node_metrics
        app = _only_metrics_path(make_wsgi_app(node_metrics.registry))
        self.httpd = make_server(host, port, app, ThreadingWSGIServer, handler_class=_QuietHandler)
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="metrics", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _only_metrics_path(app):
    """The app at /metrics and a 404 that says where they are everywhere else."""

    def routed(environ, start_response):
        if environ.get("PATH_INFO") != METRICS_PATH:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [f"metrics are at {METRICS_PATH}\n".encode()]
        return app(environ, start_response)

    return routed


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # keep scrapes out of the node's log
        pass
