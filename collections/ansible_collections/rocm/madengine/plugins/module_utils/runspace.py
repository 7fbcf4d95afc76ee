"""Each run's own directory in the MAD package: <package>/.madengine/runs/<run id>.<random>/, one slot per model.

A slot is what the container sees as /myworkspace/run_directory, so concurrent runs of the same models in one
package never share files. owner.json names the process, so `madengine clean` can tell a live run's directory
from one left by a killed run."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from typing import Any, Dict, List, Optional

from . import atomic
from .ownership import Owner

RUNS_DIR = os.path.join(".madengine", "runs")
RUN_DIRECTORY = "run_directory"  # the container's /myworkspace/run_directory
OWNER_FILE = "owner.json"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_name(text: str) -> str:
    """A file or container name part: letters, digits, '_', '.', '-' only."""
    return _UNSAFE.sub("_", text).strip("._-") or "x"


def runs_dir(root: str) -> str:
    return os.path.join(root, RUNS_DIR)


def read_owner_file(path: str) -> Dict[str, Any]:
    try:
        with open(os.path.join(path, OWNER_FILE), encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


class RunSpace:
    """Created on first use; `close` removes it unless a slot was kept (--keep-model-dir / --keep-alive)."""

    def __init__(self, root: str, owner: Owner) -> None:
        self.root = root
        self.owner = owner
        self.path = ""
        self.kept: List[str] = []

    def _create(self) -> str:
        if not self.path:
            base = runs_dir(self.root)
            os.makedirs(base, exist_ok=True)
            ignore = os.path.join(os.path.dirname(base), ".gitignore")
            if not os.path.exists(ignore):
                with open(ignore, "w", encoding="utf-8") as handle:
                    handle.write("# madengine's run directories and state\n*\n")
            self.path = tempfile.mkdtemp(prefix=safe_name(self.owner.run_id) + ".", dir=base)
            self._write_owner()
        return self.path

    def _write_owner(self) -> None:
        with atomic.replacing(os.path.join(self.path, OWNER_FILE)) as handle:
            json.dump({**self.owner.as_dict(), "kept": self.kept}, handle)

    def slot(self, name: str, source: str) -> str:
        """A fresh copy of `source` (the model's script directory) as the slot `name`."""
        target = os.path.join(self._create(), safe_name(name))
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target, symlinks=False)
        return target

    def log_path(self, file_name: str) -> str:
        return os.path.join(self._create(), file_name)

    def release(self, slot: str, keep: bool) -> None:
        if keep:
            self.kept.append(os.path.basename(slot))
            self._write_owner()
        else:
            shutil.rmtree(slot, ignore_errors=True)

    def close(self) -> Optional[str]:
        """Remove the directory; returns its path when something in it was kept."""
        if not self.path:
            return None
        if self.kept:
            return self.path
        shutil.rmtree(self.path, ignore_errors=True)
        self.path = ""
        self._remove_mount_point()
        return None

    def _remove_mount_point(self) -> None:
        """The engine made <package>/run_directory as the mount point of the slots. Removed, when empty, by
        the last run of the package to end: while any other run directory exists, a container may use it."""
        try:
            if os.listdir(runs_dir(self.root)):
                return
            os.rmdir(os.path.join(self.root, RUN_DIRECTORY))
        except OSError:
            pass
