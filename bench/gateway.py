"""Completions through the OpenAI-compatible gateway against the same prompts run with `inferchain infer`'s
engine on the same machine, in one run; and time to first token for concurrent streaming clients.

    .venv/bin/python bench/gateway.py [--quick] [--requests N] [--max-tokens M] [--clients C] [--rounds R]
                                      [--singles S]

1. Start `inferchain node --dev` in a temporary directory on free ports, with its executor worker (the
   embedded model; capacity 8, 2 jobs generating at once with one thread each on this 2-core machine),
   and `inferchain gateway --key bob` as its own process on a free port.
2. Warm up: one 4-token chat completion per core at once through the gateway (the worker has loaded an engine
   for each job it runs at once), then wait for three quiet blocks (no transaction, no event), as bench/jobs.py does.
3. Throughput: N (default 32, quick 8) greedy chat completions of M (default 64, quick 32) tokens,
   different prompts, sent at once (not streamed) with httpx; tokens are the responses'
   `usage.completion_tokens`, timed from the first request to the last answer.
4. Time to first token: R rounds (default 2, quick 1) of C (default 16) concurrent streaming clients,
   each timing its request to the first chunk whose `delta.content` is not empty. Each round starts on a
   quiet chain (three blocks in a row with no transaction and no event), as clients arriving at a network
   that is not busy with other jobs: a node starts the heights that include and draw their jobs sooner
   while its idle ticks left it credit (chain/consensus/pace.py); on a chain busy just before, those
   three heights start half a block time apart, up to one block interval more.
5. A lone streaming client, S times (default 4, quick 3), each on a quiet chain: the chain's own part of the
   time to first token (inclusion, the two draw heights, the assignment reaching the executor and the
   gateway), without the queueing that C clients on 2 cores add at the executor as they do locally.
6. Stop the gateway and the node, then run the same prompts with the engine `inferchain infer` runs
   (inference/loading.py load_record, Engine.generate with the chain's sampler; the model loaded once,
   generation timed only), each for as many tokens as its gateway answer had, in two layouts: one job at
   a time on every core (what `inferchain infer` does) and one job per core with one thread each (the
   worker's layout). The faster layout is the baseline. Prefill is the median time to the first token
   of the streaming clients' prompts run one at a time on every core. The streaming clients' prompts are
   also sent at once to each layout (all C arriving together, as at the gateway): its time to first
   token, queueing included, is printed beside the gateway's (`raw_ttft_p50_s`).
7. Print a summary, the goals, then one JSON line:
   - gateway_over_raw: gateway tokens/s over raw tokens/s; goal >= 0.85.
   - ttft_p50_s, ttft_p99_s: time to first token over every streaming client of every round;
     goal p50 <= block_interval_s + prefill_s.
   - ttft_beyond_raw_intervals: (ttft_p50_s - raw_ttft_p50_s) / block_interval_s, the gateway's time to first
     token beyond the local engine's with the same C prompts arriving at once.
   - single_ttft_p50_s: the lone client's time to first token; goal <= block_interval_s + prefill_s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from chain.cli.infer import local_job_id  # noqa: E402
from chain.client import Client  # noqa: E402
from inference.calibration import load_prompts  # noqa: E402
from inference.engine import EngineConfig, engine_version  # noqa: E402
from inference.loading import load_record  # noqa: E402
from inference.model_store import EMBEDDED_NAME, ModelStore  # noqa: E402
from inference.result import InferenceJob  # noqa: E402
from inference.sampler import SamplingParams  # noqa: E402
from tests.nodes import NodeProcess, free_port, wait_quiet  # noqa: E402

# The gateway's greedy request and the same sampling for the local engine (greedy: the seed and job id do not matter).
GREEDY = SamplingParams.from_decimal("0", 40, "1", 0)
REQUEST_TIMEOUT_S = 600.0
GOAL_RATIO = 0.85


@dataclass
class Answer:
    """One completion through the gateway: its prompt, tokens, and times from its request (seconds)."""

    prompt: str
    tokens: int = 0
    first_content_s: float | None = None
    done_s: float = 0.0
    status: int = 0
    # Tokens relayed from the executor as it generated them (the final chunk's inferchain.streamed_tokens): 0
    # when the gateway sent the settled text instead (past its token streams per node, or no endpoint).
    streamed_tokens: int = 0


@dataclass
class Figures:
    answers: list[Answer] = field(default_factory=list)
    gateway_seconds: float = 0.0
    streams: list[Answer] = field(default_factory=list)
    singles: list[Answer] = field(default_factory=list)
    block_interval_s: float = 1.0
    raw_seconds: dict[str, float] = field(default_factory=dict)
    prefill_s: list[float] = field(default_factory=list)
    # The streaming clients' prompts run at once with the local engine: each one's first token, queueing included.
    raw_ttft_s: list[float] = field(default_factory=list)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="8 requests of 32 tokens and one round of streaming clients (default: 32 of 64, 2 rounds)")
    parser.add_argument("--requests", type=int, help="completions sent at once for the throughput run")
    parser.add_argument("--max-tokens", type=int, help="tokens per throughput completion")
    parser.add_argument("--clients", type=int, default=16, help="concurrent streaming clients (default: 16)")
    parser.add_argument("--rounds", type=int, help="rounds of streaming clients")
    parser.add_argument("--singles", type=int, help="lone streaming clients, one after another (default 4, quick 3)")
    parser.add_argument("--stream-tokens", type=int, default=16, help="tokens per streamed completion (default: 16)")
    args = parser.parse_args(argv)
    args.requests = args.requests or (8 if args.quick else 32)
    args.max_tokens = args.max_tokens or (32 if args.quick else 64)
    args.rounds = args.rounds or (1 if args.quick else 2)
    args.singles = args.singles or (3 if args.quick else 4)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    prompts = load_prompts()
    throughput_prompts = [prompts[index % len(prompts)] for index in range(args.requests)]
    # The streaming clients take prompts the throughput run did not (no prefix cache favours them).
    stream_prompts = [prompts[(args.requests + index) % len(prompts)] for index in range(args.clients)]
    figures = Figures()
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as base:
        node = NodeProcess(Path(base) / "node", free_port(), ("--log-level", "warning"), worker=True).start()
        gateway = None
        try:
            with Client(node.target) as client:
                figures.block_interval_s = client.chain_info().block_time_ms / 1000
            gateway, base_url, api_key = start_gateway(node.target, Path(base))
            asyncio.run(measure(node.target, base_url, api_key, args, throughput_prompts, stream_prompts, figures))
        finally:
            if gateway is not None:
                stop_process(gateway)
            node.stop()  # the node stops its worker too
    run_raw(figures, stream_prompts, args.stream_tokens)
    return report(args, figures)


def start_gateway(node_target: str, base: Path) -> tuple[subprocess.Popen, str, str]:
    """`inferchain gateway --key bob` on a free port; the process, its base URL and the API key it printed."""
    stderr = open(base / "gateway.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "chain.cli", "gateway", "--node", node_target, "--key", "bob", "--listen",
         "127.0.0.1:0", "--api-keys", str(base / "api-keys.json"), "--log-level", "warning"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    stderr.close()  # the gateway holds its own descriptor
    url_line, key_line = process.stdout.readline(), process.stdout.readline()
    if not url_line.startswith("OpenAI-compatible API: "):
        stop_process(process)
        raise SystemExit(f"the gateway did not start: {(base / 'gateway.log').read_text()[-2000:]}")
    return process, url_line.split(": ", 1)[1].strip(), key_line.split(": ", 1)[1].strip()


def stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


async def measure(node_target: str, base_url: str, api_key: str, args, throughput_prompts: list[str],
                  stream_prompts: list[str], figures: Figures) -> None:
    limits = httpx.Limits(max_connections=max(args.requests, args.clients) + 4)
    async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {api_key}"},
                                 timeout=REQUEST_TIMEOUT_S, limits=limits) as http:
        # One warm-up per core at once: the worker loads an engine for each job it runs at once, as the raw
        # layouts create theirs before their clock starts.
        warm = await asyncio.gather(*(complete(http, "Say OK.", 4) for _ in range(max(1, os.cpu_count() or 1))))
        if any(answer.status != 200 for answer in warm):
            raise SystemExit(f"a warm-up completion failed with {[answer.status for answer in warm]}")
        await asyncio.to_thread(wait_quiet, node_target)  # the warm-up's last heights are not the run's
        started = time.perf_counter()
        figures.answers = list(await asyncio.gather(
            *(complete(http, prompt, args.max_tokens) for prompt in throughput_prompts)))
        figures.gateway_seconds = time.perf_counter() - started
        failed = [answer for answer in figures.answers if answer.status != 200]
        if failed:
            raise SystemExit(f"{len(failed)} of {len(figures.answers)} completions failed (first: {failed[0].status})")
        for _ in range(args.rounds):
            await asyncio.to_thread(wait_quiet, node_target)
            figures.streams += await asyncio.gather(
                *(stream(http, prompt, args.stream_tokens) for prompt in stream_prompts))
        for index in range(args.singles):
            await asyncio.to_thread(wait_quiet, node_target)
            figures.singles.append(await stream(http, stream_prompts[index % len(stream_prompts)], args.stream_tokens))
        failed = [answer for answer in figures.streams + figures.singles if answer.first_content_s is None]
        if failed:
            raise SystemExit(f"{len(failed)} streams gave no text (first status: {failed[0].status})")


def chat_body(prompt: str, max_tokens: int, stream: bool) -> dict:
    body = {"model": EMBEDDED_NAME, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
            "temperature": 0, "top_p": 1, "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body


async def complete(http: httpx.AsyncClient, prompt: str, max_tokens: int) -> Answer:
    """One whole (not streamed) chat completion."""
    answer = Answer(prompt)
    started = time.perf_counter()
    reply = await http.post("/chat/completions", json=chat_body(prompt, max_tokens, False))
    answer.done_s = time.perf_counter() - started
    answer.status = reply.status_code
    if reply.status_code == 200:
        answer.tokens = reply.json()["usage"]["completion_tokens"]
    return answer


async def stream(http: httpx.AsyncClient, prompt: str, max_tokens: int) -> Answer:
    """One streamed chat completion: the time to its first chunk with text, and its usage."""
    answer = Answer(prompt)
    started = time.perf_counter()
    async with http.stream("POST", "/chat/completions", json=chat_body(prompt, max_tokens, True)) as reply:
        answer.status = reply.status_code
        async for line in reply.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[len("data: "):])
            if chunk.get("usage"):
                answer.tokens = chunk["usage"]["completion_tokens"]
            if isinstance(chunk.get("inferchain"), dict):
                answer.streamed_tokens = int(chunk["inferchain"].get("streamed_tokens") or 0)
            choices = chunk.get("choices") or [{}]
            if answer.first_content_s is None and choices[0].get("delta", {}).get("content"):
                answer.first_content_s = time.perf_counter() - started
    answer.done_s = time.perf_counter() - started
    return answer


# --- the baseline: `inferchain infer`'s engine on this machine --------------------------------


def run_raw(figures: Figures, stream_prompts: list[str], stream_tokens: int) -> None:
    """The throughput run's prompts in two layouts (each twice, the faster kept); the streaming prompts'
    prefill (time to the first token) one at a time on every core; and the streaming prompts sent at once
    to each layout (the lower median time to first token kept)."""
    store = ModelStore()
    record = store.embedded()
    cores = max(1, os.cpu_count() or 1)
    layouts = {f"1 x {cores} thread(s)": (1, None)}
    if cores > 1:
        layouts[f"{cores} x 1 thread"] = (cores, 1)
    jobs = [raw_job(record.id, answer.prompt, answer.tokens) for answer in figures.answers]
    streamed = [raw_job(record.id, prompt, stream_tokens) for prompt in stream_prompts]
    for name, (engines, threads) in layouts.items():
        loaded = [load_record(store, record, EngineConfig(threads=threads)) for _ in range(engines)]
        try:
            figures.raw_seconds[name] = min(run_layout(loaded, jobs) for _ in range(2))
            first_tokens: list[float] = []
            run_layout(loaded, streamed, first_tokens)
            if not figures.raw_ttft_s or statistics.median(first_tokens) < statistics.median(figures.raw_ttft_s):
                figures.raw_ttft_s = first_tokens
            if engines == 1:
                figures.prefill_s = [first_token_s(loaded[0], raw_job(record.id, prompt, 1))
                                     for prompt in stream_prompts]
        finally:
            for engine in loaded:
                engine.close()


def raw_job(model_id: str, prompt: str, max_tokens: int) -> InferenceJob:
    """The job `inferchain infer PROMPT --max-tokens N --top-p 1` runs (greedy, the chat template)."""
    return InferenceJob(model=model_id, job_id=local_job_id(model_id, prompt, max_tokens, GREEDY, False),
                        prompt=prompt, max_tokens=max_tokens, sampling=GREEDY, prompt_format="chat")


def run_layout(engines: list, jobs: list[InferenceJob], first_tokens: list[float] | None = None) -> float:
    """Seconds for every job, each engine taking the next job as soon as it is free (as the worker does); with
    `first_tokens`, each job's first token is timed from the start (all jobs arrive at once)."""
    pending = list(jobs)
    lock = threading.Lock()

    def serve(engine) -> None:
        while True:
            with lock:
                if not pending:
                    return
                job = pending.pop(0)
            first: list[float] = []
            engine.generate(job, on_token=lambda token: first.append(time.perf_counter()) if not first else None)
            if first_tokens is not None:
                with lock:
                    first_tokens.append(first[0] - started)

    started = time.perf_counter()
    threads = [threading.Thread(target=serve, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def first_token_s(engine, job: InferenceJob) -> float:
    """Seconds from the call to the first generated token: the prompt's prefill and one step."""
    first: list[float] = []
    started = time.perf_counter()
    engine.generate(job, on_token=lambda token: first.append(time.perf_counter()) if not first else None)
    return first[0] - started


# --- the report --------------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (p99 of 16 values is the largest)."""
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]


def report(args, figures: Figures) -> int:
    tokens = sum(answer.tokens for answer in figures.answers)
    gateway_rate = tokens / figures.gateway_seconds
    best_name = min(figures.raw_seconds, key=figures.raw_seconds.get)
    raw_rate = tokens / figures.raw_seconds[best_name]
    ratio = gateway_rate / raw_rate
    ttfts = [answer.first_content_s for answer in figures.streams]
    p50, p99 = statistics.median(ttfts), percentile(ttfts, 0.99)
    prefill = statistics.median(figures.prefill_s)
    bound = figures.block_interval_s + prefill
    stream_done = [answer.done_s for answer in figures.streams]
    for name, seconds in figures.raw_seconds.items():
        print(f"raw (inferchain infer's engine), {name}: {tokens / seconds:.1f} tokens/s ({seconds:.1f} s)")
    print(f"{len(figures.answers)} completions, {tokens} tokens: through the gateway {gateway_rate:.1f} tokens/s "
          f"({figures.gateway_seconds:.1f} s, answers after {min(a.done_s for a in figures.answers):.1f}-"
          f"{max(a.done_s for a in figures.answers):.1f} s); faster raw layout ({best_name}) {raw_rate:.1f} tokens/s")
    print(f"{args.clients} concurrent streaming clients x {args.rounds} round(s), {args.stream_tokens} tokens each: "
          f"time to first token p50 {p50:.2f} s, p99 {p99:.2f} s, min {min(ttfts):.2f} s; whole stream p50 "
          f"{statistics.median(stream_done):.2f} s")
    relayed = [answer.first_content_s for answer in figures.streams if answer.streamed_tokens]
    if relayed:
        rest = "" if len(relayed) == len(ttfts) else (" (the rest got the settled text: the gateway reads at most 8 "
                                                      "token streams per node API)")
        print(f"{len(relayed)} of {len(ttfts)} streams relayed the executor's tokens{rest}: their time to first token "
              f"p50 {statistics.median(relayed):.2f} s, min {min(relayed):.2f} s")
    print(f"block interval {figures.block_interval_s:g} s, prefill {prefill * 1000:.1f} ms (raw, median of "
          f"{len(figures.prefill_s)} prompts, one at a time on every core)")
    raw_p50 = statistics.median(figures.raw_ttft_s)
    print(f"the same {args.clients} prompts sent at once to the local engine (the faster layout): time to first "
          f"token p50 {raw_p50:.2f} s, p99 {percentile(figures.raw_ttft_s, 0.99):.2f} s; the gateway's p50 is "
          f"{(p50 - raw_p50) / figures.block_interval_s:.1f} block intervals beyond it")
    print(f"goal gateway_over_raw >= {GOAL_RATIO}: {ratio:.3f} ({'met' if ratio >= GOAL_RATIO else 'NOT met'})")
    single = statistics.median(answer.first_content_s for answer in figures.singles)
    beyond = (p50 - raw_p50) / figures.block_interval_s
    print(f"a lone streaming client on a quiet chain, {len(figures.singles)} times: time to first token p50 "
          f"{single:.2f} s ({', '.join(f'{answer.first_content_s:.2f}' for answer in figures.singles)})")
    print(f"goal ttft p50 <= block interval + prefill = {bound:.2f} s: {args.clients} clients {p50:.2f} s "
          f"({'met' if p50 <= bound else 'NOT met'}; {beyond:.1f} block intervals beyond the local engine's "
          f"{raw_p50:.2f} s for the same {args.clients} at once), a lone client {single:.2f} s "
          f"({'met' if single <= bound else 'NOT met'})")
    print(json.dumps({
        "gateway_over_raw": round(ratio, 4),
        "ttft_p50_s": round(p50, 3),
        "relayed_streams": len(relayed),
        "relayed_ttft_p50_s": round(statistics.median(relayed), 3) if relayed else None,
        "ttft_p99_s": round(p99, 3),
        "block_interval_s": figures.block_interval_s,
        "prefill_s": round(prefill, 4),
        "clients": args.clients,
        "requests": len(figures.answers),
        "rounds": args.rounds,
        "raw_ttft_p50_s": round(raw_p50, 3),
        "ttft_beyond_raw_intervals": round(beyond, 3),
        "single_ttft_p50_s": round(single, 3),
        "singles": len(figures.singles),
        "tokens": tokens,
        "max_tokens": args.max_tokens,
        "gateway_tokens_per_s": round(gateway_rate, 2),
        "raw_tokens_per_s": round(raw_rate, 2),
        "raw_layouts": {name: round(tokens / seconds, 2) for name, seconds in figures.raw_seconds.items()},
        "engine": engine_version(),
        "cpu": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
