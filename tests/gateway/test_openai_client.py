"""The gateway through the official `openai` package, against a real dev node whose own worker runs the
embedded model: every answer is the text of the job the chain settled, read back with the Client.

One node and one gateway serve the module; each job takes a few seconds on two cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest
from openai import OpenAI

from chain.client import Client
from inference.model_store import EMBEDDED_NAME
from inference.registration import EMBEDDED_MODEL_ID
from tests.commands import ROOT
from tests.gateway.serving import running_gateway, worker_node
from tests.nodes import NodeProcess

pytestmark = pytest.mark.slow

PROMPT = "Name three colours."



@pytest.fixture(scope="module")
def node(tmp_path_factory):
    with worker_node(tmp_path_factory.mktemp("gateway-node")) as node:
        yield node


@pytest.fixture(scope="module")
def gateway(node, tmp_path_factory):
    with running_gateway(node.target, tmp_path_factory.mktemp("gateway") / "api-keys.json", ["bob"]) as served:
        yield served


@pytest.fixture(scope="module")
def openai_client(gateway):
    base_url, keys = gateway
    return OpenAI(base_url=base_url, api_key=keys["bob"], max_retries=0, timeout=120)


def settled_text(node: NodeProcess, completion_id: str) -> str:
    """The answer of the job a completion id names, read from the chain."""
    job_id = bytes.fromhex(completion_id.split("-", 1)[1])
    with Client(node.target) as client:
        view = client.get_job(job_id)
    assert view.settled, view.status
    return view.result.text


def test_models_list_names_the_embedded_model_with_its_hash_and_it_is_ready(openai_client):
    models = openai_client.models.list().data
    [model] = [model for model in models if model.id == EMBEDDED_NAME]
    assert model.object == "model" and model.owned_by == "inferchain"
    extension = model.model_extra["inferchain"]
    assert extension["model_id"] == EMBEDDED_MODEL_ID and extension["ready"] and extension["executors"] >= 1
    assert openai_client.models.retrieve(EMBEDDED_NAME).id == EMBEDDED_NAME


def test_a_chat_completion_is_the_settled_jobs_revealed_text(openai_client, node):
    raw = openai_client.chat.completions.with_raw_response.create(
        model=EMBEDDED_NAME, messages=[{"role": "user", "content": PROMPT}], max_tokens=16, temperature=0)
    completion = raw.parse()
    job_id = raw.headers["x-inferchain-job"]
    assert completion.id == f"chatcmpl-{job_id}" and completion.object == "chat.completion"
    assert completion.model == EMBEDDED_NAME and completion.system_fingerprint.startswith("llama-cpp-python")
    [choice] = completion.choices
    assert choice.message.role == "assistant" and choice.message.content == settled_text(node, completion.id)
    assert choice.finish_reason in ("stop", "length")
    usage = completion.usage
    assert 0 < usage.completion_tokens <= 16 and usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    extension = completion.model_extra["inferchain"]
    assert extension["job_id"] == job_id and extension["status"] == "settled" and extension["verdict"] == "settled"
    assert len(extension["executors"]) == 1 and extension["executors"][0]["status"] == "revealed"


def test_a_streamed_chat_joins_to_the_settled_text_under_one_id(openai_client, node):
    chunks = list(openai_client.chat.completions.create(
        model=EMBEDDED_NAME, messages=[{"role": "user", "content": PROMPT}], max_tokens=16, temperature=0,
        stream=True))
    assert len({chunk.id for chunk in chunks}) == 1 and chunks[0].object == "chat.completion.chunk"
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    assert text == settled_text(node, chunks[0].id)
    assert chunks[-1].choices[0].finish_reason in ("stop", "length") and chunks[-1].usage is None
    assert sum(1 for chunk in chunks if chunk.choices[0].delta.content) > 1  # in pieces, not one lump


def test_a_streamed_completion_with_include_usage_ends_with_a_usage_chunk(openai_client, node):
    chunks = list(openai_client.completions.create(
        model=EMBEDDED_NAME, prompt="The sky is", max_tokens=8, temperature=0, stream=True,
        stream_options={"include_usage": True}))
    *text_chunks, last = chunks
    assert last.choices == [] and last.usage.completion_tokens <= 8
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    assert "".join(chunk.choices[0].text for chunk in text_chunks) == settled_text(node, last.id)


def test_a_completion_cut_at_max_tokens_finishes_with_length(openai_client, node):
    completion = openai_client.completions.create(model=EMBEDDED_NAME, prompt="Once upon a time", max_tokens=3,
                                                  temperature=0)
    [choice] = completion.choices
    assert completion.object == "text_completion" and completion.id.startswith("cmpl-")
    assert choice.finish_reason == "length" and completion.usage.completion_tokens == 3
    assert choice.text == settled_text(node, completion.id)


def test_the_same_seed_gives_the_same_text(openai_client):
    def ask() -> str:
        return openai_client.chat.completions.create(
            model=EMBEDDED_NAME, messages=[{"role": "system", "content": "Answer in one line."},
                                           {"role": "user", "content": "Say something about the sea."}],
            max_tokens=12, temperature=0, seed=7).choices[0].message.content

    assert ask() == ask()


def test_the_same_seed_gives_the_same_sampled_text_in_two_jobs_and_in_a_local_run(openai_client, node, tmp_path):
    """A named seed keys the noise alone (Sampling.seed_only): two jobs, two job ids, one answer, and the one
    `inferchain infer --seed-only` computes on this machine."""
    def ask(seed: int):
        return openai_client.chat.completions.create(
            model=EMBEDDED_NAME, messages=[{"role": "user", "content": "Invent a name for a boat."}],
            max_tokens=12, temperature=1.2, top_p=1, seed=seed, extra_body={"inferchain": {"top_k": 0}})

    first, second = ask(11), ask(11)
    assert first.id != second.id
    assert first.choices[0].message.content == second.choices[0].message.content == settled_text(node, first.id)
    others = {ask(seed).choices[0].message.content for seed in (12, 13)}
    assert others != {first.choices[0].message.content}, "three seeds gave one text: the seed is not used"
    job_id = bytes.fromhex(first.id.split("-", 1)[1])
    with Client(node.target) as client:
        view = client.get_job(job_id)
    assert view.job.request.sampling.seed_only and view.job.request.sampling.seed == 11
    local = subprocess.run(
        [sys.executable, "-m", "chain.cli", "infer", "Invent a name for a boat.", "--max-tokens", "12",
         "--temperature", "1.2", "--top-p", "1", "--top-k", "0", "--seed", "11", "--seed-only", "--threads", "1",
         "--output", "json"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT), "INFERCHAIN_HOME": str(tmp_path)},
    )
    assert local.returncode == 0, local.stderr
    document = json.loads(local.stdout)
    assert document["sampling"]["seed_only"] is True
    assert document["tokens"] == list(view.result.tokens) and document["text"] == view.result.text


def test_the_raw_stream_is_server_sent_events_ending_with_done(gateway, node):
    base_url, keys = gateway
    body = {"model": EMBEDDED_NAME, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 8,
            "temperature": 0, "stream": True, "stream_options": {"include_usage": True}}
    with httpx.stream("POST", f"{base_url}/chat/completions", json=body, timeout=120,
                      headers={"Authorization": f"Bearer {keys['bob']}"}) as reply:
        assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/event-stream")
        job_id = reply.headers["x-inferchain-job"]
        raw = "".join(reply.iter_text())
    assert raw.endswith("\n\ndata: [DONE]\n\n")
    frames = raw.split("\n\n")
    assert frames[-1] == "" and all(frame.startswith("data: ") and "\n" not in frame for frame in frames[:-1])
    documents = [json.loads(frame[len("data: "):]) for frame in frames[:-2]]
    assert {document["id"] for document in documents} == {f"chatcmpl-{job_id}"}
    assert documents[-1]["choices"] == [] and documents[-1]["usage"]["completion_tokens"] <= 8
    final = documents[-2]
    assert final["choices"][0]["finish_reason"] in ("stop", "length") and final["inferchain"]["verdict"] == "settled"
    text = "".join(document["choices"][0]["delta"].get("content", "") for document in documents[:-1])
    assert text == settled_text(node, f"chatcmpl-{job_id}")
