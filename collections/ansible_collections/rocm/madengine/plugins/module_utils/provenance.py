"""Recording a finished run in the results store, with where it came from (host, package commit, command)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from typing import Any, Dict, List, Mapping, Optional, Sequence

from . import results_store
from .errors import MadengineError
from .reporting import Reporter

_CONTEXT_OPTIONS = ("-c", "--additional-context")


def git_commit(directory: str) -> str:
    """HEAD of the git repository `directory` is in, or '' when it is none (or git is missing)."""
    try:
        proc = subprocess.run(
            ["git", "-C", directory, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return proc.stdout.strip() if proc.returncode == 0 else ""


def madengine_version() -> str:
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:
        return ""
    try:
        return version("madengine")
    except PackageNotFoundError:
        return ""


def command_line(argv: Optional[Sequence[str]] = None) -> str:
    """The command that ran, with the additional context left out (it is recorded, redacted, on its own)."""
    args = list(sys.argv if argv is None else argv)
    if not args:
        return ""
    shown: List[str] = [os.path.basename(args[0])]
    hide_next = False
    for arg in args[1:]:
        if hide_next:
            shown.append("<context>")
            hide_next = False
        elif arg in _CONTEXT_OPTIONS:
            shown.append(arg)
            hide_next = True
        elif any(arg.startswith(option + "=") for option in _CONTEXT_OPTIONS if option.startswith("--")):
            shown.append(arg.split("=", 1)[0] + "=<context>")
        else:
            shown.append(arg)
    return " ".join(shown)


def record(
    db_path: Optional[str],
    run_id: str,
    rows: Sequence[Mapping[str, Any]],
    reporter: Reporter,
    *,
    target: str,
    package_dir: str,
    context: Mapping[str, Any],
    started_at: str,
    tags: Sequence[str] = (),
    log_paths: Optional[Sequence[str]] = None,
    host: str = "",
) -> int:
    """Record the run's rows in the store at db_path (None: disabled). A failure is a warning, never an error:
    the rows are in perf.csv already. Returns the number of rows added."""
    if not db_path or not rows:
        return 0
    info = results_store.RunInfo(
        run_id=run_id,
        started_at=started_at,
        host=host or socket.gethostname(),
        target=target,
        package_dir=os.path.abspath(package_dir),
        git_commit=git_commit(package_dir),
        command=command_line(),
        context=dict(context),
        madengine_version=madengine_version(),
        tags=list(tags),
    )
    try:
        return results_store.record_run(db_path, info, rows, log_paths)
    except (MadengineError, OSError, ValueError) as exc:
        message = exc.one_line() if isinstance(exc, MadengineError) else str(exc)
        reporter.warn(f"results store {db_path}: the run was not recorded ({message}); its rows are in perf.csv")
        return 0


def record_rows(
    db_path: Optional[str],
    rows: Sequence[Mapping[str, Any]],
    reporter: Reporter,
    *,
    target: str,
    package_dir: str,
    context: Mapping[str, Any],
) -> int:
    """Record merged rows (a fleet's, by the aggregate role) as one run per run_id; the store skips rows it has.
    Returns the number of rows added; a failure is a warning (see record)."""
    by_run: Dict[str, List[Mapping[str, Any]]] = {}
    for row in rows:
        by_run.setdefault(str(row.get("run_id") or ""), []).append(row)
    added = 0
    for run_id, run_rows in by_run.items():
        added += record(
            db_path,
            run_id or "unknown",
            run_rows,
            reporter,
            target=target,
            package_dir=package_dir,
            context=context,
            started_at="",
        )
    return added
