"""Following the chain by block sync, the consensus loop's side: ask peers that are ahead for ranges of
finalized blocks, check each block's commit against that height's validator set, re-execute it, and
commit it in height order. Who is asked for what, and who lied, is chain/consensus/sync.py's
bookkeeping; answering other nodes' requests is chain/consensus/block_server.py's worker.
"""

from __future__ import annotations

import logging
from typing import Callable

from chain.consensus.commit import CommitError
from chain.consensus.peer_link import PeerLink
from chain.consensus.sync import BlockSync
from chain.node.blocks import Candidate, InvalidProposedBlock
from proto import p2p_pb2, types_pb2
from runtime.encoding import EncodingError, decode_canonical
from runtime.hashing import blake2b_256

log = logging.getLogger("inferchain.consensus")

CATCH_UP_LOG_INTERVAL_S = 10.0


class CatchUp:
    """Block sync requests out and verified blocks in; owned by the consensus loop's thread."""

    def __init__(self, core, peers: PeerLink, clock: Callable[[], float],
                 commit: Callable[[Candidate, types_pb2.Commit], None]):
        self.core = core
        self.builder = core.blocks
        self.peers = peers
        self.clock = clock
        self.commit = commit
        self.sync = BlockSync(clock)
        self._last_log = float("-inf")

    def on_status(self, peer_id: bytes, height: int) -> None:
        self.sync.on_status(peer_id, height)

    def forget(self, peer_id: bytes) -> None:
        self.sync.forget(peer_id)

    def behind(self) -> bool:
        """Whether a trusted peer claims more than the next height."""
        return self.sync.behind(self.core.head.height)

    def request(self, stalled: bool) -> None:
        """Ask for the ranges due now (`stalled`: no progress for a while, so one block behind is enough)."""
        if self.peers.network is None:
            return
        for peer_id, request in self.sync.due(self.core.head.height, stalled):
            self.peers.send(peer_id, p2p_pb2.Envelope(blocks_request=request))
        self._report_faults()

    def on_response(self, peer_id: bytes, response: p2p_pb2.BlocksResponse) -> int:
        """Take a peer's answer and commit what it completes, in height order; the number of blocks committed."""
        self.sync.on_response(peer_id, response)
        committed = 0
        while (item := self.sync.take(self.core.head.height + 1)) is not None:
            sender, finalized = item
            try:
                candidate = self._check(self.core.head.height + 1, finalized)
            except (EncodingError, CommitError, InvalidProposedBlock) as error:
                self.sync.reject(sender, f"a block that does not verify in sync: {error}")
                break
            self.commit(candidate, finalized.commit)
            committed += 1
        self._report_faults()
        if committed and self.behind() and self.clock() - self._last_log > CATCH_UP_LOG_INTERVAL_S:
            self._last_log = self.clock()
            log.info("catching up by block sync: #%d of #%d; taking part in consensus once caught up",
                     self.core.head.height, self.sync.best())
        return committed

    def _check(self, height: int, finalized: types_pb2.FinalizedBlock) -> Candidate:
        header = decode_canonical(types_pb2.Header, finalized.block.header, "block header")
        if header.height != height:
            raise InvalidProposedBlock(f"a block of #{header.height} where #{height} was asked for")
        self.builder.check_commit(height, blake2b_256(finalized.block.header), finalized.commit)
        return self.builder.check(finalized.block)

    def _report_faults(self) -> None:
        for fault in self.sync.faults():
            if fault.severe:
                self.peers.misbehaved(fault.peer, f"{fault.reason} in block sync")
            else:
                log.info("block sync: %s from peer %s; asking others", fault.reason, fault.peer.hex()[:16])
