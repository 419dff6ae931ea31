"""Per-model verification thresholds: produced by calibration, shipped for the embedded model.

What judges a result on the network is the set the chain's model registry holds for its model
(inference/registration.py `registered_thresholds`); the files here feed registrations and serve
calibration, benchmarks, tests and `inferchain verify --thresholds FILE`.

Every bound is an integer in micro-units (micro-logits for margins, micro-nats for
log-probabilities) so that the chain's model registry can store it without floats. A threshold
set records the engine it was calibrated with: llama.cpp's numerics change between releases.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from inference.errors import InferenceError, InvalidThresholds, ThresholdsNotFound
from inference.statistics import HonestModel
from proto.thresholds import MICRO, PPB, PPM, threshold_problem

log = logging.getLogger(__name__)

SHIPPED_FILE = "thresholds.json"
# A thresholds file is a few hundred bytes per model: anything far larger is refused unread.
MAX_THRESHOLDS_FILE_BYTES = 1_000_000


@dataclass(frozen=True)
class Thresholds:
    """Bounds a result's statistics must stay within to be judged valid."""

    model: str
    engine: str
    worst_margin_micro: int  # the worst position's margin must not be below this (negative)
    miss_slack_micro: int  # a position misses when its margin is below -slack...
    miss_rate_ppm: int  # ...which an honest position does with at most this probability...
    miss_depth_micro: int  # ...by a depth beyond the slack that is exponential with this mean
    false_positive_budget_ppb: int  # the chance per job, in 1e-9, that an honest result is judged invalid
    mean_logprob_error_micro: int  # mean |claimed - recomputed| log-probability, micro-nats
    max_logprob_error_micro: int  # largest single |claimed - recomputed|, micro-nats
    calibration: str = ""  # the command and data that produced these bounds

    def __post_init__(self):
        _check(self)

    @property
    def honest_model(self) -> HonestModel:
        """The honest executor's misses, as the count-and-depth test models them."""
        return HonestModel(
            miss_rate=self.miss_rate_ppm / PPM,
            mean_depth=self.miss_depth_micro / MICRO,
            slack=self.miss_slack_micro / MICRO,
        )

    @property
    def false_positive_budget(self) -> float:
        """The budget as a probability per job."""
        return self.false_positive_budget_ppb / PPB

    def to_json(self) -> dict:
        """The thresholds as a JSON document."""
        return asdict(self)

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> "Thresholds":
        """Read thresholds, raising InferenceError when a field is missing or mistyped."""
        names = {field.name for field in fields(cls)}
        missing = names - set(document) - {"calibration"}
        if missing:
            raise InferenceError(f"thresholds lack {', '.join(sorted(missing))}")
        return cls(**{name: document[name] for name in names if name in document})


INTEGER_FIELDS = ("worst_margin_micro", "miss_slack_micro", "miss_rate_ppm", "miss_depth_micro",
                  "false_positive_budget_ppb", "mean_logprob_error_micro", "max_logprob_error_micro")


def _check(thresholds: Thresholds) -> None:
    """The shared rule of proto/thresholds.py, after checking each value is an integer."""
    for name in INTEGER_FIELDS:
        value = getattr(thresholds, name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise InferenceError(f"threshold {name} must be an integer, got {value!r}")
    problem = threshold_problem(**{name: getattr(thresholds, name) for name in INTEGER_FIELDS})
    if problem is not None:
        raise InferenceError(problem)


def shipped_thresholds() -> dict[str, Thresholds]:
    """The thresholds shipped in inference/data/thresholds.json, by model id."""
    try:
        text = resources.files("inference").joinpath("data", SHIPPED_FILE).read_text()
    except (FileNotFoundError, OSError):
        return {}
    return {model: Thresholds.from_json(document) for model, document in json.loads(text).items()}


def local_thresholds_path(store_directory: str | os.PathLike, model_id: str) -> Path:
    """Where `inferchain model calibrate` keeps a model's thresholds in a model store."""
    return Path(store_directory) / f"{model_id}.thresholds.json"


def load_thresholds(model_id: str, store_directory: str | os.PathLike | None = None,
                    engine: str | None = None) -> Thresholds:
    """A model's local thresholds: calibrated in the store if present, else shipped; warn on an engine mismatch.

    For calibration, benchmarks and tests: a result is judged on the network by the thresholds its
    model's registration carries (inference/registration.py `registered_thresholds`).
    """
    thresholds = _local(model_id, store_directory) or shipped_thresholds().get(model_id)
    if thresholds is None:
        raise ThresholdsNotFound(
            f"no verification thresholds for model {model_id[:12]}...: "
            f"run `inferchain model calibrate {model_id[:12]}`"
        )
    if engine is not None and thresholds.engine != engine:
        log.warning(
            "thresholds for %s were calibrated with %s, this node runs %s: re-run calibration",
            model_id[:12], thresholds.engine, engine,
        )
    return thresholds


def read_thresholds_file(path: str | os.PathLike, model_id: str) -> Thresholds:
    """A model's thresholds from a file: one model's document, or a by-model-id map such as the shipped one.

    InvalidThresholds when the file cannot be read or holds no valid thresholds for model_id.
    """
    path = Path(path)
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_THRESHOLDS_FILE_BYTES + 1)  # never more: /dev/zero is a file too
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise InvalidThresholds(f"cannot read the thresholds file {path}: {reason}") from None
    if len(raw) > MAX_THRESHOLDS_FILE_BYTES:
        raise InvalidThresholds(f"{path} is not a thresholds file: larger than {MAX_THRESHOLDS_FILE_BYTES} bytes")
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise InvalidThresholds(f"{path} is not a thresholds file: not JSON ({error})") from None
    if not isinstance(document, dict):
        raise InvalidThresholds(f"{path} is not a thresholds file: not a JSON object")
    if "model" not in document:
        if model_id not in document:
            raise InvalidThresholds(f"{path} has no thresholds for model {model_id[:12]}...")
        document = document[model_id]
    try:
        thresholds = Thresholds.from_json(document)
    except (InferenceError, TypeError) as error:
        raise InvalidThresholds(f"{path} holds unusable thresholds: {error}") from None
    if thresholds.model != model_id:
        raise InvalidThresholds(f"{path} holds the thresholds of model {str(thresholds.model)[:12]}..., "
                                f"not of model {model_id[:12]}...")
    return thresholds


def _local(model_id: str, store_directory) -> Thresholds | None:
    if store_directory is None:
        return None
    path = local_thresholds_path(store_directory, model_id)
    if not path.is_file():
        return None
    return Thresholds.from_json(json.loads(path.read_text()))


def write_thresholds(thresholds: Thresholds, path: str | os.PathLike) -> None:
    """Write thresholds to a file: a per-model file, or merged into a by-model-id file such as the shipped one."""
    path = Path(path)
    if path.name == SHIPPED_FILE:
        existing = json.loads(path.read_text()) if path.is_file() else {}
        existing[thresholds.model] = thresholds.to_json()
        document: dict = existing
    else:
        document = thresholds.to_json()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
