"""The verifier: re-scores a claimed result with one teacher-forced evaluation and judges it.

Everything a result states that can be recomputed is recomputed: the prompt's token count, the
stop rule, the text, the log-probabilities, and above all each token's margin under the chain's
sampler (DESIGN.md section 6). On the pinned engine (llama.cpp built without llamafile) one
batched evaluation computes exactly what token-by-token decoding computed, so an honest result's
margins are never negative; other builds, GPUs and K-quantised models drift, so the margins are
judged against calibrated per-model thresholds rather than by exact matching. Committed
log-probabilities are compared too but never decide alone: a cheater can score a cheaper model's
output with the real model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from inference.engine import Engine, logprobs_micronats
from inference.errors import InvalidJob, InvalidResult
from inference.result import InferenceResult
from inference.sampler import SamplingParams, candidate_bands, gumbel_noise, scaled_logits
from inference.statistics import DEFAULT_MISS_SLACK, WINDOW_TOKENS, MissTest, miss_test
from inference.thresholds import MICRO, Thresholds

# A position whose claimed token is the verifier's only candidate has no rival: its margin is
# reported as this many logits (it never decides a verdict).
NO_RIVAL_MARGIN = 1e3
# A claimed token that no sampler within the tolerances below could have had as a candidate.
OUTSIDE_CANDIDATES_MARGIN = -1e3
# Whether a claimed token could have been a candidate at all is judged as if any one token's
# logit could be off by this much: builds with llamafile, other SIMD widths and GPUs drift by up
# to ~1 raw logit (DESIGN.md section 6; 1.17 measured here), and a token judged outside the
# candidates fails the job outright. Which tokens are rivals is judged strictly, within the
# thresholds' miss slack: on the pinned build an honest sampler saw exactly the verifier's set.
BOUNDARY_LOGITS = 1.0


@dataclass(frozen=True)
class Evaluation:
    """Per-position statistics of one result under the verifier's own evaluation."""

    margins: np.ndarray  # logits, one per output position (negative: another token should have won)
    logprob_errors: np.ndarray  # |claimed - recomputed| log-probability, micro-nats
    recomputed_logprobs: np.ndarray  # the verifier's log-probabilities, micro-nats
    problems: tuple[str, ...]  # what is wrong regardless of the numbers (stop rule, text, ...)


@dataclass(frozen=True)
class Verdict:
    """Valid or invalid, with the statistics that decided it."""

    valid: bool
    model: str
    job_id: str
    positions: int
    worst_margin_micro: int
    worst_position: int
    misses: int  # positions whose margin is below -miss_slack
    depth_sum_micro: int  # how far beyond the slack they fell, summed over the output
    worst_window_start: int  # the 64-token window that decided, else the deepest (-1: output of 64 or fewer)
    window_depth_sum_micro: int
    honest_chance_log10: float  # log10 of the chance an honest job shows misses like these
    honest_chance_budget_log10: float  # below this the result is invalid
    mean_logprob_error_micro: int
    max_logprob_error_micro: int
    reasons: tuple[str, ...]

    def to_json(self) -> dict:
        """The verdict as a JSON document."""
        return {
            "valid": self.valid,
            "model": self.model,
            "job_id": self.job_id,
            "positions": self.positions,
            "worst_margin_micro": self.worst_margin_micro,
            "worst_position": self.worst_position,
            "misses": self.misses,
            "depth_sum_micro": self.depth_sum_micro,
            "worst_window_start": self.worst_window_start,
            "window_depth_sum_micro": self.window_depth_sum_micro,
            "honest_chance_log10": self.honest_chance_log10,
            "honest_chance_budget_log10": self.honest_chance_budget_log10,
            "mean_logprob_error_micro": self.mean_logprob_error_micro,
            "max_logprob_error_micro": self.max_logprob_error_micro,
            "reasons": list(self.reasons),
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> "Verdict":
        """Read a verdict document."""
        try:
            values = {name: document[name] for name in cls.__dataclass_fields__}
        except (KeyError, TypeError) as error:
            raise InvalidResult(f"verdict lacks field {error}") from None
        values["reasons"] = tuple(values["reasons"])
        return cls(**values)


def rescore_and_judge(result: InferenceResult, engine: Engine, thresholds: Thresholds) -> Verdict:
    """Re-score a claimed result with the model loaded in engine, then judge it by thresholds."""
    evaluation = evaluate(result, engine, thresholds.honest_model.slack)
    return judge(result, evaluation, thresholds)


def evaluate(result: InferenceResult, engine: Engine, rival_tolerance: float = DEFAULT_MISS_SLACK) -> Evaluation:
    """Recompute what a result claims: structural checks, then one batched evaluation.

    rival_tolerance (logits): how far past the top-k or top-p boundary a token may lie and still
    not count as a rival of a sampled token; the thresholds' miss slack.
    """
    if result.job.model != engine.model_id:
        raise InvalidJob(
            f"result is for model {result.job.model[:12]}..., the verifier loaded {engine.model_id[:12]}..."
        )
    problems = _token_problems(result, engine)
    if problems:
        # Unknown token ids cannot be evaluated: the result is invalid on its face.
        return _empty_evaluation(problems)
    prompt = engine.prompt_tokens(result.job.prompt, result.job.prompt_format)
    problems = _structure_problems(result, engine, len(prompt))
    rows = engine.output_logits(prompt, result.tokens)
    recomputed = logprobs_micronats(rows, result.tokens)
    errors = np.abs(np.asarray(result.logprobs_micronats, dtype=np.int64) - recomputed)
    margins = token_margins(rows, result.tokens, result.job.sampling, result.job.job_id, rival_tolerance)
    return Evaluation(margins, errors, recomputed, tuple(problems))


def judge(result: InferenceResult, evaluation: Evaluation, thresholds: Thresholds,
          positions: int | None = None) -> Verdict:
    """The verdict from an evaluation, optionally from its first `positions` output positions only."""
    count = len(evaluation.margins) if positions is None else min(positions, len(evaluation.margins))
    margins = evaluation.margins[:count]
    errors = evaluation.logprob_errors[:count]
    reasons = list(evaluation.problems)
    worst_position = int(np.argmin(margins)) if count else -1
    worst = _micro(margins[worst_position]) if count else 0
    misses = miss_test(margins, thresholds.honest_model)
    budget_log10 = round(math.log10(thresholds.false_positive_budget), 2)
    chance_log10 = round(misses.log10_chance, 2)
    mean_error = int(errors.mean()) if count else 0
    max_error = int(errors.max()) if count else 0
    if count and worst < thresholds.worst_margin_micro:
        reasons.append(
            f"token at position {worst_position} has margin {worst / MICRO:.3f} logits, "
            f"below the bound {thresholds.worst_margin_micro / MICRO:.3f}"
        )
    if misses.rejects(thresholds.false_positive_budget):
        reasons.append(_misses_reason(misses, thresholds, count))
    if mean_error > thresholds.mean_logprob_error_micro:
        reasons.append(
            f"log-probabilities differ by {mean_error / MICRO:.4f} nats on average "
            f"(at most {thresholds.mean_logprob_error_micro / MICRO:.4f})"
        )
    if max_error > thresholds.max_logprob_error_micro:
        reasons.append(
            f"a log-probability differs by {max_error / MICRO:.4f} nats "
            f"(at most {thresholds.max_logprob_error_micro / MICRO:.4f})"
        )
    return Verdict(
        valid=not reasons,
        model=result.job.model,
        job_id=result.job.job_id_hex,
        positions=count,
        worst_margin_micro=worst,
        worst_position=worst_position,
        misses=misses.misses,
        depth_sum_micro=_micro(misses.depth_sum),
        worst_window_start=misses.window_start,
        window_depth_sum_micro=_micro(misses.window_depth_sum),
        honest_chance_log10=chance_log10,
        honest_chance_budget_log10=budget_log10,
        mean_logprob_error_micro=mean_error,
        max_logprob_error_micro=max_error,
        reasons=tuple(reasons),
    )


def _misses_reason(misses: MissTest, thresholds: Thresholds, positions: int) -> str:
    slack = thresholds.miss_slack_micro / MICRO
    end = misses.window_start + WINDOW_TOKENS - 1
    if misses.decided_by_window and misses.decided_by_count:
        where = f"{misses.window_misses} of them in the tokens {misses.window_start}-{end}"
    elif misses.decided_by_window:
        where = f"the tokens {misses.window_start}-{end} lost {misses.window_depth_sum:.2f} logits beyond it"
    elif misses.decided_by_count:
        where = ""
    else:
        where = f"they lost {misses.depth_sum:.2f} logits beyond it"
    return (f"{misses.misses} of {positions} tokens lost to another token by more than {slack:.2f} logits"
            f"{f' ({where})' if where else ''}: an honest executor does that with a chance of "
            f"10^{misses.log10_chance:.1f} "
            f"(the budget is 10^{math.log10(thresholds.false_positive_budget):.1f})")


# -- margins ---------------------------------------------------------------------------------


def token_margins(rows: np.ndarray, tokens: Sequence[int], params: SamplingParams, job_id: bytes,
                  rival_tolerance: float = DEFAULT_MISS_SLACK) -> np.ndarray:
    """Per position: T x (claimed token's score - best score among the other candidates), in logits."""
    if len(tokens) == 0:
        return np.zeros(0, dtype=np.float64)
    if params.greedy or params.top_k == 1:
        # Top-k 1 leaves the sampler one candidate whatever the noise: the job is greedy, and its
        # runner-up is a rival like a greedy job's, never "no rival".
        return greedy_margins(rows, tokens)
    return np.array(
        [_sampled_margin(row, token, params, job_id, position, rival_tolerance)
         for position, (row, token) in enumerate(zip(rows, tokens))],
        dtype=np.float64,
    )


def greedy_margins(rows: np.ndarray, tokens: Sequence[int]) -> np.ndarray:
    """Per position: claimed logit - best other logit (negative when another token is the argmax)."""
    index = np.arange(len(tokens))
    claimed = rows[index, np.asarray(tokens)].astype(np.float64)
    others = rows.copy()
    others[index, np.asarray(tokens)] = -np.inf
    margins = claimed - others.max(axis=1).astype(np.float64)
    # Ties go to the lowest id: a claimed token tied with a lower id is one honest rounding away.
    return margins


def _sampled_margin(row: np.ndarray, token: int, params: SamplingParams, job_id: bytes, position: int,
                    rival_tolerance: float) -> float:
    scaled = scaled_logits(row, params)
    bands = candidate_bands(scaled, params, BOUNDARY_LOGITS, rival_tolerance)
    if token not in bands.possible:
        return OUTSIDE_CANDIDATES_MARGIN
    # Rivals are only the tokens that are candidates beyond doubt: a token within the tolerance of
    # the top-k or top-p boundary may have been out of an honest sampler's set.
    rivals = bands.robust[bands.robust != token]
    if rivals.size == 0:
        return NO_RIVAL_MARGIN
    ids = np.append(rivals, token)
    scores = scaled[ids] + gumbel_noise(params.seed, params.noise_job_id(job_id), position, ids)
    return float(params.temperature * (scores[-1] - scores[:-1].max()))


# -- structural checks -----------------------------------------------------------------------


def _token_problems(result: InferenceResult, engine: Engine) -> list[str]:
    problems = []
    outside = [token for token in result.tokens if not 0 <= token < engine.vocabulary_size]
    if outside:
        problems.append(f"token id {outside[0]} is not in the model's {engine.vocabulary_size}-token vocabulary")
    if not result.tokens:
        problems.append("the output is empty (a job always yields at least one token)")
    if len(result.tokens) > result.job.max_tokens:
        problems.append(f"{len(result.tokens)} tokens exceed max_tokens {result.job.max_tokens}")
    # Checked against the model before anything is sized by them: a claimed max_tokens of 10^18
    # once sized the context and was then judged valid.
    if result.prompt_tokens + result.job.max_tokens > engine.trained_context:
        problems.append(
            f"a {result.prompt_tokens}-token prompt with max_tokens {result.job.max_tokens} does not fit "
            f"the model's context of {engine.trained_context} tokens"
        )
    return problems


def _structure_problems(result: InferenceResult, engine: Engine, prompt_length: int) -> list[str]:
    problems = []
    if result.prompt_tokens != prompt_length:
        problems.append(f"prompt_tokens is {result.prompt_tokens}, the prompt has {prompt_length} tokens")
    problems.extend(_stop_problems(result, engine))
    if result.text != engine.detokenize(result.tokens):
        problems.append("text is not the detokenised tokens")
    return problems


def _stop_problems(result: InferenceResult, engine: Engine) -> list[str]:
    tokens = result.tokens
    ends = [index for index, token in enumerate(tokens) if engine.is_end_of_generation(token)]
    if ends and ends[0] != len(tokens) - 1:
        return [f"generation continued after end-of-sequence at position {ends[0]}"]
    if result.stop_reason == "eos" and not ends:
        return ["stop_reason is eos but the output does not end with end-of-sequence"]
    if result.stop_reason == "length" and ends:
        return ["stop_reason is length but the output ends with end-of-sequence"]
    if result.stop_reason == "length" and len(tokens) != result.job.max_tokens:
        return [f"output stopped after {len(tokens)} of {result.job.max_tokens} tokens without end-of-sequence"]
    return []


def _empty_evaluation(problems: list[str]) -> Evaluation:
    empty = np.zeros(0)
    return Evaluation(empty, empty.astype(np.int64), empty.astype(np.int64), tuple(problems))


def _micro(value: float) -> int:
    return math.floor(value * MICRO)
