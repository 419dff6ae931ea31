"""Four validator processes over real gRPC peer-to-peer links: agreement, gossip, crashes, halts, joins, refusals.

Each node runs `inferchain node --chain GENESIS --key NAME` on its own loopback address (127.0.0.2 ...),
with every other node as a boot node. The tests run in order on one network (module fixture):
the ones that stop nodes restart them before they end.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import grpc
import pytest

from chain.client import Client
from chain.consensus.commit import sign_vote
from chain.crypto import Keypair, dev_keypair
from chain.genesis import dev_genesis_document
from chain.p2p import Network
from proto import p2p_pb2, types_pb2
from runtime import staking
from tests.commands import inferchain
from tests.nodes import NodeProcess, free_port

NAMES = ("alice", "bob", "charlie", "dave")
BLOCK_TIME_MS = 300


def write_genesis(path: Path, names=NAMES, chain_id: str = "inferchain-net-test", **module_params) -> Path:
    """The dev genesis for `names`, with each module's parameters in `module_params` (e.g. staking={...}) set."""
    document = dev_genesis_document(chain_id=chain_id, validator_names=names)
    document["consensus_params"]["block"]["block_time_ms"] = str(BLOCK_TIME_MS)
    for module, params in module_params.items():
        document["app_state"][module]["params"].update({key: str(value) for key, value in params.items()})
    path.write_text(json.dumps(document))
    return path


def node(tmp: Path, name: str, index: int, genesis: Path, bootnodes: list[str]) -> NodeProcess:
    host = f"127.0.0.{2 + index}"
    return NodeProcess(
        base_path=tmp / name, rpc_port=free_port(), dev=False, rpc_host=host, p2p=f"{host}:{free_port()}",
        extra_args=("--chain", str(genesis), "--key", name, "--bootnodes", *bootnodes),
    )


def wait_until(condition, timeout: float, what: str, nodes=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    tails = "\n".join(f"--- {n.base_path.name}\n" + "\n".join(n.log().splitlines()[-15:]) for n in nodes)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{tails}")


def height(process: NodeProcess) -> int:
    try:
        with Client(process.target) as client:
            return client.chain_info().finalized_height
    except Exception:
        return -1


def block_hash(process: NodeProcess, at: int) -> bytes:
    with Client(process.target) as client:
        return client.block(height=at).hash


class Net:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.genesis = write_genesis(tmp / "genesis.json", slashing={"slash_fraction_double_sign_ppm": 100_000})
        self.nodes: list[NodeProcess] = []
        addresses = [f"127.0.0.{2 + index}:{free_port()}" for index in range(len(NAMES))]
        for index, name in enumerate(NAMES):
            process = node(tmp, name, index, self.genesis, [a for a in addresses if a != addresses[index]])
            process.p2p = addresses[index]
            self.nodes.append(process)

    def start(self, process: NodeProcess) -> None:
        process.start(wait=True)

    def heights(self, nodes=None) -> list[int]:
        return [height(process) for process in (nodes or self.nodes)]

    def wait_all_above(self, target: int, nodes=None, timeout: float = 60) -> None:
        nodes = nodes or self.nodes
        wait_until(lambda: min(self.heights(nodes)) >= target, timeout, f"every node past #{target}", nodes)


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    network = Net(tmp_path_factory.mktemp("net"))
    for process in network.nodes:
        process.start(wait=False)
    try:
        for process in network.nodes:
            from tests.nodes import wait_serving
            wait_serving(process.target, timeout=60, process=process.process)
        yield network
    finally:
        for process in network.nodes:
            process.stop()


def test_four_validators_finalize_the_same_blocks_and_gossip_transactions(net):
    net.wait_all_above(4)
    for at in range(1, 5):
        assert len({block_hash(process, at) for process in net.nodes}) == 1
    with Client(net.nodes[0].target) as client:
        info = client.chain_info()
        assert (info.validators, info.is_validator) == (4, True)
        assert info.peers == 3
        # Submitted to alice's node; proposers rotate, so the other nodes must have received it by gossip.
        submissions = [client.transfer(dev_keypair("ferdie"), dev_keypair("eve").public_key, 10**15) for _ in range(8)]
        for submission in submissions:
            status = client.wait_for_inclusion(submission.hash, timeout=30)
            assert status.status == "included"
        proposers = {client.block(height=client.transaction(s.hash).height).proposer for s in submissions}
    with Client(net.nodes[3].target) as client:
        for submission in submissions:
            assert client.transaction(submission.hash).status == "included"
    assert proposers  # each included block names its proposer
    metrics = net.nodes[2].metrics()
    assert "inferchain_peers 3.0" in metrics and "inferchain_validators 4.0" in metrics
    shown = inferchain("query", "chain", "--node", net.nodes[1].target, "--output", "json")
    document = json.loads(shown.stdout)
    assert (document["peers"], document["validators"], document["is_validator"]) == (3, 4, True)


def test_garbage_on_a_peer_to_peer_port_is_dropped_and_the_node_goes_on(net):
    target = net.nodes[0]
    host, port = target.p2p.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        raw.sendall(b"\x00GARBAGE" * 100)
    channel = grpc.insecure_channel(target.p2p)
    call = channel.stream_stream("/inferchain.p2p.P2P/Connect", request_serializer=lambda b: b,
                                 response_deserializer=lambda b: b)
    with pytest.raises(grpc.RpcError):
        for _ in call(iter([b"\xff\xfe not a protobuf", b"\x0a\x03abc"]), timeout=5):
            pass
    channel.close()
    before = height(target)
    wait_until(lambda: height(target) >= before + 3, 30, "alice to keep finalizing", [target])
    assert "P2P" in target.log() or "peer" in target.log()


def test_a_node_with_another_genesis_is_refused_at_the_handshake(net, tmp_path):
    other = write_genesis(tmp_path / "other.json", chain_id="inferchain-net-test", staking={"epoch_blocks": 7})
    stranger = node(tmp_path, "eve", 5, other, [net.nodes[0].p2p])
    stranger.extra_args = ("--chain", str(other), "--key", "eve", "--bootnodes", net.nodes[0].p2p)
    stranger.start(wait=True)
    try:
        wait_until(lambda: "genesis" in stranger.log().lower() and "refused" in stranger.log().lower(), 30,
                   "the refusal in the stranger's log", [stranger])
        assert "genesis" in net.nodes[0].log().lower()
        assert height(stranger) == 0
        with Client(net.nodes[0].target) as client:
            assert client.chain_info().peers == 3
    finally:
        stranger.stop()


def test_a_fifth_node_joining_later_syncs_from_genesis_and_follows(net, tmp_path):
    net.wait_all_above(6)
    follower = node(tmp_path, "eve", 4, net.genesis, [net.nodes[1].p2p])
    follower.start(wait=True)
    try:
        target = max(net.heights())
        wait_until(lambda: height(follower) >= target, 60, f"the fifth node to reach #{target}", [follower])
        assert block_hash(follower, target) == block_hash(net.nodes[0], target)
        with Client(follower.target) as client:
            assert not client.chain_info().is_validator
    finally:
        follower.stop()


def test_kill_9_one_validator_the_rest_go_on_and_it_catches_up_and_signs_again(net):
    victim = net.nodes[3]
    victim.kill()
    rest = net.nodes[:3]
    start = min(net.heights(rest))
    net.wait_all_above(start + 3, rest)
    victim.start(wait=True)
    target = max(net.heights(rest))
    wait_until(lambda: height(victim) >= target, 60, "dave to catch up", [victim])
    dave = dev_keypair("dave").public_key

    def dave_signed_a_recent_commit() -> bool:
        with Client(net.nodes[0].target) as client:
            best = client.chain_info().finalized_height
            commit = client.committed_block(best).commit
        return any(types_pb2.VoteBody.FromString(vote.body).validator == dave for vote in commit.precommits)

    wait_until(dave_signed_a_recent_commit, 60, "a commit with dave's precommit", [victim])


def test_two_of_four_down_halts_finality_without_a_fork_and_it_resumes(net):
    down = net.nodes[2:]
    up = net.nodes[:2]
    for process in down:
        process.stop()
    time.sleep(2 * BLOCK_TIME_MS / 1000 + 1)
    halted = net.heights(up)
    time.sleep(4)
    assert net.heights(up) == halted  # 2 of 4 is not more than 2/3: nothing more is final
    for process in down:
        process.start(wait=True)
    net.wait_all_above(max(halted) + 3, timeout=90)
    top = min(net.heights())
    for at in range(1, top + 1, max(1, top // 10)):
        assert len({block_hash(process, at) for process in net.nodes}) == 1


def test_a_double_sign_becomes_evidence_in_a_block_and_the_signer_is_slashed_and_jailed(net, tmp_path):
    """A peer relays two different prevotes signed with dave's key for one height and round."""
    genesis_hash = None
    with Client(net.nodes[0].target) as client:
        info = client.chain_info()
        genesis_hash = info.genesis_hash
        bonded_before = staking_bonded(client, "dave")

    class Quiet:
        def on_message(self, peer_id, envelope):
            pass

        def on_peer_connected(self, peer_id):
            pass

        def on_peer_disconnected(self, peer_id):
            pass

    byzantine = Network(
        chain_id=info.chain_id, genesis_hash=genesis_hash, node_key=Keypair.generate(), listen_addr="127.0.0.9:0",
        public_addr=None, bootnodes=[net.nodes[0].p2p], handler=Quiet(), height=lambda: 0,
    )
    byzantine.start()
    try:
        wait_until(lambda: byzantine.peers(), 20, "the byzantine peer to connect")
        at = height(net.nodes[0]) + 1
        dave = dev_keypair("dave")
        for value in (b"\x01" * 32, b"\x02" * 32):
            vote = sign_vote(dave, info.chain_id, types_pb2.VOTE_TYPE_PREVOTE, at, 0, value)
            byzantine.broadcast(p2p_pb2.Envelope(vote=vote))

        def slashed() -> bool:
            with Client(net.nodes[1].target) as client:
                return staking_bonded(client, "dave") < bonded_before

        wait_until(slashed, 60, "dave's bond to be slashed", net.nodes)
        with Client(net.nodes[1].target) as client:
            assert staking_bonded(client, "dave") == bonded_before - bonded_before // 10
            ledger = client.state_proof(staking.LEDGER_PREFIX + dave.public_key)
        from proto import state_pb2
        assert state_pb2.StakeLedger.FromString(ledger.value).jailed_until > at
    finally:
        byzantine.stop()


def staking_bonded(client: Client, name: str) -> int:
    from proto import state_pb2

    value = client.state_proof(staking.LEDGER_PREFIX + dev_keypair(name).public_key).value
    return state_pb2.StakeLedger.FromString(value).bonded
