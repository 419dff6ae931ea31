"""Prometheus metrics: a registry per node over a real core and store, scraped over HTTP."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from chain.crypto import dev_keypair
from chain.genesis import dev_genesis_document, parse_genesis
from chain.node.core import NodeCore
from chain.node.metrics import MetricsServer, NodeMetrics
from chain.storage import ChainStore

GENESIS = parse_genesis(dev_genesis_document())

# Every metric the node exposed before prometheus_client, with its type: dashboards depend on them.
EXPOSED = {
    "inferchain_block_height": "gauge",
    "inferchain_finalized_height": "gauge",
    "inferchain_mempool_transactions": "gauge",
    "inferchain_mempool_bytes": "gauge",
    "inferchain_transactions_submitted_total": "counter",
    "inferchain_transactions_rejected_total": "counter",
    "inferchain_transactions_included_total": "counter",
    "inferchain_blocks_produced_total": "counter",
    "inferchain_last_block_transactions": "gauge",
    "inferchain_last_block_seconds": "gauge",
    "inferchain_block_production_halted": "gauge",
    "inferchain_storage_errors_total": "counter",
    "inferchain_block_production_seconds": "histogram",
}


@pytest.fixture
def core(tmp_path):
    store = ChainStore(tmp_path / "db")
    store.initialize(GENESIS.chain_id, GENESIS.hash, GENESIS.initial_height, GENESIS.state())
    core = NodeCore(store, GENESIS, dev_keypair("alice"))
    yield core
    store.close()


@pytest.fixture
def served(core):
    """NodeMetrics over the core, served on a free port; yields (metrics, url of /metrics)."""
    metrics = NodeMetrics(core)
    server = MetricsServer(metrics, "127.0.0.1", 0)
    server.start()
    yield metrics, f"http://127.0.0.1:{server.port}/metrics"
    server.stop()


def scrape(url: str) -> dict[str, float]:
    """Every sample of the page by name (and `le` for buckets)."""
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = sample.name + (f"{{le={sample.labels['le']}}}" if "le" in sample.labels else "")
            samples[key] = sample.value
    return samples


def produce(core: NodeCore, metrics: NodeMetrics, blocks: int) -> None:
    for _ in range(blocks):
        metrics.observe_block(core.produce_block().elapsed_s)


def test_a_scrape_reads_the_core_at_that_moment(core, served):
    metrics, url = served
    produce(core, metrics, 3)
    samples = scrape(url)
    assert samples["inferchain_block_height"] == core.head.height == GENESIS.initial_height + 2
    assert samples["inferchain_blocks_produced_total"] == 3
    assert samples["inferchain_block_production_seconds_count"] == 3
    assert samples["inferchain_block_production_seconds_bucket{le=+Inf}"] == 3
    assert 0 < samples["inferchain_block_production_seconds_sum"] < 30
    produce(core, metrics, 1)
    assert scrape(url)["inferchain_block_height"] == GENESIS.initial_height + 3


def test_every_metric_name_of_before_is_still_exposed_with_its_type(core, served):
    _, url = served
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    for name, kind in EXPOSED.items():
        assert f"# TYPE {name} {kind}" in text, name


def test_halted_production_and_storage_errors_are_exposed(core, served):
    _, url = served
    assert scrape(url)["inferchain_block_production_halted"] == 0
    core.stats.production_halted = True
    core.stats.storage_errors = 2
    samples = scrape(url)
    assert samples["inferchain_block_production_halted"] == 1
    assert samples["inferchain_storage_errors_total"] == 2


def test_two_nodes_in_one_process_keep_their_own_figures(core, tmp_path):
    other_store = ChainStore(tmp_path / "other")
    other_store.initialize(GENESIS.chain_id, GENESIS.hash, GENESIS.initial_height, GENESIS.state())
    other_core = NodeCore(other_store, GENESIS, dev_keypair("alice"))
    try:
        first, second = NodeMetrics(core), NodeMetrics(other_core)
        produce(core, first, 2)
        first_text, second_text = first.render().decode(), second.render().decode()
        assert "inferchain_block_production_seconds_count 2.0" in first_text
        assert "inferchain_block_production_seconds_count 0.0" in second_text
        assert "inferchain_blocks_produced_total 0.0" in second_text
    finally:
        other_store.close()


def test_other_paths_say_where_the_metrics_are(served):
    _, url = served
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(url.replace("/metrics", "/"), timeout=5)
    assert raised.value.code == 404
    assert b"/metrics" in raised.value.read()


@pytest.mark.slow
def test_a_running_node_observes_each_block_it_produces(dev_node):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        samples = {}
        for family in text_string_to_metric_families(dev_node.metrics()):
            for sample in family.samples:
                samples.setdefault(sample.name, sample.value)
        if samples.get("inferchain_blocks_produced_total", 0) >= 2:
            break
        time.sleep(0.5)
    assert samples["inferchain_block_production_seconds_count"] >= 2
    # Scraped in two steps, so the histogram may have seen a block the counter had not yet.
    assert abs(samples["inferchain_block_production_seconds_count"] - samples["inferchain_blocks_produced_total"]) <= 1
