"""A small world for runtime tests, built without the chain package (the runtime stands alone)."""

from __future__ import annotations

from dataclasses import dataclass, field
from hashlib import blake2b

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from proto import types_pb2
from runtime import balances, jobs, models, slashing, staking, system
from runtime.executive import TRANSACTION_SIGNING_CONTEXT, apply_block, check_transaction, transaction_rules
from runtime.genesis import RuntimeGenesis, build_genesis_state
from runtime.disputes import params as disputes
from runtime.disputes.genesis import GenesisConfig as DisputesGenesis
from runtime.primitives import BlockContext
from runtime.registry import RUNTIME, Runtime
from runtime.staking.genesis import GenesisConfig as StakingGenesis
from runtime.staking.genesis import GenesisStake
from runtime.state import MemoryState

CHAIN_ID = "runtime-test"
GENESIS_HASH = blake2b(b"runtime-test genesis", digest_size=32).digest()
GENESIS_TIME_MS = 1_700_000_000_000
ENDOWMENT = 10**15


@dataclass(frozen=True)
class Account:
    private: Ed25519PrivateKey = field(repr=False)
    public_key: bytes

    @classmethod
    def from_index(cls, index: int) -> "Account":
        seed = blake2b(f"account {index}".encode(), digest_size=32).digest()
        private = Ed25519PrivateKey.from_private_bytes(seed)
        return cls(private, private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


ACCOUNTS = [Account.from_index(index) for index in range(6)]
AUTHOR = ACCOUNTS[0]


def genesis_state(
    endowed: int = 4,
    params: system.Params = system.Params(),
    *,
    more_endowed: tuple[Account, ...] = (),
    registered: tuple[types_pb2.ModelInfo, ...] = (),
    stakes: tuple[GenesisStake, ...] = (),
    staking_params: staking.Params = staking.Params(),
    slashing_params: slashing.Params | None = None,
    models_params: models.Params = models.Params(),
    jobs_params: jobs.Params = jobs.Params(),
    disputes_params: disputes.Params = disputes.Params(),
) -> MemoryState:
    """A chain where the first `endowed` accounts (and `more_endowed`) hold ENDOWMENT each (market modules empty
    unless given). Without slashing_params, the default ones with the evidence age cut below the unbonding period
    (a genesis rule)."""
    if slashing_params is None:
        age = min(slashing.Params().max_evidence_age_blocks, staking_params.unbonding_period_blocks - 1)
        slashing_params = slashing.Params(max_evidence_age_blocks=age)
    config = RuntimeGenesis(
        {
            "system": system.GenesisConfig(CHAIN_ID, GENESIS_HASH, GENESIS_TIME_MS, 1, params),
            "balances": balances.GenesisConfig(
                balances.Params(),
                tuple((account.public_key, ENDOWMENT) for account in (*ACCOUNTS[:endowed], *more_endowed))
            ),
            "models": models.GenesisConfig(models_params, registered),
            "staking": StakingGenesis(staking_params, stakes),
            "slashing": slashing.GenesisConfig(slashing_params),
            "jobs": jobs.GenesisConfig(jobs_params),
            "disputes": DisputesGenesis(disputes_params),
        }
    )
    return MemoryState(build_genesis_state(config))


def assert_events_declared(receipts: types_pb2.BlockReceipts, runtime: Runtime = RUNTIME) -> list[types_pb2.Event]:
    """Every event of the block is declared by its module (runtime/module.py EventSpec), with exactly the
    declared attributes in the declared order; the events, for the test to look at."""
    events = list(receipts.block_events) + [event for receipt in receipts.transactions for event in receipt.events]
    for event in events:
        spec = runtime.event(event.module, event.name)
        assert spec is not None, f"{event.module}.{event.name} is emitted but its module does not declare it"
        keys = [attribute.key for attribute in event.attributes]
        assert keys == list(spec.attributes), (
            f"{event.module}.{event.name} carries {keys}, its declaration says {list(spec.attributes)}"
        )
    return events


def sign(body: types_pb2.TransactionBody, signer: Account) -> bytes:
    raw_body = body.SerializeToString()
    signature = signer.private.sign(TRANSACTION_SIGNING_CONTEXT + raw_body)
    return types_pb2.Transaction(body=raw_body, signature=signature).SerializeToString()


def transfer(signer: Account, dest: bytes, amount: int, nonce: int, fee: int = 10_000, **overrides) -> bytes:
    fields = dict(chain_id=CHAIN_ID, genesis_hash=GENESIS_HASH, sender=signer.public_key, nonce=nonce, fee=fee)
    fields.update(overrides)
    body = types_pb2.TransactionBody(transfer=types_pb2.Transfer(dest=dest, amount=amount), **fields)
    return sign(body, signer)


def run_block(state: MemoryState, raws: list[bytes], height: int | None = None, author: bytes = AUTHOR.public_key):
    """Check and apply a block of raw transactions, commit its writes, return the receipts."""
    rules = transaction_rules(state)
    chain = system.read_chain(state)
    block = BlockContext(height or chain.height + 1, chain.time_ms + 1000, author)
    checked = [check_transaction(raw, rules) for raw in raws]
    writes, receipts = apply_block(state, block, checked, rules)
    assert_events_declared(receipts)
    state.apply(writes.changes())
    return receipts


def free(state, account: Account | bytes) -> int:
    key = account if isinstance(account, bytes) else account.public_key
    info = system.read_account(state, key)
    return 0 if info is None else info.free


def nonce(state, account: Account) -> int:
    info = system.read_account(state, account.public_key)
    return 0 if info is None else info.nonce
