"""What killed runs leave behind (containers, run directories) and removing it; never a live run's."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import time
from dataclasses import dataclass
from typing import Callable, List

from . import dockerapi
from .interrupts import STOP_GRACE
from .ownership import KEEP_LABEL, RUN_LABEL, Owner
from .runspace import read_owner_file, runs_dir

KIND_CONTAINER, KIND_RUN_DIR = "container", "run directory"
# A run directory without owner.json yet may be one being created right now.
_YOUNG = 60.0
# How long stop_run waits for a run's processes: their container's stop grace, and time to write the rows.
STOP_WAIT = STOP_GRACE + 20.0


@dataclass
class Leftover:
    kind: str  # KIND_CONTAINER or KIND_RUN_DIR
    name: str  # container name, or the directory's path
    run_id: str
    pid: int
    kept: bool  # left on purpose (--keep-alive, --keep-model-dir)
    ident: str = ""  # the container id


def leftover_containers() -> List[Leftover]:
    """Containers of madengine runs whose process is gone (on this host)."""
    client = dockerapi.client()
    found = []
    for record in client.api.containers(all=True, filters={"label": RUN_LABEL}):
        labels = record.get("Labels") or {}
        owner = Owner.from_labels(labels)
        if owner is None or owner.alive():
            continue
        name = str((record.get("Names") or ["/" + record["Id"][:12]])[0]).lstrip("/")
        found.append(
            Leftover(KIND_CONTAINER, name, owner.run_id, owner.pid, labels.get(KEEP_LABEL) == "true", str(record["Id"]))
        )
    return found


def leftover_run_dirs(root: str) -> List[Leftover]:
    """Run directories in this package whose process is gone."""
    base = runs_dir(os.path.abspath(root))
    if not os.path.isdir(base):
        return []
    found = []
    for entry in sorted(os.listdir(base)):
        path = os.path.join(base, entry)
        if not os.path.isdir(path):
            continue
        data = read_owner_file(path)
        owner = Owner.from_dict(data)
        if owner is None:
            try:
                young = time.time() - os.path.getmtime(path) < _YOUNG
            except OSError:
                continue
            if young:
                continue
            found.append(Leftover(KIND_RUN_DIR, path, entry.rpartition(".")[0], 0, False))
            continue
        if owner.alive():
            continue
        found.append(Leftover(KIND_RUN_DIR, path, owner.run_id, owner.pid, bool(data.get("kept"))))
    return found


def find(root: str, include_kept: bool = False) -> List[Leftover]:
    return [item for item in leftover_containers() + leftover_run_dirs(root) if include_kept or not item.kept]


def remove(items: List[Leftover]) -> List[str]:
    """Remove each; returns one line per failure."""
    errors = []
    client = None
    for item in items:
        try:
            if item.kind == KIND_CONTAINER:
                client = client or dockerapi.client()
                client.api.remove_container(item.ident or item.name, force=True)
            else:
                shutil.rmtree(item.name)
        except dockerapi.not_found_error():
            continue
        except (OSError, dockerapi.api_error()) as exc:
            errors.append(f"{item.kind} {item.name}: {dockerapi.short_error(exc)}")
    return errors


@dataclass
class StopOutcome:
    signalled: List[int]  # the live madengine processes of the run that got SIGTERM
    still_running: List[int]  # those that had not ended within the wait
    removed: List[Leftover]  # what the run left behind once its processes were gone
    errors: List[str]


def stop_run(
    root: str,
    run_id: str,
    wait: float = STOP_WAIT,
    sleep: Callable[[float], None] = time.sleep,
) -> StopOutcome:
    """Stop run `run_id` on this host, as Ctrl-C would: SIGTERM to each live madengine process that owns one of
    its containers (each writes its rows and removes its containers), a wait for them to end, then the removal
    of whatever the run's dead processes left (containers, run directories in `root`)."""
    client = dockerapi.client()
    owners = {}
    for record in client.api.containers(all=True, filters={"label": f"{RUN_LABEL}={run_id}"}):
        owner = Owner.from_labels(record.get("Labels") or {})
        if owner is not None and owner.host == socket.gethostname() and owner.alive():
            owners[owner.pid] = owner
    for pid in owners:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while any(owner.alive() for owner in owners.values()) and time.monotonic() < deadline:
        sleep(0.2)
    left = [item for item in find(root, include_kept=True) if item.run_id == run_id]
    return StopOutcome(
        sorted(owners),
        sorted(pid for pid, owner in owners.items() if owner.alive()),
        left,
        remove(left),
    )
