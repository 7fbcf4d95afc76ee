"""`--inventory`: run the collection's playbooks through ansible-runner and show their progress.

The orchestration lives in the playbooks; this module only starts them and renders events.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import sys
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
    "k8s": "rocm.madengine.k8s",
    "k8s-run-only": "rocm.madengine.k8s",
}
# Commands that run only some phases of their playbook.
PHASES = {"slurm-run-only": ["distribute", "run", "report"], "k8s-run-only": ["distribute", "run", "report"]}
# The inventory groups each command's plays run on, and what their hosts do there.
GROUPS = {
    "run": ("madengine_build", "madengine_gpu"),
    "build": ("madengine_build",),
    "run-only": ("madengine_gpu",),
    "slurm": ("madengine_build", "madengine_slurm_login"),
    "slurm-run-only": ("madengine_slurm_login",),
    "k8s": ("madengine_build", "madengine_k8s"),
    "k8s-run-only": ("madengine_k8s",),
}
# group -> (what its hosts do, an example inventory of this repository)
GROUP_ROLES = {
    "madengine_build": ("build the images", "inventories/fleet-example/hosts.yml"),
    "madengine_gpu": ("run the models", "inventories/fleet-example/hosts.yml"),
    "madengine_slurm_login": ("submit the SLURM jobs", "inventories/slurm-example/hosts.yml"),
    "madengine_k8s": ("run the Kubernetes Jobs (a kubeconfig)", "inventories/k8s-local/hosts.yml"),
}


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
    check_inventory(command, inventory, limit)
    try:
        import ansible_runner
    except ImportError:
        raise ConfigError("--inventory needs ansible-runner", hint=INSTALL_HINT) from None
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
            envvars={
                "ANSIBLE_COLLECTIONS_PATH": collections_root(),
                "ANSIBLE_HOST_KEY_CHECKING": "False",
                **playbook_path(),
            },
            quiet=not verbose,
            event_handler=printer,
            verbosity=3 if verbose else 0,
        )
        if result.rc != 0 and not printer.failed_hosts and not verbose:
            show_ansible_errors(result.stdout.read())
    finally:
        shutil.rmtree(private, ignore_errors=True)
    return {"status": result.status, "rc": result.rc, "failed_hosts": printer.failed_hosts}


INSTALL_HINT = "pip install ansible-core ansible-runner, or activate the environment madengine is installed in"


def playbook_path() -> Dict[str, str]:
    """{} when ansible-playbook is on PATH; else a PATH that finds the one beside this Python (an unactivated venv)."""
    if shutil.which("ansible-playbook"):
        return {}
    beside = os.path.dirname(sys.executable)
    if not os.access(os.path.join(beside, "ansible-playbook"), os.X_OK):
        raise ConfigError("--inventory needs ansible-playbook, which is not on PATH", hint=INSTALL_HINT)
    return {"PATH": os.pathsep.join([beside, os.environ.get("PATH", "")])}


def check_inventory(command: str, inventory: str, limit: Optional[str]) -> None:
    """Fail before any play when the inventory has no hosts in a group the command's playbook runs on."""
    if not os.path.exists(inventory):
        raise ConfigError(f"--inventory {inventory}: not found")
    said = io.StringIO()  # ansible's own warnings (its import's too); the one line below says what matters
    with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
        try:
            from ansible.inventory.manager import InventoryManager
            from ansible.parsing.dataloader import DataLoader
        except ImportError:
            raise ConfigError("--inventory needs ansible-core", hint=INSTALL_HINT) from None
        except Exception as exc:  # ansible reads its configuration (ansible.cfg, ANSIBLE_*) on import
            raise ConfigError(f"--inventory {inventory}: ansible cannot start: {_first_line(exc)}") from None
        option = f"--inventory {inventory}"
        try:
            manager = InventoryManager(loader=DataLoader(), sources=[os.path.abspath(inventory)])
            parsed = bool(manager.hosts)
            if limit:
                option = f"--limit {limit}"
                manager.subset(limit)
            empty = [group for group in GROUPS[command] if not manager.get_hosts(pattern=group)]
        except Exception as exc:  # ansible's own errors: a failing inventory script, a malformed pattern
            raise ConfigError(f"{option}: {_first_line(exc)}") from None
    if not empty:
        return
    reasons = [line for line in said.getvalue().splitlines() if "failed to parse" in line.lower()]
    if not parsed and reasons:
        reason = reasons[0].replace("[WARNING]:", "").strip(" *")
        raise ConfigError(f"--inventory {inventory}: ansible cannot read it: {reason}")
    group = empty[0]
    where = f" matching --limit {limit}" if limit else ""
    role, example = GROUP_ROLES[group]
    raise ConfigError(
        f"--inventory {inventory}: no hosts in group '{group}'{where}",
        hint=f"'{group}' holds the hosts that {role} (see {example})",
    )


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def show_ansible_errors(text: str) -> None:
    """ansible-playbook's own error lines (a bad setting, a missing collection): no host event shows them."""
    lines = [line.strip() for line in _ANSI.sub("", text).splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("ERROR!", "[ERROR]"))]
    for line in errors[:3] or lines[-1:]:
        render.err.print(f"  [red]ansible[/red] {render.escape(line)}")
