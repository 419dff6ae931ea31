"""The fault cases, shared by tests/e2e/test_faults.py (Scale QUICK) and bench/faults.py (longer scales).

Each case breaks a running 4-validator devnet (devnet.FaultNet) one way, then checks what every
case must hold, from outside:

- no honest validator double-signed: no evidence against one in any block, no `double-sign by`
  naming one in any log, no validator's bonded stake cut or jail set;
- no fork: every node holds the same hash at every height it finalized;
- finality continues (or resumes within the case's stated bound once quorum is back), and every
  node finalizes new blocks when the case ends;
- memory stays bounded: no node's resident set above Scale.rss_bound_mb at any sample.

Plus what the case itself is about (a restarted validator signs again within its bound, a flood
is not relayed, ...). A case returns a CaseResult with every failure it saw, never stopping at
the first; `run_case` first makes the devnet healthy again (resumes, restarts, or rebuilds it when
a validator was slashed or finality does not come back).
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable

import grpc

from chain.crypto import Keypair, dev_keypair
from chain.p2p import NetworkLimits
from proto import node_pb2
from tests.faults import hostile
from tests.faults.devnet import CLOCK_OFFSET_ENV, FaultFailure, FaultNet, Member


@dataclass(frozen=True)
class Scale:
    """How hard and how long each case pushes, and the bounds it holds the devnet to."""

    name: str
    pause_s: float = 8.0
    isolate_s: float = 8.0
    skew_s: float = -40.0
    skewed_run_s: float = 10.0
    vote_flood_votes: int = 20_000
    vote_flood_s: float = 15.0
    lying_s: float = 10.0  # beyond the pause and the bounds
    strangers_per_node: int = 0  # 0: every stranger slot (max_peers())
    strangers_s: float = 45.0
    half_open_per_node: int = 70
    half_open_s: float = 40.0
    announce_s: float = 15.0
    announce_transfers: int = 8
    oversized_requests: int = 64
    oversized_mib: int = 30
    oversized_concurrency: int = 32
    # Runs of the cases that double-sign by chance, each on its own devnet for the empty database.
    empty_db_attempts: int = 3
    clock_skew_attempts: int = 1
    # Bounds.
    rss_bound_mb: float = 1024.0
    rejoin_bound_s: float = 30.0
    half_open_rejoin_bound_s: float = 25.0
    empty_db_rejoin_bound_s: float = 60.0
    resume_bound_s: float = 30.0
    min_blocks_under_attack: int = 3
    max_log_lines_per_1000_votes: int = 50

    def scaled(self, factor: float) -> "Scale":
        """Longer floods and faults by `factor` (bounds unchanged)."""
        from dataclasses import replace

        return replace(
            self, name=f"{self.name} x{factor:g}", pause_s=self.pause_s * factor, isolate_s=self.isolate_s * factor,
            skewed_run_s=self.skewed_run_s * factor, vote_flood_votes=int(self.vote_flood_votes * factor),
            vote_flood_s=self.vote_flood_s * factor, lying_s=self.lying_s * factor,
            strangers_s=self.strangers_s * factor, half_open_s=self.half_open_s * factor,
            announce_s=self.announce_s * factor, announce_transfers=int(self.announce_transfers * factor),
            oversized_requests=int(self.oversized_requests * factor),
        )


QUICK = Scale("quick")
# bench/faults.py's default: the sizes of the attacks found from outside (110,000 votes, 200 x 30 MiB, ...).
LONG = Scale(
    "long", pause_s=20.0, isolate_s=20.0, skewed_run_s=30.0, vote_flood_votes=110_000, vote_flood_s=85.0,
    lying_s=30.0, strangers_s=90.0, half_open_s=80.0, announce_s=45.0, announce_transfers=30,
    oversized_requests=200, empty_db_attempts=8, clock_skew_attempts=4,
)


def max_peers() -> int:
    """The peer slots strangers can take on a node: its inbound and outbound limits (reserved slots are not theirs)."""
    limits = NetworkLimits()
    return limits.max_inbound + limits.max_outbound


# --- results ---------------------------------------------------------------------------------------


@dataclass
class CaseResult:
    name: str
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    resume_s: float | None = None
    max_rss_mb: float = 0.0
    max_rss_node: str = ""
    double_signs: int = 0
    forks: int = 0
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        resume = f"{self.resume_s:.1f} s" if self.resume_s is not None else "-"
        head = (f"{verdict} {self.name} ({self.seconds:.0f} s): resume {resume}, max RSS {self.max_rss_mb:.0f} MiB "
                f"({self.max_rss_node}), double-signs {self.double_signs}, forks {self.forks}")
        lines = [head] + [f"    note: {note}" for note in self.notes]
        lines += [f"    FAILED: {failure.splitlines()[0] if failure else ''}" for failure in self.failures]
        return "\n".join(lines)

    def details(self) -> str:
        """The summary, then every failure whole (with the log tails it quotes)."""
        return "\n\n".join([self.summary(), *self.failures])


class Case:
    """One case's run: what it saw (failures, notes) and the checks every case ends with."""

    def __init__(self, net: FaultNet, name: str, scale: Scale):
        self.net = net
        self.scale = scale
        self.result = CaseResult(name)

    def __enter__(self) -> "Case":
        self.started = time.monotonic()
        self.net.scan()
        self.offsets = self.net.log_offsets()
        self.ledgers = self.net.ledgers()
        self.evidence_before = len(self.net.evidence)
        self.forks_before = len(self.net.forks)
        self.net.reset_rss_peaks()
        return self

    def check(self, condition: bool, failure: str) -> bool:
        if not condition:
            self.result.failures.append(failure)
        return condition

    def note(self, text: str) -> None:
        self.result.notes.append(text)

    def timed(self, action: Callable[[], float]) -> float | None:
        """Run a wait; its seconds, or None with its failure recorded."""
        try:
            return action()
        except FaultFailure as failure:
            self.result.failures.append(str(failure))
            return None

    def __exit__(self, kind, error, trace) -> bool:
        if error is not None:
            if isinstance(error, FaultFailure):
                self.result.failures.append(str(error))
            else:
                self.result.failures.append("".join(traceback.format_exception(kind, error, trace))[-2000:])
        self._final_checks()
        self.result.seconds = time.monotonic() - self.started
        return True

    def _final_checks(self) -> None:
        net, scale = self.net, self.scale
        running = [member for member in net.members if member.running and not member.paused]
        if running:
            self.timed(lambda: net.wait_advance(running, 2, scale.resume_bound_s,
                                                f"every running node finalizes 2 more blocks after the case"))
        net.scan()
        forks = net.forks[self.forks_before:]
        self.result.forks = len(forks)
        for fork in forks[:5]:
            self.result.failures.append(
                f"fork at #{fork.height}: {fork.node} holds {fork.hash.hex()[:16]}, others {fork.canonical.hex()[:16]}")
        evidence = net.evidence[self.evidence_before:]
        accused = {(net.name_of(item.validator) or "a non-validator", item.vote_height) for item in evidence}
        honest_evidence = {item for item in accused if item[0] != "a non-validator"}
        for name, height in sorted(honest_evidence):
            self.result.failures.append(f"evidence of a double-sign by {name} at #{height} is in a block")
        lines = net.double_sign_lines(self.offsets)
        honest_lines = [line for line in lines if line[2] is not None]
        for node, line, name in honest_lines[:5]:
            self.result.failures.append(f"{node} logged a double-sign by {name}: {line}")
        if len(lines) > len(honest_lines):
            self.note(f"{len(lines) - len(honest_lines)} 'double-sign by' line(s) name a key outside the validator set")
        after = net.ledgers()
        punished = []
        for name, (bonded, jailed) in after.items():
            bonded_before, jailed_before = self.ledgers.get(name, (bonded, jailed))
            if bonded < bonded_before or jailed > jailed_before:
                punished.append(name)
                self.result.failures.append(
                    f"{name} was slashed or jailed: bonded {bonded_before} -> {bonded}, jailed until {jailed}")
        if not after:
            self.result.failures.append("no node answered a stake-ledger read at the end of the case")
        self.result.double_signs = len({name for name, _ in honest_evidence} | {l[2] for l in honest_lines}
                                       | set(punished))
        node, peak = net.peak_rss()
        self.result.max_rss_mb, self.result.max_rss_node = peak, node
        self.check(peak <= scale.rss_bound_mb,
                   f"{node} reached {peak:.0f} MiB resident, above the bound of {scale.rss_bound_mb:.0f} MiB")


def restart_and_rejoin(case: "Case", net: FaultNet, victim: Member, bound_s: float, **start: object) -> float | None:
    """Start `victim` (net.start's options) and wait until it rejoined: seconds from the start, or None past `bound_s`."""
    started = time.monotonic()
    net.start(victim, **start)
    took = case.timed(lambda: net.wait_rejoined(victim, max(1.0, bound_s - (time.monotonic() - started))))
    return None if took is None else time.monotonic() - started


def resume_and_rejoin(case: "Case", net: FaultNet, victim: Member, bound_s: float) -> float | None:
    """SIGCONT `victim` and wait until it rejoined: seconds from the SIGCONT, or None past `bound_s`."""
    net.resume(victim)
    return case.timed(lambda: net.wait_rejoined(victim, bound_s))


# --- keeping the devnet healthy between cases -----------------------------------------------------------


def healthy(net: FaultNet, timeout: float = 40.0) -> str | None:
    """Bring every node back (resume, restart) and wait for finality; None when healthy, else why not."""
    for member in net.members:
        if member.paused:
            net.resume(member)
        if not member.running or member.mode != "normal":
            if member.running:
                net.stop(member)
            try:
                net.start(member)
            except Exception as error:  # a node that cannot start any more: the devnet needs rebuilding
                return f"{member.name} does not start: {error}"
    try:
        net.wait_advance(net.members, 2, timeout, "every node finalizes 2 blocks before the case")
    except FaultFailure as failure:
        return str(failure).splitlines()[0]
    # A validator that runs but no longer signs (seen after a SIGSTOP/SIGCONT) would leave the next
    # case with 3 of 4 signers: rebuild rather than let one case's damage fail the next.
    for member in net.members:
        observer = next(other for other in net.members if other is not member)
        since = observer.height() - 1
        try:
            net.wait_until(lambda: net.signed_since(member, since, observer), 15, f"{member.name} signs")
        except FaultFailure:
            return f"{member.name} runs but its precommit is in no commit for 15 s"
    ledgers = net.ledgers()
    if not ledgers:
        return "no node answered a stake-ledger read"
    most = max(bonded for bonded, _ in ledgers.values())
    punished = [name for name, (bonded, jailed) in ledgers.items() if jailed or bonded < most]
    if punished:
        return f"{', '.join(punished)} slashed or jailed by an earlier case"
    return None


# --- the cases ------------------------------------------------------------------------------------------


def kill_9(net: FaultNet, scale: Scale) -> CaseResult:
    """kill -9 one validator: the other three go on; restarted, it catches up and signs again."""
    with Case(net, "kill -9 a validator", scale) as case:
        victim = net.members[3]
        net.kill(victim)
        case.timed(lambda: net.wait_advance(net.others(victim), 3, scale.resume_bound_s,
                                            "the other three finalize 3 blocks without the killed validator"))
        case.result.resume_s = restart_and_rejoin(case, net, victim, scale.rejoin_bound_s)
    return case.result


def pause(net: FaultNet, scale: Scale) -> CaseResult:
    """SIGSTOP one validator for pause_s, then SIGCONT: it catches up and signs again."""
    with Case(net, f"pause a validator {scale.pause_s:g} s", scale) as case:
        victim = net.members[2]
        net.pause(victim)
        started = time.monotonic()
        case.timed(lambda: net.wait_advance(net.others(victim), 3, scale.resume_bound_s,
                                            "the other three finalize 3 blocks while one is paused"))
        time.sleep(max(0.0, scale.pause_s - (time.monotonic() - started)))
        case.result.resume_s = resume_and_rejoin(case, net, victim, scale.rejoin_bound_s)
    return case.result


def isolate(net: FaultNet, scale: Scale) -> CaseResult:
    """A validator runs cut off (no boot nodes, a port no peer knows) for isolate_s, then rejoins."""
    with Case(net, f"isolate a validator {scale.isolate_s:g} s", scale) as case:
        victim = net.members[1]
        net.stop(victim)
        net.start(victim, isolated=True)
        started = time.monotonic()
        case.timed(lambda: net.wait_advance(net.others(victim), 3, scale.resume_bound_s,
                                            "the other three finalize 3 blocks while one is isolated"))
        time.sleep(max(0.0, scale.isolate_s - (time.monotonic() - started)))
        info = victim.chain_info()
        case.check(info is not None and info.peers == 0,
                   f"the isolated validator has {info.peers if info else '?'} peers, not 0")
        case.note(f"isolated at #{victim.height()} while the others reached #{max(net.heights(net.others(victim)).values())}")
        net.stop(victim)
        case.result.resume_s = restart_and_rejoin(case, net, victim, scale.rejoin_bound_s)
    return case.result


def empty_database(net: FaultNet, scale: Scale) -> CaseResult:
    """Stop a validator, remove chains/<id>/db only (docs/operator.md's resync), start it: it resyncs, no double-sign.

    Run on a young chain (run_case gives it a fresh devnet): a validator that signs again at heights
    it signed before is caught only while those heights are within the evidence window and the
    other validators still keep their votes, that is near the head."""
    with Case(net, "restart from an empty chain database", scale) as case:
        victim = net.members[3]
        case.timed(lambda: net.wait_until(lambda: victim.height() >= YOUNG_CHAIN_HEIGHT, 60,
                                          f"{victim.name} finalizes #{YOUNG_CHAIN_HEIGHT}", [victim]))
        net.stop(victim)
        net.remove_database(victim)
        net.forget_blocks_of(victim)
        case.result.resume_s = restart_and_rejoin(case, net, victim, scale.empty_db_rejoin_bound_s)
        case.note(f"resynced {victim.height()} blocks")
    return case.result


def clock_skew(net: FaultNet, scale: Scale) -> CaseResult:
    """A validator runs with its clock skewed (INFERCHAIN_CLOCK_OFFSET_S), then restarts with it fixed.

    Skewed by -40 s, the validator sees every other proposer's block time as too far ahead (more than
    30 s) and prevotes nil; restarted at the same height with the right clock, it replays its
    write-ahead log and must not sign the other way."""
    with Case(net, f"clock skewed {scale.skew_s:+g} s, then fixed", scale) as case:
        victim = net.members[1]
        net.stop(victim)
        offset = victim.log_size()
        net.start(victim, env={CLOCK_OFFSET_ENV: f"{scale.skew_s:g}"})
        skewed_from = max(net.heights(net.others(victim)).values())
        case.timed(lambda: net.wait_advance(net.others(victim), 3, scale.resume_bound_s,
                                            "the others finalize 3 blocks while one validator's clock is skewed"))
        time.sleep(scale.skewed_run_s)
        signed_skewed = net.signed_since(victim, skewed_from, net.others(victim)[0])
        skewed_height = victim.height()
        net.stop(victim)
        mentions = [line for line in victim.log_since(offset).splitlines()
                    if "clock" in line.lower() and not line.startswith("--- faults")]
        case.result.resume_s = restart_and_rejoin(case, net, victim, scale.rejoin_bound_s)
        case.note(f"skewed run ended at #{skewed_height}; its precommit "
                  f"{'was' if signed_skewed else 'was not'} in the last commits while skewed; "
                  + (f"log: {mentions[0].strip()[:160]}" if mentions else "no log line mentions the clock"))
    return case.result


def vote_flood(net: FaultNet, scale: Scale) -> CaseResult:
    """A peer with a throwaway node key floods one node with correctly signed votes of a non-validator key."""
    with Case(net, f"vote flood from a non-validator ({scale.vote_flood_votes:,} votes)", scale) as case:
        target = net.members[0]
        chain = hostile.Chain.of_node(target.rpc)
        offset = target.log_size()
        key = Keypair.generate()
        with hostile.Lab() as lab:
            observer = lab.start(hostile.observe(target.p2p, chain, scale.vote_flood_s + 5,
                                                 watch_key_prefix=key.public_key.hex()))
            time.sleep(0.5)
            before = net.heights()
            flood_report = lab.run(hostile.vote_flood(target.p2p, chain, scale.vote_flood_votes, scale.vote_flood_s,
                                                      first_height=max(0, target.height()), key=key),
                                   timeout=scale.vote_flood_s + 60)
            after = net.heights()
            observer_report = observer.result(scale.vote_flood_s + 30)
        case.note(flood_report.summary())
        case.note(f"observer on {target.name}: {observer_report.extra['votes_by_key']} of the flooder's votes relayed")
        live = [name for name, height in before.items() if height >= 0]
        progressed = min(after[name] - before[name] for name in live)
        case.check(progressed >= scale.min_blocks_under_attack,
                   f"finality under the flood: the slowest node finalized {progressed} blocks in "
                   f"{flood_report.seconds:.0f} s (at least {scale.min_blocks_under_attack} expected); {before} -> {after}")
        case.check(observer_report.extra["votes_by_key"] == 0,
                   f"{target.name} relayed {observer_report.extra['votes_by_key']} votes of a key outside the validator set")
        lines = len(target.log_since(offset).splitlines())
        allowed = max(100, scale.max_log_lines_per_1000_votes * flood_report.sent // 1000)
        case.check(lines <= allowed,
                   f"{target.name} logged {lines:,} lines during a flood of {flood_report.sent:,} votes (bound {allowed:,})")
    return case.result


def lying_status(net: FaultNet, scale: Scale) -> CaseResult:
    """A peer claims a huge height and serves no blocks while a validator falls behind (paused); it must still catch up."""
    with Case(net, "lying Status while a validator lags", scale) as case:
        victim = net.members[2]
        chain = hostile.Chain.of_node(victim.rpc)
        with hostile.Lab() as lab:
            # The liar stays for the whole case (it is closed at the end): a node that recovers only once
            # the liar leaves has not recovered.
            lying_s = scale.lying_s + scale.pause_s + scale.resume_bound_s + scale.rejoin_bound_s
            liar = lab.start(hostile.lying_status(victim.p2p, chain, claimed_height=10**9, seconds=lying_s))
            time.sleep(1.0)
            net.pause(victim)
            case.timed(lambda: net.wait_advance(net.others(victim), 3, scale.resume_bound_s,
                                                "the other three finalize 3 blocks while one lags"))
            time.sleep(scale.pause_s)
            case.result.resume_s = resume_and_rejoin(case, net, victim, scale.rejoin_bound_s)
            lab.close()
            if liar.done() and not liar.cancelled() and liar.exception() is None:
                case.note(liar.result().summary())
    return case.result


def strangers(net: FaultNet, scale: Scale) -> CaseResult:
    """Authenticated strangers (fresh node keys) take every peer slot; a validator restarted then must still rejoin."""
    per_node = scale.strangers_per_node or max_peers()
    with Case(net, f"peer slots taken by {per_node} authenticated strangers per node", scale) as case:
        victim = net.members[1]
        chain = hostile.Chain.of_node(victim.rpc)
        with hostile.Lab() as lab:
            via = lab.run(hostile.relays([m.p2p for m in net.members]), timeout=10)
            swarm = lab.start(hostile.strangers(list(via.values()), chain, per_node, scale.strangers_s))
            time.sleep(min(10.0, scale.strangers_s / 4))
            case.note("peers before the restart: " + ", ".join(
                f"{m.name} {(m.chain_info().peers if m.chain_info() else '?')}" for m in net.members))
            # Down long enough for the honest peers' redial back-off to grow (0.5 s doubling), as a crash
            # and a slow restart do; the strangers redial at once.
            net.kill(victim)
            time.sleep(scale.pause_s)
            case.result.resume_s = restart_and_rejoin(case, net, victim, scale.rejoin_bound_s)
            lab.close()
            if swarm.done() and not swarm.cancelled() and swarm.exception() is None:
                case.note(swarm.result().summary())
    return case.result


def half_open(net: FaultNet, scale: Scale) -> CaseResult:
    """Streams that never send a Hello take every handshake slot; a validator restarted then must still rejoin."""
    with Case(net, f"{scale.half_open_per_node} half-open streams per node", scale) as case:
        victim = net.members[2]
        with hostile.Lab() as lab:
            via = lab.run(hostile.relays([m.p2p for m in net.members]), timeout=10)
            streams = lab.start(hostile.half_open(list(via.values()), scale.half_open_per_node, scale.half_open_s))
            time.sleep(3.0)
            net.kill(victim)
            case.result.resume_s = restart_and_rejoin(case, net, victim, scale.half_open_rejoin_bound_s)
            lab.close()
            if streams.done() and not streams.cancelled() and streams.exception() is None:
                case.note(streams.result().summary())
    return case.result


def announce_flood(net: FaultNet, scale: Scale) -> CaseResult:
    """TxAnnounce of hashes nobody has flood one node; transfers sent to another must still reach it by gossip."""
    with Case(net, "TxAnnounce flood", scale) as case:
        target, source = net.members[1], net.members[0]
        chain = hostile.Chain.of_node(target.rpc)
        control, control_total = _transfers_seen_pending(source, target, 4, until=time.monotonic() + 20)
        case.note(f"before the flood: {control} of {control_total} transfers sent to {source.name} reached "
                  f"{target.name}'s pool before a block")
        with hostile.Lab() as lab:
            flood = lab.start(hostile.announce_flood(target.p2p, chain, scale.announce_s))
            time.sleep(min(3.0, scale.announce_s / 4))
            gossiped, total = _transfers_seen_pending(source, target, scale.announce_transfers,
                                                      until=time.monotonic() + scale.announce_s - 3)
            report = flood.result(scale.announce_s + 30)
        case.note(report.summary())
        case.note(f"{gossiped} of {total} transfers sent to {source.name} reached {target.name}'s pool before a block")
        case.check(total > 0 and gossiped * 2 >= total,
                   f"transaction gossip under the announce flood: {gossiped} of {total} transfers sent to "
                   f"{source.name} reached {target.name}'s pool before their block (at least half expected)")
    return case.result


def _transfers_seen_pending(source: Member, target: Member, count: int, until: float) -> tuple[int, int]:
    """Send `count` transfers to `source`; how many `target` held as pending before they were included."""
    from chain.client import Client

    sender, receiver = dev_keypair("ferdie"), dev_keypair("eve").public_key
    gossiped = sent = 0
    with Client(source.rpc, timeout=10) as client:
        for _ in range(count):
            if time.monotonic() > until:
                break
            submission = client.transfer(sender, receiver, 10**12)
            sent += 1
            if _pending_at(target, submission.hash, timeout=5.0):
                gossiped += 1
            client.wait_for_inclusion(submission.hash, timeout=30)
    return gossiped, sent


def _pending_at(member: Member, transaction_hash: bytes, timeout: float) -> bool:
    """Poll `member` until it holds the transaction: True when seen pending first, False when included first or never."""
    request = node_pb2.GetTransactionRequest(transaction_hash=transaction_hash)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            reply = member.stub().GetTransaction(request, timeout=2)
            if reply.status == node_pb2.TRANSACTION_STATUS_PENDING:
                return True
            if reply.status == node_pb2.TRANSACTION_STATUS_INCLUDED:
                return False
        except grpc.RpcError:
            pass
        time.sleep(0.01)
    return False


def oversized_requests(net: FaultNet, scale: Scale) -> CaseResult:
    """Many requests of tens of MiB at once to one node's API: memory stays bounded, the API and finality go on."""
    with Case(net, f"{scale.oversized_requests} API requests of {scale.oversized_mib} MiB", scale) as case:
        target = net.members[3]
        latencies: list[float] = []
        stop = threading.Event()

        def probe() -> None:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    target.stub().GetChainInfo(node_pb2.GetChainInfoRequest(), timeout=10)
                except grpc.RpcError:
                    pass  # a failure counts as the time it took (at most the 10 s timeout)
                latencies.append(time.monotonic() - started)
                stop.wait(0.5)

        prober = threading.Thread(target=probe, daemon=True)
        before = net.heights()
        prober.start()
        report = hostile.oversized_requests(target.rpc, scale.oversized_requests, scale.oversized_mib,
                                            scale.oversized_concurrency, seconds=120)
        stop.set()
        prober.join(5)
        after = net.heights()
        case.note(report.summary())
        case.note(f"GetChainInfo during the requests: slowest {max(latencies, default=0):.2f} s of {len(latencies)}")
        case.check(max(latencies, default=0) < 5.0,
                   f"{target.name}'s API took {max(latencies, default=0):.1f} s to answer GetChainInfo during the requests")
        progressed = min(after[name] - before[name] for name in after if before[name] >= 0)
        case.check(progressed >= 1, f"finality during the requests: {before} -> {after}")
        _, peak = net.peak_rss()
        rss_after = target.rss_mb() or 0.0
        case.note(f"{target.name}: peak {peak:.0f} MiB, {rss_after:.0f} MiB after")
    return case.result


# The empty-database case needs a young chain (see empty_database).
YOUNG_CHAIN_HEIGHT = 8
FRESH_DEVNET_CASES = frozenset({"empty_database"})


def attempts(name: str, scale: Scale) -> int:
    """How many times to run case `name`: the ones that double-sign by chance more than once."""
    return {"empty_database": scale.empty_db_attempts, "clock_skew": scale.clock_skew_attempts}.get(name, 1)

CASES: dict[str, Callable[[FaultNet, Scale], CaseResult]] = {
    "kill_9": kill_9,
    "pause": pause,
    "isolate": isolate,
    "vote_flood": vote_flood,
    "lying_status": lying_status,
    "strangers": strangers,
    "half_open": half_open,
    "announce_flood": announce_flood,
    "oversized_requests": oversized_requests,
    "empty_database": empty_database,
    "clock_skew": clock_skew,
}


def run_case(net_holder: "NetHolder", name: str, scale: Scale) -> CaseResult:
    """Make the devnet healthy (rebuilding it if need be), then run case `name`."""
    net = net_holder.healthy_net(fresh=name in FRESH_DEVNET_CASES)
    result = CASES[name](net, scale)
    if net_holder.rebuilt:
        result.notes.insert(0, f"the devnet was rebuilt before this case: {net_holder.rebuilt}")
    return result


class NetHolder:
    """The devnet the cases share; a new one (in a new directory) when the last one cannot be made healthy."""

    def __init__(self, make: Callable[[int], FaultNet]):
        self._make = make
        self._count = 0
        self.net: FaultNet | None = None
        self.rebuilt: str | None = None

    def healthy_net(self, fresh: bool = False) -> FaultNet:
        self.rebuilt = None
        if self.net is not None:
            why = "this case starts on a fresh devnet" if fresh else healthy(self.net)
            if why is None:
                return self.net
            self.rebuilt = why
            self.net.close()
        self._count += 1
        self.net = self._make(self._count)
        self.net.start_all()
        self.net.wait_advance(self.net.members, 2, 90, "the new devnet finalizes")
        return self.net

    def close(self) -> None:
        if self.net is not None:
            self.net.close()
