"""Open gRPC streams, bounded per node and per client address, and cut off when they stall or outlive their limit.

In grpcio's synchronous server every open response stream holds one worker thread for as long as
it is open. Sixteen block subscriptions once took every worker, and health checks timed out. So
the node admits at most `per_node` such streams (it has UNARY_WORKERS more workers) and `per_client`
from one address, ends each after `max_lifetime_s`, and cancels one whose client stopped
reading: its send then waits on HTTP/2 flow control and never returns on its own.

The places are shared between addresses: with only a per-address cap, four addresses once took all
64 (issue 28). So the last `kept_for_newcomers` places go only to addresses that hold no stream
yet, one each: taking every place takes (64 - 16) / 16 + 16 = 19 addresses, and until then any new
address gets a stream. An IPv6 client is counted by its /64 prefix, which one host commonly holds whole.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterator

import grpc

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamLimits:
    """How many streams the node serves, and for how long."""

    # With UNARY_WORKERS more workers than per_node (chain/node/server.py), unary calls always find one.
    per_node: int = 64
    # Enough for a few local tools each waiting on inclusions; one address cannot take the node's share.
    per_client: int = 16
    # The last places, kept for addresses that hold no stream yet (one each), so that a few addresses
    # cannot take them all: with these defaults, taking every place takes 19 addresses.
    kept_for_newcomers: int = 16
    # A stream ends with DEADLINE_EXCEEDED after this long; a subscriber resubscribes from the
    # height after the last block it received. Reclaims streams whose client vanished while
    # still acknowledging HTTP/2 pings (keep-alive cannot tell those apart from slow readers).
    max_lifetime_s: float = 600.0
    # A stream whose last message has waited this long to be taken by the client is cancelled.
    # A client that stops reading is found only once HTTP/2 flow control stops the sends: about
    # 64 KB to 4 MB after it stopped, depending on the window its transport announced.
    stall_s: float = 30.0
    # How often the watchdog looks for stalled and overdue streams.
    check_interval_s: float = 1.0

    def __post_init__(self) -> None:
        if self.per_node < 1 or self.per_client < 0 or not 0 <= self.kept_for_newcomers < self.per_node:
            raise ValueError(
                f"stream limits need per_node >= 1, per_client >= 0 and 0 <= kept_for_newcomers < per_node, got {self}"
            )


class StreamRefused(Exception):
    """No room for another stream; the message says which limit and what to do."""


def client_address(peer: str) -> str:
    """The client of a gRPC peer string: its IPv4 address, its IPv6 /64 prefix, or one key per other transport."""
    kind, _, address = urllib.parse.unquote(peer).partition(":")
    if kind not in ("ipv4", "ipv6"):
        return kind
    host = address.rsplit(":", 1)[0].strip("[]")
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])  # without an IPv6 zone ("fe80::1%eth0")
    except ValueError:
        return host
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    if ip.version == 6 and not ip.is_loopback:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


@dataclass(eq=False)
class OpenStream:
    """One admitted stream: its client, its context, since when it is open and since when it waits to send."""

    client: str
    method: str
    context: grpc.ServicerContext
    opened_at: float
    sending_since: float | None = field(default=None)


class StreamGate:
    """Admits streams within StreamLimits; a watchdog thread cancels those that stall or overstay."""

    def __init__(self, limits: StreamLimits = StreamLimits(), clock: Callable[[], float] = time.monotonic):
        self.limits = limits
        self.clock = clock
        self._lock = threading.Lock()
        self._open: set[OpenStream] = set()
        self._by_client: Counter[str] = Counter()
        self._stop = threading.Event()
        self._watchdog: threading.Thread | None = None

    # --- admitting and releasing ------------------------------------------------

    def admit(self, method: str, context: grpc.ServicerContext) -> OpenStream:
        """Count a new stream, or StreamRefused when the node, this client or the places left forbid it."""
        client = client_address(context.peer())
        with self._lock:
            self._check_room(client)
            stream = OpenStream(client, method, context, self.clock())
            self._open.add(stream)
            self._by_client[client] += 1
        return stream

    def _check_room(self, client: str) -> None:
        limits = self.limits
        free = limits.per_node - len(self._open)
        held = self._by_client[client]
        if free <= 0:
            raise StreamRefused(
                f"this node serves at most {limits.per_node} block subscriptions (and other streams) "
                "and all are taken; try again later"
            )
        if held >= limits.per_client:
            raise StreamRefused(
                f"at most {limits.per_client} block subscriptions (and other streams) per client address "
                f"({client}); close one first"
            )
        if held > 0 and free <= limits.kept_for_newcomers:
            raise StreamRefused(
                f"only {free} of this node's {limits.per_node} stream places are free, and the last "
                f"{limits.kept_for_newcomers} are kept for client addresses that have none open; this one "
                f"({client}) has {held}: close one first or try again later"
            )

    def release(self, stream: OpenStream) -> None:
        """Forget a stream; releasing twice is harmless."""
        with self._lock:
            self._forget(stream)

    def _forget(self, stream: OpenStream) -> None:
        if stream not in self._open:
            return
        self._open.discard(stream)
        self._by_client[stream.client] -= 1
        if self._by_client[stream.client] <= 0:
            del self._by_client[stream.client]

    def count(self, client: str | None = None) -> int:
        """Open streams, of one client (as client_address names it) or of all."""
        with self._lock:
            return len(self._open) if client is None else self._by_client[client]

    def serve(self, method: str, responses: Callable[[], Iterator], context: grpc.ServicerContext) -> Iterator:
        """Admit a stream and pass `responses()` through, timing each send and ending it at its lifetime."""
        try:
            stream = self.admit(method, context)
        except StreamRefused as refusal:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(refusal))
        context.add_callback(lambda: self.release(stream))
        return self._pass_through(stream, responses())

    def _pass_through(self, stream: OpenStream, responses: Iterator) -> Iterator:
        try:
            for response in responses:
                stream.sending_since = self.clock()
                yield response  # resumed once gRPC has handed the message to the transport
                stream.sending_since = None
                if self._overdue(stream, self.clock()):
                    stream.context.abort(
                        grpc.StatusCode.DEADLINE_EXCEEDED,
                        f"a stream lasts at most {self.limits.max_lifetime_s:g} s; "
                        "subscribe again from the height after the last block received",
                    )
        finally:
            self.release(stream)

    # --- the watchdog ------------------------------------------------------------

    def _overdue(self, stream: OpenStream, now: float) -> bool:
        return now - stream.opened_at >= self.limits.max_lifetime_s

    def _stalled(self, stream: OpenStream, now: float) -> bool:
        since = stream.sending_since
        return since is not None and now - since >= self.limits.stall_s

    def cut_off(self) -> int:
        """Cancel streams stalled in a send, or open a stall period past their lifetime; how many."""
        now = self.clock()
        with self._lock:
            doomed = [
                stream for stream in self._open
                if self._stalled(stream, now) or now - stream.opened_at >= self.limits.max_lifetime_s + self.limits.stall_s
            ]
            for stream in doomed:
                self._forget(stream)
        for stream in doomed:
            log.info("cancelling %s stream of %s: stalled or past its lifetime", stream.method, stream.client)
            stream.context.cancel()
        return len(doomed)

    def start(self) -> None:
        """Run the watchdog in a daemon thread until stop()."""
        self._watchdog = threading.Thread(target=self._watch, name="stream-watchdog", daemon=True)
        self._watchdog.start()

    def stop(self) -> None:
        self._stop.set()
        if self._watchdog is not None:
            self._watchdog.join(timeout=5)

    def _watch(self) -> None:
        while not self._stop.wait(self.limits.check_interval_s):
            self.cut_off()
