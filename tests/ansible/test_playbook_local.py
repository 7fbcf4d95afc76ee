"""The README's fleet command on the controller alone: benchmark.yml with inventories/local."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ansible_collections.rocm.madengine.plugins.module_utils import results_store

REPO_ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def local_playbook(package: Path, name: str, *extravars: str) -> subprocess.CompletedProcess:
    """ansible-playbook playbooks/<name> -i inventories/local -e ..., run from the package as a user would."""
    env = {
        **os.environ,
        "PWD": str(package),
        "ANSIBLE_COLLECTIONS_PATH": str(REPO_ROOT / "collections"),
        "ANSIBLE_NOCOLOR": "1",
    }
    argv = [str(Path(sys.executable).parent / "ansible-playbook"), str(REPO_ROOT / "playbooks" / name)]
    argv += ["-i", str(REPO_ROOT / "inventories" / "local")]
    for extravar in extravars:
        argv += ["-e", extravar]
    return subprocess.run(
        argv, cwd=package, env=env, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL, check=False
    )


def test_benchmark_with_the_local_inventory(mad_package: Path) -> None:
    result = local_playbook(mad_package, "benchmark.yml", "madengine_tags=dummy", "madengine_repeat=2")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    with open(mad_package / "perf.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["model"], r["machine_name"], r["status"], r["repeat"]) for r in rows] == [
        ("dummy", "localhost", "SUCCESS", "1"),
        ("dummy", "localhost", "SUCCESS", "2"),
    ]
    # the aggregate role merged the rows into the controller's results store too
    (run,) = results_store.runs(str(mad_package / results_store.DEFAULT_NAME))
    assert (run["run_id"], run["target"], run["success"]) == (rows[0]["run_id"], "fleet", 2)
    assert (mad_package / "perf_summary.json").is_file()
    for repeat in (1, 2):
        assert (
            mad_package / "hosts" / "localhost" / "logs" / f"dummy_dummy.ubuntu.cpu.repeat{repeat}.run.live.log"
        ).is_file()

    # stop.yml for a run that has ended: nothing to stop, nothing left to remove
    stop = local_playbook(mad_package, "stop.yml", f"madengine_run_id={rows[0]['run_id']}")
    assert stop.returncode == 0, stop.stdout[-3000:] + stop.stderr[-2000:]
    assert re.search(r"localhost\s*:\s*ok=1\s+changed=0\s+unreachable=0\s+failed=0", stop.stdout), stop.stdout[-2000:]
