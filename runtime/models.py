"""models: the registry of models jobs may name, extended by a stake-weighted vote.

A model is known by its content id (blake2b-256 of the GGUF file) with its name, context length,
the tokens that end generation, and the verifier's thresholds as integers with the engine they
were calibrated with (DESIGN.md section 3). Genesis registers the first models; `ProposeModel`
opens a vote of `voting_period_blocks`, `VoteModel` casts the voter's bonded stake, and at the
end the model is registered when the stake that voted reaches the quorum and more than 2/3 of it
approved. The proposer's deposit is returned either way.

Shape: params, storage keys, errors, events, storage access, calls, hooks, genesis, declaration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from google.protobuf.json_format import MessageToDict, ParseDict, ParseError

from proto import state_pb2, types_pb2
from proto.thresholds import threshold_problem
from runtime import balances, staking, system
from runtime.arithmetic import PPM
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
# A miss slack is also how far past the top-k or top-p boundary a token may lie and not count as a
# rival: a slack of many logits would leave a verifier no rivals to judge by.
MAX_END_TOKENS = 16
MAX_VOTERS = 10_000
MAX_GENESIS_MODELS = 256
MAX_CONTEXT_LENGTH = 1 << 20

# --- params -------------------------------------------------------------------


@dataclass(frozen=True)
class Params:
    """Governance of the registry (proto ModelsParams documents each field)."""

    voting_period_blocks: int = 100
    quorum_ppm: int = 334_000
    max_open_proposals: int = 8
    proposal_deposit: int = 10**16

    def validate(self) -> None:
        if self.voting_period_blocks < 1:
            raise ValueError("models.params.voting_period_blocks must be at least 1")
        if not 0 < self.quorum_ppm <= PPM:
            raise ValueError("models.params.quorum_ppm must be in (0, 1000000]")
        if self.max_open_proposals < 1:
            raise ValueError("models.params.max_open_proposals must be at least 1")


PARAMS_KEY = b"models/params"
PARAMS = ParamsSpec(Params, state_pb2.ModelsParams, PARAMS_KEY)

# --- storage keys ---------------------------------------------------------------

MODEL_PREFIX = b"models/model/"  # + model id -> types.ModelInfo
PROPOSAL_PREFIX = b"models/proposal/"  # + model id -> ModelProposal
OPEN_KEY = b"models/open"  # the open proposals' ids, 32 bytes each, sorted


def read_params(state: StateReader) -> Params:
    return decode_params(PARAMS, state.get(PARAMS_KEY))


# --- errors ---------------------------------------------------------------------


class ModelsError(DispatchError):
    module = MODULE


class InvalidModel(ModelsError):
    """The model description breaks the rules (id size, name, context length, thresholds)."""


class AlreadyRegistered(ModelsError):
    """The model is registered already."""


class AlreadyProposed(ModelsError):
    """A vote on this model is open already."""


class TooManyProposals(ModelsError):
    """models.params.max_open_proposals votes are open; wait for one to end."""


class InsufficientBalance(ModelsError):
    """The free balance does not cover the proposal deposit."""


class NoProposal(ModelsError):
    """No vote on this model is open."""


class NoStake(ModelsError):
    """Only accounts with bonded stake vote."""


class TooManyVoters(ModelsError):
    """The proposal has the most voters it can hold."""


ERRORS = (InvalidModel, AlreadyRegistered, AlreadyProposed, TooManyProposals, InsufficientBalance, NoProposal,
          NoStake, TooManyVoters)

# --- events ---------------------------------------------------------------------

MODEL_PROPOSED = "ModelProposed"
MODEL_VOTED = "ModelVoted"
MODEL_ACCEPTED = "ModelAccepted"
MODEL_REJECTED = "ModelRejected"

EVENTS = (
    EventSpec(
        MODEL_PROPOSED,
        "A vote on registering a model opened; it ends at end_height.",
        {"model": HASH, "name": TEXT, "proposer": ACCOUNT, "end_height": INTEGER},
    ),
    EventSpec(MODEL_VOTED, "A bonded account voted on a proposal.", {"model": HASH, "voter": ACCOUNT, "approve": BOOLEAN}),
    EventSpec(
        MODEL_ACCEPTED,
        "A proposal passed; the model is registered.",
        {"model": HASH, "approved": AMOUNT, "voted": AMOUNT, "bonded": AMOUNT},
    ),
    EventSpec(
        MODEL_REJECTED,
        "A proposal ended without the quorum or without more than 2/3 approving.",
        {"model": HASH, "approved": AMOUNT, "voted": AMOUNT, "bonded": AMOUNT},
    ),
)


def _event(event_name: str, **attributes: object) -> types_pb2.Event:
    return make_event(MODULE, event_name, **attributes)


# --- storage access -------------------------------------------------------------


def read_model(state: StateReader, model_id: bytes) -> types_pb2.ModelInfo | None:
    raw = state.get(MODEL_PREFIX + model_id)
    return None if raw is None else types_pb2.ModelInfo.FromString(raw)


def read_proposal(state: StateReader, model_id: bytes) -> state_pb2.ModelProposal | None:
    raw = state.get(PROPOSAL_PREFIX + model_id)
    return None if raw is None else state_pb2.ModelProposal.FromString(raw)


def open_proposals(state: StateReader) -> list[bytes]:
    raw = state.get(OPEN_KEY) or b""
    return [raw[index:index + 32] for index in range(0, len(raw), 32)]


def _write_open(state: Overlay, ids: list[bytes]) -> None:
    state.set(OPEN_KEY, b"".join(sorted(ids)))


def _register(state: Overlay, model: types_pb2.ModelInfo) -> None:
    state.set(MODEL_PREFIX + model.id, model.SerializeToString(deterministic=True))


# --- calls ----------------------------------------------------------------------


def check_model(model: types_pb2.ModelInfo, error: type[Exception] = InvalidModel) -> None:
    """What makes a model description invalid whatever the state."""
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
    thresholds = model.thresholds
    problem = threshold_problem(**{field.name: getattr(thresholds, field.name) for field in thresholds.DESCRIPTOR.fields})
    if problem is not None:
        raise error(f"thresholds: {problem}")


def _check_propose(call: types_pb2.ProposeModel) -> None:
    check_model(call.model)


def proposal_cost(state: StateReader, call: types_pb2.ProposeModel) -> int:
    """What a proposal spends from the free balance: the deposit it reserves until the vote ends."""
    return read_params(state).proposal_deposit


def propose_model(state: Overlay, context: CallContext, call: types_pb2.ProposeModel) -> None:
    """Open a vote on registering `call.model`, reserving the proposal deposit."""
    origin = context.origin
    model = call.model
    check_model(model)
    if read_model(state, model.id) is not None:
        raise AlreadyRegistered(f"model {model.id.hex()} is registered already")
    if read_proposal(state, model.id) is not None:
        raise AlreadyProposed(f"a vote on model {model.id.hex()} is open already")
    params = read_params(state)
    open_ids = open_proposals(state)
    if len(open_ids) >= params.max_open_proposals:
        raise TooManyProposals(f"{len(open_ids)} votes are open (the limit); wait for one to end")
    balances.reserve(state, origin, params.proposal_deposit, InsufficientBalance)
    end = system.read_chain(state).height + params.voting_period_blocks
    proposal = state_pb2.ModelProposal(model=model, proposer=origin, deposit=params.proposal_deposit, end_height=end)
    state.set(PROPOSAL_PREFIX + model.id, proposal.SerializeToString(deterministic=True))
    _write_open(state, open_ids + [model.id])
    state.deposit_event(_event(MODEL_PROPOSED, model=model.id.hex(), name=model.name, proposer=origin.hex(), end_height=end))


def _check_vote(call: types_pb2.VoteModel) -> None:
    if len(call.model) != 32:
        raise InvalidModel(f"a model id is 32 bytes, got {len(call.model)}")


def vote_model(state: Overlay, context: CallContext, call: types_pb2.VoteModel) -> None:
    """Vote with the sender's bonded stake (counted at the end of the vote); a new vote replaces the old."""
    origin = context.origin
    _check_vote(call)
    proposal = read_proposal(state, call.model)
    if proposal is None:
        raise NoProposal(f"no vote on model {call.model.hex()} is open")
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
    state.set(PROPOSAL_PREFIX + call.model, proposal.SerializeToString(deterministic=True))
    state.deposit_event(_event(MODEL_VOTED, model=call.model.hex(), voter=origin.hex(), approve=str(call.approve).lower()))


CALLS = (
    CallSpec(
        name="propose_model",
        message=types_pb2.ProposeModel,
        doc="Propose a model for the registry (a stake-weighted vote decides).",
        handler=propose_model,
        cost=proposal_cost,
        check=_check_propose,
    ),
    CallSpec(
        name="vote_model",
        message=types_pb2.VoteModel,
        doc="Vote on an open model proposal with your bonded stake.",
        handler=vote_model,
        check=_check_vote,
        fields={"model": HASH, "approve": BOOLEAN},
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
    if request.after:
        require_id(request.after, "after")
    page = state_pb2.ModelList()
    for key, value in state.iter_prefix(MODEL_PREFIX):
        if key[len(MODEL_PREFIX):] <= request.after:
            continue
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


def on_finalize(state: Overlay, block: BlockContext, fees: int) -> None:
    """Close the votes that end at this height: register or reject, and return the deposits."""
    open_ids = open_proposals(state)
    ending = [model_id for model_id in open_ids if read_proposal(state, model_id).end_height <= block.height]
    if not ending:
        return
    params = read_params(state)
    total_bonded = staking.read_totals(state).bonded
    for model_id in ending:
        proposal = read_proposal(state, model_id)
        voted = approved = 0
        for voter, approve in zip(proposal.voters, proposal.approvals):
            stake = staking.bonded(state, voter)
            voted += stake
            approved += stake if approve else 0
        quorum = voted * PPM >= params.quorum_ppm * total_bonded and voted > 0
        accepted = quorum and approved * 3 > voted * 2
        if accepted and read_model(state, model_id) is None:
            _register(state, proposal.model)
        balances.unreserve(state, proposal.proposer, proposal.deposit)
        state.delete(PROPOSAL_PREFIX + model_id)
        state.deposit_event(
            _event(MODEL_ACCEPTED if accepted else MODEL_REJECTED, model=model_id.hex(), approved=approved,
                   voted=voted, bonded=total_bonded)
        )
    _write_open(state, [model_id for model_id in open_ids if model_id not in ending])


# --- genesis --------------------------------------------------------------------


@dataclass(frozen=True)
class GenesisConfig:
    params: Params
    models: tuple[types_pb2.ModelInfo, ...]


def model_from_json(document: Any, where: str) -> types_pb2.ModelInfo:
    """A ModelInfo from its JSON form: id as 64 hex digits, 64-bit integers as strings or numbers."""
    check_section_keys(document, ("id", "name", "context_length", "end_tokens", "engine", "thresholds"), where)
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
    doc="The model registry and its stake-weighted governance.",
    params=PARAMS,
    genesis=GenesisSpec(parse=parse_genesis, build=genesis, export=export_genesis,
                        default=lambda: GenesisConfig(Params(), ())),
    calls=CALLS,
    events=EVENTS,
    errors=ERRORS,
    on_finalize=on_finalize,
    queries=QUERIES,
)
