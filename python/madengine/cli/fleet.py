"""`--inventory`: run the collection's playbooks through ansible-runner and show their progress.

The orchestration lives in the playbooks; this module only starts them and renders events.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any, Dict, List, Mapping, Optional

from ansible_collections.rocm.madengine.plugins import module_utils
from ansible_collections.rocm.madengine.plugins.module_utils.errors import ConfigError
from madengine.cli import render

PLAYBOOKS = {
    "run": "rocm.madengine.benchmark",
    "build": "rocm.madengine.build",
    "run-only": "rocm.madengine.run",
    "slurm": "rocm.madengine.slurm",
    "slurm-run-only": "rocm.madengine.slurm",
}
# Commands that run only some phases of their playbook.
PHASES = {"slurm-run-only": ["distribute", "run", "report"]}


def collections_root() -> str:
    """The directory that holds ansible_collections/ (the installed package or this checkout)."""
    return os.path.abspath(os.path.join(os.path.dirname(module_utils.__file__), *[".."] * 5))


class EventPrinter:
    """Renders ansible-runner events as one line per task and host result."""

    def __init__(self) -> None:
        self.failed_hosts: Dict[str, str] = {}

    def __call__(self, event: Mapping[str, Any]) -> bool:
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        host = data.get("host", "")
        task = data.get("task", "")
        if kind == "playbook_on_play_start":
            render.err.print(f"[bold]PLAY[/bold] {render.escape(str(data.get('play', '')))}")
        elif kind == "runner_on_ok":
            changed = (data.get("res") or {}).get("changed")
            render.err.print(f"  {'changed' if changed else 'ok':8} {render.escape(host)}: {render.escape(task)}")
        elif kind in ("runner_on_failed", "runner_on_unreachable"):
            if kind == "runner_on_failed" and data.get("ignore_errors"):
                return True
            message = str((data.get("res") or {}).get("msg", "")).splitlines()[:1]
            label = "unreachable" if kind == "runner_on_unreachable" else "failed"
            self.failed_hosts[host] = label
            render.err.print(
                f"  [red]{label:8}[/red] {render.escape(host)}: {render.escape(task)}"
                + (f" — {render.escape(message[0])}" if message else "")
            )
        return True


def run_playbook(
    command: str,
    inventory: str,
    extravars: Dict[str, Any],
    limit: Optional[str] = None,
    tags: Optional[List[str]] = None,
    verbose: bool = False,
) -> Dict[str, Any]:
    """Run one of the collection's playbooks; returns the runner status, rc and the hosts that failed."""
    try:
        import ansible_runner
    except ImportError:
        raise ConfigError("--inventory needs ansible-runner", hint="pip install ansible-core ansible-runner") from None
    if not os.path.exists(inventory):
        raise ConfigError(f"--inventory {inventory}: not found")
    private = tempfile.mkdtemp(prefix="madengine-runner-")
    printer = EventPrinter()
    try:
        result = ansible_runner.run(
            private_data_dir=private,
            playbook=PLAYBOOKS[command],
            inventory=os.path.abspath(inventory),
            extravars=extravars,
            limit=limit,
            tags=",".join(tags or PHASES.get(command, [])) or None,
            envvars={"ANSIBLE_COLLECTIONS_PATH": collections_root(), "ANSIBLE_HOST_KEY_CHECKING": "False"},
            quiet=not verbose,
            event_handler=printer,
            verbosity=3 if verbose else 0,
        )
    finally:
        shutil.rmtree(private, ignore_errors=True)
    return {"status": result.status, "rc": result.rc, "failed_hosts": printer.failed_hosts}
