"""disputes events: every step of a dispute emits one, so a client can follow it (names declared once, here)."""

from __future__ import annotations

from proto import types_pb2
from runtime.disputes.params import MODULE
from runtime.module import ACCOUNT, AMOUNT, HASH, INTEGER, TEXT, EventSpec
from runtime.primitives import make_event

DISPUTE_OPENED = "DisputeOpened"
CHALLENGED = "Challenged"
AUDIT_SKIPPED = "AuditSkipped"
COMMITTEE_DRAWN = "CommitteeDrawn"
MEMBER_DRAWN = "MemberDrawn"
VOTE_COMMITTED = "VoteCommitted"
REVEAL_OPENED = "RevealOpened"
VOTE_REVEALED = "VoteRevealed"
CANDIDATE_JUDGED = "CandidateJudged"
DISPUTE_DECIDED = "DisputeDecided"
CHALLENGE_SETTLED = "ChallengeSettled"
EVIDENCE_CONVICTED = "EvidenceConvicted"
PROBE_SEALED = "ProbeSealed"
PROBE_OPENED = "ProbeOpened"

EVENTS = (
    EventSpec(DISPUTE_OPENED, "A dispute opened on a job's revealed results; its committee is drawn at draw_height.",
              {"dispute": HASH, "reason": TEXT, "candidates": INTEGER, "draw_height": INTEGER}),
    EventSpec(CHALLENGED, "A bonded challenge of one revealed result.",
              {"dispute": HASH, "challenger": ACCOUNT, "candidate": INTEGER, "bond": AMOUNT}),
    EventSpec(AUDIT_SKIPPED, "A settled job drawn for an audit was not audited (too few eligible members, too many "
              "open disputes).", {"job": HASH, "reason": TEXT}),
    EventSpec(COMMITTEE_DRAWN, "The dispute's committee was drawn; its members commit by commit_deadline.",
              {"dispute": HASH, "members": INTEGER, "commit_deadline": INTEGER}),
    EventSpec(MEMBER_DRAWN, "One member of a dispute's committee.", {"dispute": HASH, "member": ACCOUNT}),
    EventSpec(VOTE_COMMITTED, "A member committed to its votes.", {"dispute": HASH, "member": ACCOUNT}),
    EventSpec(REVEAL_OPENED, "The commit phase ended; members reveal by reveal_deadline.",
              {"dispute": HASH, "reveal_deadline": INTEGER}),
    EventSpec(VOTE_REVEALED, "A member revealed its votes.", {"dispute": HASH, "member": ACCOUNT}),
    EventSpec(CANDIDATE_JUDGED, "The committee's verdict on one revealed result, with the stake on each side.",
              {"dispute": HASH, "candidate": INTEGER, "executor": ACCOUNT, "verdict": TEXT, "valid_stake": AMOUNT,
               "invalid_stake": AMOUNT}),
    EventSpec(DISPUTE_DECIDED, "The dispute is decided and its consequences applied.", {"dispute": HASH, "outcome": TEXT}),
    EventSpec(CHALLENGE_SETTLED, "A challenger's bond returned (less what it lost) and its reward paid.",
              {"dispute": HASH, "challenger": ACCOUNT, "returned": AMOUNT, "lost": AMOUNT, "reward": AMOUNT}),
    EventSpec(EVIDENCE_CONVICTED, "An executor's misses over every re-score of its results for a model convicted it.",
              {"executor": ACCOUNT, "model": HASH, "positions": INTEGER, "misses": INTEGER}),
    EventSpec(PROBE_SEALED, "A staker sealed a probe: a commitment to a job it posts, opened once the job settles.",
              {"sealer": ACCOUNT, "commitment": HASH, "epoch": INTEGER}),
    EventSpec(PROBE_OPENED, "A sealed probe was opened: its job is audited (the dispute), and the probe fund paid "
              "the poster back the results' payments.",
              {"dispute": HASH, "sealer": ACCOUNT, "poster": ACCOUNT, "reimbursed": AMOUNT}),
)


def event(event_name: str, **attributes: object) -> types_pb2.Event:
    """One of the events above, attributes in declaration order."""
    return make_event(MODULE, event_name, **attributes)
