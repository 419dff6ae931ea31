"""`inferchain genesis validate|hash|dev` through the real console entry."""

from __future__ import annotations

import json

import pytest

from chain.cli.errors import EXIT_BAD_INPUT, EXIT_USAGE
from chain.genesis import DEV_BOND, dev_genesis_document, dev_stake, genesis_hash, load_genesis
from tests.commands import ROOT, inferchain, one_line_error


def test_validate_accepts_the_checked_in_genesis():
    result = inferchain("genesis", "validate")
    assert result.returncode == 0, result.stderr
    assert "inferchain-dev" in result.stdout and load_genesis(ROOT / "genesis.json").hash.hex() in result.stdout


def test_validate_json_summary():
    result = inferchain("genesis", "validate", str(ROOT / "genesis.json"), "--output", "json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["valid"] is True and summary["chain_id"] == "inferchain-dev"
    assert summary["accounts"] == 6 and summary["validators"][0]["name"] == "alice"
    assert summary["total_issuance"] == str(6 * 10**18)
    # 64-bit integers are strings, as in genesis.json itself; counts and decimals are numbers.
    assert summary["initial_height"] == "1" and summary["block_time_ms"] == "1000"
    assert summary["genesis_time_ms"].isdigit() and summary["validators"][0]["power"] == str(DEV_BOND)
    assert summary["token_symbol"] == "INFER" and summary["token_decimals"] == 9


def test_validate_text_shows_the_issuance_in_tokens():
    result = inferchain("genesis", "validate")
    assert "6000000000.000000000 INFER" in result.stdout


def test_validate_defaults_to_genesis_json_in_the_current_directory(tmp_path):
    (tmp_path / "genesis.json").write_text(json.dumps(dev_genesis_document(chain_id="elsewhere")))
    result = inferchain("genesis", "validate", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "elsewhere" in result.stdout


def _broken(tmp_path, mutate) -> str:
    document = dev_genesis_document()
    mutate(document)
    path = tmp_path / "genesis.json"
    path.write_text(json.dumps(document))
    return str(path)


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda d: d.pop("chain_id"), "chain_id"),
        (lambda d: d.update(genesis_time="yesterday"), "genesis_time"),
        (lambda d: d["app_state"]["system"]["params"].update(base_fee="-1"), "app_state.system.params.base_fee"),
        (lambda d: d["app_state"]["balances"]["balances"][0].update(address="5Gnope"), "app_state.balances.balances[0].address"),
        (lambda d: d["validators"][0].update(power="0"), "validators[0].power"),
        (lambda d: d["consensus_params"]["block"].update(block_time_ms="1"), "block_time_ms"),
        (lambda d: d["app_state"]["system"]["params"].update(surprise="1"), "surprise"),
    ],
)
def test_validate_names_the_bad_field_in_one_line(tmp_path, mutate, field):
    result = inferchain("genesis", "validate", _broken(tmp_path, mutate))
    assert result.returncode == EXIT_BAD_INPUT
    assert field in one_line_error(result)


def test_validate_refuses_the_double_sign_rules_under_staking_and_says_where_they_moved(tmp_path):
    """Before spec version 4 they were staking's parameters; a genesis written then is refused in one line."""
    def old_layout(document):
        document["app_state"]["staking"]["params"].update(document["app_state"].pop("slashing")["params"])

    result = inferchain("genesis", "validate", _broken(tmp_path, old_layout))
    assert result.returncode == EXIT_BAD_INPUT
    assert one_line_error(result).endswith(
        "app_state.staking.params: slash_fraction_double_sign_ppm, jail_blocks, max_evidence_age_blocks moved to "
        "app_state.slashing.params: set them there"
    )


def test_validate_reports_a_missing_file_and_bad_json(tmp_path):
    missing = inferchain("genesis", "validate", str(tmp_path / "nope.json"))
    assert missing.returncode == EXIT_BAD_INPUT and "nope.json" in one_line_error(missing)
    (tmp_path / "bad.json").write_text("{not json")
    bad = inferchain("genesis", "validate", str(tmp_path / "bad.json"))
    assert bad.returncode == EXIT_BAD_INPUT and "JSON" in one_line_error(bad)


def test_hash_prints_the_genesis_hash_in_hex():
    result = inferchain("genesis", "hash")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == load_genesis(ROOT / "genesis.json").hash.hex()


def test_hash_of_an_invalid_file_is_an_error(tmp_path):
    result = inferchain("genesis", "hash", _broken(tmp_path, lambda d: d["validators"][0].update(power="100")))
    assert result.returncode == EXIT_BAD_INPUT and "validators[0].power" in one_line_error(result)


def test_dev_prints_the_checked_in_genesis():
    result = inferchain("genesis", "dev")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document == json.loads((ROOT / "genesis.json").read_text())


def test_dev_with_a_chain_id_changes_the_hash():
    result = inferchain("genesis", "dev", "--chain-id", "my-test-chain")
    document = json.loads(result.stdout)
    assert document["chain_id"] == "my-test-chain"
    assert genesis_hash(document) != load_genesis(ROOT / "genesis.json").hash


def test_dev_refuses_an_invalid_chain_id():
    result = inferchain("genesis", "dev", "--chain-id", "x" * 100)
    assert result.returncode == EXIT_USAGE and "chain_id" in one_line_error(result)


def test_a_reader_that_stops_early_is_no_error():
    # `inferchain ... | head -c 10`: the pipe closes while we still write; no traceback, exit 0.
    import subprocess
    import sys

    from tests.commands import ROOT

    process = subprocess.Popen([sys.executable, "-m", "chain.cli", "genesis", "dev"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    process.stdout.close()  # before the command writes anything
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=60) == 0
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr


def test_a_genesis_whose_validators_disagree_with_staking_is_refused_by_validate_and_by_the_node_at_start(tmp_path):
    path = _broken(tmp_path, lambda d: d["app_state"]["staking"]["stakes"].append(dev_stake("eve")))
    validate = inferchain("genesis", "validate", path)
    assert validate.returncode == EXIT_BAD_INPUT and "eve validates by stake" in one_line_error(validate)
    node = inferchain("node", "--chain", path, "--key", "alice", "--base-path", str(tmp_path / "node"))
    assert node.returncode != 0 and "eve validates by stake" in one_line_error(node)
