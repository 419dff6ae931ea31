"""How CLI commands report failure: one readable line and an exit code, never a traceback.

Every exit code the `inferchain` command uses is defined here, once; docs/cli.md lists them.
A script can tell apart a wrong command line, an unreachable node, a refusal by the node, an
answer that failed verification and an unusable input file without reading the message.
"""

from __future__ import annotations

EXIT_OK = 0
# The command ran and the answer is no: `verify` judged a result INVALID, a transaction was
# included but its call failed, or a failure no code below describes.
EXIT_FAILURE = 1
# The command line is wrong: argparse's own code, kept for values malformed for their option.
EXIT_USAGE = 2
# No inferchain node answered at --node: nothing listens there, something that is not an
# inferchain gRPC node answered, or no answer came in time.
EXIT_UNREACHABLE = 3
# The node answered with an error: it refused the request, or what was asked for does not exist.
EXIT_REFUSED = 4
# The node's answer does not match its own proof or block header: it cannot be trusted.
EXIT_UNTRUSTED = 5
# A file or name the command line points at cannot be used: missing, unreadable or invalid
# (key file, genesis file, result file, model file), or a name that names nothing.
EXIT_BAD_INPUT = 6
# A submitted transaction was not included within --timeout (it may still be included later).
EXIT_NOT_INCLUDED = 7
# The local inference engine cannot do the job: llama.cpp failed, or the model has no
# verification thresholds, so no verdict can be given.
EXIT_ENGINE = 8
# `verify` of a job's document whose result does not hash to the job's output digest, or is for another
# job: whatever its verdict would be, it is not the result the chain settled (a swapped or edited result).
EXIT_NOT_SETTLED = 9
EXIT_INTERRUPTED = 130

# (code, name, meaning) for docs/cli.md and `inferchain --help`; a test keeps the doc in step.
EXIT_CODES = (
    (EXIT_OK, "ok", "the command did what was asked; `verify`: the result is valid"),
    (EXIT_FAILURE, "failure", "the answer is no: `verify` judged the result INVALID, or a transaction "
                              "was included but its call failed"),
    (EXIT_USAGE, "usage", "the command line is wrong (unknown option, malformed value)"),
    (EXIT_UNREACHABLE, "unreachable", "no inferchain node answered at --node (nothing listening, "
                                      "not an inferchain gRPC port, or no answer in time)"),
    (EXIT_REFUSED, "refused", "the node answered with an error: request refused, or not found"),
    (EXIT_UNTRUSTED, "untrusted", "the node's answer failed verification against its proof or header"),
    (EXIT_BAD_INPUT, "bad input", "a file or name given cannot be used (missing, unreadable or invalid "
                                  "key, genesis, result or model file; an unknown account or model name)"),
    (EXIT_NOT_INCLUDED, "not included", "a submitted transaction was not included within --timeout"),
    (EXIT_ENGINE, "engine", "local inference cannot run: llama.cpp failed, or the model has no "
                            "verification thresholds"),
    (EXIT_NOT_SETTLED, "not settled", "`verify` of a job's document: its result does not hash to the job's "
                                      "output digest (or is for another job): not the result the chain settled"),
    (EXIT_INTERRUPTED, "interrupted", "stopped by Ctrl-C"),
)


class CliError(Exception):
    """A failure to report to the user as `error: MESSAGE` with `exit_code`."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE):
        super().__init__(message)
        self.exit_code = exit_code
