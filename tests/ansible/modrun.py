"""Helpers: run the rocm.madengine modules for real (`ansible localhost -m ...`, this checkout).

The modules run through ansible-core exactly as on a target (AnsiballZ, module_utils packed in), with the
repo's venv Python as the target interpreter, on the real Docker engine. Nothing is mocked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

REPO_ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS = REPO_ROOT / "collections"
COLLECTION_DIR = COLLECTIONS / "ansible_collections" / "rocm" / "madengine"
FQCN = "rocm.madengine"
MODULES = ("discover_models", "docker_build_model", "run_model", "parse_perf", "slurm_submit", "k8s_job")


def venv_bin() -> Path:
    candidate = REPO_ROOT / ".venv" / "bin"
    return candidate if (candidate / "ansible").exists() else Path(sys.executable).parent


def ansible_env(tmp: Path, collections_path: Path = COLLECTIONS) -> Dict[str, str]:
    """An environment that sees only `collections_path` (not the editable install on sys.path)."""
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(collections_path),
        ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="False",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        ANSIBLE_LOCALHOST_WARNING="False",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="False",
        ANSIBLE_NOCOLOR="True",
        ANSIBLE_FORCE_COLOR="False",
        ANSIBLE_LOCAL_TEMP=str(tmp / "ansible-local"),
        ANSIBLE_REMOTE_TEMP=str(tmp / "ansible-remote"),
        ANSIBLE_HOME=str(tmp / "ansible-home"),
        ANSIBLE_RETRY_FILES_ENABLED="False",
    )
    env.pop("PYTHONPATH", None)
    return env


@dataclass
class ModuleResult:
    rc: int
    stdout: str
    stderr: str
    data: Dict[str, Any]

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def status(self) -> str:
        """SUCCESS, CHANGED, FAILED! or SKIPPED: what `localhost | <status> =>` says."""
        marker = self.stdout.find("localhost | ")
        return self.stdout[marker:].split()[2] if marker >= 0 else ""

    @property
    def failed(self) -> bool:
        return self.status == "FAILED!" or bool(self.data.get("failed"))

    @property
    def changed(self) -> bool:
        return bool(self.data.get("changed"))


def parse_adhoc(stdout: str) -> Dict[str, Any]:
    """The JSON result of `ansible localhost -m ...` ("localhost | CHANGED => {...}")."""
    marker = stdout.find("localhost | ")
    if marker < 0:
        return {}
    start = stdout.find("{", marker)
    if start < 0:
        return {}
    data, _end = json.JSONDecoder().raw_decode(stdout[start:])
    return data


class Ansible:
    """Runs one module of the collection on localhost."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.env = ansible_env(tmp)

    def module(
        self,
        name: str,
        args: Dict[str, Any],
        check: bool = False,
        diff: bool = False,
        verbosity: int = 0,
        timeout: int = 600,
    ) -> ModuleResult:
        argv = [str(venv_bin() / "ansible"), "localhost", "-m", f"{FQCN}.{name}", "-a", json.dumps(args)]
        if check:
            argv.append("--check")
        if diff:
            argv.append("--diff")
        if verbosity:
            argv.append("-" + "v" * verbosity)
        proc = subprocess.run(argv, capture_output=True, text=True, env=self.env, timeout=timeout, check=False)
        return ModuleResult(proc.returncode, proc.stdout, proc.stderr, parse_adhoc(proc.stdout))


def run_tool(argv: List[str], env: Dict[str, str], cwd: Optional[Path] = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd, timeout=600, check=False)


@dataclass
class Package:
    """A private copy of the fixture MAD package, plus a model whose image name no other test uses."""

    root: Path
    model: str
    tag: str

    @property
    def image(self) -> str:
        return f"ci-{self.model}_dummy.ubuntu.cpu"

    def manifest(self, name: str = "build_manifest.json") -> Dict[str, Any]:
        return json.loads((self.root / name).read_text(encoding="utf-8"))
