"""chain/worker/token_publisher.py: a run's tokens become contiguous pieces that never split a character and
join to the result's text exactly; publishing never fails or holds up the job (the embedded model runs
some of these: take /tmp/team/llama.lock to run them on a shared machine)."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.cli.errors import EXIT_USAGE
from chain.client import Client, ClientError
from chain.crypto import dev_keypair
from chain.worker.executor import EnginePool, JobCancelled
from chain.worker import token_publisher
from chain.worker.follower import MarketReader
from chain.worker.token_publisher import MAX_WINDOW_TOKENS, REPLACEMENT, IncrementalDecoder, TokenPublisher, publisher_factory
from inference.engine import EngineConfig
from inference.model_store import ModelStore
from inference.registration import EMBEDDED_MODEL_ID
from inference.result import InferenceJob, InferenceResult
from inference.sampler import SamplingParams
from proto import node_pb2, state_pb2
from tests.commands import inferchain, one_line_error
from tests.nodes import NodeProcess, free_port
from tests.worker.conftest import final, post_job, wait_for_job

ALICE = dev_keypair("alice")
JOB_ID = b"\x07" * 32


class RecordingClient:
    """Stands in for chain.client.Client: keeps what publish_tokens was given, optionally slowly or failing."""

    def __init__(self, delay_s: float = 0.0, fail_after: int | None = None):
        self.delay_s = delay_s
        self.fail_after = fail_after
        self.pieces: list[node_pb2.TokenPiece] = []
        self.calls = 0
        self.ended = threading.Event()

    def publish_tokens(self, keypair, job_id, pieces) -> int:
        self.calls += 1
        try:
            for piece in pieces:
                if self.fail_after is not None and len(self.pieces) >= self.fail_after:
                    raise ClientError("PERMISSION_DENIED", "not assigned to this job")
                time.sleep(self.delay_s)
                copy = node_pb2.TokenPiece()
                copy.CopyFrom(piece)
                self.pieces.append(copy)
            return len(self.pieces)
        finally:
            self.ended.set()


def byte_tokens(chunks: list[bytes]):
    """A byte-level tokenizer (as GPT-2 BPE): token i is chunks[i]; text decoded with U+FFFD for bad UTF-8."""
    return lambda tokens: b"".join(chunks[token] for token in tokens).decode("utf-8", errors="replace")


def published(chunks: list[bytes], stop_reason: str = "eos", client: RecordingClient | None = None, **options):
    """Run a publisher over tokens 0..n-1 of `chunks`; (pieces, the result's text)."""
    client = client or RecordingClient()
    detokenize = byte_tokens(chunks)
    tokens = tuple(range(len(chunks)))
    publisher = TokenPublisher(client, ALICE, JOB_ID, detokenize, **options)
    for token in tokens:
        publisher.add(token)
    text = detokenize(tokens)
    publisher.finish(result_of(tokens, text, stop_reason))
    assert publisher.join(5)
    return client.pieces, text


def result_of(tokens, text: str, stop_reason: str) -> InferenceResult:
    job = InferenceJob(EMBEDDED_MODEL_ID, JOB_ID, "p", max(1, len(tokens)), SamplingParams())
    return InferenceResult(job, 3, tuple(tokens), text, tuple(-1 for _ in tokens), stop_reason)


def check_stream(pieces: list[node_pb2.TokenPiece], text: str, token_count: int, stop_reason: str) -> None:
    """The contract of a token stream (docs/protocol.md, "Token streams")."""
    assert "".join(piece.text for piece in pieces) == text
    assert sum(piece.tokens for piece in pieces) == token_count
    expected_first = 0
    for piece in pieces:
        assert piece.first_token == expected_first
        expected_first += piece.tokens
    assert all(piece.tokens >= 1 and not piece.stop_reason for piece in pieces[:-1])
    assert pieces[-1].stop_reason == stop_reason
    if REPLACEMENT not in text:
        assert not any(REPLACEMENT in piece.text for piece in pieces), "a piece split a character"


# -- decoding, with stand-in tokenizers ---------------------------------------------------------------


def test_characters_split_across_tokens_wait_for_the_token_that_completes_them():
    # "é" (2 bytes) split 1+1, "😀" (4 bytes) split 1+3, "水" (3 bytes) split 2+1 with "a" after it in one token.
    chunks = [b"caf", b"\xc3", b"\xa9 ", b"\xf0", b"\x9f\x98\x80", b"\xe6\xb0", b"\xb4a", b"!"]
    decoder = IncrementalDecoder(byte_tokens(chunks))
    assert [decoder.add(token) for token in range(len(chunks))] == ["caf", "", "é ", "", "😀", "", "水a", "!"]


def test_pieces_of_split_characters_count_the_held_tokens_and_join_to_the_text():
    chunks = [b"caf", b"\xc3", b"\xa9 ", b"\xf0", b"\x9f", b"\x98", b"\x80", b"\xe6\xb0", b"\xb4"]
    pieces, text = published(chunks, "length")
    check_stream(pieces, text, len(chunks), "length")
    assert text == "café 😀水"


def test_a_stream_ending_inside_a_character_carries_the_rest_in_its_last_piece():
    # The result's text ends in U+FFFD (the output stopped mid-character): the last piece says so, as the result.
    pieces, text = published([b"ok", b"\xe6\xb0"], "length")
    assert text == "ok" + REPLACEMENT
    check_stream(pieces, text, 2, "length")
    assert pieces[-1].text.endswith(REPLACEMENT) and not any(REPLACEMENT in piece.text for piece in pieces[:-1])


def test_a_token_rendered_empty_is_counted_with_the_next_piece():
    # The empty ones stand for special tokens (EOS); each token is given time to go out, so that none merge.
    chunks = [b"a", b"", b"b", b""]
    client = RecordingClient()
    publisher = TokenPublisher(client, ALICE, JOB_ID, byte_tokens(chunks))
    for token in range(len(chunks)):
        publisher.add(token)
        time.sleep(0.1)
    publisher.finish(result_of(tuple(range(4)), "ab", "eos"))
    assert publisher.join(5)
    pieces = client.pieces
    check_stream(pieces, "ab", 4, "eos")
    assert [(piece.tokens, piece.text) for piece in pieces] == [(1, "a"), (2, "b"), (1, "")]


def test_a_tokenizer_that_drops_the_first_tokens_leading_space_still_joins_exactly():
    # SentencePiece-style: every piece starts with a space except that the text's first one is dropped.
    words = [" Hello", " wor", "ld", " ,", " ünï", "cödé"]
    detokenize = lambda tokens: "".join(words[token] for token in tokens).removeprefix(" ")  # noqa: E731
    client = RecordingClient()
    publisher = TokenPublisher(client, ALICE, JOB_ID, detokenize)
    for token in range(len(words)):
        publisher.add(token)
    text = detokenize(range(len(words)))
    publisher.finish(result_of(range(len(words)), text, "eos"))
    assert publisher.join(5)
    check_stream(client.pieces, text, len(words), "eos")


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=60), cuts=st.lists(st.integers(min_value=1, max_value=5), max_size=200))
def test_any_text_cut_into_any_byte_tokens_streams_whole_characters_that_join_to_it(text, cuts):
    data, chunks, at = text.encode(), [], 0
    for cut in cuts + [1] * len(text.encode()):
        if at >= len(data):
            break
        chunks.append(data[at:at + cut])
        at += cut
    pieces, joined = published(chunks or [b""], "length")
    assert joined == text
    check_stream(pieces, text, max(1, len(chunks)), "length")


def test_a_tokenizer_whose_prefixes_disagree_leaves_the_rest_to_the_last_piece_within_a_bounded_window():
    # A made-up tokenizer whose text of a prefix is not a prefix of the text: nothing stable is ever released.
    detokenize = lambda tokens: str(len(tokens))[::-1]  # noqa: E731
    seen = []
    decoder = IncrementalDecoder(lambda tokens: seen.append(len(tokens)) or detokenize(tokens))
    for token in range(MAX_WINDOW_TOKENS * 3):
        decoder.add(token)
    assert max(seen) <= MAX_WINDOW_TOKENS + 1


# -- publishing: bounded, never in the job's way -------------------------------------------------------


def test_a_slow_node_merges_queued_pieces_and_keeps_the_stream_whole():
    chunks = [bytes([97 + index % 26]) for index in range(400)]
    client = RecordingClient(delay_s=0.002)
    pieces, text = published(chunks, "length", client=client, max_queued=4)
    check_stream(pieces, text, 400, "length")
    assert len(pieces) < 400  # merged while the sender was behind


def test_the_first_piece_goes_at_once_and_later_ones_at_most_one_an_interval_with_the_last_at_once():
    """At 80 tokens a second a message per token cost the worker and the node more than the job's reveal; pieces
    are merged to one per interval, the first and the last not held back."""
    chunks = [bytes([97 + index % 26]) for index in range(60)]

    class TimedClient(RecordingClient):
        def publish_tokens(self, keypair, job_id, pieces):
            self.sent_at = []
            return super().publish_tokens(keypair, job_id, (self.sent_at.append(time.monotonic()) or piece
                                                            for piece in pieces))

    client = TimedClient()
    publisher = TokenPublisher(client, ALICE, JOB_ID, byte_tokens(chunks), interval_s=0.05)
    started = time.monotonic()
    for token in range(len(chunks)):  # 60 tokens over about 0.3 s
        publisher.add(token)
        time.sleep(0.005)
    finished = time.monotonic()
    publisher.finish(result_of(tuple(range(len(chunks))), "".join(chr(c[0]) for c in chunks), "length"))
    assert publisher.join(5)
    check_stream(client.pieces, "".join(chr(c[0]) for c in chunks), len(chunks), "length")
    assert client.sent_at[0] - started < 0.04  # not held for the interval
    assert len(client.pieces) <= 12  # about one per 50 ms, not one per token
    gaps = [later - earlier for earlier, later in zip(client.sent_at, client.sent_at[1:-1])]
    assert all(gap >= 0.045 for gap in gaps), gaps
    assert client.sent_at[-1] - finished < 0.04  # the last piece is not held back


def test_the_sending_thread_is_woken_once_a_piece_not_once_a_token(monkeypatch):
    """A wake-up per token made about five context switches a token with two jobs generating at once: only a
    piece reaching an empty queue (and the end of the stream) wakes the sender, which times its own next send."""
    wakes = []

    class CountingCondition(threading.Condition):
        def notify_all(self):
            wakes.append(time.monotonic())
            super().notify_all()

    monkeypatch.setattr(token_publisher, "threading", SimpleNamespace(Condition=CountingCondition,
                                                                    Thread=threading.Thread))
    chunks = [bytes([97 + index % 26]) for index in range(60)]
    client = RecordingClient()
    publisher = TokenPublisher(client, ALICE, JOB_ID, byte_tokens(chunks), interval_s=0.05)
    for token in range(len(chunks)):  # 60 tokens over about 0.3 s
        publisher.add(token)
        time.sleep(0.005)
    publisher.finish(result_of(tuple(range(len(chunks))), "".join(chr(c[0]) for c in chunks), "length"))
    assert publisher.join(5)
    check_stream(client.pieces, "".join(chr(c[0]) for c in chunks), len(chunks), "length")
    assert len(wakes) <= len(client.pieces) + 1 < 15, (len(wakes), len(client.pieces))


def test_adding_tokens_does_not_wait_for_a_stalled_node():
    release = threading.Event()

    class StalledClient:
        def publish_tokens(self, keypair, job_id, pieces):
            next(iter(pieces))
            release.wait(10)
            return 0

    publisher = TokenPublisher(StalledClient(), ALICE, JOB_ID, byte_tokens([b"x"] * 10_000), max_queued=8)
    started = time.perf_counter()
    for token in range(10_000):
        publisher.add(token)
    publisher.finish(result_of(tuple(range(10_000)), "x" * 10_000, "length"))
    assert time.perf_counter() - started < 5
    release.set()
    assert publisher.join(5)


def test_a_refusing_node_is_logged_once_and_the_rest_is_not_decoded(caplog):
    decoded = []
    detokenize = byte_tokens([b"a"] * 50)
    client = RecordingClient(fail_after=2)
    publisher = TokenPublisher(client, ALICE, JOB_ID, lambda tokens: decoded.append(1) or detokenize(tokens))
    with caplog.at_level(logging.WARNING, logger="inferchain.worker"):
        for token in range(50):
            publisher.add(token)
            time.sleep(0.002)
        publisher.finish(result_of(tuple(range(50)), "a" * 50, "length"))
        assert publisher.join(5)
    assert publisher.failed
    warnings = [record for record in caplog.records if "stopped publishing" in record.getMessage()]
    assert len(warnings) == 1 and "PERMISSION_DENIED" in warnings[0].getMessage()
    assert len(decoded) < 2 * 50


def test_an_abandoned_run_ends_its_stream_without_a_last_piece():
    client = RecordingClient()
    publisher = TokenPublisher(client, ALICE, JOB_ID, byte_tokens([b"a", b"b"]))
    publisher.add(0)
    publisher.abandon()
    assert publisher.join(5)
    assert not any(piece.stop_reason for piece in client.pieces)


# -- the real engine -----------------------------------------------------------------------------------

PROMPTS = (
    "Name three colours.",
    "Translate to Chinese: I love green tea and mountains.",  # the embedded model splits CJK characters
    "Reply with five emoji only, no words.",
    "Write the word café in French and Japanese.",
)


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    """The worker's engine pool with one engine of the embedded model."""
    engines = EnginePool(ModelStore(tmp_path_factory.mktemp("store") / "models"),
                         EngineConfig(threads=1, context=1024), parallel=1)
    engines.load(EMBEDDED_MODEL_ID)
    yield engines
    engines.close()


def job_for(prompt: str, max_tokens: int = 40) -> InferenceJob:
    job_id = hashlib.blake2b(f"publisher {prompt}".encode(), digest_size=32).digest()
    return InferenceJob(EMBEDDED_MODEL_ID, job_id, prompt, max_tokens, SamplingParams())


@pytest.mark.parametrize("prompt", PROMPTS)
def test_the_engines_pieces_join_to_the_result_and_never_split_a_character(pool, prompt):
    client = RecordingClient()
    made = []

    def publish(job_id, detokenize):
        made.append(TokenPublisher(client, ALICE, job_id, detokenize))
        return made[-1]

    result = pool.run(job_for(prompt), lambda: False, publish=publish)
    assert made[0].join(10)
    check_stream(client.pieces, result.text, len(result.tokens), result.stop_reason)
    assert pool.run(job_for(prompt), lambda: False) == result  # publishing changes nothing of the result


def test_the_engine_splits_characters_across_tokens_here(pool):
    # What the test above relies on: some output token of the Chinese prompt ends inside a character.
    client = RecordingClient()
    publisher = []
    result = pool.run(job_for(PROMPTS[1]), lambda: False,
                      publish=lambda job_id, detokenize: publisher.append(TokenPublisher(client, ALICE, job_id, detokenize))
                      or publisher[0])
    assert publisher[0].join(10)
    assert any(piece.tokens > 1 for piece in client.pieces[:-1])
    assert not result.text.isascii()


def test_a_failing_node_fails_neither_the_job_nor_its_result(pool, caplog):
    prompt = PROMPTS[0]
    with caplog.at_level(logging.WARNING, logger="inferchain.worker"):
        result = pool.run(job_for(prompt), lambda: False,
                          publish=publisher_factory(RecordingClient(fail_after=0), ALICE))
    assert result == pool.run(job_for(prompt), lambda: False)
    assert len([record for record in caplog.records if "stopped publishing" in record.getMessage()]) <= 1


def test_a_cancelled_run_still_raises_and_ends_its_stream_unfinished(pool):
    client = RecordingClient()
    made = []
    calls = iter(range(10**6))

    def cancelled():
        return next(calls) > 5  # a few tokens in

    with pytest.raises(JobCancelled):
        pool.run(job_for(PROMPTS[0], max_tokens=64), cancelled,
                 publish=lambda job_id, detokenize: made.append(TokenPublisher(client, ALICE, job_id, detokenize))
                 or made[0])
    assert made[0].join(10)
    assert not any(piece.stop_reason for piece in client.pieces)


# -- the worker's command line -----------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["no-port", "node.example:0", "node example:1", "x" * 300 + ":1"])
def test_a_malformed_stream_endpoint_is_a_usage_error_before_anything_starts(endpoint, tmp_path):
    result = inferchain("worker", "--node", f"127.0.0.1:{free_port()}", "--key", "alice", "--base-path",
                        str(tmp_path), "--stream-endpoint", endpoint)
    assert result.returncode == EXIT_USAGE
    line = one_line_error(result)
    assert "--stream-endpoint" in line and "endpoint" in line and len(line) < 300


# -- end to end: a dev node and its own worker -----------------------------------------------------------

WORKER_READY = "executing jobs for"


def wait_until(found, what: str, node: NodeProcess, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while not (value := found()):
        if time.monotonic() > deadline:
            lines = [line for line in node.log().splitlines() if "produced #" not in line]
            raise AssertionError(f"{what} not within {timeout} s; the node's log without blocks:\n"
                                 + "\n".join(lines[-40:]))
        time.sleep(0.2)
    return value


def read_stream(target: str, poster, job_id: bytes, executor: bytes, timeout: float = 60.0) -> list[node_pb2.TokenPiece]:
    """Every piece of the executor's stream, as the poster reads it (NOT_FOUND retried until it is published)."""
    deadline = time.monotonic() + timeout
    with Client(target) as client:
        while True:
            try:
                stream = client.stream_tokens(poster, job_id, executor)
                break
            except ClientError as error:
                if error.code != "NOT_FOUND" or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        with stream:
            return list(stream)


@pytest.mark.slow
def test_a_poster_streams_the_dev_workers_tokens_and_they_join_to_the_settled_text(tmp_path):
    node = NodeProcess(tmp_path / "node", free_port(), worker=True).start()
    charlie = dev_keypair("charlie")
    try:
        wait_until(lambda: WORKER_READY in node.log(), "the worker's start", node)
        reader = MarketReader(node.target)
        try:
            wait_until(lambda: reader.offer(ALICE.public_key).endpoint == node.target,
                       "the worker's SetOffer of its stream endpoint", node, timeout=30)
        finally:
            reader.close()
        with Client(node.target) as client:
            job_id = post_job(client, charlie, max_tokens=24, prompt=PROMPTS[1])
        assigned = wait_for_job(node.target, job_id, lambda job: len(job.assignments) >= 1, timeout=60)
        executor = assigned.assignments[0].executor
        pieces = read_stream(node.target, charlie, job_id, executor)
        job = wait_for_job(node.target, job_id, final, timeout=90)
    finally:
        node.kill()
    reveal = job.assignments[0].reveal
    assert job.status == state_pb2.JOB_STATUS_SETTLED, job.reason
    check_stream(pieces, reveal.text, len(reveal.tokens), reveal.stop_reason)
    # Greedy, this prompt's 24 tokens are CJK characters of 3 tokens each, the last one cut short (U+FFFD in the
    # result): only the last piece holds it.
    assert len(pieces) > 1 and not any(REPLACEMENT in piece.text for piece in pieces[:-1])
    assert node.log().count("offer stream endpoint") == 1
