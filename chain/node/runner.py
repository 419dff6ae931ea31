"""Start, run and stop a node: open the store, join the network, serve the API, decide blocks until told to stop."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from grpc_health.v1 import health_pb2

from chain.consensus.driver import Driver
from chain.consensus.signer import Signer
from chain.consensus.signstate import SignState, SignStateError, sign_state_path
from chain.consensus.wal import Wal, WalError
from chain.crypto import Keypair
from chain.genesis import Genesis
from chain.node.api import NodeApi
from chain.node.core import NodeCore, Rejected
from chain.node.metrics import MetricsServer, NodeMetrics
from chain.node.server import ApiServer
from chain.node.streams import StreamLimits
from chain.p2p import Network
from chain.p2p.node_key import NodeKeyError, load_or_create_node_key
from chain.p2p.txgossip import TxGossip
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
    listen_host: str = "127.0.0.1"
    listen_port: int = 30333
    public_addr: str | None = None
    bootnodes: tuple[str, ...] = ()
    # The validator key's file (its sign state lives beside it); None for a development key.
    key_file: Path | None = None
    # Seconds added to the wall clock (INFERCHAIN_CLOCK_OFFSET_S), to test a skewed clock.
    clock_offset_s: float = 0.0
    # Run the executor worker while the validator key has an offer (None: never; `node --no-worker`).
    worker: WorkerLaunch | None = None
    # Open API streams one client address may hold (`node --rpc-max-streams-per-client`).
    rpc_streams_per_client: int = StreamLimits().per_client

    @property
    def chain_path(self) -> Path:
        return self.base_path / "chains" / self.genesis.chain_id

    @property
    def database_path(self) -> Path:
        return self.chain_path / "db"

    @property
    def sign_state_path(self) -> Path:
        return sign_state_path(self.chain_path, self.key_file, self.genesis.chain_id)

    def wall_clock(self) -> float:
        return time.time() + self.clock_offset_s

    @property
    def listen_addr(self) -> str:
        host = f"[{self.listen_host}]" if ":" in self.listen_host else self.listen_host
        return f"{host}:{self.listen_port}"


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


class Node:
    """A running node: core, consensus, peer-to-peer network, API server, metrics server and the worker."""

    def __init__(self, config: NodeConfig):
        self.config = config
        self.store = open_store(config)
        self.core = NodeCore(self.store, config.genesis, config.validator, clock=config.wall_clock)
        self._stop = threading.Event()
        self.worker: WorkerSupervisor | None = None
        self.network: Network | None = None
        try:
            sign_state = SignState(config.sign_state_path, config.genesis.chain_id, config.genesis.hash,
                                   config.validator.public_key)
            self.wal = Wal(config.chain_path / "consensus")
            node_key = load_or_create_node_key(config.chain_path / "node_key")
        except (SignStateError, WalError, NodeKeyError) as error:
            self.store.close()
            raise NodeStartError(str(error)) from None
        signer = Signer(config.validator, config.genesis.chain_id, sign_state)
        self.driver = Driver(self.core, signer, self.wal, wall_clock=config.wall_clock)
        self.core.consensus_status = self.driver.status
        try:
            self.network = Network(
                chain_id=config.genesis.chain_id,
                genesis_hash=config.genesis.hash,
                node_key=node_key,
                listen_addr=config.listen_addr,
                public_addr=config.public_addr,
                bootnodes=config.bootnodes,
                handler=self,
                height=lambda: self.core.head.height,
                validator_key=config.validator,
                # Peers that prove a key of the current set get slots strangers cannot take (docs/network.md).
                is_validator=lambda key: key in self.driver.status().validator_keys,
                wall_clock=config.wall_clock,
            )
            self.gossip = TxGossip(
                self.network, has=self._has_transaction, get_raw=self._raw_transaction, submit=self._gossiped,
            )
            self.driver.attach(self.network)
            self.core.on_new_transaction = self.gossip.announce
            self.api = ApiServer(NodeApi(self.core, config.genesis.consensus.block_time_ms), config.rpc_host, config.rpc_port,
                                 StreamLimits(per_client=config.rpc_streams_per_client))
            self.metrics = None
            if config.prometheus_port is not None:
                self.metrics = MetricsServer(NodeMetrics(self.core), config.prometheus_host, config.prometheus_port)
                self.driver.observe_block = self.metrics.node_metrics.observe_block
        except OSError as error:
            self._close_stores()
            raise NodeStartError(f"cannot open a listening port: {error}") from None
        except ValueError as error:  # an address the network cannot use
            self._close_stores()
            raise NodeStartError(str(error)) from None

    # --- the network's handler: consensus messages to the driver, transactions to gossip ---------

    def on_message(self, peer_id: bytes, envelope) -> None:
        if not self.gossip.on_message(peer_id, envelope):
            self.driver.on_message(peer_id, envelope)

    def on_peer_connected(self, peer_id: bytes) -> None:
        self.driver.on_peer_connected(peer_id)

    def on_peer_disconnected(self, peer_id: bytes) -> None:
        self.driver.on_peer_disconnected(peer_id)

    def _has_transaction(self, tx_hash: bytes) -> bool:
        return self.core.pool_contains(tx_hash) or bool(self.store.contains_transactions([tx_hash]))

    def _raw_transaction(self, tx_hash: bytes) -> bytes | None:
        return self.core.pool_raw(tx_hash)

    def _gossiped(self, raw: bytes) -> None:
        try:
            self.core.submit(raw)
        except Rejected:
            pass  # stale or invalid here: not passed on

    # --- life cycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        head = self.core.head
        log.info(
            "chain %s, genesis %s, best #%d (%s), key %s",
            self.config.genesis.chain_id, self.config.genesis.hash.hex(), head.height, head.hash.hex()[:16],
            encode_address(self.config.validator.public_key),
        )
        try:
            self.network.start()
        except OSError as error:
            self.api.stop()
            if self.metrics is not None:
                self.metrics.stop()
            self._close_stores()
            raise NodeStartError(f"cannot open the peer-to-peer listening port: {error}") from None
        log.info("peer-to-peer on %s:%d (node id %s)", self.config.listen_host, self.network.port,
                 self.network.node_id.hex()[:16])
        self.api.start()
        if self.metrics is not None:
            self.metrics.start()
            log.info("prometheus metrics on http://%s:%d/metrics", self.config.prometheus_host, self.metrics.port)
        self._set_production_health(health_pb2.HealthCheckResponse.SERVING)
        self.driver.start()
        status = self.driver.status()
        if not status.is_validator:
            log.info("the key %s is not in the validator set: following the chain without voting",
                     encode_address(self.config.validator.public_key))
        self.api.mark_serving()
        log.info("gRPC API on %s:%d", self.config.rpc_host, self.api.port)
        if self.config.worker is not None:
            rpc_host = "127.0.0.1" if self.config.rpc_host in ("0.0.0.0", "::") else self.config.rpc_host
            command = self.config.worker.command(f"{rpc_host}:{self.api.port}", self.config.base_path)
            self.worker = WorkerSupervisor(command, self._has_offer)
            self.worker.start()

    def wait(self) -> None:
        while not self._stop.wait(0.5):
            if self.driver.status().halted:
                self._set_production_health(health_pb2.HealthCheckResponse.NOT_SERVING)

    def stop(self) -> None:
        """Finish the step in progress, leave the network, stop serving, close the store."""
        self._stop.set()
        if self.worker is not None:  # while the API still serves, so the worker stops cleanly
            self.worker.stop()
        self.driver.stop()
        self.network.stop()
        self.api.stop()
        if self.metrics is not None:
            self.metrics.stop()
        self.wal.close()
        self.store.close()
        log.info("stopped at #%d", self.core.head.height)

    def request_stop(self) -> None:
        self._stop.set()

    def _close_stores(self) -> None:
        self.wal.close()
        self.store.close()

    def _has_offer(self) -> bool:
        return staking.read_offer(self.store.state, self.config.validator.public_key) is not None

    def _set_production_health(self, status) -> None:
        self.api.health.set(BLOCK_PRODUCTION_HEALTH, status)
