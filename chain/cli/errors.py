"""How CLI commands report failure: one readable line and an exit code, never a traceback."""

from __future__ import annotations

EXIT_FAILURE = 1
EXIT_USAGE = 2


class CliError(Exception):
    """A failure to report to the user as `error: MESSAGE` with `exit_code`."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE):
        super().__init__(message)
        self.exit_code = exit_code
