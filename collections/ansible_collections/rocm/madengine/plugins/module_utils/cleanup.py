"""What killed runs leave behind (containers, run directories) and removing it; never a live run's."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from typing import List

from . import dockerapi
from .ownership import KEEP_LABEL, RUN_LABEL, Owner
from .runspace import read_owner_file, runs_dir

KIND_CONTAINER, KIND_RUN_DIR = "container", "run directory"
# A run directory without owner.json yet may be one being created right now.
_YOUNG = 60.0


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
            found.append(Leftover(KIND_RUN_DIR, path, entry.split(".", 1)[0], 0, False))
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
