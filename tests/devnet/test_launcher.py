"""The node command lines the devnet runs, and how a node's log is quoted when it fails."""

from __future__ import annotations

from chain.devnet.launcher import LaunchOptions, last_log_line, node_command
from chain.devnet.layout import choose_addresses, prepare


def _option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_each_node_binds_its_own_address_and_names_every_other_node_as_a_bootnode(tmp_path):
    layout = prepare(tmp_path / "devnet", 3)
    addresses = choose_addresses(layout, is_free=lambda host, port: True)
    second = layout.validators[1]
    command = node_command(layout, second, addresses, LaunchOptions(python="python3"))
    assert command[:4] == ["python3", "-m", "chain.cli", "node"]
    assert _option(command, "--chain") == str(layout.genesis_path)
    assert _option(command, "--key") == str(second.key_path)
    assert _option(command, "--base-path") == str(second.base_path)
    assert _option(command, "--listen-addr") == _option(command, "--public-addr") == "127.0.0.3:30334"
    assert _option(command, "--rpc-addr") == "127.0.0.3:9945"
    assert _option(command, "--prometheus-addr") == "127.0.0.3:9616"
    bootnodes = command[command.index("--bootnodes") + 1:]
    assert bootnodes == ["127.0.0.2:30333", "127.0.0.4:30335"]


def test_workers_get_one_thread_and_one_job_at_a_time_unless_turned_off(tmp_path):
    layout = prepare(tmp_path / "devnet", 1)
    addresses = choose_addresses(layout, is_free=lambda host, port: True)
    validator = layout.validators[0]
    with_worker = node_command(layout, validator, addresses, LaunchOptions())
    assert _option(with_worker, "--worker-threads") == "1" and _option(with_worker, "--worker-parallel") == "1"
    assert "--no-worker" not in with_worker
    without = node_command(layout, validator, addresses, LaunchOptions(worker=False))
    assert "--no-worker" in without and "--worker-threads" not in without
    assert "--bootnodes" not in without  # a single validator has no peers to name


def test_the_last_log_line_is_the_last_non_empty_one_cut_short(tmp_path):
    log = tmp_path / "node.log"
    assert last_log_line(log) == "(no log)"
    log.write_text("")
    assert last_log_line(log) == "(the log is empty)"
    log.write_text("first\nerror: the key is not a validator\n\n  \n")
    assert last_log_line(log) == "error: the key is not a validator"
    log.write_bytes(b"x" * 200_000 + b"\n" + b"\xff" * 1000 + b"\n")
    line = last_log_line(log)
    assert line.endswith("…") and len(line) == 301
