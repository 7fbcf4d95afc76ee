"""What every command module of the CLI shares: the --verbose option and the one place where errors become a
message and an exit code."""

from __future__ import annotations

import contextlib
import signal
import traceback
from typing import Iterator

import typer

from ansible_collections.rocm.madengine.plugins.module_utils.errors import EXIT_FAILURE, MadengineError
from ansible_collections.rocm.madengine.plugins.module_utils.interrupts import Interrupted
from madengine.cli import render

VerboseOpt = typer.Option(False, "--verbose", "-v", help="Show tracebacks and more detail.")


@contextlib.contextmanager
def errors_as_messages(verbose: bool) -> Iterator[None]:
    """The one place where errors become a message and an exit code."""
    try:
        yield
    except MadengineError as exc:
        if verbose:
            traceback.print_exc()
        render.error_line(exc.one_line())
        raise typer.Exit(exc.exit_code) from None
    except (KeyboardInterrupt, Interrupted) as exc:
        interrupted = exc if isinstance(exc, Interrupted) else Interrupted(signal.SIGINT)
        render.error_line(f"interrupted by {interrupted.name}")
        raise typer.Exit(interrupted.exit_code) from None
    except typer.Exit:
        raise
    except Exception as exc:
        if verbose:
            traceback.print_exc()
        render.error_line(f"unexpected {type(exc).__name__}: {exc} (run with --verbose for the traceback)")
        raise typer.Exit(EXIT_FAILURE) from None
