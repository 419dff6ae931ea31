"""The llama.cpp engine: one loaded model that generates with the chain's sampler and re-scores outputs.

Generation decodes token by token and reads only the last row of logits; the verifier's
evaluation decodes prompt plus claimed output in batches of n_batch tokens and reads the rows of
every output position at once (DESIGN.md section 6). Both go through one LlamaContext
(inference/llama_context.py), the only owner of the model, its context and its KV cache, over
llama-cpp-python's low-level API, the version pinned in setup.cfg.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np

from inference.errors import InvalidJob, JobDoesNotFit
from inference.llama_context import ContextSettings, LlamaContext
from inference.prompt import ChatFrame, chat_frame
from inference.result import LOGPROB_SCALE, InferenceJob, InferenceResult
from inference.sampler import choose_token

log = logging.getLogger(__name__)

DEFAULT_CONTEXT = 4096
DEFAULT_BATCH = 512

# Picks the token at an output position from that position's logits.
Chooser = Callable[[np.ndarray, int], int]


def engine_version() -> str:
    """The engine whose numerics thresholds are calibrated against, e.g. 'llama-cpp-python 0.3.36 cpu avx2'.

    The build matters as much as the version: with llamafile's matrix kernels (llama.cpp's
    default) a batched evaluation no longer computes what token-by-token decoding did, and other
    SIMD widths or a GPU round differently. So the backends, the widest SIMD level and llamafile,
    as llama.cpp reports them, are part of the name (docs/verification.md, "The engine").
    """
    import llama_cpp

    build = engine_build(llama_cpp.llama_print_system_info().decode("utf-8", "replace"))
    return f"llama-cpp-python {llama_cpp.__version__} {build}"[:ENGINE_NAME_CHARS]


# The chain's model registry stores at most this many characters of an engine's name.
ENGINE_NAME_CHARS = 64
# Widest first: the first one a build reports names its SIMD level.
SIMD_LEVELS = ("AVX512", "AVX2", "AVX", "SSE3", "SVE", "NEON")


def engine_build(system_info: str) -> str:
    """'cpu avx2' from llama.cpp's system information ('CPU : AVX2 = 1 | FMA = 1 | ...')."""
    backends, features = [], set()
    for part in system_info.split("|"):
        name, colon, rest = part.partition(" : ")
        if colon:
            backends.append(name.strip().lower())
            part = rest
        feature, equals, value = part.partition("=")
        if equals and value.strip() not in ("", "0"):
            features.add(feature.strip().upper())
    words = ["+".join(backends) or "cpu"]
    words += [level.lower() for level in SIMD_LEVELS if level in features][:1]
    if "LLAMAFILE" in features:
        words.append("llamafile")
    return " ".join(words)


def gpu_offload_supported() -> bool:
    """Whether this llama.cpp build has a GPU backend."""
    import llama_cpp

    return bool(llama_cpp.llama_supports_gpu_offload())


@dataclass(frozen=True)
class EngineConfig:
    """How llama.cpp runs a model: threads, context and batch sizes, GPU layers (None = automatic).

    canonical_pass: re-score every result on a fresh context and regenerate from the first position
    the scores disagree with (inference/canonical.py). None: on for a GPU, off on the CPU, where
    generation already computes what a fresh evaluation does.
    """

    threads: int | None = None
    context: int = DEFAULT_CONTEXT
    batch: int = DEFAULT_BATCH
    gpu_layers: int | None = None
    reuse_prefix: bool = True
    canonical_pass: bool | None = None

    def resolved(self) -> "EngineConfig":
        """The same configuration with automatic values filled in."""
        threads = self.threads or max(1, os.cpu_count() or 1)
        gpu_layers = self.gpu_layers
        if gpu_layers is None:
            gpu_layers = -1 if gpu_offload_supported() else 0
        # llama.cpp asserts when a decode exceeds its n_batch, which it caps at the context.
        batch = min(self.batch, self.context)
        canonical_pass = gpu_layers != 0 if self.canonical_pass is None else self.canonical_pass
        return replace(self, threads=threads, gpu_layers=gpu_layers, batch=batch, canonical_pass=canonical_pass)


def _check_config(config: EngineConfig) -> None:
    if config.threads is not None and config.threads < 1:
        raise InvalidJob("threads must be at least 1")
    if config.context < 16:
        raise InvalidJob("context must be at least 16 tokens")
    if not 1 <= config.batch:
        raise InvalidJob("batch must be at least 1 token")


class Engine:
    """A GGUF model loaded in llama.cpp, kept loaded between jobs; one job at a time."""

    def __init__(self, model_path: str | os.PathLike, model_id: str, config: EngineConfig = EngineConfig()):
        _check_config(config)
        self.model_path = os.fspath(model_path)
        self.model_id = model_id
        self.config = config.resolved()
        self._lock = threading.Lock()
        self._context = LlamaContext(self.model_path, ContextSettings(
            threads=self.config.threads, context=self.config.context, batch=self.config.batch,
            gpu_layers=self.config.gpu_layers,
        ))
        self.vocabulary_size = self._context.vocabulary_size
        # llama.cpp rounds the context up (to 256); the configured size is the promise kept.
        self.context_size = min(self._context.context_size, self.config.context)
        # What the model was trained on: no job may claim more prompt and output than this.
        self.trained_context = self._context.trained_context or self.context_size
        self._chat_frame = self._make_chat_frame()
        self._log_gpu_choice()

    # -- model facts -------------------------------------------------------------------------

    @property
    def has_chat_template(self) -> bool:
        return self._chat_frame is not None

    def is_end_of_generation(self, token: int) -> bool:
        """Whether a token ends generation (end-of-sequence, end-of-turn) for this model."""
        return self._context.is_end_of_generation(token)

    @property
    def end_of_sequence_token(self) -> int:
        """The model's end-of-sequence token id."""
        return self._context.eos

    def end_of_generation_tokens(self) -> list[int]:
        """Every token id that ends generation."""
        return [token for token in range(self.vocabulary_size) if self.is_end_of_generation(token)]

    def tokenize(self, text: str, special: bool = False, add_bos: bool = False) -> list[int]:
        """Token ids of a text."""
        if not text:
            return [self._context.bos] if add_bos else []
        return self._context.tokenize(text.encode("utf-8"), add_bos=add_bos, special=special)

    def detokenize(self, tokens: Sequence[int]) -> str:
        """The text of token ids, special tokens rendered empty, bad UTF-8 replaced (U+FFFD)."""
        return self._context.detokenize(tokens).decode("utf-8", errors="replace")

    def prompt_tokens(self, prompt: str, prompt_format: str = "chat") -> list[int]:
        """A job's prompt as tokens: inside the model's chat template when it has one and asks for it."""
        add_bos = self._context.adds_bos
        if prompt_format == "raw" or self._chat_frame is None:
            tokens = self.tokenize(prompt, special=False, add_bos=add_bos)
        else:
            frame = self._chat_frame
            tokens = (
                self.tokenize(frame.before, special=True, add_bos=add_bos)
                + self.tokenize(prompt, special=False)
                + self.tokenize(frame.after, special=True)
            )
        if not tokens:
            raise InvalidJob("the prompt is empty")
        return tokens

    def check_fits(self, prompt_length: int, max_tokens: int) -> None:
        """Raise JobDoesNotFit unless the prompt and max_tokens fit in the context together."""
        if prompt_length >= self.context_size:
            raise JobDoesNotFit(
                f"prompt is {prompt_length} tokens, longer than the {self.context_size}-token context"
            )
        if prompt_length + max_tokens > self.context_size:
            raise JobDoesNotFit(
                f"prompt ({prompt_length} tokens) plus max_tokens ({max_tokens}) exceeds the "
                f"{self.context_size}-token context; at most {self.context_size - prompt_length} "
                "new tokens fit"
            )

    # -- generation --------------------------------------------------------------------------

    def generate(self, job: InferenceJob, on_token: Callable[[int], None] | None = None,
                 choose: Chooser | None = None) -> InferenceResult:
        """Run a job with the chain's sampler (or, for calibration's frauds, another chooser).

        With the canonical pass on (a GPU, by default) the result is then re-scored on a fresh
        context and regenerated from where the scores choose otherwise (inference/canonical.py).
        """
        prompt = self.check_job(job)
        choose = choose or job_chooser(job)
        with self._lock:
            tokens, logprobs, stop_reason = self._generate_tokens(prompt, job.max_tokens, on_token, choose)
        result = self.result(job, prompt, tokens, logprobs, stop_reason)
        if not self.config.canonical_pass:
            return result
        from inference.canonical import canonical_pass  # here: inference.canonical imports this module

        return canonical_pass(self, job, prompt, result.tokens, choose).result

    def check_job(self, job: InferenceJob) -> list[int]:
        """The job's prompt tokens, once the job is checked: this engine's model, prompt and output fit."""
        self._check_model(job.model)
        prompt = self.prompt_tokens(job.prompt, job.prompt_format)
        self.check_fits(len(prompt), job.max_tokens)
        return prompt

    def result(self, job: InferenceJob, prompt: Sequence[int], tokens: Sequence[int], logprobs: Sequence[int],
               stop_reason: str) -> InferenceResult:
        """The InferenceResult of generated tokens (their text detokenised here)."""
        return InferenceResult(
            job=job,
            prompt_tokens=len(prompt),
            tokens=tuple(tokens),
            text=self.detokenize(tokens),
            logprobs_micronats=tuple(int(value) for value in logprobs),
            stop_reason=stop_reason,
        )

    def continue_generation(self, prompt: Sequence[int], forced: Sequence[int], max_tokens: int,
                            choose: Chooser) -> tuple[list[int], str]:
        """Every output token and the stop reason when the output starts with `forced` and goes on by `choose`.

        The canonical pass's regeneration: the forced tokens are taken as given (decoded with the
        prompt, as a prefix), the rest is generated one token at a time from position len(forced).
        """
        self.check_fits(len(prompt), max_tokens)
        if not 0 < len(forced) < max_tokens:
            raise InvalidJob(f"a forced prefix holds 1 to {max_tokens - 1} tokens, not {len(forced)}")
        with self._lock:
            tail, _, stop_reason = self._generate_tokens(list(prompt) + list(forced), max_tokens - len(forced),
                                                         None, lambda logits, position: choose(logits, position + len(forced)))
        return list(forced) + tail, stop_reason

    def _generate_tokens(self, prompt: list[int], max_tokens: int, on_token, choose: Chooser) -> tuple[list, list, str]:
        logits = self._prefill(prompt)
        tokens: list[int] = []
        logprobs: list[int] = []
        for position in range(max_tokens):
            token = choose(logits, position)
            tokens.append(token)
            logprobs.append(logprob_micronats(logits, token))
            if on_token is not None:
                on_token(token)
            if self.is_end_of_generation(token):
                return tokens, logprobs, "eos"
            if position + 1 < max_tokens:
                logits = self._decode_next(token)
        return tokens, logprobs, "length"

    def _prefill(self, prompt: list[int]) -> np.ndarray:
        # At least the prompt's last token is decoded again: its logits start the generation.
        kept = self._context.keep(min(self._reusable_prefix(prompt), len(prompt) - 1))
        self._context.extend(prompt[kept:], output_indices=[len(prompt) - 1 - kept])
        return self._context.last_logits()

    def _reusable_prefix(self, tokens: Sequence[int]) -> int:
        """How many leading tokens the KV cache may keep (none when the configuration reuses none)."""
        return self._context.shared_prefix(tokens) if self.config.reuse_prefix else 0

    def _decode_next(self, token: int) -> np.ndarray:
        self._context.extend([token], output_indices=[0])
        return self._context.last_logits()

    # -- teacher-forced evaluation -----------------------------------------------------------

    def output_logits(self, prompt: Sequence[int], output: Sequence[int], fresh: bool = False) -> np.ndarray:
        """Logits predicting each output token, from one batched evaluation (rows x vocabulary).

        A prompt prefix still cached from an earlier evaluation (the chat template's opening, say)
        is kept when the configuration reuses prefixes: on the pinned engine a batched evaluation
        computes every row as decoding does, so the kept rows are what a fresh evaluation would
        compute, bit for bit (tests/inference/test_engine.py). `fresh`: keep nothing, so the whole
        sequence is evaluated in n_batch chunks from position 0, the fixed shape of the canonical
        pass (on a GPU the kernels, and so the rows, depend on how the tokens were chunked).
        """
        if not output:
            return np.zeros((0, self.vocabulary_size), dtype=np.float32)
        self.check_fits(len(prompt), len(output))
        sequence = list(prompt) + list(output[:-1])
        first = len(prompt) - 1
        with self._lock:
            kept = self._context.keep(0 if fresh else min(self._reusable_prefix(sequence), first))
            return self._context.extend(sequence[kept:], range(first - kept, len(sequence) - kept), rows=True)

    # -- the model's description -------------------------------------------------------------

    def _check_model(self, model_id: str) -> None:
        if model_id != self.model_id:
            raise InvalidJob(f"job is for model {model_id[:12]}..., this engine runs {self.model_id[:12]}...")

    def _make_chat_frame(self) -> ChatFrame | None:
        template = self._context.metadata("tokenizer.chat_template")
        if not template:
            return None
        context = self._context
        bos = context.token_text(context.bos) if context.bos >= 0 else ""
        eos = context.token_text(context.eos) if context.eos >= 0 else ""
        return chat_frame(template, bos, eos)

    def device_description(self) -> str:
        """Where the model runs, in words (the one log line about GPU offload)."""
        if not gpu_offload_supported():
            return "CPU (this llama.cpp build has no GPU backend)"
        if self.config.gpu_layers:
            layers = "all" if self.config.gpu_layers < 0 else str(self.config.gpu_layers)
            return f"GPU ({layers} layers offloaded)"
        return "CPU (--gpu-layers 0)"

    def _log_gpu_choice(self) -> None:
        log.info("engine: %s on %s, %s", self.model_id[:12], self.device_description(), engine_version())

    def context_on_model(self, settings: ContextSettings) -> LlamaContext:
        """A new context on this engine's loaded model (the batched engine's), which keeps the model loaded
        until it too is closed; `settings.gpu_layers` must be this engine's."""
        return self._context.on_same_model(settings)

    def close(self) -> None:
        """Free the context, and the model unless another context still uses it."""
        self._context.close()


def job_chooser(job: InferenceJob) -> Chooser:
    """The chain's sampler for a job: choose_token with its sampling parameters and id."""
    return lambda logits, position: choose_token(logits, job.sampling, job.job_id, position)


def logprob_micronats(logits: np.ndarray, token: int) -> int:
    """log softmax(logits)[token] in micro-nats (the model's own distribution, temperature 1)."""
    # All in float64 (docs/verification.md): float32 logits minus a Python float stay float32 in
    # numpy, and an exp in float32 moved 17 of one reimplementation's values by 1 micro-nat.
    wide = np.array(logits, dtype=np.float64)  # a copy: the exp below works in place
    peak = wide.max()
    chosen = wide[token] - peak
    wide -= peak
    total = np.exp(wide, out=wide).sum()
    return min(0, round(float(chosen - np.log(total)) * LOGPROB_SCALE))


def logprobs_micronats(rows: np.ndarray, tokens: Sequence[int]) -> np.ndarray:
    """logprob_micronats for every row and its token at once."""
    if len(tokens) == 0:
        return np.zeros(0, dtype=np.int64)
    wide = np.array(rows, dtype=np.float64)  # a copy: the exp below works in place
    peaks = wide.max(axis=1)
    chosen = wide[np.arange(len(tokens)), np.asarray(tokens)] - peaks
    wide -= peaks[:, None]
    totals = np.exp(wide, out=wide).sum(axis=1)
    values = chosen - np.log(totals)
    # np.round, like Python's round, rounds half to even.
    return np.minimum(0, np.round(values * LOGPROB_SCALE)).astype(np.int64)
