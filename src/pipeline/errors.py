"""One user-facing error type, so every stage fails the same readable way.

A `PipelineError` is something the user can fix (bad data, bad params, a missing
file). `main` functions are wrapped by `run_main`, which prints it as a short
message and returns its exit code. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

EXIT_INVALID_DATA = 1
EXIT_BAD_CONFIG = 2


class PipelineError(Exception):
    """A problem in the user's inputs, reported without a traceback."""

    exit_code = EXIT_INVALID_DATA


class ConfigError(PipelineError):
    """params.yaml or the command line is wrong; nothing has run yet."""

    exit_code = EXIT_BAD_CONFIG


def run_main(
    main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None, *, preloadable: bool = True
) -> int:
    """Run a stage's main and turn a PipelineError into a message and an exit code.

    Under `python -m pipeline.preload` (`make run`), a command started from the shell hands its run to
    the preload server, which has the heavy imports done already (see pipeline.preload).
    """
    if argv is None and preloadable:
        from pipeline.preload import run_preloaded

        code = run_preloaded()
        if code is not None:
            return code
    try:
        return main(argv)
    except PipelineError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
