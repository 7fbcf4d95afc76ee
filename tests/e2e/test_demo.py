"""End to end through the installed `madengine` console script, as the README's demo runs it."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def console_script() -> str:
    script = Path(sys.executable).parent / "madengine"
    if not script.exists():
        pytest.fail(f"{script} is missing: install madengine into this interpreter's environment (scripts/setup.sh)")
    return str(script)


def test_demo_flow_discover_build_run_report(tmp_path: Path) -> None:
    package = tmp_path / "mad"
    shutil.copytree(REPO_ROOT / "tests" / "fixtures" / "mad", package, symlinks=True)
    madengine = console_script()
    env = {"PATH": str(Path(sys.executable).parent) + ":/usr/local/bin:/usr/bin:/bin", "COLUMNS": "200"}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [madengine, *args], cwd=package, env=env, capture_output=True, text=True, timeout=600, check=False
        )

    version = run("--version")
    assert version.returncode == 0 and version.stdout.startswith("madengine version ")
    built = run("build", "--tags", "dummy")
    assert built.returncode == 0, built.stderr
    assert "ci-dummy_dummy.ubuntu.cpu" in built.stdout
    ran = run("run", "--manifest-file", "build_manifest.json")
    assert ran.returncode == 0, ran.stderr
    assert "SUCCESS" in ran.stdout and "samples_per_second" in ran.stdout
    with open(package / "perf.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["model"], r["status"]) for r in rows] == [("dummy", "SUCCESS")]
    assert rows[0]["performance"] in ran.stdout
