"""The state transition function: a pure function of (state, block), one module per concern.

Imports nothing from `chain` or `inference`; runnable and testable alone.
"""

from runtime.executive import (
    BlockExecution,
    TransactionRules,
    apply_block,
    check_transaction,
    transaction_rules,
    validate_transaction,
)
from runtime.genesis import RuntimeGenesis, build_genesis_state, export_app_state, parse_app_state
from runtime.primitives import BlockContext, CheckedTransaction, DispatchError, InvalidTransaction
from runtime.registry import RUNTIME

__all__ = [
    "RUNTIME",
    "BlockContext",
    "BlockExecution",
    "CheckedTransaction",
    "DispatchError",
    "InvalidTransaction",
    "RuntimeGenesis",
    "TransactionRules",
    "apply_block",
    "build_genesis_state",
    "export_app_state",
    "parse_app_state",
    "check_transaction",
    "transaction_rules",
    "validate_transaction",
]
