"""Block sync's bookkeeping: ranges spread over peers, liars and slow peers dropped, blocks handed out in order."""

from __future__ import annotations

from chain.consensus.sync import BlockSync
from proto import p2p_pb2, types_pb2


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def blocks(first: int, count: int) -> p2p_pb2.BlocksResponse:
    return p2p_pb2.BlocksResponse(blocks=[
        types_pb2.FinalizedBlock(commit=types_pb2.Commit(height=height)) for height in range(first, first + count)
    ])


def test_ranges_are_spread_over_the_peers_that_claim_them():
    sync = BlockSync(Clock(), batch=10, parallel=3)
    for peer in (b"a", b"b", b"c"):
        sync.on_status(peer, 100)
    requests = sync.due(head=0, stalled=False)
    assert len({peer for peer, _ in requests}) == 3
    assert [(r.from_height, r.count) for _, r in requests] == [(1, 10), (11, 10), (21, 10)]


def test_a_node_one_block_behind_waits_unless_stalled():
    sync = BlockSync(Clock())
    sync.on_status(b"a", 6)
    assert sync.due(head=5, stalled=False) == []
    assert not sync.behind(5)
    assert [r.from_height for _, r in sync.due(head=5, stalled=True)] == [6]


def test_a_peer_that_claims_a_height_and_answers_nothing_is_dropped_and_not_asked_again():
    clock = Clock()
    sync = BlockSync(clock, batch=10)
    sync.on_status(b"liar", 10**15)
    sync.on_status(b"honest", 30)
    asked = dict((peer, request) for peer, request in sync.due(head=0, stalled=False))
    sync.on_response(b"liar", p2p_pb2.BlocksResponse())
    faults = sync.faults()
    assert [(f.peer, f.severe) for f in faults] == [(b"liar", True)] and b"liar" in asked
    assert sync.best() == 30
    sync.on_status(b"liar", 10**15)  # its next claim is ignored while distrusted
    assert sync.best() == 30
    clock.now += 1
    assert all(peer == b"honest" for peer, _ in sync.due(head=0, stalled=False))


def test_a_range_not_answered_in_time_is_asked_of_another_peer():
    clock = Clock()
    sync = BlockSync(clock, batch=10, parallel=1, timeout_s=4)
    sync.on_status(b"a", 10)
    sync.on_status(b"b", 10)
    [(first, request)] = sync.due(head=0, stalled=False)
    clock.now += 5
    [(second, again)] = sync.due(head=0, stalled=False)
    assert second != first and again.from_height == request.from_height
    assert [(f.peer, f.severe) for f in sync.faults()] == [(first, False)]


def test_blocks_are_handed_out_in_height_order_whatever_order_they_arrive_in():
    sync = BlockSync(Clock(), batch=5, parallel=2)
    sync.on_status(b"a", 10)
    sync.on_status(b"b", 10)
    by_start = {request.from_height: peer for peer, request in sync.due(head=0, stalled=False)}
    sync.on_response(by_start[6], blocks(6, 5))
    assert sync.take(1) is None
    sync.on_response(by_start[1], blocks(1, 5))
    assert [sync.take(height)[1].commit.height for height in range(1, 11)] == list(range(1, 11))


def test_unasked_or_too_many_blocks_are_faults_and_a_rejected_block_drops_the_rest_of_that_peer():
    sync = BlockSync(Clock(), batch=5, parallel=1)
    sync.on_response(b"stranger", blocks(1, 3))
    sync.on_status(b"a", 10)
    [(peer, _)] = sync.due(head=0, stalled=False)
    sync.on_response(peer, blocks(1, 9))
    assert [f.peer for f in sync.faults()] == [b"stranger", b"a"]
    sync.on_status(b"b", 10)
    [(peer, _)] = sync.due(head=0, stalled=False)
    sync.on_response(peer, blocks(1, 5))
    sync.take(1)
    sync.reject(peer, "a block that does not verify")
    assert sync.take(2) is None and sync.best() == 0


def test_a_peer_that_went_away_is_forgotten_and_its_range_asked_again():
    sync = BlockSync(Clock(), batch=5, parallel=1)
    sync.on_status(b"a", 10)
    sync.on_status(b"b", 10)
    [(first, _)] = sync.due(head=0, stalled=False)
    sync.forget(first)
    [(second, request)] = sync.due(head=0, stalled=False)
    assert second != first and request.from_height == 1


def test_a_peer_that_keeps_claiming_and_never_answers_is_treated_as_a_liar_on_its_third_silence():
    clock = Clock()
    sync = BlockSync(clock, batch=10, parallel=1, timeout_s=4)
    severities = []
    for _ in range(3):
        sync.on_status(b"silent", 10**9)  # its claims come back once it is no longer passed over
        assert sync.due(head=0, stalled=False)
        clock.now += 5
        sync.due(head=0, stalled=False)
        severities += [fault.severe for fault in sync.faults()]
        clock.now += 11
    assert severities == [False, False, True]
