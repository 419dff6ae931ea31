"""The llama.cpp engine: one loaded model that generates with the chain's sampler and re-scores outputs.

Generation decodes token by token and reads only the last row of logits; the verifier's
evaluation decodes prompt plus claimed output in batches of n_batch tokens and reads the rows of
every output position at once (DESIGN.md section 6). Both go through llama.cpp's C API via
llama-cpp-python, the version pinned in setup.cfg.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np

from inference.errors import EngineError, InvalidJob, JobDoesNotFit
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
    """How llama.cpp runs a model: threads, context and batch sizes, GPU layers (None = automatic)."""

    threads: int | None = None
    context: int = DEFAULT_CONTEXT
    batch: int = DEFAULT_BATCH
    gpu_layers: int | None = None
    reuse_prefix: bool = True

    def resolved(self) -> "EngineConfig":
        """The same configuration with automatic values filled in."""
        threads = self.threads or max(1, os.cpu_count() or 1)
        gpu_layers = self.gpu_layers
        if gpu_layers is None:
            gpu_layers = -1 if gpu_offload_supported() else 0
        # llama.cpp asserts when a decode exceeds its n_batch, which it caps at the context.
        batch = min(self.batch, self.context)
        return replace(self, threads=threads, gpu_layers=gpu_layers, batch=batch)


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
        self._llama = _load_llama(self.model_path, self.config)
        self._vocab = self._llama._model.vocab
        self.vocabulary_size = self._llama.n_vocab()
        # llama.cpp rounds the context up (to 256); the configured size is the promise kept.
        self.context_size = min(self._llama.n_ctx(), self.config.context)
        # What the model was trained on: no job may claim more prompt and output than this.
        self.trained_context = _trained_context(self._llama) or self.context_size
        self._batch = _Batch(self._llama, self.config.batch)
        self._cached: list[int] = []
        self._chat_frame = self._make_chat_frame()
        self._log_gpu_choice()

    # -- model facts -------------------------------------------------------------------------

    @property
    def has_chat_template(self) -> bool:
        return self._chat_frame is not None

    def is_end_of_generation(self, token: int) -> bool:
        """Whether a token ends generation (end-of-sequence, end-of-turn) for this model."""
        import llama_cpp

        return bool(llama_cpp.llama_vocab_is_eog(self._vocab, token))

    @property
    def end_of_sequence_token(self) -> int:
        """The model's end-of-sequence token id."""
        return int(self._llama.token_eos())

    def end_of_generation_tokens(self) -> list[int]:
        """Every token id that ends generation."""
        return [token for token in range(self.vocabulary_size) if self.is_end_of_generation(token)]

    def tokenize(self, text: str, special: bool = False, add_bos: bool = False) -> list[int]:
        """Token ids of a text."""
        if not text:
            return [self._llama.token_bos()] if add_bos else []
        return self._llama.tokenize(text.encode("utf-8"), add_bos=add_bos, special=special)

    def detokenize(self, tokens: Sequence[int]) -> str:
        """The text of token ids, special tokens rendered empty, bad UTF-8 replaced (U+FFFD)."""
        return _detokenize(self._vocab, tokens).decode("utf-8", errors="replace")

    def prompt_tokens(self, prompt: str, prompt_format: str = "chat") -> list[int]:
        """A job's prompt as tokens: inside the model's chat template when it has one and asks for it."""
        add_bos = bool(self._llama._model.add_bos_token())
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
        """Run a job with the chain's sampler (or, for calibration's frauds, another chooser)."""
        self._check_model(job.model)
        prompt = self.prompt_tokens(job.prompt, job.prompt_format)
        self.check_fits(len(prompt), job.max_tokens)
        if choose is None:
            choose = lambda logits, position: choose_token(logits, job.sampling, job.job_id, position)  # noqa: E731
        with self._lock:
            tokens, logprobs, stop_reason = self._generate_tokens(prompt, job, on_token, choose)
        return InferenceResult(
            job=job,
            prompt_tokens=len(prompt),
            tokens=tuple(tokens),
            text=self.detokenize(tokens),
            logprobs_micronats=tuple(logprobs),
            stop_reason=stop_reason,
        )

    def _generate_tokens(self, prompt: list[int], job: InferenceJob, on_token, choose: Chooser) -> tuple[list, list, str]:
        logits = self._prefill(prompt)
        tokens: list[int] = []
        logprobs: list[int] = []
        for position in range(job.max_tokens):
            token = choose(logits, position)
            tokens.append(token)
            logprobs.append(logprob_micronats(logits, token))
            if on_token is not None:
                on_token(token)
            if self.is_end_of_generation(token):
                return tokens, logprobs, "eos"
            if position + 1 < job.max_tokens:
                logits = self._decode_next(token)
        return tokens, logprobs, "length"

    def _prefill(self, prompt: list[int]) -> np.ndarray:
        kept = self._forget_after(self._reusable_prefix(prompt))
        self._decode(prompt[kept:], start=kept, output_indices=[len(prompt) - 1 - kept])
        self._cached = list(prompt)
        return self._last_logits()

    def _reusable_prefix(self, prompt: list[int]) -> int:
        if not self.config.reuse_prefix:
            return 0
        common = 0
        for cached, wanted in zip(self._cached, prompt):
            if cached != wanted:
                break
            common += 1
        # At least the prompt's last token is decoded again: its logits start the generation.
        return min(common, len(prompt) - 1)

    def _decode_next(self, token: int) -> np.ndarray:
        self._decode([token], start=len(self._cached), output_indices=[0])
        self._cached.append(token)
        return self._last_logits()

    # -- teacher-forced evaluation -----------------------------------------------------------

    def output_logits(self, prompt: Sequence[int], output: Sequence[int]) -> np.ndarray:
        """Logits predicting each output token, from one batched evaluation (rows x vocabulary).

        A prompt prefix still cached from an earlier evaluation (the chat template's opening, say)
        is kept when the configuration reuses prefixes: on the pinned engine a batched evaluation
        computes every row as decoding does, so the kept rows are what a fresh evaluation would
        compute, bit for bit (tests/inference/test_engine.py).
        """
        if not output:
            return np.zeros((0, self.vocabulary_size), dtype=np.float32)
        self.check_fits(len(prompt), len(output))
        sequence = list(prompt) + list(output[:-1])
        first = len(prompt) - 1
        with self._lock:
            kept = self._forget_after(min(self._reusable_prefix(sequence), first))
            rows = self._decode_rows(sequence[kept:], start=kept,
                                     output_indices=range(first - kept, len(sequence) - kept))
            self._cached = sequence
        return rows

    # -- llama.cpp calls ---------------------------------------------------------------------

    def _check_model(self, model_id: str) -> None:
        if model_id != self.model_id:
            raise InvalidJob(f"job is for model {model_id[:12]}..., this engine runs {self.model_id[:12]}...")

    def _forget_after(self, kept: int) -> int:
        """Drop the cache after its first `kept` tokens; how many were kept (0 when it was cleared)."""
        import llama_cpp

        memory = llama_cpp.llama_get_memory(self._llama.ctx)
        if kept == 0 or not llama_cpp.llama_memory_seq_rm(memory, 0, kept, -1):
            # Metadata only: clearing the data buffers too costs ~10 ms and changes nothing.
            llama_cpp.llama_memory_clear(memory, False)
            kept = 0
        del self._cached[kept:]
        return kept

    def _decode(self, tokens: Sequence[int], start: int, output_indices: Sequence[int]) -> None:
        """Decode tokens at positions start.. in n_batch chunks, with logits for output_indices only."""
        self._decode_chunks(tokens, start, sorted(set(output_indices)), rows=None)

    def _decode_rows(self, tokens: Sequence[int], start: int, output_indices: Sequence[int]) -> np.ndarray:
        """Like _decode, and return a copy of the logits rows of output_indices."""
        wanted = sorted(set(output_indices))
        rows = np.empty((len(wanted), self.vocabulary_size), dtype=np.float32)
        self._decode_chunks(tokens, start, wanted, rows)
        return rows

    def _decode_chunks(self, tokens: Sequence[int], start: int, wanted: list[int], rows: np.ndarray | None) -> None:
        import llama_cpp

        filled = 0
        size = self.config.batch
        for offset in range(0, len(tokens), size):
            chunk = tokens[offset:offset + size]
            chunk_outputs = [index - offset for index in wanted if offset <= index < offset + len(chunk)]
            self._batch.fill(chunk, start + offset, chunk_outputs)
            status = llama_cpp.llama_decode(self._llama.ctx, self._batch.batch)
            if status != 0:
                raise EngineError(f"llama_decode failed with status {status}")
            if rows is not None and chunk_outputs:
                # llama.cpp's logits buffer holds this chunk's output rows, in batch order.
                logits = llama_cpp.llama_get_logits(self._llama.ctx)
                block = np.ctypeslib.as_array(logits, shape=(len(chunk_outputs) * self.vocabulary_size,))
                rows[filled:filled + len(chunk_outputs)] = block.reshape(len(chunk_outputs), -1)
                filled += len(chunk_outputs)

    def _last_logits(self) -> np.ndarray:
        import llama_cpp

        pointer = llama_cpp.llama_get_logits_ith(self._llama.ctx, -1)
        return np.ctypeslib.as_array(pointer, shape=(self.vocabulary_size,))

    def _make_chat_frame(self) -> ChatFrame | None:
        template = self._llama.metadata.get("tokenizer.chat_template")
        if not template:
            return None
        model = self._llama._model
        bos = model.token_get_text(model.token_bos()) if model.token_bos() >= 0 else ""
        eos = model.token_get_text(model.token_eos()) if model.token_eos() >= 0 else ""
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

    def close(self) -> None:
        """Free the model and its context."""
        self._batch.close()
        self._llama.close()


def _trained_context(llm) -> int:
    """The context length the model was trained with, as llama.cpp read it from the GGUF file."""
    import llama_cpp

    return int(llama_cpp.llama_model_n_ctx_train(llm._model.model))


def _load_llama(path: str, config: EngineConfig):
    from llama_cpp import Llama

    try:
        return Llama(
            model_path=path,
            n_ctx=config.context,
            n_batch=config.batch,
            n_ubatch=config.batch,
            n_threads=config.threads,
            n_threads_batch=config.threads,
            n_gpu_layers=config.gpu_layers,
            verbose=False,
        )
    except (ValueError, RuntimeError) as error:
        raise EngineError(f"llama.cpp could not load {path}: {error}") from None


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


def _detokenize(vocab, tokens: Sequence[int]) -> bytes:
    import llama_cpp

    if not tokens:
        return b""
    array = (llama_cpp.llama_token * len(tokens))(*tokens)
    size = max(64, 8 * len(tokens))
    for _ in range(2):
        buffer = ctypes.create_string_buffer(size)
        written = llama_cpp.llama_detokenize(vocab, array, len(tokens), buffer, size, False, False)
        if written >= 0:
            return buffer.raw[:written]
        size = -written
    raise EngineError("llama.cpp could not detokenise the output")


class _Batch:
    """A llama_batch of up to n_batch tokens for sequence 0, refilled for every decode."""

    def __init__(self, llama, capacity: int):
        import llama_cpp

        self.capacity = capacity
        self.batch = llama_cpp.llama_batch_init(capacity, 0, 1)

    def fill(self, tokens: Sequence[int], start: int, output_indices: Sequence[int]) -> None:
        batch = self.batch
        batch.n_tokens = len(tokens)
        for index, token in enumerate(tokens):
            batch.token[index] = token
            batch.pos[index] = start + index
            batch.n_seq_id[index] = 1
            batch.seq_id[index][0] = 0
            batch.logits[index] = False
        for index in output_indices:
            batch.logits[index] = True

    def close(self) -> None:
        import llama_cpp

        if self.batch is not None:
            llama_cpp.llama_batch_free(self.batch)
            self.batch = None

