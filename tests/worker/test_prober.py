"""The worker's prober (chain/worker/prober.py): the probe it builds from a settled job, and on a real node a
validator's worker that seals a probe, posts it as an ordinary job, and opens it once it settles."""

from __future__ import annotations

import json
import random
import time

from hypothesis import given
import pytest
from hypothesis import strategies as st

from chain.client import Client, ClientError
from chain.crypto import dev_keypair
from chain.worker.journal import Journal
from chain.worker.prober import Prober, adoptable_posters, pick_template, probe_request
from chain.worker.worker import Worker
from proto import state_pb2, types_pb2
from runtime.jobs.recipes import PROBE_FUND
from tests.commands import inferchain
from tests.worker.conftest import MODEL, echo_runner, post_job, running_worker_of, wait_for_job

ALICE = dev_keypair("alice")
CHARLIE = dev_keypair("charlie")


class Draws(random.Random):
    """Randomness whose uniform draws are all `draw` (0: every probe adopts a poster's job when one fits; 0.99:
    every probe is posted by the prober); its other draws are seeded."""

    def __init__(self, draw: float):
        super().__init__(7)
        self.draw = draw

    def random(self) -> float:
        return self.draw


@given(max_tokens=st.integers(1, 4096), cap=st.integers(1, 4096), temperature=st.integers(0, 2000),
       seed=st.integers(0, 2**64 - 1))
def test_a_probe_copies_its_template_but_for_a_length_cap_and_a_fresh_seed_when_it_samples(max_tokens, cap,
                                                                                           temperature, seed):
    template = types_pb2.PostJob(
        model=MODEL, prompt="Name a river.", prompt_format="chat", max_tokens=max_tokens, redundancy=2,
        sampling=types_pb2.Sampling(temperature_milli=temperature, top_k=40, top_p_ppm=950_000, seed=7),
        max_price_per_token=123, region="eu", engine_classes=["cpu"],
    )
    request = probe_request(template, cap, seed)
    assert request.max_tokens == min(max_tokens, cap)
    assert request.sampling.seed == (seed if temperature else 7)
    expected = types_pb2.PostJob()
    expected.CopyFrom(template)
    expected.max_tokens, expected.sampling.seed = request.max_tokens, request.sampling.seed
    assert request == expected and template.max_tokens == max_tokens


def test_a_probe_adopts_only_other_posters_whose_job_fitted_a_probe():
    me, other, third = b"\1" * 32, b"\2" * 32, b"\3" * 32
    short = types_pb2.PostJob(max_tokens=64)
    jobs = [state_pb2.Job(poster=me, request=short), state_pb2.Job(poster=PROBE_FUND, request=short),
            state_pb2.Job(poster=other, request=types_pb2.PostJob(max_tokens=65)),
            state_pb2.Job(poster=third, request=short), state_pb2.Job(poster=other, request=short, probe=True),
            state_pb2.Job(poster=third, request=short)]
    assert adoptable_posters(jobs, me, 64) == [third]


def test_templates_are_never_the_prober_s_own_jobs_the_fund_s_probes_or_pruned_records():
    me, other = b"\1" * 32, b"\2" * 32
    jobs = [state_pb2.Job(id=b"a" * 32, poster=me), state_pb2.Job(id=b"b" * 32, poster=PROBE_FUND),
            state_pb2.Job(id=b"c" * 32, poster=other, probe=True),
            state_pb2.Job(id=b"e" * 32, poster=other, pruned_height=9)]
    assert pick_template(jobs, me, random.Random(1)) is None
    real = state_pb2.Job(id=b"d" * 32, poster=other)
    assert {pick_template(jobs + [real], me, random.Random(seed)).id for seed in range(20)} == {real.id}


def test_a_validator_s_worker_seals_posts_and_opens_a_probe_that_looks_like_a_job_until_it_is_opened(market_node,
                                                                                                    tmp_path):
    client = Client(market_node.target)
    worker = Worker(market_node.target, ALICE, echo_runner, Journal(tmp_path / "journal"), probe=True,
                    probe_rng=Draws(0.99))
    try:
        with running_worker_of(worker):
            template = wait_for_job(market_node.target, post_job(client, CHARLIE, prompt="Name a lake."),
                                    lambda job: job.status == state_pb2.JOB_STATUS_SETTLED)
            deadline = time.monotonic() + 60
            probe = None
            while probe is None:
                assert time.monotonic() < deadline, "no probe was opened within 60 s"
                opened = [job for job in client.list_jobs(poster=ALICE, limit=100).jobs if job.probe]
                probe = opened[0] if opened else None
                time.sleep(0.2)
        view = client.get_job(probe.id)
        # Posted by an ordinary PostJob of Alice's, the template's request but for a fresh seed's absence (greedy).
        assert probe.poster == ALICE.public_key and probe.request == template.request
        assert view.dispute is not None and view.dispute.reason == state_pb2.DISPUTE_REASON_AUDIT
        opening = [event for height in range(probe.final_height, view.height + 1)
                   for receipt in client.block(height).receipts for event in receipt.events
                   if event.name == "ProbeOpened"]
        assert len(opening) == 1 and opening[0].attribute("sealer") == ALICE.public_key.hex()
        # `job status` says what the job turned out to be, in text and in JSON.
        text = inferchain("job", "status", probe.id.hex(), "--node", market_node.target)
        assert text.returncode == 0 and "a sealed probe, opened by its sealer" in text.stdout, text.stderr
        document = json.loads(inferchain("job", "status", probe.id.hex(), "--node", market_node.target,
                                         "--output", "json").stdout)
        assert document["probe"] is True
    finally:
        client.close()


def test_a_node_refuses_a_seal_or_an_opening_that_would_fail_before_it_costs_a_fee(market_node):
    client = Client(market_node.target)
    try:
        before = client.account(CHARLIE)
        for call, reason in ((types_pb2.SealProbe(commitment=bytes(32)), "bonded at least"),
                             (types_pb2.OpenProbe(job_id=bytes(32), salt=bytes(32)), "no seal matches"),
                             (types_pb2.SealProbe(commitment=bytes(31)), "32-byte commitment")):
            with pytest.raises(ClientError) as refused:
                client.submit(CHARLIE, call)
            assert reason in refused.value.message
        after = client.account(CHARLIE)
        assert (after.free, after.nonce) == (before.free, before.nonce)
    finally:
        client.close()


def test_a_prober_adopts_another_poster_s_next_job_which_stays_that_poster_s_job_until_opened(market_node, tmp_path):
    client = Client(market_node.target)
    prober = Prober(market_node.target, ALICE, Draws(0.0))

    def step_until(done, what: str, timeout: float = 60.0):
        deadline = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < deadline, f"{what} within {timeout} s"
            prober.step(client.chain_info().finalized_height)
            time.sleep(0.2)

    try:
        with running_worker_of(Worker(market_node.target, ALICE, echo_runner, Journal(tmp_path / "journal"))):
            wait_for_job(market_node.target, post_job(client, CHARLIE, prompt="Name a sea."),
                         lambda job: job.status == state_pb2.JOB_STATUS_SETTLED)
            step_until(lambda: prober.probes, "no probe was sealed")
            (sealed,) = prober.probes.values()
            assert sealed.adopted
            # Charlie posts again, as it would have anyway: its job is the sealed one.
            adopted = post_job(client, CHARLIE, prompt="Name a bay.")
            assert adopted == sealed.job_id
            step_until(lambda: client.get_job(adopted).job.probe, "the adopted job was not opened")
        job = client.get_job(adopted)
        assert job.job.poster == CHARLIE.public_key and job.job.request.prompt == "Name a bay."
        assert job.dispute is not None and job.dispute.reason == state_pb2.DISPUTE_REASON_AUDIT
    finally:
        prober.stop()
        client.close()
