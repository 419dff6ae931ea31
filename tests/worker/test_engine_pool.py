"""EnginePool: at most `parallel` generations at once; the others wait in turn and can be cancelled; batched
jobs (batch_slots) come out as single-engine runs."""

from __future__ import annotations

import threading
import time

import pytest

from chain.worker.executor import EnginePool, JobCancelled
from inference.engine import EngineConfig
from inference.model_store import ModelStore
from inference.registration import EMBEDDED_MODEL_ID
from inference.result import InferenceJob
from inference.sampler import SamplingParams
from tests.inference.conftest import FRESH_PROMPTS, SAMPLED, make_job


class CountingEngine:
    """Stands in for llama.cpp to observe scheduling only (tests/e2e/test_market.py runs the real one)."""

    running = 0
    most = 0
    lock = threading.Lock()

    def generate(self, job, on_token=None):
        with CountingEngine.lock:
            CountingEngine.running += 1
            CountingEngine.most = max(CountingEngine.most, CountingEngine.running)
        try:
            for _ in range(5):
                time.sleep(0.02)
                on_token(1)
            return job.prompt
        finally:
            with CountingEngine.lock:
                CountingEngine.running -= 1

    def close(self):
        pass


def job(index: int) -> InferenceJob:
    return InferenceJob(model=EMBEDDED_MODEL_ID, job_id=bytes([index]) * 32, prompt=f"p{index}", max_tokens=4)


@pytest.mark.parametrize("parallel", [1, 2])
def test_no_more_than_parallel_generations_run_at_once(parallel):
    CountingEngine.most = 0
    pool = EnginePool(ModelStore(), EngineConfig(), load=lambda store, record, config: CountingEngine(), parallel=parallel)
    results = []
    threads = [threading.Thread(target=lambda i=i: results.append(pool.run(job(i), lambda: False))) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(results) == [f"p{i}" for i in range(6)]
    assert CountingEngine.most == parallel


def test_a_job_waiting_for_a_slot_can_be_cancelled():
    pool = EnginePool(ModelStore(), EngineConfig(), load=lambda store, record, config: CountingEngine(), parallel=1)
    release = threading.Event()
    blocker = threading.Thread(target=lambda: pool.run(job(1), lambda: release.wait(5) and False))
    blocker.start()
    time.sleep(0.05)
    with pytest.raises(JobCancelled):
        pool.run(job(2), lambda: True)
    release.set()
    blocker.join(10)


def test_waiting_jobs_get_their_slot_in_the_order_they_came():
    started = []
    gate = threading.Event()

    class Recording(CountingEngine):
        def generate(self, job, on_token=None):
            started.append(job.prompt)
            gate.wait(5) if job.prompt == "p0" else None
            return job.prompt

    pool = EnginePool(ModelStore(), EngineConfig(), load=lambda store, record, config: Recording(), parallel=1)
    threads = []
    for index in range(8):
        threads.append(threading.Thread(target=pool.run, args=(job(index), lambda: False)))
        threads[-1].start()
        time.sleep(0.03)  # they ask in this order
    gate.set()
    for thread in threads:
        thread.join(10)
    assert started == [f"p{i}" for i in range(8)]


# --- batched: the real engine --------------------------------------------------------------------


def test_batched_jobs_come_out_as_single_engine_runs_and_a_cancelled_one_leaves_the_batch(tmp_path):
    store = ModelStore(tmp_path / "models")
    config = EngineConfig(threads=2, context=512)
    jobs = [make_job(EMBEDDED_MODEL_ID, prompt, max_tokens=8 + 4 * index, label="pool",
                     sampling=SAMPLED if index % 2 else SamplingParams())
            for index, prompt in enumerate(FRESH_PROMPTS[:3])]
    single = EnginePool(store, config, parallel=1)
    batched = EnginePool(store, config, batch_slots=2)
    try:
        expected = [single.run(job, cancelled=lambda: False) for job in jobs]
        results: dict[int, object] = {}
        stop_last = threading.Event()

        def run(index: int) -> None:
            try:
                results[index] = batched.run(jobs[index], cancelled=stop_last.is_set if index == 3 else (lambda: False))
            except JobCancelled:
                results[index] = "cancelled"

        cancelled_job = make_job(EMBEDDED_MODEL_ID, "Count to a thousand.", max_tokens=200, label="pool cancelled")
        jobs.append(cancelled_job)
        threads = [threading.Thread(target=run, args=(index,)) for index in range(4)]
        for thread in threads:
            thread.start()
        stop_last.set()  # the fourth waits behind two slots or runs: either way it stops, the rest go on
        for thread in threads:
            thread.join(120)
        assert [results[index] for index in range(3)] == expected
        assert results[3] == "cancelled"
    finally:
        single.close()
        batched.close()
