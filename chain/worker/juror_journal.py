"""What a committee member must remember across a restart: each dispute's vote salt and votes, one file per dispute.

A vote commitment hides the votes behind a salt; the reveal must carry exactly the salt and votes
committed to, or the chain refuses it (VoteMismatch) and the member is slashed for a missed vote.
So the ballot is written (atomically, fsynced) before the commitment leaves the worker, as
journal.py does for results, and removed once the dispute needs nothing more from this member.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from chain.durable import write_durably

from proto import types_pb2
from runtime.jobs.params import SALT_BYTES

log = logging.getLogger("inferchain.worker")

BALLOT_VERSION = 1
DISPUTE_ID_BYTES = 32
VOTE_FIELDS = ("candidate", "valid", "positions", "misses", "worst_margin_micro")


@dataclass(frozen=True)
class Ballot:
    """One member's salt and votes on one dispute: enough to commit and reveal again after a restart."""

    dispute_id: bytes
    salt: bytes
    votes: tuple[types_pb2.CandidateVote, ...]

    def reveal_call(self) -> types_pb2.RevealVote:
        """The RevealVote that opens this ballot's commitment."""
        return types_pb2.RevealVote(dispute=self.dispute_id, salt=self.salt, votes=list(self.votes))


def vote_document(vote: types_pb2.CandidateVote) -> dict:
    return {name: getattr(vote, name) for name in VOTE_FIELDS}


def vote_of(document: dict) -> types_pb2.CandidateVote:
    """A vote from its document; ValueError (or KeyError, TypeError) when it is not one."""
    if not isinstance(document, dict) or set(document) != set(VOTE_FIELDS):
        raise ValueError(f"a vote has exactly the fields {', '.join(VOTE_FIELDS)}")
    if not isinstance(document["valid"], bool):
        raise ValueError("a vote's valid is true or false")
    numbers = {name: document[name] for name in VOTE_FIELDS if name != "valid"}
    if not all(isinstance(value, int) and not isinstance(value, bool) for value in numbers.values()):
        raise ValueError("a vote's candidate, positions, misses and worst margin are integers")
    return types_pb2.CandidateVote(**document)


class VoteJournal:
    """One JSON file per dispute under `directory` (created on first write)."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)

    def write(self, ballot: Ballot) -> None:
        """Store a ballot durably (chain/durable.py): the old file or the new one survives a crash, never a torn one."""
        self.directory.mkdir(parents=True, exist_ok=True)
        document = {
            "version": BALLOT_VERSION,
            "dispute": ballot.dispute_id.hex(),
            "salt": ballot.salt.hex(),
            "votes": [vote_document(vote) for vote in ballot.votes],
        }
        write_durably(self._path(ballot.dispute_id), json.dumps(document).encode())

    def read(self, dispute_id: bytes) -> Ballot | None:
        """The dispute's ballot, or None when there is none or it cannot be read (said in the log)."""
        path = self._path(dispute_id)
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            ballot = Ballot(
                dispute_id=bytes.fromhex(document["dispute"]),
                salt=bytes.fromhex(document["salt"]),
                votes=tuple(vote_of(vote) for vote in document["votes"]),
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as error:
            log.warning("vote journal file %s is unreadable (%s); ignoring it", path, error)
            return None
        if ballot.dispute_id != dispute_id or len(ballot.salt) != SALT_BYTES:
            log.warning("vote journal file %s does not belong to dispute %s; ignoring it", path, dispute_id.hex())
            return None
        return ballot

    def remove(self, dispute_id: bytes) -> None:
        self._path(dispute_id).unlink(missing_ok=True)

    def dispute_ids(self) -> list[bytes]:
        """Every dispute with a file, in name order."""
        if not self.directory.is_dir():
            return []
        ids = []
        for path in sorted(self.directory.glob("*.json")):
            try:
                dispute_id = bytes.fromhex(path.stem)
            except ValueError:
                continue
            if len(dispute_id) == DISPUTE_ID_BYTES:
                ids.append(dispute_id)
        return ids

    def _path(self, dispute_id: bytes) -> Path:
        return self.directory / f"{dispute_id.hex()}.json"


