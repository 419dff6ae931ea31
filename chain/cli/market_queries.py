"""`inferchain query models|executors`, and how a command line names a registered model.

A model is named by its 64-hex-digit id, a unique id prefix (at least 6 digits) or its registered
name (any case), looked up in the chain's registry (ListModels); the default is the embedded model.
"""

from __future__ import annotations

import argparse

from chain.cli.connection import add_node_argument, node_client
from chain.cli.errors import EXIT_BAD_INPUT, CliError
from chain.cli.output import Token, add_output_argument, print_json, print_table, token_of, u64
from chain.client import Client, Executor, ModelRegistry
from chain.ss58 import encode_address
from chain.text import quote_input
from inference.model_store import MIN_ID_PREFIX
from inference.registration import EMBEDDED_MODEL_ID
from runtime.models import KIND_NAMES, model_to_json

DEFAULT_MODEL = bytes.fromhex(EMBEDDED_MODEL_ID)
# Longer than any id or registered name (runtime/models.py allows 64 characters): refused unread.
MAX_MODEL_TEXT = 80


def register_queries(commands) -> None:
    """Add `query models` and `query executors` to the `query` subcommands."""
    listing = commands.add_parser("models", help="the chain's registered models and the proposals being voted on")
    add_node_argument(listing)
    add_output_argument(listing)
    listing.set_defaults(handler=query_models)

    executors = commands.add_parser(
        "executors", help="accounts offering to execute jobs: models, price, region, capacity, load, stake, reputation"
    )
    executors.add_argument("--model", metavar="MODEL",
                           help="only those serving this model: id, unique id prefix or registered name")
    add_node_argument(executors)
    add_output_argument(executors)
    executors.set_defaults(handler=query_executors)


# --- naming a model -------------------------------------------------------------------


def resolve_model(client: Client, text: str | None) -> bytes:
    """The 32-byte id a --model value names (the embedded model when None); CliError otherwise."""
    if text is None:
        return DEFAULT_MODEL
    wanted = text.strip().lower() if len(text) <= MAX_MODEL_TEXT else ""
    if len(wanted) == 64 and _is_hex(wanted):
        return bytes.fromhex(wanted)
    registry = client.list_models()
    matches = [
        model for model in registry.models
        if model.name.lower() == wanted or (len(wanted) >= MIN_ID_PREFIX and model.id.hex().startswith(wanted))
    ]
    if len(matches) == 1:
        return matches[0].id
    if not matches:
        raise CliError(
            f"no registered model has the id or name {quote_input(text)} (`inferchain query models` lists them)",
            EXIT_BAD_INPUT,
        )
    names = ", ".join(f"{model.name} ({model.id.hex()[:12]})" for model in matches)
    raise CliError(f"{quote_input(text)} names {len(matches)} models: {names}; give more of the id", EXIT_BAD_INPUT)


def _is_hex(text: str) -> bool:
    return all(character in "0123456789abcdef" for character in text)


# --- query models ---------------------------------------------------------------------


def query_models(args: argparse.Namespace) -> int:
    """Print the registered models and the open proposals."""
    with node_client(args) as client:
        registry = client.list_models()
    if args.output == "json":
        print_json(models_document(registry))
        return 0
    print_table(
        ("id", "name", "context", "end tokens", "engine"),
        [(model.id.hex(), model.name, model.context_length, ",".join(map(str, model.end_tokens)), model.engine)
         for model in registry.models],
    )
    if registry.proposals:
        print()
        print_table(
            ("proposal", "kind", "model", "name", "voting ends", "votes (for/all)"),
            [(proposal.proposal_hash.hex(), KIND_NAMES.get(proposal.kind, str(proposal.kind)),
              proposal.model.id.hex(), proposal.model.name, proposal.end_height,
              f"{sum(proposal.approvals)}/{len(proposal.voters)}") for proposal in registry.proposals],
        )
    return 0


def models_document(registry: ModelRegistry) -> dict:
    return {
        "height": u64(registry.height),
        "models": [model_to_json(model) for model in registry.models],
        "proposals": [
            {
                "proposal": proposal.proposal_hash.hex(),
                "kind": KIND_NAMES.get(proposal.kind, str(proposal.kind)),
                "model": model_to_json(proposal.model),
                "proposer": _address(proposal.proposer),
                "deposit": u64(proposal.deposit),
                "end_height": u64(proposal.end_height),
                "votes": [{"voter": _address(voter), "approve": approve}
                          for voter, approve in zip(proposal.voters, proposal.approvals)],
            }
            for proposal in registry.proposals
        ],
    }


# --- query executors ------------------------------------------------------------------


def query_executors(args: argparse.Namespace) -> int:
    """Print the executors (of one model with --model)."""
    with node_client(args) as client:
        model = resolve_model(client, args.model) if args.model is not None else None
        executors = client.get_executors(model)
        token = token_of(client.chain_info()) if args.output == "text" else Token()
    if args.output == "json":
        print_json({"executors": [executor_document(executor) for executor in executors]})
        return 0
    if not executors:
        print("no executors" + (f" serve model {model.hex()}" if model else ""))
        return 0
    print_table(
        ("address", "price per token", "region", "capacity", "load", "bonded", "reputation", "models"),
        [(executor.address, token.format(executor.offer.price_per_token), executor.offer.region or "-",
          executor.offer.capacity, executor.load, token.format(executor.bonded), executor.reputation,
          ",".join(model.hex()[:12] for model in executor.offer.models)) for executor in executors],
    )
    return 0


def executor_document(executor: Executor) -> dict:
    return {
        "account": executor.account.hex(),
        "address": executor.address,
        "models": [model.hex() for model in executor.offer.models],
        "price_per_token": u64(executor.offer.price_per_token),
        "region": executor.offer.region,
        "capacity": executor.offer.capacity,
        "load": executor.load,
        "bonded": u64(executor.bonded),
        "reputation": executor.reputation,
    }


def _address(account: bytes) -> str:
    return encode_address(account) if len(account) == 32 else account.hex()
