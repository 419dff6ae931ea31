"""Parsing OpenAI requests and shaping answers, without a node: chat rendering, pieces, refusals."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chain.client import ClientError
from chain.gateway.jobs import refusal
from chain.gateway.openai_shapes import (
    RequestError,
    chat_prompt,
    finish_reason,
    parse_chat_request,
    parse_text_request,
    text_pieces,
)


def test_a_lone_user_message_is_the_prompt_exactly():
    assert chat_prompt([{"role": "user", "content": "  Hi there\n"}]) == "  Hi there\n"


def test_a_conversation_becomes_a_transcript_in_one_user_message():
    prompt = chat_prompt([
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "!"}]},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "Colours?"},
    ])
    assert prompt == "System: Be brief.\n\nUser: Hi!\n\nAssistant: Hello.\n\nUser: Colours?"


@pytest.mark.parametrize("messages, param", [
    ([{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}], "messages[0].content[0]"),
    ([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "messages"),
    ([{"role": "tool", "content": "a"}], "messages[0].role"),
    ([{"role": "user", "content": ""}], "messages[0].content"),
])
def test_a_message_the_chain_cannot_take_is_refused_naming_it(messages, param):
    with pytest.raises(RequestError) as refused:
        chat_prompt(messages)
    assert refused.value.status == 400 and refused.value.param == param


def test_sampling_fields_map_to_the_chains_integers():
    request = parse_chat_request({
        "model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 0.7, "top_p": 0.9, "seed": 3,
        "max_completion_tokens": 5, "max_tokens": 9, "stream": True, "stream_options": {"include_usage": True},
        "inferchain": {"top_k": 20, "redundancy": 2, "max_price_per_token": 7, "region": "eu",
                       "engine_classes": ["cpu", "gpu-a"]},
        "user": "ignored", "n": 1,
    })
    assert (request.temperature_milli, request.top_p_ppm, request.seed, request.max_tokens) == (700, 900_000, 3, 5)
    assert (request.top_k, request.redundancy, request.max_price_per_token, request.region) == (20, 2, 7, "eu")
    assert request.engine_classes == ("cpu", "gpu-a")
    assert parse_text_request({"model": "m", "prompt": "x"}).engine_classes == ()
    assert request.stream and request.include_usage and request.prompt_format == "chat"
    text = parse_text_request({"model": "m", "prompt": ["Once"]})
    assert text.prompt == "Once" and text.prompt_format == "raw" and text.temperature_milli == 1_000


@pytest.mark.parametrize("temperature, milli", [(0, 0), (2, 2_000), (2.0004, 2_000), (2.001, None), (3, None),
                                                (-0.001, None)])
def test_temperature_takes_openais_range_zero_to_two(temperature, milli):
    """OpenAI's API refuses a temperature above 2, and so does the gateway (an OpenAI client expects the 400);
    the chain's own limit, 100, stays with the CLI and the gRPC API."""
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": temperature}
    if milli is not None:
        assert parse_chat_request(body).temperature_milli == milli
        return
    with pytest.raises(RequestError) as refused:
        parse_chat_request(body)
    assert (refused.value.status, refused.value.param) == (400, "temperature")
    assert "from 0 to 2" in refused.value.message


@pytest.mark.parametrize("field, value", [
    ("stop", None), ("stop", []), ("tools", []), ("tool_choice", "none"), ("tool_choice", "auto"),
    ("function_call", "none"), ("response_format", {"type": "text"}), ("logprobs", False), ("top_logprobs", 0),
    ("logit_bias", {}), ("presence_penalty", 0), ("frequency_penalty", 0.0), ("best_of", 1), ("echo", False),
    ("suffix", ""),
])
def test_a_field_the_chain_cannot_honour_is_accepted_where_it_asks_for_nothing(field, value):
    """Clients and frameworks send some of these with their neutral values by default (response_format text,
    tool_choice none): those ask the chain for nothing it cannot do."""
    parse_chat_request({"model": "m", "messages": [{"role": "user", "content": "x"}], field: value})


@pytest.mark.parametrize("field, value", [
    ("stop", "\n"), ("stop", ["\n"]), ("tools", [{"type": "function"}]), ("tool_choice", "required"),
    ("response_format", {"type": "json_object"}), ("logprobs", True), ("top_logprobs", 2), ("logit_bias", {"1": 5}),
    ("presence_penalty", 0.5), ("best_of", 2), ("best_of", True), ("echo", True), ("suffix", "end"),
])
def test_a_field_the_chain_cannot_honour_is_refused_naming_it(field, value):
    with pytest.raises(RequestError) as refused:
        parse_chat_request({"model": "m", "messages": [{"role": "user", "content": "x"}], field: value})
    assert (refused.value.status, refused.value.param, refused.value.code) == (400, field, "unsupported_parameter")


@pytest.mark.parametrize("classes, param", [
    ("cpu", "inferchain.engine_classes"),
    (["cpu", "cpu"], "inferchain.engine_classes"),
    ([f"g{index}" for index in range(9)], "inferchain.engine_classes"),
    (["GPU"], "inferchain.engine_classes[0]"),
    (["cpu", 7], "inferchain.engine_classes[1]"),
    ([""], "inferchain.engine_classes[0]"),
])
def test_engine_classes_that_are_not_a_short_list_of_class_names_are_refused_naming_the_field(classes, param):
    with pytest.raises(RequestError) as refused:
        parse_chat_request({"model": "m", "messages": [{"role": "user", "content": "x"}],
                            "inferchain": {"engine_classes": classes}})
    assert refused.value.status == 400 and refused.value.param == param


@given(st.text(), st.integers(min_value=1, max_value=50))
def test_the_pieces_join_to_the_text_and_are_no_more_than_the_tokens(text, tokens):
    pieces = text_pieces(text, tokens)
    assert "".join(pieces) == text and len(pieces) <= tokens


def test_finish_reasons():
    assert (finish_reason("eos"), finish_reason("length")) == ("stop", "length")


@pytest.mark.parametrize("code, message, status", [
    ("FAILED_PRECONDITION", "call would fail: jobs.InsufficientBalance: free 3 < escrow 9", 402),
    ("FAILED_PRECONDITION", "sender ab has no account on this chain, so it cannot pay the fee 1", 402),
    ("FAILED_PRECONDITION", "jobs.TooManyQueued: 32 queued", 429),
    ("FAILED_PRECONDITION", "jobs.NoExecutors: only 0 executors serve the model", 503),
    ("FAILED_PRECONDITION", "jobs.JobTooLarge: max_tokens 100000 is above the limit", 400),
    ("UNAVAILABLE", "cannot connect to a node at 127.0.0.1:1", 503),
    ("RESOURCE_EXHAUSTED", "the pool is full", 503),
])
def test_the_nodes_refusals_map_to_openai_statuses(code, message, status):
    error = refusal(ClientError(code, message))
    assert error.status == status and (error.retry_after is not None) == (status in (429, 503))
