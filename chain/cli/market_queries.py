"""`inferchain query models|executors|disputes|slashes`, and how a command line names a registered model.

A model is named by its 64-hex-digit id, a unique id prefix (at least 6 digits) or its registered
name (any case), looked up in the chain's registry (ListModels); the default is the embedded model.

`query disputes` lists disputes by id (ListDisputes): every one, the open ones (--open), or the ones
waiting for a committee member's vote (--member); `query slashes [ACCOUNT]` the slashes newest first
(GetSlashes). The disputes module's own queries stay under `query disputes QUERY` (module_queries.py).
How a dispute and a slash are shown (dispute_document, slash_document, ...) is written here once and
used by `job status` too.
"""

from __future__ import annotations

import argparse

from chain.cli.connection import add_node_argument, node_client, resolve_account_argument
from chain.cli.errors import EXIT_BAD_INPUT, EXIT_USAGE, CliError
from chain.cli.fields import parse_integer
from chain.cli.output import Token, add_output_argument, print_json, print_table, token_of, u64
from chain.client import Client, ClientError, Executor, ModelRegistry, decode_hash
from chain.client.disputes import MAX_PAGE, DisputePage, dispute_status_name, reason_name, verdict_name
from chain.ss58 import encode_address
from chain.text import quote_input
from proto import state_pb2
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
        "executors", help="accounts offering to execute jobs: models, price, region, engine class, capacity, load, stake, reputation"
    )
    executors.add_argument("--model", metavar="MODEL",
                           help="only those serving this model: id, unique id prefix or registered name")
    add_node_argument(executors)
    add_output_argument(executors)
    executors.set_defaults(handler=query_executors)

    disputes = commands.add_parser(
        "disputes", help="disputes by id: every one, the open ones, or those waiting for a member's vote",
        description="Disputes by id (a dispute's id is its job's id): reason, status, committee and verdicts. "
                    "The disputes module's own queries are subcommands (`query disputes evidence ...`).",
    )
    disputes.add_argument("--open", action="store_true", help="only disputes still waiting for their verdict")
    disputes.add_argument("--member", metavar="ACCOUNT",
                          help="only the open disputes waiting for this committee member's vote commitment or reveal")
    disputes.add_argument("--after", metavar="DISPUTE_ID", help="start after this dispute id (the last one shown)")
    disputes.add_argument("--limit", default=str(MAX_PAGE), metavar="N",
                          help=f"disputes per page, 1 to {MAX_PAGE} (default: {MAX_PAGE})")
    add_node_argument(disputes)
    add_output_argument(disputes)
    disputes.set_defaults(handler=query_disputes)

    slashes = commands.add_parser("slashes", help="slashes newest first: of one account, or of every account")
    slashes.add_argument("account", metavar="ACCOUNT", nargs="?",
                         help="dev name, key file, SS58 address or hex public key (default: every account)")
    slashes.add_argument("--limit", default=str(MAX_PAGE), metavar="N",
                         help=f"slashes to show, 1 to {MAX_PAGE} (default: {MAX_PAGE})")
    add_node_argument(slashes)
    add_output_argument(slashes)
    slashes.set_defaults(handler=query_slashes)


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
        ("address", "price per token", "region", "engine class", "capacity", "load", "bonded", "reputation", "models"),
        [(executor.address, token.format(executor.offer.price_per_token), executor.offer.region or "-",
          executor.offer.engine_class or "cpu", executor.offer.capacity, executor.load, token.format(executor.bonded), executor.reputation,
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
        "engine_class": executor.offer.engine_class or "cpu",
        "capacity": executor.offer.capacity,
        "load": executor.load,
        "bonded": u64(executor.bonded),
        "reputation": executor.reputation,
    }


def _address(account: bytes) -> str:
    return encode_address(account) if len(account) == 32 else account.hex()


# --- query disputes -------------------------------------------------------------------


def query_disputes(args: argparse.Namespace) -> int:
    """Print a page of disputes by id."""
    limit = parse_integer(args.limit, "--limit", 1, MAX_PAGE)
    after = dispute_id_argument(args.after, "--after") if args.after is not None else b""
    member = resolve_account_argument(args.member) if args.member is not None else None
    with node_client(args) as client:
        page = client.disputes(after=after, limit=limit, open=args.open, member=member)
        token = token_of(client.chain_info()) if args.output == "text" else Token()
    if args.output == "json":
        print_json({"disputes": [dispute_document(dispute) for dispute in page.disputes], "more": page.more})
        return 0
    _print_disputes(page, token, "open " if args.open or member else "")
    return 0


def dispute_id_argument(text: str, where: str) -> bytes:
    """A dispute id (its job's id, 64 hex digits); a one-line usage error otherwise."""
    try:
        return decode_hash(text, "dispute id")
    except ClientError as error:
        raise CliError(f"{where}: {error.message}", EXIT_USAGE) from None


def _print_disputes(page: DisputePage, token: Token, kind: str) -> None:
    if not page.disputes:
        print(f"no {kind}disputes")
        return
    print_table(
        ("dispute", "reason", "opened", "phase", "committee", "stake", "verdicts"),
        [(dispute.id.hex(), reason_name(dispute.reason), dispute.opened_height, phase_text(dispute),
          committee_text(dispute), token.format(sum(member.stake for member in dispute.committee)),
          verdicts_text(dispute) or "-") for dispute in page.disputes],
    )
    if page.more:
        print(f"\nmore: --after {page.disputes[-1].id.hex()}")


def committee_text(dispute: state_pb2.Dispute) -> str:
    """'3 (3 committed, 2 revealed)', or '-' before the committee is drawn."""
    members = dispute.committee
    if not members:
        return "-"
    committed = sum(1 for member in members if member.commitment)
    revealed = sum(1 for member in members if member.revealed)
    return f"{len(members)} ({committed} committed, {revealed} revealed)"


def phase_text(dispute: state_pb2.Dispute) -> str:
    """Where the dispute stands and what it waits for, until which height."""
    if dispute.status == state_pb2.DISPUTE_STATUS_DECIDED:
        return f"decided at height {dispute.decided_height}"
    if dispute.status == state_pb2.DISPUTE_STATUS_REVEALING:
        return f"revealing: votes revealed by height {dispute.reveal_deadline}"
    if not dispute.committee:
        return f"waiting for its committee, drawn at height {dispute.draw_height}"
    return f"committing: votes committed by height {dispute.commit_deadline}"


def verdicts_text(dispute: state_pb2.Dispute) -> str:
    """'#0 valid, #1 invalid' (empty before the verdict)."""
    return ", ".join(f"#{candidate} {verdict_name(verdict)}"
                     for candidate, verdict in zip(dispute.candidates, dispute.verdicts))


def dispute_document(dispute: state_pb2.Dispute, job: state_pb2.Job | None = None) -> dict:
    """A dispute as JSON: reason, phase, deadlines, challenge, committee and votes, and the verdict per candidate
    (with the candidate's executor and output digest when its job is given)."""
    verdicts = list(dispute.verdicts)
    candidates = []
    for position, candidate in enumerate(dispute.candidates):
        entry = {"candidate": candidate,
                 "verdict": verdict_name(verdicts[position]) if position < len(verdicts) else "pending"}
        if job is not None and candidate < len(job.assignments):
            slot = job.assignments[candidate]
            entry.update(executor=_address(slot.executor), output_digest=slot.reveal.output_digest.hex())
        candidates.append(entry)
    document = {
        "id": dispute.id.hex(),
        "job": dispute.job.hex(),
        "reason": reason_name(dispute.reason),
        "status": dispute_status_name(dispute.status),
        "opened_height": u64(dispute.opened_height),
        "draw_height": u64(dispute.draw_height),
        "commit_deadline": u64(dispute.commit_deadline),
        "reveal_deadline": u64(dispute.reveal_deadline),
        "decided_height": u64(dispute.decided_height),
        "outcome": dispute.outcome,
        "candidates": candidates,
        "committee": [_member_document(member) for member in dispute.committee],
    }
    if dispute.reason == state_pb2.DISPUTE_REASON_CHALLENGE:
        document["challenge"] = {"challenger": _address(dispute.challenger), "candidate": dispute.challenged,
                                 "bond": u64(dispute.bond)}
    return document


def _member_document(member: state_pb2.CommitteeMember) -> dict:
    return {
        "member": _address(member.account),
        "account": member.account.hex(),
        "stake": u64(member.stake),
        "committed": bool(member.commitment),
        "revealed": member.revealed,
        "votes": [{"candidate": vote.candidate, "valid": vote.valid, "positions": vote.positions,
                   "misses": vote.misses, "worst_margin_micro": u64(vote.worst_margin_micro)} for vote in member.votes],
    }


# --- query slashes --------------------------------------------------------------------


def query_slashes(args: argparse.Namespace) -> int:
    """Print slashes newest first."""
    limit = parse_integer(args.limit, "--limit", 1, MAX_PAGE)
    account = resolve_account_argument(args.account) if args.account is not None else None
    with node_client(args) as client:
        slashes = client.slashes(account, limit)
        token = token_of(client.chain_info()) if args.output == "text" else Token()
    if args.output == "json":
        print_json({"slashes": [slash_document(slash) for slash in slashes]})
        return 0
    if not slashes:
        print("no slashes" + (f" of {_address(account)}" if account else ""))
        return 0
    print_table(("height", "account", "offence", "job", "amount", "burned", "paid", "jailed until"),
                [(slash.height, _address(slash.account), slash.offence + (" (braked)" if slash.braked else ""),
                  slash.job.hex() or "-",
                  token.format(slash.amount), token.format(slash.burned), token.format(slash.paid),
                  slash.jailed_until or "-") for slash in slashes])
    return 0


def slash_document(slash: state_pb2.SlashRecord) -> dict:
    """A slash as JSON: who, for what, and where the amount went."""
    return {
        "account": slash.account.hex(),
        "address": _address(slash.account),
        "offence": slash.offence,
        "job": slash.job.hex(),
        "height": u64(slash.height),
        "amount": u64(slash.amount),
        "burned": u64(slash.burned),
        "paid": u64(slash.paid),
        "jailed_until": u64(slash.jailed_until),
        "braked": slash.braked,
    }


def slash_text(slash: state_pb2.SlashRecord, token: Token) -> str:
    """One line for a slash: who, what for, how much, and the jail."""
    jail = f", jailed until height {slash.jailed_until}" if slash.jailed_until else ""
    if slash.braked:
        return (f"{_address(slash.account)} {slash.offence} at height {slash.height}: nothing taken, the brake on "
                "slashing held (validators with more than 2/3 of the voting power pulled it)")
    return (f"{_address(slash.account)} {slash.offence} at height {slash.height}: {token.format(slash.amount)} "
            f"(burned {token.format(slash.burned)}, paid {token.format(slash.paid)}){jail}")
