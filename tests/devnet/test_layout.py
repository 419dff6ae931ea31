"""The devnet's layout: keys, the genesis derived from genesis.json, resuming, refusals, ports, devnet.json."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from chain.crypto import Keypair, dev_keypair
from chain.devnet.layout import (
    DEVNET_CHAIN_ID,
    MAX_VALIDATORS,
    Address,
    DevnetError,
    LayoutError,
    NodeAddresses,
    PortBases,
    RecordedNode,
    check_port_bases,
    choose_addresses,
    control_socket_path,
    node_addresses,
    port_is_free,
    read_port_bases,
    derive_genesis,
    prepare,
    read_record,
    record_document,
    running_nodes,
    template_document,
    write_record,
)
from chain.genesis import DEV_BOND, parse_genesis
from chain.keys import load_key_file
from chain.ss58 import encode_address
from inference.registration import EMBEDDED_MODEL_ID


def _accounts(count: int) -> list[tuple[str, bytes]]:
    return [(f"validator{index + 1}", Keypair.generate().public_key) for index in range(count)]


# --- deriving the genesis ----------------------------------------------------------------


def test_the_derived_genesis_keeps_the_templates_parameters_models_and_balances():
    template = template_document()
    document = derive_genesis(template, _accounts(4), genesis_time="2026-11-26T00:00:00Z")
    for section in ("consensus_params", "initial_height"):
        assert document[section] == template[section]
    for module, state in template["app_state"].items():
        assert document["app_state"][module]["params"] == state["params"]
    assert document["app_state"]["models"] == template["app_state"]["models"]
    kept = {entry["address"] for entry in template["app_state"]["balances"]["balances"]}
    assert kept <= {entry["address"] for entry in document["app_state"]["balances"]["balances"]}
    assert document["chain_id"] == DEVNET_CHAIN_ID and document["genesis_time"] == "2026-11-26T00:00:00Z"


def test_the_derived_genesis_has_exactly_the_given_validators_each_endowed_bonded_validating_and_offering():
    accounts = _accounts(4)
    document = derive_genesis(template_document(), accounts, genesis_time="2026-11-26T00:00:00Z")
    genesis = parse_genesis(document)
    assert [(validator.name, validator.public_key) for validator in genesis.validators] == accounts
    entries = document["app_state"]["staking"]["stakes"]
    assert [entry["name"] for entry in entries] == [name for name, _ in accounts]
    for entry in entries:
        assert entry["validate"] is True and int(entry["bonded"]) == DEV_BOND
        assert entry["offer"]["models"] == [EMBEDDED_MODEL_ID]
    endowed = {entry["address"]: int(entry["amount"]) for entry in document["app_state"]["balances"]["balances"]}
    for _, account in accounts:
        assert endowed[encode_address(account)] > DEV_BOND  # the bond and the executor's fees


def test_the_template_validator_alice_is_no_validator_of_the_devnet_but_keeps_her_balance():
    document = derive_genesis(template_document(), _accounts(2), genesis_time="2026-11-26T00:00:00Z")
    alice = dev_keypair("alice").address
    assert alice not in {entry["address"] for entry in document["validators"]}
    assert alice not in {entry["address"] for entry in document["app_state"]["staking"]["stakes"]}
    assert alice in {entry["address"] for entry in document["app_state"]["balances"]["balances"]}


def test_extra_balances_are_endowed_and_an_account_endowed_twice_is_refused():
    extra = Keypair.generate().public_key
    document = derive_genesis(template_document(), _accounts(1), genesis_time="2026-11-26T00:00:00Z",
                              extra_balances=[(extra, 5 * 10**15)])
    parse_genesis(document)
    with pytest.raises(LayoutError, match="endowed twice"):
        derive_genesis(template_document(), _accounts(1), genesis_time="2026-11-26T00:00:00Z",
                       extra_balances=[(dev_keypair("bob").public_key, 1)])


# --- creating and resuming ---------------------------------------------------------------


def test_a_new_devnet_has_a_key_file_per_validator_and_its_own_loopback_address(tmp_path):
    layout = prepare(tmp_path / "devnet", 3)
    assert [validator.name for validator in layout.validators] == ["validator1", "validator2", "validator3"]
    assert [validator.host for validator in layout.validators] == ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    for validator in layout.validators:
        assert validator.base_path == tmp_path / "devnet" / validator.name
        assert load_key_file(validator.key_path).public_key == validator.account
        assert validator.key_path.stat().st_mode & 0o777 == 0o600
    document = json.loads(layout.genesis_path.read_text())
    assert [entry["address"] for entry in document["validators"]] == [v.address for v in layout.validators]
    assert parse_genesis(document).hash == layout.genesis_hash


def test_the_default_is_four_validators(tmp_path):
    assert len(prepare(tmp_path / "devnet").validators) == 4


def test_preparing_again_resumes_with_the_same_keys_and_genesis(tmp_path):
    first = prepare(tmp_path / "devnet", 2)
    genesis_text = first.genesis_path.read_text()
    keys = [validator.key_path.read_text() for validator in first.validators]
    assert prepare(tmp_path / "devnet", 2) == first
    assert prepare(tmp_path / "devnet") == first  # no count: the devnet's own
    assert first.genesis_path.read_text() == genesis_text
    assert [validator.key_path.read_text() for validator in first.validators] == keys


def test_another_validator_count_than_the_devnet_has_is_refused_with_the_way_to_resume(tmp_path):
    prepare(tmp_path / "devnet", 2)
    with pytest.raises(LayoutError, match=r"holds a devnet of 2 validators, not 3: run with --validators 2"):
        prepare(tmp_path / "devnet", 3)


@pytest.mark.parametrize("count", [0, -1, MAX_VALIDATORS + 1])
def test_a_validator_count_out_of_range_is_refused(tmp_path, count):
    with pytest.raises(DevnetError, match=f"between 1 and {MAX_VALIDATORS}"):
        prepare(tmp_path / "devnet", count)
    assert not (tmp_path / "devnet").exists()


def test_a_directory_holding_something_else_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(LayoutError, match="is not empty and holds no devnet"):
        prepare(tmp_path, 2)
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["notes.txt"]


def test_a_file_as_base_dir_is_refused(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(LayoutError, match="is a file, not a directory"):
        prepare(tmp_path / "file", 1)


def test_an_interrupted_creation_keeps_the_keys_it_had_written(tmp_path):
    base = tmp_path / "devnet"
    (base / "validator1").mkdir(parents=True)
    keypair = Keypair.generate()
    key_path = base / "validator1" / "key.json"
    key_path.write_text(json.dumps({"type": "ed25519", "seed": keypair.seed.hex()}))
    layout = prepare(base, 2)
    assert layout.validators[0].account == keypair.public_key


def test_a_missing_or_swapped_key_is_refused_when_resuming(tmp_path):
    layout = prepare(tmp_path / "devnet", 2)
    first, second = layout.validators
    first_key = first.key_path.read_bytes()
    first.key_path.write_bytes(second.key_path.read_bytes())
    with pytest.raises(LayoutError, match=f"{first.key_path} holds {second.address}"):
        prepare(tmp_path / "devnet")
    first.key_path.unlink()
    with pytest.raises(LayoutError, match="validator1's key cannot be used"):
        prepare(tmp_path / "devnet")
    first.key_path.write_bytes(first_key)
    assert prepare(tmp_path / "devnet") == layout


def test_a_damaged_genesis_is_refused_with_what_to_do(tmp_path):
    layout = prepare(tmp_path / "devnet", 1)
    layout.genesis_path.write_text("{")
    with pytest.raises(LayoutError, match="cannot be read .*remove .* to start a new devnet"):
        prepare(tmp_path / "devnet")


# --- ports ---------------------------------------------------------------------------


def test_validator_k_gets_each_base_plus_k_minus_1_on_its_own_address(tmp_path):
    layout = prepare(tmp_path / "devnet", 4)
    chosen = choose_addresses(layout, is_free=lambda host, port: True)
    assert [str(chosen[name].rpc) for name in sorted(chosen)] == [
        "127.0.0.2:9944", "127.0.0.3:9945", "127.0.0.4:9946", "127.0.0.5:9947"]
    assert chosen["validator2"] == NodeAddresses(
        Address("127.0.0.3", 30334), Address("127.0.0.3", 9945), Address("127.0.0.3", 9616)
    )
    moved = choose_addresses(layout, PortBases(p2p=40000, rpc=41000, prometheus=42000), is_free=lambda host, port: True)
    assert moved["validator4"] == NodeAddresses(
        Address("127.0.0.5", 40003), Address("127.0.0.5", 41003), Address("127.0.0.5", 42003)
    )


def test_a_port_in_use_is_refused_naming_it_and_the_option_that_moves_its_base(tmp_path):
    layout = prepare(tmp_path / "devnet", 2)
    busy = {("127.0.0.3", 9945)}
    with pytest.raises(DevnetError) as refused:
        choose_addresses(layout, is_free=lambda host, port: (host, port) not in busy)
    message = str(refused.value)
    assert message.startswith("127.0.0.3:9945 (validator2's gRPC API) is in use by another program")
    assert "--rpc-port BASE (validator K gets BASE+K-1; now 9944)" in message


def test_bases_that_leave_the_port_range_or_overlap_are_refused(tmp_path):
    with pytest.raises(DevnetError, match="--rpc-port 65534 does not fit 4 validators: ports 65534 to 65537"):
        check_port_bases(PortBases(rpc=65534), 4)
    with pytest.raises(DevnetError, match="--rpc-port 9615 and --prometheus-port 9615 overlap"):
        check_port_bases(PortBases(rpc=9615), 1)
    with pytest.raises(DevnetError, match="--p2p-port 9612 and --prometheus-port 9615 overlap"):
        check_port_bases(PortBases(p2p=9612), 4)
    check_port_bases(PortBases(p2p=9611), 4)


def test_a_real_listener_is_in_use_and_a_just_closed_connection_is_not(tmp_path):
    import socket

    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC's listeners do
        listener.bind(("127.0.0.2", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert not port_is_free("127.0.0.2", port)
        # The server side closes first, so its end of the connection waits in TIME_WAIT on `port`:
        # what a node stopped a moment ago leaves, which once moved a resumed node to the next port.
        client = socket.create_connection(("127.0.0.2", port))
        accepted, _ = listener.accept()
        accepted.close()
        client.close()
    assert port_is_free("127.0.0.2", port)


def test_the_port_bases_are_recorded_and_read_back(tmp_path):
    layout = prepare(tmp_path / "devnet", 2)
    assert read_port_bases(layout) is None
    bases = PortBases(p2p=31000, rpc=9990, prometheus=9700)
    write_record(layout, node_addresses(layout, bases), {})
    assert read_port_bases(layout) == bases
    document = json.loads(layout.record_path.read_text())
    assert document["ports"] == {"p2p": 31000, "rpc": 9990, "prometheus": 9700}
    document["ports"]["rpc"] = "9990"
    layout.record_path.write_text(json.dumps(document))
    assert read_port_bases(layout) is None


def test_the_control_socket_is_in_the_base_dir_unless_its_path_is_too_long(tmp_path):
    assert control_socket_path(tmp_path) == tmp_path / "control.sock"
    deep = tmp_path / ("d" * 120)
    path = control_socket_path(deep)
    assert len(str(path)) <= 100 and path.name.startswith("devnet-") and path.name.endswith(".sock")
    assert control_socket_path(deep) == path != control_socket_path(tmp_path / ("e" * 120))


# --- devnet.json -------------------------------------------------------------------------


def test_devnet_json_lists_each_node_with_its_pid_addresses_and_base_path(tmp_path):
    layout = prepare(tmp_path / "devnet", 2)
    addresses = choose_addresses(layout, is_free=lambda host, port: True)
    write_record(layout, addresses, {"validator1": 1234})
    document = json.loads(layout.record_path.read_text())
    assert document["chain_id"] == DEVNET_CHAIN_ID
    assert document["genesis"] == str(layout.genesis_path)
    assert document["control"] == str(tmp_path / "devnet" / "control.sock")
    first, second = document["nodes"]
    assert first == {
        "name": "validator1", "pid": 1234, "rpc": "127.0.0.2:9944", "p2p": "127.0.0.2:30333",
        "prometheus": "127.0.0.2:9615", "base_path": str(tmp_path / "devnet" / "validator1"),
        "key": str(layout.validators[0].key_path), "address": layout.validators[0].address,
        "log": str(layout.validators[0].log_path),
    }
    assert second["pid"] is None and second["rpc"] == "127.0.0.3:9945"
    assert read_record(layout) == [
        RecordedNode("validator1", 1234, addresses["validator1"]), RecordedNode("validator2", None, addresses["validator2"]),
    ]
    assert record_document(layout, addresses, {}) == {**document, "nodes": [{**first, "pid": None}, second]}


@pytest.mark.parametrize("content", ["", "{", "[]", '{"nodes": 5}', '{"nodes": [{"pid": "12", "rpc": "x"}]}'])
def test_a_damaged_devnet_json_is_only_a_missing_record(tmp_path, content):
    layout = prepare(tmp_path / "devnet", 1)
    layout.record_path.write_text(content)
    recorded = read_record(layout)
    assert all(node.pid is None and node.addresses is None for node in recorded)


def test_a_recorded_pid_counts_as_running_only_while_it_is_this_devnets_node(tmp_path):
    layout = prepare(tmp_path / "devnet", 1)
    base_path = str(layout.validators[0].base_path)
    imposter = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "node", "--base-path", base_path])
    unrelated = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        for pid, running in ((imposter.pid, True), (unrelated.pid, False), (dead.pid, False), (os.getpid(), False)):
            recorded = [RecordedNode("validator1", pid, None)]
            assert bool(running_nodes(layout, recorded)) is running, pid
    finally:
        imposter.kill()
        unrelated.kill()
        imposter.wait()
        unrelated.wait()
