"""Running the real madengine CLI (this checkout's code) in a subprocess, and reading what it leaves."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def cli_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT / "python"), str(REPO_ROOT / "collections")])
    env["COLUMNS"] = "200"
    env.update(extra or {})
    return env


def madengine(cwd: Path, *args: str, env: Optional[Dict[str, str]] = None, timeout: int = 600) -> Result:
    proc = subprocess.run(
        [sys.executable, "-m", "madengine", *args],
        cwd=cwd,
        env=cli_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def perf_rows(package: Path, name: str = "perf.csv") -> List[Dict[str, str]]:
    with open(package / name, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def perf_header(package: Path, name: str = "perf.csv") -> List[str]:
    with open(package / name, newline="", encoding="utf-8") as handle:
        return next(csv.reader(handle))


def rows_by_model(package: Path) -> Dict[str, Dict[str, str]]:
    return {row["model"]: row for row in perf_rows(package)}


def manifest(package: Path, name: str = "build_manifest.json") -> dict:
    return json.loads((package / name).read_text(encoding="utf-8"))
