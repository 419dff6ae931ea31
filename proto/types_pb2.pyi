from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class VoteType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VOTE_TYPE_UNSPECIFIED: _ClassVar[VoteType]
    VOTE_TYPE_PREVOTE: _ClassVar[VoteType]
    VOTE_TYPE_PRECOMMIT: _ClassVar[VoteType]
VOTE_TYPE_UNSPECIFIED: VoteType
VOTE_TYPE_PREVOTE: VoteType
VOTE_TYPE_PRECOMMIT: VoteType

class Transaction(_message.Message):
    __slots__ = ("body", "signature")
    BODY_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    body: bytes
    signature: bytes
    def __init__(self, body: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class TransactionBody(_message.Message):
    __slots__ = ("chain_id", "genesis_hash", "sender", "nonce", "fee", "transfer", "bond", "unbond", "withdraw_unbonded", "set_offer", "clear_offer", "propose_model", "vote_model", "post_job", "commit_result", "reveal_result", "cancel_job", "amend_model", "remove_model", "challenge", "commit_vote", "reveal_vote", "unjail", "slashing_brake", "seal_probe", "open_probe")
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    GENESIS_HASH_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    FEE_FIELD_NUMBER: _ClassVar[int]
    TRANSFER_FIELD_NUMBER: _ClassVar[int]
    BOND_FIELD_NUMBER: _ClassVar[int]
    UNBOND_FIELD_NUMBER: _ClassVar[int]
    WITHDRAW_UNBONDED_FIELD_NUMBER: _ClassVar[int]
    SET_OFFER_FIELD_NUMBER: _ClassVar[int]
    CLEAR_OFFER_FIELD_NUMBER: _ClassVar[int]
    PROPOSE_MODEL_FIELD_NUMBER: _ClassVar[int]
    VOTE_MODEL_FIELD_NUMBER: _ClassVar[int]
    POST_JOB_FIELD_NUMBER: _ClassVar[int]
    COMMIT_RESULT_FIELD_NUMBER: _ClassVar[int]
    REVEAL_RESULT_FIELD_NUMBER: _ClassVar[int]
    CANCEL_JOB_FIELD_NUMBER: _ClassVar[int]
    AMEND_MODEL_FIELD_NUMBER: _ClassVar[int]
    REMOVE_MODEL_FIELD_NUMBER: _ClassVar[int]
    CHALLENGE_FIELD_NUMBER: _ClassVar[int]
    COMMIT_VOTE_FIELD_NUMBER: _ClassVar[int]
    REVEAL_VOTE_FIELD_NUMBER: _ClassVar[int]
    UNJAIL_FIELD_NUMBER: _ClassVar[int]
    SLASHING_BRAKE_FIELD_NUMBER: _ClassVar[int]
    SEAL_PROBE_FIELD_NUMBER: _ClassVar[int]
    OPEN_PROBE_FIELD_NUMBER: _ClassVar[int]
    chain_id: str
    genesis_hash: bytes
    sender: bytes
    nonce: int
    fee: int
    transfer: Transfer
    bond: Bond
    unbond: Unbond
    withdraw_unbonded: WithdrawUnbonded
    set_offer: SetOffer
    clear_offer: ClearOffer
    propose_model: ProposeModel
    vote_model: VoteModel
    post_job: PostJob
    commit_result: CommitResult
    reveal_result: RevealResult
    cancel_job: CancelJob
    amend_model: AmendModel
    remove_model: RemoveModel
    challenge: Challenge
    commit_vote: CommitVote
    reveal_vote: RevealVote
    unjail: Unjail
    slashing_brake: SlashingBrake
    seal_probe: SealProbe
    open_probe: OpenProbe
    def __init__(self, chain_id: _Optional[str] = ..., genesis_hash: _Optional[bytes] = ..., sender: _Optional[bytes] = ..., nonce: _Optional[int] = ..., fee: _Optional[int] = ..., transfer: _Optional[_Union[Transfer, _Mapping]] = ..., bond: _Optional[_Union[Bond, _Mapping]] = ..., unbond: _Optional[_Union[Unbond, _Mapping]] = ..., withdraw_unbonded: _Optional[_Union[WithdrawUnbonded, _Mapping]] = ..., set_offer: _Optional[_Union[SetOffer, _Mapping]] = ..., clear_offer: _Optional[_Union[ClearOffer, _Mapping]] = ..., propose_model: _Optional[_Union[ProposeModel, _Mapping]] = ..., vote_model: _Optional[_Union[VoteModel, _Mapping]] = ..., post_job: _Optional[_Union[PostJob, _Mapping]] = ..., commit_result: _Optional[_Union[CommitResult, _Mapping]] = ..., reveal_result: _Optional[_Union[RevealResult, _Mapping]] = ..., cancel_job: _Optional[_Union[CancelJob, _Mapping]] = ..., amend_model: _Optional[_Union[AmendModel, _Mapping]] = ..., remove_model: _Optional[_Union[RemoveModel, _Mapping]] = ..., challenge: _Optional[_Union[Challenge, _Mapping]] = ..., commit_vote: _Optional[_Union[CommitVote, _Mapping]] = ..., reveal_vote: _Optional[_Union[RevealVote, _Mapping]] = ..., unjail: _Optional[_Union[Unjail, _Mapping]] = ..., slashing_brake: _Optional[_Union[SlashingBrake, _Mapping]] = ..., seal_probe: _Optional[_Union[SealProbe, _Mapping]] = ..., open_probe: _Optional[_Union[OpenProbe, _Mapping]] = ...) -> None: ...

class Transfer(_message.Message):
    __slots__ = ("dest", "amount")
    DEST_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    dest: bytes
    amount: int
    def __init__(self, dest: _Optional[bytes] = ..., amount: _Optional[int] = ...) -> None: ...

class Bond(_message.Message):
    __slots__ = ("amount", "validate")
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    VALIDATE_FIELD_NUMBER: _ClassVar[int]
    amount: int
    validate: bool
    def __init__(self, amount: _Optional[int] = ..., validate: _Optional[bool] = ...) -> None: ...

class Unbond(_message.Message):
    __slots__ = ("amount",)
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    amount: int
    def __init__(self, amount: _Optional[int] = ...) -> None: ...

class WithdrawUnbonded(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SetOffer(_message.Message):
    __slots__ = ("models", "price_per_token", "region", "capacity", "endpoint", "engine_class")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    PRICE_PER_TOKEN_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    ENGINE_CLASS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedScalarFieldContainer[bytes]
    price_per_token: int
    region: str
    capacity: int
    endpoint: str
    engine_class: str
    def __init__(self, models: _Optional[_Iterable[bytes]] = ..., price_per_token: _Optional[int] = ..., region: _Optional[str] = ..., capacity: _Optional[int] = ..., endpoint: _Optional[str] = ..., engine_class: _Optional[str] = ...) -> None: ...

class ClearOffer(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ProposeModel(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: ModelInfo
    def __init__(self, model: _Optional[_Union[ModelInfo, _Mapping]] = ...) -> None: ...

class AmendModel(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: ModelInfo
    def __init__(self, model: _Optional[_Union[ModelInfo, _Mapping]] = ...) -> None: ...

class RemoveModel(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: bytes
    def __init__(self, model: _Optional[bytes] = ...) -> None: ...

class VoteModel(_message.Message):
    __slots__ = ("model", "approve", "proposal")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    APPROVE_FIELD_NUMBER: _ClassVar[int]
    PROPOSAL_FIELD_NUMBER: _ClassVar[int]
    model: bytes
    approve: bool
    proposal: bytes
    def __init__(self, model: _Optional[bytes] = ..., approve: _Optional[bool] = ..., proposal: _Optional[bytes] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("id", "name", "context_length", "end_tokens", "engine", "thresholds", "source", "size_bytes", "audit_probability_ppm", "engine_classes", "class_pairs")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_LENGTH_FIELD_NUMBER: _ClassVar[int]
    END_TOKENS_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    AUDIT_PROBABILITY_PPM_FIELD_NUMBER: _ClassVar[int]
    ENGINE_CLASSES_FIELD_NUMBER: _ClassVar[int]
    CLASS_PAIRS_FIELD_NUMBER: _ClassVar[int]
    id: bytes
    name: str
    context_length: int
    end_tokens: _containers.RepeatedScalarFieldContainer[int]
    engine: str
    thresholds: ModelThresholds
    source: str
    size_bytes: int
    audit_probability_ppm: int
    engine_classes: _containers.RepeatedCompositeFieldContainer[EngineClass]
    class_pairs: _containers.RepeatedCompositeFieldContainer[ClassPair]
    def __init__(self, id: _Optional[bytes] = ..., name: _Optional[str] = ..., context_length: _Optional[int] = ..., end_tokens: _Optional[_Iterable[int]] = ..., engine: _Optional[str] = ..., thresholds: _Optional[_Union[ModelThresholds, _Mapping]] = ..., source: _Optional[str] = ..., size_bytes: _Optional[int] = ..., audit_probability_ppm: _Optional[int] = ..., engine_classes: _Optional[_Iterable[_Union[EngineClass, _Mapping]]] = ..., class_pairs: _Optional[_Iterable[_Union[ClassPair, _Mapping]]] = ...) -> None: ...

class EngineClass(_message.Message):
    __slots__ = ("name", "engine", "thresholds")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    engine: str
    thresholds: ModelThresholds
    def __init__(self, name: _Optional[str] = ..., engine: _Optional[str] = ..., thresholds: _Optional[_Union[ModelThresholds, _Mapping]] = ...) -> None: ...

class ClassPair(_message.Message):
    __slots__ = ("executor_class", "verifier_class", "thresholds", "detection_ppm")
    EXECUTOR_CLASS_FIELD_NUMBER: _ClassVar[int]
    VERIFIER_CLASS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    DETECTION_PPM_FIELD_NUMBER: _ClassVar[int]
    executor_class: str
    verifier_class: str
    thresholds: ModelThresholds
    detection_ppm: int
    def __init__(self, executor_class: _Optional[str] = ..., verifier_class: _Optional[str] = ..., thresholds: _Optional[_Union[ModelThresholds, _Mapping]] = ..., detection_ppm: _Optional[int] = ...) -> None: ...

class ModelThresholds(_message.Message):
    __slots__ = ("worst_margin_micro", "miss_slack_micro", "miss_rate_ppm", "miss_depth_micro", "false_positive_budget_ppb", "max_logprob_error_micro", "mean_logprob_error_micro")
    WORST_MARGIN_MICRO_FIELD_NUMBER: _ClassVar[int]
    MISS_SLACK_MICRO_FIELD_NUMBER: _ClassVar[int]
    MISS_RATE_PPM_FIELD_NUMBER: _ClassVar[int]
    MISS_DEPTH_MICRO_FIELD_NUMBER: _ClassVar[int]
    FALSE_POSITIVE_BUDGET_PPB_FIELD_NUMBER: _ClassVar[int]
    MAX_LOGPROB_ERROR_MICRO_FIELD_NUMBER: _ClassVar[int]
    MEAN_LOGPROB_ERROR_MICRO_FIELD_NUMBER: _ClassVar[int]
    worst_margin_micro: int
    miss_slack_micro: int
    miss_rate_ppm: int
    miss_depth_micro: int
    false_positive_budget_ppb: int
    max_logprob_error_micro: int
    mean_logprob_error_micro: int
    def __init__(self, worst_margin_micro: _Optional[int] = ..., miss_slack_micro: _Optional[int] = ..., miss_rate_ppm: _Optional[int] = ..., miss_depth_micro: _Optional[int] = ..., false_positive_budget_ppb: _Optional[int] = ..., max_logprob_error_micro: _Optional[int] = ..., mean_logprob_error_micro: _Optional[int] = ...) -> None: ...

class Sampling(_message.Message):
    __slots__ = ("temperature_milli", "top_k", "top_p_ppm", "seed", "seed_only")
    TEMPERATURE_MILLI_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    TOP_P_PPM_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    SEED_ONLY_FIELD_NUMBER: _ClassVar[int]
    temperature_milli: int
    top_k: int
    top_p_ppm: int
    seed: int
    seed_only: bool
    def __init__(self, temperature_milli: _Optional[int] = ..., top_k: _Optional[int] = ..., top_p_ppm: _Optional[int] = ..., seed: _Optional[int] = ..., seed_only: _Optional[bool] = ...) -> None: ...

class PostJob(_message.Message):
    __slots__ = ("model", "prompt", "prompt_format", "max_tokens", "sampling", "max_price_per_token", "redundancy", "region", "engine_classes")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_FIELD_NUMBER: _ClassVar[int]
    MAX_PRICE_PER_TOKEN_FIELD_NUMBER: _ClassVar[int]
    REDUNDANCY_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    ENGINE_CLASSES_FIELD_NUMBER: _ClassVar[int]
    model: bytes
    prompt: str
    prompt_format: str
    max_tokens: int
    sampling: Sampling
    max_price_per_token: int
    redundancy: int
    region: str
    engine_classes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, model: _Optional[bytes] = ..., prompt: _Optional[str] = ..., prompt_format: _Optional[str] = ..., max_tokens: _Optional[int] = ..., sampling: _Optional[_Union[Sampling, _Mapping]] = ..., max_price_per_token: _Optional[int] = ..., redundancy: _Optional[int] = ..., region: _Optional[str] = ..., engine_classes: _Optional[_Iterable[str]] = ...) -> None: ...

class CommitResult(_message.Message):
    __slots__ = ("job_id", "commitment")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    COMMITMENT_FIELD_NUMBER: _ClassVar[int]
    job_id: bytes
    commitment: bytes
    def __init__(self, job_id: _Optional[bytes] = ..., commitment: _Optional[bytes] = ...) -> None: ...

class RevealResult(_message.Message):
    __slots__ = ("job_id", "salt", "prompt_tokens", "tokens", "text", "logprobs_micronats", "stop_reason")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SALT_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    LOGPROBS_MICRONATS_FIELD_NUMBER: _ClassVar[int]
    STOP_REASON_FIELD_NUMBER: _ClassVar[int]
    job_id: bytes
    salt: bytes
    prompt_tokens: int
    tokens: _containers.RepeatedScalarFieldContainer[int]
    text: str
    logprobs_micronats: _containers.RepeatedScalarFieldContainer[int]
    stop_reason: str
    def __init__(self, job_id: _Optional[bytes] = ..., salt: _Optional[bytes] = ..., prompt_tokens: _Optional[int] = ..., tokens: _Optional[_Iterable[int]] = ..., text: _Optional[str] = ..., logprobs_micronats: _Optional[_Iterable[int]] = ..., stop_reason: _Optional[str] = ...) -> None: ...

class Challenge(_message.Message):
    __slots__ = ("job_id", "candidate", "bond")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_FIELD_NUMBER: _ClassVar[int]
    BOND_FIELD_NUMBER: _ClassVar[int]
    job_id: bytes
    candidate: int
    bond: int
    def __init__(self, job_id: _Optional[bytes] = ..., candidate: _Optional[int] = ..., bond: _Optional[int] = ...) -> None: ...

class CandidateVote(_message.Message):
    __slots__ = ("candidate", "valid", "positions", "misses", "worst_margin_micro")
    CANDIDATE_FIELD_NUMBER: _ClassVar[int]
    VALID_FIELD_NUMBER: _ClassVar[int]
    POSITIONS_FIELD_NUMBER: _ClassVar[int]
    MISSES_FIELD_NUMBER: _ClassVar[int]
    WORST_MARGIN_MICRO_FIELD_NUMBER: _ClassVar[int]
    candidate: int
    valid: bool
    positions: int
    misses: int
    worst_margin_micro: int
    def __init__(self, candidate: _Optional[int] = ..., valid: _Optional[bool] = ..., positions: _Optional[int] = ..., misses: _Optional[int] = ..., worst_margin_micro: _Optional[int] = ...) -> None: ...

class CommitVote(_message.Message):
    __slots__ = ("dispute", "commitment")
    DISPUTE_FIELD_NUMBER: _ClassVar[int]
    COMMITMENT_FIELD_NUMBER: _ClassVar[int]
    dispute: bytes
    commitment: bytes
    def __init__(self, dispute: _Optional[bytes] = ..., commitment: _Optional[bytes] = ...) -> None: ...

class RevealVote(_message.Message):
    __slots__ = ("dispute", "salt", "votes")
    DISPUTE_FIELD_NUMBER: _ClassVar[int]
    SALT_FIELD_NUMBER: _ClassVar[int]
    VOTES_FIELD_NUMBER: _ClassVar[int]
    dispute: bytes
    salt: bytes
    votes: _containers.RepeatedCompositeFieldContainer[CandidateVote]
    def __init__(self, dispute: _Optional[bytes] = ..., salt: _Optional[bytes] = ..., votes: _Optional[_Iterable[_Union[CandidateVote, _Mapping]]] = ...) -> None: ...

class SealProbe(_message.Message):
    __slots__ = ("commitment",)
    COMMITMENT_FIELD_NUMBER: _ClassVar[int]
    commitment: bytes
    def __init__(self, commitment: _Optional[bytes] = ...) -> None: ...

class OpenProbe(_message.Message):
    __slots__ = ("job_id", "salt")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SALT_FIELD_NUMBER: _ClassVar[int]
    job_id: bytes
    salt: bytes
    def __init__(self, job_id: _Optional[bytes] = ..., salt: _Optional[bytes] = ...) -> None: ...

class Unjail(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SlashingBrake(_message.Message):
    __slots__ = ("engage",)
    ENGAGE_FIELD_NUMBER: _ClassVar[int]
    engage: bool
    def __init__(self, engage: _Optional[bool] = ...) -> None: ...

class CancelJob(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: bytes
    def __init__(self, job_id: _Optional[bytes] = ...) -> None: ...

class Header(_message.Message):
    __slots__ = ("chain_id", "height", "time_ms", "parent_hash", "state_root", "transactions_root", "receipts_root", "proposer", "validators_hash", "last_commit_hash", "evidence_root", "randao_reveal")
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    TIME_MS_FIELD_NUMBER: _ClassVar[int]
    PARENT_HASH_FIELD_NUMBER: _ClassVar[int]
    STATE_ROOT_FIELD_NUMBER: _ClassVar[int]
    TRANSACTIONS_ROOT_FIELD_NUMBER: _ClassVar[int]
    RECEIPTS_ROOT_FIELD_NUMBER: _ClassVar[int]
    PROPOSER_FIELD_NUMBER: _ClassVar[int]
    VALIDATORS_HASH_FIELD_NUMBER: _ClassVar[int]
    LAST_COMMIT_HASH_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_ROOT_FIELD_NUMBER: _ClassVar[int]
    RANDAO_REVEAL_FIELD_NUMBER: _ClassVar[int]
    chain_id: str
    height: int
    time_ms: int
    parent_hash: bytes
    state_root: bytes
    transactions_root: bytes
    receipts_root: bytes
    proposer: bytes
    validators_hash: bytes
    last_commit_hash: bytes
    evidence_root: bytes
    randao_reveal: bytes
    def __init__(self, chain_id: _Optional[str] = ..., height: _Optional[int] = ..., time_ms: _Optional[int] = ..., parent_hash: _Optional[bytes] = ..., state_root: _Optional[bytes] = ..., transactions_root: _Optional[bytes] = ..., receipts_root: _Optional[bytes] = ..., proposer: _Optional[bytes] = ..., validators_hash: _Optional[bytes] = ..., last_commit_hash: _Optional[bytes] = ..., evidence_root: _Optional[bytes] = ..., randao_reveal: _Optional[bytes] = ...) -> None: ...

class Block(_message.Message):
    __slots__ = ("header", "transactions", "last_commit", "evidence")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    TRANSACTIONS_FIELD_NUMBER: _ClassVar[int]
    LAST_COMMIT_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    header: bytes
    transactions: _containers.RepeatedScalarFieldContainer[bytes]
    last_commit: Commit
    evidence: _containers.RepeatedCompositeFieldContainer[DuplicateVoteEvidence]
    def __init__(self, header: _Optional[bytes] = ..., transactions: _Optional[_Iterable[bytes]] = ..., last_commit: _Optional[_Union[Commit, _Mapping]] = ..., evidence: _Optional[_Iterable[_Union[DuplicateVoteEvidence, _Mapping]]] = ...) -> None: ...

class DuplicateVoteEvidence(_message.Message):
    __slots__ = ("first", "second")
    FIRST_FIELD_NUMBER: _ClassVar[int]
    SECOND_FIELD_NUMBER: _ClassVar[int]
    first: Vote
    second: Vote
    def __init__(self, first: _Optional[_Union[Vote, _Mapping]] = ..., second: _Optional[_Union[Vote, _Mapping]] = ...) -> None: ...

class ProposalBody(_message.Message):
    __slots__ = ("chain_id", "height", "round", "valid_round", "block_hash", "part_hashes", "proposer")
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    VALID_ROUND_FIELD_NUMBER: _ClassVar[int]
    BLOCK_HASH_FIELD_NUMBER: _ClassVar[int]
    PART_HASHES_FIELD_NUMBER: _ClassVar[int]
    PROPOSER_FIELD_NUMBER: _ClassVar[int]
    chain_id: str
    height: int
    round: int
    valid_round: int
    block_hash: bytes
    part_hashes: _containers.RepeatedScalarFieldContainer[bytes]
    proposer: bytes
    def __init__(self, chain_id: _Optional[str] = ..., height: _Optional[int] = ..., round: _Optional[int] = ..., valid_round: _Optional[int] = ..., block_hash: _Optional[bytes] = ..., part_hashes: _Optional[_Iterable[bytes]] = ..., proposer: _Optional[bytes] = ...) -> None: ...

class SignedProposal(_message.Message):
    __slots__ = ("body", "signature")
    BODY_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    body: bytes
    signature: bytes
    def __init__(self, body: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class VoteBody(_message.Message):
    __slots__ = ("chain_id", "type", "height", "round", "block_hash", "time_ms", "validator")
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    BLOCK_HASH_FIELD_NUMBER: _ClassVar[int]
    TIME_MS_FIELD_NUMBER: _ClassVar[int]
    VALIDATOR_FIELD_NUMBER: _ClassVar[int]
    chain_id: str
    type: VoteType
    height: int
    round: int
    block_hash: bytes
    time_ms: int
    validator: bytes
    def __init__(self, chain_id: _Optional[str] = ..., type: _Optional[_Union[VoteType, str]] = ..., height: _Optional[int] = ..., round: _Optional[int] = ..., block_hash: _Optional[bytes] = ..., time_ms: _Optional[int] = ..., validator: _Optional[bytes] = ...) -> None: ...

class Vote(_message.Message):
    __slots__ = ("body", "signature")
    BODY_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    body: bytes
    signature: bytes
    def __init__(self, body: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class Commit(_message.Message):
    __slots__ = ("height", "round", "block_hash", "precommits")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    BLOCK_HASH_FIELD_NUMBER: _ClassVar[int]
    PRECOMMITS_FIELD_NUMBER: _ClassVar[int]
    height: int
    round: int
    block_hash: bytes
    precommits: _containers.RepeatedCompositeFieldContainer[Vote]
    def __init__(self, height: _Optional[int] = ..., round: _Optional[int] = ..., block_hash: _Optional[bytes] = ..., precommits: _Optional[_Iterable[_Union[Vote, _Mapping]]] = ...) -> None: ...

class Validator(_message.Message):
    __slots__ = ("public_key", "voting_power")
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    VOTING_POWER_FIELD_NUMBER: _ClassVar[int]
    public_key: bytes
    voting_power: int
    def __init__(self, public_key: _Optional[bytes] = ..., voting_power: _Optional[int] = ...) -> None: ...

class ValidatorSet(_message.Message):
    __slots__ = ("validators",)
    VALIDATORS_FIELD_NUMBER: _ClassVar[int]
    validators: _containers.RepeatedCompositeFieldContainer[Validator]
    def __init__(self, validators: _Optional[_Iterable[_Union[Validator, _Mapping]]] = ...) -> None: ...

class EventAttribute(_message.Message):
    __slots__ = ("key", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: str
    def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("module", "name", "attributes")
    MODULE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    module: str
    name: str
    attributes: _containers.RepeatedCompositeFieldContainer[EventAttribute]
    def __init__(self, module: _Optional[str] = ..., name: _Optional[str] = ..., attributes: _Optional[_Iterable[_Union[EventAttribute, _Mapping]]] = ...) -> None: ...

class Receipt(_message.Message):
    __slots__ = ("transaction_hash", "success", "error_module", "error_name", "error_message", "fee_paid", "events")
    TRANSACTION_HASH_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    ERROR_MODULE_FIELD_NUMBER: _ClassVar[int]
    ERROR_NAME_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FEE_PAID_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    transaction_hash: bytes
    success: bool
    error_module: str
    error_name: str
    error_message: str
    fee_paid: int
    events: _containers.RepeatedCompositeFieldContainer[Event]
    def __init__(self, transaction_hash: _Optional[bytes] = ..., success: _Optional[bool] = ..., error_module: _Optional[str] = ..., error_name: _Optional[str] = ..., error_message: _Optional[str] = ..., fee_paid: _Optional[int] = ..., events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ...) -> None: ...

class BlockReceipts(_message.Message):
    __slots__ = ("transactions", "block_events")
    TRANSACTIONS_FIELD_NUMBER: _ClassVar[int]
    BLOCK_EVENTS_FIELD_NUMBER: _ClassVar[int]
    transactions: _containers.RepeatedCompositeFieldContainer[Receipt]
    block_events: _containers.RepeatedCompositeFieldContainer[Event]
    def __init__(self, transactions: _Optional[_Iterable[_Union[Receipt, _Mapping]]] = ..., block_events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ...) -> None: ...

class FinalizedBlock(_message.Message):
    __slots__ = ("block", "commit")
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    block: Block
    commit: Commit
    def __init__(self, block: _Optional[_Union[Block, _Mapping]] = ..., commit: _Optional[_Union[Commit, _Mapping]] = ...) -> None: ...
