"""What the client raises: every failure is a ClientError with a gRPC status code name and a message."""

from __future__ import annotations

import grpc

DEFAULT_TARGET = "127.0.0.1:9944"


class ClientError(Exception):
    """A failed request: `code` is a gRPC status code name, `message` says what was wrong."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class ProofError(ClientError):
    """The node's answer does not match its own proof or header: it cannot be trusted."""

    def __init__(self, message: str):
        super().__init__("DATA_LOSS", message)


class TransactionRejected(ClientError):
    """The node refused or dropped a transaction; `reason` is its explanation."""

    def __init__(self, transaction_hash: bytes, code: str, reason: str):
        super().__init__(code, f"transaction {transaction_hash.hex()} was rejected: {reason}")
        self.transaction_hash = transaction_hash
        self.reason = reason


class InclusionTimeout(ClientError):
    """A transaction was not included within the time given."""

    def __init__(self, transaction_hash: bytes, timeout: float, status: str):
        super().__init__(
            "DEADLINE_EXCEEDED",
            f"transaction {transaction_hash.hex()} was not included within {timeout:g} s (status: {status})",
        )
        self.transaction_hash = transaction_hash


def translate_rpc_error(error: grpc.RpcError, target: str, timeout: float | None) -> ClientError:
    """A ClientError that says what a failed call to the node at `target` means."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details = (error.details() if hasattr(error, "details") else "") or ""
    if code == grpc.StatusCode.UNAVAILABLE:
        return ClientError(code.name, _unavailable_message(target, details))
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        within = "in time" if timeout is None else f"within {timeout:g} s"
        return ClientError(code.name, f"the node at {target} did not answer {within}")
    if code == grpc.StatusCode.UNIMPLEMENTED:
        # A gRPC server without our service, or an HTTP/2 server ("http2 header with status: 404").
        return ClientError(code.name, f"{target} answered, but does not serve this inferchain call "
                                      f"({details}): is it an inferchain node, and one as new as this client?")
    return ClientError(code.name, details or f"the node at {target} answered {code.name}")


def _unavailable_message(target: str, details: str) -> str:
    # gRPC words every failed connection "failed to connect to all addresses; last error: ...":
    # the last error tells nothing listening from something listening that is not a gRPC node.
    lowered = details.lower()
    api_hint = f"the API is on the node's --rpc-port, default {DEFAULT_TARGET.rsplit(':', 1)[1]}"
    if "connection refused" in lowered:
        return f"cannot connect to a node at {target}: connection refused (is `inferchain node` running there?)"
    if "failed to connect to all addresses" in lowered and "http/2" in lowered:
        return (f"{target} answered, but not as an inferchain gRPC node "
                f"(is it the Prometheus port or another HTTP server? {api_hint})")
    if "failed to connect to all addresses" in lowered and ("socket closed" in lowered or "reset by peer" in lowered):
        return f"{target} accepted the connection and closed it without answering gRPC ({api_hint})"
    if "resolving" in lowered or "dns" in lowered:
        return f"cannot connect to a node at {target}: the host name does not resolve"
    return f"the node at {target} is unavailable: {details}"
