"""`inferchain verify --node ADDR --light GENESIS.json`: the thresholds' header must be finalized by the chain.

The thresholds are read with a state proof against a block header; with --light the light client
(chain/client/light.py) also checks that header's commit against the validator set followed from the
trusted genesis. A real node over gRPC; a node that lies is the same node behind a stub that forges its
headers (consistently: hash, block and state proof agree) or strips its commits (tests/tampering.py).
"""

from __future__ import annotations

import argparse
import json
import time

import pytest

from chain.cli.errors import EXIT_UNTRUSTED, EXIT_USAGE, CliError
from chain.cli.infer import chain_thresholds, registered_model_thresholds
from chain.client import Client
from chain.genesis import DEV_BOND, dev_genesis_document, load_genesis
from inference.registration import EMBEDDED_MODEL_ID
from proto import node_pb2, types_pb2
from runtime.hashing import blake2b_256
from tests.commands import ROOT, inferchain, one_line_error
from tests.nodes import NodeProcess, free_port
from tests.tampering import TamperingStub

MODEL_ID = bytes.fromhex(EMBEDDED_MODEL_ID)
BLOCK_MS = 200


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    """A dev node with short blocks, and the genesis file it runs (the trusted one)."""
    base = tmp_path_factory.mktemp("verify-light")
    document = dev_genesis_document("verify-light")
    document["consensus_params"]["block"]["block_time_ms"] = str(BLOCK_MS)
    path = base / "genesis.json"
    path.write_text(json.dumps(document, indent=2))
    process = NodeProcess(base / "node", free_port(), ("--chain", str(path), "--key", "alice")).start()
    with Client(process.target) as client:
        deadline = time.monotonic() + 30
        while client.chain_info().finalized_height < 2:
            assert time.monotonic() < deadline, "the node finalized no block within 30 s"
            time.sleep(0.1)
    yield process, path
    process.kill()


class ForgedHeaders:
    """A node that lies about its headers: every block is served 1 ms later than the one its validators signed, under
    the hash that goes with it, and each state proof names that forged block. The state and proofs are the real ones,
    so the lie holds together: only the commit, signed for the real hash, gives it away."""

    def __init__(self, stub):
        self._stub = stub
        self._heights: dict[bytes, int] = {}

    def __getattr__(self, name):
        return getattr(self._stub, name)

    def GetBlock(self, request, timeout=None):
        if request.WhichOneof("selector") == "hash" and request.hash in self._heights:
            request = node_pb2.GetBlockRequest(height=self._heights[request.hash])
        reply = node_pb2.GetBlockResponse()
        reply.CopyFrom(self._stub.GetBlock(request, timeout=timeout))
        header = types_pb2.Header.FromString(reply.block.header)
        header.time_ms += 1
        reply.block.header = header.SerializeToString(deterministic=True)
        reply.block_hash = blake2b_256(reply.block.header)
        self._heights[reply.block_hash] = header.height
        return reply

    def GetStateProof(self, request, timeout=None):
        reply = node_pb2.GetStateProofResponse()
        reply.CopyFrom(self._stub.GetStateProof(request, timeout=timeout))
        reply.block_hash = self.GetBlock(node_pb2.GetBlockRequest(height=reply.height), timeout=timeout).block_hash
        return reply


def _strip_commit(reply) -> None:
    del reply.commit.precommits[:]


def test_thresholds_under_a_finalized_header_say_who_signed_it(node):
    process, path = node
    source = chain_thresholds(argparse.Namespace(node=process.target, light=str(path)), EMBEDDED_MODEL_ID)
    assert f"its commit verified: {DEV_BOND} of {DEV_BOND} voting power signed it" in source.description
    assert source.document["commit_verified"] is True
    assert source.document["signed_power"] == source.document["total_power"] == str(DEV_BOND)


def test_without_light_the_output_says_the_header_was_not_checked(node):
    process, _ = node
    source = chain_thresholds(argparse.Namespace(node=process.target, light=None), EMBEDDED_MODEL_ID)
    assert "its header not checked against the validator set (--light GENESIS.json checks it)" in source.description
    assert source.document["commit_verified"] is False and "signed_power" not in source.document


def test_a_forged_header_is_refused_in_one_line(node):
    process, path = node
    genesis = load_genesis(path)
    with Client(process.target) as client:
        client._stub = ForgedHeaders(client._stub)
        # The lie holds together for a reader that trusts headers: the proof verifies under the forged block.
        trusting = registered_model_thresholds(client, MODEL_ID, process.target, None)
        assert trusting.thresholds is not None
        with pytest.raises(CliError) as refused:
            registered_model_thresholds(client, MODEL_ID, process.target, genesis)
    message = str(refused.value)
    assert refused.value.exit_code == EXIT_UNTRUSTED and "\n" not in message
    assert message.startswith("the node's thresholds are not backed by the chain's validators: light client, block ")
    assert "bad commit" in message, message


def test_a_header_without_its_commit_is_refused_in_one_line(node):
    process, path = node
    with Client(process.target) as client:
        client._stub = TamperingStub(client._stub, "GetBlock", _strip_commit)
        with pytest.raises(CliError) as refused:
            registered_model_thresholds(client, MODEL_ID, process.target, load_genesis(path))
    assert refused.value.exit_code == EXIT_UNTRUSTED and "\n" not in str(refused.value)
    assert "bad commit" in str(refused.value)


def test_a_genesis_of_another_chain_is_refused(node, tmp_path):
    process, _ = node
    other = tmp_path / "other.json"
    other.write_text(json.dumps(dev_genesis_document()))
    with pytest.raises(CliError, match="not the trusted genesis") as refused:
        chain_thresholds(argparse.Namespace(node=process.target, light=str(other)), EMBEDDED_MODEL_ID)
    assert refused.value.exit_code == EXIT_UNTRUSTED


def test_light_without_a_node_is_a_usage_error(tmp_path):
    result = inferchain("verify", str(tmp_path / "result.json"), "--thresholds",
                        str(ROOT / "inference" / "data" / "thresholds.json"), "--light", str(tmp_path / "g.json"))
    assert result.returncode == EXIT_USAGE
    assert "--light verifies the header of the node's thresholds: it needs --node HOST:PORT" in one_line_error(result)
