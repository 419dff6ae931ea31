"""The chain's sampler (DESIGN.md section 6): greedy at temperature 0, else Gumbel-max with public noise.

Anyone holding the model can recompute every choice: the noise for (seed, job id, position,
token id) is a pure function of public data, specified in docs/verification.md so that another
language reproduces the uniforms bit for bit. Sampling parameters are integers (milli-units,
parts per million) because the chain's runtime stores no floats.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import numpy as np

from inference.errors import InvalidJob
from proto.job_form import MAX_TEMPERATURE_MILLI

NOISE_DOMAIN = b"inferchain.gumbel.v1"
TEMPERATURE_SCALE = 1000  # temperature_milli / 1000 is T
TOP_P_SCALE = 1_000_000  # top_p_ppm / 1e6 is p
MAX_SEED = (1 << 64) - 1
JOB_ID_BYTES = 32
# With seed_only, the noise is keyed as if every job had this id: the seed alone decides it.
SEED_ONLY_JOB_ID = bytes(JOB_ID_BYTES)

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)
_SHIFT_30 = np.uint64(30)
_SHIFT_27 = np.uint64(27)
_SHIFT_31 = np.uint64(31)
_SHIFT_12 = np.uint64(12)
_TWO_POW_MINUS_53 = 2.0**-53


@dataclass(frozen=True)
class SamplingParams:
    """How a job samples: temperature (milli), top-k (0 = whole vocabulary), top-p (ppm), seed, and whether the
    noise is keyed by the seed alone (`seed_only`: the same seed and request give the same answer in any job)
    rather than by the seed and the job id."""

    temperature_milli: int = 0
    top_k: int = 40
    top_p_ppm: int = 950_000
    seed: int = 0
    seed_only: bool = False

    def __post_init__(self):
        check_sampling(self)

    @property
    def greedy(self) -> bool:
        return self.temperature_milli == 0

    @property
    def temperature(self) -> float:
        return self.temperature_milli / TEMPERATURE_SCALE

    @property
    def top_p(self) -> float:
        return self.top_p_ppm / TOP_P_SCALE

    def to_json(self) -> dict:
        """The parameters as JSON; the 64-bit seed as a decimal string, as in genesis.json; `seed_only` only when
        set (a document without it is keyed by the job id, as every result before the field)."""
        document = {
            "temperature_milli": self.temperature_milli,
            "top_k": self.top_k,
            "top_p_ppm": self.top_p_ppm,
            "seed": str(self.seed),
        }
        if self.seed_only:
            document["seed_only"] = True
        return document

    @classmethod
    def from_decimal(cls, temperature: str | float = 0, top_k: int = 40, top_p: str | float = "0.95",
                     seed: int = 0, seed_only: bool = False) -> "SamplingParams":
        """Parameters from decimal text such as '0.8' (parsed exactly, never through a float)."""
        return cls(
            temperature_milli=decimal_to_fixed(temperature, TEMPERATURE_SCALE, "temperature"),
            top_k=top_k,
            top_p_ppm=decimal_to_fixed(top_p, TOP_P_SCALE, "top-p"),
            seed=seed,
            seed_only=seed_only,
        )

    @classmethod
    def from_message(cls, sampling) -> "SamplingParams":
        """From the chain's Sampling message (proto/types.proto): how every on-chain job is sampled."""
        return cls(sampling.temperature_milli, sampling.top_k, sampling.top_p_ppm, sampling.seed, sampling.seed_only)

    def noise_job_id(self, job_id: bytes) -> bytes:
        """The job id the public noise is keyed by: the job's own, or SEED_ONLY_JOB_ID with seed_only."""
        return SEED_ONLY_JOB_ID if self.seed_only else job_id


def check_sampling(params: SamplingParams) -> None:
    """Raise InvalidJob unless every parameter is an integer in its range."""
    fields = ("temperature_milli", "top_k", "top_p_ppm", "seed")
    for name in fields:
        value = getattr(params, name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidJob(f"sampling {name} must be an integer, got {value!r}")
    if not 0 <= params.temperature_milli <= MAX_TEMPERATURE_MILLI:
        raise InvalidJob(f"temperature must be between 0 and {MAX_TEMPERATURE_MILLI / 1000:g}")
    if params.top_k < 0:
        raise InvalidJob("top-k must be 0 (whole vocabulary) or positive")
    if not 0 < params.top_p_ppm <= TOP_P_SCALE:
        raise InvalidJob("top-p must be greater than 0 and at most 1")
    if not 0 <= params.seed <= MAX_SEED:
        raise InvalidJob("seed must be an unsigned 64-bit integer")
    if not isinstance(params.seed_only, bool):
        raise InvalidJob(f"sampling seed_only must be true or false, got {params.seed_only!r}")


def decimal_to_fixed(value: str | float | int, scale: int, what: str) -> int:
    """Exact fixed point of a decimal ('0.95' -> 950000 at scale 1e6); too many digits is an error."""
    try:
        number = Decimal(str(value)) * scale
    except InvalidOperation:
        raise InvalidJob(f"{what} {value!r} is not a number") from None
    if not number.is_finite() or number != number.to_integral_value():
        raise InvalidJob(f"{what} {value!r} has more precision than 1/{scale}")
    return int(number)


# -- public noise ----------------------------------------------------------------------------


def position_key(seed: int, job_id: bytes, position: int) -> tuple[np.uint64, np.uint64]:
    """The two 64-bit keys of one output position: blake2b-256 of domain, seed, job id, position."""
    if len(job_id) != JOB_ID_BYTES:
        raise InvalidJob(f"job id must be {JOB_ID_BYTES} bytes, got {len(job_id)}")
    message = NOISE_DOMAIN + struct.pack("<Q", seed) + job_id + struct.pack("<Q", position)
    digest = hashlib.blake2b(message, digest_size=32).digest()
    key_0, key_1 = struct.unpack_from("<QQ", digest)
    return np.uint64(key_0), np.uint64(key_1)


def _mix64(z: np.ndarray) -> np.ndarray:
    # SplitMix64's finaliser (Steele, Lea, Flood 2014): a bijection on 64-bit words with full
    # avalanche; numpy uint64 arithmetic wraps modulo 2**64 as the specification requires.
    z = (z ^ (z >> _SHIFT_30)) * _MIX_1
    z = (z ^ (z >> _SHIFT_27)) * _MIX_2
    return z ^ (z >> _SHIFT_31)


def noise_words(seed: int, job_id: bytes, position: int, token_ids: np.ndarray) -> np.ndarray:
    """The 64-bit noise word of every token id at one position (vectorised, no loop per token)."""
    key_0, key_1 = position_key(seed, job_id, position)
    ids = np.asarray(token_ids, dtype=np.uint64)
    return _mix64(_mix64((ids * _GOLDEN) ^ key_0) ^ key_1)


def uniforms(seed: int, job_id: bytes, position: int, token_ids: np.ndarray) -> np.ndarray:
    """Uniforms in (0, 1): (2 * (word >> 12) + 1) / 2**53, exact in float64."""
    words = noise_words(seed, job_id, position, token_ids)
    numerators = ((words >> _SHIFT_12) << np.uint64(1)) | np.uint64(1)
    return numerators.astype(np.float64) * _TWO_POW_MINUS_53


def gumbel_noise(seed: int, job_id: bytes, position: int, token_ids: np.ndarray) -> np.ndarray:
    """g = -ln(-ln(u)) for every token id at one position."""
    return -np.log(-np.log(uniforms(seed, job_id, position, token_ids)))


# -- candidates and choice -------------------------------------------------------------------


def scaled_logits(logits: np.ndarray, params: SamplingParams) -> np.ndarray:
    """float64(logits) / T, the quantity top-k, top-p and the Gumbel scores are taken over."""
    return np.asarray(logits, dtype=np.float64) / params.temperature


def candidates(scaled: np.ndarray, params: SamplingParams) -> np.ndarray:
    """Token ids kept by top-k then top-p, in order of decreasing scaled logit (ties: lower id)."""
    ranked = _top_k_ranked(scaled, params.top_k)
    return ranked[: _top_p_count(scaled[ranked], params)]


def _top_p_count(values: np.ndarray, params: SamplingParams) -> int:
    # How many of the ranked tokens (scaled logits `values`, decreasing) top-p keeps: the
    # shortest prefix whose probability mass reaches p, at least one token.
    if params.top_p_ppm >= TOP_P_SCALE:
        return len(values)
    cumulative = np.cumsum(np.exp(values - values[0]))
    kept = int(np.searchsorted(cumulative, params.top_p * cumulative[-1], side="left")) + 1
    return min(kept, len(values))


def _top_k_ranked(values: np.ndarray, top_k: int) -> np.ndarray:
    # Any array ordered like the scaled logits works: the raw float32 logits rank the same way,
    # because dividing by T > 0 in doubles keeps distinct float32 values distinct and in order.
    vocabulary = values.shape[0]
    if 0 < top_k < vocabulary:
        pool = _at_least_kth_largest(values, top_k)  # ties at the boundary are settled by id below
    else:
        pool = np.arange(vocabulary)
    order = np.lexsort((pool, -values[pool]))
    return pool[order][: top_k if top_k > 0 else vocabulary]


def _at_least_kth_largest(values: np.ndarray, top_k: int) -> np.ndarray:
    # Ids of every value >= the k-th largest. The k largest nearly always lie within a few units
    # of the maximum: partitioning only those avoids copying the whole vocabulary per token
    # (~0.2 ms of a 12 ms token). Exact either way: a pool of all values above a threshold that
    # holds at least k of them contains the k largest and every tie of the k-th.
    peak = values.max()
    for width in (8.0, 32.0):
        pool = np.flatnonzero(values >= peak - width)
        if len(pool) >= top_k:
            boundary = np.partition(values[pool], len(pool) - top_k)[len(pool) - top_k]
            return pool[values[pool] >= boundary]
    boundary = np.partition(values, values.shape[0] - top_k)[values.shape[0] - top_k]
    return np.flatnonzero(values >= boundary)


@dataclass(frozen=True)
class CandidateBands:
    """The candidate set as a verifier sees it, with tolerance for honest numerical drift.

    `robust`: tokens that stay candidates even when their own logit is lowered by the tolerance
    (the only rivals a claimed token is scored against). `possible`: tokens that become
    candidates when their own logit is raised by the tolerance (a claimed token outside it is
    one no honest sampler picks).
    """

    robust: np.ndarray
    possible: np.ndarray


def candidate_bands(scaled: np.ndarray, params: SamplingParams, logit_tolerance: float,
                    rival_tolerance: float | None = None) -> CandidateBands:
    """Robust and possible candidates when any one token's logit may be off by a tolerance.

    `possible` allows logit_tolerance; `robust` allows rival_tolerance (the same when not given):
    a verifier can be generous about what an honest sampler might have picked and strict about
    which tokens it must have weighed.
    """
    vocabulary = scaled.shape[0]
    shift = logit_tolerance / params.temperature
    rival_shift = shift if rival_tolerance is None else rival_tolerance / params.temperature
    top_k = params.top_k if 0 < params.top_k < vocabulary else vocabulary
    ranked = _top_k_ranked(scaled, top_k)
    values = scaled[ranked]
    if top_k < vocabulary:
        outside_best = np.partition(scaled, vocabulary - top_k - 1)[vocabulary - top_k - 1]
        robust_k = values - rival_shift > outside_best
        entrants = np.setdiff1d(np.flatnonzero(scaled + shift >= values[-1]), ranked, assume_unique=True)
    else:
        robust_k = np.ones(len(ranked), dtype=bool)
        entrants = np.zeros(0, dtype=ranked.dtype)
    if params.top_p_ppm >= TOP_P_SCALE:
        return CandidateBands(robust=ranked[robust_k], possible=np.concatenate([ranked, entrants]))
    robust_p, possible_p = _top_p_bands(values, params.top_p, shift)
    if rival_shift != shift:
        robust_p = _top_p_bands(values, params.top_p, rival_shift)[0]
    possible_entrants = _top_p_entrants(values, scaled[entrants], params.top_p, shift)
    return CandidateBands(
        robust=ranked[robust_k & robust_p],
        possible=np.concatenate([ranked[possible_p], entrants[possible_entrants]]),
    )


def _top_p_bands(values: np.ndarray, p: float, shift: float) -> tuple[np.ndarray, np.ndarray]:
    # Weights relative to the best token; a token is kept when the mass before it is below
    # p x total. Lowering a token by `shift` puts every token above value - shift before it;
    # raising it leaves only the tokens above value + shift before it.
    weights = np.exp(values - values[0])
    cumulative = np.cumsum(weights)
    total = cumulative[-1]
    descending = -values
    above_lowered = np.searchsorted(descending, -(values - shift), side="right")  # counts the token itself
    before_lowered = cumulative[above_lowered - 1] - weights
    robust = before_lowered < p * (total - weights + weights * np.exp(-shift))
    above_raised = np.searchsorted(descending, -(values + shift), side="left")
    before_raised = np.where(above_raised > 0, cumulative[np.maximum(above_raised - 1, 0)], 0.0)
    possible = before_raised < p * (total - weights + weights * np.exp(shift))
    return robust, possible


def _top_p_entrants(values: np.ndarray, entrant_values: np.ndarray, p: float, shift: float) -> np.ndarray:
    # A token just outside the top k, raised by `shift`, takes the k-th token's place.
    if entrant_values.size == 0:
        return np.zeros(0, dtype=bool)
    weights = np.exp(values - values[0])
    cumulative = np.cumsum(weights)
    raised = entrant_values + shift
    above = np.searchsorted(-values, -raised, side="left")
    before = np.where(above > 0, cumulative[np.maximum(above - 1, 0)], 0.0)
    before = np.minimum(before, cumulative[-1] - weights[-1])  # the k-th token has left
    total = cumulative[-1] - weights[-1] + np.exp(raised - values[0])
    return before < p * total


def choose_token(logits: np.ndarray, params: SamplingParams, job_id: bytes, position: int) -> int:
    """The chain's choice at one output position, from that position's logits."""
    if params.greedy:
        return int(np.argmax(logits))  # argmax returns the first, i.e. lowest, id among ties
    ids, scores = candidate_scores(logits, params, job_id, position)
    best = np.flatnonzero(scores == scores.max())
    return int(ids[best].min())


def candidate_scores(logits: np.ndarray, params: SamplingParams, job_id: bytes,
                     position: int) -> tuple[np.ndarray, np.ndarray]:
    """A sampled position's candidates (top-k, then top-p) and their Gumbel scores (scaled logit + noise)."""
    # Rank on the raw logits and scale only the top k: the same result as scaling all V
    # logits first (see _top_k_ranked), at a fraction of the cost per generated token.
    ranked = _top_k_ranked(logits, params.top_k)
    values = np.asarray(logits[ranked], dtype=np.float64) / params.temperature
    kept = _top_p_count(values, params)
    ids, values = ranked[:kept], values[:kept]
    return ids, values + gumbel_noise(params.seed, params.noise_job_id(job_id), position, ids)
