"""playbooks/slurm.yml with inventories/slurm-local: the controller builds, and as the login node submits to the
real SLURM cluster of setup-slurm.sh; the aggregate keeps the compute nodes' rows and the job failures."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
MADENGINE = str(Path(sys.executable).parent / "madengine")
pytestmark = pytest.mark.integration


def run_playbook(mad_package: Path, env: dict, extra: dict, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            *options,
            str(REPO_ROOT / "playbooks" / "slurm.yml"),
            "-i",
            str(REPO_ROOT / "inventories" / "slurm-local"),
            "-e",
            json.dumps(extra),
        ],
        cwd=mad_package,
        env={
            **os.environ,
            **env,
            "PWD": str(mad_package),
            "ANSIBLE_COLLECTIONS_PATH": str(REPO_ROOT / "collections"),
            "ANSIBLE_NOCOLOR": "1",
        },
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_slurm_playbook_with_the_local_login_node(mad_package: Path, slurm_cluster, tmp_path: Path) -> None:
    extra = {
        "madengine_tags": ["dummy", "dummy_exit"],
        "madengine_work_dir": str(tmp_path / "shared"),
        "madengine_slurm": {"madengine_command": MADENGINE, "exclusive": False, "wait_sleep": 1, "time": "5"},
    }
    result = run_playbook(mad_package, slurm_cluster.env, extra)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    with open(mad_package / "perf.csv", newline="") as handle:
        rows = {row["model"]: row for row in csv.DictReader(handle)}
    assert sorted(rows) == ["dummy", "dummy_exit"]
    assert rows["dummy"]["status"] == "SUCCESS"
    assert (rows["dummy_exit"]["status"], rows["dummy_exit"]["failure_reason"]) == ("FAILURE", "EXIT_CODE")
    assert {row["machine_name"] for row in rows.values()} <= set(slurm_cluster.nodes)
    assert {row["deployment_type"] for row in rows.values()} == {"slurm"}
    assert len({row["run_id"] for row in rows.values()}) == 1
    summary = json.loads((mad_package / "perf_summary.json").read_text())
    assert summary["success"] == 1 and summary["failure"] == 1
    # The jobs ran from the copy on the "shared" file system, not from the controller's package.
    assert list((tmp_path / "shared" / "slurm_results").glob("*/jobs.json"))


def test_slurm_check_mode_submits_nothing(mad_package: Path, slurm_cluster, tmp_path: Path) -> None:
    build = subprocess.run(
        [MADENGINE, "build", "--tags", "dummy"], cwd=mad_package, capture_output=True, text=True, check=False
    )
    assert build.returncode == 0, build.stderr
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "build_manifest.json").write_text((mad_package / "build_manifest.json").read_text())
    before = slurm_cluster.run("squeue", "-h", "-o", "%i").stdout.split()
    extra = {
        "madengine_tags": ["dummy"],
        "madengine_work_dir": str(shared),
        "madengine_slurm": {"madengine_command": MADENGINE, "exclusive": False, "time": "5"},
    }
    result = run_playbook(mad_package, slurm_cluster.env, extra, "--check", "--tags", "run")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "Check the jobs with sbatch --test-only" in result.stdout
    assert not (shared / "slurm_results").exists()
    assert slurm_cluster.run("squeue", "-h", "-o", "%i").stdout.split() == before
