"""Results as JSON: stable round trips, and InvalidResult (never another exception) for bad input."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inference.errors import InvalidResult
from inference.result import InferenceJob, InferenceResult
from inference.sampler import SamplingParams

MODEL = "ab" * 32

samplings = st.builds(
    SamplingParams,
    temperature_milli=st.integers(0, 100_000),
    top_k=st.integers(0, 100_000),
    top_p_ppm=st.integers(1, 1_000_000),
    seed=st.integers(0, 2**64 - 1),
)


@st.composite
def results(draw) -> InferenceResult:
    tokens = draw(st.lists(st.integers(0, 2**31 - 1), max_size=40))
    job = InferenceJob(
        model=draw(st.text("0123456789abcdef", min_size=64, max_size=64)),
        job_id=draw(st.binary(min_size=32, max_size=32)),
        prompt=draw(st.text(max_size=200)),
        max_tokens=draw(st.integers(1, 10_000)),
        sampling=draw(samplings),
        prompt_format=draw(st.sampled_from(["chat", "raw"])),
    )
    return InferenceResult(
        job=job,
        prompt_tokens=draw(st.integers(0, 10_000)),
        tokens=tuple(tokens),
        text=draw(st.text(max_size=200)),
        logprobs_micronats=tuple(draw(st.lists(st.integers(-(10**9), 0), min_size=len(tokens), max_size=len(tokens)))),
        stop_reason=draw(st.sampled_from(["eos", "length"])),
    )


@settings(max_examples=150, deadline=None)
@given(result=results())
def test_a_result_survives_its_json_round_trip(result):
    text = result.to_json_text()
    assert InferenceResult.from_json_text(text) == result
    assert InferenceResult.from_json(json.loads(text)).to_json_text() == text


def test_the_json_names_the_model_and_lists_token_ids():
    job = InferenceJob(MODEL, bytes(32), "hi", 4, SamplingParams(seed=2**64 - 1))
    document = InferenceResult(job, 5, (1, 2), "ab", (-5, 0), "length").to_json()
    assert document["model"] == MODEL and document["tokens"] == [1, 2] and document["text"] == "ab"
    assert document["sampling"]["seed"] == str(2**64 - 1)
    assert document["logprobs_micronats"] == [-5, 0] and document["job_id"] == "00" * 32


def test_equal_results_have_equal_digests():
    job = InferenceJob(MODEL, bytes(32), "hi", 4)
    first = InferenceResult(job, 5, (1, 2), "ab", (-5, 0), "length")
    assert first.digest() == InferenceResult.from_json_text(first.to_json_text()).digest()
    assert first.digest() != first.replace(tokens=(1, 3)).digest()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(document=json_values)
def test_arbitrary_json_is_refused_with_invalid_result(document):
    with pytest.raises(InvalidResult):
        InferenceResult.from_json(document)


@settings(max_examples=300, deadline=None)
@given(result=results(), data=st.data())
def test_a_damaged_result_document_is_read_or_refused_cleanly(result, data):
    document = result.to_json()
    key = data.draw(st.sampled_from(sorted(document)))
    if data.draw(st.booleans()):
        del document[key]
    else:
        document[key] = data.draw(json_values)
    try:
        InferenceResult.from_json(document)
    except InvalidResult:
        pass


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=300) | st.binary(max_size=300))
def test_garbage_text_is_refused_with_invalid_result(text):
    # No text this short and random is a whole result document: it must be refused, with a reason.
    with pytest.raises(InvalidResult) as refused:
        InferenceResult.from_json_text(text)
    assert str(refused.value)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"version": 2}, "version"),
        ({"tokens": [1, -1]}, "tokens"),
        ({"tokens": [1, True]}, "tokens"),
        ({"logprobs_micronats": [5, 0]}, "logprobs"),
        ({"logprobs_micronats": [0]}, "log-probabilities"),
        ({"stop_reason": "tired"}, "stop_reason"),
        ({"job_id": "zz"}, "hex"),
        ({"job_id": "00"}, "64 lowercase hex digits"),
        ({"model": "short"}, "model"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"sampling": {"temperature_milli": 1, "top_k": 1, "top_p_ppm": 1}}, "seed"),
    ],
)
def test_each_bad_field_is_named_in_the_error(change, message):
    job = InferenceJob(MODEL, bytes(32), "hi", 4)
    document = InferenceResult(job, 5, (1, 2), "ab", (-5, 0), "length").to_json()
    document.update(change)
    with pytest.raises(InvalidResult, match=message):
        InferenceResult.from_json(document)


# -- one byte form (issue 14, item 5) -----------------------------------------------------


def _valid_document() -> dict:
    job = InferenceJob(MODEL, bytes(range(32)), "hi", 4, SamplingParams(seed=7))
    return InferenceResult(job, 5, (1, 2), "ab", (-5, 0), "length").to_json()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"sampling": {"temperature_milli": 0, "top_k": 40, "top_p_ppm": 950_000, "seed": "²"}}, "ASCII digits"),
        ({"sampling": {"temperature_milli": 0, "top_k": 40, "top_p_ppm": 950_000, "seed": "٣"}}, "ASCII digits"),
        ({"job_id": "AB" * 32}, "lowercase hex"),
        ({"job_id": "ab" * 33}, "exactly 64"),
        ({"model": MODEL.upper()}, "model must be exactly 64 lowercase hex"),
        ({"extra": 1}, "unknown field 'extra'"),
        ({"sampling": {"temperature_milli": 0, "top_k": 40, "top_p_ppm": 950_000, "seed": "1", "min_p": 1}},
         "unknown field 'min_p'"),
        ({"prompt": "a\ud800b"}, "prompt is not valid Unicode text"),
        ({"text": "\udfff"}, "text is not valid Unicode text"),
    ],
)
def test_a_result_has_one_form_and_every_other_is_refused_with_its_reason(change, message):
    document = _valid_document()
    document.update(change)
    with pytest.raises(InvalidResult, match=message):
        InferenceResult.from_json(document)


def test_a_key_given_twice_is_refused_not_silently_the_last_one():
    text = _valid_document_text().replace('"max_tokens":4', '"max_tokens":4,"max_tokens":4', 1)
    with pytest.raises(InvalidResult, match="'max_tokens' appears twice"):
        InferenceResult.from_json_text(text)


def test_the_canonical_text_reads_back_as_the_same_result():
    text = _valid_document_text()
    assert InferenceResult.from_json_text(text).to_json_text() == text


def _valid_document_text() -> str:
    job = InferenceJob(MODEL, bytes(range(32)), "hi", 4, SamplingParams(seed=7))
    return InferenceResult(job, 5, (1, 2), "ab", (-5, 0), "length").to_json_text()
