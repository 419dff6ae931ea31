"""A node that lies: a stub that passes calls through but rewrites one method's replies."""

from __future__ import annotations

from typing import Callable


class TamperingStub:
    """Wraps a real Node stub; replies of `method` go through `tamper` (which edits them in place)."""

    def __init__(self, stub, method: str, tamper: Callable[[object], None]):
        self._stub = stub
        self._method = method
        self._tamper = tamper

    def __getattr__(self, name):
        real = getattr(self._stub, name)
        if name != self._method:
            return real

        def tampered(request, timeout=None):
            original = real(request, timeout=timeout)
            reply = type(original)()
            reply.CopyFrom(original)
            self._tamper(reply)
            return reply

        return tampered
