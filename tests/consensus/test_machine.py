"""chain/consensus/machine.py rule by rule (Algorithm 1 of Buchman, Kwon, Milosevic 2018), and proposer choice."""

from __future__ import annotations

from collections import Counter

import pytest

from chain.consensus.machine import (
    NIL,
    PRECOMMIT,
    PREVOTE,
    PROPOSE,
    Broadcast,
    Decide,
    Evidence,
    Machine,
    Proposal,
    Schedule,
    Timeout,
    Vote,
)
from chain.consensus.proposer import Priorities

KEYS = [bytes([index]) * 32 for index in range(4)]
POWERS = {key: 1 for key in KEYS}
A, B = b"value-a", b"value-b"


def machine(me: int = 3, **overrides) -> Machine:
    return Machine(KEYS[me], overrides.get("powers", POWERS), 1, lambda value: not value.startswith(b"bad"),
                   lambda height: b"fresh-%d" % height)


def sent(outputs, kind=None):
    """The votes (or proposals) among the outputs."""
    messages = [output.message for output in outputs if isinstance(output, Broadcast)]
    if kind is None:
        return messages
    return [message for message in messages if isinstance(message, Vote) and message.kind == kind]


def proposer_of(node: Machine, round_number: int) -> int:
    return KEYS.index(node.proposer(round_number))


def other_than(node: Machine, round_number: int) -> list[int]:
    """Validators other than the node itself and the round's proposer."""
    return [i for i in range(4) if KEYS[i] not in (node.me, node.proposer(round_number))]


def feed(node: Machine, *messages):
    outputs = []
    for message in messages:
        outputs.extend(node.handle(message))
    return outputs


def lock_on_a_in_round_0(node: Machine) -> None:
    """Round 0: A is proposed and gets prevotes of 3 of 4, so the node precommits (locks) A; then round 1."""
    node.start()
    proposer = proposer_of(node, 0)
    feed(node, Proposal(1, 0, A, -1, KEYS[proposer]))
    voters = [i for i in range(4) if KEYS[i] != node.me][:2]
    outputs = feed(node, *[Vote(PREVOTE, 1, 0, A, KEYS[i]) for i in voters])
    assert [vote.value for vote in sent(outputs, PRECOMMIT)] == [A]
    assert (node.locked_value, node.locked_round) == (A, 0)
    # Precommits for nil from the others, the precommit timeout, and round 1 begins.
    feed(node, *[Vote(PRECOMMIT, 1, 0, NIL, KEYS[i]) for i in voters])
    feed(node, Timeout(PRECOMMIT, 1, 0))
    assert node.round == 1


def test_a_proposal_is_prevoted_and_two_thirds_of_precommits_decide_it():
    node = machine()
    node.start()
    proposer = proposer_of(node, 0)
    outputs = feed(node, Proposal(1, 0, A, -1, KEYS[proposer]))
    assert [vote.value for vote in sent(outputs, PREVOTE)] == [A]
    others = [i for i in range(4) if KEYS[i] != node.me]
    feed(node, *[Vote(PREVOTE, 1, 0, A, KEYS[i]) for i in others])
    outputs = feed(node, *[Vote(PRECOMMIT, 1, 0, A, KEYS[i]) for i in others[:2]])
    decided = [output for output in outputs if isinstance(output, Decide)]
    assert decided and decided[0].value == A and decided[0].height == 1 and len(decided[0].precommits) == 3
    assert node.height == 2 and node.round == 0


def test_an_invalid_proposal_is_prevoted_nil_and_never_decided():
    node = machine()
    node.start()
    proposer = proposer_of(node, 0)
    outputs = feed(node, Proposal(1, 0, b"bad", -1, KEYS[proposer]))
    assert [vote.value for vote in sent(outputs, PREVOTE)] == [NIL]
    outputs = feed(node, *[Vote(PRECOMMIT, 1, 0, b"bad", KEYS[i]) for i in range(4) if KEYS[i] != node.me])
    assert not any(isinstance(output, Decide) for output in outputs)


def test_a_proposal_from_anyone_but_the_rounds_proposer_is_ignored():
    node = machine()
    node.start()
    impostor = next(i for i in range(4) if KEYS[i] not in (node.proposer(0), node.me))
    assert feed(node, Proposal(1, 0, A, -1, KEYS[impostor])) == []


def test_a_locked_validator_prevotes_nil_for_another_value_and_yes_for_its_own():
    node = machine()
    lock_on_a_in_round_0(node)
    proposer = proposer_of(node, 1)
    if KEYS[proposer] == node.me:
        pytest.skip("the node proposes round 1 itself")
    outputs = feed(node, Proposal(1, 1, B, -1, KEYS[proposer]))
    assert [vote.value for vote in sent(outputs, PREVOTE)] == [NIL]  # line 22: locked on A


def test_a_value_reproposed_with_its_polka_round_is_prevoted_by_a_validator_locked_earlier():
    node = machine()
    lock_on_a_in_round_0(node)
    proposer = proposer_of(node, 1)
    if KEYS[proposer] == node.me:
        pytest.skip("the node proposes round 1 itself")
    outputs = feed(node, Proposal(1, 1, A, 0, KEYS[proposer]))
    assert [vote.value for vote in sent(outputs, PREVOTE)] == [A]  # line 28


def test_a_timeout_prevotes_nil_then_precommits_nil_then_starts_the_next_round():
    node = machine()
    outputs = node.start()
    if proposer_of(node, 0) == 3:
        pytest.skip("the node proposes round 0 itself")
    assert [output.timeout for output in outputs if isinstance(output, Schedule)] == [Timeout(PROPOSE, 1, 0)]
    assert [vote.value for vote in sent(feed(node, Timeout(PROPOSE, 1, 0)), PREVOTE)] == [NIL]
    others = [i for i in range(4) if KEYS[i] != node.me]
    outputs = feed(node, *[Vote(PREVOTE, 1, 0, B, KEYS[i]) for i in others[:2]])
    assert Timeout(PREVOTE, 1, 0) in [output.timeout for output in outputs if isinstance(output, Schedule)]
    assert [vote.value for vote in sent(feed(node, Timeout(PREVOTE, 1, 0)), PRECOMMIT)] == [NIL]
    feed(node, *[Vote(PRECOMMIT, 1, 0, NIL, KEYS[i]) for i in others[:2]])
    feed(node, Timeout(PRECOMMIT, 1, 0))
    assert node.round == 1


def test_messages_from_more_than_a_third_in_a_later_round_move_the_validator_there():
    node = machine()
    node.start()
    feed(node, Vote(PREVOTE, 1, 5, NIL, KEYS[0]))
    assert node.round == 0  # one of four is not more than 1/3
    feed(node, Vote(PREVOTE, 1, 5, NIL, KEYS[1]))
    assert node.round == 5


def test_two_different_votes_of_one_validator_are_evidence_once():
    node = machine()
    node.start()
    first, second = Vote(PREVOTE, 1, 0, A, KEYS[0]), Vote(PREVOTE, 1, 0, B, KEYS[0])
    feed(node, first)
    outputs = feed(node, second)
    assert [output for output in outputs if isinstance(output, Evidence)] == [Evidence(first, second)]
    assert not [output for output in feed(node, second) if isinstance(output, Evidence)]


def test_a_double_sign_arriving_after_the_height_was_decided_is_still_evidence():
    node = machine()
    node.start()
    proposer = proposer_of(node, 0)
    feed(node, Proposal(1, 0, A, -1, KEYS[proposer]))
    others = [i for i in range(4) if KEYS[i] != node.me]
    feed(node, *[Vote(PREVOTE, 1, 0, A, KEYS[i]) for i in others])
    feed(node, *[Vote(PRECOMMIT, 1, 0, A, KEYS[i]) for i in others])
    assert node.height == 2
    outputs = feed(node, Vote(PRECOMMIT, 1, 0, NIL, KEYS[others[0]]))
    assert [type(output) for output in outputs] == [Evidence]


def test_a_restarted_validator_replaying_its_log_signs_exactly_what_it_signed_before():
    original, log, signed = machine(), [], []
    signed += sent(original.start())
    proposer = proposer_of(original, 0)
    inputs = [Proposal(1, 0, A, -1, KEYS[proposer]), Vote(PREVOTE, 1, 0, A, KEYS[0]), Vote(PREVOTE, 1, 0, A, KEYS[1]),
              Timeout(PREVOTE, 1, 0), Vote(PRECOMMIT, 1, 0, NIL, KEYS[2]), Timeout(PRECOMMIT, 1, 0)]
    for message in inputs:
        log.append(message)
        signed += sent(original.handle(message))
    replayed = machine()
    again = sent(replayed.start())
    for message in log:
        again += sent(replayed.handle(message))
    assert again == signed and (replayed.height, replayed.round, replayed.step) == (original.height, original.round, original.step)


def test_weighted_round_robin_gives_each_validator_rounds_in_proportion_to_its_power():
    priorities = Priorities.start({KEYS[0]: 1, KEYS[1]: 2, KEYS[2]: 3, KEYS[3]: 4})
    chosen = Counter()
    for _ in range(1000):
        proposer, priorities = priorities.step()
        chosen[proposer] += 1
    assert [chosen[key] for key in KEYS] == [100, 200, 300, 400]


def test_the_proposer_changes_from_round_to_round_and_height_to_height():
    node = machine()
    assert len({node.proposer(round_number) for round_number in range(4)}) == 4
    heights = Priorities.start(POWERS)
    firsts = []
    for _ in range(4):
        firsts.append(heights.proposer(0))
        heights = heights.next_height()
    assert len(set(firsts)) == 4


def test_without_auto_advance_a_decision_pauses_until_advance_which_keeps_the_next_heights_messages():
    valid, fresh = (lambda value: True), (lambda height: b"fresh-%d" % height)
    probe = Machine(KEYS[0], POWERS, 1, valid, fresh)
    next_proposer = Priorities.start(POWERS).next_height().proposer(0)
    me = next(index for index, key in enumerate(KEYS) if key not in (next_proposer, probe.proposer(0)))
    node = Machine(KEYS[me], POWERS, 1, valid, fresh, auto_advance=False)
    node.start()
    outputs = feed(node, Proposal(1, 0, A, -1, node.proposer(0)),
                   *[Vote(PRECOMMIT, 1, 0, A, key) for key in KEYS if key != node.me][:3])
    decided_at = next(index for index, output in enumerate(outputs) if isinstance(output, Decide))
    assert outputs[decided_at].value == A
    assert node.paused and node.height == 2
    assert not sent(outputs[decided_at:])  # nothing of height 2 is proposed or voted before advance()
    assert feed(node, Timeout(PROPOSE, 2, 0)) == []  # no timers run while paused
    assert feed(node, Proposal(2, 0, B, -1, next_proposer)) == []  # kept, not acted on
    started = node.advance()
    assert [(vote.height, vote.value) for vote in sent(started, PREVOTE)] == [(2, B)]


def test_advance_with_a_new_validator_set_forgets_the_buffered_votes_of_those_who_left():
    node = Machine(KEYS[3], POWERS, 1, lambda value: True, lambda height: b"fresh-%d" % height, auto_advance=False)
    node.start()
    feed(node, Proposal(1, 0, A, -1, node.proposer(0)), *[Vote(PRECOMMIT, 1, 0, A, KEYS[i]) for i in range(3)])
    assert node.paused
    feed(node, Vote(PREVOTE, 2, 0, B, KEYS[0]), Vote(PREVOTE, 2, 0, B, KEYS[1]))
    remaining = {key: 1 for key in KEYS[1:]}
    node.advance(remaining, Priorities.start(remaining))
    assert node.total == 3 and KEYS[0] not in node.powers
    # Tallies now run over the new set only: KEYS[0]'s buffered prevote no longer counts (no KeyError either).
    assert node._power(node._votes(PREVOTE, 0), B) == 1


def test_a_message_the_signing_guard_refuses_is_neither_sent_nor_counted_in_its_own_tallies():
    refused = []

    def may_sign(message) -> bool:
        if isinstance(message, Vote) and message.kind == PREVOTE:
            refused.append(message)
            return False
        return True

    node = Machine(KEYS[3], POWERS, 1, lambda value: True, lambda height: b"fresh-%d" % height, may_sign=may_sign)
    node.start()
    proposer = proposer_of(node, 0)
    outputs = feed(node, Proposal(1, 0, A, -1, KEYS[proposer]))
    assert refused and not sent(outputs, PREVOTE)
    others = [i for i in range(3) if i != proposer][:1] + [proposer]
    outputs = feed(node, *(Vote(PREVOTE, 1, 0, A, KEYS[i]) for i in others))
    assert not sent(outputs, PRECOMMIT)  # 2 prevotes and a refused own one are no polka of 3
    outputs = feed(node, Vote(PREVOTE, 1, 0, A, KEYS[next(i for i in range(3) if i not in others)]))
    assert [vote.value for vote in sent(outputs, PRECOMMIT)] == [A]  # the third signed prevote makes it
