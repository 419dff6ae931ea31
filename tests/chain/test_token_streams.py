"""Token streams (docs/protocol.md, "Token streams"): the in-memory store of chain/node/token_streams.py with
a fake clock, PublishTokens and StreamTokens over real gRPC through the Client, and one real node process.

The gRPC cases serve a real NodeCore over the dev genesis plus hand-built jobs written under the documented
keys (runtime/jobs.py): Bob's job assigned to Alice (Charlie's slot missed), so no worker or model is needed.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from hashlib import blake2b

import grpc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.client import Client, ClientError
from chain.crypto import Keypair, dev_keypair
from chain.genesis import dev_genesis_document, parse_genesis
from chain.node.api import NodeApi
from chain.node.core import NodeCore
from chain.node.server import ApiServer
from chain.node.streams import StreamLimits
from chain.node.token_streams import (
    FINISHED_KEEP_S,
    IDLE_DROP_S,
    MAX_TEXT_BYTES,
    TokenStreamError,
    TokenStreams,
    check_piece,
)
from chain.storage import ChainStore
from chain.token_signing import PUBLISH_DOMAIN, STREAM_DOMAIN, publish_message, stream_message
from proto import node_pb2, node_pb2_grpc, state_pb2, types_pb2
from runtime import jobs

GENESIS = parse_genesis(dev_genesis_document())
ALICE_KEY, BOB_KEY, CHARLIE_KEY, DAVE_KEY = (dev_keypair(name) for name in ("alice", "bob", "charlie", "dave"))
ALICE, BOB, CHARLIE = ALICE_KEY.public_key, BOB_KEY.public_key, CHARLIE_KEY.public_key
MAX_TOKENS = 64
JOB_ID = blake2b(b"token stream job", digest_size=32).digest()
UNKNOWN_JOB = blake2b(b"no such job", digest_size=32).digest()
WAIT_S = 10.0


def piece(first_token: int, tokens: int, text: str, stop_reason: str = "") -> node_pb2.TokenPiece:
    return node_pb2.TokenPiece(first_token=first_token, tokens=tokens, text=text, stop_reason=stop_reason)


def pieces_of(texts: list[str], stop_reason: str = "eos") -> list[node_pb2.TokenPiece]:
    """One token per text, the last piece carrying the stop reason."""
    return [piece(index, 1, text, stop_reason if index == len(texts) - 1 else "") for index, text in enumerate(texts)]


TEXTS = ["Red", ",", " green", " and", " blue", "."]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def refusal(action) -> TokenStreamError:
    with pytest.raises(TokenStreamError) as refused:
        action()
    return refused.value


def read_all(store: TokenStreams, reader) -> list[node_pb2.TokenPiece]:
    """Every piece a reader gets until the stream is finished (without waiting for more)."""
    got = []
    while True:
        pieces = store.next_pieces(reader, 0)
        if pieces is None:
            return got
        assert pieces, "the stream is not finished"
        got += pieces


# --- the signed messages ------------------------------------------------------------


def test_the_signed_messages_are_the_domain_then_the_fixed_length_fields():
    genesis, executor = bytes(range(32)), bytes(range(64, 96))
    assert publish_message(genesis, JOB_ID, executor) == b"inferchain/publish-tokens/v1" + genesis + JOB_ID + executor
    assert stream_message(genesis, JOB_ID) == b"inferchain/stream-tokens/v1" + genesis + JOB_ID
    assert (PUBLISH_DOMAIN, STREAM_DOMAIN) == (b"inferchain/publish-tokens/v1", b"inferchain/stream-tokens/v1")
    with pytest.raises(ValueError, match="a job id is 32 bytes, got 31"):
        stream_message(genesis, JOB_ID[:31])


def test_the_protocol_doc_spells_the_signed_messages_as_the_code_builds_them():
    from tests.protocol_doc import section

    text = section("Token streams")
    for domain, size in ((PUBLISH_DOMAIN, 124), (STREAM_DOMAIN, 91)):
        assert " ".join(f"{byte:02x}" for byte in domain) in text
        assert f'("{domain.decode()}", {len(domain)} bytes)' in text
        assert f"= {size} bytes" in text
    assert len(publish_message(bytes(32), JOB_ID, ALICE)) == 124 and len(stream_message(bytes(32), JOB_ID)) == 91


# --- the store ----------------------------------------------------------------------


def test_a_reader_gets_every_piece_in_order_and_ends_after_the_last():
    store = TokenStreams(clock=FakeClock())
    publisher = store.open_publisher(JOB_ID, ALICE, MAX_TOKENS)
    for each in pieces_of(TEXTS):
        store.publish(publisher, each)
    assert read_all(store, store.subscribe(JOB_ID, ALICE)) == pieces_of(TEXTS)


def test_from_token_skips_the_pieces_that_start_before_it():
    store = TokenStreams(clock=FakeClock())
    publisher = store.open_publisher(JOB_ID, ALICE, MAX_TOKENS)
    for each in (piece(0, 2, "ab"), piece(2, 3, "cde"), piece(5, 1, "f"), piece(6, 0, "", "length")):
        store.publish(publisher, each)
    assert [each.first_token for each in read_all(store, store.subscribe(JOB_ID, ALICE, 2))] == [2, 5, 6]
    assert [each.first_token for each in read_all(store, store.subscribe(JOB_ID, ALICE, 3))] == [5, 6]
    assert read_all(store, store.subscribe(JOB_ID, ALICE, 7)) == []


def test_a_waiting_reader_wakes_for_a_piece_published_from_another_thread():
    store = TokenStreams()
    publisher = store.open_publisher(JOB_ID, ALICE, MAX_TOKENS)
    reader = store.subscribe(JOB_ID, ALICE)
    assert store.next_pieces(reader, 0) == []
    timer = threading.Timer(0.1, lambda: store.publish(publisher, piece(0, 1, "x")))
    timer.start()
    started = time.monotonic()
    assert store.next_pieces(reader, WAIT_S) == [piece(0, 1, "x")]
    assert time.monotonic() - started < WAIT_S / 2
    timer.join()


def test_no_stream_is_not_found():
    store = TokenStreams(clock=FakeClock())
    error = refusal(lambda: store.subscribe(JOB_ID, ALICE))
    assert error.status == grpc.StatusCode.NOT_FOUND and JOB_ID.hex() in str(error)


@pytest.mark.parametrize(
    ("bad", "status", "words"),
    [
        (piece(2, 1, "x"), grpc.StatusCode.INVALID_ARGUMENT, "the next one starts at token 1, got first_token 2"),
        (piece(0, 1, "x"), grpc.StatusCode.INVALID_ARGUMENT, "the next one starts at token 1, got first_token 0"),
        (piece(1, 0, "x"), grpc.StatusCode.INVALID_ARGUMENT, "only the last one (with a stop_reason) may carry none"),
        (piece(1, 1, "x", "tired"), grpc.StatusCode.INVALID_ARGUMENT, "stop_reason is one of eos, length"),
        (piece(1, MAX_TOKENS, "x"), grpc.StatusCode.INVALID_ARGUMENT, f"at most {MAX_TOKENS} tokens"),
        (piece(1, 1, "x" * MAX_TEXT_BYTES), grpc.StatusCode.RESOURCE_EXHAUSTED, f"at most {MAX_TEXT_BYTES} bytes"),
    ],
)
def test_a_piece_that_breaks_a_rule_is_refused_and_nothing_is_kept(bad, status, words):
    store = TokenStreams(clock=FakeClock())
    publisher = store.open_publisher(JOB_ID, ALICE, MAX_TOKENS)
    store.publish(publisher, piece(0, 1, "a"))
    reader = store.subscribe(JOB_ID, ALICE)
    error = refusal(lambda: store.publish(publisher, bad))
    assert error.status == status and words in str(error)
    assert store.next_pieces(reader, 0) == [piece(0, 1, "a")]
    store.publish(publisher, piece(1, 1, "b", "eos"))  # the stream goes on from where it was
    assert read_all(store, reader) == [piece(1, 1, "b", "eos")]


def test_nothing_follows_the_last_piece():
    store = TokenStreams(clock=FakeClock())
    publisher = store.open_publisher(JOB_ID, ALICE, MAX_TOKENS)
    store.publish(publisher, piece(0, 1, "a", "eos"))
    error = refusal(lambda: store.publish(publisher, piece(1, 1, "b")))
    assert error.status == grpc.StatusCode.INVALID_ARGUMENT and "finished" in str(error)


def test_a_full_store_evicts_the_finished_stream_that_finished_first():
    clock = FakeClock()
    store = TokenStreams(clock=clock, max_streams=3)
    executors = [bytes([number]) * 32 for number in range(3)]
    publishers = [store.open_publisher(JOB_ID, executor, MAX_TOKENS) for executor in executors]
    store.publish(publishers[2], piece(0, 1, "a", "eos"))
    clock.now += 0.1
    store.publish(publishers[1], piece(0, 1, "a", "eos"))
    store.open_publisher(UNKNOWN_JOB, ALICE, MAX_TOKENS)
    assert len(store) == 3
    assert refusal(lambda: store.subscribe(JOB_ID, executors[2])).status == grpc.StatusCode.NOT_FOUND
    store.subscribe(JOB_ID, executors[1])  # the later finished one is still kept


def test_a_full_store_of_unfinished_streams_refuses_a_new_one():
    store = TokenStreams(clock=FakeClock(), max_streams=2)
    for number in range(2):
        store.open_publisher(JOB_ID, bytes([number]) * 32, MAX_TOKENS)
    error = refusal(lambda: store.open_publisher(JOB_ID, ALICE, MAX_TOKENS))
    assert error.status == grpc.StatusCode.RESOURCE_EXHAUSTED and "at most 2 token streams" in str(error)
    store.open_publisher(JOB_ID, bytes(32), MAX_TOKENS)  # an existing stream can still be taken over


def test_a_finished_stream_is_kept_for_its_time_and_a_reader_of_it_still_reads_it_whole():
    clock = FakeClock()
    store = TokenStreams(clock=clock)
    publisher = store.open_publisher(JOB_ID, ALICE, MAX_TOKENS)
    for each in pieces_of(TEXTS):
        store.publish(publisher, each)
    reader = store.subscribe(JOB_ID, ALICE)
    clock.now += FINISHED_KEEP_S - 1
    store.subscribe(JOB_ID, ALICE)
    clock.now += 1
    assert refusal(lambda: store.subscribe(JOB_ID, ALICE)).status == grpc.StatusCode.NOT_FOUND
    assert read_all(store, reader) == pieces_of(TEXTS)


def test_an_idle_unfinished_stream_is_dropped_and_its_readers_end_aborted():
    clock = FakeClock()
    store = TokenStreams(clock=clock)
    publisher = store.open_publisher(JOB_ID, ALICE, MAX_TOKENS)
    store.publish(publisher, piece(0, 1, "a"))
    reader = store.subscribe(JOB_ID, ALICE)
    assert store.next_pieces(reader, 0) == [piece(0, 1, "a")]
    clock.now += IDLE_DROP_S - 1
    store.publish(publisher, piece(1, 1, "b"))  # a piece keeps it alive
    clock.now += IDLE_DROP_S
    error = refusal(lambda: store.next_pieces(reader, 0))
    assert error.status == grpc.StatusCode.ABORTED and f"no piece came for {IDLE_DROP_S:g} s" in str(error)
    assert refusal(lambda: store.subscribe(JOB_ID, ALICE)).status == grpc.StatusCode.NOT_FOUND
    assert refusal(lambda: store.publish(publisher, piece(2, 1, "c"))).status == grpc.StatusCode.ABORTED


def test_a_new_publisher_takes_the_stream_over_and_goes_on_from_its_next_token():
    store = TokenStreams(clock=FakeClock())
    old = store.open_publisher(JOB_ID, ALICE, MAX_TOKENS)
    store.publish(old, piece(0, 1, "a"))
    reader = store.subscribe(JOB_ID, ALICE)
    new = store.open_publisher(JOB_ID, ALICE, MAX_TOKENS)
    error = refusal(lambda: store.publish(old, piece(1, 1, "b")))
    assert error.status == grpc.StatusCode.ABORTED and "another publisher took it over" in str(error)
    store.publish(new, piece(1, 1, "b", "eos"))
    assert read_all(store, reader) == [piece(0, 1, "a"), piece(1, 1, "b", "eos")]


def test_a_publisher_that_starts_again_from_token_0_replaces_the_stream_and_ends_its_readers():
    store = TokenStreams(clock=FakeClock())
    old = store.open_publisher(JOB_ID, ALICE, MAX_TOKENS)
    store.publish(old, piece(0, 1, "a"))
    reader = store.subscribe(JOB_ID, ALICE)
    assert store.next_pieces(reader, 0) == [piece(0, 1, "a")]
    restarted = store.open_publisher(JOB_ID, ALICE, MAX_TOKENS)
    store.publish(restarted, piece(0, 2, "Hi", "eos"))
    error = refusal(lambda: store.next_pieces(reader, 0))
    assert error.status == grpc.StatusCode.ABORTED and "started this stream again" in str(error)
    assert read_all(store, store.subscribe(JOB_ID, ALICE)) == [piece(0, 2, "Hi", "eos")]


# --- the piece rule, by property ------------------------------------------------------------


@st.composite
def split_text(draw):
    """A text cut into pieces at character boundaries, each with 1-3 tokens, the last with a stop reason."""
    text = draw(st.text(min_size=0, max_size=40))
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=8)))
    bounds = [0, *cuts, len(text)]
    tokens = draw(st.lists(st.integers(1, 3), min_size=len(bounds) - 1, max_size=len(bounds) - 1))
    last_tokens = draw(st.integers(0, 2))
    stop = draw(st.sampled_from(["eos", "length"]))
    result, first = [], 0
    for start, end, count in zip(bounds, bounds[1:], tokens):
        result.append(piece(first, count, text[start:end]))
        first += count
    result.append(piece(first, last_tokens, "", stop))
    return text, result


@settings(max_examples=200, deadline=None)
@given(split=split_text())
def test_contiguous_pieces_are_kept_and_their_texts_join_to_the_whole(split):
    text, pieces = split
    store = TokenStreams(clock=FakeClock())
    publisher = store.open_publisher(JOB_ID, ALICE, 10_000)
    for each in pieces:
        store.publish(publisher, each)
    got = read_all(store, store.subscribe(JOB_ID, ALICE))
    assert "".join(each.text for each in got) == text
    assert sum(each.tokens for each in got) == pieces[-1].first_token + pieces[-1].tokens


@settings(max_examples=200, deadline=None)
@given(next_token=st.integers(0, 1000), first_token=st.integers(0, 2000), tokens=st.integers(0, 50),
       stop=st.sampled_from(["", "eos", "length", "stop", "EOS"]), finished=st.booleans())
def test_check_piece_accepts_exactly_the_contiguous_bounded_pieces(next_token, first_token, tokens, stop, finished):
    candidate = piece(first_token, tokens, "t", stop)
    valid = (not finished and first_token == next_token and stop in ("", "eos", "length") and (tokens > 0 or stop)
             and next_token + tokens <= 1024)
    try:
        size = check_piece(candidate, next_token, 0, finished, 1024)
    except TokenStreamError as error:
        assert not valid and error.status == grpc.StatusCode.INVALID_ARGUMENT and "\n" not in str(error)
    else:
        assert valid and size == 1


# --- over gRPC ---------------------------------------------------------------------------


def hand_built_job() -> state_pb2.Job:
    """Bob's job: Alice assigned, Charlie's slot missed."""
    return state_pb2.Job(
        id=JOB_ID,
        poster=BOB,
        request=types_pb2.PostJob(model=bytes(32), prompt="Name three colours.", prompt_format="chat",
                                  max_tokens=MAX_TOKENS, sampling=types_pb2.Sampling(top_k=40, top_p_ppm=950_000),
                                  max_price_per_token=10, redundancy=2),
        status=state_pb2.JOB_STATUS_ASSIGNED,
        posted_height=1,
        assignments=[
            state_pb2.Assignment(executor=ALICE, price_per_token=10, status=state_pb2.ASSIGNMENT_STATUS_ASSIGNED),
            state_pb2.Assignment(executor=CHARLIE, price_per_token=10, status=state_pb2.ASSIGNMENT_STATUS_MISSED),
        ],
    )


@contextlib.contextmanager
def serving(path, limits: StreamLimits = StreamLimits()):
    """A node core over the dev genesis plus Bob's job, served on a free 127.0.0.1 port: its api and target."""
    store = ChainStore(path / "db")
    records = {jobs.JOB_PREFIX + JOB_ID: hand_built_job().SerializeToString()}
    store.initialize(GENESIS.chain_id, GENESIS.hash, GENESIS.initial_height, {**GENESIS.state(), **records})
    core = NodeCore(store, GENESIS, dev_keypair("alice"))
    core.produce_block()
    api = NodeApi(core, 1000)
    server = ApiServer(api, "127.0.0.1", 0, limits)
    server.start()
    server.mark_serving()
    try:
        yield api, f"127.0.0.1:{server.port}"
    finally:
        server.stop(grace=0)
        store.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with serving(tmp_path_factory.mktemp("token-streams")) as served:
        yield served


@pytest.fixture
def stub(served):
    with grpc.insecure_channel(served[1]) as channel:
        yield node_pb2_grpc.NodeStub(channel)


@pytest.fixture
def node(served):
    """The served node with no token streams yet, and a Client of it."""
    api, target = served
    api.token_streams = TokenStreams()
    with Client(target) as client:
        yield api, client


def client_refusal(action) -> ClientError:
    with pytest.raises(ClientError) as refused:
        action()
    return refused.value


def test_publish_then_stream_gets_every_piece_in_order_and_ends_after_the_last(node):
    api, client = node
    assert client.publish_tokens(ALICE_KEY, JOB_ID, pieces_of(TEXTS)) == len(TEXTS)
    with client.stream_tokens(BOB_KEY, JOB_ID, ALICE) as stream:
        assert list(stream) == pieces_of(TEXTS)


def test_a_reader_that_joins_midway_gets_the_earlier_pieces_then_the_live_ones(node):
    api, client = node
    outbox: queue.Queue = queue.Queue()
    publishing = threading.Thread(target=client.publish_tokens, args=(ALICE_KEY, JOB_ID, iter(outbox.get, None)))
    publishing.start()
    try:
        expected = pieces_of(TEXTS)
        for each in expected[:3]:
            outbox.put(each)
        stream = _stream_when_published(client)
        got = [next(stream) for _ in range(3)]
        for each in expected[3:]:
            outbox.put(each)
            got.append(next(stream))  # each arrives while the publisher is still open
        assert got == expected
        assert list(stream) == []
    finally:
        outbox.put(None)
        publishing.join(WAIT_S)


def _stream_when_published(client: Client):
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            return client.stream_tokens(BOB_KEY, JOB_ID, ALICE)
        except ClientError as error:
            if error.code != "NOT_FOUND" or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_from_token_streams_the_pieces_from_that_token_on(node):
    api, client = node
    client.publish_tokens(ALICE_KEY, JOB_ID, pieces_of(TEXTS))
    assert [each.text for each in client.stream_tokens(BOB_KEY, JOB_ID, ALICE, from_token=4)] == TEXTS[4:]


def test_nothing_published_yet_is_not_found(node):
    api, client = node
    error = client_refusal(lambda: client.stream_tokens(BOB_KEY, JOB_ID, ALICE))
    assert error.code == "NOT_FOUND" and "retry" in error.message


def test_only_the_poster_may_read_the_stream(node):
    api, client = node
    client.publish_tokens(ALICE_KEY, JOB_ID, pieces_of(TEXTS))
    for reader in (ALICE_KEY, DAVE_KEY):
        error = client_refusal(lambda: client.stream_tokens(reader, JOB_ID, ALICE))
        assert error.code == "PERMISSION_DENIED" and "only the job's poster" in error.message


@pytest.mark.parametrize(("publisher", "job_id", "words"), [
    (CHARLIE_KEY, JOB_ID, "is not assigned to job"),  # missed its deadline
    (DAVE_KEY, JOB_ID, "is not assigned to job"),
    (ALICE_KEY, UNKNOWN_JOB, "there is no job"),
])
def test_a_publisher_not_assigned_to_the_job_is_denied_and_nothing_is_kept(node, publisher, job_id, words):
    api, client = node
    error = client_refusal(lambda: client.publish_tokens(publisher, job_id, pieces_of(TEXTS)))
    assert error.code == "PERMISSION_DENIED" and words in error.message
    assert len(api.token_streams) == 0


def test_a_signature_that_does_not_verify_is_denied(node, stub):
    api, client = node
    other_chain = publish_message(bytes(32), JOB_ID, ALICE)
    header = node_pb2.PublishTokensRequest(job_id=JOB_ID, executor=ALICE, signature=ALICE_KEY.sign(other_chain),
                                           piece=piece(0, 1, "a"))
    with pytest.raises(grpc.RpcError) as refused:
        stub.PublishTokens(iter([header]), timeout=WAIT_S)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "the signature is not the executor's" in refused.value.details()
    assert len(api.token_streams) == 0


def _published_so_far(api) -> list[node_pb2.TokenPiece]:
    return api.token_streams.next_pieces(api.token_streams.subscribe(JOB_ID, ALICE), 0)


@pytest.mark.parametrize(("bad", "code", "words"), [
    (piece(3, 1, "x"), "INVALID_ARGUMENT", "pieces are contiguous: the next one starts at token 1"),
    (piece(1, MAX_TOKENS, "x"), "INVALID_ARGUMENT", f"the job allows at most {MAX_TOKENS} tokens"),
    (piece(1, 1, "é" * (MAX_TEXT_BYTES // 2)), "RESOURCE_EXHAUSTED", f"at most {MAX_TEXT_BYTES} bytes of text"),
    (piece(1, 1, "x" * (2 * MAX_TEXT_BYTES)), "RESOURCE_EXHAUSTED", "more than any valid"),
])
def test_a_bad_piece_ends_the_publish_with_a_clear_status_and_is_not_kept(node, bad, code, words):
    api, client = node
    error = client_refusal(lambda: client.publish_tokens(ALICE_KEY, JOB_ID, [piece(0, 1, "a"), bad]))
    assert error.code == code and words in error.message and "\n" not in error.message
    assert _published_so_far(api) == [piece(0, 1, "a")]


def test_malformed_publish_requests_are_invalid_argument_and_keep_nothing(node, stub):
    api, client = node
    signature = ALICE_KEY.sign(publish_message(GENESIS.hash, JOB_ID, ALICE))
    header = node_pb2.PublishTokensRequest(job_id=JOB_ID, executor=ALICE, signature=signature)
    cases = [
        ([], "none came"),
        ([node_pb2.PublishTokensRequest(job_id=JOB_ID[:5], executor=ALICE, signature=signature)],
         "job_id is a job id of 32 bytes, got 5"),
        ([node_pb2.PublishTokensRequest(job_id=JOB_ID, executor=ALICE, signature=signature[:10])],
         "signature is an Ed25519 signature of 64 bytes, got 10"),
        ([header, node_pb2.PublishTokensRequest()], "every message after the first carries a piece"),
        ([header, header], "only the first message carries"),
    ]
    for requests, words in cases:
        with pytest.raises(grpc.RpcError) as refused:
            stub.PublishTokens(iter(requests), timeout=WAIT_S)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT and words in refused.value.details()
    assert [len(each.pieces) for each in api.token_streams._streams.values()] in ([], [0])


def test_an_undecodable_publish_message_is_invalid_argument_not_internal(served):
    api, target = served
    with grpc.insecure_channel(target) as channel:
        publish = channel.stream_unary("/inferchain.node.Node/PublishTokens")
        with pytest.raises(grpc.RpcError) as refused:
            publish(iter([b"\xff\xff\xff"]), timeout=WAIT_S)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "does not decode as inferchain.node.PublishTokensRequest" in refused.value.details()


@pytest.mark.parametrize(("fields", "code", "words"), [
    (dict(job_id=JOB_ID[:31]), grpc.StatusCode.INVALID_ARGUMENT, "job_id is a job id of 32 bytes, got 31"),
    (dict(executor=ALICE[:1]), grpc.StatusCode.INVALID_ARGUMENT, "executor is an account id of 32 bytes, got 1"),
    (dict(signature=b""), grpc.StatusCode.INVALID_ARGUMENT, "signature is an Ed25519 signature of 64 bytes, got 0"),
    (dict(job_id=UNKNOWN_JOB), grpc.StatusCode.NOT_FOUND, "there is no job"),
])
def test_malformed_stream_requests_are_refused_with_a_one_line_detail(node, stub, fields, code, words):
    signature = BOB_KEY.sign(stream_message(GENESIS.hash, JOB_ID))
    request = node_pb2.StreamTokensRequest(**{"job_id": JOB_ID, "executor": ALICE, "signature": signature, **fields})
    with pytest.raises(grpc.RpcError) as refused:
        list(stub.StreamTokens(request, timeout=WAIT_S))
    assert refused.value.code() == code and words in refused.value.details() and "\n" not in refused.value.details()


def test_an_open_publisher_holds_a_stream_place_of_its_client_address(tmp_path):
    limits = StreamLimits(per_node=4, per_client=1, kept_for_newcomers=0)
    with serving(tmp_path, limits) as (api, target), Client(target) as client:
        outbox: queue.Queue = queue.Queue()
        publishing = threading.Thread(target=client.publish_tokens, args=(ALICE_KEY, JOB_ID, iter(outbox.get, None)))
        publishing.start()
        try:
            outbox.put(piece(0, 1, "a"))
            deadline = time.monotonic() + WAIT_S
            while len(api.token_streams) == 0 and time.monotonic() < deadline:
                time.sleep(0.02)
            error = client_refusal(lambda: client.stream_tokens(BOB_KEY, JOB_ID, ALICE))
            assert error.code == "RESOURCE_EXHAUSTED" and "per client address" in error.message
        finally:
            outbox.put(None)
            publishing.join(WAIT_S)
        deadline = time.monotonic() + WAIT_S
        while api.token_streams and time.monotonic() < deadline:  # the publisher's place is given back
            try:
                with client.stream_tokens(BOB_KEY, JOB_ID, ALICE) as stream:
                    assert next(stream) == piece(0, 1, "a")
                    return
            except ClientError as error:
                assert error.code == "RESOURCE_EXHAUSTED"
                time.sleep(0.05)
        pytest.fail("the publisher's stream place was not given back")


def test_close_from_another_thread_ends_a_waiting_reader(node):
    api, client = node
    client.publish_tokens(ALICE_KEY, JOB_ID, [piece(0, 1, "a")])
    stream = client.stream_tokens(BOB_KEY, JOB_ID, ALICE)
    assert next(stream) == piece(0, 1, "a")
    timer = threading.Timer(0.2, stream.close)
    timer.start()
    assert list(stream) == []
    timer.join()


def test_a_restarted_publisher_replaces_the_stream_from_token_0(node):
    api, client = node
    client.publish_tokens(ALICE_KEY, JOB_ID, [piece(0, 1, "old")])
    assert client.publish_tokens(ALICE_KEY, JOB_ID, pieces_of(TEXTS)) == len(TEXTS)
    assert list(client.stream_tokens(BOB_KEY, JOB_ID, ALICE)) == pieces_of(TEXTS)


# --- a real node process -------------------------------------------------------------------


@pytest.mark.timeout(180)
def test_a_real_dev_node_streams_an_assigned_executors_tokens_to_the_poster(tmp_path):
    from inference.registration import EMBEDDED_MODEL_ID
    from tests.nodes import NodeProcess, free_port

    node = NodeProcess(tmp_path / "node", free_port(), worker=False).start()
    try:
        with Client(node.target) as client:
            view = client.post_job(BOB_KEY, "Name three colours.", model=bytes.fromhex(EMBEDDED_MODEL_ID),
                                   max_tokens=16, wait=False)
            for view in client.watch_job(view.id, timeout=60):
                if any(slot.executor == ALICE for slot in view.job.assignments):
                    break
            assert client_refusal(lambda: client.stream_tokens(BOB_KEY, view.id, ALICE)).code == "NOT_FOUND"
            texts = ["Red", ", green", " and blue."]
            assert client.publish_tokens(ALICE_KEY, view.id, pieces_of(texts)) == 3
            assert [each.text for each in client.stream_tokens(BOB_KEY, view.id, ALICE)] == texts
            outsider = Keypair.generate()
            assert client_refusal(lambda: client.stream_tokens(outsider, view.id, ALICE)).code == "PERMISSION_DENIED"
            assert client_refusal(lambda: client.publish_tokens(outsider, view.id, pieces_of(texts))).code == "PERMISSION_DENIED"
    finally:
        node.stop()
    assert "Traceback" not in node.log()


def test_a_piece_whose_text_is_not_utf8_is_invalid_argument(served):
    api, target = served
    not_utf8 = b"\x22\x03\x1a\x01\xff"  # PublishTokensRequest{piece: TokenPiece{text: the byte 0xff}}
    with grpc.insecure_channel(target) as channel:
        publish = channel.stream_unary("/inferchain.node.Node/PublishTokens")
        with pytest.raises(grpc.RpcError) as refused:
            publish(iter([not_utf8]), timeout=WAIT_S)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "does not decode as inferchain.node.PublishTokensRequest" in refused.value.details()
