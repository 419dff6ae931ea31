"""Results as JSON: stable round trips, and InvalidResult (never another exception) for bad input."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inference.errors import InvalidJob, InvalidResult
from inference.result import InferenceJob, InferenceResult
from inference.sampler import SamplingParams
from proto import digest

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


# -- the output digest (issue 14, item 6) ---------------------------------------------------

VECTOR_JOB = InferenceJob("ab" * 32, bytes(range(32)), "Hi", 4, SamplingParams(800, 40, 950_000, 42), "chat")
VECTOR = InferenceResult(VECTOR_JOB, 31, (28120, 17, 2), "\u00e9!", (-1, -2, -3), "eos")
# The worked vector printed in docs/verification.md ("The output digest"), field by field.
VECTOR_MESSAGE = bytes.fromhex(
    "696e666572636861696e2e6f75747075742e7631"  # "inferchain.output.v1"
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"  # job id
    "abababababababababababababababababababababababababababababababab"  # model id
    "0400000000000000" "63686174"  # prompt_format "chat"
    "0200000000000000" "4869"  # prompt "Hi"
    "0400000000000000"  # max_tokens 4
    "2003000000000000"  # temperature_milli 800
    "2800000000000000"  # top_k 40
    "f07e0e0000000000"  # top_p_ppm 950000
    "2a00000000000000"  # seed 42
    "1f00000000000000"  # prompt_tokens 31
    "0300000000000000" "d86d000000000000" "1100000000000000" "0200000000000000"  # 3 tokens
    "0300000000000000" "c3a921"  # text "é!"
    "0300000000000000" "656f73"  # stop_reason "eos"
)
VECTOR_DIGEST = "75147ff9f8a1748bc77cf125e61effc7fe15da0398698257bc7d50fe42c9ded0"


def test_the_output_digest_matches_the_documented_vector():
    assert VECTOR.output_digest_message() == VECTOR_MESSAGE
    assert VECTOR.output_digest().hex() == VECTOR_DIGEST
    assert hashlib.blake2b(VECTOR_MESSAGE, digest_size=32).hexdigest() == VECTOR_DIGEST


def test_the_documented_vector_is_the_one_in_the_docs():
    docs = (Path(__file__).parents[2] / "docs" / "verification.md").read_text(encoding="utf-8")
    assert VECTOR_MESSAGE.hex() in docs.replace("\n", "")
    assert VECTOR_DIGEST in docs


def test_the_output_digest_ignores_log_probabilities():
    assert VECTOR.replace(logprobs_micronats=(0, -999_999, -5)).output_digest() == VECTOR.output_digest()


@pytest.mark.parametrize(
    "change",
    [
        {"tokens": (28120, 17, 0)},
        {"tokens": (28120, 17, 2, 2), "logprobs_micronats": (-1, -2, -3, -4)},
        {"tokens": (17, 28120, 2)},
        {"text": "e!"},
        {"text": "\u00e9! "},
        {"stop_reason": "length"},
        {"prompt_tokens": 32},
        {"job": replace(VECTOR_JOB, model="ac" * 32)},
        {"job": replace(VECTOR_JOB, job_id=bytes(range(1, 33)))},
        {"job": replace(VECTOR_JOB, prompt="Hi ")},
        {"job": replace(VECTOR_JOB, prompt_format="raw")},
        {"job": replace(VECTOR_JOB, max_tokens=5)},
        {"job": replace(VECTOR_JOB, sampling=SamplingParams(801, 40, 950_000, 42))},
        {"job": replace(VECTOR_JOB, sampling=SamplingParams(800, 41, 950_000, 42))},
        {"job": replace(VECTOR_JOB, sampling=SamplingParams(800, 40, 950_001, 42))},
        {"job": replace(VECTOR_JOB, sampling=SamplingParams(800, 40, 950_000, 43))},
    ],
)
def test_the_output_digest_changes_with_every_job_and_output_field(change):
    assert VECTOR.replace(**change).output_digest() != VECTOR.output_digest()


def test_length_prefixes_keep_the_prompt_and_the_text_apart():
    # "Hi" + "é!" and "Hié" + "!" are the same bytes run together; the prefixes tell them apart.
    moved = VECTOR.replace(job=replace(VECTOR_JOB, prompt="Hi\u00e9"), text="!")
    assert moved.output_digest() != VECTOR.output_digest()


@settings(max_examples=100, deadline=None)
@given(result=results())
def test_the_output_digest_survives_the_json_round_trip(result):
    assert InferenceResult.from_json_text(result.to_json_text()).output_digest() == result.output_digest()


def test_counts_beyond_64_bits_are_refused_so_every_result_has_a_digest():
    with pytest.raises(InvalidJob, match="max_tokens"):
        replace(VECTOR_JOB, max_tokens=1 << 64)
    with pytest.raises(InvalidJob, match="top-k"):
        replace(VECTOR_JOB, sampling=SamplingParams(800, 1 << 64, 950_000, 42))
    with pytest.raises(InvalidResult, match="prompt_tokens"):
        VECTOR.replace(prompt_tokens=1 << 64)



def test_the_result_digest_is_the_one_recipe_every_layer_imports():
    # proto/digest.py is the recipe's one home: the runtime checks reveals with it.
    job, sampling = VECTOR.job, VECTOR.job.sampling
    shared = digest.output_digest(
        job_id=job.job_id, model=bytes.fromhex(job.model), prompt_format=job.prompt_format, prompt=job.prompt,
        max_tokens=job.max_tokens, temperature_milli=sampling.temperature_milli, top_k=sampling.top_k,
        top_p_ppm=sampling.top_p_ppm, seed=sampling.seed, prompt_tokens=VECTOR.prompt_tokens,
        tokens=VECTOR.tokens, text=VECTOR.text, stop_reason=VECTOR.stop_reason,
    )
    assert shared.hex() == VECTOR_DIGEST == VECTOR.output_digest().hex()


@pytest.mark.parametrize("field", ["prompt", "text"])
def test_a_lone_surrogate_has_no_digest_and_is_refused_by_name(field):
    broken = "ok\ud800"
    result = VECTOR.replace(job=replace(VECTOR_JOB, prompt=broken)) if field == "prompt" else VECTOR.replace(text=broken)
    with pytest.raises(InvalidResult, match=f"{field} is not valid Unicode text .a lone surrogate at character 2"):
        result.output_digest()

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
        ({"sampling": {"temperature_milli": 0, "top_k": 40, "top_p_ppm": 950_000, "seed": "1", "seed_only": 1}},
         "seed_only must be true or false"),
        ({"sampling": {"temperature_milli": 0, "top_k": 40, "top_p_ppm": 950_000, "seed": "1",
                       "seed_only": "true"}}, "seed_only must be true or false"),
        ({"prompt": "a\ud800b"}, "prompt is not valid Unicode text"),
        ({"text": "\udfff"}, "text is not valid Unicode text"),
    ],
)
def test_a_result_has_one_form_and_every_other_is_refused_with_its_reason(change, message):
    document = _valid_document()
    document.update(change)
    with pytest.raises(InvalidResult, match=message):
        InferenceResult.from_json(document)


def test_seed_only_survives_the_json_round_trip_and_is_written_only_when_set():
    job = InferenceJob(MODEL, bytes(range(32)), "hi", 4, SamplingParams(temperature_milli=700, seed=7, seed_only=True))
    result = InferenceResult(job, 5, (1, 2), "ab", (-5, 0), "length")
    assert result.to_json()["sampling"]["seed_only"] is True
    assert InferenceResult.from_json_text(result.to_json_text()) == result
    assert "seed_only" not in InferenceResult.from_json(_valid_document()).to_json()["sampling"]


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
