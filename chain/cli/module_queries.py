"""`inferchain query MODULE QUERY [--field VALUE ...]`: any query a runtime module declares.

One command per QuerySpec in the registry (runtime/module.py), as `tx` has one per call: its options
are the request message's fields, read by their declared kinds (chain/cli/fields.py), each optional
(left out, a field keeps its zero value and the module says whether that will do); the answer's
fields are shown by their kinds too: accounts as SS58 addresses, amounts in tokens (JSON: base
units as strings), hashes and bytes as hex. A module whose name is already a `query` command
(`query models`) gets its queries as subcommands of that command, which keeps working alone.
"""

from __future__ import annotations

import argparse
import functools

from chain.cli.connection import add_node_argument, cli_errors, node_client
from chain.cli.fields import add_field_options, field_options, message_document, message_fields, read_options
from chain.cli.output import Token, add_output_argument, print_fields, print_json, token_of, u64
from chain.client.queries import ModuleQueries, QueryAnswer
from runtime.module import ModuleSpec, QuerySpec
from runtime.registry import RUNTIME, Runtime


def register_module_queries(commands, runtime: Runtime = RUNTIME) -> None:
    """Add `query MODULE QUERY` for every declared query, module by module."""
    for module in runtime.modules:
        if not module.queries:
            continue
        existing = commands.choices.get(module.name)
        if existing is None:
            about = module.doc.rstrip(".")
            parser = commands.add_parser(module.name, help=f"the {module.name} module's queries ({about[:1].lower()}{about[1:]})",
                                         description=f"The queries the {module.name} module declares.")
            queries = parser.add_subparsers(dest="module_query", metavar="QUERY")
            queries.required = True
        else:
            queries = existing.add_subparsers(dest="module_query", metavar="QUERY",
                                              help=f"a query of the {module.name} module (optional)")
        for spec in module.queries:
            _register_query(queries, module, spec, runtime)


def _register_query(queries, module: ModuleSpec, spec: QuerySpec, runtime: Runtime) -> None:
    parser = queries.add_parser(
        spec.name, help=spec.doc.rstrip("."),
        description=f"{spec.doc.rstrip('.')} ({module.name} query, request {spec.request.DESCRIPTOR.name}, "
                    f"response {spec.response.DESCRIPTOR.name}); read from the node's latest block.",
    )
    add_field_options(parser, request_options(spec))
    add_node_argument(parser)
    add_output_argument(parser)
    parser.set_defaults(handler=query_command, query_module=module.name, query_spec=spec, query_runtime=runtime)


def request_options(spec: QuerySpec):
    """An option per scalar request field, each optional."""
    return field_options(spec.request.DESCRIPTOR, spec.fields, optional=True, reserved=("--node", "--output"))


def query_command(args: argparse.Namespace) -> int:
    """Build the request from the options, ask the node, print the answer."""
    spec: QuerySpec = args.query_spec
    with node_client(args) as client:
        chain_token = functools.cache(lambda: token_of(client.chain_info()))
        request = spec.request()
        read_options(request, request_options(spec), args, chain_token)
        answer = ModuleQueries(client, args.query_runtime).query(args.query_module, spec.name, request)
        token = chain_token() if args.output == "text" else Token()
    with cli_errors():
        print_answer(args.query_module, spec, answer, args.output, token)
    return 0


def print_answer(module_name: str, spec: QuerySpec, answer: QueryAnswer, output: str, token: Token) -> None:
    if output == "json":
        print_json({
            "module": module_name,
            "query": spec.name,
            "height": u64(answer.height),
            "block_hash": answer.block_hash.hex(),
            "response": message_document(answer.response, spec.fields),
        })
        return
    fields = message_fields(answer.response, spec.fields, token)
    print_fields(fields + [("at height", answer.height), ("block", answer.block_hash.hex())])
