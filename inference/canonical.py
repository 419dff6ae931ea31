"""The canonical scoring pass: a result's scores are those of one fresh, fixed-shape evaluation.

Whatever fast path produced a job's tokens (a reused KV cache, a batch of several jobs, a GPU),
the committed result must be what a validator of the same engine class computes when it
re-evaluates prompt + output: one teacher-forced evaluation on a fresh context (no cached prefix)
in the engine's n_batch chunks. So the executor evaluates that way itself, re-chooses every output
position from its canonical row, and where the canonical choice differs from the fast token it
keeps the tokens before, takes the canonical choice, and regenerates the rest on a single-sequence
engine (the rollback of LLM-42, arXiv 2601.17768). The new tail is checked the same way, for a
bounded number of rounds; after the last one, the single-sequence tail is kept as generated.

On the pinned CPU build every path computes the same rows, so the pass rolls back nothing: it costs
one batched evaluation per result. On a GPU it is what makes results
verifiable at all (issue 27: 9 of 12 jobs gave other tokens on a reused engine than on a fresh one).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from inference.engine import Chooser, Engine, logprobs_micronats
from inference.errors import InvalidResult
from inference.result import InferenceJob, InferenceResult

log = logging.getLogger(__name__)

# Rounds of evaluate, compare, regenerate: one suffices when single-sequence generation is exact.
CANONICAL_ROUNDS = 3


@dataclass(frozen=True)
class CanonicalOutcome:
    """The committed result, how many fast-path positions were rolled back, and evaluations run."""

    result: InferenceResult
    rolled_back: int
    evaluations: int


def canonical_pass(engine: Engine, job: InferenceJob, prompt: Sequence[int], tokens: Sequence[int],
                   choose: Chooser, rounds: int = CANONICAL_ROUNDS) -> CanonicalOutcome:
    """The result of `tokens` (a fast path's output for `job`) made canonical on the single-sequence `engine`."""
    if not 0 < len(tokens) <= job.max_tokens:
        raise InvalidResult(f"a fast path's output holds 1 to {job.max_tokens} tokens, not {len(tokens)}")
    tokens = list(tokens)
    # Nothing follows an end-of-generation token.
    finished = next((index + 1 for index, token in enumerate(tokens) if engine.is_end_of_generation(token)),
                    len(tokens))
    rolled_back = len(tokens) - finished
    del tokens[finished:]
    evaluations = 0
    while True:
        rows = engine.output_logits(prompt, tokens, fresh=True)
        evaluations += 1
        position, choice = first_disagreement(rows, tokens, choose)
        if position is None and ends(engine, tokens, job.max_tokens):
            break
        if evaluations > rounds:
            # Single-sequence generation disagreed with the fresh evaluation that many times: keep
            # its tokens, scored canonically (never on the pinned CPU build, where both are exact).
            log.warning("canonical pass: job %s still disagrees at position %d of %d after %d rounds",
                        job.job_id.hex()[:12], position, len(tokens), rounds)
            break
        if position is not None:
            rolled_back += len(tokens) - position
            tokens = tokens[:position] + [choice]
        # else a fast path that stopped short (neither end-of-generation nor max_tokens) goes on.
        if not ends(engine, tokens, job.max_tokens):
            tokens, _ = engine.continue_generation(prompt, tokens, job.max_tokens, choose)
    stop_reason = "eos" if engine.is_end_of_generation(tokens[-1]) else "length"
    if not ends(engine, tokens, job.max_tokens):
        raise InvalidResult(f"the canonical pass left job {job.job_id.hex()[:12]} unfinished")
    result = engine.result(job, prompt, tokens, logprobs_micronats(rows, tokens), stop_reason)
    return CanonicalOutcome(result=result, rolled_back=rolled_back, evaluations=evaluations)


def first_disagreement(rows: np.ndarray, tokens: Sequence[int], choose: Chooser) -> tuple[int | None, int]:
    """The first position whose canonical choice is not its token, and that choice; (None, -1) when all agree."""
    for position, token in enumerate(tokens):
        choice = choose(rows[position], position)
        if choice != token:
            return position, int(choice)
    return None, -1


def ends(engine: Engine, tokens: Sequence[int], max_tokens: int) -> bool:
    """Whether an output is finished: it ends with an end-of-generation token or holds max_tokens."""
    return len(tokens) >= max_tokens or engine.is_end_of_generation(tokens[-1])
