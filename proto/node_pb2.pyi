from proto import types_pb2 as _types_pb2
from proto import proof_pb2 as _proof_pb2
from proto import state_pb2 as _state_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TransactionStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRANSACTION_STATUS_UNKNOWN: _ClassVar[TransactionStatus]
    TRANSACTION_STATUS_PENDING: _ClassVar[TransactionStatus]
    TRANSACTION_STATUS_INCLUDED: _ClassVar[TransactionStatus]
    TRANSACTION_STATUS_REJECTED: _ClassVar[TransactionStatus]
TRANSACTION_STATUS_UNKNOWN: TransactionStatus
TRANSACTION_STATUS_PENDING: TransactionStatus
TRANSACTION_STATUS_INCLUDED: TransactionStatus
TRANSACTION_STATUS_REJECTED: TransactionStatus

class TokenPiece(_message.Message):
    __slots__ = ("first_token", "tokens", "text", "stop_reason")
    FIRST_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    STOP_REASON_FIELD_NUMBER: _ClassVar[int]
    first_token: int
    tokens: int
    text: str
    stop_reason: str
    def __init__(self, first_token: _Optional[int] = ..., tokens: _Optional[int] = ..., text: _Optional[str] = ..., stop_reason: _Optional[str] = ...) -> None: ...

class PublishTokensRequest(_message.Message):
    __slots__ = ("job_id", "executor", "signature", "piece")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    EXECUTOR_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    PIECE_FIELD_NUMBER: _ClassVar[int]
    job_id: bytes
    executor: bytes
    signature: bytes
    piece: TokenPiece
    def __init__(self, job_id: _Optional[bytes] = ..., executor: _Optional[bytes] = ..., signature: _Optional[bytes] = ..., piece: _Optional[_Union[TokenPiece, _Mapping]] = ...) -> None: ...

class PublishTokensResponse(_message.Message):
    __slots__ = ("pieces",)
    PIECES_FIELD_NUMBER: _ClassVar[int]
    pieces: int
    def __init__(self, pieces: _Optional[int] = ...) -> None: ...

class StreamTokensRequest(_message.Message):
    __slots__ = ("job_id", "executor", "signature", "from_token")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    EXECUTOR_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    FROM_TOKEN_FIELD_NUMBER: _ClassVar[int]
    job_id: bytes
    executor: bytes
    signature: bytes
    from_token: int
    def __init__(self, job_id: _Optional[bytes] = ..., executor: _Optional[bytes] = ..., signature: _Optional[bytes] = ..., from_token: _Optional[int] = ...) -> None: ...

class SubmitTransactionRequest(_message.Message):
    __slots__ = ("transaction",)
    TRANSACTION_FIELD_NUMBER: _ClassVar[int]
    transaction: bytes
    def __init__(self, transaction: _Optional[bytes] = ...) -> None: ...

class SubmitTransactionResponse(_message.Message):
    __slots__ = ("transaction_hash", "dry_run")
    TRANSACTION_HASH_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    transaction_hash: bytes
    dry_run: _types_pb2.Receipt
    def __init__(self, transaction_hash: _Optional[bytes] = ..., dry_run: _Optional[_Union[_types_pb2.Receipt, _Mapping]] = ...) -> None: ...

class SubmitTransactionsRequest(_message.Message):
    __slots__ = ("transactions", "dry_runs")
    TRANSACTIONS_FIELD_NUMBER: _ClassVar[int]
    DRY_RUNS_FIELD_NUMBER: _ClassVar[int]
    transactions: _containers.RepeatedScalarFieldContainer[bytes]
    dry_runs: bool
    def __init__(self, transactions: _Optional[_Iterable[bytes]] = ..., dry_runs: _Optional[bool] = ...) -> None: ...

class TransactionVerdict(_message.Message):
    __slots__ = ("transaction_hash", "accepted", "code", "reason", "dry_run")
    TRANSACTION_HASH_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    transaction_hash: bytes
    accepted: bool
    code: str
    reason: str
    dry_run: _types_pb2.Receipt
    def __init__(self, transaction_hash: _Optional[bytes] = ..., accepted: _Optional[bool] = ..., code: _Optional[str] = ..., reason: _Optional[str] = ..., dry_run: _Optional[_Union[_types_pb2.Receipt, _Mapping]] = ...) -> None: ...

class SubmitTransactionsResponse(_message.Message):
    __slots__ = ("verdicts",)
    VERDICTS_FIELD_NUMBER: _ClassVar[int]
    verdicts: _containers.RepeatedCompositeFieldContainer[TransactionVerdict]
    def __init__(self, verdicts: _Optional[_Iterable[_Union[TransactionVerdict, _Mapping]]] = ...) -> None: ...

class SimulateTransactionRequest(_message.Message):
    __slots__ = ("transaction",)
    TRANSACTION_FIELD_NUMBER: _ClassVar[int]
    transaction: bytes
    def __init__(self, transaction: _Optional[bytes] = ...) -> None: ...

class SimulateTransactionResponse(_message.Message):
    __slots__ = ("transaction_hash", "valid", "code", "reason", "fee", "minimum_fee", "events")
    TRANSACTION_HASH_FIELD_NUMBER: _ClassVar[int]
    VALID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    FEE_FIELD_NUMBER: _ClassVar[int]
    MINIMUM_FEE_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    transaction_hash: bytes
    valid: bool
    code: str
    reason: str
    fee: int
    minimum_fee: int
    events: _containers.RepeatedCompositeFieldContainer[_types_pb2.Event]
    def __init__(self, transaction_hash: _Optional[bytes] = ..., valid: _Optional[bool] = ..., code: _Optional[str] = ..., reason: _Optional[str] = ..., fee: _Optional[int] = ..., minimum_fee: _Optional[int] = ..., events: _Optional[_Iterable[_Union[_types_pb2.Event, _Mapping]]] = ...) -> None: ...

class GetTransactionRequest(_message.Message):
    __slots__ = ("transaction_hash",)
    TRANSACTION_HASH_FIELD_NUMBER: _ClassVar[int]
    transaction_hash: bytes
    def __init__(self, transaction_hash: _Optional[bytes] = ...) -> None: ...

class GetTransactionResponse(_message.Message):
    __slots__ = ("transaction_hash", "status", "height", "block_hash", "index", "receipt", "transaction", "reason", "header", "transaction_proof", "receipt_bytes", "receipt_proof")
    TRANSACTION_HASH_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    BLOCK_HASH_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    TRANSACTION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    HEADER_FIELD_NUMBER: _ClassVar[int]
    TRANSACTION_PROOF_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_BYTES_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_PROOF_FIELD_NUMBER: _ClassVar[int]
    transaction_hash: bytes
    status: TransactionStatus
    height: int
    block_hash: bytes
    index: int
    receipt: _types_pb2.Receipt
    transaction: bytes
    reason: str
    header: bytes
    transaction_proof: _proof_pb2.MerkleProof
    receipt_bytes: bytes
    receipt_proof: _proof_pb2.MerkleProof
    def __init__(self, transaction_hash: _Optional[bytes] = ..., status: _Optional[_Union[TransactionStatus, str]] = ..., height: _Optional[int] = ..., block_hash: _Optional[bytes] = ..., index: _Optional[int] = ..., receipt: _Optional[_Union[_types_pb2.Receipt, _Mapping]] = ..., transaction: _Optional[bytes] = ..., reason: _Optional[str] = ..., header: _Optional[bytes] = ..., transaction_proof: _Optional[_Union[_proof_pb2.MerkleProof, _Mapping]] = ..., receipt_bytes: _Optional[bytes] = ..., receipt_proof: _Optional[_Union[_proof_pb2.MerkleProof, _Mapping]] = ...) -> None: ...

class GetBlockRequest(_message.Message):
    __slots__ = ("height", "hash")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    height: int
    hash: bytes
    def __init__(self, height: _Optional[int] = ..., hash: _Optional[bytes] = ...) -> None: ...

class GetBlockResponse(_message.Message):
    __slots__ = ("block_hash", "block", "commit", "receipts")
    BLOCK_HASH_FIELD_NUMBER: _ClassVar[int]
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    RECEIPTS_FIELD_NUMBER: _ClassVar[int]
    block_hash: bytes
    block: _types_pb2.Block
    commit: _types_pb2.Commit
    receipts: _types_pb2.BlockReceipts
    def __init__(self, block_hash: _Optional[bytes] = ..., block: _Optional[_Union[_types_pb2.Block, _Mapping]] = ..., commit: _Optional[_Union[_types_pb2.Commit, _Mapping]] = ..., receipts: _Optional[_Union[_types_pb2.BlockReceipts, _Mapping]] = ...) -> None: ...

class GetAccountRequest(_message.Message):
    __slots__ = ("account", "address")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    account: bytes
    address: str
    def __init__(self, account: _Optional[bytes] = ..., address: _Optional[str] = ...) -> None: ...

class GetAccountResponse(_message.Message):
    __slots__ = ("account", "address", "free", "reserved", "nonce", "next_nonce", "height", "block_hash", "state_root", "state_key", "state_value", "proof", "exists")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    FREE_FIELD_NUMBER: _ClassVar[int]
    RESERVED_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    NEXT_NONCE_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    BLOCK_HASH_FIELD_NUMBER: _ClassVar[int]
    STATE_ROOT_FIELD_NUMBER: _ClassVar[int]
    STATE_KEY_FIELD_NUMBER: _ClassVar[int]
    STATE_VALUE_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    EXISTS_FIELD_NUMBER: _ClassVar[int]
    account: bytes
    address: str
    free: int
    reserved: int
    nonce: int
    next_nonce: int
    height: int
    block_hash: bytes
    state_root: bytes
    state_key: bytes
    state_value: bytes
    proof: _proof_pb2.StateProof
    exists: bool
    def __init__(self, account: _Optional[bytes] = ..., address: _Optional[str] = ..., free: _Optional[int] = ..., reserved: _Optional[int] = ..., nonce: _Optional[int] = ..., next_nonce: _Optional[int] = ..., height: _Optional[int] = ..., block_hash: _Optional[bytes] = ..., state_root: _Optional[bytes] = ..., state_key: _Optional[bytes] = ..., state_value: _Optional[bytes] = ..., proof: _Optional[_Union[_proof_pb2.StateProof, _Mapping]] = ..., exists: _Optional[bool] = ...) -> None: ...

class GetChainInfoRequest(_message.Message):
    __slots__ = ("signer",)
    SIGNER_FIELD_NUMBER: _ClassVar[int]
    signer: bytes
    def __init__(self, signer: _Optional[bytes] = ...) -> None: ...

class ChainInfo(_message.Message):
    __slots__ = ("chain_id", "genesis_hash", "best_height", "best_hash", "finalized_height", "finalized_hash", "block_time_ms", "node_version", "pending_transactions", "ss58_prefix_name", "ss58_prefix", "base_fee", "fee_per_byte", "max_transaction_bytes", "existential_deposit", "token_symbol", "token_decimals", "peers", "consensus_round", "syncing", "is_validator", "validators", "total_voting_power", "signer_next_nonce", "spec_version", "fee_per_weight")
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    GENESIS_HASH_FIELD_NUMBER: _ClassVar[int]
    BEST_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    BEST_HASH_FIELD_NUMBER: _ClassVar[int]
    FINALIZED_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    FINALIZED_HASH_FIELD_NUMBER: _ClassVar[int]
    BLOCK_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    NODE_VERSION_FIELD_NUMBER: _ClassVar[int]
    PENDING_TRANSACTIONS_FIELD_NUMBER: _ClassVar[int]
    SS58_PREFIX_NAME_FIELD_NUMBER: _ClassVar[int]
    SS58_PREFIX_FIELD_NUMBER: _ClassVar[int]
    BASE_FEE_FIELD_NUMBER: _ClassVar[int]
    FEE_PER_BYTE_FIELD_NUMBER: _ClassVar[int]
    MAX_TRANSACTION_BYTES_FIELD_NUMBER: _ClassVar[int]
    EXISTENTIAL_DEPOSIT_FIELD_NUMBER: _ClassVar[int]
    TOKEN_SYMBOL_FIELD_NUMBER: _ClassVar[int]
    TOKEN_DECIMALS_FIELD_NUMBER: _ClassVar[int]
    PEERS_FIELD_NUMBER: _ClassVar[int]
    CONSENSUS_ROUND_FIELD_NUMBER: _ClassVar[int]
    SYNCING_FIELD_NUMBER: _ClassVar[int]
    IS_VALIDATOR_FIELD_NUMBER: _ClassVar[int]
    VALIDATORS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_VOTING_POWER_FIELD_NUMBER: _ClassVar[int]
    SIGNER_NEXT_NONCE_FIELD_NUMBER: _ClassVar[int]
    SPEC_VERSION_FIELD_NUMBER: _ClassVar[int]
    FEE_PER_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    chain_id: str
    genesis_hash: bytes
    best_height: int
    best_hash: bytes
    finalized_height: int
    finalized_hash: bytes
    block_time_ms: int
    node_version: str
    pending_transactions: int
    ss58_prefix_name: str
    ss58_prefix: int
    base_fee: int
    fee_per_byte: int
    max_transaction_bytes: int
    existential_deposit: int
    token_symbol: str
    token_decimals: int
    peers: int
    consensus_round: int
    syncing: bool
    is_validator: bool
    validators: int
    total_voting_power: int
    signer_next_nonce: int
    spec_version: int
    fee_per_weight: int
    def __init__(self, chain_id: _Optional[str] = ..., genesis_hash: _Optional[bytes] = ..., best_height: _Optional[int] = ..., best_hash: _Optional[bytes] = ..., finalized_height: _Optional[int] = ..., finalized_hash: _Optional[bytes] = ..., block_time_ms: _Optional[int] = ..., node_version: _Optional[str] = ..., pending_transactions: _Optional[int] = ..., ss58_prefix_name: _Optional[str] = ..., ss58_prefix: _Optional[int] = ..., base_fee: _Optional[int] = ..., fee_per_byte: _Optional[int] = ..., max_transaction_bytes: _Optional[int] = ..., existential_deposit: _Optional[int] = ..., token_symbol: _Optional[str] = ..., token_decimals: _Optional[int] = ..., peers: _Optional[int] = ..., consensus_round: _Optional[int] = ..., syncing: _Optional[bool] = ..., is_validator: _Optional[bool] = ..., validators: _Optional[int] = ..., total_voting_power: _Optional[int] = ..., signer_next_nonce: _Optional[int] = ..., spec_version: _Optional[int] = ..., fee_per_weight: _Optional[int] = ...) -> None: ...

class GetStateProofRequest(_message.Message):
    __slots__ = ("key", "height")
    KEY_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    height: int
    def __init__(self, key: _Optional[bytes] = ..., height: _Optional[int] = ...) -> None: ...

class GetStateProofResponse(_message.Message):
    __slots__ = ("height", "block_hash", "state_root", "exists", "value", "proof")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    BLOCK_HASH_FIELD_NUMBER: _ClassVar[int]
    STATE_ROOT_FIELD_NUMBER: _ClassVar[int]
    EXISTS_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    height: int
    block_hash: bytes
    state_root: bytes
    exists: bool
    value: bytes
    proof: _proof_pb2.StateProof
    def __init__(self, height: _Optional[int] = ..., block_hash: _Optional[bytes] = ..., state_root: _Optional[bytes] = ..., exists: _Optional[bool] = ..., value: _Optional[bytes] = ..., proof: _Optional[_Union[_proof_pb2.StateProof, _Mapping]] = ...) -> None: ...

class SubscribeBlocksRequest(_message.Message):
    __slots__ = ("from_height",)
    FROM_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    from_height: int
    def __init__(self, from_height: _Optional[int] = ...) -> None: ...

class BlockEvent(_message.Message):
    __slots__ = ("height", "block_hash", "block", "receipts")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    BLOCK_HASH_FIELD_NUMBER: _ClassVar[int]
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    RECEIPTS_FIELD_NUMBER: _ClassVar[int]
    height: int
    block_hash: bytes
    block: _types_pb2.Block
    receipts: _types_pb2.BlockReceipts
    def __init__(self, height: _Optional[int] = ..., block_hash: _Optional[bytes] = ..., block: _Optional[_Union[_types_pb2.Block, _Mapping]] = ..., receipts: _Optional[_Union[_types_pb2.BlockReceipts, _Mapping]] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: bytes
    def __init__(self, job_id: _Optional[bytes] = ...) -> None: ...

class WatchJobRequest(_message.Message):
    __slots__ = ("job_id", "transaction_hash")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    TRANSACTION_HASH_FIELD_NUMBER: _ClassVar[int]
    job_id: bytes
    transaction_hash: bytes
    def __init__(self, job_id: _Optional[bytes] = ..., transaction_hash: _Optional[bytes] = ...) -> None: ...

class WatchAssignmentsRequest(_message.Message):
    __slots__ = ("executor", "from_height", "job_ids")
    EXECUTOR_FIELD_NUMBER: _ClassVar[int]
    FROM_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    JOB_IDS_FIELD_NUMBER: _ClassVar[int]
    executor: bytes
    from_height: int
    job_ids: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, executor: _Optional[bytes] = ..., from_height: _Optional[int] = ..., job_ids: _Optional[_Iterable[bytes]] = ...) -> None: ...

class AssignmentsUpdate(_message.Message):
    __slots__ = ("height", "block_hash", "time_ms", "jobs", "receipts", "events")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    BLOCK_HASH_FIELD_NUMBER: _ClassVar[int]
    TIME_MS_FIELD_NUMBER: _ClassVar[int]
    JOBS_FIELD_NUMBER: _ClassVar[int]
    RECEIPTS_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    height: int
    block_hash: bytes
    time_ms: int
    jobs: _containers.RepeatedCompositeFieldContainer[_state_pb2.Job]
    receipts: _containers.RepeatedCompositeFieldContainer[_types_pb2.Receipt]
    events: _containers.RepeatedCompositeFieldContainer[_types_pb2.Event]
    def __init__(self, height: _Optional[int] = ..., block_hash: _Optional[bytes] = ..., time_ms: _Optional[int] = ..., jobs: _Optional[_Iterable[_Union[_state_pb2.Job, _Mapping]]] = ..., receipts: _Optional[_Iterable[_Union[_types_pb2.Receipt, _Mapping]]] = ..., events: _Optional[_Iterable[_Union[_types_pb2.Event, _Mapping]]] = ...) -> None: ...

class JobView(_message.Message):
    __slots__ = ("job", "height", "block_hash", "dispute")
    JOB_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    BLOCK_HASH_FIELD_NUMBER: _ClassVar[int]
    DISPUTE_FIELD_NUMBER: _ClassVar[int]
    job: _state_pb2.Job
    height: int
    block_hash: bytes
    dispute: _state_pb2.Dispute
    def __init__(self, job: _Optional[_Union[_state_pb2.Job, _Mapping]] = ..., height: _Optional[int] = ..., block_hash: _Optional[bytes] = ..., dispute: _Optional[_Union[_state_pb2.Dispute, _Mapping]] = ...) -> None: ...

class GetDisputeRequest(_message.Message):
    __slots__ = ("dispute",)
    DISPUTE_FIELD_NUMBER: _ClassVar[int]
    dispute: bytes
    def __init__(self, dispute: _Optional[bytes] = ...) -> None: ...

class ListDisputesRequest(_message.Message):
    __slots__ = ("after", "limit", "open", "member")
    AFTER_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    OPEN_FIELD_NUMBER: _ClassVar[int]
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    after: bytes
    limit: int
    open: bool
    member: bytes
    def __init__(self, after: _Optional[bytes] = ..., limit: _Optional[int] = ..., open: _Optional[bool] = ..., member: _Optional[bytes] = ...) -> None: ...

class GetSlashesRequest(_message.Message):
    __slots__ = ("account", "limit")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    account: bytes
    limit: int
    def __init__(self, account: _Optional[bytes] = ..., limit: _Optional[int] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("poster", "executor", "status", "limit", "page_token")
    POSTER_FIELD_NUMBER: _ClassVar[int]
    EXECUTOR_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    poster: bytes
    executor: bytes
    status: _state_pb2.JobStatus
    limit: int
    page_token: bytes
    def __init__(self, poster: _Optional[bytes] = ..., executor: _Optional[bytes] = ..., status: _Optional[_Union[_state_pb2.JobStatus, str]] = ..., limit: _Optional[int] = ..., page_token: _Optional[bytes] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs", "next_page_token", "height")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[_state_pb2.Job]
    next_page_token: bytes
    height: int
    def __init__(self, jobs: _Optional[_Iterable[_Union[_state_pb2.Job, _Mapping]]] = ..., next_page_token: _Optional[bytes] = ..., height: _Optional[int] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models", "proposals", "height")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    PROPOSALS_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[_types_pb2.ModelInfo]
    proposals: _containers.RepeatedCompositeFieldContainer[_state_pb2.ModelProposal]
    height: int
    def __init__(self, models: _Optional[_Iterable[_Union[_types_pb2.ModelInfo, _Mapping]]] = ..., proposals: _Optional[_Iterable[_Union[_state_pb2.ModelProposal, _Mapping]]] = ..., height: _Optional[int] = ...) -> None: ...

class GetExecutorsRequest(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: bytes
    def __init__(self, model: _Optional[bytes] = ...) -> None: ...

class ExecutorView(_message.Message):
    __slots__ = ("account", "address", "offer", "bonded", "reputation", "load")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    OFFER_FIELD_NUMBER: _ClassVar[int]
    BONDED_FIELD_NUMBER: _ClassVar[int]
    REPUTATION_FIELD_NUMBER: _ClassVar[int]
    LOAD_FIELD_NUMBER: _ClassVar[int]
    account: bytes
    address: str
    offer: _state_pb2.Offer
    bonded: int
    reputation: int
    load: int
    def __init__(self, account: _Optional[bytes] = ..., address: _Optional[str] = ..., offer: _Optional[_Union[_state_pb2.Offer, _Mapping]] = ..., bonded: _Optional[int] = ..., reputation: _Optional[int] = ..., load: _Optional[int] = ...) -> None: ...

class GetExecutorsResponse(_message.Message):
    __slots__ = ("executors", "height")
    EXECUTORS_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    executors: _containers.RepeatedCompositeFieldContainer[ExecutorView]
    height: int
    def __init__(self, executors: _Optional[_Iterable[_Union[ExecutorView, _Mapping]]] = ..., height: _Optional[int] = ...) -> None: ...
