"""`inferchain model propose` and `model vote` through the real console entry against a real dev node:
a proposal is described from the GGUF file itself, and approving one first hashes the file here,
refusing with one line when it is missing or is not the file the proposal describes."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.cli.errors import EXIT_BAD_INPUT, EXIT_ENGINE, EXIT_REFUSED, EXIT_USAGE, CliError
from chain.client import Client
from inference.model_store import content_id
from runtime import models
from tests.commands import ROOT, inferchain, one_line_error
from tests.inference.conftest import tiny_gguf

THRESHOLDS = {
    "worst_margin_micro": "-1700000", "miss_slack_micro": "50000", "miss_rate_ppm": "21000",
    "miss_depth_micro": "90000", "false_positive_budget_ppb": "1000", "max_logprob_error_micro": "1200000",
    "mean_logprob_error_micro": "180000",
}


def proposal_of(result) -> str:
    """The proposal hash in a submission's JSON output (its ModelProposed event)."""
    assert result.returncode == 0, result.stderr
    [event] = [event for event in json.loads(result.stdout)["receipt"]["events"] if event["name"] == "ModelProposed"]
    return event["attributes"]["proposal"]


@pytest.fixture(scope="module")
def proposed(dev_node, tmp_path_factory):
    """A tiny GGUF, and two open proposals of it by Alice (bonded in the dev genesis): the true
    description (`model propose`, from the file) and one whose size is wrong (`tx propose_model`).
    Their hashes, the file and a different file."""
    directory = tmp_path_factory.mktemp("gguf")
    path = tiny_gguf(directory / "tiny.gguf")
    other = tiny_gguf(directory / "other.gguf", vocabulary=9)
    model_id = content_id(path)
    shipped = json.loads((ROOT / "inference" / "data" / "thresholds.json").read_text())
    thresholds = directory / "tiny.thresholds.json"
    thresholds.write_text(json.dumps({**next(iter(shipped.values())), "model": model_id}))
    hashes = {"true": proposal_of(inferchain(
        "model", "propose", str(path), "--source", "https://example.com/tiny.gguf", "--end-tokens", "0",
        "--thresholds", str(thresholds), "--from", "alice", "--wait", "--node", dev_node.target, "--output", "json"))}
    description = {"id": model_id, "name": "tiny", "context_length": 64, "end_tokens": [0],
                   "engine": "llama-cpp-python 0.3.36", "thresholds": THRESHOLDS,
                   "source": "https://example.com/tiny.gguf", "size_bytes": str(path.stat().st_size + 1)}
    hashes["wrong size"] = proposal_of(inferchain(
        "tx", "propose_model", "--from", "alice", "--call-json", json.dumps({"model": description}), "--wait",
        "--node", dev_node.target, "--output", "json"))
    return model_id, hashes, path, other


def test_a_proposal_is_described_from_the_file(dev_node, proposed):
    model_id, hashes, path, _ = proposed
    with Client(dev_node.target) as client:
        [proposal] = [p for p in client.list_models().proposals if p.proposal_hash.hex() == hashes["true"]]
    model = proposal.model
    assert (model.id.hex(), model.size_bytes, model.context_length) == (model_id, path.stat().st_size, 64)
    assert (model.name, list(model.end_tokens), model.source) == ("tiny test model", [0], "https://example.com/tiny.gguf")


@pytest.mark.parametrize("options, code, words", [
    (("--source", "http://example.com/tiny.gguf", "--end-tokens", "0"), EXIT_USAGE,
     "propose_model can never succeed: source must be"),
    (("--source", "https://example.com/tiny.gguf", "--end-tokens", "0,x"), EXIT_USAGE,
     "--end-tokens must be a whole number"),
    (("--source", "https://example.com/tiny.gguf", "--end-tokens", "0"), EXIT_ENGINE,
     "has no verification thresholds"),
])
def test_a_proposal_that_can_never_succeed_is_refused_in_one_line(dev_node, proposed, tmp_path, options, code, words):
    _, _, path, _ = proposed
    result = inferchain("model", "propose", str(path), *options, "--base-path", str(tmp_path), "--from", "alice",
                        "--node", dev_node.target)
    assert result.returncode == code and words in one_line_error(result)


def vote(dev_node, *args: str):
    return inferchain("model", "vote", *args, "--node", dev_node.target)


def test_tx_help_lists_the_governance_calls():
    listed = inferchain("tx", "--help").stdout
    for call in ("propose_model", "amend_model", "remove_model", "vote_model"):
        assert call in listed


def test_approving_a_file_that_hashes_to_another_id_is_refused_in_one_line(dev_node, proposed):
    model_id, hashes, _, other = proposed
    result = vote(dev_node, model_id, "--proposal", hashes["true"], "--approve", "--gguf", str(other), "--from", "alice")
    assert result.returncode == EXIT_BAD_INPUT
    assert f"not the proposed id {model_id[:12]}...: not voting yes" in one_line_error(result)


def test_approving_without_the_file_is_refused_in_one_line(dev_node, proposed, tmp_path):
    model_id, hashes, _, _ = proposed
    missing = vote(dev_node, model_id, "--proposal", hashes["true"], "--approve", "--gguf", str(tmp_path / "none.gguf"),
                   "--from", "alice")
    assert missing.returncode == EXIT_BAD_INPUT and "no such file" in one_line_error(missing)
    unknown = vote(dev_node, model_id, "--proposal", hashes["true"], "--approve", "--base-path", str(tmp_path),
                   "--from", "alice")
    assert unknown.returncode == EXIT_BAD_INPUT and "no GGUF file of model" in one_line_error(unknown)


def test_approving_a_description_whose_size_is_not_the_files_is_refused(dev_node, proposed):
    model_id, hashes, path, _ = proposed
    result = vote(dev_node, model_id, "--proposal", hashes["wrong size"], "--approve", "--gguf", str(path),
                  "--from", "alice")
    assert result.returncode == EXIT_BAD_INPUT and "the proposal says" in one_line_error(result)


def test_with_rival_proposals_open_the_vote_must_name_one(dev_node, proposed):
    model_id, _, path, _ = proposed
    result = vote(dev_node, model_id, "--approve", "--gguf", str(path), "--from", "alice")
    assert result.returncode == EXIT_USAGE and "choose one with --proposal" in one_line_error(result)


def test_an_account_without_bonded_stake_is_refused_by_the_node(dev_node, proposed):
    model_id, hashes, _, _ = proposed
    result = vote(dev_node, model_id, "--proposal", hashes["true"][:16], "--reject", "--from", "bob")
    assert result.returncode == EXIT_REFUSED and "models.NoStake" in one_line_error(result)


def test_approving_the_file_the_proposal_describes_is_submitted(dev_node, proposed):
    model_id, hashes, path, _ = proposed
    result = vote(dev_node, model_id, "--proposal", hashes["true"], "--approve", "--gguf", str(path), "--from", "alice",
                  "--wait", "--output", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["call"] == "vote_model" and document["receipt"]["success"] is True
    assert document["arguments"]["proposal"] == hashes["true"]
    with Client(dev_node.target) as client:
        [proposal] = [p for p in client.list_models().proposals if p.proposal_hash.hex() == hashes["true"]]
    assert list(proposal.approvals) == [True] and proposal.kind == models.ADD


def test_list_models_never_lists_a_proposal_as_a_model_and_keeps_id_order(dev_node, proposed):
    model_id, _, _, _ = proposed
    with Client(dev_node.target) as client:
        registry = client.list_models()
    ids = [model.id for model in registry.models]
    assert ids == sorted(ids) and bytes.fromhex(model_id) not in ids
    assert {proposal.model.id.hex() for proposal in registry.proposals} == {model_id}


# --- the parsers, in process, against arbitrary input --------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=80), st.binary(min_size=32, max_size=32).map(bytes.hex)))
def test_a_model_id_argument_is_64_hex_digits_or_a_usage_error(text):
    from chain.cli.model import _model_id_argument

    try:
        model_id = _model_id_argument(text)
    except CliError as error:
        assert error.exit_code == EXIT_USAGE and "\n" not in str(error) and "64 hex digits" in str(error)
        return
    assert len(model_id) == 32 and model_id.hex() == text.strip().lower()


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=40), st.lists(st.integers(0, 2**33), min_size=1, max_size=20).map(
    lambda values: ",".join(map(str, values)))))
def test_end_tokens_are_at_most_16_u32_ids_or_a_usage_error(text):
    from argparse import Namespace

    from chain.cli.model import _end_tokens

    try:
        tokens = _end_tokens(Namespace(end_tokens=text), None, "")
    except CliError as error:
        assert error.exit_code == EXIT_USAGE and "--end-tokens" in str(error)
        return
    assert 1 <= len(tokens) <= models.MAX_END_TOKENS and all(0 <= token < 2**32 for token in tokens)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=3, unique=True),
       st.one_of(st.none(), st.text(max_size=70), st.integers(0, 2).map(str)))
def test_a_proposal_is_chosen_by_a_unique_hash_prefix_or_refused(hashes, wanted):
    from chain.cli.model import _chosen_proposal
    from proto import state_pb2

    proposals = [state_pb2.ModelProposal(proposal_hash=hash_) for hash_ in hashes]
    try:
        chosen = _chosen_proposal(proposals, bytes(32), wanted)
    except CliError as error:
        assert error.exit_code in (EXIT_USAGE, EXIT_BAD_INPUT) and "\n" not in str(error)
        return
    if wanted is None:
        assert len(hashes) == 1 and chosen is proposals[0]
    else:
        assert chosen.proposal_hash.hex().startswith(wanted.strip().lower()) and len(wanted.strip()) >= 6
