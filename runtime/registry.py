"""The runtime's modules, in one list: the executive, genesis, client and CLI are driven by it.

As FRAME's `construct_runtime!`: the order below is the order of genesis building
and of the per-block hooks (on_initialize first to last, then the transactions,
then on_finalize first to last). A new module is its own file (or package) and its
messages in proto/ (a call is also a field of `TransactionBody`'s `call` oneof, which
the executive dispatches on), and it is added here; the executive, genesis, the
client, the CLI and the node's generic queries then serve it with no other edit.
docs/runtime.md, "Adding a module", walks through it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Iterable, Mapping

from google.protobuf.message import Message

from proto import types_pb2
from runtime import balances, models, randomness, reputation, slashing, system
from runtime.disputes.spec import SPEC as DISPUTES
from runtime.jobs.spec import SPEC as JOBS
from runtime.staking.spec import SPEC as STAKING
from runtime.module import CallSpec, EventSpec, ModuleSpec, check_field_kinds

# The runtime's version (FRAME's `spec_version`): raised whenever the state transition changes, so
# nodes and clients can tell which rules a chain runs. 1: the rules of issue 23 (slashing and
# reputation as modules, block validity in the runtime). 2: issue 24's market (RANDAO-drawn
# assignment, priced prompts, per-model queues, paid reputation, model governance, block weights).
# 3: issue 25's verdicts (disputes on differing or too few digests, audits and challenges judged by a
# committee's commit-reveal votes; slashing and jail of invalid results, missed results and votes).
# 4: slashing owns its parameters (SlashingParams under slashing/params, app_state.slashing.params), which
# were kept in staking's. 5: engine classes (issue 27): models name classes and cross-class thresholds, offers
# name a class, jobs the classes they accept, and draw tables are per (model, class, region). 6: a dispute's
# committee is drawn among its results' own class when that class holds disputes.same_class_share_ppm of the
# eligible stake; genesis refuses a double-sign evidence age that reaches the unbonding period; Sampling.seed_only
# (a job's noise keyed by its seed alone), which executors and verifiers must honour. 7: sealed probes (SealProbe,
# OpenProbe; DisputesParams.sealed_probes_per_epoch): a staker's probe posted as an ordinary job, audited once
# opened; a revoked payment returns to the probe fund what it paid a sealed probe's poster back (Job.probe_fund_claim).
SPEC_VERSION = 8


@dataclass(frozen=True)
class Runtime:
    """The registered modules and indexes over their declarations."""

    modules: tuple[ModuleSpec, ...]
    spec_version: int = SPEC_VERSION
    # The signed message whose `call` oneof carries one field per call, named as the call (FRAME's
    # RuntimeCall): the executive decodes and dispatches by it.
    transaction_body: type[Message] = types_pb2.TransactionBody

    def __post_init__(self) -> None:
        names = [module.name for module in self.modules]
        if len(set(names)) != len(names):
            raise ValueError(f"a module is registered twice: {names}")
        calls = [call.name for module in self.modules for call in module.calls]
        if len(set(calls)) != len(calls):
            raise ValueError(f"a call name is declared twice: {calls}")
        for module in self.modules:
            _check_declarations(module)
        _check_body_fields(self.transaction_body, [call for module in self.modules for call in module.calls])

    def module(self, name: str) -> ModuleSpec | None:
        return next((module for module in self.modules if module.name == name), None)

    @cached_property
    def calls(self) -> Mapping[str, CallSpec]:
        """Every transaction type by its `TransactionBody.call` field name, in module order."""
        return {call.name: call for module in self.modules for call in module.calls}

    def call_module(self, call_name: str) -> ModuleSpec | None:
        """The module that declares a call."""
        return next((module for module in self.modules if any(c.name == call_name for c in module.calls)), None)

    def event(self, module_name: str, event_name: str) -> EventSpec | None:
        module = self.module(module_name)
        if module is None:
            return None
        return next((event for event in module.events if event.name == event_name), None)

    def hooks(self, which: str) -> Iterable:
        """The modules' on_initialize or on_finalize hooks, in registry order."""
        return [getattr(module, which) for module in self.modules if getattr(module, which) is not None]


def _check_declarations(module: ModuleSpec) -> None:
    """Each declared field kind matches its protobuf field; event and query names are unique (ValueError)."""
    for call in module.calls:
        check_field_kinds(call.fields, (call.message,), f"{module.name}.{call.name}")
    for query in module.queries:
        check_field_kinds(query.fields, (query.request, query.response), f"{module.name}.{query.name} (query)")
    for what, names in (("event", [e.name for e in module.events]), ("query", [q.name for q in module.queries])):
        if len(set(names)) != len(names):
            raise ValueError(f"{module.name}: an {what} name is declared twice: {names}")


def _check_body_fields(body: type[Message], calls: Iterable[CallSpec]) -> None:
    """A call the body's `call` oneof carries is carried as its declared message (ValueError otherwise).

    A call the body lacks cannot be sent (the executive refuses the bytes as unknown fields), but its
    module still serves the CLI and queries, so it is allowed here."""
    fields = {field.name: field for field in body.DESCRIPTOR.oneofs_by_name["call"].fields}
    for call in calls:
        field = fields.get(call.name)
        if field is not None and field.message_type.full_name != call.message.DESCRIPTOR.full_name:
            raise ValueError(f"{body.DESCRIPTOR.full_name}.{call.name} carries {field.message_type.full_name}, "
                             f"the call declares {call.message.DESCRIPTOR.full_name}")


RUNTIME = Runtime(
    modules=(system.SPEC, balances.SPEC, models.SPEC, STAKING, slashing.SPEC, reputation.SPEC, randomness.SPEC, JOBS, DISPUTES)
)


def event_attribute_kind(module: str, event: str, key: str) -> str | None:
    """How an event attribute should be shown: "account", "amount", ... (runtime/module.py), or None."""
    spec = RUNTIME.event(module, event)
    return None if spec is None else spec.attributes.get(key)
