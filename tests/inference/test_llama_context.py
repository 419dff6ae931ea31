"""The one owner of llama.cpp's context, with the real embedded model: its record of the KV cache is
llama.cpp's, a failed decode leaves nothing half-cached, and it drives llama.cpp as `Llama` would."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from inference.errors import EngineError
from inference.llama_context import ContextSettings, LlamaContext, _context_params, _model_params

SETTINGS = ContextSettings(threads=2, context=512, batch=64, gpu_layers=0)
INFERENCE = Path(__file__).resolve().parents[2] / "inference"


@pytest.fixture(scope="module")
def context(embedded):
    loaded = LlamaContext(str(embedded.path), SETTINGS)
    yield loaded
    loaded.close()


def _positions(context: LlamaContext) -> int:
    """What llama.cpp itself says sequence 0 holds (the largest position + 1)."""
    import llama_cpp

    return llama_cpp.llama_memory_seq_pos_max(llama_cpp.llama_get_memory(context._context), 0) + 1


def test_the_record_of_the_kv_cache_follows_llama_cpps_own_positions(context):
    tokens = context.tokenize(b"The quick brown fox jumps over the lazy dog", add_bos=False, special=False)
    context.keep(0)
    assert _positions(context) == 0 and context.shared_prefix(tokens) == 0
    context.extend(tokens, output_indices=[len(tokens) - 1])
    assert _positions(context) == len(tokens) and context.shared_prefix(tokens) == len(tokens)
    assert context.keep(3) == 3 and _positions(context) == 3
    # Asking to keep more than is cached keeps what is there.
    assert context.keep(1000) == 3
    context.extend(tokens[3:5], output_indices=[1])
    assert _positions(context) == 5 and context.shared_prefix(tokens) == 5


def test_rows_of_a_batched_decode_are_the_rows_of_one_token_at_a_time(context):
    tokens = context.tokenize(b"Rivers run to the sea, and the sea is never full.", add_bos=False, special=False)
    context.keep(0)
    rows = context.extend(tokens, output_indices=range(len(tokens)), rows=True)
    assert rows.shape == (len(tokens), context.vocabulary_size)
    context.keep(0)
    for index, token in enumerate(tokens):
        context.extend([token], output_indices=[0])
        assert np.array_equal(context.last_logits(), rows[index]), index


def test_the_last_logits_are_a_copy_the_next_decode_leaves_alone(context):
    tokens = context.tokenize(b"One two three", add_bos=False, special=False)
    context.keep(0)
    context.extend(tokens, output_indices=[len(tokens) - 1])
    logits = context.last_logits()
    before = logits.copy()
    context.extend([tokens[0]], output_indices=[0])
    assert np.array_equal(logits, before)


def test_a_failed_decode_leaves_an_empty_cache_and_a_clear_error(context):
    tokens = context.tokenize(b"Hello there", add_bos=False, special=False)
    context.keep(0)
    context.extend(tokens, output_indices=[len(tokens) - 1])
    with pytest.raises(EngineError, match="llama_decode failed with status"):
        context.extend([context.vocabulary_size + 5], output_indices=[0])
    assert _positions(context) == 0 and context.shared_prefix(tokens) == 0
    # The context works on afterwards.
    context.extend(tokens, output_indices=[len(tokens) - 1])
    assert _positions(context) == len(tokens)


def test_a_missing_or_unreadable_model_file_is_an_engine_error(tmp_path):
    with pytest.raises(EngineError, match="no such file"):
        LlamaContext(str(tmp_path / "absent.gguf"), SETTINGS)
    garbage = tmp_path / "garbage.gguf"
    garbage.write_bytes(b"GGUF" + bytes(60))
    with pytest.raises(EngineError, match="not a model it can read"):
        LlamaContext(str(garbage), SETTINGS)


def test_the_context_is_created_with_the_parameters_llama_would_use(embedded):
    # The thresholds were calibrated with contexts made by llama-cpp-python's Llama; the same
    # parameters, field by field, keep the same arithmetic (flash attention off, RoPE from the model).
    from llama_cpp import Llama

    reference = Llama(model_path=str(embedded.path), n_ctx=SETTINGS.context, n_batch=SETTINGS.batch,
                      n_ubatch=SETTINGS.batch, n_threads=SETTINGS.threads, n_threads_batch=SETTINGS.threads,
                      n_gpu_layers=SETTINGS.gpu_layers, verbose=False)
    try:
        for ours, theirs in ((_context_params(SETTINGS), reference.context_params),
                             (_model_params(SETTINGS), reference.model_params)):
            for name, _kind in ours._fields_:
                mine, expected = getattr(ours, name), getattr(theirs, name)
                if isinstance(mine, (bool, int, float)):
                    assert mine == expected, name
    finally:
        reference.close()


def test_the_engine_reaches_into_no_private_state_of_llama_cpp_python():
    # Issue 23: the engine once read Llama._model and decoded on Llama's context behind its back,
    # beside Llama's own record of the cache. Now only LlamaContext touches llama.cpp's context.
    for name in ("engine.py", "llama_context.py"):
        tree = ast.parse((INFERENCE / name).read_text())
        private = [node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
                   and isinstance(node.value, ast.Name) and node.value.id == "llama_cpp"
                   and node.attr.startswith("_") and not node.attr.endswith("__")]
        assert private == [], (name, private)
        imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                    and (node.module or "").startswith("llama_cpp") for alias in node.names]
        assert "Llama" not in imported and not any(module.startswith("_") for module in imported), (name, imported)
    engine_source = (INFERENCE / "engine.py").read_text()
    assert "llama_memory" not in engine_source and "llama_decode" not in engine_source
