"""Hostile peers: what an attacker on the peer-to-peer port can do, bounded, on loopback only.

Each behaviour speaks the real handshake of docs/network.md: the node's own dialer side of it
(chain.p2p.handshake.Handshaker: the Hello with a fresh nonce and the checkout's protocol version
and fields, the listener's signatures checked, a signed HelloAck) where the checkout has it, else
the same built from chain/p2p/wire.py's helpers, filling every Hello field the proto has. So a
change of the handshake's version or fields does not leave this toolkit speaking the old one.
Hostile peers never claim a validator key: they are strangers with throwaway node keys.

    vote_flood      correctly signed votes from a key that is no validator (the key is fresh; so is
                    the node key of every reconnection after a disconnect)
    lying_status    a Status with a height far above the chain's, and no blocks when asked
    strangers       authenticated connections with fresh node keys, up to a count per node
    half_open       streams that never send a Hello, reopened as soon as the node ends them
    announce_flood  TxAnnounce of hashes nobody has, TxRequests never answered
    oversized_requests  (the gRPC API, not p2p) requests of tens of MiB, many at once

Every behaviour stops by itself after its count or its seconds, whichever comes first, and
refuses any address outside 127.0.0.0/8. They run on one asyncio loop in a thread of their own
(`Lab`), so hundreds of connections cost no thread each; a Lab also ends everything it started
after `max_lifetime_s` whatever its callers do.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import ipaddress
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import grpc

from chain.client import Client
from chain.consensus.commit import sign_vote
from chain.crypto import Keypair
from chain.p2p import wire
from proto import node_pb2, p2p_pb2, types_pb2

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
# The Lab ends whatever is still running after this long (a test that forgot to stop cannot leave an attacker).
DEFAULT_LIFETIME_S = 900.0
# How long a behaviour waits before reconnecting after the node refused or dropped it.
RECONNECT_WAIT_S = 0.5
HANDSHAKE_TIMEOUT_S = 10.0


class Refused(Exception):
    """The node ended the stream during the handshake: its status code and message."""

    def __init__(self, code: grpc.StatusCode | None, detail: str):
        super().__init__(f"{code.name if code else 'no status'}: {detail}")
        self.code = code
        self.detail = detail


def loopback(addr: str) -> str:
    """`addr` (HOST:PORT) when its host is a 127.0.0.0/8 address; ValueError otherwise."""
    host, _ = wire.parse_dial_addr(addr)
    if ipaddress.ip_address(host) not in LOOPBACK:
        raise ValueError(f"hostile peers only target loopback addresses (127.0.0.x), not {addr!r}")
    return addr


# --- the chain and the messages ---------------------------------------------------------------------


@dataclass(frozen=True)
class Chain:
    """What a peer must present to be let in: chain id and genesis hash (the protocol version is wire's)."""

    chain_id: str
    genesis_hash: bytes

    @classmethod
    def of_node(cls, rpc_target: str) -> "Chain":
        """The chain a node runs, read from its gRPC API."""
        with Client(rpc_target) as client:
            info = client.chain_info()
        return cls(info.chain_id, info.genesis_hash)

    def identity(self) -> wire.ChainIdentity:
        return wire.ChainIdentity(self.chain_id, self.genesis_hash)


def hello_envelope(chain: Chain, node_id: bytes, nonce: bytes, height: int = 0, public_addr: str = "") -> p2p_pb2.Envelope:
    """A dialer's Hello with every field this checkout's proto has that the handshake fills (no signature)."""
    identity = chain.identity()
    values = {
        "time_ms": int(time.time() * 1000),
        "protocol_version": identity.protocol_version,
        "chain_id": identity.chain_id,
        "genesis_hash": identity.genesis_hash,
        "node_id": node_id,
        "public_addr": public_addr,
        "height": height,
        "nonce": nonce,
    }
    known = {field.name for field in p2p_pb2.Hello.DESCRIPTOR.fields}
    return p2p_pb2.Envelope(hello=p2p_pb2.Hello(**{name: value for name, value in values.items() if name in known and value}))


def encode(envelope: p2p_pb2.Envelope) -> bytes:
    return wire.encode_envelope(envelope)


def status_message(height: int, round_number: int = 0) -> bytes:
    return encode(p2p_pb2.Envelope(status=p2p_pb2.Status(height=height, block_hash=secrets.token_bytes(32),
                                                          round=round_number)))


def vote_messages(key: Keypair, chain_id: str, first_height: int, count: int, start: int = 0) -> list[bytes]:
    """`count` distinct votes signed by `key`: heights first_height..+2, both types, rounds 0-15, random block hashes.

    Every vote is correctly signed; some pairs conflict (one key, height, round and type, two hashes),
    which is also what a flooder may send."""
    kinds = (types_pb2.VOTE_TYPE_PREVOTE, types_pb2.VOTE_TYPE_PRECOMMIT)
    messages = []
    for number in range(start, start + count):
        vote = sign_vote(key, chain_id, kinds[number % 2], first_height + number % 3, (number // 6) % 16,
                         secrets.token_bytes(32))
        messages.append(encode(p2p_pb2.Envelope(vote=vote)))
    return messages


def vote_signer(message: p2p_pb2.Envelope) -> bytes | None:
    """The validator key a gossiped vote names, or None for anything else."""
    if message.WhichOneof("message") != "vote":
        return None
    try:
        return types_pb2.VoteBody.FromString(message.vote.body).validator
    except Exception:
        return None


# --- one connection ---------------------------------------------------------------------------------


def _handshaker(chain: Chain, node_key: Keypair, height: int):
    """The checkout's own Handshaker for a stranger (no validator key), or None where it has none."""
    try:
        from chain.p2p.handshake import Handshaker
    except ImportError:
        return None
    try:
        return Handshaker(chain.identity(), node_key, lambda: height, lambda: "")
    except TypeError:
        return None


def _answer(handshaker, listener_hello: p2p_pb2.Hello, nonce: bytes, addr: str) -> bytes:
    """The HelloAck for the listener's Hello, its signatures checked (HandshakeRefused when they do not verify)."""
    parameters = inspect.signature(handshaker.check_listener_hello).parameters
    arguments = (listener_hello, nonce, addr) if len(parameters) >= 3 else (listener_hello, nonce)
    answer = handshaker.check_listener_hello(*arguments)
    return answer[0] if isinstance(answer, tuple) else answer


def _channel_options() -> list[tuple[str, int]]:
    return [
        ("grpc.max_receive_message_length", wire.MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", wire.MAX_MESSAGE_BYTES),
        ("grpc.enable_retries", 0),
        # One TCP connection per channel: the listener allows few streams per HTTP/2 connection.
        ("grpc.use_local_subchannel_pool", 1),
    ]


@dataclass
class Connection:
    """One authenticated connection to a node, dialed by this side (async; run on a Lab's loop)."""

    addr: str
    chain: Chain
    node_key: Keypair = field(default_factory=Keypair.generate)
    height: int = 0
    # Called with each Envelope the node sends after the handshake (on the loop: return quickly).
    on_message: Callable[["Connection", p2p_pb2.Envelope], None] | None = None
    peer_id: bytes = b""
    received: dict = field(default_factory=dict)
    # Answers an on_message callback wants sent (the callback cannot await); the behaviour sends them.
    outbox: list = field(default_factory=list)
    ended: str | None = None
    _channel: object = None
    _call: object = None
    _reader: object = None

    async def open(self, timeout: float = HANDSHAKE_TIMEOUT_S) -> "Connection":
        """Dial and complete the handshake; Refused when the node does not let this peer in."""
        loopback(self.addr)
        self._channel = grpc.aio.insecure_channel(self.addr, options=_channel_options())
        self._call = self._channel.stream_stream(wire.CONNECT_METHOD)()
        nonce = secrets.token_bytes(wire.NONCE_BYTES)
        own_id = self.node_key.public_key
        handshaker = _handshaker(self.chain, self.node_key, self.height)
        hello = handshaker.hello(nonce) if handshaker else hello_envelope(self.chain, own_id, nonce, self.height)
        try:
            await self._call.write(encode(hello))
            raw = await asyncio.wait_for(self._call.read(), timeout)
        except grpc.aio.AioRpcError as error:
            await self.close()
            raise Refused(error.code(), error.details() or "") from None
        except (asyncio.TimeoutError, asyncio.InvalidStateError):
            await self.close()
            raise Refused(None, f"no Hello from {self.addr} within {timeout:g} s") from None
        if raw is grpc.aio.EOF:
            code, detail = await self._call.code(), await self._call.details()
            await self.close()
            raise Refused(code, detail or "the stream ended before the listener's Hello")
        try:
            if handshaker is not None:
                hello = handshaker.parse_hello(raw)
                await self._call.write(_answer(handshaker, hello, nonce, self.addr))
                self.peer_id = hello.node_id
                self._reader = asyncio.get_running_loop().create_task(self._read())
                return self
            hello = wire.parse_envelope(raw).hello
            identity = self.chain.identity()
            wire.check_hello(identity, own_id, hello, from_listener=True)
            listener = wire.handshake_transcript(wire.LISTENER_ROLE, identity, own_id, hello.node_id, nonce, hello.nonce)
            wire.check_handshake_signature(wire.LISTENER_ROLE, hello.node_id, hello.signature, listener)
            dialer = wire.handshake_transcript(wire.DIALER_ROLE, identity, own_id, hello.node_id, nonce, hello.nonce)
            ack = p2p_pb2.Envelope(hello_ack=p2p_pb2.HelloAck(signature=self.node_key.sign(dialer)))
            await self._call.write(encode(ack))
        except (wire.ProtocolViolation, wire.HandshakeRefused) as error:
            await self.close()
            raise Refused(getattr(error, "code", None), f"the listener's Hello does not fit: {error}") from None
        except grpc.aio.AioRpcError as error:
            await self.close()
            raise Refused(error.code(), error.details() or "") from None
        self.peer_id = hello.node_id
        self._reader = asyncio.get_running_loop().create_task(self._read())
        return self

    @property
    def is_open(self) -> bool:
        return self._reader is not None and not self._reader.done()

    async def send(self, raw: bytes) -> bool:
        """Write one message (waiting on HTTP/2 flow control); False once the node ended the connection."""
        if not self.is_open:
            return False
        try:
            await self._call.write(raw)
            return True
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError) as error:
            self._note_end(error)
            return False

    async def wait_closed(self, timeout: float) -> bool:
        if self._reader is None:
            return True
        try:
            await asyncio.wait_for(asyncio.shield(self._reader), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    async def close(self) -> None:
        if self._call is not None:
            self._call.cancel()
        if self._reader is not None and not self._reader.done():
            self._reader.cancel()
        if self._channel is not None:
            await self._channel.close()

    async def _read(self) -> None:
        try:
            while True:
                raw = await self._call.read()
                if raw is grpc.aio.EOF:
                    self.ended = self.ended or "the node closed the stream"
                    return
                try:
                    envelope = wire.parse_envelope(raw)
                except wire.ProtocolViolation:
                    continue
                kind = envelope.WhichOneof("message")
                self.received[kind] = self.received.get(kind, 0) + 1
                if self.on_message is not None:
                    self.on_message(self, envelope)
        except grpc.aio.AioRpcError as error:
            self._note_end(error)
        except asyncio.CancelledError:
            self.ended = self.ended or "closed by this side"

    def _note_end(self, error: Exception) -> None:
        if self.ended is None:
            if isinstance(error, grpc.aio.AioRpcError):
                self.ended = f"{error.code().name}: {error.details()}"
            else:
                self.ended = f"the stream ended ({type(error).__name__})"


# --- the Lab: one loop for every hostile peer ---------------------------------------------------------


def _quiet_when_cancelled(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    """The Lab loop's exception handler: a relay connection's task cancelled by close() (even before it ran) is how
    the Lab ends, not an error (Python 3.11's start_server logs it with a traceback); anything else as by default."""
    if isinstance(context.get("exception"), asyncio.CancelledError):
        return
    loop.default_exception_handler(context)


class Lab:
    """An asyncio loop on a daemon thread that runs hostile behaviours; close() (or the lifetime) ends them all."""

    def __init__(self, max_lifetime_s: float = DEFAULT_LIFETIME_S):
        self.loop = asyncio.new_event_loop()
        self.loop.set_exception_handler(_quiet_when_cancelled)
        self._thread = threading.Thread(target=self._run, name="hostile-lab", daemon=True)
        self._futures: list[concurrent.futures.Future] = []
        self._thread.start()
        self.loop.call_soon_threadsafe(self.loop.call_later, max_lifetime_s, self._cancel_all)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def start(self, coroutine) -> concurrent.futures.Future:
        """Run `coroutine` on the loop; its Future (result() waits)."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        self._futures.append(future)
        return future

    def run(self, coroutine, timeout: float | None = None):
        return self.start(coroutine).result(timeout)

    def _cancel_all(self) -> None:
        for task in asyncio.all_tasks(self.loop):
            task.cancel()

    def close(self) -> None:
        if not self.loop.is_running():
            return
        self.loop.call_soon_threadsafe(self._cancel_all)
        for future in self._futures:
            try:
                future.result(timeout=15)
            except BaseException:
                pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=15)

    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


# --- the attacker's own address ------------------------------------------------------------------------

# Where hostile connections come from. On one machine every node dials from 127.0.0.1 whatever its
# listen address, so an attacker there would share the honest validators' source address (and
# their per-address limits); relays make hostile connections come from a host of their own.
ATTACKER_HOST = "127.0.0.66"


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def relays(targets: list[str], source_host: str = ATTACKER_HOST) -> dict[str, str]:
    """A TCP relay per target on 127.0.0.1 whose upstream connections leave from `source_host`: target -> relay address.

    The relays live as long as the Lab's loop (Lab.close ends them)."""
    loopback(f"{source_host}:1")
    found = {}
    for target in targets:
        host, port = wire.parse_dial_addr(loopback(target))

        async def handle(reader, writer, host=host, port=port):
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(host, port, local_addr=(source_host, 0))
            except OSError:
                writer.close()
                return
            try:
                await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
            except asyncio.CancelledError:  # the Lab closing: end quietly
                writer.close()
                upstream_writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        found[target] = f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    return found


# --- behaviours ---------------------------------------------------------------------------------------


@dataclass
class Report:
    """What a behaviour did: counts, connections the node refused or ended, and how."""

    name: str
    sent: int = 0
    connections: int = 0
    refusals: dict = field(default_factory=dict)
    endings: dict = field(default_factory=dict)
    received: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    seconds: float = 0.0

    def refused(self, refusal: Refused) -> None:
        key = refusal.code.name if refusal.code else "NONE"
        self.refusals[key] = self.refusals.get(key, 0) + 1

    def ended(self, connection: Connection) -> None:
        key = (connection.ended or "open").split(":")[0]
        self.endings[key] = self.endings.get(key, 0) + 1
        for kind, count in connection.received.items():
            self.received[kind] = self.received.get(kind, 0) + count

    def summary(self) -> str:
        parts = [f"{self.name}: sent {self.sent:,} in {self.seconds:.1f} s over {self.connections} connection(s)"]
        if self.refusals:
            parts.append(f"refused {self.refusals}")
        if self.endings:
            parts.append(f"ended {self.endings}")
        if self.extra:
            parts.append(", ".join(f"{key} {value}" for key, value in self.extra.items()))
        return "; ".join(parts)


async def _finish(connection: "Connection | None", report: Report, started: float) -> None:
    """Count and close the last connection; the behaviour's running time."""
    if connection is not None:
        report.ended(connection)
        await connection.close()
    report.seconds = time.monotonic() - started


async def _reconnect(old: "Connection | None", new: Callable[[], "Connection"], report: Report) -> "Connection | None":
    """Close an ended connection (counted in `report`) and open a new one; None (after a wait) when refused."""
    if old is not None:
        report.ended(old)
        await old.close()
        await asyncio.sleep(RECONNECT_WAIT_S)
    connection = new()
    try:
        await connection.open()
    except Refused as refusal:
        report.refused(refusal)
        await asyncio.sleep(RECONNECT_WAIT_S)
        return None
    report.connections += 1
    return connection


def _head_of(connection: Connection, envelope: p2p_pb2.Envelope, into: dict) -> None:
    if envelope.WhichOneof("message") == "status":
        into["height"] = max(into.get("height", 0), envelope.status.height)


async def vote_flood(addr: str, chain: Chain, votes: int, seconds: float, first_height: int,
                     key: Keypair | None = None, chunk: int = 200) -> Report:
    """Send up to `votes` signed votes of a fresh non-validator key to `addr` within `seconds`.

    Votes are signed in chunks for the heights the node reports in its Status (so they stay current);
    a dropped connection is replaced by one with a fresh node key, as a Sybil would."""
    loopback(addr)
    report = Report("vote flood")
    key = key or Keypair.generate()
    report.extra["validator_key"] = key.public_key.hex()[:16]
    head = {"height": first_height}
    started = time.monotonic()
    deadline = started + seconds
    connection = None
    batch: list[bytes] = []
    try:
        while report.sent < votes and time.monotonic() < deadline:
            if connection is None or not connection.is_open:
                connection = await _reconnect(connection, lambda: Connection(addr, chain, on_message=lambda c, e: _head_of(c, e, head)), report)
                if connection is None:
                    continue
            if not batch:
                batch = vote_messages(key, chain.chain_id, head["height"] + 1, min(chunk, votes - report.sent),
                                      start=report.sent)
                await asyncio.sleep(0)
            if await connection.send(batch[-1]):
                batch.pop()
                report.sent += 1
    finally:
        await _finish(connection, report, started)
    return report


async def observe(addr: str, chain: Chain, seconds: float, watch_key_prefix: str | None = None,
                  watch: Callable[[p2p_pb2.Envelope], None] | None = None) -> Report:
    """Stay connected to `addr` for `seconds`, counting what it sends (and votes by a key starting with the hex prefix)."""
    report = Report("observer")
    counted = {"votes_by_key": 0, "announced": set()}

    def on_message(connection: Connection, envelope: p2p_pb2.Envelope) -> None:
        signer = vote_signer(envelope)
        if signer is not None and watch_key_prefix and signer.hex().startswith(watch_key_prefix):
            counted["votes_by_key"] += 1
        if watch is not None:
            watch(envelope)

    started = time.monotonic()
    connection = Connection(addr, chain, on_message=on_message)
    try:
        await connection.open()
        report.connections = 1
        await connection.wait_closed(seconds)
    except Refused as refusal:
        report.refused(refusal)
    finally:
        report.ended(connection)
        await connection.close()
        report.seconds = time.monotonic() - started
    report.extra["votes_by_key"] = counted["votes_by_key"]
    return report


async def lying_status(addr: str, chain: Chain, claimed_height: int, seconds: float, interval_s: float = 0.5,
                       answer_empty: bool = False) -> Report:
    """Claim `claimed_height` in a Status every `interval_s`; block requests get nothing (or, with answer_empty,
    a BlocksResponse with no blocks). Reconnects with a fresh node key when dropped."""
    loopback(addr)
    report = Report("lying status")
    report.extra["blocks_requests"] = 0

    def on_message(connection: Connection, envelope: p2p_pb2.Envelope) -> None:
        if envelope.WhichOneof("message") == "blocks_request":
            report.extra["blocks_requests"] += 1
            if answer_empty:
                connection.outbox.append(encode(p2p_pb2.Envelope(blocks_response=p2p_pb2.BlocksResponse())))

    started = time.monotonic()
    deadline = started + seconds
    connection = None
    try:
        while time.monotonic() < deadline:
            if connection is None or not connection.is_open:
                connection = await _reconnect(connection, lambda: Connection(addr, chain, height=claimed_height, on_message=on_message), report)
                if connection is None:
                    continue
            while connection.outbox:
                await connection.send(connection.outbox.pop())
            if await connection.send(status_message(claimed_height)):
                report.sent += 1
            await asyncio.sleep(interval_s)
    finally:
        await _finish(connection, report, started)
    return report


async def strangers(addrs: list[str], chain: Chain, per_node: int, seconds: float) -> Report:
    """Hold up to `per_node` authenticated connections (each a fresh node key) to every address for `seconds`.

    A refused or dropped connection is dialed again (a new key) after a short wait. The report's
    extra["held"] is the most connections held at once per address."""
    for addr in addrs:
        loopback(addr)
    report = Report("strangers")
    held = {addr: 0 for addr in addrs}
    most = {addr: 0 for addr in addrs}
    started = time.monotonic()
    deadline = started + seconds

    async def one(addr: str) -> None:
        while time.monotonic() < deadline:
            connection = Connection(addr, chain)
            try:
                await connection.open()
            except Refused as refusal:
                report.refused(refusal)
                await asyncio.sleep(RECONNECT_WAIT_S)
                continue
            report.connections += 1
            held[addr] += 1
            most[addr] = max(most[addr], held[addr])
            try:
                await connection.wait_closed(max(0.0, deadline - time.monotonic()))
            finally:
                held[addr] -= 1
                report.ended(connection)
                await connection.close()
            await asyncio.sleep(RECONNECT_WAIT_S)

    try:
        await asyncio.gather(*(one(addr) for addr in addrs for _ in range(per_node)))
    finally:
        report.seconds = time.monotonic() - started
        report.extra["held"] = {addr: most[addr] for addr in addrs}
    return report


async def half_open(addrs: list[str], per_node: int, seconds: float) -> Report:
    """Keep `per_node` Connect streams open to every address that never send a Hello, reopened when ended."""
    for addr in addrs:
        loopback(addr)
    report = Report("half-open streams")
    started = time.monotonic()
    deadline = started + seconds

    async def one(addr: str) -> None:
        while time.monotonic() < deadline:
            channel = grpc.aio.insecure_channel(addr, options=_channel_options())
            call = channel.stream_stream(wire.CONNECT_METHOD)()
            report.connections += 1
            try:
                await asyncio.wait_for(call.read(), max(0.01, deadline - time.monotonic()))
                code = await call.code()
                key = code.name if code else "EOF"
            except grpc.aio.AioRpcError as error:
                key = error.code().name
            except asyncio.TimeoutError:
                key = "held to the end"
            finally:
                call.cancel()
                await channel.close()
            report.endings[key] = report.endings.get(key, 0) + 1
            await asyncio.sleep(0.05)

    try:
        await asyncio.gather(*(one(addr) for addr in addrs for _ in range(per_node)))
    finally:
        report.seconds = time.monotonic() - started
    return report


async def announce_flood(addr: str, chain: Chain, seconds: float, hashes_per_message: int = 4096,
                         max_hashes: int = 10_000_000) -> Report:
    """Announce random transaction hashes (that nobody has) to `addr` for `seconds`; never answer a TxRequest."""
    loopback(addr)
    report = Report("announce flood")
    report.extra["hashes_requested"] = 0

    def on_message(connection: Connection, envelope: p2p_pb2.Envelope) -> None:
        if envelope.WhichOneof("message") == "tx_request":
            report.extra["hashes_requested"] += len(envelope.tx_request.hashes)

    started = time.monotonic()
    deadline = started + seconds
    connection = None
    try:
        while time.monotonic() < deadline and report.sent < max_hashes:
            if connection is None or not connection.is_open:
                connection = await _reconnect(connection, lambda: Connection(addr, chain, on_message=on_message), report)
                if connection is None:
                    continue
            hashes = [secrets.token_bytes(32) for _ in range(hashes_per_message)]
            if await connection.send(encode(p2p_pb2.Envelope(tx_announce=p2p_pb2.TxAnnounce(hashes=hashes)))):
                report.sent += len(hashes)
            await asyncio.sleep(0.02)
    finally:
        await _finish(connection, report, started)
    return report


# --- the gRPC API -----------------------------------------------------------------------------------------


def oversized_requests(rpc_target: str, count: int, size_mib: int, concurrency: int, seconds: float) -> Report:
    """`count` SubmitTransaction requests of `size_mib` MiB each to the node's API, `concurrency` at once.

    Blocking (threads, not the Lab): the node's answer codes are in report.endings."""
    loopback(rpc_target)
    report = Report("oversized requests")
    size = size_mib * 1024 * 1024
    payload = node_pb2.SubmitTransactionRequest(transaction=b"\x00" * size).SerializeToString()
    service = node_pb2.DESCRIPTOR.services_by_name["Node"].full_name
    method = f"/{service}/SubmitTransaction"
    options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", 4 * 1024 * 1024),
               ("grpc.use_local_subchannel_pool", 1)]
    lock = threading.Lock()
    started = time.monotonic()
    deadline = started + seconds
    issued = [0]

    def worker() -> None:
        with grpc.insecure_channel(rpc_target, options=options) as channel:
            call = channel.unary_unary(method)
            while time.monotonic() < deadline:
                with lock:
                    if issued[0] >= count:
                        return
                    issued[0] += 1
                try:
                    call(payload, timeout=max(1.0, deadline - time.monotonic()))
                    key = "OK"
                except grpc.RpcError as error:
                    key = error.code().name
                with lock:
                    report.sent += 1
                    report.endings[key] = report.endings.get(key, 0) + 1

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 30)
    report.connections = concurrency
    report.seconds = time.monotonic() - started
    return report
