"""Weights: the declared worst-case execution cost of each call and block hook (docs/protocol.md, "Block validity").

As Substrate's `ref_time` weights: one weight unit is one nanosecond of reference execution,
measured on the calibration machine (bench/market.py; docs/economics.md, "Work per block"), with
headroom for noise. A block's transactions and hooks together may declare at most
`max_block_weight` (runtime/block.py), so its execution time is bounded whatever it holds, and the
minimum fee charges `fee_per_weight` for each transaction's weight (runtime/system.py).

A call's weight is a function of the call message alone (its list lengths and byte sizes, which its
stateless check bounds) and of the bounds below: every node, pool and client computes the same
weight before executing anything, so the block weight rule is checked before the block runs, and
a client computes its fee offline. What a call's work depends on in state (executors serving a
model, assignments of a job) is bounded by a parameter whose ceiling is declared here; genesis
refuses parameters above these ceilings (`check_parameter_bounds`), since the weights would then
understate the work.

This module imports nothing from the runtime, so any module may declare its weights from it.
"""

from __future__ import annotations

# --- ceilings the weights are declared for (parameters may not exceed them) ----------------------

# staking.params.max_executors_per_model: a PostJob may read the offer of every executor serving the model,
# and a draw table holds one entry per executor.
MAX_EXECUTORS_PER_MODEL = 1_000
# staking.params.max_validators at the ceiling genesis enforces (runtime/disputes/genesis.py): committees are drawn from
# the validator set and the slashing brake tallies it.
MAX_VALIDATORS = 1_000
# jobs.params.max_redundancy: a job's assignments (settlement pays each, deadlines handle each).
MAX_REDUNDANCY = 8
# jobs.params.max_prompt_bytes: the output digest hashes the job's prompt at every reveal.
MAX_PROMPT_BYTES = 65_536
# staking.params.max_offer_models: a SetOffer rewrites one serving list per model it adds or drops.
MAX_OFFER_MODELS = 16

# --- measured unit costs (nanoseconds of reference execution) ----------------------------------
#
# Reference: this project's 2-core machine (docs/economics.md, "Work per block"), measured with
# bench/market.py, bench/transfers.py and bench/state_tree.py; each figure is at or above the measured
# one, so a block's declared weight bounds its execution time there.

# Verifying one Ed25519 signature: 6,380 verifications/s single-threaded (bench/transfers.py, README).
SIGNATURE = 160_000
# The rest of a transaction's fixed work: decode, hash, validate (nonce, fee), charge the fee, run the
# call in its own state layer, write the receipt (a transfer with its signature already checked: 78 us).
TRANSACTION = 60_000
# Each byte of a transaction, a prompt or a result: hashing, decoding, copying into a record.
BYTE = 5
# One state read of a small record, decoded (1.5 us in memory; more on the node's LevelDB with checksums).
READ = 3_000
# One state write, with its share of the state root: 29,400 changed keys/s (bench/state_tree.py, README).
WRITE = 30_000
# One executor considered without a draw table: its serving-list entry, offer and bond read and compared
# (4.7 us measured at 1,000 executors).
CANDIDATE = 3 * READ
# One executor drawn from a draw table: a binary search of the table (16 reads per halving, generous for the
# running-sum and refusal steps), the weight-now reads, the assignment written (1.8 ms per job of 5 executors
# at 1,000 executors, table build included).
PICK = 60_000
PICK_PER_HALVING = 16 * READ
# One executor's entry in a model's draw table: offer, bond and reputation read, the entry written and the old
# one deleted, the sort (62 us in memory at 1,000 executors, before the state root).
TABLE_ENTRY = 3 * READ + 2 * WRITE + 50_000
# One assignment settled, missed or released: two balances moved, reputation adjusted, an event.
SLOT = 3 * READ + 3 * WRITE
# One revealed token: its stop-rule check and its digest encoding.
RESULT_TOKEN = 600
# One entry of a stored list (serving list, voters, candidates, schedule) decoded and encoded again.
LIST_ENTRY = 150

# A call, or a module's hooks, with no declared weight is charged this much (a conservative default, not a measure).
UNDECLARED_CALL = 5_000_000
UNDECLARED_HOOKS = 5_000_000


def halvings(count: int) -> int:
    """Steps of a binary search over `count` entries."""
    return max(1, count.bit_length())


def offers_scan(executors: int) -> int:
    """Every executor serving a model read and compared, without a draw table."""
    return 4 * READ + executors * CANDIDATE


def draw(executors: int, count: int) -> int:
    """`count` executors drawn from a draw table of `executors` entries and their assignments written."""
    return 2 * READ + count * (PICK + halvings(executors) * PICK_PER_HALVING)


def table_build(executors: int) -> int:
    """A model's draw table built for an epoch."""
    return 4 * READ + executors * TABLE_ENTRY


def check_parameter_bounds(max_executors_per_model: int, max_redundancy: int, max_prompt_bytes: int,
                           max_offer_models: int) -> None:
    """Refuse parameters above the ceilings the weights were declared for (ValueError naming the parameter)."""
    for name, value, ceiling in (
        ("staking.params.max_executors_per_model", max_executors_per_model, MAX_EXECUTORS_PER_MODEL),
        ("jobs.params.max_redundancy", max_redundancy, MAX_REDUNDANCY),
        ("jobs.params.max_prompt_bytes", max_prompt_bytes, MAX_PROMPT_BYTES),
        ("staking.params.max_offer_models", max_offer_models, MAX_OFFER_MODELS),
    ):
        if value > ceiling:
            raise ValueError(
                f"{name} is {value}, above {ceiling}, the most the call weights are declared for (runtime/weights.py); "
                "a larger value needs new weights measured with bench/market.py"
            )
