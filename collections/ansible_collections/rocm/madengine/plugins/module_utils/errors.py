"""The one exception family of madengine; every layer raises these, the front-ends render them."""

from __future__ import annotations

from typing import Any

EXIT_SUCCESS = 0
EXIT_FAILURE = 1
EXIT_BUILD_FAILURE = 2
EXIT_RUN_FAILURE = 3
EXIT_INVALID_ARGS = 4
EXIT_REGRESSION = 5  # --fail-on-regression: a model got slower than its baseline (and nothing failed)


class MadengineError(Exception):
    """Base error: a one-line message, an optional hint (what to do) and structured details."""

    exit_code = EXIT_FAILURE

    def __init__(self, msg: str, hint: str | None = None, **details: Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.hint = hint
        self.details = details

    def one_line(self) -> str:
        return f"{self.msg}. {self.hint}" if self.hint else self.msg


class ConfigError(MadengineError):
    """Bad input: options, additional context, config files (exit 4)."""

    exit_code = EXIT_INVALID_ARGS


class DiscoveryError(MadengineError):
    """The MAD package could not be read or a tag selects nothing (exit 1)."""

    exit_code = EXIT_FAILURE


class BuildError(MadengineError):
    """An image could not be built or pushed (exit 2)."""

    exit_code = EXIT_BUILD_FAILURE


class RunError(MadengineError):
    """A model could not be run (exit 3)."""

    exit_code = EXIT_RUN_FAILURE


class DockerUnavailableError(MadengineError):
    """The Docker engine cannot be reached."""

    exit_code = EXIT_FAILURE


class ResultsWriteError(MadengineError):
    """A results file (perf.csv, perf_entry.csv) could not be written; it is left as it was (exit 1)."""

    exit_code = EXIT_FAILURE
