"""The one owner of a llama.cpp model, its contexts and what each context's KV cache holds.

llama-cpp-python's `Llama` computes logits for the last token of a decode or for every token
(`logits_all`, with an n_ctx x n_vocab buffer); the engine needs what lies between: generation
reads only the last row, the verifier every output row of one batched evaluation (DESIGN.md
section 6). So the engine does not drive a `Llama` behind its back: this class loads the model and
creates the context itself, through llama-cpp-python's low-level API (the functions of llama.h),
with the parameters `Llama` would use, and it alone decodes. The token ids of each sequence in the
KV cache are recorded here and nowhere else (llama.cpp keeps positions, not ids: a reused prefix needs
the ids), and that record is checked against llama.cpp's own positions after every change.

Several contexts may share one loaded model (`LlamaContext.on_same_model`: the batched engine's context
beside its engine's own): the weights are loaded once and freed when the last context on them closes.

A context may hold several sequences (batched generation, inference/batched.py). Each then gets a
KV stream of its own (llama.cpp's kv_unified off), so a sequence's cells start at 0 as in a
one-sequence context and attention sums the same cells in the same order: on the pinned CPU build a
sequence decoded beside others computes what it computes alone (tests/inference/test_batched.py).
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from inference.errors import EngineError

log = logging.getLogger(__name__)

# llama.cpp's "all layers" (what `Llama` passes for n_gpu_layers=-1).
ALL_LAYERS = 0x7FFFFFFF
# The chat template is read from the GGUF metadata; longer values are read with a larger buffer.
METADATA_BUFFER = 4096
# ggml log levels (ggml.h): ERROR and above reach the log as errors, the rest is debug detail.
GGML_LOG_LEVEL_ERROR = 3
GGML_LOG_LEVEL_CONT = 5


@dataclass(frozen=True)
class ContextSettings:
    """What a context is created with: threads, context and batch sizes (tokens), GPU layers (-1: all),
    and how many sequences it holds (`context` tokens each)."""

    threads: int
    context: int
    batch: int
    gpu_layers: int
    sequences: int = 1


class _LoadedModel:
    """A llama.cpp model and how many contexts use it; the last to let go frees it."""

    def __init__(self, pointer, gpu_layers: int):
        self.pointer = pointer
        self.gpu_layers = gpu_layers
        self._users = 1
        self._lock = threading.Lock()

    def acquire(self) -> "_LoadedModel":
        with self._lock:
            if self._users == 0:
                raise EngineError("the model was freed: its last context is closed")
            self._users += 1
        return self

    def release(self) -> None:
        import llama_cpp

        with self._lock:
            self._users -= 1
            if self._users == 0:
                llama_cpp.llama_model_free(self.pointer)
                self.pointer = None


class LlamaContext:
    """A loaded GGUF model with one llama.cpp context, one batch, and the record of its KV cache.

    `shares`: another context whose loaded model this one uses instead of loading the file again
    (the same GPU layers; see on_same_model)."""

    def __init__(self, path: str, settings: ContextSettings, shares: "LlamaContext | None" = None):
        import llama_cpp

        _route_llama_logs()
        llama_cpp.llama_backend_init()
        self.path = path
        self.settings = settings
        self._loaded: _LoadedModel | None = None
        self._model = self._context = self._batch = None
        if settings.sequences < 1:
            raise EngineError(f"a context holds at least one sequence, not {settings.sequences}")
        # Each sequence's tokens in the KV cache, by position.
        self._records: list[list[int]] = [[] for _ in range(settings.sequences)]
        if shares is not None:
            if shares._loaded is None:
                raise EngineError("the context to share a model with is closed")
            if shares._loaded.gpu_layers != settings.gpu_layers:
                raise EngineError(f"a context with {settings.gpu_layers} GPU layers cannot share a model loaded "
                                  f"with {shares._loaded.gpu_layers}")
            self._loaded = shares._loaded.acquire()
        else:
            if not os.path.isfile(path):
                raise EngineError(f"llama.cpp could not load {path}: no such file")
            pointer = llama_cpp.llama_model_load_from_file(path.encode("utf-8"), _model_params(settings))
            if not pointer:
                raise EngineError(f"llama.cpp could not load {path}: not a model it can read")
            self._loaded = _LoadedModel(pointer, settings.gpu_layers)
        self._model = self._loaded.pointer
        self._vocab = llama_cpp.llama_model_get_vocab(self._model)
        self._context = llama_cpp.llama_init_from_model(self._model, _context_params(settings))
        if not self._context:
            self.close()
            raise EngineError(f"llama.cpp could not create a {settings.context}-token context for {path}")
        self._memory = llama_cpp.llama_get_memory(self._context)
        self._batch = llama_cpp.llama_batch_init(settings.batch, 0, 1)
        self.vocabulary_size = int(llama_cpp.llama_vocab_n_tokens(self._vocab))

    def on_same_model(self, settings: ContextSettings) -> "LlamaContext":
        """Another context on this one's loaded model (not loaded again); the model stays loaded until both
        are closed. The settings' GPU layers must be this model's."""
        return LlamaContext(self.path, settings, shares=self)

    # -- the model ---------------------------------------------------------------------------

    @property
    def context_size(self) -> int:
        """The context llama.cpp allocated for each sequence (it rounds the asked size up)."""
        import llama_cpp

        if self.settings.sequences == 1:
            return int(llama_cpp.llama_n_ctx(self._context))
        return int(llama_cpp.llama_n_ctx_seq(self._context))

    @property
    def sequences(self) -> int:
        """How many sequences the context holds (ids 0 to sequences - 1)."""
        return self.settings.sequences

    @property
    def trained_context(self) -> int:
        """The context length the model was trained with, from the GGUF file."""
        import llama_cpp

        return int(llama_cpp.llama_model_n_ctx_train(self._model))

    @property
    def adds_bos(self) -> bool:
        """Whether the model's tokenizer starts a text with the beginning-of-sequence token."""
        import llama_cpp

        return bool(llama_cpp.llama_vocab_get_add_bos(self._vocab))

    @property
    def bos(self) -> int:
        import llama_cpp

        return int(llama_cpp.llama_vocab_bos(self._vocab))

    @property
    def eos(self) -> int:
        import llama_cpp

        return int(llama_cpp.llama_vocab_eos(self._vocab))

    def is_end_of_generation(self, token: int) -> bool:
        import llama_cpp

        return bool(llama_cpp.llama_vocab_is_eog(self._vocab, token))

    def token_text(self, token: int) -> str:
        """A token's text as the vocabulary stores it ('<|im_start|>' for a special token)."""
        import llama_cpp

        return llama_cpp.llama_vocab_get_text(self._vocab, token).decode("utf-8", "replace")

    def metadata(self, key: str) -> str | None:
        """A GGUF metadata value as text, None when the file has no such key."""
        import llama_cpp

        size = METADATA_BUFFER
        for _ in range(2):
            buffer = ctypes.create_string_buffer(size)
            length = llama_cpp.llama_model_meta_val_str(self._model, key.encode("utf-8"), buffer, size)
            if length < 0:
                return None
            if length < size:
                return buffer.value.decode("utf-8", "replace")
            size = length + 1
        raise EngineError(f"llama.cpp could not read the model's {key}")

    def tokenize(self, text: bytes, add_bos: bool, special: bool) -> list[int]:
        """Token ids of UTF-8 text; `special`: text such as '<|im_end|>' becomes its special token."""
        import llama_cpp

        size = len(text) + 2  # at most one token per byte, plus the added ones
        for _ in range(2):
            tokens = (llama_cpp.llama_token * size)()
            count = llama_cpp.llama_tokenize(self._vocab, text, len(text), tokens, size, add_bos, special)
            if count >= 0:
                return list(tokens[:count])
            size = -count
        raise EngineError("llama.cpp could not tokenise the text")

    def detokenize(self, tokens: Sequence[int]) -> bytes:
        """The bytes of token ids, special tokens rendered empty."""
        import llama_cpp

        if not tokens:
            return b""
        array = (llama_cpp.llama_token * len(tokens))(*tokens)
        size = max(64, 8 * len(tokens))
        for _ in range(2):
            buffer = ctypes.create_string_buffer(size)
            written = llama_cpp.llama_detokenize(self._vocab, array, len(tokens), buffer, size, False, False)
            if written >= 0:
                return buffer.raw[:written]
            size = -written
        raise EngineError("llama.cpp could not detokenise the output")

    # -- the KV cache ------------------------------------------------------------------------

    def shared_prefix(self, tokens: Sequence[int], sequence: int = 0) -> int:
        """How many leading tokens of `tokens` the KV cache already holds (in that sequence)."""
        common = 0
        for cached, wanted in zip(self._record(sequence), tokens):
            if cached != wanted:
                break
            common += 1
        return common

    def keep(self, count: int, sequence: int = 0) -> int:
        """Drop a sequence's KV cells after its first `count` tokens; how many are kept (0: it was cleared)."""
        import llama_cpp

        record = self._record(sequence)
        count = min(count, len(record))
        if count == 0 or not llama_cpp.llama_memory_seq_rm(self._memory, sequence, count, -1):
            self._forget(sequence)
            count = 0
        del record[count:]
        self._check_record(sequence)
        return count

    def extend(self, tokens: Sequence[int], output_indices: Sequence[int], rows: bool = False,
               sequence: int = 0) -> np.ndarray | None:
        """Decode tokens after a sequence's cached ones, in n_batch chunks, computing logits for output_indices only.

        Returns a copy of those rows (rows x vocabulary) when `rows`, else None: the last output row
        is then read with last_logits().
        """
        import llama_cpp

        record = self._record(sequence)
        wanted = sorted(set(output_indices))
        copied = np.empty((len(wanted), self.vocabulary_size), dtype=np.float32) if rows else None
        filled = 0
        size = self.settings.batch
        for offset in range(0, len(tokens), size):
            chunk = tokens[offset:offset + size]
            chunk_outputs = [index - offset for index in wanted if offset <= index < offset + len(chunk)]
            self._fill_batch(chunk, len(record), chunk_outputs, sequence)
            status = llama_cpp.llama_decode(self._context, self._batch)
            if status != 0:
                self._forget(sequence)
                raise EngineError(f"llama_decode failed with status {status}")
            record.extend(chunk)
            if copied is not None and chunk_outputs:
                # llama.cpp's logits buffer holds this chunk's output rows, in batch order.
                logits = llama_cpp.llama_get_logits(self._context)
                block = np.ctypeslib.as_array(logits, shape=(len(chunk_outputs) * self.vocabulary_size,))
                copied[filled:filled + len(chunk_outputs)] = block.reshape(len(chunk_outputs), -1)
                filled += len(chunk_outputs)
        self._check_record(sequence)
        return copied

    def decode_step(self, steps: Sequence[tuple[int, int]]) -> np.ndarray:
        """Decode one token for each of several sequences, (sequence, token) pairs, in one llama_decode.

        Returns a copy of each token's logits (rows x vocabulary, in the order given). A failed
        decode clears every sequence it touched: part of the batch may be cached.
        """
        import llama_cpp

        sequences = [sequence for sequence, _ in steps]
        if len(set(sequences)) != len(sequences):
            raise EngineError("one decode step holds at most one token per sequence")
        if not 0 < len(steps) <= self.settings.batch:
            raise EngineError(f"a decode step holds 1 to {self.settings.batch} tokens, not {len(steps)}")
        batch = self._batch
        batch.n_tokens = len(steps)
        for index, (sequence, token) in enumerate(steps):
            batch.token[index] = token
            batch.pos[index] = len(self._record(sequence))
            batch.n_seq_id[index] = 1
            batch.seq_id[index][0] = sequence
            batch.logits[index] = True
        status = llama_cpp.llama_decode(self._context, batch)
        if status != 0:
            for sequence in sequences:
                self._forget(sequence)
            raise EngineError(f"llama_decode failed with status {status}")
        for sequence, token in steps:
            self._records[sequence].append(token)
        logits = llama_cpp.llama_get_logits(self._context)
        block = np.ctypeslib.as_array(logits, shape=(len(steps) * self.vocabulary_size,))
        copied = block.reshape(len(steps), -1).copy()
        for sequence in sequences:
            self._check_record(sequence)
        return copied

    def last_logits(self) -> np.ndarray:
        """A copy of the logits of the last output row of the last decode."""
        import llama_cpp

        pointer = llama_cpp.llama_get_logits_ith(self._context, -1)
        if not pointer:
            raise EngineError("llama.cpp holds no logits: nothing was decoded with an output row")
        return np.ctypeslib.as_array(pointer, shape=(self.vocabulary_size,)).copy()

    def _fill_batch(self, tokens: Sequence[int], start: int, output_indices: Sequence[int], sequence: int) -> None:
        batch = self._batch
        batch.n_tokens = len(tokens)
        for index, token in enumerate(tokens):
            batch.token[index] = token
            batch.pos[index] = start + index
            batch.n_seq_id[index] = 1
            batch.seq_id[index][0] = sequence
            batch.logits[index] = False
        for index in output_indices:
            batch.logits[index] = True

    def _record(self, sequence: int) -> list[int]:
        if not 0 <= sequence < len(self._records):
            raise EngineError(f"sequence {sequence} is not one of this context's {len(self._records)}")
        return self._records[sequence]

    def _forget(self, sequence: int) -> None:
        """Empty one sequence's cells (after a failed decode part of a batch may be cached)."""
        import llama_cpp

        if len(self._records) == 1:
            # Metadata only: clearing the data buffers too costs ~10 ms and changes nothing.
            llama_cpp.llama_memory_clear(self._memory, False)
        else:
            llama_cpp.llama_memory_seq_rm(self._memory, sequence, 0, -1)
        self._records[sequence].clear()

    def _check_record(self, sequence: int) -> None:
        import llama_cpp

        record = self._records[sequence]
        held = llama_cpp.llama_memory_seq_pos_max(self._memory, sequence) + 1
        if held != len(record):
            self._forget(sequence)
            raise EngineError(f"llama.cpp's KV cache holds {held} positions of sequence {sequence}, "
                              f"{len(record)} were decoded")

    # -- the end -----------------------------------------------------------------------------

    def close(self) -> None:
        """Free the batch and the context, then let go of the model (freed once no other context uses it)."""
        import llama_cpp

        if self._batch is not None:
            llama_cpp.llama_batch_free(self._batch)
            self._batch = None
        if self._context:
            llama_cpp.llama_free(self._context)
            self._context = None
        self._model = None
        if self._loaded is not None:
            self._loaded.release()
            self._loaded = None
        for record in self._records:
            record.clear()


def _model_params(settings: ContextSettings):
    """llama.cpp's defaults with the GPU layers: what `Llama(n_gpu_layers=...)` passes (mmap on)."""
    import llama_cpp

    params = llama_cpp.llama_model_default_params()
    params.n_gpu_layers = ALL_LAYERS if settings.gpu_layers < 0 else settings.gpu_layers
    params.split_mode = llama_cpp.LLAMA_SPLIT_MODE_LAYER
    params.main_gpu = 0
    params.vocab_only = False
    params.load_mode = llama_cpp.LLAMA_LOAD_MODE_MMAP
    return params


def _context_params(settings: ContextSettings):
    """llama.cpp's defaults with what `Llama` sets explicitly, so the numerics are the ones calibrated.

    Flash attention off, as `Llama` sets it (llama.cpp's own default is automatic, and it changes
    the arithmetic); RoPE and YaRN from the model; embeddings off; K, Q and V offloaded with the layers.
    """
    import llama_cpp

    params = llama_cpp.llama_context_default_params()
    params.n_ctx = settings.context
    params.n_batch = settings.batch
    params.n_ubatch = settings.batch
    params.n_threads = settings.threads
    params.n_threads_batch = settings.threads
    params.rope_scaling_type = llama_cpp.LLAMA_ROPE_SCALING_TYPE_UNSPECIFIED
    params.pooling_type = llama_cpp.LLAMA_POOLING_TYPE_UNSPECIFIED
    params.attention_type = llama_cpp.LLAMA_ATTENTION_TYPE_UNSPECIFIED
    params.rope_freq_base = 0.0
    params.rope_freq_scale = 0.0
    params.yarn_ext_factor = -1.0
    params.yarn_attn_factor = 1.0
    params.yarn_beta_fast = 32.0
    params.yarn_beta_slow = 1.0
    params.yarn_orig_ctx = 0
    params.embeddings = False
    params.offload_kqv = True
    params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
    params.no_perf = False
    if settings.sequences > 1:
        # One KV stream per sequence: its cells start at 0 and attention reads only them, so a
        # sequence decoded beside others sums what it sums alone. llama.cpp then splits n_ctx
        # evenly between the sequences.
        params.n_seq_max = settings.sequences
        params.kv_unified = False
        params.n_ctx = settings.context * settings.sequences
    return params


def _route_llama_logs() -> None:
    """Send llama.cpp's log lines to this module's logger (errors as errors, the rest as debug)."""
    import llama_cpp

    global _log_callback
    if _log_callback is None:
        _log_callback = llama_cpp.llama_log_callback(_forward_log_line)
    llama_cpp.llama_log_set(_log_callback, ctypes.c_void_p(0))


def _forward_log_line(level: int, text: bytes, _user_data) -> None:
    line = text.decode("utf-8", "replace").rstrip("\n")
    if line:
        log.log(logging.ERROR if level == GGML_LOG_LEVEL_ERROR else logging.DEBUG, "llama.cpp: %s", line)


# llama.cpp calls back into this ctypes function for as long as the process runs: it must stay referenced.
_log_callback = None
