"""The embedded model's registry entry against its GGUF file and engine, and ModelInfo back to thresholds."""

from __future__ import annotations

import dataclasses

import pytest

from inference.errors import InvalidThresholds
from inference.gguf_header import read_header
from inference.model_store import EMBEDDED_NAME
from inference.registration import (
    EMBEDDED_CONTEXT_LENGTH,
    EMBEDDED_END_TOKENS,
    EMBEDDED_MODEL_ID,
    embedded_model_info,
    registered_thresholds,
)
from inference.thresholds import shipped_thresholds
from proto import types_pb2
from runtime.models import model_from_json


def test_the_embedded_registration_describes_the_embedded_file(embedded, engine):
    assert embedded.id == EMBEDDED_MODEL_ID and embedded.name == EMBEDDED_NAME
    assert read_header(embedded.path).context_length == EMBEDDED_CONTEXT_LENGTH == engine.trained_context
    assert tuple(engine.end_of_generation_tokens()) == EMBEDDED_END_TOKENS


def test_the_registered_thresholds_are_the_shipped_calibration():
    # Genesis registers the shipped file's bounds; from then on the chain's ModelInfo is the source.
    registered = registered_thresholds(model_from_json(embedded_model_info(), "genesis"))
    shipped = shipped_thresholds()[EMBEDDED_MODEL_ID]
    assert registered == dataclasses.replace(shipped, calibration="registered on chain")


def test_a_registration_without_usable_thresholds_is_refused_by_name():
    info = model_from_json(embedded_model_info(), "genesis")
    bare = types_pb2.ModelInfo(id=info.id, name=info.name, engine=info.engine)
    with pytest.raises(InvalidThresholds, match="carries no thresholds"):
        registered_thresholds(bare)
    info.thresholds.worst_margin_micro = 5
    with pytest.raises(InvalidThresholds, match="registered thresholds of model d63af87b96e2... are unusable"):
        registered_thresholds(info)
