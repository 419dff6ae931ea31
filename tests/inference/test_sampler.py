"""The chain's sampler: pinned public noise, the documented recipe, candidates and choices."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inference.errors import InvalidJob
from inference.sampler import (
    NOISE_DOMAIN,
    SamplingParams,
    candidate_bands,
    candidates,
    choose_token,
    decimal_to_fixed,
    gumbel_noise,
    noise_words,
    position_key,
    scaled_logits,
    uniforms,
)

JOB_ID = bytes(range(32))
MASK = (1 << 64) - 1


def reference_word(seed: int, job_id: bytes, position: int, token: int) -> int:
    """docs/verification.md's recipe, written again with Python integers, one token at a time."""
    digest = hashlib.blake2b(
        NOISE_DOMAIN + struct.pack("<Q", seed) + job_id + struct.pack("<Q", position), digest_size=32
    ).digest()
    key_0, key_1 = struct.unpack_from("<QQ", digest)

    def mix(z: int) -> int:
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    return mix(mix(((token * 0x9E3779B97F4A7C15) & MASK) ^ key_0) ^ key_1)


def test_noise_words_match_pinned_values():
    ids = np.array([0, 1, 2, 49151])
    assert [int(word) for word in noise_words(42, JOB_ID, 0, ids)] == [
        0x63F91872DCA6305E, 0xA44F8149E595AD6E, 0x09B1CE77E1680E68, 0x2DE7A62EED3D3AC5,
    ]
    assert [int(word) for word in noise_words(2**64 - 1, bytes(32), 7, ids)] == [
        0x7072C380B83ACC57, 0x039D932B3F1F9184, 0xFE1B3EEEBDAD25BB, 0x7DC9B6CE3A1A7CF3,
    ]


def test_position_key_is_blake2b_of_the_documented_message():
    assert [int(key) for key in position_key(42, JOB_ID, 0)] == [0xD38158D5CE721BE2, 0x6AFCF3D00CF90E52]


def test_uniforms_and_gumbel_noise_match_pinned_values():
    ids = np.array([0, 1, 2, 49151])
    assert uniforms(42, JOB_ID, 0, ids).tolist() == [
        0.39051964573140985, 0.6418381505405565, 0.037869362132738726, 0.17931593557044756,
    ]
    # g goes through two logarithms; libms agree to an ulp or so, far below any verifier bound.
    assert gumbel_noise(42, JOB_ID, 0, ids) == pytest.approx(
        [0.06158076436627328, 0.8132398861183477, -1.185894231522348, -0.5415135120832462], rel=1e-14
    )


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**64 - 1),
    job_id=st.binary(min_size=32, max_size=32),
    position=st.integers(0, 2**32),
    tokens=st.lists(st.integers(0, 2**31 - 1), min_size=1, max_size=20),
)
def test_vectorised_noise_equals_the_recipe_token_by_token(seed, job_id, position, tokens):
    words = noise_words(seed, job_id, position, np.array(tokens))
    assert [int(word) for word in words] == [reference_word(seed, job_id, position, t) for t in tokens]
    for word, u in zip(words, uniforms(seed, job_id, position, np.array(tokens))):
        # u = (2 * (word >> 12) + 1) / 2**53, exactly: an odd numerator over 2**53.
        assert u * 2**53 == 2 * (int(word) >> 12) + 1
        assert 0.0 < u < 1.0


def test_noise_rejects_a_job_id_of_the_wrong_length():
    with pytest.raises(InvalidJob, match="32 bytes"):
        uniforms(1, b"short", 0, np.arange(3))


def test_greedy_takes_the_argmax_and_ties_go_to_the_lowest_id():
    logits = np.array([0.5, 2.0, 1.0, 2.0], dtype=np.float32)
    assert choose_token(logits, SamplingParams(), JOB_ID, 0) == 1


def test_top_k_keeps_the_k_largest_in_order_with_ties_to_lower_ids():
    params = SamplingParams(temperature_milli=1000, top_k=3, top_p_ppm=1_000_000)
    scaled = scaled_logits(np.array([1.0, 3.0, 2.0, 3.0, 0.0], dtype=np.float32), params)
    assert candidates(scaled, params).tolist() == [1, 3, 2]


def test_top_p_keeps_the_shortest_prefix_reaching_the_mass():
    params = SamplingParams(temperature_milli=1000, top_k=0, top_p_ppm=700_000)
    probabilities = np.array([0.5, 0.3, 0.15, 0.05])
    scaled = scaled_logits(np.log(probabilities).astype(np.float32), params)
    assert candidates(scaled, params).tolist() == [0, 1]
    tiny = SamplingParams(temperature_milli=1000, top_k=0, top_p_ppm=1)
    assert candidates(scaled, tiny).tolist() == [0]


def test_top_k_zero_means_the_whole_vocabulary():
    params = SamplingParams(temperature_milli=500, top_k=0, top_p_ppm=1_000_000)
    assert len(candidates(scaled_logits(np.zeros(50, dtype=np.float32), params), params)) == 50


def test_gumbel_max_samples_the_softmax_distribution():
    probabilities = np.array([0.5, 0.25, 0.15, 0.1])
    logits = np.log(probabilities).astype(np.float32)
    params = SamplingParams(temperature_milli=1000, top_k=0, top_p_ppm=1_000_000, seed=7)
    draws = np.bincount([choose_token(logits, params, JOB_ID, position) for position in range(4000)], minlength=4)
    # Four standard deviations of a binomial count: a wrong recipe misses by far more.
    for count, probability in zip(draws, probabilities):
        assert abs(count - 4000 * probability) < 4 * math.sqrt(4000 * probability * (1 - probability))


def test_sampling_depends_on_seed_and_job_id():
    logits = np.zeros(1000, dtype=np.float32)
    params = SamplingParams(temperature_milli=1000, top_k=0, top_p_ppm=1_000_000, seed=1)
    first = [choose_token(logits, params, JOB_ID, position) for position in range(20)]
    assert first == [choose_token(logits, params, JOB_ID, position) for position in range(20)]
    other_seed = SamplingParams(temperature_milli=1000, top_k=0, top_p_ppm=1_000_000, seed=2)
    assert first != [choose_token(logits, other_seed, JOB_ID, position) for position in range(20)]
    assert first != [choose_token(logits, params, bytes(32), position) for position in range(20)]


def test_with_seed_only_the_seed_alone_decides_the_noise():
    logits = np.zeros(1000, dtype=np.float32)
    params = SamplingParams(temperature_milli=1000, top_k=0, top_p_ppm=1_000_000, seed=1, seed_only=True)
    first = [choose_token(logits, params, JOB_ID, position) for position in range(20)]
    assert first == [choose_token(logits, params, bytes(range(32, 64)), position) for position in range(20)]
    # The same noise as the job-id recipe for the job id of 32 zero bytes (docs/verification.md, "The sampler").
    keyed = dataclasses.replace(params, seed_only=False)
    assert first == [choose_token(logits, keyed, bytes(32), position) for position in range(20)]
    assert first != [choose_token(logits, keyed, JOB_ID, position) for position in range(20)]
    assert first != [choose_token(logits, dataclasses.replace(params, seed=2), JOB_ID, position) for position in range(20)]
    assert [hex(int(key)) for key in position_key(42, params.noise_job_id(JOB_ID), 0)] == [
        "0x6c520e901d4d8519", "0x5490ebfc56309b95"]


def test_seed_only_is_written_only_when_set_and_must_be_a_boolean():
    assert "seed_only" not in SamplingParams(seed=3).to_json()
    assert SamplingParams(seed=3, seed_only=True).to_json()["seed_only"] is True
    with pytest.raises(InvalidJob, match="seed_only must be true or false"):
        SamplingParams(seed=3, seed_only=1)


def test_decimal_parameters_are_parsed_exactly():
    assert decimal_to_fixed("0.95", 1_000_000, "top-p") == 950_000
    assert SamplingParams.from_decimal("0.8", 40, "0.95", 3).temperature_milli == 800
    with pytest.raises(InvalidJob, match="precision"):
        decimal_to_fixed("0.1234", 1000, "temperature")
    with pytest.raises(InvalidJob, match="not a number"):
        decimal_to_fixed("warm", 1000, "temperature")


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"temperature_milli": -1}, "temperature"),
        ({"top_k": -5}, "top-k"),
        ({"top_p_ppm": 0}, "top-p"),
        ({"top_p_ppm": 1_000_001}, "top-p"),
        ({"seed": 2**64}, "seed"),
        ({"seed": 1.5}, "integer"),
    ],
)
def test_out_of_range_parameters_are_refused(changes, message):
    with pytest.raises(InvalidJob, match=message):
        SamplingParams(**{"temperature_milli": 800, **changes})


def test_candidate_bands_give_boundary_tokens_the_benefit_of_the_doubt():
    params = SamplingParams(temperature_milli=1000, top_k=3, top_p_ppm=1_000_000)
    scaled = scaled_logits(np.array([5.0, 4.0, 3.0, 2.9, 1.0, 0.0], dtype=np.float32), params)
    bands = candidate_bands(scaled, params, logit_tolerance=0.5)
    # Token 2 is third, 0.1 above token 3: either could be in an honest top-3.
    assert bands.robust.tolist() == [0, 1]
    assert sorted(bands.possible.tolist()) == [0, 1, 2, 3]


def test_candidate_bands_at_the_top_p_boundary():
    params = SamplingParams(temperature_milli=1000, top_k=0, top_p_ppm=700_000)
    scaled = scaled_logits(np.log(np.array([0.5, 0.21, 0.19, 0.1])).astype(np.float32), params)
    bands = candidate_bands(scaled, params, logit_tolerance=0.5)
    assert candidates(scaled, params).tolist() == [0, 1]  # 0.71 of the mass is before token 2
    # Token 1 lowered by 0.5 falls behind token 2 and out of the set: not a sure rival.
    assert bands.robust.tolist() == [0]
    # Token 2 raised by 0.5 passes token 1 and gets in; token 3 does not.
    assert sorted(bands.possible.tolist()) == [0, 1, 2]


@settings(max_examples=300, deadline=None)
@given(
    logits=st.lists(st.floats(-20, 20, width=32), min_size=2, max_size=60),
    temperature_milli=st.integers(100, 2000),
    top_k=st.integers(0, 70),
    top_p_ppm=st.integers(1, 1_000_000),
    tolerance=st.floats(0.0, 2.0),
)
def test_robust_candidates_are_candidates_and_candidates_are_possible(logits, temperature_milli, top_k, top_p_ppm,
                                                                         tolerance):
    params = SamplingParams(temperature_milli=temperature_milli, top_k=top_k, top_p_ppm=top_p_ppm)
    scaled = scaled_logits(np.array(logits, dtype=np.float32), params)
    exact = set(candidates(scaled, params).tolist())
    bands = candidate_bands(scaled, params, tolerance)
    assert set(bands.robust.tolist()) <= exact <= set(bands.possible.tolist())
    # The verifier's split: generous about what is possible, strict about rivals. A tighter rival
    # tolerance only adds rivals, all of them candidates, and leaves the possible set alone.
    split = candidate_bands(scaled, params, tolerance, tolerance / 4)
    assert set(bands.robust.tolist()) <= set(split.robust.tolist()) <= exact
    assert set(split.possible.tolist()) == set(bands.possible.tolist())


def reference_choice(logits: np.ndarray, params: SamplingParams, job_id: bytes, position: int) -> int:
    """docs/verification.md section 3 step by step: scale all logits, top-k, top-p, noise, argmax."""
    scaled = scaled_logits(logits, params)
    ids = candidates(scaled, params)
    scores = scaled[ids] + gumbel_noise(params.seed, job_id, position, ids)
    return int(ids[np.flatnonzero(scores == scores.max())].min())


@settings(max_examples=300, deadline=None)
@given(
    logits=st.lists(st.sampled_from([-3.0, -1.0, 0.0, 0.5, 0.5000001, 2.0, 7.25]) | st.floats(-30, 30, width=32),
                    min_size=2, max_size=80),
    temperature_milli=st.integers(1, 3000),
    top_k=st.integers(0, 90),
    top_p_ppm=st.integers(1, 1_000_000),
    position=st.integers(0, 1000),
)
def test_the_fast_sampler_equals_the_specification(logits, temperature_milli, top_k, top_p_ppm, position):
    params = SamplingParams(temperature_milli=temperature_milli, top_k=top_k, top_p_ppm=top_p_ppm, seed=3)
    array = np.array(logits, dtype=np.float32)
    assert choose_token(array, params, JOB_ID, position) == reference_choice(array, params, JOB_ID, position)


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(st.floats(-1000, 1000, width=32) | st.sampled_from([0.0, 1.0, 1.0, 50.0]), min_size=2,
                    max_size=200),
    top_k=st.integers(1, 200),
)
def test_top_k_ranking_equals_a_full_sort_by_value_then_id(values, top_k):
    array = np.array(values, dtype=np.float32)
    naive = sorted(range(len(values)), key=lambda index: (-array[index], index))[:top_k]
    params = SamplingParams(temperature_milli=1000, top_k=top_k, top_p_ppm=1_000_000)
    assert candidates(array.astype(np.float64), params).tolist() == naive
