# Copyright (c) 2026, madengine developers
# MIT License (see LICENSE or https://opensource.org/licenses/MIT)
# SPDX-License-Identifier: MIT
"""What every rocm.madengine module does the same way: errors -> fail_json, warnings, log tails, paths.

Only the modules import this file; the core never does. Standard library only.
"""

from __future__ import annotations

import collections
import os
import traceback

from .context import validate_context
from .errors import ConfigError, DiscoveryError, MadengineError
from .perfcsv import STATUS_FAILURE
from .reporting import Reporter

# The core's messages name CLI flags; a module user knows the option instead. Longest flags first.
FLAG_OPTIONS = (
    ("--additional-context-file", "additional_context"),
    ("--additional-context", "additional_context"),
    ("--manifest-file", "manifest_file"),
    ("--manifest-output", "manifest_output"),
    ("--batch-manifest", "batch_manifest"),
    ("--target-archs", "target_archs"),
    ("--use-image", "use_image"),
    ("--registry", "registry"),
    ("--timeout", "timeout"),
    ("--run-id", "run_id"),
    ("--tags", "tags"),
)
MAX_LINE = 2000  # characters kept of one log line (progress bars can be megabytes without a newline)


class ModuleReporter(Reporter):
    """The core's warnings become Ansible warnings; everything else stays quiet (no live output)."""

    def __init__(self, module):
        self.module = module

    def warn(self, message):
        self.module.warn(message)


def option_of(exc, default):
    """The module option an error is about: its leading CLI flag, a well-known phrase, or its class."""
    message = exc.msg
    if exc.details.get("option"):
        return str(exc.details["option"])
    for flag, option in FLAG_OPTIONS:
        if message.startswith(flag):
            return option
    if message.startswith(("additional context", "invalid docker_gpus")) or exc.details.get("key"):
        return "additional_context"
    if message.startswith(("tag '", "no models selected")):
        return "tags"
    if "credential.json entry for registry" in message:
        return "registry"
    if isinstance(exc, DiscoveryError) or "credential.json" in message:
        return "package_dir"
    return default if isinstance(exc, ConfigError) else ""


def error_message(message):
    for flag, option in FLAG_OPTIONS:
        message = message.replace(flag, option)
    return " ".join(message.split())


def fail_from_error(module, exc, default_option, **result):
    """fail_json for a MadengineError: one line, the option it concerns (when one does), class, hint, details."""
    option = option_of(exc, default_option)
    if option:
        result["option"] = option
    details = {key: value for key, value in exc.details.items() if isinstance(value, (str, int, float, bool))}
    module.fail_json(
        msg=error_message(exc.one_line()),
        error=type(exc).__name__,
        hint=exc.hint or "",
        details=details,
        **result,
    )


def fail_unexpected(module, exc, **result):
    """Anything the core did not expect: one line, the traceback only where Ansible shows it (-vvv)."""
    module.fail_json(
        msg=f"unexpected {type(exc).__name__}: {' '.join(str(exc).split())[:500]}",
        exception=traceback.format_exc(),
        **result,
    )


def call_core(module, default_option, func, *args, **kwargs):
    """func(*args, **kwargs); a MadengineError or any other exception ends the module with fail_json."""
    try:
        return func(*args, **kwargs)
    except MadengineError as exc:
        fail_from_error(module, exc, default_option)
    except Exception as exc:  # pylint: disable=broad-exception-caught
        fail_unexpected(module, exc)
    return None  # not reached: fail_json exits


def package_root(module):
    """The package_dir option as an absolute directory; fails when it is not a directory."""
    root = os.path.abspath(module.params["package_dir"])
    if not os.path.isdir(root):
        module.fail_json(
            msg=f"package_dir: {root} is not a directory; give the root of a MAD package (it holds models.json)",
            option="package_dir",
        )
    return root


def under(root, path):
    """path made absolute against root (an absolute path stays as it is)."""
    return os.path.normpath(os.path.join(root, path))


def context_of(module):
    """The additional_context option, validated and normalised by the core."""
    return call_core(
        module, "additional_context", validate_context, module.params.get("additional_context") or {}, module.warn
    )


def log_tail(path, lines):
    """The last `lines` lines of a log file (each capped), [] when there is no such file."""
    if lines <= 0 or not path or not os.path.isfile(path):
        return []
    with open(path, encoding="utf-8", errors="replace") as handle:
        kept = collections.deque((line.rstrip("\r\n") for line in handle), maxlen=lines)
    return [line if len(line) <= MAX_LINE else line[:MAX_LINE] + "..." for line in kept]


def exit_with_rows(module, checked, fail_on_error, see="", **result):
    """exit_json, or fail_json naming the first failed rows when fail_on_error and any checked row is a FAILURE."""
    failed = [row for row in checked if row.get("status") == STATUS_FAILURE]
    if failed and fail_on_error:
        shown = ", ".join(f"{row.get('model')} ({row.get('failure_reason') or 'FAILURE'})" for row in failed[:5])
        more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
        module.fail_json(msg=f"{len(failed)} of {len(checked)} row(s) failed: {shown}{more}{see}", **result)
    module.exit_json(**result)


def deployment_options(module, ctx):
    """RunOptions of a deployment module (slurm_submit, k8s_job) from its timeout, output and run_id options."""
    from .run import RunOptions, check_run_id, new_run_id

    params = module.params
    if params["timeout"] < -1:
        module.fail_json(msg=f"timeout: {params['timeout']} is not allowed; use -1, 0 or seconds", option="timeout")
    if params["run_id"] is not None:
        call_core(module, "run_id", check_run_id, params["run_id"], "run_id:")
    return RunOptions(
        context=ctx,
        timeout=None if params["timeout"] == -1 else params["timeout"],
        output=params["output"],
        run_id=params["run_id"] or new_run_id(),
    )


def deployment_result(deployed, options, root):
    """The result keys every deployment module returns."""
    return {
        "changed": deployed.changed,
        "run_id": options.run_id,
        "results_dir": deployed.results_dir,
        "jobs": deployed.jobs(),
        "rows": deployed.rows,
        "submitted": deployed.submitted,
        "cancelled": deployed.cancelled,
        "perf_csv": under(root, options.output),
    }
