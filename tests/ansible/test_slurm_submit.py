"""rocm.madengine.slurm_submit for real through ansible-core, against the two-node SLURM cluster of setup-slurm.sh.

This machine is the login node and both compute nodes; the private copy of the fixture package is the shared file
system. The jobs run `madengine slurm-task` (this checkout's) and real containers of the CPU images. Every test
uses its own run id, so the job names (madengine-<run_id>-<n>) tell its jobs apart from other tests' jobs.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Dict, List

import pytest
import yaml
from modrun import COLLECTIONS, FQCN, Ansible, ModuleResult, venv_bin

pytestmark = pytest.mark.integration

MADENGINE = str(Path(sys.executable).parent / "madengine")
# Small jobs that share the two nodes, polled every second at most, with a short time limit.
SETTINGS = {"madengine_command": MADENGINE, "exclusive": False, "wait_sleep": 1, "time": "5"}


@pytest.fixture
def slurm(ansible: Ansible, slurm_cluster) -> Ansible:
    """The module runner, with SLURM_CONF in the environment (the local connection passes it to the module)."""
    ansible.env.update(slurm_cluster.env)
    return ansible


def new_run_id() -> str:
    return f"it-{uuid.uuid4().hex[:10]}"


def build(package: Path, *tags: str, manifest: str = "build_manifest.json") -> None:
    proc = subprocess.run(
        [MADENGINE, "build", "--tags", ",".join(tags), "--manifest-output", manifest],
        cwd=package,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


def submit_args(package: Path, run_id: str, **extra: Any) -> Dict[str, Any]:
    return {"package_dir": str(package), "run_id": run_id, **SETTINGS, **extra}


def csv_rows(path: Path) -> List[Dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def cluster_jobs(cluster, run_id: str) -> Dict[str, str]:
    """<job id> or <array job id>_<task> -> JobState of each job of this run the cluster knows (queued or ended
    within MinJobAge)."""
    shown = cluster.run("scontrol", "show", "job", "-o")
    assert shown.returncode == 0, shown.stderr
    jobs = {}
    for line in shown.stdout.splitlines():
        fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
        if fields.get("JobName", "").startswith(f"madengine-{run_id}-"):
            task = fields.get("ArrayTaskId")
            jobs[f"{fields['ArrayJobId']}_{task}" if task else fields["JobId"]] = fields["JobState"]
    queued = cluster.run("squeue", "-h", "-o", "%i %j")
    assert queued.returncode == 0, queued.stderr
    for line in queued.stdout.splitlines():
        job, _sep, name = line.strip().partition(" ")
        if name.startswith(f"madengine-{run_id}-"):
            jobs.setdefault(job, "QUEUED")
    return jobs


def assert_one_line_failure(result: ModuleResult) -> None:
    assert result.rc != 0 and result.failed, result.output
    assert result.data["msg"] and "\n" not in result.data["msg"], result.data
    assert "Traceback" not in result.output and "exception" not in result.data, result.output


# success, idempotency, check mode ------------------------------------------------------------------------------


def test_models_run_as_jobs_and_their_rows_come_back(slurm: Ansible, mad_package: Path, slurm_cluster) -> None:
    build(mad_package, "dummy", "dummy2")
    run_id = new_run_id()
    args = submit_args(mad_package, run_id)
    ran = slurm.module("slurm_submit", args)
    assert ran.rc == 0 and not ran.failed, ran.output
    assert ran.changed is True

    rows = {row["model"]: row for row in ran.data["rows"]}
    assert sorted(rows) == ["dummy", "dummy2"]
    for row in rows.values():
        assert (row["status"], row["failure_reason"]) == ("SUCCESS", ""), row
        assert row["deployment_type"] == "slurm" and row["run_id"] == run_id
        assert row["machine_name"] in slurm_cluster.nodes  # written by the task on its compute node
        assert row["metric"] == "samples_per_second" and float(row["performance"]) > 0

    (job_id,) = ran.data["job_ids"]  # both models have the same shape: one array
    assert ran.data["submitted"] == [job_id] and ran.data["cancelled"] == []
    assert ran.data["run_id"] == run_id
    jobs = sorted((job["model"], job["job_id"], job["state"], job["exit_code"]) for job in ran.data["jobs"])
    assert jobs == [("dummy", f"{job_id}_0", "COMPLETED", "0:0"), ("dummy2", f"{job_id}_1", "COMPLETED", "0:0")]
    known = cluster_jobs(slurm_cluster, run_id)
    assert known == {f"{job_id}_0": "COMPLETED", f"{job_id}_1": "COMPLETED"}

    results = Path(ran.data["results_dir"])
    assert results == mad_package / "slurm_results" / run_id and results.is_dir()
    assert json.loads((results / "jobs.json").read_text(encoding="utf-8"))["jobs"] == {f"madengine-{run_id}-0": job_id}
    script = Path(ran.data["jobs"][0]["script"])
    assert script.parent == results and script.is_file()
    text = script.read_text(encoding="utf-8")
    assert "#SBATCH --time=5\n" in text and "--exclusive" not in text and f"{MADENGINE} slurm-task" in text
    assert sorted(row["model"] for row in csv_rows(results / "perf.csv")) == ["dummy", "dummy2"]

    assert ran.data["perf_csv"] == str(mad_package / "perf.csv")
    written = csv_rows(mad_package / "perf.csv")
    assert sorted((row["model"], row["status"], row["run_id"]) for row in written) == [
        ("dummy", "SUCCESS", run_id),
        ("dummy2", "SUCCESS", run_id),
    ]

    # The run is done: check mode with the same run id predicts no change, and asks sbatch nothing.
    predicted = slurm.module("slurm_submit", args, check=True)
    assert predicted.rc == 0 and not predicted.failed, predicted.output
    assert predicted.changed is False
    assert predicted.data["test_only"] == [] and predicted.data["submitted"] == []
    assert len(csv_rows(mad_package / "perf.csv")) == 2
    assert cluster_jobs(slurm_cluster, run_id) == known


def run_play(slurm: Ansible, tmp_path: Path, play: Dict[str, Any], *options: str) -> subprocess.CompletedProcess:
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump([play], sort_keys=False), encoding="utf-8")
    return subprocess.run(
        [str(venv_bin() / "ansible-playbook"), "-i", "localhost,", "-c", "local", *options, str(playbook)],
        capture_output=True,
        text=True,
        env=slurm.env,
        timeout=600,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_same_run_id_twice_in_a_playbook_is_idempotent(
    slurm: Ansible, mad_package: Path, slurm_cluster, tmp_path: Path
) -> None:
    """ansible-playbook with the task twice; package_dir and the settings come from the action group's defaults."""
    build(mad_package, "dummy", "dummy2")
    run_id = new_run_id()
    saved = tmp_path / "registered.json"
    task = {f"{FQCN}.slurm_submit": {"run_id": run_id}}
    play = {
        "hosts": "localhost",
        "gather_facts": False,
        "module_defaults": {f"group/{FQCN}.madengine": {"package_dir": str(mad_package), **SETTINGS}},
        "tasks": [
            {"name": "Run the manifest on SLURM", **task, "register": "first"},
            {"name": "The same again", **task, "register": "second"},
            {
                "name": "Save what they returned",
                "ansible.builtin.copy": {
                    "content": "{{ {'first': first, 'second': second} | to_json }}",
                    "dest": str(saved),
                },
            },
        ],
    }
    played = run_play(slurm, tmp_path, play)
    assert played.returncode == 0, played.stdout[-3000:] + played.stderr[-2000:]
    assert str(COLLECTIONS) == slurm.env["ANSIBLE_COLLECTIONS_PATH"]
    registered = json.loads(saved.read_text(encoding="utf-8"))
    first, second = registered["first"], registered["second"]

    assert first["changed"] is True and first["submitted"] == first["job_ids"] and len(first["job_ids"]) == 1
    assert second["changed"] is False and second["submitted"] == []
    assert second["job_ids"] == first["job_ids"] and second["results_dir"] == first["results_dir"]
    assert [job["state"] for job in second["jobs"]] == ["COMPLETED", "COMPLETED"]

    def essentials(rows: List[Dict[str, str]]) -> List[tuple]:
        return sorted((r["model"], r["status"], r["performance"], r["machine_name"], r["run_id"]) for r in rows)

    assert essentials(second["rows"]) == essentials(first["rows"])
    assert [row[1] for row in essentials(first["rows"])] == ["SUCCESS", "SUCCESS"]
    assert "changed: [localhost]" in played.stdout and "ok: [localhost]" in played.stdout

    # The rows went to perf.csv once, not once per call.
    assert essentials(csv_rows(mad_package / "perf.csv")) == essentials(first["rows"])
    assert len(csv_rows(Path(first["results_dir"]) / "perf.csv")) == 2
    assert len(cluster_jobs(slurm_cluster, run_id)) == 2  # one array of two tasks, submitted once


def test_check_mode_writes_and_submits_nothing(slurm: Ansible, mad_package: Path, slurm_cluster) -> None:
    build(mad_package, "dummy", "dummy2")
    before = sorted(os.listdir(mad_package))
    run_id = new_run_id()
    predicted = slurm.module("slurm_submit", submit_args(mad_package, run_id), check=True)
    assert predicted.rc == 0 and not predicted.failed, predicted.output
    assert predicted.changed is True and predicted.status == "CHANGED"
    (answer,) = predicted.data["test_only"]
    assert answer["job_name"] == f"madengine-{run_id}-0" and answer["ok"] == "true"
    assert "to start at" in answer["message"] and "debug" in answer["message"], answer
    assert predicted.data["submitted"] == [] and predicted.data["job_ids"] == [] and predicted.data["rows"] == []
    assert predicted.data["results_dir"] == str(mad_package / "slurm_results" / run_id)

    assert sorted(os.listdir(mad_package)) == before, "check mode wrote into package_dir"
    assert not (mad_package / "slurm_results").exists()
    assert cluster_jobs(slurm_cluster, run_id) == {}, "check mode submitted a job"
    # The job sbatch was asked about is the one a real run submits (same name, script checked with --test-only).
    assert {job["job_name"] for job in predicted.data["jobs"]} == {answer["job_name"]}

    refused = slurm.module("slurm_submit", submit_args(mad_package, run_id, partition="nosuchpartition"), check=True)
    assert_one_line_failure(refused)
    assert refused.data["msg"].startswith(f"sbatch --test-only refused madengine-{run_id}-0: ")
    assert "invalid partition" in refused.data["msg"].lower(), refused.data["msg"]
    assert refused.data["test_only"][0]["ok"] == "false"
    assert not (mad_package / "slurm_results").exists()
    assert cluster_jobs(slurm_cluster, run_id) == {}


# failures ------------------------------------------------------------------------------------------------------


def test_a_refused_submission_is_a_submit_failed_row(slurm: Ansible, mad_package: Path, slurm_cluster) -> None:
    build(mad_package, "dummy", "dummy2")
    run_id = new_run_id()
    failed = slurm.module("slurm_submit", submit_args(mad_package, run_id, partition="nosuchpartition"))
    assert_one_line_failure(failed)
    assert failed.data["msg"] == "2 of 2 row(s) failed: dummy (SUBMIT_FAILED), dummy2 (SUBMIT_FAILED)"
    assert {(r["model"], r["status"], r["failure_reason"]) for r in failed.data["rows"]} == {
        ("dummy", "FAILURE", "SUBMIT_FAILED"),
        ("dummy2", "FAILURE", "SUBMIT_FAILED"),
    }
    assert {r["deployment_type"] for r in failed.data["rows"]} == {"slurm"}
    assert failed.data["job_ids"] == [] and failed.data["submitted"] == []
    assert all("invalid partition" in job["reason"].lower() for job in failed.data["jobs"]), failed.data["jobs"]
    assert "sbatch madengine-" in failed.stderr  # the core's warning, shown by Ansible
    assert [r["failure_reason"] for r in csv_rows(mad_package / "perf.csv")] == ["SUBMIT_FAILED", "SUBMIT_FAILED"]
    assert cluster_jobs(slurm_cluster, run_id) == {}

    other = new_run_id()
    tolerated = slurm.module(
        "slurm_submit", submit_args(mad_package, other, partition="nosuchpartition", fail_on_error=False)
    )
    assert tolerated.rc == 0 and not tolerated.failed, tolerated.output
    assert [(r["status"], r["failure_reason"]) for r in tolerated.data["rows"]] == [("FAILURE", "SUBMIT_FAILED")] * 2
    assert {r["run_id"] for r in csv_rows(mad_package / "perf.csv")} == {run_id, other}


def test_a_failing_model_is_an_exit_code_row(slurm: Ansible, mad_package: Path, slurm_cluster) -> None:
    build(mad_package, "dummy_exit", manifest="exit.json")
    run_id = new_run_id()
    args = submit_args(mad_package, run_id, manifest_file="exit.json")
    failed = slurm.module("slurm_submit", args)
    assert_one_line_failure(failed)
    assert failed.changed is True
    assert failed.data["msg"] == "1 of 1 row(s) failed: dummy_exit (EXIT_CODE)"
    (row,) = failed.data["rows"]
    assert (row["model"], row["status"], row["failure_reason"]) == ("dummy_exit", "FAILURE", "EXIT_CODE")
    assert row["machine_name"] in slurm_cluster.nodes and row["deployment_type"] == "slurm"
    (job,) = failed.data["jobs"]
    assert (job["state"], job["exit_code"]) == ("FAILED", "1:0")
    assert [r["failure_reason"] for r in csv_rows(mad_package / "perf.csv")] == ["EXIT_CODE"]

    # Failed rows are rows too: the same run id again fails the same way, without a new job or a second row.
    again = slurm.module("slurm_submit", args)
    assert_one_line_failure(again)
    assert again.changed is False and again.data["submitted"] == [] and again.data["job_ids"] == failed.data["job_ids"]
    assert len(csv_rows(mad_package / "perf.csv")) == 1


# option values -------------------------------------------------------------------------------------------------

BAD_OPTIONS = [
    ({"time": "soon"}, "time", "Slurm time"),
    ({"extra_directives": ["--comment=$(id)"]}, "extra_directives", "sbatch options"),
    ({"partition": "a b"}, "partition", "partition name"),
    ({"nodes": 0}, "nodes", ">= 1"),
    ({"wait_sleep": 0}, "wait_sleep", ">= 1"),
    ({"modules": ["rocm; id"]}, "modules", "module names"),
    ({"run_id": "a b"}, "run_id", "run_id"),
    ({"run_id": ".."}, "run_id", "run_id"),
    ({"timeout": -5}, "timeout", "timeout"),
    ({"manifest_file": "missing.json"}, "manifest_file", "missing.json"),
    ({"additional_context": {"slurm": {"bogus": 1}}}, "additional_context", "unknown"),
    ({"additional_context": {"slurm": {"time": "soon"}}}, "additional_context", "slurm.time"),
]


@pytest.mark.parametrize(("extra", "option", "words"), BAD_OPTIONS)
def test_bad_option_values_fail_naming_the_option(
    slurm: Ansible, mad_package: Path, extra: Dict[str, Any], option: str, words: str
) -> None:
    args = {**submit_args(mad_package, new_run_id()), **extra}
    failed = slurm.module("slurm_submit", args)
    assert_one_line_failure(failed)
    assert failed.data.get("option") == option, failed.data
    assert words in failed.data["msg"], failed.data["msg"]
    assert not (mad_package / "slurm_results").exists() and not (mad_package / "perf.csv").exists()


def test_bad_choice_and_output_dir_fail_without_a_traceback(slurm: Ansible, mad_package: Path) -> None:
    choice = slurm.module("slurm_submit", {**submit_args(mad_package, new_run_id()), "gpu_request": "pci"})
    assert_one_line_failure(choice)
    assert "gpu_request" in choice.data["msg"] and "gres" in choice.data["msg"]

    build(mad_package, "dummy")
    spaced = slurm.module("slurm_submit", {**submit_args(mad_package, new_run_id()), "output_dir": "slurm results"})
    assert_one_line_failure(spaced)
    assert "output_dir" in spaced.data["msg"] and "spaces" in spaced.data["msg"]
    assert not (mad_package / "slurm results").exists()


# wait: false ---------------------------------------------------------------------------------------------------


def test_wait_false_submits_and_a_later_call_collects(slurm: Ansible, mad_package: Path, slurm_cluster) -> None:
    build(mad_package, "dummy", "dummy2")
    run_id = new_run_id()
    # --hold keeps the array pending until the test releases it: the first call cannot have waited for it.
    args = submit_args(mad_package, run_id, extra_directives=["--hold"])
    submitted = slurm.module("slurm_submit", {**args, "wait": False})
    job_id = ""
    try:
        assert submitted.rc == 0 and not submitted.failed, submitted.output
        assert submitted.changed is True and submitted.data["rows"] == []
        (job_id,) = submitted.data["job_ids"]
        assert submitted.data["submitted"] == [job_id]
        states = {job["model"]: (job["job_id"], job["state"]) for job in submitted.data["jobs"]}
        assert states == {"dummy": (f"{job_id}_0", "PENDING"), "dummy2": (f"{job_id}_1", "PENDING")}
        assert not (mad_package / "perf.csv").exists()
        results = Path(submitted.data["results_dir"])
        state = json.loads((results / "jobs.json").read_text(encoding="utf-8"))
        assert state["jobs"] == {f"madengine-{run_id}-0": job_id} and state["collected"] is False
        shown = slurm_cluster.run("scontrol", "show", "job", "-o", job_id).stdout
        assert "JobState=PENDING" in shown and "Reason=JobHeldUser" in shown, shown

        released = slurm_cluster.run("scontrol", "release", job_id)
        assert released.returncode == 0, released.stderr
        collected = slurm.module("slurm_submit", args)
        assert collected.rc == 0 and not collected.failed, collected.output
        assert collected.data["submitted"] == [] and collected.data["job_ids"] == [job_id]
        assert sorted((r["model"], r["status"]) for r in collected.data["rows"]) == [
            ("dummy", "SUCCESS"),
            ("dummy2", "SUCCESS"),
        ]
        assert {job["state"] for job in collected.data["jobs"]} == {"COMPLETED"}
        assert sorted(r["model"] for r in csv_rows(mad_package / "perf.csv")) == ["dummy", "dummy2"]
        assert json.loads((results / "jobs.json").read_text(encoding="utf-8"))["collected"] is True

        again = slurm.module("slurm_submit", args)
        assert again.rc == 0 and again.changed is False, again.output
        assert len(again.data["rows"]) == 2 and len(csv_rows(mad_package / "perf.csv")) == 2
    finally:
        if job_id:
            slurm_cluster.run("scancel", job_id)  # a no-op once it completed


def test_collecting_after_wait_false_reports_a_change(slurm: Ansible, mad_package: Path) -> None:
    build(mad_package, "dummy")
    args = submit_args(mad_package, new_run_id())
    submitted = slurm.module("slurm_submit", {**args, "wait": False})
    assert submitted.rc == 0 and submitted.changed is True, submitted.output
    predicted = slurm.module("slurm_submit", args, check=True)
    collected = slurm.module("slurm_submit", args)
    assert collected.rc == 0 and len(csv_rows(mad_package / "perf.csv")) == 1, collected.output
    assert (predicted.changed, collected.changed) == (True, True)
