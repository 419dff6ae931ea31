"""Property tests of disputes: arbitrary sequences of post, commit, reveal, challenge, vote, audit, slash, jail,
unjail, bond, unbond, withdraw, and sealing and opening probes on the real runtime (tests/property/dispute_world.py).

Executors are honest (they reveal the reference result), forgers or a steerer (passes each job, fails the test
across jobs); committee members are honest (they vote by the reference), byzantine (every result valid),
griefers (every result invalid; one of them also posts jobs) or absent (never vote). The executors work and the
committees vote in every block unless a step has some of them withhold (tests/property/dispute_world.py).
After every block: the supply is conserved, every reserved unit is owed to a stake, escrow, held payment,
deposit or challenge bond, the staking totals match the ledgers; after every call: a refused call wrote
nothing and was refused with an error its state calls for; after every step: no offence is punished twice,
no honest executor is slashed for its result where honest members held the verdict, nothing paid for a
result judged invalid, every job's escrow accounted for, and no poster holds a valid result with its whole
escrow back. At the end, with every deadline passed, every job and dispute is over.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, event, settings
from hypothesis.errors import InvalidArgument
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from proto import state_pb2, types_pb2
from runtime import jobs, system
from runtime.arithmetic import apply_ppm
from runtime.disputes import params as disputes
from runtime import staking
from runtime.disputes.recipes import probe_seal
from runtime.disputes.sealed import epoch_seals, read_seal
from runtime.disputes.storage import open_count, read_dispute
from runtime.slashing import penalties
from runtime.jobs.phases import FINAL_STATUSES, REJECTED, SETTLED, SLOT_ASSIGNED, SLOT_COMMITTED, SLOT_REVEALED
from runtime.slashing.penalties import CONVICTION, INVALID_RESULT
from runtime.slashing.storage import SLASH_PREFIX
from runtime.staking.storage import read_ledger
from tests.property.dispute_world import (
    ABSENT,
    BY_KEY,
    DISPUTES,
    EVERYONE,
    EXECUTORS,
    HONEST_KEYS,
    HONEST_VOTER_KEYS,
    JOBS,
    MIN_CHALLENGE_BOND,
    OUTSIDER,
    POSTERS,
    REFERENCE,
    VALIDATORS,
    World,
    ballot,
    commit_call,
    commitment,
    job_digest,
    post_request,
    reveal_call,
    vote_salt,
)
from tests.runtime.helpers import GENESIS_HASH
from tests.runtime import market as market_world
from tests.runtime.market import FEE, MIN_BOND

VALID = state_pb2.CANDIDATE_VERDICT_VALID
NO_VERDICT = state_pb2.CANDIDATE_VERDICT_NONE
INVALID = state_pb2.CANDIDATE_VERDICT_INVALID
COMMITTING = state_pb2.DISPUTE_STATUS_COMMITTING
REVEALING = state_pb2.DISPUTE_STATUS_REVEALING
DECIDED = state_pb2.DISPUTE_STATUS_DECIDED
CHALLENGERS = (*POSTERS, OUTSIDER, *EXECUTORS, *VALIDATORS[:-1])  # a validator may end up judging its own challenge
# Around the minimum; 0 (refused before the fee); more than anyone holds.
BONDS = (MIN_CHALLENGE_BOND, MIN_CHALLENGE_BOND, 2 * MIN_CHALLENGE_BOND, MIN_CHALLENGE_BOND - 1, 0, 10**16)


def note(text: str) -> None:
    """Count an outcome in hypothesis's statistics (--hypothesis-show-statistics); nothing outside a test run."""
    try:
        event(text)
    except InvalidArgument:
        pass


def _free(state, account: bytes) -> int:
    info = system.read_account(state, account)
    return 0 if info is None else info.free


def judged_nothing(dispute: state_pb2.Dispute | None) -> bool:
    """No dispute, or one decided with no verdict on any result: a challenge may open (or replace) one."""
    return dispute is None or (dispute.status == DECIDED and all(verdict == NO_VERDICT for verdict in dispute.verdicts))


# --- what each call may be refused with, from the state it runs on ---------------------------------------


def expect_challenge(job_id: bytes, candidate: int, bond: int, sender: bytes):
    def allowed(state, height):
        if bond == 0:
            return {"BondTooLow"}
        job = jobs.read_job(state, job_id)
        if job is None:
            return {"UnknownJob"}
        errors = set()
        if not judged_nothing(read_dispute(state, job_id)):
            errors.add("AlreadyDisputed")
        if job.status != SETTLED or height > job.final_height + JOBS.challenge_window_blocks:
            errors.add("ChallengeWindowClosed")
        if candidate >= len(job.assignments) or job.assignments[candidate].status != SLOT_REVEALED:
            errors.add("UnknownCandidate")
        if bond < MIN_CHALLENGE_BOND:
            errors.add("BondTooLow")
        if open_count(state) >= DISPUTES.max_open_disputes:
            errors.add("TooManyDisputes")
        if _free(state, sender) - FEE < bond:
            errors.add("InsufficientBalance")
        return errors
    return allowed


def _member(state, dispute_id: bytes, sender: bytes):
    dispute = read_dispute(state, dispute_id)
    if dispute is None:
        return None, None
    return dispute, next((m for m in dispute.committee if m.account == sender), None)


def expect_commit_vote(dispute_id: bytes, sender: bytes):
    def allowed(state, height):
        dispute, member = _member(state, dispute_id, sender)
        if dispute is None:
            return {"UnknownDispute"}
        if member is None:
            return {"NotMember"}
        errors = set()
        if member.commitment:
            errors.add("AlreadyVoted")
        if dispute.status == DECIDED:
            errors |= {"WrongPhase", "VotingClosed"}
        elif dispute.status != COMMITTING or height > dispute.commit_deadline:
            errors.add("VotingClosed")
        return errors
    return allowed


def expect_reveal_vote(dispute_id: bytes, sender: bytes, votes, salt: bytes):
    def allowed(state, height):
        dispute, member = _member(state, dispute_id, sender)
        if dispute is None:
            return {"UnknownDispute"}
        if member is None:
            return {"NotMember"}
        errors = set()
        if member.revealed:
            errors.add("AlreadyVoted")
        if dispute.status == COMMITTING:
            errors.add("WrongPhase")
        if not member.commitment:
            errors.add("VotingClosed")
        if dispute.status == DECIDED:
            errors |= {"WrongPhase", "VotingClosed"}
        elif height > dispute.reveal_deadline:
            errors.add("VotingClosed")
        if [vote.candidate for vote in votes] != list(dispute.candidates):
            errors.add("InvalidVote")
        elif commitment(dispute_id, sender, votes) != member.commitment or salt != vote_salt(dispute_id, sender):
            errors.add("VoteMismatch")
        return errors
    return allowed


def expect_seal(sender: bytes, commitment_: bytes):
    def allowed(state, height):
        staking_params = market_world.STAKING
        epoch = staking.epoch_of(height, staking_params)
        sealed = epoch_seals(state, epoch)
        refused = (staking.bonded(state, sender) < MIN_BOND or penalties.jailed(state, sender, height)
                   or len(sealed) >= DISPUTES.sealed_probes_per_epoch or read_seal(state, commitment_) is not None
                   or any(read_seal(state, other).sealer == sender for other in sealed))
        return {"SealRefused"} if refused else set()
    return allowed


def expect_open(job_id: bytes, salt: bytes, sender: bytes):
    def allowed(state, height):
        seal = read_seal(state, probe_seal(job_id, salt))
        job = jobs.read_job(state, job_id)
        if seal is None or seal.opened_height or seal.sealer != sender:
            return {"ProbeNotSealed"}
        if job is None:
            return {"UnknownJob"}
        errors = set()
        if job.posted_height < seal.height or job.request.max_tokens > DISPUTES.probe_max_tokens:
            errors.add("ProbeNotSealed")
        if read_dispute(state, job_id) is not None:
            errors.add("AlreadyDisputed")
        if (job.status != SETTLED or height > job.final_height + JOBS.challenge_window_blocks
                or any(slot.released for slot in job.assignments)):
            errors.add("ChallengeWindowClosed")
        if open_count(state) >= DISPUTES.max_open_disputes:
            errors.add("TooManyDisputes")
        return errors
    return allowed


def expect_unjail(sender: bytes):
    def allowed(state, height):
        ledger = read_ledger(state, sender)
        if ledger is None or not ledger.jailed:
            return {"NotJailed"}
        return {"StillJailed"} if height < ledger.jailed_until else set()
    return allowed


# --- the machine -------------------------------------------------------------------------------------


class DisputedMarket(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.world = World()
        self.posted: list[bytes] = []
        self.escrows: dict[bytes, int] = {}  # reserved at post, the queue fee included
        self.references: dict[bytes, bytes] = {}  # the reference result's digest of each job
        self.withholding = (frozenset(), frozenset())  # executors withholding commitments, and reveals
        self.voting = True
        self.seals: dict[bytes, tuple] = {}  # job id -> (sealer, salt) of each probe sealed
        self.world.background = self._background

    # --- helpers -------------------------------------------------------------------------------------

    def _job(self, pick: int) -> state_pb2.Job | None:
        return self.world.job(self.posted[pick % len(self.posted)]) if self.posted else None

    def _disputes(self) -> list[state_pb2.Dispute]:
        return sorted(self.world.disputes(), key=lambda dispute: dispute.opened_height)

    def _dispute(self, pick: int) -> state_pb2.Dispute | None:
        found = self._disputes()
        return found[pick % len(found)] if found else None

    def _ballot(self, member: bytes, dispute: state_pb2.Dispute):
        job = self.world.job(dispute.job)
        return ballot(member, dispute, job, self.references[dispute.job])

    # --- posting and executing -----------------------------------------------------------------------

    @initialize(first=st.integers(1, 3), second=st.integers(1, 3))
    def open_market(self, first, second):
        """Every sequence starts with two jobs, posted by each poster."""
        self.post(POSTERS[0], first)
        self.post(POSTERS[1], second)

    @rule(redundancies=st.lists(st.integers(1, 3), min_size=2, max_size=9))
    def post_burst(self, redundancies):
        """Several jobs posted in one block: drawn, settled and disputed together, so that the schedules of
        committee draws and vote deadlines (five a height) overflow to later heights."""
        calls = [(POSTERS[index % 2], {"post_job": post_request(redundancy)}, None)
                 for index, redundancy in enumerate(redundancies)]
        nonces = {poster.public_key: system.read_account(self.world.state, poster.public_key).nonce
                  for poster in POSTERS}
        outcomes = self.world.block(calls)
        # Each call in the block took its poster's next nonce; one refused before its fee (no room left) took none.
        for (poster, _, _), outcome in zip(calls, outcomes):
            if not outcome.in_block:
                continue
            job_id = jobs.job_id(GENESIS_HASH, poster.public_key, nonces[poster.public_key])
            nonces[poster.public_key] += 1
            if outcome.success:
                self._posted(job_id)

    def _posted(self, job_id: bytes) -> None:
        job = self.world.job(job_id)
        self.posted.append(job_id)
        self.escrows[job_id] = job.escrow + job.queue_fee
        self.references[job_id] = job_digest(job, REFERENCE)

    @rule(poster=st.sampled_from(POSTERS), redundancy=st.integers(1, 3))
    def post(self, poster, redundancy):
        nonce = system.read_account(self.world.state, poster.public_key).nonce
        job_id = jobs.job_id(GENESIS_HASH, poster.public_key, nonce)
        (outcome,) = self.world.block([(poster, {"post_job": post_request(redundancy)}, None)])
        if not outcome.success:
            return
        self._posted(job_id)
        job = self.world.job(job_id)
        while self.world.height < job.draw_height:
            self.world.block()

    def _work_calls(self, withholding) -> list:
        """The next step (commit, or reveal) of every assignment of the executors not withholding: the honest ones
        with the reference, the forgers with a forgery."""
        calls = []
        for job_id in self.posted:
            job = self.world.job(job_id)
            for slot in job.assignments:
                executor = BY_KEY[slot.executor]
                if slot.status == SLOT_ASSIGNED and executor not in withholding[0]:
                    calls.append((executor, commit_call(job, executor), None))
                elif (slot.status == SLOT_COMMITTED and job.status == state_pb2.JOB_STATUS_REVEALING
                      and executor not in withholding[1]):
                    calls.append((executor, reveal_call(job, executor), None))
        return calls

    def _vote_calls(self, dispute: state_pb2.Dispute) -> list:
        """The next step of every member of the dispute but the absent one, each voting by its kind."""
        calls = []
        for member in dispute.committee:
            sender = BY_KEY[member.account]
            if sender == ABSENT:
                continue
            votes = self._ballot(member.account, dispute)
            if dispute.status == COMMITTING and not member.commitment:
                call = types_pb2.CommitVote(dispute=dispute.id, commitment=commitment(dispute.id, member.account, votes))
                calls.append((sender, {"commit_vote": call}, expect_commit_vote(dispute.id, member.account)))
            elif dispute.status == REVEALING and member.commitment and not member.revealed:
                salt = vote_salt(dispute.id, member.account)
                call = types_pb2.RevealVote(dispute=dispute.id, salt=salt, votes=votes)
                calls.append((sender, {"reveal_vote": call}, expect_reveal_vote(dispute.id, member.account, votes, salt)))
        return calls

    def _background(self) -> list:
        """What the market does in every block: executors not withholding work, and, while voting, every
        committee member but the absent one votes."""
        calls = self._work_calls(self.withholding)
        if self.voting:
            for dispute in self.world.disputes():
                if dispute.status != DECIDED:
                    calls += self._vote_calls(dispute)
        return calls

    @rule(commits=st.sets(st.sampled_from(EXECUTORS), max_size=2), reveals=st.sets(st.sampled_from(EXECUTORS), max_size=2),
          voting=st.booleans())
    def behave(self, commits, reveals, voting):
        """From now on these executors withhold their commitments, those their reveals, and the committees vote
        or not."""
        self.withholding = (frozenset(commits), frozenset(reveals))
        self.voting = voting

    @rule(blocks=st.integers(1, 8))
    def advance(self, blocks):
        self.world.advance(blocks)

    # --- challenges ----------------------------------------------------------------------------------

    @rule(challenger=st.sampled_from(CHALLENGERS), pick=st.integers(0, 9), candidate=st.integers(0, 3),
          bond=st.sampled_from(BONDS), unknown=st.integers(0, 5).map(lambda n: n == 0), fresh=st.booleans())
    def challenge(self, challenger, pick, candidate, bond, unknown, fresh):
        """A challenge by a poster, the outsider, an executor or a validator, of any candidate of a job (a revealed
        one of a job still in its window when `fresh`, undisputed or with a dispute that judged nothing), with a
        bond around the minimum; or of a job that does not exist."""
        job = self._job(pick)
        settled = [self.world.job(job_id) for job_id in self.posted]
        window = self.world.height + 1 - JOBS.challenge_window_blocks
        settled = [job for job in settled if job.status == SETTLED and job.final_height >= window
                   and judged_nothing(self.world.dispute(job.id))]
        if fresh and settled:
            job = settled[pick % len(settled)]
            revealed = [index for index, slot in enumerate(job.assignments) if slot.status == SLOT_REVEALED]
            candidate = revealed[candidate % len(revealed)]
        job_id = bytes(31) + bytes([pick]) if unknown or job is None else job.id
        call = types_pb2.Challenge(job_id=job_id, candidate=candidate, bond=bond)
        earlier = self.world.dispute(job_id)
        (outcome,) = self.world.block([(challenger, {"challenge": call},
                                        expect_challenge(job_id, candidate, bond, challenger.public_key))])
        note(f"challenge: {outcome.error or 'opened'}")
        if outcome.success and earlier is not None:
            note("challenge: replaced a dispute that judged nothing")
        if bond == 0:
            assert not outcome.in_block, "a challenge without a bond is refused before its fee"

    # --- sealed probes --------------------------------------------------------------------------------

    @rule(sealer=st.sampled_from((*VALIDATORS, *EXECUTORS, OUTSIDER)), poster=st.sampled_from(POSTERS),
          redundancy=st.integers(1, 3), same_block=st.booleans())
    def seal_and_post(self, sealer, poster, redundancy, same_block):
        """A staker (or the unbonded outsider, refused) seals the poster's next job, posted in the same block or
        the next."""
        nonce = system.read_account(self.world.state, poster.public_key).nonce
        # A sealer that posts its own probe (a validator that posts) signs the seal first, the job with the next nonce.
        job_id = jobs.job_id(GENESIS_HASH, poster.public_key, nonce + (sealer == poster))
        salt = bytes(a ^ b for a, b in zip(job_id, sealer.public_key))
        seal = (sealer, {"seal_probe": types_pb2.SealProbe(commitment=probe_seal(job_id, salt))},
                expect_seal(sealer.public_key, probe_seal(job_id, salt)))
        post = (poster, {"post_job": post_request(redundancy)}, None)
        if same_block:
            sealed, posted = self.world.block([seal, post])
            posted_id = jobs.job_id(GENESIS_HASH, poster.public_key, nonce + (sealer == poster and sealed.in_block))
        else:
            (sealed,) = self.world.block([seal])
            # The poster may have voted in the seal's block (a validator that posts): then the seal binds a job id
            # that is never posted, and its opening is refused.
            nonce = system.read_account(self.world.state, poster.public_key).nonce
            posted_id = jobs.job_id(GENESIS_HASH, poster.public_key, nonce)
            (posted,) = self.world.block([post])
        note(f"seal: {sealed.error or 'sealed'}")
        if sealed.success:
            self.seals[job_id] = (sealer, salt)
        if posted.success:
            self._posted(posted_id)

    @rule(pick=st.integers(0, 9), stranger=st.booleans(), wrong_salt=st.booleans(), ripe=st.booleans())
    def open_probe(self, pick, stranger, wrong_salt, ripe):
        """The sealer opens its probe (one whose job settled and is undisputed when `ripe` and there is one;
        else whatever the job's state), or a stranger or a wrong salt tries to."""
        choices = sorted(self.seals)
        settled = [job_id for job_id in choices if (job := jobs.read_job(self.world.state, job_id)) is not None
                   and job.status == SETTLED and self.world.dispute(job_id) is None]
        if ripe and settled:
            choices = settled
        if not choices:
            return
        job_id = choices[pick % len(choices)]
        sealer, salt = self.seals[job_id]
        sender = OUTSIDER if stranger else sealer
        salt = bytes(32) if wrong_salt else salt
        (outcome,) = self.world.block([(sender, {"open_probe": types_pb2.OpenProbe(job_id=job_id, salt=salt)},
                                        expect_open(job_id, salt, sender.public_key))])
        note(f"open probe: {outcome.error or 'opened'}")
        if outcome.success:
            # What the fund paid is checked exactly in tests/runtime/test_sealed_probes.py; here the other calls of
            # the block move the same balances, and the world checks supply and reserves after every block.
            job = self.world.job(job_id)
            assert job.probe and self.world.dispute(job_id).reason == state_pb2.DISPUTE_REASON_AUDIT

    # --- votes ---------------------------------------------------------------------------------------

    @rule(pick=st.integers(0, 9))
    def committee_acts(self, pick):
        """Every member of one dispute but the absent one takes its next step, in one block."""
        dispute = self._dispute(pick)
        if dispute is not None and dispute.status != DECIDED:
            self.world.block(self._vote_calls(dispute))

    def _sender(self, sender, dispute, insider: bool):
        """A member of the dispute's committee when `insider` (and it has one), else `sender`."""
        if insider and dispute is not None and dispute.committee:
            return BY_KEY[dispute.committee[sender.public_key[0] % len(dispute.committee)].account]
        return sender

    @rule(sender=st.sampled_from((*VALIDATORS, OUTSIDER, *POSTERS[:1])), pick=st.integers(0, 9),
          unknown=st.integers(0, 5).map(lambda n: n == 0), insider=st.booleans())
    def commit_vote(self, sender, pick, unknown, insider):
        """A commitment from anyone to any dispute: a member's first, a second, a non-member's, a late one."""
        dispute = self._dispute(pick)
        sender = self._sender(sender, dispute, insider)
        dispute_id = bytes([pick]) * 32 if unknown or dispute is None else dispute.id
        votes = self._ballot(sender.public_key, dispute) if dispute is not None and not unknown else []
        call = types_pb2.CommitVote(dispute=dispute_id, commitment=commitment(dispute_id, sender.public_key, votes))
        (outcome,) = self.world.block([(sender, {"commit_vote": call}, expect_commit_vote(dispute_id, sender.public_key))])
        note(f"commit_vote: {outcome.error or 'committed'}")

    @rule(sender=st.sampled_from((*VALIDATORS, OUTSIDER)), pick=st.integers(0, 9),
          kind=st.sampled_from(["faithful", "flipped", "wrong_salt", "reordered", "short_salt"]), insider=st.booleans())
    def reveal_vote(self, sender, pick, kind, insider):
        """A reveal from anyone: faithful to its commitment, or one that does not match it, or malformed."""
        dispute = self._dispute(pick)
        if dispute is None:
            return
        sender = self._sender(sender, dispute, insider)
        votes = self._ballot(sender.public_key, dispute)
        salt = vote_salt(dispute.id, sender.public_key)
        if kind == "flipped":
            votes[0].valid = not votes[0].valid
        elif kind == "wrong_salt":
            salt = bytes(32)
        elif kind == "reordered":
            votes = list(reversed(votes)) if len(votes) > 1 else [types_pb2.CandidateVote(candidate=7, valid=True)]
        elif kind == "short_salt":
            salt = salt[:31]
        call = types_pb2.RevealVote(dispute=dispute.id, salt=salt, votes=votes)
        expect = ((lambda state, height: {"InvalidVote"}) if kind == "short_salt"
                  else expect_reveal_vote(dispute.id, sender.public_key, votes, salt))
        (outcome,) = self.world.block([(sender, {"reveal_vote": call}, expect)])
        note(f"reveal_vote {kind}: {outcome.error or 'revealed'}")

    # --- jail and stake ------------------------------------------------------------------------------

    @rule(account=st.sampled_from((*EXECUTORS, *VALIDATORS, OUTSIDER)), wait=st.booleans())
    def unjail(self, account, wait):
        """Unjail at once (early, or with no jail to leave), or after waiting out the jail (late)."""
        ledger = self.world.ledger(account.public_key)
        if wait and ledger is not None and ledger.jailed:
            while self.world.height + 1 < ledger.jailed_until:
                self.world.block()
        (outcome,) = self.world.block([(account, {"unjail": types_pb2.Unjail()}, expect_unjail(account.public_key))])
        note(f"unjail: {outcome.error or 'unjailed'}")

    @rule(account=st.sampled_from((*EXECUTORS, *VALIDATORS, OUTSIDER)),
          call=st.sampled_from([
              {"bond": types_pb2.Bond(amount=MIN_BOND)}, {"bond": types_pb2.Bond(amount=3 * MIN_BOND, validate=True)},
              {"bond": types_pb2.Bond(amount=10**14)}, {"unbond": types_pb2.Unbond(amount=1)},
              {"unbond": types_pb2.Unbond(amount=MIN_BOND)}, {"unbond": types_pb2.Unbond(amount=10**13)},
              {"unbond": types_pb2.Unbond(amount=3 * 10**13)}, {"withdraw_unbonded": types_pb2.WithdrawUnbonded()},
          ]))
    def stake(self, account, call):
        """Bond, unbond or withdraw: unbonding stake stays slashable until it is released."""
        self.world.block([(account, call, None)])

    # --- after every step ----------------------------------------------------------------------------

    @invariant()
    def no_offence_is_punished_twice(self):
        keys = [(record.offence, record.job, record.account) for record in self.world.slashes()]
        assert len(keys) == len(set(keys)), f"an offence was punished twice: {keys}"

    @invariant()
    def no_honest_executor_is_slashed_for_its_result(self):
        for record in self.world.slashes():
            if record.account not in HONEST_KEYS or record.offence not in (INVALID_RESULT, CONVICTION):
                continue
            # An honest executor's misses are reported only by a griefer, which never outweighs the valid votes of a
            # VALID verdict: no conviction, ever.
            assert record.offence != CONVICTION, f"honest executor {record.account.hex()} convicted"
            dispute = self.world.dispute(record.job)
            committee = sum(member.stake for member in dispute.committee)
            honest = sum(member.stake for member in dispute.committee
                         if member.revealed and member.account in HONEST_VOTER_KEYS)
            note("an honest executor slashed by a committee without an honest majority")
            assert 2 * honest <= committee, (
                f"honest executor {record.account.hex()} slashed for its result in job {record.job.hex()} while honest "
                f"members revealed {honest} of the committee's {committee} stake"
            )

    @invariant()
    def jobs_account_for_their_escrow_and_posters_never_get_both(self):
        for job_id in self.posted:
            job = self.world.job(job_id)
            paid = sum(slot.payment for slot in job.assignments)
            assert paid + job.protocol_fee + job.queue_fee + job.refunded + job.escrow == self.escrows[job_id], (
                f"job {job_id.hex()}: its escrow at post is not accounted for"
            )
            for slot in job.assignments:
                if slot.verdict == INVALID:
                    assert slot.payment == 0 and not slot.released, "a result judged invalid kept its payment"
                if slot.verdict == VALID:
                    assert slot.payment > 0 and slot.released, "a result judged valid was not paid at once"
            if job.status == SETTLED and self.world.dispute(job_id) is None:
                revealed = [slot.reveal.output_digest for slot in job.assignments if slot.status == SLOT_REVEALED]
                assert set(revealed) == {job.output_digest}, "a job settled on differing results"
                assert len(revealed) >= job.request.redundancy // 2 + 1, "a job settled without a quorum of reveals"
            if job.status == SETTLED:
                assert any(slot.payment and slot.verdict != INVALID for slot in job.assignments)
                assert any(slot.reveal.output_digest == job.output_digest and slot.verdict != INVALID
                           for slot in job.assignments), "the job's answer is not a result left standing"
                assert job.refunded + job.queue_fee < self.escrows[job_id], "a poster has a result and a full refund"
            if job.status == REJECTED:
                assert paid == 0 and job.escrow == 0

    @invariant()
    def disputes_are_judged_by_strangers_in_their_phases(self):
        opened = 0
        for dispute in self.world.disputes():
            job = self.world.job(dispute.job)
            strangers = {job.poster} | {slot.executor for slot in job.assignments}
            assert not strangers & {member.account for member in dispute.committee}, "a party judges its own job"
            assert len(dispute.committee) <= DISPUTES.committee_size
            # A job is DISPUTED exactly while its dispute is open; a decided one has a verdict on every candidate.
            assert (job.status == state_pb2.JOB_STATUS_DISPUTED) == (dispute.status != DECIDED)
            if dispute.status == DECIDED:
                assert all(job.assignments[candidate].verdict for candidate in dispute.candidates)
            # The reveal opens as soon as every member committed; a dispute whose committed members all revealed is
            # decided in that block.
            if dispute.status == COMMITTING and dispute.committee:
                assert not all(member.commitment for member in dispute.committee)
            if dispute.status == REVEALING:
                assert any(member.commitment and not member.revealed for member in dispute.committee)
            opened += dispute.status != DECIDED
        assert open_count(self.world.state) == opened
        for record in self.world.slashes():
            if record.offence in (INVALID_RESULT, CONVICTION):
                assert record.jailed_until > record.height, "a slashed result did not jail its executor"

    def teardown(self):
        if not hasattr(self, "world"):
            return
        self.world.advance(JOBS.job_timeout_blocks + 60)  # every deadline, window and vote passes
        for job_id in self.posted:
            job = self.world.job(job_id)
            note(f"a job ended {state_pb2.JobStatus.Name(job.status)}")
            assert job.status in FINAL_STATUSES and job.escrow == 0, f"job {job_id.hex()} never ended"
            assert all(slot.released or not slot.payment for slot in job.assignments)
        for dispute in self.world.disputes():
            note(f"a dispute on {state_pb2.DisputeReason.Name(dispute.reason)}")
            if dispute.draw_height > dispute.opened_height + DISPUTES.audit_delay_blocks:
                note("a committee draw pushed to a later height by a full schedule")
            assert dispute.status == DECIDED
        assert open_count(self.world.state) == 0
        for record in self.world.slashes():
            note(f"slashed: {record.offence}")
        self.no_offence_is_punished_twice()
        self.no_honest_executor_is_slashed_for_its_result()
        self.jobs_account_for_their_escrow_and_posters_never_get_both()
        for account in EVERYONE:
            assert jobs.read_load(self.world.state, account.public_key) == 0


DisputedMarket.TestCase.settings = settings(
    max_examples=70, stateful_step_count=50, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_disputed_market_keeps_every_invariant = DisputedMarket.TestCase


# --- found by the machine's author, reduced by hand ----------------------------------------------------------------


def test_stake_unbonded_after_an_assignment_is_still_slashable_when_its_forgery_is_judged():
    """Genesis passes (challenge window 12 + audit delay 2 + votes 6 + 4 = 24 < unbonding 26), and the forger unbonds
    everything right after it is drawn, commits and reveals its forgery at the last allowed heights, and tries to
    withdraw the whole stake before the challenge window closes: the stake is locked while the job can still prove
    an offence, so the verdict finds it (before the lock, it slashed nothing)."""
    rules = disputes.Params(audit_probability_ppm=0, vote_commit_blocks=6, vote_reveal_blocks=4)
    market = market_world.market_with(
        executors=1, params=rules, staking_params=replace(market_world.STAKING, unbonding_period_blocks=26),
        jobs_params=replace(market_world.JOBS, commit_blocks=10, reveal_blocks=8, challenge_window_blocks=12))
    forger, salt = market_world.EXECUTORS[0], bytes(32)
    job_id, _ = market.post()
    market.ok(forger, clear_offer=types_pb2.ClearOffer())
    market.ok(forger, unbond=types_pb2.Unbond(amount=market_world.BOND))
    job = market.job(job_id)
    market.advance_to(job.assignments[0].deadline_height - 1)
    market.ok(forger, commit_result=types_pb2.CommitResult(
        job_id=job_id, commitment=market_world.commitment_of(job, forger, salt, market_world.FORGED)))
    market.advance_to(market.job(job_id).assignments[0].deadline_height - 1)
    market.ok(forger, reveal_result=types_pb2.RevealResult(job_id=job_id, salt=salt, **market_world.FORGED))
    window_end = market.job(job_id).final_height + 12
    market.advance_to(market_world.ledger(market, forger).unbonding[0].release_height - 1)
    refused = market.call(forger, withdraw_unbonded=types_pb2.WithdrawUnbonded())
    assert (refused.success, refused.error_name) == (False, "NothingToWithdraw")
    assert "the stake is locked until height" in refused.error_message
    assert market.height < window_end  # the forged result can still be challenged, and its stake is still there
    market.ok(market_world.OUTSIDER, challenge=types_pb2.Challenge(job_id=job_id, candidate=0,
                                                                    bond=rules.min_challenge_bond))
    dispute = market.dispute(job_id)
    market.advance_to(dispute.draw_height)
    market_world.vote_all(market, job_id, {judge: market_world.judge_votes(dispute, [False])
                                           for judge in market_world.JUDGES})
    assert market.job(job_id).assignments[0].verdict == INVALID
    (record,) = [state_pb2.SlashRecord.FromString(value)
                 for _, value in market.state.iter_prefix(SLASH_PREFIX + forger.public_key)]
    assert record.offence == INVALID_RESULT
    assert record.amount == apply_ppm(market_world.BOND, rules.slash_fraction_invalid_result_ppm)


def test_a_job_whose_dispute_judged_nothing_is_challenged_again_as_the_machine_expects():
    """Found by the machine in CI (hypothesis seed 29270541534436752263765204404969162093), its steps replayed: the
    committee never votes, so the first dispute ends with no verdict on any result, and the runtime lets the job
    be challenged again (docs/protocol.md, the `challenge` call); the machine's model still refused that with
    AlreadyDisputed, as before a dispute that judged nothing could be replaced."""
    machine = DisputedMarket()

    def step(rule, **arguments):
        rule(**arguments)
        machine.disputes_are_judged_by_strangers_in_their_phases()
        machine.jobs_account_for_their_escrow_and_posters_never_get_both()
        machine.no_honest_executor_is_slashed_for_its_result()
        machine.no_offence_is_punished_twice()

    poster = POSTERS[0]
    step(machine.open_market, first=2, second=1)
    step(machine.advance, blocks=2)
    step(machine.behave, commits=set(), reveals=set(), voting=False)
    step(machine.challenge, challenger=poster, pick=0, candidate=0, bond=MIN_CHALLENGE_BOND, unknown=False,
         fresh=True)
    for _ in range(6):
        step(machine.advance, blocks=1)
    step(machine.seal_and_post, sealer=VALIDATORS[0], poster=poster, redundancy=1, same_block=False)
    challenged = machine._job(1).id
    earlier = machine.world.dispute(challenged)
    assert earlier.status == DECIDED and set(earlier.verdicts) == {NO_VERDICT}
    step(machine.challenge, challenger=poster, pick=1, candidate=0, bond=MIN_CHALLENGE_BOND, unknown=False,
         fresh=False)
    replaced = machine.world.dispute(challenged)
    assert replaced.status != DECIDED and replaced.opened_height > earlier.opened_height
    assert replaced.challenger == poster.public_key
    machine.teardown()
