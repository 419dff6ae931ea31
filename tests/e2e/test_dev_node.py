"""A real `inferchain node --dev` process: serving, persistence across kill -9, refusing bad data directories."""

from __future__ import annotations

import json
import socket
import random
import subprocess
import threading
import time

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from chain.crypto import DEV_ACCOUNT_NAMES, dev_keypair
from chain.genesis import dev_genesis_document
from chain.transactions import FeeRule, sign_transaction, transfer_call
from proto import node_pb2, node_pb2_grpc
from tests.commands import inferchain
from tests.nodes import free_port

pytestmark = pytest.mark.slow


def stub_for(node) -> node_pb2_grpc.NodeStub:
    return node_pb2_grpc.NodeStub(grpc.insecure_channel(node.target))


def wait_height(stub, height: int, timeout: float = 20.0) -> node_pb2.ChainInfo:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = stub.GetChainInfo(node_pb2.GetChainInfoRequest())
        if info.best_height >= height:
            return info
        time.sleep(0.1)
    raise TimeoutError(f"no block {height} within {timeout} s")


def test_dev_node_produces_blocks_and_streams_them(node_factory):
    node = node_factory()
    stub = stub_for(node)
    info = wait_height(stub, 1)
    assert info.chain_id == "inferchain-dev" and len(info.genesis_hash) == 32
    stream = stub.SubscribeBlocks(node_pb2.SubscribeBlocksRequest(from_height=1), timeout=15)
    heights = [next(stream).height for _ in range(3)]
    stream.cancel()
    assert heights == [1, 2, 3]
    block = stub.GetBlock(node_pb2.GetBlockRequest(height=2))
    assert block.commit.block_hash == block.block_hash and len(block.commit.precommits) == 1


def test_reflection_lists_the_node_service(node_factory):
    node = node_factory()
    channel = grpc.insecure_channel(node.target)
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    reply = next(reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])))
    names = {service.name for service in reply.list_services_response.service}
    assert {"inferchain.node.Node", "grpc.health.v1.Health"} <= names


class TransferStream(threading.Thread):
    """Submit transfers from the dev accounts until stopped; remember which were accepted."""

    def __init__(self, target: str, info: node_pb2.ChainInfo):
        super().__init__(daemon=True)
        self.stub = node_pb2_grpc.NodeStub(grpc.insecure_channel(target))
        self.info = info
        self.accepted: list[bytes] = []
        self.halt = threading.Event()

    def run(self) -> None:
        rule = FeeRule(self.info.base_fee, self.info.fee_per_byte, self.info.fee_per_weight)
        senders = [dev_keypair(name) for name in DEV_ACCOUNT_NAMES[1:]]
        nonces = {sender.public_key: 0 for sender in senders}
        dest = dev_keypair("alice").public_key
        while not self.halt.is_set():
            batch = []
            for sender in senders:
                signed = sign_transaction(
                    sender, chain_id=self.info.chain_id, genesis_hash=self.info.genesis_hash,
                    nonce=nonces[sender.public_key], call=transfer_call(dest, 1_000_000), fee_rule=rule,
                )
                nonces[sender.public_key] += 1
                batch.append(signed)
            try:
                reply = self.stub.SubmitTransactions(
                    node_pb2.SubmitTransactionsRequest(transactions=[signed.raw for signed in batch]), timeout=5
                )
            except grpc.RpcError:
                return  # the node was killed
            self.accepted += [verdict.transaction_hash for verdict in reply.verdicts if verdict.accepted]
            time.sleep(0.02)


def included_now(stub, hashes: list[bytes]) -> dict[bytes, tuple[int, bytes]]:
    included = {}
    for tx_hash in hashes:
        try:
            reply = stub.GetTransaction(node_pb2.GetTransactionRequest(transaction_hash=tx_hash), timeout=5)
        except grpc.RpcError:
            continue
        if reply.status == node_pb2.TRANSACTION_STATUS_INCLUDED:
            included[tx_hash] = (reply.height, reply.block_hash)
    return included


def test_kill_9_while_transactions_stream_in_loses_nothing_included(node_factory):
    node = node_factory("crash")
    stub = stub_for(node)
    info = wait_height(stub, 1)
    stream = TransferStream(node.target, info)
    stream.start()
    time.sleep(random.uniform(2.5, 4.5))
    included = included_now(stub, list(stream.accepted))
    seen = stub.GetChainInfo(node_pb2.GetChainInfoRequest())
    time.sleep(random.uniform(0.0, 1.0))
    node.kill()
    stream.halt.set()
    stream.join(timeout=10)
    assert included, "no transaction was included before the kill"

    node.start()
    stub = stub_for(node)
    restarted = stub.GetChainInfo(node_pb2.GetChainInfoRequest())
    assert restarted.best_height >= seen.best_height
    assert stub.GetBlock(node_pb2.GetBlockRequest(height=seen.best_height)).block_hash == seen.best_hash
    assert included_now(stub, list(included)) == included
    wait_height(stub, restarted.best_height + 2)


def assert_one_line_error(result: subprocess.CompletedProcess, words: str) -> None:
    """The node may log its start-up first; then exactly one `error:` line and no traceback."""
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and words in errors[0], result.stderr


def node_args(base_path, *extra: str) -> list[str]:
    return ["node", "--base-path", str(base_path), "--rpc-port", str(free_port()), "--no-prometheus", *extra]


def test_corrupted_data_directory_is_a_clear_error(tmp_path):
    db = tmp_path / "chains" / "inferchain-dev" / "db"
    db.mkdir(parents=True)
    (db / "CURRENT").write_text("MANIFEST-999999\n")
    assert_one_line_error(inferchain(*node_args(tmp_path, "--dev")), "cannot be opened")


def test_data_directory_of_another_genesis_is_refused(tmp_path, node_factory):
    node = node_factory("first")
    node.stop()
    document = dev_genesis_document()
    document["app_state"]["balances"]["balances"][3]["amount"] = "5000000000"  # dave: not bonded at genesis
    other = tmp_path / "other-genesis.json"
    other.write_text(json.dumps(document))
    assert_one_line_error(inferchain(*node_args(node.base_path, "--chain", str(other), "--key", "alice")), "belongs to chain")


def test_busy_rpc_port_is_a_clear_error(node_factory, tmp_path):
    node = node_factory("busy")
    result = inferchain("node", "--dev", "--tmp", "--rpc-port", str(node.rpc_port), "--no-prometheus")
    assert_one_line_error(result, "cannot open a listening port")


def test_busy_peer_to_peer_port_is_a_clear_error(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = inferchain("node", "--dev", "--tmp", "--rpc-addr", f"127.0.0.1:{free_port()}", "--no-prometheus",
                            "--no-worker", "--listen-addr", f"127.0.0.1:{port}")
    assert_one_line_error(result, "cannot open the peer-to-peer listening port")


def test_malformed_addresses_are_usage_errors():
    for option in ("--listen-addr", "--rpc-addr", "--public-addr", "--bootnodes"):
        result = inferchain("node", "--dev", "--tmp", option, "no-port-here")
        assert result.returncode == 2 and "HOST:PORT" in result.stderr and "Traceback" not in result.stderr
    for option in ("--worker-threads", "--worker-parallel", "--worker-batch-jobs"):
        result = inferchain("node", "--dev", "--tmp", option, "0")
        assert result.returncode == 2 and "between 1 and " in result.stderr and "Traceback" not in result.stderr
    result = inferchain("node", "--dev", "--tmp", "--worker-engine-class", "GPU A")
    assert result.returncode == 2 and "engine class name" in result.stderr and "Traceback" not in result.stderr


def test_sigterm_stops_cleanly(node_factory):
    node = node_factory("term")
    assert node.stop() == 0
