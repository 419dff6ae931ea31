"""`inferchain tx withdraw|offer|clear-offer`: staking commands named and shaped for people.

`tx` builds one command per runtime call from the registry (chain/cli/tx.py), which covers `tx bond
--amount A [--validate]` and `tx unbond --amount A`. It cannot give an offer's models (a repeated
field) an option of their own, so `tx offer` takes `--model ID` once per model; `tx withdraw` and
`tx clear-offer` are the shorter names of `withdraw_unbonded` and `clear_offer`. The registry's
commands stay beside these. Signing, simulation, submission and output are `tx`'s own
(call_command).
"""

from __future__ import annotations

import argparse
from typing import Callable

from google.protobuf.message import Message

from chain.cli.errors import EXIT_USAGE, CliError
from chain.cli.output import Token
from chain.cli.tx import add_submission_arguments, call_command, parse_amount_value, parse_integer
from chain.text import quote_input
from proto import types_pb2
from runtime.module import CallSpec
from runtime.primitives import DispatchError
from runtime.registry import RUNTIME

U32_MAX = 2**32 - 1
U64_MAX = 2**64 - 1
MODEL_ID_DIGITS = 64


def _command(commands, spec: CallSpec, name: str, help_text: str):
    return commands.add_parser(
        name, help=help_text,
        description=f"{help_text.rstrip('.')} (staking call {spec.name}, message {spec.message.DESCRIPTOR.name}; "
                    f"`tx {spec.name}` is the same call with the registry's options). "
                    "Simulated first; a call that would fail is not submitted.",
    )


def _finish(parser: argparse.ArgumentParser, spec: CallSpec, builder: Callable) -> None:
    add_submission_arguments(parser)
    parser.set_defaults(handler=call_command, call_spec=spec, call_builder=builder)


# --- the commands -----------------------------------------------------------------------


def register_withdraw(commands, spec: CallSpec) -> None:
    parser = _command(commands, spec, "withdraw",
                      "Return unbonded stake whose unbonding period has passed (withdraw_unbonded).")
    _finish(parser, spec, lambda spec, args, token: types_pb2.WithdrawUnbonded())


def register_offer(commands, spec: CallSpec) -> None:
    parser = _command(commands, spec, "offer", "Offer to execute jobs, --model once per model (set_offer).")
    parser.add_argument("--model", dest="models", action="append", required=True, metavar="MODEL_ID",
                        help="a registered model to serve, 64 hex digits (`inferchain query models`); "
                             "repeat for each model")
    parser.add_argument("--price", required=True, metavar="PRICE",
                        help="price per output token: base units (1500) or tokens with the symbol (0.000001INFER)")
    parser.add_argument("--region", default="", metavar="REGION",
                        help="where the executor runs: lowercase letters, digits and '-', at most 32 (default: none)")
    parser.add_argument("--capacity", default="1", metavar="N", help="jobs executed at once (default: 1)")
    _finish(parser, spec, build_offer)


def build_offer(spec: CallSpec, args: argparse.Namespace, token: Callable[[], Token]) -> Message:
    call = types_pb2.SetOffer(
        models=[model_id_argument(text) for text in args.models],
        price_per_token=parse_amount_value(args.price, "--price", token, U64_MAX),
        region=args.region,
        capacity=parse_integer(args.capacity, "--capacity", 1, U32_MAX),
    )
    return _checked(spec, call)


def register_clear_offer(commands, spec: CallSpec) -> None:
    parser = _command(commands, spec, "clear-offer",
                      "Stop being assigned new jobs; assigned ones run to their end (clear_offer).")
    _finish(parser, spec, lambda spec, args, token: types_pb2.ClearOffer())


def model_id_argument(text: str) -> bytes:
    """A model id: 64 hex digits (0x optional); one-line usage error otherwise."""
    digits = text.strip().lower() if len(text) <= 2 * MODEL_ID_DIGITS else ""
    digits = digits[2:] if digits.startswith("0x") else digits
    if len(digits) != MODEL_ID_DIGITS or any(character not in "0123456789abcdef" for character in digits):
        raise CliError(f"--model must be a model id of 64 hex digits (`inferchain query models`), "
                       f"got {quote_input(text)}", EXIT_USAGE)
    return bytes.fromhex(digits)


def _checked(spec: CallSpec, call: Message) -> Message:
    try:
        spec.check(call)
    except DispatchError as error:
        raise CliError(f"{spec.name} can never succeed: {error.message}", EXIT_USAGE) from None
    return call


def register_staking_commands(commands) -> None:
    """Add withdraw, offer and clear-offer to the `tx` subcommands."""
    calls = RUNTIME.calls
    register_withdraw(commands, calls["withdraw_unbonded"])
    register_offer(commands, calls["set_offer"])
    register_clear_offer(commands, calls["clear_offer"])
