"""Judges a GPU run's saved results with this machine's CPU verifier: the first cross-class row.

    .venv/bin/python bench/gpu/judge.py RESULTS.json [--executor-class NAME] [--out FILE] [--markdown FILE]

RESULTS.json is what bench/gpu/measure.py wrote on the device (part c): honest rows (the reference
calibration jobs, the bench jobs, held-out prompts, batched, n_batch 8, a reused prefix) and the
frauds of docs/verification.md that need an executor, all generated there. Here, with the pinned
CPU build (class "cpu"), every result is re-scored by inference/verifier.py exactly as a CPU
validator would; the forged results that need no executor (truncated, tokens replaced, another
prompt's answer, altered log-probabilities, a greedy job answered at T 0.3 and the reverse) are
made here from the device's reference results, as calibration makes them from its own.

Out come, in the format of a ClassPair (proto/types.proto; issue 27 Part C):
  - executor_class (the device's class, e.g. "cuda-sm90"), verifier_class "cpu";
  - thresholds fitted from the device's honest rows except the held-out one, as
    inference/calibration/fitting.py fits a model's own (the CPU<->GPU margin distribution);
  - detection_ppm: the share of fraud jobs (same-weights rows and outputs identical to the honest
    one excluded, as in the calibration table) judged invalid by those thresholds at full length;
and the same for the device judging its own results (its EngineClass thresholds, the same-class
check), from the margins measure.py computed there. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from inference import frauds  # noqa: E402
from inference.calibration.fitting import fit_thresholds, with_true_logprobs  # noqa: E402
from inference.calibration.plan import (  # noqa: E402
    GREEDY,
    SAMPLINGS,
    T_0_3,
    CalibrationReport,
    CalibrationSettings,
    Outcome,
    Row,
)
from inference.calibration.table import render_table, row_summary  # noqa: E402
from inference.engine import Engine, EngineConfig, engine_version  # noqa: E402
from inference.errors import InferenceError  # noqa: E402
from inference.model_store import ModelStore  # noqa: E402
from inference.result import InferenceResult  # noqa: E402
from inference.statistics import DEFAULT_MISS_SLACK  # noqa: E402
from inference.thresholds import INTEGER_FIELDS, Thresholds  # noqa: E402
from inference.verifier import Evaluation, evaluate  # noqa: E402

# The pinned CPU build's class name (docs/protocol.md, issue 27 Part C).
VERIFIER_CLASS = "cpu"
PPM = 1_000_000


class CrossClassJudge:
    """The device's rows re-scored by this machine's verifier, plus the forged rows made here."""

    def __init__(self, results: dict, model_path: Path, threads: int):
        self.results = results
        rows = results.get("parts", {}).get("c_rows", {})
        if not isinstance(rows, dict) or not rows.get("rows"):
            raise InferenceError("the results hold no saved rows (part c of measure.py did not run)")
        self.device_rows = rows["rows"]
        self.max_tokens = rows["max_tokens"]
        self.reference_keys = {bytes.fromhex(k): tuple(v) for k, v in rows["reference_keys"].items()}
        self.model_id = results["model"]
        # The verifier a CPU validator runs: Calibration's reference configuration.
        self.verifier = Engine(model_path, self.model_id, EngineConfig(threads=threads, gpu_layers=0,
                                                                       reuse_prefix=False))
        self.end_tokens = set(self.verifier.end_of_generation_tokens())
        self.cross_rows: list[Row] = []
        self.same_rows: list[Row] = []

    def close(self) -> None:
        self.verifier.close()

    # -- the device's rows -----------------------------------------------------------------------

    def run(self) -> None:
        reference = None
        for saved in self.device_rows:
            cross, same = self.judged_row(saved)
            self.cross_rows.append(cross)
            self.same_rows.append(same)
            if saved["key"] == "reference":
                reference = cross
            print(f"{saved['key']}: {len(cross.outcomes)} jobs judged", flush=True)
        if reference is not None:
            for row in self.forged_rows(reference):
                self.cross_rows.append(row)
                print(f"{row.key}: {len(row.outcomes)} forged jobs judged", flush=True)

    def judged_row(self, saved: dict) -> tuple[Row, Row]:
        """One device row judged here (cross-class) and by the device itself (same class)."""
        honest_by_job = self._honest_results()
        cross = Row(saved["key"], saved["label"], saved["honest"], exempt=saved["exempt"], held_out=saved["held_out"])
        same = Row(saved["key"], saved["label"], saved["honest"], exempt=saved["exempt"], held_out=saved["held_out"])
        for entry in saved["outcomes"]:
            result = InferenceResult.from_json(entry["result"])
            started = time.perf_counter()
            evaluation = evaluate(result, self.verifier, DEFAULT_MISS_SLACK)
            verify_seconds = time.perf_counter() - started
            device = entry["same_class"]
            device_evaluation = Evaluation(
                np.asarray(device["margins"], dtype=np.float64), np.asarray(device["logprob_errors"], dtype=np.int64),
                np.asarray(device["recomputed_logprobs"], dtype=np.int64), tuple(device["problems"]))
            cross_result, same_result = result, result
            if saved["claims_true_logprobs"]:
                # The forger's best move: it claims the log-probabilities its verifier will compute.
                cross_result, evaluation = with_true_logprobs(result, evaluation)
                same_result, device_evaluation = with_true_logprobs(result, device_evaluation)
            altered = entry.get("altered")
            honest = honest_by_job.get(result.job.job_id)
            if altered is not None:
                identical = altered == 0
            else:
                identical = honest is not None and honest.tokens == result.tokens
            cross.outcomes.append(Outcome(cross_result, evaluation, entry["generate_seconds"], verify_seconds,
                                          identical=identical, altered=altered))
            same.outcomes.append(Outcome(same_result, device_evaluation, entry["generate_seconds"],
                                         device["verify_seconds"], identical=identical, altered=altered))
        return cross, same

    def _honest_results(self) -> dict[bytes, InferenceResult]:
        if not hasattr(self, "_honest"):
            self._honest = {}
            for saved in self.device_rows:
                if saved["key"] == "reference":
                    for entry in saved["outcomes"]:
                        result = InferenceResult.from_json(entry["result"])
                        self._honest[result.job.job_id] = result
        return self._honest

    # -- forged rows, made here from the device's reference results ---------------------------------------

    def forged_rows(self, reference: Row) -> list[Row]:
        outcomes = reference.outcomes
        # The device's own subset (measure.py spreads its rows the same way).
        row_jobs = self.results.get("sizes", {}).get("row_jobs") or min(16, len(outcomes))
        subset = spread(outcomes, row_jobs, len(SAMPLINGS))
        by_key = {self.reference_keys[o.result.job.job_id]: o.result for o in outcomes
                  if o.result.job.job_id in self.reference_keys}
        prompts = len({key[0] for key in by_key})

        def claim(sampling_index=None, next_prompt=False):
            def forge(result: InferenceResult) -> InferenceResult | None:
                prompt_index, own_sampling = self.reference_keys[result.job.job_id]
                if next_prompt:
                    donor = by_key.get(((prompt_index + 1) % prompts, own_sampling))
                else:
                    donor = by_key.get((prompt_index, sampling_index))
                return frauds.claim_for(result, donor) if donor is not None else None
            return forge

        greedy = [o for o in outcomes if self.reference_keys[o.result.job.job_id][1] == GREEDY][:row_jobs]
        sampled = [o for o in subset if not o.result.job.sampling.greedy]
        rows = [
            self.forged_row("greedy_for_sampled", "sampled job answered greedily", sampled, claim(GREEDY)),
            self.forged_row("sampled_for_greedy", "greedy job answered at T 0.3", greedy, claim(T_0_3)),
            self.forged_row("truncated", "output truncated early (ends with EOS)", subset, lambda result: frauds.truncate(
                result, self.verifier.end_of_sequence_token, self.verifier.detokenize)),
        ]
        for count in (1, 5, 20):
            rows.append(self.forged_row(f"replaced_{count}", f"{count} token{'s' if count > 1 else ''} replaced", subset,
                                        lambda result, count=count: frauds.replace_tokens(
                                            result, count, self.verifier.vocabulary_size, self.end_tokens,
                                            self.verifier.detokenize)))
        if prompts > 1:
            rows.append(self.forged_row("other_prompt", "answer to a different prompt", subset, claim(next_prompt=True)))
        altered = Row("altered_logprobs", "altered log-probabilities (tokens honest)", honest=False)
        for honest in subset:
            forged = frauds.alter_logprobs(honest.result)
            errors = np.abs(np.asarray(forged.logprobs_micronats) - honest.evaluation.recomputed_logprobs)
            altered.outcomes.append(Outcome(forged, dataclasses.replace(honest.evaluation, logprob_errors=errors),
                                            honest.generate_seconds, honest.verify_seconds))
        rows.append(altered)
        return [row for row in rows if row.outcomes]

    def forged_row(self, key: str, label: str, honest_outcomes: list[Outcome], forge) -> Row:
        row = Row(key, label, honest=False)
        for honest in honest_outcomes:
            forged = forge(honest.result)
            if forged is None:
                continue
            started = time.perf_counter()
            evaluation = evaluate(forged, self.verifier, DEFAULT_MISS_SLACK)
            forged, evaluation = with_true_logprobs(forged, evaluation)
            row.outcomes.append(Outcome(forged, evaluation, honest.generate_seconds, time.perf_counter() - started,
                                        identical=forged.tokens == honest.result.tokens))
        return row


# -- figures ------------------------------------------------------------------------------------------


def spread(outcomes: list, count: int, samplings: int) -> list:
    """calibration.run.spread: `count` jobs over as many prompts as possible, the sampling turning."""
    prompts = len(outcomes) // samplings
    count = min(count, len(outcomes))
    if prompts == 0:
        return outcomes[:count]
    return [outcomes[(index * prompts // count) * samplings + index % samplings] for index in range(count)]


def margin_distribution(rows: list[Row]) -> dict:
    """The honest margins' lower tail and the log-probability errors, over every honest row."""
    evaluations = [o.evaluation for row in rows if row.honest for o in row.outcomes if len(o.evaluation.margins)]
    if not evaluations:
        return {}
    margins = np.concatenate([e.margins for e in evaluations])
    errors = np.concatenate([e.logprob_errors for e in evaluations]) / 1e6
    worst = np.array([e.margins.min() for e in evaluations])
    return {
        "jobs": len(evaluations),
        "positions": int(margins.size),
        "negative_margins": int(np.count_nonzero(margins < 0)),
        "below_minus_0_01": int(np.count_nonzero(margins < -0.01)),
        "below_minus_0_1": int(np.count_nonzero(margins < -0.1)),
        "below_minus_1": int(np.count_nonzero(margins < -1.0)),
        "jobs_with_a_negative_margin": int(np.count_nonzero(worst < 0)),
        "margin_quantiles": {str(q): round(float(np.quantile(margins, q)), 4) for q in (0.0, 0.001, 0.01, 0.05, 0.5)},
        "worst_margin_per_job_min_median": [round(float(worst.min()), 4), round(float(np.median(worst)), 4)],
        "logprob_error_nats_mean_max": [round(float(errors.mean()), 6), round(float(errors.max()), 6)],
        "logprob_error_nats_p99": round(float(np.quantile(errors, 0.99)), 6),
    }


def detection(rows: list[Row], thresholds: Thresholds, max_tokens: int) -> dict:
    """Fraud jobs judged invalid at full length, per row and in all (same-weights rows apart)."""
    per_row, caught, judged = {}, 0, 0
    for row in rows:
        if row.honest:
            continue
        summary = row_summary(row, thresholds, max_tokens)
        per_row[row.key] = {"invalid": summary["invalid"][max_tokens], "judged": summary["judged"],
                            "identical": summary["identical"], "exempt": row.exempt}
        if not row.exempt:
            caught += summary["invalid"][max_tokens]
            judged += summary["judged"]
    honest = [row_summary(row, thresholds, max_tokens) for row in rows if row.honest]
    return {
        "detection_ppm": caught * PPM // judged if judged else 0,
        "caught": caught,
        "judged": judged,
        "rows": per_row,
        "honest_invalid": {s["key"]: f"{s['invalid'][max_tokens]}/{s['judged']}" for s in honest},
    }


def fitted(model_id: str, rows: list[Row], command: str) -> Thresholds:
    return fit_thresholds(model_id, [row for row in rows if row.honest and not row.held_out], command)


def integer_fields(thresholds: Thresholds) -> dict:
    return {name: getattr(thresholds, name) for name in INTEGER_FIELDS}


def executor_class_name(device: str) -> str:
    """'cuda-sm90' from nvidia-smi's 'NVIDIA H100 80GB HBM3, 9.0, 580.159.04'; 'cpu' for a CPU run."""
    parts = [part.strip() for part in device.split(",")]
    if len(parts) >= 2 and parts[1].replace(".", "").isdigit():
        return f"cuda-sm{parts[1].replace('.', '')}"
    return VERIFIER_CLASS


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", help="the results.json measure.py wrote on the device")
    parser.add_argument("--executor-class", help="the device's class name (default: cuda-sm<compute capability>)")
    parser.add_argument("--model", help="the GGUF file (default: the embedded model)")
    parser.add_argument("--threads", type=int, default=2, help="verifier threads (default 2, calibration's)")
    parser.add_argument("--out", help="write the judgement as JSON here (default: beside RESULTS, .judged.json)")
    parser.add_argument("--markdown", help="write the cross-class table here (default: beside RESULTS, .judged.md)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        results = json.loads(Path(args.results).read_text())
    except (OSError, ValueError) as error:
        print(f"judge.py: cannot read {args.results}: {error}", file=sys.stderr)
        return 2
    if args.model:
        model_path = Path(args.model)
    else:
        model_path = ModelStore(tempfile.mkdtemp(prefix="judge-store-")).embedded().path
    executor_class = args.executor_class or executor_class_name(results.get("device", ""))
    verifier_engine = engine_version()
    if results.get("engine") == verifier_engine:
        print(f"note: the results came from the same build as this verifier ({verifier_engine}): a test of "
              "the script, not a cross-class measurement", flush=True)
    try:
        judge_run = CrossClassJudge(results, model_path, args.threads)
    except InferenceError as error:
        print(f"judge.py: {error}", file=sys.stderr)
        return 2
    try:
        judge_run.run()
    finally:
        judge_run.close()
    command = (f"bench/gpu/measure.py on {results.get('device')} ({results.get('engine')}), judged by "
               f"bench/gpu/judge.py with {verifier_engine}")
    cross_thresholds = fitted(judge_run.model_id, judge_run.cross_rows, command)
    same_thresholds = fitted(judge_run.model_id, judge_run.same_rows, command.replace("judged by", "self-judged; read by"))
    max_tokens = judge_run.max_tokens
    cross = detection(judge_run.cross_rows, cross_thresholds, max_tokens)
    same = detection(judge_run.same_rows, same_thresholds, max_tokens)
    judgement = {
        "results": os.fspath(args.results),
        "device": results.get("device"),
        "executor_engine": results.get("engine"),
        "verifier_engine": verifier_engine,
        "class_pair": {
            "executor_class": executor_class,
            "verifier_class": VERIFIER_CLASS,
            "thresholds": integer_fields(cross_thresholds),
            "detection_ppm": cross["detection_ppm"],
        },
        "cross_class": {"margins": margin_distribution(judge_run.cross_rows), "detection": cross},
        "engine_class": {
            "name": executor_class,
            "engine": results.get("engine"),
            "thresholds": integer_fields(same_thresholds),
        },
        "same_class": {"margins": margin_distribution(judge_run.same_rows), "detection": same,
                       "note": "the device's own verifier on the device's rows; the forged rows made here "
                               "are judged cross-class only"},
        "seconds": round(time.perf_counter() - started, 1),
    }
    out = Path(args.out or Path(args.results).with_suffix(".judged.json"))
    out.write_text(json.dumps(judgement, indent=1))
    settings = CalibrationSettings(reference_prompts=results.get("sizes", {}).get("calibration_prompts"),
                                   row_jobs=results.get("sizes", {}).get("row_jobs", 16), max_tokens=max_tokens)
    report = CalibrationReport(judge_run.model_id, verifier_engine, settings, judge_run.cross_rows, cross_thresholds,
                               time.perf_counter() - started, command)
    markdown = Path(args.markdown or Path(args.results).with_suffix(".judged.md"))
    markdown.write_text(
        f"Results generated on {results.get('device')} with {results.get('engine')} (class {executor_class}); "
        f"judged by the CPU verifier here (class {VERIFIER_CLASS}, {verifier_engine}).\n\n" + render_table(report))
    print(render_table(report))
    print(f"wrote {out} and {markdown}")
    cross_margins = judgement["cross_class"]["margins"]
    same_margins = judgement["same_class"]["margins"]
    print(json.dumps({
        "executor_class": executor_class,
        "verifier_class": VERIFIER_CLASS,
        "cross_detection_ppm": cross["detection_ppm"],
        "cross_caught": f"{cross['caught']}/{cross['judged']}",
        "cross_honest_negative_margins": f"{cross_margins.get('negative_margins')}/{cross_margins.get('positions')}",
        "cross_honest_worst_margin": cross_margins.get("margin_quantiles", {}).get("0.0"),
        "cross_logprob_error_nats_mean_max": cross_margins.get("logprob_error_nats_mean_max"),
        "cross_worst_margin_bound": cross_thresholds.worst_margin_micro / 1e6,
        "cross_honest_invalid": cross["honest_invalid"],
        "same_detection_ppm": same["detection_ppm"],
        "same_honest_negative_margins": f"{same_margins.get('negative_margins')}/{same_margins.get('positions')}",
        "same_logprob_error_nats_mean_max": same_margins.get("logprob_error_nats_mean_max"),
        "seconds": judgement["seconds"],
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
