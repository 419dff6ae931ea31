"""Start, run and stop a node: open the store, serve the API, produce blocks until told to stop."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from grpc_health.v1 import health_pb2

from chain.crypto import Keypair
from chain.genesis import Genesis
from chain.node.api import NodeApi
from chain.node.core import NodeCore, ProductionHalted
from chain.node.metrics import MetricsServer, NodeMetrics
from chain.node.server import ApiServer
from chain.ss58 import encode_address
from chain.storage import ChainStore, StoreError
from chain.worker.supervisor import WorkerLaunch, WorkerSupervisor
from runtime import staking

log = logging.getLogger("inferchain.node")

# A gRPC health service name of its own: "" and the Node service stay SERVING for queries after a
# failed write, while this one turns NOT_SERVING when block production has halted.
BLOCK_PRODUCTION_HEALTH = "inferchain.node.BlockProduction"


class NodeStartError(Exception):
    """The node cannot start; the message says why and what to change."""


@dataclass(frozen=True)
class NodeConfig:
    genesis: Genesis
    base_path: Path
    validator: Keypair
    rpc_host: str = "127.0.0.1"
    rpc_port: int = 9944
    prometheus_host: str = "127.0.0.1"
    prometheus_port: int | None = 9615
    # Run the executor worker while the validator key has an offer (None: never; `node --no-worker`).
    worker: WorkerLaunch | None = None

    @property
    def database_path(self) -> Path:
        return self.base_path / "chains" / self.genesis.chain_id / "db"


def open_store(config: NodeConfig) -> ChainStore:
    """The chain's database under the base path, created from genesis on first start."""
    genesis = config.genesis
    try:
        store = ChainStore(config.database_path)
    except StoreError as error:
        raise NodeStartError(str(error)) from None
    try:
        if not store.is_initialized():
            store.initialize(genesis.chain_id, genesis.hash, genesis.initial_height, genesis.state())
            log.info("initialized %s from genesis %s", config.database_path, genesis.hash.hex())
        else:
            store.check_identity(genesis.chain_id, genesis.hash)
    except StoreError as error:
        store.close()
        raise NodeStartError(str(error)) from None
    return store


def _check_validator(config: NodeConfig) -> None:
    keys = [validator.public_key for validator in config.genesis.validators]
    if config.validator.public_key not in keys:
        raise NodeStartError(
            f"the key {config.validator.address} is not a validator in the genesis of {config.genesis.chain_id}; "
            "pass --key with a genesis validator's key"
        )
    if len(keys) > 1:
        raise NodeStartError(
            f"the genesis of {config.genesis.chain_id} names {len(keys)} validators; this node produces blocks "
            "with a single validator only (multi-validator consensus is not built yet)"
        )


class Node:
    """A running node: core, API server, metrics server and the block production loop."""

    def __init__(self, config: NodeConfig):
        _check_validator(config)
        self.config = config
        self.store = open_store(config)
        self.core = NodeCore(self.store, config.genesis, config.validator)
        self._stop = threading.Event()
        self._producer = threading.Thread(target=self._produce_loop, name="producer", daemon=True)
        self.worker: WorkerSupervisor | None = None
        try:
            self.api = ApiServer(NodeApi(self.core, config.genesis.consensus.block_time_ms), config.rpc_host, config.rpc_port)
            self.metrics = None
            if config.prometheus_port is not None:
                self.metrics = MetricsServer(NodeMetrics(self.core), config.prometheus_host, config.prometheus_port)
        except OSError as error:
            self.store.close()
            raise NodeStartError(f"cannot open a listening port: {error}") from None

    def start(self) -> None:
        head = self.core.head
        log.info(
            "chain %s, genesis %s, best #%d (%s), validator %s",
            self.config.genesis.chain_id, self.config.genesis.hash.hex(), head.height, head.hash.hex()[:16],
            encode_address(self.config.validator.public_key),
        )
        self.api.start()
        if self.metrics is not None:
            self.metrics.start()
            log.info("prometheus metrics on http://%s:%d/metrics", self.config.prometheus_host, self.metrics.port)
        self._set_production_health(health_pb2.HealthCheckResponse.SERVING)
        self._producer.start()
        self.api.mark_serving()
        log.info("gRPC API on %s:%d", self.config.rpc_host, self.api.port)
        if self.config.worker is not None:
            command = self.config.worker.command(f"127.0.0.1:{self.api.port}", self.config.base_path)
            self.worker = WorkerSupervisor(command, self._has_offer)
            self.worker.start()

    def wait(self) -> None:
        while not self._stop.wait(0.5):
            pass

    def stop(self) -> None:
        """Finish the block in progress, stop serving, close the store."""
        self._stop.set()
        if self.worker is not None:  # while the API still serves, so the worker stops cleanly
            self.worker.stop()
        if self._producer.is_alive():
            self._producer.join(timeout=30)
        self.api.stop()
        if self.metrics is not None:
            self.metrics.stop()
        self.store.close()
        log.info("stopped at #%d", self.core.head.height)

    def request_stop(self) -> None:
        self._stop.set()

    def _produce_loop(self) -> None:
        block_time = self.config.genesis.consensus.block_time_ms / 1000
        next_slot = time.monotonic()
        while not self._stop.is_set():
            delay = next_slot - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                break
            next_slot = max(next_slot + block_time, time.monotonic())
            try:
                produced = self.core.produce_block()
            except ProductionHalted:  # the core logged why; say it on health too, and stop trying
                self._set_production_health(health_pb2.HealthCheckResponse.NOT_SERVING)
                return
            except StoreError as error:  # a damaged read while building the block: no retry can fix it
                self.core.halt_production(error)
                self._set_production_health(health_pb2.HealthCheckResponse.NOT_SERVING)
                return
            except Exception:  # a bug, not bad input: keep the node alive and say so loudly
                log.exception("block production failed; retrying next slot")
                continue
            log.info(
                "produced #%d (%s) with %d transactions in %.0f ms",
                produced.height, produced.hash.hex()[:16], produced.transactions, produced.elapsed_s * 1000,
            )
            if self.metrics is not None:
                self.metrics.node_metrics.observe_block(produced.elapsed_s)

    def _has_offer(self) -> bool:
        return staking.read_offer(self.store.state, self.config.validator.public_key) is not None

    def _set_production_health(self, status) -> None:
        self.api.health.set(BLOCK_PRODUCTION_HEALTH, status)
