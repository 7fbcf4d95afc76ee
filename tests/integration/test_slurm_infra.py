"""The local SLURM cluster of scripts/setup-slurm.sh really works: two nodes, multi-node jobs, job arrays.

Nothing is mocked. The module fixture runs scripts/setup-slurm.sh (idempotent: well under a second when the cluster
is already up, and it restarts daemons that died) and reads SLURM_CONF from <state dir>/slurm.env.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List

import pytest

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
SETUP_SCRIPT = REPO_ROOT / "scripts" / "setup-slurm.sh"
NODES = ("n1", "n2")
JOB_TIMEOUT = 180  # seconds for one `sbatch --wait`; the jobs themselves take about 2 s


def slurm_state_dir() -> Path:
    return Path(os.environ.get("MADENGINE_SLURM_DIR") or "/var/tmp/madengine-slurm")


@dataclass(frozen=True)
class Slurm:
    """The running cluster: `env` is os.environ plus the settings of slurm.env (SLURM_CONF)."""

    state_dir: Path
    env: Dict[str, str] = field(repr=False)

    def run(self, *argv: str, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            list(argv), capture_output=True, text=True, env=self.env, cwd=cwd, timeout=timeout, check=False
        )
        assert proc.returncode == 0, f"{' '.join(argv)} failed (rc={proc.returncode}): {proc.stderr.strip()[-500:]}"
        return proc

    def sbatch_wait(self, workdir: Path, *args: str) -> str:
        """Submit a batch job with `sbatch --wait --parsable`, return its job id once it (all its tasks) ended."""
        proc = self.run(
            "sbatch", "--wait", "--parsable", "--time=3", f"--chdir={workdir}", f"--output={workdir}/slurm-%A_%a.out",
            *args, cwd=workdir, timeout=JOB_TIMEOUT,
        )  # fmt: skip
        return proc.stdout.strip().split(";")[0]

    def job_record(self, job_id: str) -> str:
        return self.run("scontrol", "show", "job", "-o", job_id).stdout


@pytest.fixture(scope="module")
def slurm() -> Slurm:
    try:
        subprocess.run(
            ["bash", str(SETUP_SCRIPT)], capture_output=True, text=True, timeout=600, check=True,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"{SETUP_SCRIPT.name} failed (rc={exc.returncode}):\n{exc.stdout}{exc.stderr}", pytrace=False)
    state = slurm_state_dir()
    env = dict(os.environ)
    for raw in (state / "slurm.env").read_text(encoding="utf-8").splitlines():
        key, sep, value = raw.strip().partition("=")
        if sep and key and not key.startswith("#"):
            env[key] = value
    assert Path(env["SLURM_CONF"]).is_file(), env["SLURM_CONF"]
    return Slurm(state_dir=state, env=env)


def outputs(workdir: Path) -> List[str]:
    return [p.read_text(encoding="utf-8") for p in sorted(workdir.glob("slurm-*.out"))]


def test_both_nodes_idle(slurm: Slurm) -> None:
    out = slurm.run("sinfo", "-h", "-N", "-o", "%N %T").stdout
    states = dict(line.split(None, 1) for line in out.splitlines() if line.strip())
    assert states == {"n1": "idle", "n2": "idle"}, out
    partitions = slurm.run("sinfo", "-h", "-o", "%P %D %l").stdout.split()
    assert partitions == ["debug*", "2", "infinite"]


def test_two_node_job_runs_a_task_on_each_node(slurm: Slurm, tmp_path: Path) -> None:
    # single quotes: $SLURMD_NODENAME must be expanded by each task, not by the batch script on the first node
    job_id = slurm.sbatch_wait(tmp_path, "-N2", "--wrap", "srun -l bash -c 'echo node=$SLURMD_NODENAME'")
    text = "".join(outputs(tmp_path))
    lines = sorted(line.strip() for line in text.splitlines() if "node=" in line)
    assert lines == ["0: node=n1", "1: node=n2"], text
    record = slurm.job_record(job_id)
    assert "JobState=COMPLETED" in record and "ExitCode=0:0" in record and "NodeList=n[1-2]" in record, record


def test_array_tasks_each_write_their_id(slurm: Slurm, tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    job_id = slurm.sbatch_wait(
        tmp_path, "--array=0-2", "--wrap", f'echo "$SLURM_ARRAY_TASK_ID" > {results}/task-$SLURM_ARRAY_TASK_ID'
    )
    found = {p.name: p.read_text(encoding="utf-8").strip() for p in results.iterdir()}
    assert found == {"task-0": "0", "task-1": "1", "task-2": "2"}, (found, outputs(tmp_path))
    for task in range(3):
        record = slurm.job_record(f"{job_id}_{task}")
        assert "JobState=COMPLETED" in record and f"ArrayTaskId={task} " in record, record
