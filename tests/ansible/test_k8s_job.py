"""rocm.madengine.k8s_job for real through ansible-core, against the single-node cluster of setup-k8s.sh, with the
images pushed to the authenticated local registry: check mode creates nothing, a second apply is changed=false,
the diff names the Jobs, state=absent deletes them, and playbooks/k8s.yml runs end to end."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Dict

import pytest
from modrun import COLLECTIONS, Ansible, venv_bin

pytestmark = pytest.mark.integration

MADENGINE = str(Path(sys.executable).parent / "madengine")
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def pushed(mad_package: Path, infra) -> Path:
    """The fixture package with `dummy` built and pushed to the test registry (credential.json for the pull)."""
    creds = {
        infra.registry: {
            "username": infra.username,
            "password": infra.password,
            "repository": f"madengine-k8s-mod/{uuid.uuid4().hex[:8]}",
        }
    }
    (mad_package / "credential.json").write_text(json.dumps(creds), encoding="utf-8")
    proc = subprocess.run(
        [MADENGINE, "build", "--tags", "dummy", "--registry", infra.registry],
        cwd=mad_package,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return mad_package


def job_args(package: Path, cluster, run_id: str, **extra: Any) -> Dict[str, Any]:
    return {
        "package_dir": str(package),
        "run_id": run_id,
        "kubeconfig": str(cluster.kubeconfig),
        "namespace": cluster.namespace,
        "image_pull_policy": "IfNotPresent",
        "additional_context": {"gpu_vendor": "CPU"},
        **extra,
    }


def jobs_of(cluster, run_id: str) -> list:
    return cluster.batch.list_namespaced_job(cluster.namespace, label_selector=f"madengine/run={run_id}").items


def test_check_mode_creates_nothing_then_apply_then_idempotent(ansible: Ansible, pushed: Path, k8s_cluster) -> None:
    run_id = f"mod-{uuid.uuid4().hex[:8]}"
    args = job_args(pushed, k8s_cluster, run_id, cleanup="never")
    predicted = ansible.module("k8s_job", args, check=True, diff=True)
    assert predicted.status == "CHANGED", predicted.output
    assert predicted.data["dry_run"] == [] and predicted.data["rows"] == []
    assert not jobs_of(k8s_cluster, run_id), "check mode created a Job"
    assert not (pushed / "k8s_results" / run_id / "jobs.json").exists()

    applied = ansible.module("k8s_job", args, diff=True)
    assert applied.status == "CHANGED", applied.output
    (row,) = applied.data["rows"]
    assert (row["status"], row["deployment_type"], row["run_id"]) == ("SUCCESS", "kubernetes", run_id)
    (job,) = applied.data["jobs"]
    assert job["state"] == "SUCCEEDED" and applied.data["submitted"] == [job["job_name"]]
    # --diff: ansible prints before/after as a unified diff; the new Job is an added line.
    added = [line for line in applied.stdout.splitlines() if line.startswith("+") and not line.startswith("+++")]
    assert "--- before" in applied.stdout and any(job["job_name"] in line for line in added), applied.stdout
    assert [j.metadata.name for j in jobs_of(k8s_cluster, run_id)] == [job["job_name"]]  # cleanup=never kept it

    again = ansible.module("k8s_job", args)
    assert again.status == "SUCCESS", again.output  # changed=false: nothing created, rows not appended again
    assert again.data["submitted"] == [] and [r["status"] for r in again.data["rows"]] == ["SUCCESS"]
    assert len((pushed / "perf.csv").read_text().strip().splitlines()) == 2  # header + one row

    predicted_again = ansible.module("k8s_job", args, check=True)
    assert predicted_again.status == "SUCCESS", predicted_again.output

    removed = ansible.module("k8s_job", {**args, "state": "absent"})
    assert removed.status == "CHANGED" and removed.data["cancelled"] == [job["job_name"]], removed.output
    assert not jobs_of(k8s_cluster, run_id)
    assert ansible.module("k8s_job", {**args, "state": "absent"}).status == "SUCCESS"


def test_check_mode_reports_what_the_api_server_refuses(ansible: Ansible, pushed: Path, k8s_cluster) -> None:
    """The server-side dry run catches what only the API server checks: here a request above its limit."""
    args = job_args(pushed, k8s_cluster, f"mod-{uuid.uuid4().hex[:8]}", cleanup="never")
    args["additional_context"] = {"gpu_vendor": "CPU", "k8s": {"memory": "2Gi", "memory_limit": "1Gi"}}
    result = ansible.module("k8s_job", args, check=True)
    assert result.failed, result.output
    assert "would refuse" in result.data["msg"] and "memory" in result.data["msg"].lower()
    assert not jobs_of(k8s_cluster, args["run_id"])


def test_a_bad_setting_fails_naming_it(ansible: Ansible, pushed: Path, k8s_cluster) -> None:
    args = job_args(pushed, k8s_cluster, "mod-bad")
    args["additional_context"] = {"gpu_vendor": "CPU", "k8s": {"namespac": "x"}}
    result = ansible.module("k8s_job", args)
    assert result.failed and "k8s.namespac" in result.data["msg"], result.output
    assert "Traceback" not in result.output


def test_the_k8s_playbook_builds_runs_and_aggregates(pushed: Path, k8s_cluster, infra, tmp_path: Path) -> None:
    extra = {
        "madengine_tags": "dummy",
        "madengine_registry": infra.registry,
        "madengine_work_dir": str(tmp_path / "work"),
        "madengine_k8s": {
            "kubeconfig": str(k8s_cluster.kubeconfig),
            "namespace": k8s_cluster.namespace,
            "image_pull_policy": "IfNotPresent",
        },
    }
    (pushed / "perf.csv").unlink(missing_ok=True)
    proc = subprocess.run(
        [
            str(venv_bin() / "ansible-playbook"),
            str(REPO_ROOT / "playbooks" / "k8s.yml"),
            "-i",
            str(REPO_ROOT / "inventories" / "k8s-local"),
            "-e",
            json.dumps(extra),
        ],
        cwd=pushed,
        env={**os.environ, "PWD": str(pushed), "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS), "ANSIBLE_NOCOLOR": "1"},
        capture_output=True,
        text=True,
        timeout=900,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    with open(pushed / "perf.csv", newline="", encoding="utf-8") as handle:
        (row,) = list(csv.DictReader(handle))
    assert (row["model"], row["status"], row["deployment_type"]) == ("dummy", "SUCCESS", "kubernetes")
    assert infra.password not in proc.stdout + proc.stderr
