"""The committed prompt sets: the held-out set has its shape, its size and nothing of the calibration set."""

from __future__ import annotations

import json
from importlib import resources

from inference.result import PROMPT_FORMATS


def _load(name: str) -> dict:
    return json.loads(resources.files("inference").joinpath("data", name).read_text(encoding="utf-8"))


def test_the_held_out_set_has_its_documented_shape():
    document = _load("heldout_prompts.json")
    assert set(document) == {"version", "description", "prompts"}
    assert document["version"] == 1 and document["description"]
    for entry in document["prompts"]:
        assert set(entry) == {"prompt", "format"}
        assert isinstance(entry["prompt"], str) and entry["prompt"].strip()
        assert entry["format"] in PROMPT_FORMATS


def test_the_held_out_set_has_at_least_48_distinct_prompts_in_both_formats():
    entries = _load("heldout_prompts.json")["prompts"]
    assert len(entries) >= 48
    assert len({entry["prompt"] for entry in entries}) == len(entries)
    raw = [entry for entry in entries if entry["format"] == "raw"]
    assert 8 <= len(raw) <= len(entries) // 3


def test_the_held_out_set_shares_no_prompt_with_the_calibration_set():
    calibration = {prompt.strip().casefold() for prompt in _load("calibration_prompts.json")["prompts"]}
    held_out = {entry["prompt"].strip().casefold() for entry in _load("heldout_prompts.json")["prompts"]}
    assert not calibration & held_out


def test_some_held_out_prompts_carry_special_token_text():
    # Chat-template markers inside a prompt must stay plain text (docs/verification.md).
    entries = _load("heldout_prompts.json")["prompts"]
    marked = [entry for entry in entries if "<|im_end|>" in entry["prompt"] or "<|im_start|>" in entry["prompt"]]
    assert len(marked) >= 2 and {entry["format"] for entry in marked} == {"chat", "raw"}
