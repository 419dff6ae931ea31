"""What a devnet is on disk: validator keys, the genesis derived from a template, addresses, devnet.json.

    BASE_DIR/genesis.json              the devnet's genesis (derived once, then kept)
    BASE_DIR/devnet.json               the nodes as last started: name, pid, rpc, p2p, prometheus, base_path;
                                       the port bases and the control socket
    BASE_DIR/validatorK/key.json       validator K's Ed25519 key (mode 0600), K = 1..N
    BASE_DIR/validatorK/node.log       its node's log
    BASE_DIR/validatorK/chains/...     its database (the node's --base-path is BASE_DIR/validatorK)

Validator K listens on its own loopback address, 127.0.0.(K+1) (on Linux all of 127/8 is
loopback), for p2p, the gRPC API and metrics, each on its kind's base port plus K-1 (defaults:
p2p 30333, API 9944, metrics 9615, so validator2 serves its API on 127.0.0.3:9945). The ports
follow from the bases alone, never from what happens to be free: a port something else holds is
refused, naming it and the option that moves the base. The genesis is the template's (the
checkout's genesis.json) with the same parameters, models and balances, its chain id
`inferchain-devnet`, its time the moment it was derived, and its validators and stakes replaced
by the N validators, each endowed, bonded, validating and offering the embedded model.

Running again with the same BASE_DIR resumes: the genesis and keys are read back, never made
anew, so the chain goes on from the nodes' databases.
"""

from __future__ import annotations

import copy
import errno
import hashlib
import json
import os
import socket
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from chain.genesis import (
    DEV_ENDOWMENT,
    GenesisError,
    dev_genesis_document,
    genesis_hash,
    parse_genesis,
    stake_entry,
    validator_entry,
)
from chain.keys import KeyResolutionError, generate_key_file, load_key_file
from chain.ss58 import encode_address

DEVNET_CHAIN_ID = "inferchain-devnet"
DEFAULT_VALIDATORS = 4
# 127.0.0.2 .. 127.0.0.254 give room for 253; more than a few dozen nodes is not what one machine is for.
MAX_VALIDATORS = 64
# The base ports: validator K (1-based) listens on base + K - 1 of each kind, the node's own defaults first.
P2P_PORT = 30333
RPC_PORT = 9944
PROMETHEUS_PORT = 9615
# (kind, the devnet option that moves its base, what listens there)
PORT_KINDS = (
    ("p2p", "--p2p-port", "p2p"),
    ("rpc", "--rpc-port", "gRPC API"),
    ("prometheus", "--prometheus-port", "metrics"),
)

GENESIS_FILE = "genesis.json"
RECORD_FILE = "devnet.json"
KEY_FILE = "key.json"
LOG_FILE = "node.log"
CONTROL_FILE = "control.sock"
# sockaddr_un holds 108 bytes on Linux, 104 on macOS, the terminating NUL included.
MAX_SOCKET_PATH_BYTES = 100
# devnet.json and the genesis are ours and small; anything larger is not worth reading.
MAX_RECORD_BYTES = 1024 * 1024
MAX_GENESIS_BYTES = 16 * 1024 * 1024
# The checkout's genesis.json, the template (dev_genesis_document, its equal, where there is no checkout).
TEMPLATE_PATH = Path(__file__).resolve().parent.parent.parent / "genesis.json"


class DevnetError(Exception):
    """The devnet cannot start or go on; the message says why and what to do."""


class LayoutError(DevnetError):
    """BASE_DIR cannot hold this devnet: another one's, not a devnet's, or damaged."""


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def parse(cls, text: str) -> "Address":
        host, _, port = str(text).rpartition(":")
        if not host or not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"not HOST:PORT: {text[:60]!r}")
        return cls(host, int(port))


@dataclass(frozen=True)
class Validator:
    """One validator of the devnet: its name, key, loopback host and directories."""

    index: int  # 0-based; the name and host count from 1 and 2
    name: str
    host: str
    account: bytes
    base_path: Path

    @property
    def address(self) -> str:
        return encode_address(self.account)

    @property
    def key_path(self) -> Path:
        return self.base_path / KEY_FILE

    @property
    def log_path(self) -> Path:
        return self.base_path / LOG_FILE


@dataclass(frozen=True)
class NodeAddresses:
    """Where one node listens."""

    p2p: Address
    rpc: Address
    prometheus: Address


@dataclass(frozen=True)
class Layout:
    """A devnet on disk: its directory, genesis and validators."""

    base_dir: Path
    chain_id: str
    genesis_hash: bytes
    validators: tuple[Validator, ...]

    @property
    def genesis_path(self) -> Path:
        return self.base_dir / GENESIS_FILE

    @property
    def record_path(self) -> Path:
        return self.base_dir / RECORD_FILE


# --- names and addresses ----------------------------------------------------------------


def validator_name(index: int) -> str:
    """validator1 for index 0."""
    return f"validator{index + 1}"


def validator_host(index: int) -> str:
    """127.0.0.2 for index 0: each validator has a loopback address of its own."""
    return f"127.0.0.{index + 2}"


def check_validator_count(count: int) -> None:
    if not 1 <= count <= MAX_VALIDATORS:
        raise DevnetError(f"--validators must be between 1 and {MAX_VALIDATORS}, got {count}")


# --- the genesis ----------------------------------------------------------------------


def template_document(path: Path | None = None) -> dict:
    """The genesis a devnet is derived from: `path`, else the checkout's genesis.json, else the dev genesis."""
    if path is None and not TEMPLATE_PATH.is_file():
        return dev_genesis_document()
    path = path or TEMPLATE_PATH
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise LayoutError(f"cannot read the template genesis {path}: {getattr(error, 'strerror', None) or error}") from None
    try:
        parse_genesis(document)
    except GenesisError as error:
        raise LayoutError(f"the template genesis {path} is invalid: {error}") from None
    return document


def derive_genesis(
    template: dict,
    validators: Sequence[tuple[str, bytes]],
    *,
    genesis_time: str,
    chain_id: str = DEVNET_CHAIN_ID,
    endowment: int = DEV_ENDOWMENT,
    extra_balances: Iterable[tuple[bytes, int]] = (),
) -> dict:
    """The template with its chain id and time replaced, and `validators` (name, public key) as the only
    validators and stakes: each endowed, bonded, validating and offering the embedded model.

    Parameters, models and balances are the template's; an account already endowed keeps its
    balance, so the dev accounts can post jobs and pay fees on the devnet too.
    """
    document = copy.deepcopy(template)
    document["chain_id"] = chain_id
    document["genesis_time"] = genesis_time
    document["validators"] = [validator_entry(name, account) for name, account in validators]
    app_state = document["app_state"]
    balances = app_state.setdefault("balances", {}).setdefault("balances", [])
    endowed = {entry.get("address") for entry in balances}
    for name, account in validators:
        if encode_address(account) not in endowed:
            balances.append({"name": name, "address": encode_address(account), "amount": str(endowment)})
            endowed.add(encode_address(account))
    for account, amount in extra_balances:
        if encode_address(account) in endowed:
            raise LayoutError(f"account {encode_address(account)} is endowed twice")
        balances.append({"address": encode_address(account), "amount": str(amount)})
        endowed.add(encode_address(account))
    app_state.setdefault("staking", {})["stakes"] = [stake_entry(name, account) for name, account in validators]
    return document


def genesis_time_now() -> str:
    """Now, to the second, as genesis.json writes times (RFC 3339, UTC)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- creating or resuming ------------------------------------------------------------------


def prepare(
    base_dir: Path,
    validators: int | None = None,
    *,
    template: dict | None = None,
    extra_balances: Iterable[tuple[bytes, int]] = (),
) -> Layout:
    """The devnet in `base_dir`: resumed when it holds one, else created with `validators` (default 4).

    A devnet is resumed as it is: asking for another validator count than it has is refused.
    """
    base_dir = Path(base_dir).expanduser().absolute()
    if base_dir.exists() and not base_dir.is_dir():
        raise LayoutError(f"{base_dir} is a file, not a directory (--base-dir)")
    if (base_dir / GENESIS_FILE).exists():
        return resume(base_dir, validators)
    count = DEFAULT_VALIDATORS if validators is None else validators
    check_validator_count(count)
    return create(base_dir, count, template if template is not None else template_document(), extra_balances)


def resume(base_dir: Path, validators: int | None = None) -> Layout:
    """The devnet already in `base_dir`: its genesis and each validator's key, checked against each other."""
    genesis_path = base_dir / GENESIS_FILE
    try:
        if genesis_path.stat().st_size > MAX_GENESIS_BYTES:
            raise GenesisError(f"larger than {MAX_GENESIS_BYTES // (1024 * 1024)} MiB")
        document = json.loads(genesis_path.read_text(encoding="utf-8"))
        genesis = parse_genesis(document)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, GenesisError) as error:
        raise LayoutError(
            f"{genesis_path} cannot be read ({getattr(error, 'strerror', None) or error}); "
            f"remove {base_dir} to start a new devnet"
        ) from None
    count = len(genesis.validators)
    if validators is not None and validators != count:
        raise LayoutError(
            f"{base_dir} holds a devnet of {count} validator{'s' if count != 1 else ''}, not {validators}: "
            f"run with --validators {count} to resume it, or choose another --base-dir (or remove {base_dir} "
            "to start over)"
        )
    members = []
    for index, entry in enumerate(genesis.validators):
        name = entry.name or validator_name(index)
        validator = Validator(index, name, validator_host(index), entry.public_key, base_dir / name)
        _check_key(validator)
        members.append(validator)
    return Layout(base_dir, genesis.chain_id, genesis.hash, tuple(members))


def _check_key(validator: Validator) -> None:
    try:
        keypair = load_key_file(validator.key_path)
    except KeyResolutionError as error:
        raise LayoutError(f"{validator.name}'s key cannot be used: {error}; the devnet cannot resume without it") from None
    if keypair.public_key != validator.account:
        raise LayoutError(
            f"{validator.key_path} holds {keypair.address}, but the devnet's genesis names {validator.address} "
            f"for {validator.name}; put the right key back or start a new devnet in another --base-dir"
        )


def create(base_dir: Path, count: int, template: dict, extra_balances: Iterable[tuple[bytes, int]] = ()) -> Layout:
    """Keys for `count` validators (kept where an interrupted start left them), then the genesis, written last."""
    _check_fresh(base_dir)
    base_dir.mkdir(parents=True, exist_ok=True)
    members = []
    for index in range(count):
        name = validator_name(index)
        path = base_dir / name
        path.mkdir(exist_ok=True)
        members.append(Validator(index, name, validator_host(index), _key(path / KEY_FILE), path))
    document = derive_genesis(
        template, [(member.name, member.account) for member in members],
        genesis_time=genesis_time_now(), extra_balances=extra_balances,
    )
    try:
        parse_genesis(document)
    except GenesisError as error:
        raise LayoutError(f"the derived genesis is invalid: {error}") from None
    # Written last and whole: a directory with a genesis.json is a devnet that can resume.
    write_atomically(base_dir / GENESIS_FILE, json.dumps(document, indent=2).encode() + b"\n")
    return Layout(base_dir, document["chain_id"], genesis_hash(document), tuple(members))


def _check_fresh(base_dir: Path) -> None:
    """Refuse a directory that holds anything but what an interrupted devnet start leaves."""
    if not base_dir.exists():
        return
    ours = {RECORD_FILE, GENESIS_FILE + ".tmp", RECORD_FILE + ".tmp"}
    strangers = sorted(
        entry.name for entry in base_dir.iterdir()
        if entry.name not in ours and not (entry.is_dir() and entry.name.startswith("validator"))
    )
    if strangers:
        raise LayoutError(
            f"{base_dir} is not empty and holds no devnet ({GENESIS_FILE} is missing; found {strangers[0]!r}); "
            "choose another --base-dir"
        )


def _key(path: Path) -> bytes:
    """The public key of the key file at `path`, generated when there is none."""
    try:
        if path.exists():
            return load_key_file(path).public_key
        return generate_key_file(str(path))[1].public_key
    except KeyResolutionError as error:
        raise LayoutError(str(error)) from None


def write_atomically(path: Path, content: bytes) -> None:
    """Write to a temporary file, then rename over `path`: readers see the old file or the new, whole."""
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


# --- ports ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PortBases:
    """The first port of each kind: validator K (1-based) listens on base + K - 1."""

    p2p: int = P2P_PORT
    rpc: int = RPC_PORT
    prometheus: int = PROMETHEUS_PORT

    def port(self, kind: str, index: int) -> int:
        """The `kind` port of the validator with 0-based `index`."""
        return getattr(self, kind) + index


def check_port_bases(bases: PortBases, count: int) -> None:
    """Refuse bases whose ranges leave 1..65535 or overlap each other (all kinds share each host)."""
    ranges = []
    for kind, option, _ in PORT_KINDS:
        first = getattr(bases, kind)
        last = first + count - 1
        if not 1 <= first or last > 65535:
            raise DevnetError(f"{option} {first} does not fit {count} validator{'s' if count != 1 else ''}: "
                              f"ports {first} to {last} must lie within 1 to 65535")
        ranges.append((first, last, option))
    for position, (first, last, option) in enumerate(ranges):
        for other_first, other_last, other_option in ranges[position + 1:]:
            if first <= other_last and other_first <= last:
                raise DevnetError(f"{option} {first} and {other_option} {other_first} overlap: with {count} "
                                  f"validators they take ports {first}-{last} and {other_first}-{other_last}")


def port_is_free(host: str, port: int) -> bool:
    """True when a listener could bind `host:port` now; LayoutError when `host` is not an address here.

    The probe sets SO_REUSEADDR as the node's listeners do (gRPC, the metrics server): without it,
    the connections a just-stopped node left in TIME_WAIT made its own port look taken for a
    minute, and a resumed devnet moved some APIs to the next port (9945, 9945, 9945, 9944)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRNOTAVAIL:
                raise LayoutError(
                    f"cannot bind {host}: this system does not treat all of 127.0.0.0/8 as loopback "
                    f"(on macOS: sudo ifconfig lo0 alias {host})"
                ) from None
            return False
    return True


def node_addresses(layout: Layout, bases: PortBases = PortBases()) -> dict[str, NodeAddresses]:
    """Each validator's addresses: its own loopback host, each port its kind's base plus its index."""
    return {
        validator.name: NodeAddresses(**{
            kind: Address(validator.host, bases.port(kind, validator.index)) for kind, _, _ in PORT_KINDS
        })
        for validator in layout.validators
    }


def choose_addresses(layout: Layout, bases: PortBases = PortBases(), is_free=port_is_free) -> dict[str, NodeAddresses]:
    """`node_addresses`, once every port is checked free; DevnetError naming the first taken one and the way out."""
    check_port_bases(bases, len(layout.validators))
    addresses = node_addresses(layout, bases)
    for validator in layout.validators:
        for kind, option, what in PORT_KINDS:
            address = getattr(addresses[validator.name], kind)
            if not is_free(address.host, address.port):
                raise DevnetError(
                    f"{address} ({validator.name}'s {what}) is in use by another program (`ss -ltnp` names it); "
                    f"stop it, or move every validator's {what} with {option} BASE (validator K gets BASE+K-1; "
                    f"now {getattr(bases, kind)})"
                )
    return addresses


# --- devnet.json -------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedNode:
    """One node as devnet.json last recorded it."""

    name: str
    pid: int | None
    addresses: NodeAddresses | None


def record_document(layout: Layout, addresses: Mapping[str, NodeAddresses], pids: Mapping[str, int | None]) -> dict:
    """devnet.json: the chain, its genesis file, port bases, control socket, and each node's name, pid, addresses, directories."""
    first = addresses[layout.validators[0].name]
    return {
        "chain_id": layout.chain_id,
        "genesis": str(layout.genesis_path),
        "genesis_hash": layout.genesis_hash.hex(),
        "ports": {kind: getattr(first, kind).port for kind, _, _ in PORT_KINDS},
        "control": str(control_socket_path(layout.base_dir)),
        "nodes": [
            {
                "name": validator.name,
                "pid": pids.get(validator.name),
                "rpc": str(addresses[validator.name].rpc),
                "p2p": str(addresses[validator.name].p2p),
                "prometheus": str(addresses[validator.name].prometheus),
                "base_path": str(validator.base_path),
                "key": str(validator.key_path),
                "address": validator.address,
                "log": str(validator.log_path),
            }
            for validator in layout.validators
        ],
    }


def write_record(layout: Layout, addresses: Mapping[str, NodeAddresses], pids: Mapping[str, int | None]) -> None:
    write_atomically(layout.record_path, json.dumps(record_document(layout, addresses, pids), indent=2).encode() + b"\n")


def read_record(layout: Layout) -> list[RecordedNode]:
    """The nodes devnet.json lists; none when it is missing or unreadable (it is only a record: rewritten at start)."""
    path = layout.record_path
    try:
        if path.stat().st_size > MAX_RECORD_BYTES:
            return []
        document = json.loads(path.read_text(encoding="utf-8"))
        entries = document["nodes"]
        return [_recorded_node(entry) for entry in entries if isinstance(entry, dict)]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        return []


def read_port_bases(layout: Layout) -> PortBases | None:
    """The port bases devnet.json records (a resumed devnet keeps them); None when it records none."""
    try:
        if layout.record_path.stat().st_size > MAX_RECORD_BYTES:
            return None
        ports = json.loads(layout.record_path.read_text(encoding="utf-8"))["ports"]
        values = {kind: ports[kind] for kind, _, _ in PORT_KINDS}
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        return None
    if not all(isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536 for value in values.values()):
        return None
    return PortBases(**values)


def control_socket_path(base_dir: Path) -> Path:
    """Where the running devnet takes commands: BASE_DIR/control.sock, or a short path when that one is too long.

    A Unix socket's path is limited to 107 bytes (Linux; 103 on macOS); a deeper BASE_DIR gets a
    socket in a per-user directory of /tmp, named after a hash of BASE_DIR so it is found again."""
    path = Path(base_dir) / CONTROL_FILE
    if len(os.fsencode(str(path))) <= MAX_SOCKET_PATH_BYTES:
        return path
    digest = hashlib.sha256(os.fsencode(str(base_dir))).hexdigest()[:20]
    return Path(tempfile.gettempdir()) / f"inferchain-{os.getuid()}" / f"devnet-{digest}.sock"


def _recorded_node(entry: dict) -> RecordedNode:
    pid = entry.get("pid")
    pid = pid if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0 else None
    try:
        addresses = NodeAddresses(
            Address.parse(entry["p2p"]), Address.parse(entry["rpc"]), Address.parse(entry["prometheus"])
        )
    except (KeyError, ValueError):
        addresses = None
    return RecordedNode(str(entry.get("name", "")), pid, addresses)


def running_nodes(layout: Layout, recorded: Sequence[RecordedNode]) -> list[RecordedNode]:
    """The recorded nodes whose process still runs this devnet's node; other pids are stale (a crash, a reboot)."""
    paths = {validator.name: str(validator.base_path) for validator in layout.validators}
    return [node for node in recorded if node.pid is not None and _is_node_of(node.pid, paths.get(node.name))]


def _is_node_of(pid: int, base_path: str | None) -> bool:
    """Whether process `pid` is `inferchain node` with this base path (a reused pid belongs to something else)."""
    if base_path is None:
        return False
    try:
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"node" in arguments and os.fsencode(base_path) in arguments

