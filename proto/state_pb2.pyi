from proto import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ModelChange(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODEL_CHANGE_ADD: _ClassVar[ModelChange]
    MODEL_CHANGE_AMEND: _ClassVar[ModelChange]
    MODEL_CHANGE_REMOVE: _ClassVar[ModelChange]

class JobStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATUS_UNSPECIFIED: _ClassVar[JobStatus]
    JOB_STATUS_QUEUED: _ClassVar[JobStatus]
    JOB_STATUS_ASSIGNED: _ClassVar[JobStatus]
    JOB_STATUS_REVEALING: _ClassVar[JobStatus]
    JOB_STATUS_SETTLED: _ClassVar[JobStatus]
    JOB_STATUS_DISPUTED: _ClassVar[JobStatus]
    JOB_STATUS_EXPIRED: _ClassVar[JobStatus]
    JOB_STATUS_CANCELLED: _ClassVar[JobStatus]
    JOB_STATUS_DRAWING: _ClassVar[JobStatus]
    JOB_STATUS_REJECTED: _ClassVar[JobStatus]

class AssignmentStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ASSIGNMENT_STATUS_UNSPECIFIED: _ClassVar[AssignmentStatus]
    ASSIGNMENT_STATUS_ASSIGNED: _ClassVar[AssignmentStatus]
    ASSIGNMENT_STATUS_COMMITTED: _ClassVar[AssignmentStatus]
    ASSIGNMENT_STATUS_REVEALED: _ClassVar[AssignmentStatus]
    ASSIGNMENT_STATUS_MISSED: _ClassVar[AssignmentStatus]

class CandidateVerdict(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CANDIDATE_VERDICT_UNSPECIFIED: _ClassVar[CandidateVerdict]
    CANDIDATE_VERDICT_VALID: _ClassVar[CandidateVerdict]
    CANDIDATE_VERDICT_INVALID: _ClassVar[CandidateVerdict]
    CANDIDATE_VERDICT_NONE: _ClassVar[CandidateVerdict]

class DisputeReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DISPUTE_REASON_UNSPECIFIED: _ClassVar[DisputeReason]
    DISPUTE_REASON_DIGESTS: _ClassVar[DisputeReason]
    DISPUTE_REASON_QUORUM: _ClassVar[DisputeReason]
    DISPUTE_REASON_AUDIT: _ClassVar[DisputeReason]
    DISPUTE_REASON_CHALLENGE: _ClassVar[DisputeReason]

class DisputeStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DISPUTE_STATUS_UNSPECIFIED: _ClassVar[DisputeStatus]
    DISPUTE_STATUS_COMMITTING: _ClassVar[DisputeStatus]
    DISPUTE_STATUS_REVEALING: _ClassVar[DisputeStatus]
    DISPUTE_STATUS_DECIDED: _ClassVar[DisputeStatus]
MODEL_CHANGE_ADD: ModelChange
MODEL_CHANGE_AMEND: ModelChange
MODEL_CHANGE_REMOVE: ModelChange
JOB_STATUS_UNSPECIFIED: JobStatus
JOB_STATUS_QUEUED: JobStatus
JOB_STATUS_ASSIGNED: JobStatus
JOB_STATUS_REVEALING: JobStatus
JOB_STATUS_SETTLED: JobStatus
JOB_STATUS_DISPUTED: JobStatus
JOB_STATUS_EXPIRED: JobStatus
JOB_STATUS_CANCELLED: JobStatus
JOB_STATUS_DRAWING: JobStatus
JOB_STATUS_REJECTED: JobStatus
ASSIGNMENT_STATUS_UNSPECIFIED: AssignmentStatus
ASSIGNMENT_STATUS_ASSIGNED: AssignmentStatus
ASSIGNMENT_STATUS_COMMITTED: AssignmentStatus
ASSIGNMENT_STATUS_REVEALED: AssignmentStatus
ASSIGNMENT_STATUS_MISSED: AssignmentStatus
CANDIDATE_VERDICT_UNSPECIFIED: CandidateVerdict
CANDIDATE_VERDICT_VALID: CandidateVerdict
CANDIDATE_VERDICT_INVALID: CandidateVerdict
CANDIDATE_VERDICT_NONE: CandidateVerdict
DISPUTE_REASON_UNSPECIFIED: DisputeReason
DISPUTE_REASON_DIGESTS: DisputeReason
DISPUTE_REASON_QUORUM: DisputeReason
DISPUTE_REASON_AUDIT: DisputeReason
DISPUTE_REASON_CHALLENGE: DisputeReason
DISPUTE_STATUS_UNSPECIFIED: DisputeStatus
DISPUTE_STATUS_COMMITTING: DisputeStatus
DISPUTE_STATUS_REVEALING: DisputeStatus
DISPUTE_STATUS_DECIDED: DisputeStatus

class AccountInfo(_message.Message):
    __slots__ = ("nonce", "free", "reserved")
    NONCE_FIELD_NUMBER: _ClassVar[int]
    FREE_FIELD_NUMBER: _ClassVar[int]
    RESERVED_FIELD_NUMBER: _ClassVar[int]
    nonce: int
    free: int
    reserved: int
    def __init__(self, nonce: _Optional[int] = ..., free: _Optional[int] = ..., reserved: _Optional[int] = ...) -> None: ...

class SupplyInfo(_message.Message):
    __slots__ = ("total_issuance", "burned", "minted")
    TOTAL_ISSUANCE_FIELD_NUMBER: _ClassVar[int]
    BURNED_FIELD_NUMBER: _ClassVar[int]
    MINTED_FIELD_NUMBER: _ClassVar[int]
    total_issuance: int
    burned: int
    minted: int
    def __init__(self, total_issuance: _Optional[int] = ..., burned: _Optional[int] = ..., minted: _Optional[int] = ...) -> None: ...

class ChainState(_message.Message):
    __slots__ = ("chain_id", "genesis_hash", "height", "time_ms")
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    GENESIS_HASH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    TIME_MS_FIELD_NUMBER: _ClassVar[int]
    chain_id: str
    genesis_hash: bytes
    height: int
    time_ms: int
    def __init__(self, chain_id: _Optional[str] = ..., genesis_hash: _Optional[bytes] = ..., height: _Optional[int] = ..., time_ms: _Optional[int] = ...) -> None: ...

class SystemParams(_message.Message):
    __slots__ = ("base_fee", "fee_per_byte", "max_transaction_bytes", "fee_per_weight")
    BASE_FEE_FIELD_NUMBER: _ClassVar[int]
    FEE_PER_BYTE_FIELD_NUMBER: _ClassVar[int]
    MAX_TRANSACTION_BYTES_FIELD_NUMBER: _ClassVar[int]
    FEE_PER_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    base_fee: int
    fee_per_byte: int
    max_transaction_bytes: int
    fee_per_weight: int
    def __init__(self, base_fee: _Optional[int] = ..., fee_per_byte: _Optional[int] = ..., max_transaction_bytes: _Optional[int] = ..., fee_per_weight: _Optional[int] = ...) -> None: ...

class BlockLimits(_message.Message):
    __slots__ = ("max_block_bytes", "max_block_transactions", "max_block_evidence", "max_evidence_bytes", "max_block_weight")
    MAX_BLOCK_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_BLOCK_TRANSACTIONS_FIELD_NUMBER: _ClassVar[int]
    MAX_BLOCK_EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    MAX_EVIDENCE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_BLOCK_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    max_block_bytes: int
    max_block_transactions: int
    max_block_evidence: int
    max_evidence_bytes: int
    max_block_weight: int
    def __init__(self, max_block_bytes: _Optional[int] = ..., max_block_transactions: _Optional[int] = ..., max_block_evidence: _Optional[int] = ..., max_evidence_bytes: _Optional[int] = ..., max_block_weight: _Optional[int] = ...) -> None: ...

class BalancesParams(_message.Message):
    __slots__ = ("existential_deposit", "token_symbol", "token_decimals")
    EXISTENTIAL_DEPOSIT_FIELD_NUMBER: _ClassVar[int]
    TOKEN_SYMBOL_FIELD_NUMBER: _ClassVar[int]
    TOKEN_DECIMALS_FIELD_NUMBER: _ClassVar[int]
    existential_deposit: int
    token_symbol: str
    token_decimals: int
    def __init__(self, existential_deposit: _Optional[int] = ..., token_symbol: _Optional[str] = ..., token_decimals: _Optional[int] = ...) -> None: ...

class StakingParams(_message.Message):
    __slots__ = ("min_bond", "unbonding_period_blocks", "epoch_blocks", "max_validators", "max_offer_models", "max_executors_per_model", "max_unbonding_chunks", "max_capacity", "min_price_per_token", "offer_lock_blocks")
    MIN_BOND_FIELD_NUMBER: _ClassVar[int]
    UNBONDING_PERIOD_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    EPOCH_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    MAX_VALIDATORS_FIELD_NUMBER: _ClassVar[int]
    MAX_OFFER_MODELS_FIELD_NUMBER: _ClassVar[int]
    MAX_EXECUTORS_PER_MODEL_FIELD_NUMBER: _ClassVar[int]
    MAX_UNBONDING_CHUNKS_FIELD_NUMBER: _ClassVar[int]
    MAX_CAPACITY_FIELD_NUMBER: _ClassVar[int]
    MIN_PRICE_PER_TOKEN_FIELD_NUMBER: _ClassVar[int]
    OFFER_LOCK_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    min_bond: int
    unbonding_period_blocks: int
    epoch_blocks: int
    max_validators: int
    max_offer_models: int
    max_executors_per_model: int
    max_unbonding_chunks: int
    max_capacity: int
    min_price_per_token: int
    offer_lock_blocks: int
    def __init__(self, min_bond: _Optional[int] = ..., unbonding_period_blocks: _Optional[int] = ..., epoch_blocks: _Optional[int] = ..., max_validators: _Optional[int] = ..., max_offer_models: _Optional[int] = ..., max_executors_per_model: _Optional[int] = ..., max_unbonding_chunks: _Optional[int] = ..., max_capacity: _Optional[int] = ..., min_price_per_token: _Optional[int] = ..., offer_lock_blocks: _Optional[int] = ...) -> None: ...

class UnbondingChunk(_message.Message):
    __slots__ = ("amount", "release_height")
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    RELEASE_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    amount: int
    release_height: int
    def __init__(self, amount: _Optional[int] = ..., release_height: _Optional[int] = ...) -> None: ...

class StakeLedger(_message.Message):
    __slots__ = ("bonded", "unbonding", "validate", "jailed_until", "jailed", "locked_until")
    BONDED_FIELD_NUMBER: _ClassVar[int]
    UNBONDING_FIELD_NUMBER: _ClassVar[int]
    VALIDATE_FIELD_NUMBER: _ClassVar[int]
    JAILED_UNTIL_FIELD_NUMBER: _ClassVar[int]
    JAILED_FIELD_NUMBER: _ClassVar[int]
    LOCKED_UNTIL_FIELD_NUMBER: _ClassVar[int]
    bonded: int
    unbonding: _containers.RepeatedCompositeFieldContainer[UnbondingChunk]
    validate: bool
    jailed_until: int
    jailed: bool
    locked_until: int
    def __init__(self, bonded: _Optional[int] = ..., unbonding: _Optional[_Iterable[_Union[UnbondingChunk, _Mapping]]] = ..., validate: _Optional[bool] = ..., jailed_until: _Optional[int] = ..., jailed: _Optional[bool] = ..., locked_until: _Optional[int] = ...) -> None: ...

class Offer(_message.Message):
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

class AccountList(_message.Message):
    __slots__ = ("accounts",)
    ACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    accounts: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, accounts: _Optional[_Iterable[bytes]] = ...) -> None: ...

class StakingTotals(_message.Message):
    __slots__ = ("bonded", "unbonding", "epoch")
    BONDED_FIELD_NUMBER: _ClassVar[int]
    UNBONDING_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    bonded: int
    unbonding: int
    epoch: int
    def __init__(self, bonded: _Optional[int] = ..., unbonding: _Optional[int] = ..., epoch: _Optional[int] = ...) -> None: ...

class ModelsParams(_message.Message):
    __slots__ = ("voting_period_blocks", "quorum_ppm", "max_open_proposals", "proposal_deposit", "threshold_ppm", "max_proposals_per_account", "min_proposer_bond")
    VOTING_PERIOD_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    QUORUM_PPM_FIELD_NUMBER: _ClassVar[int]
    MAX_OPEN_PROPOSALS_FIELD_NUMBER: _ClassVar[int]
    PROPOSAL_DEPOSIT_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_PPM_FIELD_NUMBER: _ClassVar[int]
    MAX_PROPOSALS_PER_ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    MIN_PROPOSER_BOND_FIELD_NUMBER: _ClassVar[int]
    voting_period_blocks: int
    quorum_ppm: int
    max_open_proposals: int
    proposal_deposit: int
    threshold_ppm: int
    max_proposals_per_account: int
    min_proposer_bond: int
    def __init__(self, voting_period_blocks: _Optional[int] = ..., quorum_ppm: _Optional[int] = ..., max_open_proposals: _Optional[int] = ..., proposal_deposit: _Optional[int] = ..., threshold_ppm: _Optional[int] = ..., max_proposals_per_account: _Optional[int] = ..., min_proposer_bond: _Optional[int] = ...) -> None: ...

class ModelProposal(_message.Message):
    __slots__ = ("model", "proposer", "deposit", "end_height", "voters", "approvals", "kind", "proposal_hash")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROPOSER_FIELD_NUMBER: _ClassVar[int]
    DEPOSIT_FIELD_NUMBER: _ClassVar[int]
    END_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    VOTERS_FIELD_NUMBER: _ClassVar[int]
    APPROVALS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PROPOSAL_HASH_FIELD_NUMBER: _ClassVar[int]
    model: _types_pb2.ModelInfo
    proposer: bytes
    deposit: int
    end_height: int
    voters: _containers.RepeatedScalarFieldContainer[bytes]
    approvals: _containers.RepeatedScalarFieldContainer[bool]
    kind: ModelChange
    proposal_hash: bytes
    def __init__(self, model: _Optional[_Union[_types_pb2.ModelInfo, _Mapping]] = ..., proposer: _Optional[bytes] = ..., deposit: _Optional[int] = ..., end_height: _Optional[int] = ..., voters: _Optional[_Iterable[bytes]] = ..., approvals: _Optional[_Iterable[bool]] = ..., kind: _Optional[_Union[ModelChange, str]] = ..., proposal_hash: _Optional[bytes] = ...) -> None: ...

class JobIdList(_message.Message):
    __slots__ = ("job_ids",)
    JOB_IDS_FIELD_NUMBER: _ClassVar[int]
    job_ids: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, job_ids: _Optional[_Iterable[bytes]] = ...) -> None: ...

class JobsParams(_message.Message):
    __slots__ = ("max_prompt_bytes", "max_tokens", "max_redundancy", "commit_blocks", "reveal_blocks", "job_timeout_blocks", "challenge_window_blocks", "protocol_fee_ppm", "max_queue", "assign_per_block", "reputation_initial", "reputation_max", "reputation_loss", "min_tokens_per_block", "assignment_delay_blocks", "draw_candidates", "region_min_candidates", "reputation_price", "reputation_gain_cap_per_epoch", "reputation_decay_ppm", "min_job_escrow", "max_queued_per_poster", "queue_fee", "max_due_per_height", "min_protocol_fee", "storage_deposit_per_byte", "prompt_price_ppm")
    MAX_PROMPT_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MAX_REDUNDANCY_FIELD_NUMBER: _ClassVar[int]
    COMMIT_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    REVEAL_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    JOB_TIMEOUT_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    CHALLENGE_WINDOW_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FEE_PPM_FIELD_NUMBER: _ClassVar[int]
    MAX_QUEUE_FIELD_NUMBER: _ClassVar[int]
    ASSIGN_PER_BLOCK_FIELD_NUMBER: _ClassVar[int]
    REPUTATION_INITIAL_FIELD_NUMBER: _ClassVar[int]
    REPUTATION_MAX_FIELD_NUMBER: _ClassVar[int]
    REPUTATION_LOSS_FIELD_NUMBER: _ClassVar[int]
    MIN_TOKENS_PER_BLOCK_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENT_DELAY_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    DRAW_CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    REGION_MIN_CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    REPUTATION_PRICE_FIELD_NUMBER: _ClassVar[int]
    REPUTATION_GAIN_CAP_PER_EPOCH_FIELD_NUMBER: _ClassVar[int]
    REPUTATION_DECAY_PPM_FIELD_NUMBER: _ClassVar[int]
    MIN_JOB_ESCROW_FIELD_NUMBER: _ClassVar[int]
    MAX_QUEUED_PER_POSTER_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FEE_FIELD_NUMBER: _ClassVar[int]
    MAX_DUE_PER_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    MIN_PROTOCOL_FEE_FIELD_NUMBER: _ClassVar[int]
    STORAGE_DEPOSIT_PER_BYTE_FIELD_NUMBER: _ClassVar[int]
    PROMPT_PRICE_PPM_FIELD_NUMBER: _ClassVar[int]
    max_prompt_bytes: int
    max_tokens: int
    max_redundancy: int
    commit_blocks: int
    reveal_blocks: int
    job_timeout_blocks: int
    challenge_window_blocks: int
    protocol_fee_ppm: int
    max_queue: int
    assign_per_block: int
    reputation_initial: int
    reputation_max: int
    reputation_loss: int
    min_tokens_per_block: int
    assignment_delay_blocks: int
    draw_candidates: int
    region_min_candidates: int
    reputation_price: int
    reputation_gain_cap_per_epoch: int
    reputation_decay_ppm: int
    min_job_escrow: int
    max_queued_per_poster: int
    queue_fee: int
    max_due_per_height: int
    min_protocol_fee: int
    storage_deposit_per_byte: int
    prompt_price_ppm: int
    def __init__(self, max_prompt_bytes: _Optional[int] = ..., max_tokens: _Optional[int] = ..., max_redundancy: _Optional[int] = ..., commit_blocks: _Optional[int] = ..., reveal_blocks: _Optional[int] = ..., job_timeout_blocks: _Optional[int] = ..., challenge_window_blocks: _Optional[int] = ..., protocol_fee_ppm: _Optional[int] = ..., max_queue: _Optional[int] = ..., assign_per_block: _Optional[int] = ..., reputation_initial: _Optional[int] = ..., reputation_max: _Optional[int] = ..., reputation_loss: _Optional[int] = ..., min_tokens_per_block: _Optional[int] = ..., assignment_delay_blocks: _Optional[int] = ..., draw_candidates: _Optional[int] = ..., region_min_candidates: _Optional[int] = ..., reputation_price: _Optional[int] = ..., reputation_gain_cap_per_epoch: _Optional[int] = ..., reputation_decay_ppm: _Optional[int] = ..., min_job_escrow: _Optional[int] = ..., max_queued_per_poster: _Optional[int] = ..., queue_fee: _Optional[int] = ..., max_due_per_height: _Optional[int] = ..., min_protocol_fee: _Optional[int] = ..., storage_deposit_per_byte: _Optional[int] = ..., prompt_price_ppm: _Optional[int] = ...) -> None: ...

class Reveal(_message.Message):
    __slots__ = ("salt", "prompt_tokens", "tokens", "text", "logprobs_micronats", "stop_reason", "output_digest", "height")
    SALT_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    LOGPROBS_MICRONATS_FIELD_NUMBER: _ClassVar[int]
    STOP_REASON_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    salt: bytes
    prompt_tokens: int
    tokens: _containers.RepeatedScalarFieldContainer[int]
    text: str
    logprobs_micronats: _containers.RepeatedScalarFieldContainer[int]
    stop_reason: str
    output_digest: bytes
    height: int
    def __init__(self, salt: _Optional[bytes] = ..., prompt_tokens: _Optional[int] = ..., tokens: _Optional[_Iterable[int]] = ..., text: _Optional[str] = ..., logprobs_micronats: _Optional[_Iterable[int]] = ..., stop_reason: _Optional[str] = ..., output_digest: _Optional[bytes] = ..., height: _Optional[int] = ...) -> None: ...

class Assignment(_message.Message):
    __slots__ = ("executor", "price_per_token", "status", "assigned_height", "deadline_height", "commitment", "reveal", "payment", "release_height", "released", "verdict", "engine_class")
    EXECUTOR_FIELD_NUMBER: _ClassVar[int]
    PRICE_PER_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ASSIGNED_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    COMMITMENT_FIELD_NUMBER: _ClassVar[int]
    REVEAL_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_FIELD_NUMBER: _ClassVar[int]
    RELEASE_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    RELEASED_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    ENGINE_CLASS_FIELD_NUMBER: _ClassVar[int]
    executor: bytes
    price_per_token: int
    status: AssignmentStatus
    assigned_height: int
    deadline_height: int
    commitment: bytes
    reveal: Reveal
    payment: int
    release_height: int
    released: bool
    verdict: CandidateVerdict
    engine_class: str
    def __init__(self, executor: _Optional[bytes] = ..., price_per_token: _Optional[int] = ..., status: _Optional[_Union[AssignmentStatus, str]] = ..., assigned_height: _Optional[int] = ..., deadline_height: _Optional[int] = ..., commitment: _Optional[bytes] = ..., reveal: _Optional[_Union[Reveal, _Mapping]] = ..., payment: _Optional[int] = ..., release_height: _Optional[int] = ..., released: _Optional[bool] = ..., verdict: _Optional[_Union[CandidateVerdict, str]] = ..., engine_class: _Optional[str] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("id", "poster", "request", "status", "posted_height", "timeout_height", "escrow", "assignments", "output_digest", "final_height", "protocol_fee", "refunded", "reason", "storage_deposit", "pruned_height", "prompt_price_ppm", "draw_height", "queue_fee", "probe", "probe_fund_claim")
    ID_FIELD_NUMBER: _ClassVar[int]
    POSTER_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    POSTED_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    ESCROW_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    FINAL_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FEE_FIELD_NUMBER: _ClassVar[int]
    REFUNDED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    STORAGE_DEPOSIT_FIELD_NUMBER: _ClassVar[int]
    PRUNED_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    PROMPT_PRICE_PPM_FIELD_NUMBER: _ClassVar[int]
    DRAW_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FEE_FIELD_NUMBER: _ClassVar[int]
    PROBE_FIELD_NUMBER: _ClassVar[int]
    PROBE_FUND_CLAIM_FIELD_NUMBER: _ClassVar[int]
    id: bytes
    poster: bytes
    request: _types_pb2.PostJob
    status: JobStatus
    posted_height: int
    timeout_height: int
    escrow: int
    assignments: _containers.RepeatedCompositeFieldContainer[Assignment]
    output_digest: bytes
    final_height: int
    protocol_fee: int
    refunded: int
    reason: str
    storage_deposit: int
    pruned_height: int
    prompt_price_ppm: int
    draw_height: int
    queue_fee: int
    probe: bool
    probe_fund_claim: int
    def __init__(self, id: _Optional[bytes] = ..., poster: _Optional[bytes] = ..., request: _Optional[_Union[_types_pb2.PostJob, _Mapping]] = ..., status: _Optional[_Union[JobStatus, str]] = ..., posted_height: _Optional[int] = ..., timeout_height: _Optional[int] = ..., escrow: _Optional[int] = ..., assignments: _Optional[_Iterable[_Union[Assignment, _Mapping]]] = ..., output_digest: _Optional[bytes] = ..., final_height: _Optional[int] = ..., protocol_fee: _Optional[int] = ..., refunded: _Optional[int] = ..., reason: _Optional[str] = ..., storage_deposit: _Optional[int] = ..., pruned_height: _Optional[int] = ..., prompt_price_ppm: _Optional[int] = ..., draw_height: _Optional[int] = ..., queue_fee: _Optional[int] = ..., probe: _Optional[bool] = ..., probe_fund_claim: _Optional[int] = ...) -> None: ...

class NoArguments(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AccountQuery(_message.Message):
    __slots__ = ("account",)
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    account: bytes
    def __init__(self, account: _Optional[bytes] = ...) -> None: ...

class ModelQuery(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: bytes
    def __init__(self, model: _Optional[bytes] = ...) -> None: ...

class ModelListQuery(_message.Message):
    __slots__ = ("after", "limit")
    AFTER_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    after: bytes
    limit: int
    def __init__(self, after: _Optional[bytes] = ..., limit: _Optional[int] = ...) -> None: ...

class ModelList(_message.Message):
    __slots__ = ("models", "more")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[_types_pb2.ModelInfo]
    more: bool
    def __init__(self, models: _Optional[_Iterable[_Union[_types_pb2.ModelInfo, _Mapping]]] = ..., more: _Optional[bool] = ...) -> None: ...

class JobQuery(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: bytes
    def __init__(self, job_id: _Optional[bytes] = ...) -> None: ...

class ReputationScore(_message.Message):
    __slots__ = ("account", "score", "gained_this_epoch", "credit")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    GAINED_THIS_EPOCH_FIELD_NUMBER: _ClassVar[int]
    CREDIT_FIELD_NUMBER: _ClassVar[int]
    account: bytes
    score: int
    gained_this_epoch: int
    credit: int
    def __init__(self, account: _Optional[bytes] = ..., score: _Optional[int] = ..., gained_this_epoch: _Optional[int] = ..., credit: _Optional[int] = ...) -> None: ...

class ReputationRecord(_message.Message):
    __slots__ = ("score", "epoch", "gained", "credit")
    SCORE_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    GAINED_FIELD_NUMBER: _ClassVar[int]
    CREDIT_FIELD_NUMBER: _ClassVar[int]
    score: int
    epoch: int
    gained: int
    credit: int
    def __init__(self, score: _Optional[int] = ..., epoch: _Optional[int] = ..., gained: _Optional[int] = ..., credit: _Optional[int] = ...) -> None: ...

class ModelIdList(_message.Message):
    __slots__ = ("model_ids",)
    MODEL_IDS_FIELD_NUMBER: _ClassVar[int]
    model_ids: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, model_ids: _Optional[_Iterable[bytes]] = ...) -> None: ...

class JobQueue(_message.Message):
    __slots__ = ("job_ids", "max_prices")
    JOB_IDS_FIELD_NUMBER: _ClassVar[int]
    MAX_PRICES_FIELD_NUMBER: _ClassVar[int]
    job_ids: _containers.RepeatedScalarFieldContainer[bytes]
    max_prices: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, job_ids: _Optional[_Iterable[bytes]] = ..., max_prices: _Optional[_Iterable[int]] = ...) -> None: ...

class RandaoRecord(_message.Message):
    __slots__ = ("last", "revealed", "onion")
    LAST_FIELD_NUMBER: _ClassVar[int]
    REVEALED_FIELD_NUMBER: _ClassVar[int]
    ONION_FIELD_NUMBER: _ClassVar[int]
    last: bytes
    revealed: int
    onion: int
    def __init__(self, last: _Optional[bytes] = ..., revealed: _Optional[int] = ..., onion: _Optional[int] = ...) -> None: ...

class RandaoMix(_message.Message):
    __slots__ = ("mix",)
    MIX_FIELD_NUMBER: _ClassVar[int]
    mix: bytes
    def __init__(self, mix: _Optional[bytes] = ...) -> None: ...

class DrawTable(_message.Message):
    __slots__ = ("epoch", "count", "regions", "engine_classes")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    REGIONS_FIELD_NUMBER: _ClassVar[int]
    ENGINE_CLASSES_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    count: int
    regions: _containers.RepeatedScalarFieldContainer[str]
    engine_classes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, epoch: _Optional[int] = ..., count: _Optional[int] = ..., regions: _Optional[_Iterable[str]] = ..., engine_classes: _Optional[_Iterable[str]] = ...) -> None: ...

class DrawEntry(_message.Message):
    __slots__ = ("account", "price_per_token", "capacity", "weight", "cumulative", "stake", "reputation")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    PRICE_PER_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    CUMULATIVE_FIELD_NUMBER: _ClassVar[int]
    STAKE_FIELD_NUMBER: _ClassVar[int]
    REPUTATION_FIELD_NUMBER: _ClassVar[int]
    account: bytes
    price_per_token: int
    capacity: int
    weight: bytes
    cumulative: bytes
    stake: int
    reputation: int
    def __init__(self, account: _Optional[bytes] = ..., price_per_token: _Optional[int] = ..., capacity: _Optional[int] = ..., weight: _Optional[bytes] = ..., cumulative: _Optional[bytes] = ..., stake: _Optional[int] = ..., reputation: _Optional[int] = ...) -> None: ...

class DisputesParams(_message.Message):
    __slots__ = ("committee_size", "min_committee_size", "vote_commit_blocks", "vote_reveal_blocks", "audit_probability_ppm", "audit_delay_blocks", "min_challenge_bond", "challenge_loss_ppm", "slash_fraction_invalid_result_ppm", "slash_fraction_missed_result_ppm", "slash_fraction_missed_vote_ppm", "slash_fraction_contrary_vote_ppm", "slash_reward_ppm", "supermajority_ppm", "max_open_disputes", "conviction_budget_ppb", "collateral_ppm", "probe_fund_ppm", "probes_per_epoch", "probe_max_tokens", "same_class_share_ppm", "sealed_probes_per_epoch", "max_probe_reimbursement")
    COMMITTEE_SIZE_FIELD_NUMBER: _ClassVar[int]
    MIN_COMMITTEE_SIZE_FIELD_NUMBER: _ClassVar[int]
    VOTE_COMMIT_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    VOTE_REVEAL_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    AUDIT_PROBABILITY_PPM_FIELD_NUMBER: _ClassVar[int]
    AUDIT_DELAY_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    MIN_CHALLENGE_BOND_FIELD_NUMBER: _ClassVar[int]
    CHALLENGE_LOSS_PPM_FIELD_NUMBER: _ClassVar[int]
    SLASH_FRACTION_INVALID_RESULT_PPM_FIELD_NUMBER: _ClassVar[int]
    SLASH_FRACTION_MISSED_RESULT_PPM_FIELD_NUMBER: _ClassVar[int]
    SLASH_FRACTION_MISSED_VOTE_PPM_FIELD_NUMBER: _ClassVar[int]
    SLASH_FRACTION_CONTRARY_VOTE_PPM_FIELD_NUMBER: _ClassVar[int]
    SLASH_REWARD_PPM_FIELD_NUMBER: _ClassVar[int]
    SUPERMAJORITY_PPM_FIELD_NUMBER: _ClassVar[int]
    MAX_OPEN_DISPUTES_FIELD_NUMBER: _ClassVar[int]
    CONVICTION_BUDGET_PPB_FIELD_NUMBER: _ClassVar[int]
    COLLATERAL_PPM_FIELD_NUMBER: _ClassVar[int]
    PROBE_FUND_PPM_FIELD_NUMBER: _ClassVar[int]
    PROBES_PER_EPOCH_FIELD_NUMBER: _ClassVar[int]
    PROBE_MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    SAME_CLASS_SHARE_PPM_FIELD_NUMBER: _ClassVar[int]
    SEALED_PROBES_PER_EPOCH_FIELD_NUMBER: _ClassVar[int]
    MAX_PROBE_REIMBURSEMENT_FIELD_NUMBER: _ClassVar[int]
    committee_size: int
    min_committee_size: int
    vote_commit_blocks: int
    vote_reveal_blocks: int
    audit_probability_ppm: int
    audit_delay_blocks: int
    min_challenge_bond: int
    challenge_loss_ppm: int
    slash_fraction_invalid_result_ppm: int
    slash_fraction_missed_result_ppm: int
    slash_fraction_missed_vote_ppm: int
    slash_fraction_contrary_vote_ppm: int
    slash_reward_ppm: int
    supermajority_ppm: int
    max_open_disputes: int
    conviction_budget_ppb: int
    collateral_ppm: int
    probe_fund_ppm: int
    probes_per_epoch: int
    probe_max_tokens: int
    same_class_share_ppm: int
    sealed_probes_per_epoch: int
    max_probe_reimbursement: int
    def __init__(self, committee_size: _Optional[int] = ..., min_committee_size: _Optional[int] = ..., vote_commit_blocks: _Optional[int] = ..., vote_reveal_blocks: _Optional[int] = ..., audit_probability_ppm: _Optional[int] = ..., audit_delay_blocks: _Optional[int] = ..., min_challenge_bond: _Optional[int] = ..., challenge_loss_ppm: _Optional[int] = ..., slash_fraction_invalid_result_ppm: _Optional[int] = ..., slash_fraction_missed_result_ppm: _Optional[int] = ..., slash_fraction_missed_vote_ppm: _Optional[int] = ..., slash_fraction_contrary_vote_ppm: _Optional[int] = ..., slash_reward_ppm: _Optional[int] = ..., supermajority_ppm: _Optional[int] = ..., max_open_disputes: _Optional[int] = ..., conviction_budget_ppb: _Optional[int] = ..., collateral_ppm: _Optional[int] = ..., probe_fund_ppm: _Optional[int] = ..., probes_per_epoch: _Optional[int] = ..., probe_max_tokens: _Optional[int] = ..., same_class_share_ppm: _Optional[int] = ..., sealed_probes_per_epoch: _Optional[int] = ..., max_probe_reimbursement: _Optional[int] = ...) -> None: ...

class SealedProbe(_message.Message):
    __slots__ = ("sealer", "height", "epoch", "opened_height")
    SEALER_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    OPENED_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    sealer: bytes
    height: int
    epoch: int
    opened_height: int
    def __init__(self, sealer: _Optional[bytes] = ..., height: _Optional[int] = ..., epoch: _Optional[int] = ..., opened_height: _Optional[int] = ...) -> None: ...

class CommitteeMember(_message.Message):
    __slots__ = ("account", "stake", "commitment", "revealed", "votes")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    STAKE_FIELD_NUMBER: _ClassVar[int]
    COMMITMENT_FIELD_NUMBER: _ClassVar[int]
    REVEALED_FIELD_NUMBER: _ClassVar[int]
    VOTES_FIELD_NUMBER: _ClassVar[int]
    account: bytes
    stake: int
    commitment: bytes
    revealed: bool
    votes: _containers.RepeatedCompositeFieldContainer[_types_pb2.CandidateVote]
    def __init__(self, account: _Optional[bytes] = ..., stake: _Optional[int] = ..., commitment: _Optional[bytes] = ..., revealed: _Optional[bool] = ..., votes: _Optional[_Iterable[_Union[_types_pb2.CandidateVote, _Mapping]]] = ...) -> None: ...

class Dispute(_message.Message):
    __slots__ = ("id", "job", "candidates", "reason", "challenger", "bond", "challenged", "opened_height", "draw_height", "commit_deadline", "reveal_deadline", "committee", "status", "verdicts", "decided_height", "outcome")
    ID_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CHALLENGER_FIELD_NUMBER: _ClassVar[int]
    BOND_FIELD_NUMBER: _ClassVar[int]
    CHALLENGED_FIELD_NUMBER: _ClassVar[int]
    OPENED_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    DRAW_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    COMMIT_DEADLINE_FIELD_NUMBER: _ClassVar[int]
    REVEAL_DEADLINE_FIELD_NUMBER: _ClassVar[int]
    COMMITTEE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    VERDICTS_FIELD_NUMBER: _ClassVar[int]
    DECIDED_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    id: bytes
    job: bytes
    candidates: _containers.RepeatedScalarFieldContainer[int]
    reason: DisputeReason
    challenger: bytes
    bond: int
    challenged: int
    opened_height: int
    draw_height: int
    commit_deadline: int
    reveal_deadline: int
    committee: _containers.RepeatedCompositeFieldContainer[CommitteeMember]
    status: DisputeStatus
    verdicts: _containers.RepeatedScalarFieldContainer[CandidateVerdict]
    decided_height: int
    outcome: str
    def __init__(self, id: _Optional[bytes] = ..., job: _Optional[bytes] = ..., candidates: _Optional[_Iterable[int]] = ..., reason: _Optional[_Union[DisputeReason, str]] = ..., challenger: _Optional[bytes] = ..., bond: _Optional[int] = ..., challenged: _Optional[int] = ..., opened_height: _Optional[int] = ..., draw_height: _Optional[int] = ..., commit_deadline: _Optional[int] = ..., reveal_deadline: _Optional[int] = ..., committee: _Optional[_Iterable[_Union[CommitteeMember, _Mapping]]] = ..., status: _Optional[_Union[DisputeStatus, str]] = ..., verdicts: _Optional[_Iterable[_Union[CandidateVerdict, str]]] = ..., decided_height: _Optional[int] = ..., outcome: _Optional[str] = ...) -> None: ...

class DisputeListQuery(_message.Message):
    __slots__ = ("after", "limit", "open")
    AFTER_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    OPEN_FIELD_NUMBER: _ClassVar[int]
    after: bytes
    limit: int
    open: bool
    def __init__(self, after: _Optional[bytes] = ..., limit: _Optional[int] = ..., open: _Optional[bool] = ...) -> None: ...

class DisputeList(_message.Message):
    __slots__ = ("disputes", "more")
    DISPUTES_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    disputes: _containers.RepeatedCompositeFieldContainer[Dispute]
    more: bool
    def __init__(self, disputes: _Optional[_Iterable[_Union[Dispute, _Mapping]]] = ..., more: _Optional[bool] = ...) -> None: ...

class ExecutorModelQuery(_message.Message):
    __slots__ = ("account", "model")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    account: bytes
    model: bytes
    def __init__(self, account: _Optional[bytes] = ..., model: _Optional[bytes] = ...) -> None: ...

class EvidenceRecord(_message.Message):
    __slots__ = ("positions", "misses", "jobs")
    POSITIONS_FIELD_NUMBER: _ClassVar[int]
    MISSES_FIELD_NUMBER: _ClassVar[int]
    JOBS_FIELD_NUMBER: _ClassVar[int]
    positions: int
    misses: int
    jobs: int
    def __init__(self, positions: _Optional[int] = ..., misses: _Optional[int] = ..., jobs: _Optional[int] = ...) -> None: ...

class SlashingParams(_message.Message):
    __slots__ = ("slash_fraction_double_sign_ppm", "jail_blocks", "max_evidence_age_blocks")
    SLASH_FRACTION_DOUBLE_SIGN_PPM_FIELD_NUMBER: _ClassVar[int]
    JAIL_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    MAX_EVIDENCE_AGE_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    slash_fraction_double_sign_ppm: int
    jail_blocks: int
    max_evidence_age_blocks: int
    def __init__(self, slash_fraction_double_sign_ppm: _Optional[int] = ..., jail_blocks: _Optional[int] = ..., max_evidence_age_blocks: _Optional[int] = ...) -> None: ...

class SlashRecord(_message.Message):
    __slots__ = ("account", "offence", "job", "height", "amount", "burned", "paid", "jailed_until", "braked")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    OFFENCE_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    BURNED_FIELD_NUMBER: _ClassVar[int]
    PAID_FIELD_NUMBER: _ClassVar[int]
    JAILED_UNTIL_FIELD_NUMBER: _ClassVar[int]
    BRAKED_FIELD_NUMBER: _ClassVar[int]
    account: bytes
    offence: str
    job: bytes
    height: int
    amount: int
    burned: int
    paid: int
    jailed_until: int
    braked: bool
    def __init__(self, account: _Optional[bytes] = ..., offence: _Optional[str] = ..., job: _Optional[bytes] = ..., height: _Optional[int] = ..., amount: _Optional[int] = ..., burned: _Optional[int] = ..., paid: _Optional[int] = ..., jailed_until: _Optional[int] = ..., braked: _Optional[bool] = ...) -> None: ...

class BrakeStatus(_message.Message):
    __slots__ = ("engaged", "engaged_power", "total_power", "validators")
    ENGAGED_FIELD_NUMBER: _ClassVar[int]
    ENGAGED_POWER_FIELD_NUMBER: _ClassVar[int]
    TOTAL_POWER_FIELD_NUMBER: _ClassVar[int]
    VALIDATORS_FIELD_NUMBER: _ClassVar[int]
    engaged: bool
    engaged_power: int
    total_power: int
    validators: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, engaged: _Optional[bool] = ..., engaged_power: _Optional[int] = ..., total_power: _Optional[int] = ..., validators: _Optional[_Iterable[bytes]] = ...) -> None: ...

class SlashQuery(_message.Message):
    __slots__ = ("account", "limit")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    account: bytes
    limit: int
    def __init__(self, account: _Optional[bytes] = ..., limit: _Optional[int] = ...) -> None: ...

class SlashList(_message.Message):
    __slots__ = ("slashes",)
    SLASHES_FIELD_NUMBER: _ClassVar[int]
    slashes: _containers.RepeatedCompositeFieldContainer[SlashRecord]
    def __init__(self, slashes: _Optional[_Iterable[_Union[SlashRecord, _Mapping]]] = ...) -> None: ...
