"""Jobs and results as frozen dataclasses with a stable JSON form (the job market puts them on chain).

Log-probabilities are fixed-point integers in micro-nats (LOGPROB_SCALE per nat). Commitments and
agreement use the output digest, which hashes the job and what honest executors must agree on exactly
(tokens, text, stop reason) and leaves the log-probabilities out: their last micro-nat depends on
summation order (docs/verification.md, "The output digest").
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Mapping

from inference.errors import InferenceError, InvalidJob, InvalidResult
from inference.sampler import JOB_ID_BYTES, SamplingParams
from proto.digest import output_digest_message, text_field
from proto.job_form import PROMPT_FORMATS, STOP_REASONS

LOGPROB_SCALE = 1_000_000  # micro-nats per nat
RESULT_VERSION = 1
MAX_TOKEN_ID = (1 << 31) - 1
MAX_U64 = (1 << 64) - 1  # every integer in the output digest is an unsigned 64-bit field


@dataclass(frozen=True)
class InferenceJob:
    """What to run: model id, job id, prompt (and whether the chat template wraps it), limits, sampling."""

    model: str
    job_id: bytes
    prompt: str
    max_tokens: int
    sampling: SamplingParams = SamplingParams()
    prompt_format: str = "chat"

    def __post_init__(self):
        _check_job(self)

    @property
    def job_id_hex(self) -> str:
        return self.job_id.hex()

    def to_json(self) -> dict:
        """The job as a JSON document."""
        return {
            "model": self.model,
            "job_id": self.job_id.hex(),
            "prompt": self.prompt,
            "prompt_format": self.prompt_format,
            "max_tokens": self.max_tokens,
            "sampling": self.sampling.to_json(),
        }

    @classmethod
    def from_json(cls, document: Any) -> "InferenceJob":
        """Read a job document, raising InvalidResult with the first problem found."""
        if not isinstance(document, Mapping):
            raise InvalidResult("a job must be a JSON object")
        _only_fields(document, JOB_FIELDS, "a job")
        return _job_from_json(document)


@dataclass(frozen=True)
class InferenceResult:
    """A job's claimed output: token ids, text, log-probabilities (micro-nats) and stop reason."""

    job: InferenceJob
    prompt_tokens: int
    tokens: tuple[int, ...]
    text: str
    logprobs_micronats: tuple[int, ...]
    stop_reason: str

    def __post_init__(self):
        if len(self.logprobs_micronats) != len(self.tokens):
            raise InvalidResult(
                f"result has {len(self.tokens)} tokens but {len(self.logprobs_micronats)} log-probabilities"
            )
        if self.stop_reason not in STOP_REASONS:
            raise InvalidResult(f"stop_reason must be one of {', '.join(STOP_REASONS)}")
        if not _is_u64(self.prompt_tokens):
            raise InvalidResult("prompt_tokens must be an integer from 0 to 2^64 - 1")

    def to_json(self) -> dict:
        """The result as one flat JSON document (job fields, then the output)."""
        document = self.job.to_json()
        document.update(
            {
                "version": RESULT_VERSION,
                "prompt_tokens": self.prompt_tokens,
                "tokens": list(self.tokens),
                "text": self.text,
                "logprobs_micronats": list(self.logprobs_micronats),
                "stop_reason": self.stop_reason,
            }
        )
        return document

    def to_json_text(self) -> str:
        """Canonical JSON text: sorted keys, no spaces; equal results give equal bytes."""
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    def output_digest(self) -> bytes:
        """blake2b-256 of output_digest_message(): what commitments hash and agreement compares."""
        return hashlib.blake2b(self.output_digest_message(), digest_size=32).digest()

    def output_digest_message(self) -> bytes:
        """The job and the output (no log-probabilities) in the byte form of proto/digest.py."""
        job, sampling = self.job, self.job.sampling
        for name, text in (("prompt_format", job.prompt_format), ("prompt", job.prompt),
                           ("text", self.text), ("stop_reason", self.stop_reason)):
            _check_unicode(text, name)
        return output_digest_message(
            job_id=job.job_id,
            model=bytes.fromhex(job.model),
            prompt_format=job.prompt_format,
            prompt=job.prompt,
            max_tokens=job.max_tokens,
            temperature_milli=sampling.temperature_milli,
            top_k=sampling.top_k,
            top_p_ppm=sampling.top_p_ppm,
            seed=sampling.seed,
            prompt_tokens=self.prompt_tokens,
            tokens=self.tokens,
            text=self.text,
            stop_reason=self.stop_reason,
        )

    @classmethod
    def from_json(cls, document: Any) -> "InferenceResult":
        """Read a result document, raising InvalidResult with the first problem found."""
        return _result_from_json(document)

    @classmethod
    def from_json_text(cls, text: str | bytes) -> "InferenceResult":
        """Parse JSON text into a result, raising InvalidResult when it is not one."""
        try:
            document = json.loads(text, object_pairs_hook=refuse_duplicate_keys)
        except (ValueError, RecursionError) as error:
            raise InvalidResult(f"not JSON: {error}") from None
        return _result_from_json(document)

    def replace(self, **changes) -> "InferenceResult":
        """A copy with some fields changed (used to build altered results in calibration and tests)."""
        fields = {
            "job": self.job,
            "prompt_tokens": self.prompt_tokens,
            "tokens": self.tokens,
            "text": self.text,
            "logprobs_micronats": self.logprobs_micronats,
            "stop_reason": self.stop_reason,
        }
        fields.update(changes)
        return InferenceResult(**fields)


def _check_job(job: InferenceJob) -> None:
    if not isinstance(job.model, str) or len(job.model) != 64 or not _is_hex(job.model):
        raise InvalidJob(f"model id must be 64 hex digits, got {job.model!r}")
    if not isinstance(job.job_id, bytes) or len(job.job_id) != JOB_ID_BYTES:
        raise InvalidJob(f"job id must be {JOB_ID_BYTES} bytes")
    if not isinstance(job.prompt, str):
        raise InvalidJob("prompt must be text")
    if not _is_u64(job.max_tokens) or job.max_tokens < 1:
        raise InvalidJob(f"max_tokens must be an integer from 1 to 2^64 - 1, got {_shown_number(job.max_tokens)}")
    if job.prompt_format not in PROMPT_FORMATS:
        raise InvalidJob(f"prompt_format must be one of {', '.join(PROMPT_FORMATS)}")
    if not isinstance(job.sampling, SamplingParams):
        raise InvalidJob("sampling must be SamplingParams")
    if job.sampling.top_k > MAX_U64:
        raise InvalidJob("top-k must be at most 2^64 - 1")


def _shown_number(value: Any) -> str:
    """A value for a message: a long integer by its digits ('a 31-digit number'), never cut to a smaller one."""
    if isinstance(value, int) and not isinstance(value, bool):
        digits = len(str(abs(value))) if value.bit_length() < 14_000 else int(value.bit_length() * 0.30103) + 1
        return str(value) if digits <= 24 else f"a {digits}-digit number"
    return repr(value)[:40]


def _is_hex(text: str) -> bool:
    return all(character in "0123456789abcdef" for character in text)


def _is_u64(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_U64


def _check_unicode(text: str, name: str) -> None:
    """InvalidResult when text holds a lone surrogate (it has no UTF-8 form, so no digest)."""
    try:
        text_field(text)
    except UnicodeEncodeError as error:
        raise InvalidResult(f"{name} is not valid Unicode text (a lone surrogate at character {error.start})") from None


# -- reading ---------------------------------------------------------------------------------
# A result has one form: known fields only, each once, ids in lowercase hex of their exact length,
# integers as JSON numbers (the seed also as a string of ASCII digits), text that is valid Unicode.

RESULT_FIELDS = frozenset(
    {"version", "model", "job_id", "prompt", "prompt_format", "max_tokens", "sampling",
     "prompt_tokens", "tokens", "text", "logprobs_micronats", "stop_reason"}
)
JOB_FIELDS = frozenset({"model", "job_id", "prompt", "prompt_format", "max_tokens", "sampling"})
SAMPLING_FIELDS = frozenset({"temperature_milli", "top_k", "top_p_ppm", "seed", "seed_only"})


class _DuplicateKey(ValueError):
    pass


def refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict:
    """A json.loads object_pairs_hook: one form per document, so a key given twice is refused."""
    document = {}
    for key, value in pairs:
        if key in document:
            raise _DuplicateKey(f"the key {key[:40]!r} appears twice in one object")
        document[key] = value
    return document


def _only_fields(document: Mapping, known: frozenset, where: str) -> None:
    unknown = sorted(str(key) for key in document if key not in known)
    if unknown:
        raise InvalidResult(f"{where} has an unknown field {unknown[0][:40]!r} (known: {', '.join(sorted(known))})")


def _hex_id(document: Mapping, name: str, size: int) -> str:
    value = _field(document, name, str)
    if len(value) != 2 * size or not _is_hex(value):
        raise InvalidResult(f"{name} must be exactly {2 * size} lowercase hex digits, got {value[:80]!r}")
    return value


def _unicode_text(document: Mapping, name: str) -> str:
    value = _field(document, name, str)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidResult(f"{name} is not valid Unicode text (a lone surrogate at character {error.start})") from None
    return value


def _result_from_json(document: Any) -> InferenceResult:
    if not isinstance(document, Mapping):
        raise InvalidResult("a result must be a JSON object")
    _only_fields(document, RESULT_FIELDS, "a result")
    version = _field(document, "version", int)
    if version != RESULT_VERSION:
        raise InvalidResult(f"unsupported result version {version} (this node reads {RESULT_VERSION})")
    job = _job_from_json(document)
    tokens = _int_list(document, "tokens", 0, MAX_TOKEN_ID)
    logprobs = _int_list(document, "logprobs_micronats", -(1 << 62), 0)
    if len(logprobs) != len(tokens):
        raise InvalidResult(
            f"result has {len(tokens)} tokens but {len(logprobs)} log-probabilities"
        )
    stop_reason = _field(document, "stop_reason", str)
    if stop_reason not in STOP_REASONS:
        raise InvalidResult(f"stop_reason must be one of {', '.join(STOP_REASONS)}")
    prompt_tokens = _field(document, "prompt_tokens", int)
    return InferenceResult(
        job=job,
        prompt_tokens=prompt_tokens,
        tokens=tokens,
        text=_unicode_text(document, "text"),
        logprobs_micronats=logprobs,
        stop_reason=stop_reason,
    )


def _job_from_json(document: Mapping) -> InferenceJob:
    model = _hex_id(document, "model", 32)
    job_id = bytes.fromhex(_hex_id(document, "job_id", JOB_ID_BYTES))
    sampling = _sampling_from_json(_field(document, "sampling", Mapping))
    try:
        return InferenceJob(
            model=model,
            job_id=job_id,
            prompt=_unicode_text(document, "prompt"),
            max_tokens=_field(document, "max_tokens", int),
            sampling=sampling,
            prompt_format=_field(document, "prompt_format", str),
        )
    except InferenceError as error:
        raise InvalidResult(str(error)) from None


def _sampling_from_json(document: Mapping) -> SamplingParams:
    _only_fields(document, SAMPLING_FIELDS, "sampling")
    seed = document.get("seed")
    if isinstance(seed, str):
        # ASCII digits only: "²".isdigit() is true in Python, and int() then raises.
        if not (seed.isascii() and seed.isdigit() and len(seed) <= 20):
            raise InvalidResult(f"sampling.seed must be an integer or a string of ASCII digits, got {seed[:24]!r}")
        seed = int(seed)
    seed_only = document.get("seed_only", False)  # absent in every result keyed by the job id
    if not isinstance(seed_only, bool):
        raise InvalidResult(f"sampling.seed_only must be true or false, got {str(seed_only)[:24]!r}")
    try:
        return SamplingParams(
            temperature_milli=_field(document, "temperature_milli", int, "sampling."),
            top_k=_field(document, "top_k", int, "sampling."),
            top_p_ppm=_field(document, "top_p_ppm", int, "sampling."),
            seed=seed,
            seed_only=seed_only,
        )
    except InferenceError as error:
        raise InvalidResult(str(error)) from None


def _field(document: Mapping, name: str, kind: type, prefix: str = "") -> Any:
    if name not in document:
        raise InvalidResult(f"result has no {prefix}{name!r} field")
    value = document[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidResult(f"{prefix}{name} must be {_kind_name(kind)}, got {type(value).__name__}")
    return value


def _int_list(document: Mapping, name: str, lowest: int, highest: int) -> tuple[int, ...]:
    values = _field(document, name, list)
    for value in values:
        if not isinstance(value, int) or isinstance(value, bool) or not lowest <= value <= highest:
            raise InvalidResult(f"{name} must hold integers from {lowest} to {highest}, got {value!r}")
    return tuple(values)


def _kind_name(kind: type) -> str:
    return {int: "an integer", str: "text", list: "a list", Mapping: "an object"}.get(kind, kind.__name__)
