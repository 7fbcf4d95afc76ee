"""Running external programs: argv lists only, never a shell string."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import Callable, Mapping, Optional, Sequence


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    rc: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.rc == 0


# A runner takes an argv list and returns a CommandResult. The CLI uses run_command below;
# unit tests pass a fake that replays recorded outputs.
Runner = Callable[..., CommandResult]


def run_command(
    argv: Sequence[str],
    timeout: Optional[float] = 30,
    env: Optional[Mapping[str, str]] = None,
    input_text: Optional[str] = None,
) -> CommandResult:
    """Run argv and capture its output; a missing program or a timeout is rc 127 / 124, not an exception."""
    argv = tuple(str(a) for a in argv)
    full_env = None
    if env is not None:
        full_env = dict(os.environ)
        full_env.update(env)
    try:
        proc = subprocess.run(
            argv,
            input=input_text,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            env=full_env,
            check=False,
        )
    except FileNotFoundError as exc:
        return CommandResult(argv, 127, "", str(exc))
    except PermissionError as exc:
        return CommandResult(argv, 126, "", str(exc))
    except subprocess.TimeoutExpired:
        return CommandResult(argv, 124, "", f"timed out after {timeout} s")
    return CommandResult(argv, proc.returncode, proc.stdout, proc.stderr)


def which(program: str) -> Optional[str]:
    return shutil.which(program)
