"""`inferchain job submit|status|watch|list|challenge`: post inference jobs to the chain, follow and challenge them.

`job submit "PROMPT" --wait` posts a PostJob, then reports each step on standard error as the chain
takes it (posted, drawing, queued, assigned, committed, revealed, settled) and prints the text on standard
output, in four requests to the node (GetChainInfo, GetExecutors, SubmitTransaction, one WatchJob
stream); `--output json` prints one document instead (the one `job status ID --output json` prints,
which carries the result in the form `inferchain verify` reads, under "result").

A job's answer is only ever a result a committee judged valid or, with no verdict, the reveals the job
settled on (chain/client/jobs.py answer_of): a disputed job has no answer until its verdict, and a
result judged invalid is never shown as one. `job status` of a disputed job shows the dispute (reason,
committee with stake and votes, verdict per candidate) and the slashes it led to; `job challenge` posts
a bonded Challenge of one revealed result (the `tx challenge` call with the job id as an argument).
"""

from __future__ import annotations

import argparse
import sys

from chain.cli.connection import add_node_argument, node_client, resolve_account_argument
from chain.cli.errors import EXIT_FAILURE, EXIT_NOT_INCLUDED, EXIT_USAGE, CliError
from chain.cli.market_queries import (
    committee_text,
    dispute_document,
    phase_text,
    resolve_model,
    slash_document,
    slash_text,
)
from chain.cli.output import Token, add_output_argument, print_fields, print_json, print_table, token_of, u64
from chain.cli.tx import add_submission_arguments, call_command, parse_amount_value, parse_integer, signer_argument
from chain.client import ClientError, JobTimeout, JobView, answer_of, decode_hash, status_name
from chain.client.disputes import MAX_PAGE, is_open, reason_name, verdict_name
from chain.client.jobs import DEFAULT_MAX_TOKENS, assignment_status_name, job_status, post_job_call
from chain.ss58 import encode_address
from chain.text import quote_input
from inference.errors import InferenceError
from inference.result import InferenceJob, InferenceResult
from inference.sampler import SamplingParams
from proto import state_pb2, types_pb2
from runtime.arithmetic import U32_MAX, U64_MAX
from runtime.jobs import FINAL_STATUSES
from runtime.jobs.recipes import PROBE_FUND
from runtime.models import class_name_problem
from runtime.primitives import DispatchError
from runtime.registry import RUNTIME

DEFAULT_SIGNER = "alice"
# A settled job (or one that ended) makes its command exit 0; one that expired, was cancelled or was
# rejected gives no result: the "answer is no" code.
EXIT_NO_RESULT = EXIT_FAILURE
# The runtime call `job challenge` submits (runtime/disputes).
CHALLENGE_CALL = "challenge"
# Why a dispute was opened, for people (DisputeReason).
REASON_TEXTS = {
    state_pb2.DISPUTE_REASON_DIGESTS: "the revealed results differ",
    state_pb2.DISPUTE_REASON_QUORUM: "fewer agreeing results than the job's quorum were revealed",
    state_pb2.DISPUTE_REASON_AUDIT: "a random audit of the settled result",
    state_pb2.DISPUTE_REASON_CHALLENGE: "a bonded challenge",
}


def register(subparsers) -> None:
    """Add `job` and its subcommands."""
    job = subparsers.add_parser("job", help="post inference jobs to the chain and follow them")
    commands = job.add_subparsers(dest="job_command", metavar="COMMAND")
    commands.required = True

    submit = commands.add_parser(
        "submit", help="post a job; with --wait, follow it to its result and print the text",
        description="Post an inference job (PostJob). The escrow (max-tokens plus the prompt's worst-case tokens, "
                    "at max-price x redundancy, plus the minimum protocol fee) is held until the job ends, and a "
                    "storage deposit until its record is pruned; executors are paid for the prompt and output "
                    "tokens they compute at their own price.",
    )
    submit.add_argument("prompt", metavar="PROMPT", help="the prompt, wrapped in the model's chat template unless "
                                                         "--prompt-format raw")
    submit.add_argument("--from", dest="sender", default=DEFAULT_SIGNER, metavar="SIGNER",
                        help=f"who posts and pays: a dev account name or a key file (default: {DEFAULT_SIGNER})")
    submit.add_argument("--model", metavar="MODEL",
                        help="id, unique id prefix or registered name (default: the embedded SmolLM2-135M-Instruct)")
    submit.add_argument("--max-tokens", default=str(DEFAULT_MAX_TOKENS), metavar="N",
                        help=f"most tokens to generate (default: {DEFAULT_MAX_TOKENS})")
    submit.add_argument("--temperature", default="0", metavar="T",
                        help="sampling temperature, a decimal such as 0.8; 0 is greedy (default: 0)")
    submit.add_argument("--top-k", default="40", metavar="K", help="candidates kept by top-k, 0 = all (default: 40)")
    submit.add_argument("--top-p", default="0.95", metavar="P", help="nucleus mass kept after top-k (default: 0.95)")
    submit.add_argument("--seed", default="0", metavar="S", help="unsigned 64-bit seed of the public noise (default: 0)")
    submit.add_argument("--seed-only", action="store_true",
                        help="key the noise by the seed alone, not the job id: the same seed and request give the "
                             "same answer in any job and in `inferchain infer --seed-only` (default: off)")
    submit.add_argument("--redundancy", default="1", metavar="R",
                        help="executors that run the job and must agree (default: 1)")
    submit.add_argument("--max-price", metavar="PRICE",
                        help="most to pay per output token: base units or tokens with the symbol (default: the "
                             "least price at which --redundancy executors serving the model take it)")
    submit.add_argument("--region", default="", metavar="REGION", help="preferred executor region (default: any)")
    submit.add_argument("--engine-class", dest="engine_classes", action="append", default=[], metavar="NAME",
                        help="an engine class of the model whose executors may run the job (cpu: the pinned CPU "
                             "build); repeat for several (default: any class of the model)")
    submit.add_argument("--prompt-format", choices=("chat", "raw"), default="chat",
                        help="chat: the model's chat template wraps the prompt; raw: the prompt as it is "
                             "(default: chat)")
    submit.add_argument("--wait", action="store_true",
                        help="follow the job until it is final, report each step on stderr, print the text")
    _add_timeout_argument(submit)
    _common(submit)
    submit.set_defaults(handler=submit_command)

    status = commands.add_parser("status", help="a job as it stands: status, executors, payments and result")
    status.add_argument("job_id", metavar="JOB_ID", help="the job id (64 hex digits)")
    _common(status)
    status.set_defaults(handler=status_command)

    watch = commands.add_parser("watch", help="follow a job until it is final, reporting each step on stderr")
    watch.add_argument("job_id", metavar="JOB_ID", help="the job id (64 hex digits)")
    _add_timeout_argument(watch)
    _common(watch)
    watch.set_defaults(handler=watch_command)

    listing = commands.add_parser("list", help="jobs newest first, by poster or executor and status")
    listing.add_argument("--poster", metavar="ACCOUNT", help="only jobs this account posted")
    listing.add_argument("--executor", metavar="ACCOUNT", help="only jobs this account was assigned")
    listing.add_argument("--status", metavar="STATUS",
                         help="only jobs in this status: drawing, queued, assigned, revealing, settled, disputed, "
                              "rejected, expired, cancelled")
    listing.add_argument("--limit", default="20", metavar="N", help="jobs per page, 1 to 100 (default: 20)")
    listing.add_argument("--page-token", metavar="HEX", help="where the previous page ended (its next_page_token)")
    _common(listing)
    listing.set_defaults(handler=list_command)

    challenge = commands.add_parser(
        "challenge", help="challenge one revealed result of a settled job, with a bond",
        description="Challenge a revealed result of a settled job inside its challenge window (the `tx challenge` "
                    "call). The bond is reserved; a committee re-scores every revealed result of the job. Judged "
                    "invalid: the bond comes back with a reward from the executor's slash; judged valid: part of the "
                    "bond is burned. Refused before any fee when it cannot succeed (window closed, bond below the "
                    "minimum, no such result, already disputed).",
    )
    challenge.add_argument("job_id", metavar="JOB_ID", help="the job id (64 hex digits)")
    challenge.add_argument("--candidate", required=True, metavar="N",
                           help="the challenged result: its index among the job's executors, from 0, as `job status` "
                                "numbers them")
    challenge.add_argument("--bond", required=True, metavar="AMOUNT",
                           help="the bond: base units, or tokens with the symbol (e.g. 100INFER); at least the "
                                "chain's min_challenge_bond (`query disputes params`)")
    add_submission_arguments(challenge)
    challenge.set_defaults(handler=challenge_command)


def _common(parser: argparse.ArgumentParser) -> None:
    add_node_argument(parser)
    add_output_argument(parser)


def _add_timeout_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=float, metavar="SECONDS",
                        help="give up waiting after this long, exit code 7 (default: until the job is final; the "
                             "chain refunds a job that no executor finishes by its timeout height)")


# --- job submit -----------------------------------------------------------------------


def submit_command(args: argparse.Namespace) -> int:
    """Post the job; with --wait follow it and print its text (or the JSON document)."""
    signer = signer_argument(args.sender)
    max_tokens = parse_integer(args.max_tokens, "--max-tokens", 1, U32_MAX)
    redundancy = parse_integer(args.redundancy, "--redundancy", 1, U32_MAX)
    for name in args.engine_classes:
        problem = class_name_problem(name)
        if problem is not None:
            raise CliError(f"--engine-class: {problem}", EXIT_USAGE)
    sampling = sampling_of(args)
    with node_client(args) as client:
        # Four requests end to end: this one (token, signing context and the signer's nonce), the
        # executors' prices unless --max-price, the submission (its verdict names the job), one watch.
        token = token_of(client.chain_info(signer.public_key))
        model = resolve_model(client, args.model)
        max_price = None
        if args.max_price is not None:
            max_price = parse_amount_value(args.max_price, "--max-price", lambda: token, U64_MAX)
        if max_price is None:
            max_price = client.least_price(model, redundancy, args.engine_classes)
        try:
            call = post_job_call(args.prompt, model=model, max_price_per_token=max_price, max_tokens=max_tokens,
                                 sampling=sampling, redundancy=redundancy, region=args.region,
                                 prompt_format=args.prompt_format, engine_classes=args.engine_classes)
        except ClientError as error:  # it could never succeed, whatever the chain holds
            raise CliError(error.message, EXIT_USAGE) from None
        try:
            view = client.post(signer, call, wait=args.wait, timeout=args.timeout, on_update=Progress(token).update)
        except JobTimeout as late:
            raise _not_final(late) from None
    if not args.wait:
        _print_job(view, args.output, token)
        return 0
    return _print_outcome(view, args.output, token)


def sampling_of(args: argparse.Namespace) -> types_pb2.Sampling:
    """The Sampling message from --temperature, --top-k, --top-p and --seed, read exactly (no floats)."""
    top_k = parse_integer(args.top_k, "--top-k", 0, U32_MAX)
    seed = parse_integer(args.seed, "--seed", 0, U64_MAX)
    if len(args.temperature) > 32 or len(args.top_p) > 32:
        raise CliError("--temperature and --top-p are decimals such as 0.8", EXIT_USAGE)
    try:
        params = SamplingParams.from_decimal(args.temperature, top_k, args.top_p, seed, args.seed_only)
    except InferenceError as error:
        raise CliError(str(error), EXIT_USAGE) from None
    return types_pb2.Sampling(temperature_milli=params.temperature_milli, top_k=params.top_k,
                              top_p_ppm=params.top_p_ppm, seed=params.seed, seed_only=params.seed_only)


def _not_final(late: JobTimeout) -> CliError:
    return CliError(f"{late.message}; follow it with `inferchain job watch {late.view.id.hex()}`", EXIT_NOT_INCLUDED)


def _print_outcome(view: JobView, output: str, token: Token) -> int:
    """The answer of a final job: its text (or JSON), or one error line when it gave none."""
    answer = view.result
    if output == "json":
        print_json(job_document(view))
    elif answer is not None:
        text = answer.text
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    if answer is not None:
        return 0
    raise CliError(f"job {view.id.hex()} {ending_text(view.job, token)}", EXIT_NO_RESULT)


# --- job status, job watch ------------------------------------------------------------------


def status_command(args: argparse.Namespace) -> int:
    """Print the job as it stands, with its dispute and the slashes it led to."""
    job_id = job_id_argument(args.job_id)
    with node_client(args) as client:
        view = client.get_job(job_id)
        slashes = job_slashes(client, view)
        token = token_of(client.chain_info()) if args.output == "text" else Token()
    _print_job(view, args.output, token, slashes)
    return 0


def job_slashes(client, view: JobView) -> list[state_pb2.SlashRecord]:
    """The slashes for this job, newest first: of its executors, its committee and its challenger.

    Asked for only where there can be some: a job with a dispute or a missed commit or reveal."""
    job, dispute = view.job, view.dispute
    missed = any(slot.status == state_pb2.ASSIGNMENT_STATUS_MISSED for slot in job.assignments)
    if dispute is None and not missed:
        return []
    accounts = [slot.executor for slot in job.assignments]
    if dispute is not None:
        accounts += [member.account for member in dispute.committee] + ([dispute.challenger] if dispute.challenger else [])
    found = [slash for account in dict.fromkeys(accounts) for slash in client.slashes(account, MAX_PAGE)
             if slash.job == job.id]
    return sorted(found, key=lambda slash: slash.height, reverse=True)


def watch_command(args: argparse.Namespace) -> int:
    """Report each change of the job on stderr until it is final, then print the result."""
    job_id = job_id_argument(args.job_id)
    with node_client(args) as client:
        token = token_of(client.chain_info())
        progress = Progress(token)
        view = None
        try:
            for view in client.watch_job(job_id, args.timeout):
                progress.update(view)
        except JobTimeout as late:
            raise _not_final(late) from None
    return _print_outcome(view, args.output, token)


def job_id_argument(text: str) -> bytes:
    try:
        return decode_hash(text, "job id")
    except ClientError as error:
        raise CliError(error.message, EXIT_USAGE) from None


# --- job list -------------------------------------------------------------------------


def list_command(args: argparse.Namespace) -> int:
    """Print a page of jobs, newest first."""
    if args.poster is not None and args.executor is not None:
        raise CliError("give --poster or --executor, not both", EXIT_USAGE)
    poster = resolve_account_argument(args.poster) if args.poster is not None else None
    executor = resolve_account_argument(args.executor) if args.executor is not None else None
    limit = parse_integer(args.limit, "--limit", 1, 100)
    status = _status_argument(args.status) if args.status is not None else None
    page_token = _page_token_argument(args.page_token) if args.page_token is not None else b""
    with node_client(args) as client:
        page = client.list_jobs(poster=poster, executor=executor, status=status, limit=limit, page_token=page_token)
        token = token_of(client.chain_info()) if args.output == "text" else Token()
    if args.output == "json":
        print_json({
            "height": u64(page.height),
            "jobs": [job_document(JobView(job, page.height, b"")) for job in page.jobs],
            "next_page_token": page.next_page_token.hex(),
        })
        return 0
    if not page.jobs:
        print("no jobs")
    else:
        print_table(("job", "status", "posted", "poster", "executors", "tokens", "cost"),
                    [_job_row(job, token) for job in page.jobs])
    if page.next_page_token:
        print(f"\nmore: --page-token {page.next_page_token.hex()}")
    return 0


def _status_argument(text: str) -> int:
    try:
        return job_status(text)
    except ClientError as error:
        raise CliError(f"--status: {error.message}", EXIT_USAGE) from None


def _page_token_argument(text: str) -> bytes:
    digits = text.strip()
    try:
        if len(digits) > 400 or not digits.isascii():
            raise ValueError
        return bytes.fromhex(digits)
    except ValueError:
        raise CliError(f"--page-token must be the hex next_page_token of a previous page, got {quote_input(text)}",
                       EXIT_USAGE) from None


def _job_row(job: state_pb2.Job, token: Token) -> tuple:
    executors = ",".join(_address(slot.executor)[:8] + "…" for slot in job.assignments) or "-"
    answer = answer_of(job)
    tokens = PRUNED_TEXT if job.pruned_height else len(answer.tokens) if answer else "-"
    return (job.id.hex(), status_name(job.status), job.posted_height, _address(job.poster), executors, tokens,
            token.format(_cost(job)) if _cost(job) else "-")


# --- showing a job --------------------------------------------------------------------


def _print_job(view: JobView, output: str, token: Token, slashes: list[state_pb2.SlashRecord] = ()) -> None:
    if output == "json":
        document = job_document(view)
        if view.dispute is not None or slashes:
            document["slashes"] = [slash_document(slash) for slash in slashes]
        print_json(document)
        return
    job = view.job
    request = job.request
    sampling = request.sampling
    fields: list[tuple[str, object]] = [
        ("job", job.id.hex()),
        ("status", status_name(job.status)),
        ("at height", view.height),
        ("poster", _address(job.poster)),
        *([("probe", _probe_text(job))] if job.probe else []),
        ("model", request.model.hex()),
        ("prompt", PRUNED_TEXT if job.pruned_height else quote_input(request.prompt, 200)),
        ("max tokens", request.max_tokens),
        ("sampling", f"temperature {sampling.temperature_milli / 1000:g}, top-k {sampling.top_k}, "
                     f"top-p {sampling.top_p_ppm / 1_000_000:g}, seed {sampling.seed}"),
        ("redundancy", request.redundancy),
        ("engine classes", ", ".join(request.engine_classes) or "any"),
        ("max price", f"{token.format(request.max_price_per_token)} per token"),
        ("posted", f"height {job.posted_height}, refunded at height {job.timeout_height} if not settled"),
        ("escrow", token.format(job.escrow)),
        ("storage deposit", token.format(job.storage_deposit)),
    ]
    for index, slot in enumerate(job.assignments):
        fields.append((f"executor #{index}", _slot_text(slot, token)))
    if view.dispute is not None:
        fields += dispute_fields(view.dispute, job, view.height, token)
    fields += [("slash", slash_text(slash, token)) for slash in slashes]
    if job.status in FINAL_STATUSES:
        fields.append(("ended", ending_text(job, token)))
    if job.output_digest:
        fields.append(("output digest", job.output_digest.hex()))
    if job.pruned_height:
        fields.append(("pruned", pruned_text(job)))
    fields += _answer_fields(view)
    print_fields(fields)


def _answer_fields(view: JobView) -> list[tuple[str, object]]:
    """The answer's tokens, stop reason and text; or why there is none where results were revealed."""
    job = view.job
    answer = view.result
    if answer is not None:
        if job.pruned_height:
            return []
        return [("tokens", len(answer.tokens)), ("stop", answer.stop_reason), ("text", answer.text)]
    if not any(slot.status == state_pb2.ASSIGNMENT_STATUS_REVEALED for slot in job.assignments):
        return []
    if job.status == state_pb2.JOB_STATUS_DISPUTED or is_open(view.dispute):
        return [("answer", "none yet: the revealed results are disputed, a committee's verdict decides which "
                           "(if any) is the answer")]
    if job.status in FINAL_STATUSES:
        return [("answer", "none: no revealed result was judged valid")]
    return []


def dispute_fields(dispute: state_pb2.Dispute, job: state_pb2.Job, height: int, token: Token) -> list[tuple[str, object]]:
    """A dispute as `name: value` lines: why, where it stands, the committee and its votes, the verdicts."""
    reason = REASON_TEXTS.get(dispute.reason, reason_name(dispute.reason))
    fields: list[tuple[str, object]] = [
        ("dispute", f"{reason_name(dispute.reason)}: {reason}; opened at height {dispute.opened_height}"),
        ("dispute status", phase_text(dispute)),
    ]
    if dispute.reason == state_pb2.DISPUTE_REASON_CHALLENGE:
        fields.append(("challenge", f"by {_address(dispute.challenger)} of executor #{dispute.challenged}, bond "
                                    f"{token.format(dispute.bond)}"))
    if dispute.committee:
        fields.append(("committee", f"{committee_text(dispute)}, drawn at height {dispute.draw_height}, stake "
                                    f"{token.format(sum(member.stake for member in dispute.committee))}"))
    elif dispute.draw_height > height:
        fields.append(("committee", f"to be drawn at height {dispute.draw_height}"))
    else:
        fields.append(("committee", "none: too few eligible validators"))
    fields += [("member", _member_text(member, token)) for member in dispute.committee]
    verdicts = list(dispute.verdicts)
    for position, candidate in enumerate(dispute.candidates):
        executor = _address(job.assignments[candidate].executor) if candidate < len(job.assignments) else "?"
        verdict = verdict_name(verdicts[position]) if position < len(verdicts) else "pending"
        fields.append((f"verdict #{candidate}", f"{verdict} ({executor})"))
    if dispute.outcome:
        fields.append(("outcome", dispute.outcome))
    return fields


def _member_text(member: state_pb2.CommitteeMember, token: Token) -> str:
    committed = "committed" if member.commitment else "not committed"
    revealed = "revealed" if member.revealed else "not revealed"
    votes = "; ".join(f"#{vote.candidate} {'valid' if vote.valid else 'invalid'} ({vote.misses} misses in "
                      f"{vote.positions} positions)" for vote in member.votes)
    return f"{_address(member.account)} stake {token.format(member.stake)}, {committed}, {revealed}" + (
        f": {votes}" if votes else "")


PRUNED_TEXT = "(pruned)"


def pruned_text(job: state_pb2.Job) -> str:
    """What a pruned record still says, in one line."""
    return (f"at height {job.pruned_height}, when its challenge window closed: the prompt and the revealed tokens, "
            "text and log-probabilities were deleted; statuses, payments, commitments and output digests are kept, "
            "and the storage deposit was returned")


def _probe_text(job: state_pb2.Job) -> str:
    """What kind of probe the job is (docs/protocol.md, "Probes" and "Sealed probes")."""
    if job.poster == PROBE_FUND:
        return "yes: posted by the protocol from the probe fund, always audited"
    return "yes: a sealed probe, opened by its sealer: audited, its poster paid back by the probe fund"


def _slot_text(slot: state_pb2.Assignment, token: Token) -> str:
    text = (f"{_address(slot.executor)} {assignment_status_name(slot.status)} at "
            f"{token.format(slot.price_per_token)} per token, engine class {slot.engine_class or 'cpu'}, "
            f"deadline height {slot.deadline_height}")
    if slot.payment:
        held = "released" if slot.released else f"held until height {slot.release_height}"
        text += f"; paid {token.format(slot.payment)} ({held})"
    if slot.verdict:
        text += f"; judged {verdict_name(slot.verdict)}"
    return text


def ending_text(job: state_pb2.Job, token: Token) -> str:
    """How a final job ended, in one line."""
    status = status_name(job.status)
    if job.status == state_pb2.JOB_STATUS_SETTLED:
        answer = answer_of(job)
        count = len(answer.tokens) if answer else 0
        tokens = "tokens pruned" if job.pruned_height else f"{count} tokens"
        paid = sum(slot.payment for slot in job.assignments)
        payees = sum(1 for slot in job.assignments if slot.payment)
        return (f"settled at height {job.final_height}: {tokens}; paid {token.format(paid)} to "
                f"{payees} executor{'' if payees == 1 else 's'}, protocol fee "
                f"{token.format(job.protocol_fee)}, refunded {token.format(job.refunded)}")
    reason = f": {job.reason}" if job.reason else ""
    return f"{status} at height {job.final_height}{reason}; refunded {token.format(job.refunded)}"


def job_document(view: JobView) -> dict:
    """A job as JSON: the request, where it stands, each executor and payment, and the result."""
    job = view.job
    request = job.request
    document = {
        "job_id": job.id.hex(),
        "status": status_name(job.status),
        "height": u64(view.height),
        "poster": _address(job.poster),
        "probe": job.probe,
        "model": request.model.hex(),
        "prompt": request.prompt,
        "prompt_format": request.prompt_format,
        "max_tokens": request.max_tokens,
        "sampling": _sampling_document(request.sampling),
        "redundancy": request.redundancy,
        "max_price_per_token": u64(request.max_price_per_token),
        "region": request.region,
        "engine_classes": list(request.engine_classes),
        "posted_height": u64(job.posted_height),
        "timeout_height": u64(job.timeout_height),
        "final_height": u64(job.final_height),
        "escrow": u64(job.escrow),
        "cost": u64(_cost(job)),
        "paid": u64(sum(slot.payment for slot in job.assignments)),
        "protocol_fee": u64(job.protocol_fee),
        "refunded": u64(job.refunded),
        "reason": job.reason,
        "storage_deposit": u64(job.storage_deposit),
        "pruned_height": u64(job.pruned_height),
        "output_digest": job.output_digest.hex(),
        "executors": [_slot_document(slot) for slot in job.assignments],
    }
    if view.block_hash:
        document["block_hash"] = view.block_hash.hex()
    if view.dispute is not None:
        document["dispute"] = dispute_document(view.dispute, job)
    answer = view.result
    if answer is not None and not job.pruned_height:
        document.update(text=answer.text, tokens=list(answer.tokens), prompt_tokens=answer.prompt_tokens,
                        stop_reason=answer.stop_reason)
        result = _result_document(job, answer)
        if result is not None:
            document["result"] = result
    return document


def _sampling_document(sampling: types_pb2.Sampling) -> dict:
    return {"temperature_milli": sampling.temperature_milli, "top_k": sampling.top_k,
            "top_p_ppm": sampling.top_p_ppm, "seed": u64(sampling.seed), "seed_only": sampling.seed_only}


def _slot_document(slot: state_pb2.Assignment) -> dict:
    document = {
        "executor": _address(slot.executor),
        "account": slot.executor.hex(),
        "status": assignment_status_name(slot.status),
        "price_per_token": u64(slot.price_per_token),
        "engine_class": slot.engine_class or "cpu",
        "assigned_height": u64(slot.assigned_height),
        "deadline_height": u64(slot.deadline_height),
        "payment": u64(slot.payment),
        "release_height": u64(slot.release_height),
        "released": slot.released,
        "verdict": verdict_name(slot.verdict),
    }
    if slot.status == state_pb2.ASSIGNMENT_STATUS_REVEALED:
        document.update(tokens=len(slot.reveal.tokens), output_digest=slot.reveal.output_digest.hex())
    return document


def _result_document(job: state_pb2.Job, revealed: state_pb2.Reveal) -> dict | None:
    """The revealed result as the inference result document `inferchain verify` reads (docs/verification.md)."""
    request = job.request
    sampling = request.sampling
    try:
        inference_job = InferenceJob(
            model=request.model.hex(), job_id=job.id, prompt=request.prompt, max_tokens=request.max_tokens,
            sampling=SamplingParams.from_message(sampling),
            prompt_format=request.prompt_format,
        )
        result = InferenceResult(inference_job, revealed.prompt_tokens, tuple(revealed.tokens), revealed.text,
                                 tuple(revealed.logprobs_micronats), revealed.stop_reason)
    except InferenceError:
        return None  # what the chain accepted, the engine's format refuses: shown above, not as a result
    return result.to_json()


def _cost(job: state_pb2.Job) -> int:
    """What the poster paid: the executors' payments and the protocol fee."""
    return sum(slot.payment for slot in job.assignments) + job.protocol_fee


def _address(account: bytes) -> str:
    return encode_address(account) if len(account) == 32 else account.hex()


# --- progress lines -------------------------------------------------------------------


class Progress:
    """Writes one line on stderr for each step the chain took with a job since the last view."""

    def __init__(self, token: Token):
        self.token = token
        self.previous: state_pb2.Job | None = None
        self.previous_dispute: state_pb2.Dispute | None = None

    def update(self, view: JobView) -> None:
        lines = progress_lines(self.previous, view.job, self.token)
        lines += dispute_lines(self.previous_dispute, view.dispute)
        for line in lines:
            print(line, file=sys.stderr, flush=True)
        self.previous, self.previous_dispute = view.job, view.dispute


def progress_lines(previous: state_pb2.Job | None, job: state_pb2.Job, token: Token = Token()) -> list[str]:
    """What changed from `previous` (None: the job is new to the reader) to `job`, a line per step."""
    lines = []
    if previous is None:
        lines.append(f"posted job {job.id.hex()} at height {job.posted_height} (escrow {token.format(job.escrow)})")
    for index, slot in enumerate(job.assignments):
        before = previous.assignments[index] if previous is not None and index < len(previous.assignments) else None
        lines += _slot_lines(before, slot, token)
    if previous is None or previous.status != job.status:
        lines += _status_lines(job, token)
    return lines


def _slot_lines(before: state_pb2.Assignment | None, slot: state_pb2.Assignment, token: Token) -> list[str]:
    executor = _address(slot.executor)
    if before is None:
        lines = [f"assigned to {executor} at {token.format(slot.price_per_token)} per token, "
                 f"deadline height {slot.deadline_height}"]
        before = state_pb2.Assignment(status=state_pb2.ASSIGNMENT_STATUS_ASSIGNED)
    else:
        lines = []
    if before.status == slot.status:
        return lines
    if slot.status == state_pb2.ASSIGNMENT_STATUS_COMMITTED:
        lines.append(f"committed: {executor}")
    elif slot.status == state_pb2.ASSIGNMENT_STATUS_REVEALED:
        lines.append(f"revealed: {executor}, {len(slot.reveal.tokens)} tokens at height {slot.reveal.height}")
    elif slot.status == state_pb2.ASSIGNMENT_STATUS_MISSED:
        lines.append(f"missed its deadline: {executor}")
    return lines


def _status_lines(job: state_pb2.Job, token: Token) -> list[str]:
    if job.status == state_pb2.JOB_STATUS_DRAWING:
        return [f"drawing: its executors are drawn at height {job.draw_height}, from randomness revealed after it was posted"]
    if job.status == state_pb2.JOB_STATUS_QUEUED:
        return [f"queued: waiting for a free executor (refunded at height {job.timeout_height} if none comes)"]
    if job.status == state_pb2.JOB_STATUS_REVEALING:
        deadline = max((slot.deadline_height for slot in job.assignments), default=0)
        return [f"revealing: every commitment is in, reveals due by height {deadline}"]
    if job.status == state_pb2.JOB_STATUS_DISPUTED:
        return [f"disputed: {job.reason or 'a dispute is open'}; a committee's verdict decides the answer and who is paid"]
    if job.status in FINAL_STATUSES:
        return [ending_text(job, token)]
    return []


# --- job challenge --------------------------------------------------------------------


def challenge_command(args: argparse.Namespace) -> int:
    """Submit a Challenge of one revealed result (as `tx challenge` does: admission dry run, then submit)."""
    spec = RUNTIME.calls.get(CHALLENGE_CALL)
    if spec is None:
        raise CliError("this inferchain's runtime has no challenge call", EXIT_USAGE)
    args.call_spec, args.call_builder = spec, build_challenge
    return call_command(args)


def build_challenge(spec, args: argparse.Namespace, token) -> types_pb2.Challenge:
    """The Challenge from JOB_ID, --candidate and --bond, after the call's stateless check."""
    call = types_pb2.Challenge(
        job_id=job_id_argument(args.job_id),
        candidate=parse_integer(args.candidate, "--candidate", 0, U32_MAX),
        bond=parse_amount_value(args.bond, "--bond", token, U64_MAX),
    )
    try:
        spec.check(call)
    except DispatchError as error:
        raise CliError(f"challenge can never succeed: {error.message}", EXIT_USAGE) from None
    return call


def dispute_lines(previous: state_pb2.Dispute | None, dispute: state_pb2.Dispute | None) -> list[str]:
    """What changed in a job's dispute: its committee drawn, the reveal phase, each vote, the verdict."""
    if dispute is None:
        return []
    before = previous if previous is not None else state_pb2.Dispute()
    lines = []
    if previous is None:
        lines.append(f"dispute opened ({reason_name(dispute.reason)}): committee drawn at height {dispute.draw_height}")
    if dispute.committee and not before.committee:
        lines.append(f"committee drawn: {len(dispute.committee)} members, commitments by height "
                     f"{dispute.commit_deadline}")
    committed = sum(1 for member in dispute.committee if member.commitment)
    revealed = sum(1 for member in dispute.committee if member.revealed)
    if committed > sum(1 for member in before.committee if member.commitment):
        lines.append(f"votes committed: {committed} of {len(dispute.committee)}")
    if dispute.status == state_pb2.DISPUTE_STATUS_REVEALING and before.status != dispute.status:
        lines.append(f"votes revealing: reveals by height {dispute.reveal_deadline}")
    if revealed > sum(1 for member in before.committee if member.revealed):
        lines.append(f"votes revealed: {revealed} of {len(dispute.committee)}")
    if dispute.status == state_pb2.DISPUTE_STATUS_DECIDED and before.status != dispute.status:
        verdicts = ", ".join(f"#{candidate} {verdict_name(verdict)}"
                             for candidate, verdict in zip(dispute.candidates, dispute.verdicts))
        lines.append(f"dispute decided at height {dispute.decided_height}: {verdicts}"
                     + (f"; {dispute.outcome}" if dispute.outcome else ""))
    return lines
