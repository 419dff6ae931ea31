"""The light client (chain/client/light.py): headers trusted only through commits of the validator set
followed from genesis, state only through proofs against such headers.

Fabricated chains signed by dev keys test each refusal; a real node with 3-block epochs tests the
whole path over the public API (GetChainInfo, GetBlock, GetStateProof).
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass

import pytest

from chain.client import Client, ClientError
from chain.client.light import LightClient, LightClientError
from chain.client.results import CommittedBlock, StateValue
from chain.client.verification import verified_block
from chain.consensus.commit import validator_set_hash
from chain.crypto import dev_keypair
from chain.genesis import DEV_BOND, Genesis, dev_genesis_document, load_genesis, parse_genesis
from chain.state.proof import EMPTY_ROOT
from chain.state.tree import StateTree
from proto import state_pb2, types_pb2
from runtime import hashing, staking, system
from runtime.votes import VOTE_SIGNING_CONTEXT
from chain.cli.errors import EXIT_BAD_INPUT, EXIT_UNTRUSTED
from tests.commands import inferchain, one_line_error
from tests.nodes import NodeProcess, free_port

CHAIN_ID = "light-test"
EPOCH = 4
UNIT = 10**17  # staking's default min_bond: every power below is a multiple of it
# Four validators of unequal power (12 in all): bob + charlie + dave hold exactly 2/3.
GENESIS_POWERS = {"alice": 4, "bob": 3, "charlie": 3, "dave": 2}
# The set elected at the first boundary: dave leaves, eve joins, powers change.
NEXT_POWERS = {"alice": 1, "bob": 2, "charlie": 3, "eve": 6}


def light_genesis(powers: dict[str, int] = GENESIS_POWERS, epoch_blocks: int = EPOCH, chain_id: str = CHAIN_ID) -> Genesis:
    """The dev genesis with `powers` (in UNIT) bonded and validating, and short epochs."""
    document = dev_genesis_document(chain_id, validator_names=tuple(powers))
    document["app_state"]["staking"]["params"]["epoch_blocks"] = str(epoch_blocks)
    for stake in document["app_state"]["staking"]["stakes"]:
        stake["bonded"] = str(powers[stake["name"]] * UNIT)
    del document["validators"]  # taken from staking's set
    return parse_genesis(document)


def validator_set(powers: dict[str, int]) -> types_pb2.ValidatorSet:
    """A set as staking stores it: sorted by account id, power = bond."""
    members = sorted((dev_keypair(name).public_key, power * UNIT) for name, power in powers.items())
    return types_pb2.ValidatorSet(
        validators=[types_pb2.Validator(public_key=key, voting_power=power) for key, power in members]
    )


def precommit(name: str, height: int, block_hash: bytes, chain_id: str = CHAIN_ID) -> types_pb2.Vote:
    keypair = dev_keypair(name)
    body = types_pb2.VoteBody(
        chain_id=chain_id, type=types_pb2.VOTE_TYPE_PRECOMMIT, height=height, round=0, block_hash=block_hash,
        time_ms=height, validator=keypair.public_key,
    ).SerializeToString(deterministic=True)
    return types_pb2.Vote(body=body, signature=keypair.sign(VOTE_SIGNING_CONTEXT + body))


def commit_by(names, height: int, block_hash: bytes) -> types_pb2.Commit:
    return types_pb2.Commit(
        height=height, round=0, block_hash=block_hash, precommits=[precommit(name, height, block_hash) for name in names]
    )


class _Nodes(dict):
    """A dict as the state tree's node store and write batch."""

    def put(self, key: bytes, value: bytes) -> None:
        self[key] = value


@dataclass
class FabricatedBlock:
    block: types_pb2.Block
    block_hash: bytes
    commit: types_pb2.Commit
    state_root: bytes
    signers: tuple[str, ...]


class FabricatedChain:
    """Blocks 1..length over a two-key state (the validator set, Alice's account), each committed by every
    member of the set that signs it; `next_sets` gives the set each boundary elects (absent: unchanged).
    Tests tamper with `blocks`, or with what FakeNode sends."""

    def __init__(self, genesis: Genesis, length: int, next_sets: dict[int, dict[str, int]] | None = None):
        self.genesis = genesis
        self.nodes = _Nodes()
        self.tree = StateTree(self.nodes)
        epoch_blocks = staking.read_params(genesis.state()).epoch_blocks
        powers = _powers_of(genesis)
        root = self.tree.update(EMPTY_ROOT, genesis.state(), self.nodes)
        self.blocks: dict[int, FabricatedBlock] = {}
        parent = genesis.hash
        for height in range(1, length + 1):
            changes = {system.account_key(dev_keypair("alice").public_key): state_pb2.AccountInfo(
                nonce=height, free=1000 + height).SerializeToString()}
            signing = powers
            if height % epoch_blocks == 0 and height in (next_sets or {}):
                powers = next_sets[height]
                changes[staking.VALIDATOR_SET_KEY] = validator_set(powers).SerializeToString(deterministic=True)
            root = self.tree.update(root, changes, self.nodes)
            self.blocks[height] = self.make_block(height, parent, root, signing)
            parent = self.blocks[height].block_hash

    def make_block(self, height: int, parent: bytes, root: bytes, signing: dict[str, int],
                   signers=None, chain_id: str = CHAIN_ID) -> FabricatedBlock:
        """Block `height` naming the set `signing` (its hash in the header), committed by `signers` (all of it)."""
        header = types_pb2.Header(
            chain_id=chain_id, height=height, time_ms=1_000 + height, parent_hash=parent, state_root=root,
            transactions_root=hashing.transactions_root([]), receipts_root=hashing.receipts_root(types_pb2.BlockReceipts()),
            proposer=dev_keypair(next(iter(signing))).public_key,
            validators_hash=validator_set_hash(validator_set(signing)),
            last_commit_hash=hashing.blake2b_256(b""),
        ).SerializeToString(deterministic=True)
        block_hash = hashing.blake2b_256(header)
        signers = tuple(signing) if signers is None else tuple(signers)
        return FabricatedBlock(types_pb2.Block(header=header), block_hash, commit_by(signers, height, block_hash), root,
                               signers)

    def resign(self, height: int, signers, signing: dict[str, int] | None = None, root: bytes | None = None) -> None:
        """Replace block `height` by one with another commit, named set or state root."""
        old = self.blocks[height]
        header = types_pb2.Header.FromString(old.block.header)
        self.blocks[height] = self.make_block(
            height, header.parent_hash, root or old.state_root, signing or _powers_by_hash(header.validators_hash),
            signers,
        )


def _powers_of(genesis: Genesis) -> dict[str, int]:
    by_key = {dev_keypair(name).public_key: name for name in ("alice", "bob", "charlie", "dave", "eve", "ferdie")}
    stored = types_pb2.ValidatorSet.FromString(genesis.state()[staking.VALIDATOR_SET_KEY])
    return {by_key[v.public_key]: v.voting_power // UNIT for v in stored.validators}


def _powers_by_hash(validators_hash: bytes) -> dict[str, int]:
    for powers in (GENESIS_POWERS, NEXT_POWERS):
        if validator_set_hash(validator_set(powers)) == validators_hash:
            return powers
    raise AssertionError("a header names a set these tests do not know")


@dataclass(frozen=True)
class FakeInfo:
    chain_id: str
    genesis_hash: bytes
    finalized_height: int


class FakeNode:
    """What a Client offers the light client, answered from a fabricated chain; tests make it lie."""

    def __init__(self, chain: FabricatedChain, genesis_hash: bytes | None = None):
        self.chain = chain
        self.genesis_hash = chain.genesis.hash if genesis_hash is None else genesis_hash
        self.forged_values: dict[tuple[bytes, int], bytes] = {}
        self.block_requests: list[int] = []

    def chain_info(self) -> FakeInfo:
        return FakeInfo(self.chain.genesis.chain_id, self.genesis_hash, max(self.chain.blocks))

    def committed_block(self, height: int) -> CommittedBlock:
        self.block_requests.append(height)
        fabricated = self.chain.blocks[height]
        block = verified_block(fabricated.block_hash, fabricated.block, types_pb2.BlockReceipts())
        return CommittedBlock(block, fabricated.commit)

    def state_proof(self, key: bytes, height: int = 0) -> StateValue:
        height = height or max(self.chain.blocks)
        fabricated = self.chain.blocks[height]
        value, proof = self.chain.tree.get_with_proof(fabricated.state_root, key)
        value = self.forged_values.get((key, height), value)
        return StateValue(key, value, height, fabricated.block_hash, fabricated.state_root, proof)


@pytest.fixture
def genesis() -> Genesis:
    return light_genesis()


@pytest.fixture
def chain(genesis) -> FabricatedChain:
    """Three epochs of 4 blocks and one more: the set changes at block 4 and stays."""
    return FabricatedChain(genesis, 3 * EPOCH + 1, next_sets={EPOCH: NEXT_POWERS})


# --- following the validator set -----------------------------------------------------------


def test_headers_are_verified_with_the_set_elected_at_each_epoch_boundary(chain, genesis):
    node = FakeNode(chain)
    light = LightClient(node, genesis)
    first = light.verified_header(EPOCH)  # the boundary block itself is still signed by the genesis set
    assert first.validators_hash == validator_set_hash(validator_set(GENESIS_POWERS))
    later = light.verified_header(2 * EPOCH + 3)
    assert later.validators_hash == validator_set_hash(validator_set(NEXT_POWERS))
    assert (later.signed_power, later.total_power) == (12 * UNIT, 12 * UNIT)
    assert later.hash == chain.blocks[2 * EPOCH + 3].block_hash
    assert light.validators_for(EPOCH + 1).hash == validator_set_hash(validator_set(NEXT_POWERS))


def test_each_epoch_boundary_is_crossed_once(chain, genesis):
    node = FakeNode(chain)
    light = LightClient(node, genesis)
    light.verified_header(3 * EPOCH + 1)
    assert node.block_requests == [EPOCH, 2 * EPOCH, 3 * EPOCH, 3 * EPOCH + 1]
    light.verified_header(3 * EPOCH)
    light.verified_header(EPOCH + 2)
    assert node.block_requests[4:] == [3 * EPOCH, EPOCH + 2]


def test_a_block_after_the_boundary_signed_by_the_old_set_is_refused(chain, genesis):
    chain.resign(EPOCH + 1, signers=GENESIS_POWERS, signing=GENESIS_POWERS)
    light = LightClient(FakeNode(chain), genesis)
    with pytest.raises(LightClientError, match=r"block 5: wrong validator set") as refused:
        light.verified_header(EPOCH + 1)
    assert refused.value.height == EPOCH + 1


def test_a_commit_of_exactly_two_thirds_of_the_power_is_refused(chain, genesis):
    chain.resign(2, signers=("bob", "charlie", "dave"))  # 8 of 12
    light = LightClient(FakeNode(chain), genesis)
    with pytest.raises(LightClientError, match=r"block 2: bad commit: commit holds 800000000000000000 of "
                                               r"1200000000000000000 voting power, not more than 2/3"):
        light.verified_header(2)


def test_a_commit_of_more_than_two_thirds_of_the_power_is_enough(chain, genesis):
    chain.resign(2, signers=("alice", "bob", "dave"))  # 9 of 12: fewer than all, more than 2/3
    verified = LightClient(FakeNode(chain), genesis).verified_header(2)
    assert (verified.signed_power, verified.total_power) == (9 * UNIT, 12 * UNIT)


def test_a_commit_with_precommits_of_non_members_is_refused(chain, genesis):
    chain.resign(3, signers=("alice", "bob", "eve", "ferdie"))
    light = LightClient(FakeNode(chain), genesis)
    with pytest.raises(LightClientError, match=r"block 3: bad commit: precommit 2 is signed by .*, not a validator"):
        light.verified_header(3)


def test_a_chain_signed_by_outsiders_naming_their_own_set_is_refused(chain, genesis):
    outsiders = {"eve": 5, "ferdie": 5}
    chain.resign(2, signers=outsiders, signing=outsiders)
    light = LightClient(FakeNode(chain), genesis)
    with pytest.raises(LightClientError, match=r"block 2: wrong validator set"):
        light.verified_header(2)


def test_a_forged_next_validator_set_is_refused(chain, genesis):
    node = FakeNode(chain)
    # The node claims that the boundary elected Eve alone, with the true proof of the true set.
    node.forged_values[(staking.VALIDATOR_SET_KEY, EPOCH)] = validator_set({"eve": 1}).SerializeToString()
    light = LightClient(node, genesis)
    with pytest.raises(LightClientError, match=r"block 4: bad state proof: key b'staking/validator_set' does not hold"):
        light.verified_header(EPOCH + 1)


def test_a_next_set_proven_under_a_root_other_than_the_boundary_headers_is_refused(chain, genesis):
    # A state where Eve alone validates, proven correctly under its own root, which no header commits to.
    forged_root = chain.tree.update(
        chain.blocks[EPOCH].state_root,
        {staking.VALIDATOR_SET_KEY: validator_set({"eve": 1}).SerializeToString()},
        chain.nodes,
    )
    node = FakeNode(chain)
    honest_state_proof = node.state_proof

    def lying_state_proof(key: bytes, height: int = 0) -> StateValue:
        proven = honest_state_proof(key, height)
        if height != EPOCH:
            return proven
        value, proof = chain.tree.get_with_proof(forged_root, key)
        return dataclasses.replace(proven, value=value, state_root=forged_root, proof=proof)

    node.state_proof = lying_state_proof
    with pytest.raises(LightClientError, match=r"block 4: bad state proof"):
        LightClient(node, genesis).verified_header(EPOCH + 1)


# --- a node that lies ------------------------------------------------------------------------


def test_a_node_of_another_genesis_is_refused(chain, genesis):
    with pytest.raises(LightClientError, match=r"light client: the node serves chain 'light-test' with genesis 1111"):
        LightClient(FakeNode(chain, genesis_hash=b"\x11" * 32), genesis)


def test_a_tampered_header_is_refused_by_its_commit(chain, genesis):
    honest = chain.blocks[6]
    header = types_pb2.Header.FromString(honest.block.header)
    header.state_root = b"\x42" * 32  # a state root the validators never signed
    raw = header.SerializeToString(deterministic=True)
    chain.blocks[6] = dataclasses.replace(honest, block=types_pb2.Block(header=raw), block_hash=hashing.blake2b_256(raw))
    light = LightClient(FakeNode(chain), genesis)
    with pytest.raises(LightClientError, match=r"block 6: bad commit: commit is for #6 "):
        light.verified_header(6)


def test_a_block_of_another_height_or_chain_is_refused(chain, genesis):
    chain.blocks[7] = chain.blocks[6]
    light = LightClient(FakeNode(chain), genesis)
    with pytest.raises(LightClientError, match=r"block 7: the node sent block 6 of chain 'light-test'"):
        light.verified_header(7)


def test_an_empty_commit_is_refused(chain, genesis):
    chain.blocks[2] = dataclasses.replace(chain.blocks[2], commit=types_pb2.Commit())
    with pytest.raises(LightClientError, match=r"block 2: bad commit: commit is for #0"):
        LightClient(FakeNode(chain), genesis).verified_header(2)


def test_a_tampered_account_value_is_refused(chain, genesis):
    node = FakeNode(chain)
    alice_key = system.account_key(dev_keypair("alice").public_key)
    node.forged_values[(alice_key, 9)] = state_pb2.AccountInfo(nonce=9, free=10**18).SerializeToString()
    light = LightClient(node, genesis)
    with pytest.raises(LightClientError, match=r"block 9: bad state proof"):
        light.verified_account("alice", 9)


def test_an_account_is_read_from_a_verified_block(chain, genesis):
    account = LightClient(FakeNode(chain), genesis).verified_account("alice", 9)
    assert (account.exists, account.nonce, account.free, account.block.height) == (True, 9, 1009, 9)
    assert account.block.state_root == chain.blocks[9].state_root


def test_an_absent_account_is_proven_absent(chain, genesis):
    account = LightClient(FakeNode(chain), genesis).verified_account(b"\x07" * 32)
    assert (account.exists, account.free, account.block.height) == (False, 0, 3 * EPOCH + 1)


def test_a_state_proof_for_another_block_than_asked_is_refused(chain, genesis):
    node = FakeNode(chain)
    honest_state_proof = node.state_proof
    node.state_proof = lambda key, height=0: honest_state_proof(key, 3)
    with pytest.raises(LightClientError, match=r"block 5: asked for the state after this block, got the state after 3"):
        LightClient(node, genesis).verified_state(b"system/chain", 5)


# --- a real node -------------------------------------------------------------------------------

REAL_EPOCH = 3
REAL_BLOCK_MS = 100


@pytest.fixture(scope="module")
def real_node(tmp_path_factory):
    """A dev node with 3-block epochs and 0.1 s blocks: epochs pass while the test runs."""
    base = tmp_path_factory.mktemp("light")
    document = dev_genesis_document("light-dev")
    document["consensus_params"]["block"]["block_time_ms"] = str(REAL_BLOCK_MS)
    document["app_state"]["staking"]["params"]["epoch_blocks"] = str(REAL_EPOCH)
    path = base / "genesis.json"
    path.write_text(json.dumps(document, indent=2))
    node = NodeProcess(base / "node", free_port(), ("--chain", str(path), "--key", "alice")).start()
    node.genesis_path = path
    yield node, load_genesis(path)
    node.kill()


def wait_for_height(client: Client, height: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while client.chain_info().finalized_height < height:
        assert time.monotonic() < deadline, f"the node did not reach block {height} within {timeout} s"
        time.sleep(0.1)


def test_a_real_node_is_followed_across_several_epochs(real_node):
    node, genesis = real_node
    with Client(node.target) as client:
        wait_for_height(client, 4 * REAL_EPOCH + 1)
        light = LightClient(client, genesis)
        header = light.verified_header(4 * REAL_EPOCH + 1)
        assert header.hash == client.block(height=4 * REAL_EPOCH + 1).hash
        assert header.signed_power == header.total_power == DEV_BOND
        stored = light.verified_state(staking.VALIDATOR_SET_KEY, 4 * REAL_EPOCH)
        assert validator_set_hash(types_pb2.ValidatorSet.FromString(stored.value)) == header.validators_hash


def test_a_real_nodes_account_is_proven_against_a_verified_header(real_node):
    node, genesis = real_node
    with Client(node.target) as client:
        wait_for_height(client, 2 * REAL_EPOCH + 1)
        account = LightClient(client, genesis).verified_account("alice")
        assert account.exists and account.reserved == DEV_BOND
        assert account.block.hash == client.block(height=account.block.height).hash
        earlier = LightClient(client, genesis).verified_account("bob", 2)
        assert (earlier.block.height, earlier.free, earlier.reserved) == (2, 10**18, 0)


def test_a_real_node_of_another_genesis_is_refused(real_node):
    node, _ = real_node
    with Client(node.target) as client, pytest.raises(LightClientError, match="not the trusted genesis"):
        LightClient(client, parse_genesis(dev_genesis_document()))


def test_get_state_proof_refuses_bad_keys_and_heights(real_node):
    node, _ = real_node
    with Client(node.target) as client:
        absent = client.state_proof(b"no/such/key", 1)
        assert (absent.value, absent.height) == (None, 1)
        with pytest.raises(ClientError, match=r"a state key is 1 to 1024 bytes, got 1025") as refused:
            client.state_proof(b"k" * 1025)
        assert refused.value.code == "INVALID_ARGUMENT"
        with pytest.raises(ClientError, match=r"a state key is 1 to 1024 bytes, got 0"):
            client.state_proof(b"")
        with pytest.raises(ClientError, match=r"no block at height 1000000; the best height is") as missing:
            client.state_proof(b"system/chain", 1_000_000)
        assert missing.value.code == "NOT_FOUND"


# --- the CLI ---------------------------------------------------------------------------------


def test_query_account_light_reports_the_verified_commit(real_node):
    node, _ = real_node
    result = inferchain("query", "account", "alice", "--light", str(node.genesis_path), "--node", node.target,
                        "--output", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["reserved"] == str(DEV_BOND) and document["proof_verified"] is True
    assert document["commit"]["signed_power"] == document["commit"]["total_power"] == str(DEV_BOND)
    assert document["commit"]["height"] == document["height"]


def test_query_block_light_says_who_signed_it(real_node):
    node, _ = real_node
    with Client(node.target) as client:
        wait_for_height(client, 2 * REAL_EPOCH + 2)
    result = inferchain("query", "block", str(2 * REAL_EPOCH + 2), "--light", str(node.genesis_path),
                        "--node", node.target)
    assert result.returncode == 0, result.stderr
    assert (f"verified: {DEV_BOND} of {DEV_BOND} voting power signed block {2 * REAL_EPOCH + 2}, "
            "validator set followed from the trusted genesis") in result.stdout


def test_query_light_with_another_chains_genesis_is_untrusted(real_node, tmp_path):
    node, _ = real_node
    other = tmp_path / "other.json"
    other.write_text(json.dumps(dev_genesis_document()))
    result = inferchain("query", "block", "1", "--light", str(other), "--node", node.target)
    assert result.returncode == EXIT_UNTRUSTED
    assert "not the trusted genesis" in one_line_error(result)


def test_query_light_with_a_missing_genesis_file_is_bad_input(real_node, tmp_path):
    node, _ = real_node
    result = inferchain("query", "account", "alice", "--light", str(tmp_path / "none.json"), "--node", node.target)
    assert result.returncode == EXIT_BAD_INPUT
    assert "--light: cannot read genesis file" in one_line_error(result)
