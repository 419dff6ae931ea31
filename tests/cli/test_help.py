"""Every option and argument of every command explains itself and its default; --version; exit codes documented."""

from __future__ import annotations

import argparse
import re

import pytest

from chain.cli import build_parser
from chain.cli.errors import EXIT_CODES
from inference.calibration import ROW_KEYS
from tests.commands import ROOT, inferchain


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(command path, parser) for the root and every subcommand, depth first."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, subparser in action.choices.items():
                yield from _commands(subparser, path + (name,))


COMMANDS = list(_commands(build_parser()))
ARGUMENTS = [
    pytest.param(action, id=" ".join(path) + " " + (action.option_strings[-1] if action.option_strings else action.dest))
    for path, parser in COMMANDS
    for action in parser._actions
    if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction))
]


def _has_default(action: argparse.Action) -> bool:
    # A flag's False and an option left unset (None) have nothing to show; every other default does.
    unset = action.default is None or action.default is False or action.default == argparse.SUPPRESS
    return not unset or action.nargs == "?"


def test_every_command_group_is_walked():
    paths = {" ".join(path) for path, _ in COMMANDS}
    assert {"query account", "tx transfer", "keys generate", "genesis validate", "model calibrate", "infer",
            "verify", "node"} <= paths


@pytest.mark.parametrize("action", ARGUMENTS)
def test_every_option_and_argument_has_help(action):
    assert action.help and action.help.strip() and action.help != argparse.SUPPRESS


@pytest.mark.parametrize("action", [argument for argument in ARGUMENTS if _has_default(argument.values[0])])
def test_every_default_is_stated(action):
    assert "default" in action.help, f"{action.help!r} does not state its default {action.default!r}"


def test_every_subcommand_has_a_one_line_help():
    for path, parser in COMMANDS:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                listed = {choice.dest for choice in action._choices_actions}
                assert listed == set(action.choices), f"{' '.join(path)}: a subcommand has no help"


def test_calibrate_help_says_how_long_it_takes_and_lists_every_row():
    result = inferchain("model", "calibrate", "--help")
    assert result.returncode == 0
    assert "about an hour on 2 CPU cores" in result.stdout
    for key in ROW_KEYS:
        assert re.search(rf"^\s+{key}\s+\S", result.stdout, re.MULTILINE), f"row {key} not described"


def test_version_names_inferchain_and_the_engine():
    result = inferchain("--version")
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"inferchain \d+\.\d+\.\d+ \(engine llama-cpp-python \d+\.\d+\.\d+\)\n", result.stdout)


def test_root_help_lists_the_exit_codes():
    result = inferchain("--help")
    for code, name, _ in EXIT_CODES:
        assert re.search(rf"^\s+{code}\s+{name}$", result.stdout, re.MULTILINE)


def test_exit_codes_are_distinct_and_documented_in_docs_cli():
    codes = [code for code, _, _ in EXIT_CODES]
    assert len(set(codes)) == len(codes) and 2 in codes
    table = (ROOT / "docs" / "cli.md").read_text()
    for code, name, _ in EXIT_CODES:
        assert re.search(rf"^\| {code} \| {name} \|", table, re.MULTILINE), f"exit code {code} not in docs/cli.md"


def test_a_usage_error_exits_2_as_argparse_does():
    result = inferchain("query", "account")
    assert result.returncode == 2 and "usage:" in result.stderr
