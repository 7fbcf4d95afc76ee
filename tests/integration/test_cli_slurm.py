"""`madengine run` against the real two-node SLURM cluster of setup-slurm.sh: jobs run real containers.

The login node, both compute nodes and the Docker engine are this machine; the MAD package is the shared
file system. Each test uses a private copy of the fixture package and its own run id.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict

import pytest
from clirun import cli_env, madengine, perf_rows

pytestmark = pytest.mark.integration

MADENGINE = str(Path(sys.executable).parent / "madengine")


def slurm_ctx(**settings) -> str:
    distributed = settings.pop("distributed", None)
    section = {"madengine_command": MADENGINE, "wait_sleep": 1, "exclusive": False, "time": "00:05:00", **settings}
    ctx: Dict[str, object] = {"slurm": section}
    if distributed:
        ctx["distributed"] = distributed
    return json.dumps(ctx)


def results_dir(package: Path) -> Path:
    (run_dir,) = (package / "slurm_results").iterdir()
    return run_dir


def start_until_running(package: Path, cluster, tags: str):
    """Start `madengine run` in the background; return it and its first job id once that job runs."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "madengine", "run", "--tags", tags, "-c", slurm_ctx()],
        cwd=package,
        env=cli_env(cluster.env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        job_id = ""
        deadline = time.monotonic() + 120
        while not job_id and time.monotonic() < deadline:
            state = list((package / "slurm_results").glob("*/jobs.json"))
            if state:
                job_id = next(iter(json.loads(state[0].read_text())["jobs"].values()), "")
            time.sleep(0.2)
        assert job_id, "madengine did not submit a job"
        deadline = time.monotonic() + 60  # by the time the job runs, madengine is waiting for it
        while "JobState=RUNNING" not in cluster.run("scontrol", "show", "job", "-o", job_id).stdout:
            assert time.monotonic() < deadline, "the job did not start"
            time.sleep(0.2)
    except BaseException:
        proc.kill()
        raise
    return proc, job_id


def test_one_model_is_a_job_whose_row_comes_back(mad_package, slurm_cluster):
    result = madengine(mad_package, "run", "--tags", "dummy", "-c", slurm_ctx(), env=slurm_cluster.env)
    assert result.rc == 0, result.output
    (row,) = perf_rows(mad_package)
    assert row["status"] == "SUCCESS" and row["metric"] == "samples_per_second" and float(row["performance"]) >= 0
    assert row["deployment_type"] == "slurm"
    assert row["machine_name"] in slurm_cluster.nodes  # written on the compute node, not here
    run_dir = results_dir(mad_package)
    (job_id,) = json.loads((run_dir / "jobs.json").read_text())["jobs"].values()
    task = json.loads((run_dir / "tasks" / "dummy" / "task.json").read_text())
    assert task["state"] == "DONE" and task["job_id"] == job_id and task["node"] == row["machine_name"]
    assert "performance:" in (run_dir / "logs" / f"madengine-{row['run_id']}-0_{job_id}.out").read_text()
    shown = slurm_cluster.run("scontrol", "show", "job", "-o", job_id).stdout
    assert "JobState=COMPLETED" in shown


def test_wait_false_submits_and_the_same_run_id_collects_later(mad_package, slurm_cluster):
    submitted = madengine(mad_package, "run", "--tags", "dummy", "-c", slurm_ctx(wait=False), env=slurm_cluster.env)
    assert submitted.rc == 0, submitted.output
    assert not (mad_package / "perf.csv").exists()  # nothing collected yet, nothing claimed
    run_dir = results_dir(mad_package)
    assert f"--run-id {run_dir.name}" in " ".join(submitted.output.split())
    (job_id,) = json.loads((run_dir / "jobs.json").read_text())["jobs"].values()

    collected = madengine(
        mad_package, "run", "--manifest-file", "build_manifest.json", "-c", slurm_ctx(), "--run-id", run_dir.name,
        env=slurm_cluster.env,
    )  # fmt: skip
    assert collected.rc == 0, collected.output
    (row,) = perf_rows(mad_package)
    assert (row["status"], row["run_id"], row["deployment_type"]) == ("SUCCESS", run_dir.name, "slurm")
    assert json.loads((run_dir / "jobs.json").read_text())["jobs"] == {f"madengine-{run_dir.name}-0": job_id}
    named = slurm_cluster.run("squeue", "-h", "-o", "%i", "--name", f"madengine-{run_dir.name}-0").stdout.split()
    shown = slurm_cluster.run("scontrol", "show", "job", "-o", job_id).stdout
    assert named == [] and f"JobName=madengine-{run_dir.name}-0" in shown  # the one job, not a second one


def test_several_models_go_as_one_array_and_all_come_back(mad_package, slurm_cluster):
    tags = ["dummy", "dummy2", "dummy_multi", "dummy_exit", "dummy3/model3"]
    result = madengine(mad_package, "run", "--tags", ",".join(tags), "-c", slurm_ctx(), env=slurm_cluster.env)
    assert result.rc == 3, result.output  # dummy_exit fails: a run failure
    rows = {row["model"]: row for row in perf_rows(mad_package)}
    assert sorted(rows) == sorted(
        ["dummy", "dummy2", "dummy_exit", "dummy3/model3"] + [f"dummy_multi_{i}" for i in range(1, 5)]
    )
    assert rows["dummy_exit"]["status"] == "FAILURE" and rows["dummy_exit"]["failure_reason"] == "EXIT_CODE"
    assert all(row["status"] == "SUCCESS" for name, row in rows.items() if name != "dummy_exit")
    jobs = json.loads((results_dir(mad_package) / "jobs.json").read_text())["jobs"]
    assert len(jobs) == 1  # one sbatch for all five
    (job_id,) = jobs.values()
    shown = slurm_cluster.run("scontrol", "show", "job", "-o", job_id).stdout
    assert sorted(line.split("ArrayTaskId=")[1].split()[0] for line in shown.splitlines()) == list("01234")


def test_array_false_submits_one_job_per_model(mad_package, slurm_cluster):
    result = madengine(
        mad_package, "run", "--tags", "dummy,dummy2", "-c", slurm_ctx(array=False), env=slurm_cluster.env
    )
    assert result.rc == 0, result.output
    jobs = json.loads((results_dir(mad_package) / "jobs.json").read_text())["jobs"]
    assert len(set(jobs.values())) == 2
    assert sorted(row["model"] for row in perf_rows(mad_package)) == ["dummy", "dummy2"]


def test_a_job_over_its_time_limit_is_a_timeout_row_and_exit_3(mad_package, slurm_cluster, docker_client):
    # dummy_sleep sleeps 300 s; SLURM's shortest limit is one minute and is enforced 64-72 s after the start.
    result = madengine(
        mad_package, "run", "--tags", "dummy_sleep", "--timeout", "0", "-c", slurm_ctx(time="1"),
        env=slurm_cluster.env, timeout=300,
    )  # fmt: skip
    assert result.rc == 3, result.output
    (row,) = perf_rows(mad_package)
    assert (row["status"], row["failure_reason"]) == ("FAILURE", "SLURM_TIMEOUT")
    assert "TIMEOUT" in result.output
    task = json.loads((results_dir(mad_package) / "tasks" / "dummy_sleep" / "task.json").read_text())
    assert task["state"] == "SLURM_TERMINATED"  # the task saw SIGTERM and unwound ...
    leftover = docker_client.containers.list(all=True, filters={"label": f"org.madengine.run-id={row['run_id']}"})
    assert leftover == []  # ... so its container was removed, not left running after the job


def test_a_cancelled_job_is_a_cancelled_row(mad_package, slurm_cluster):
    proc, job_id = start_until_running(mad_package, slurm_cluster, "dummy_sleep")
    try:
        assert slurm_cluster.run("scancel", job_id).returncode == 0
        output, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 3, output
    (row,) = perf_rows(mad_package)
    assert (row["status"], row["failure_reason"]) == ("FAILURE", "SLURM_CANCELLED")


def test_a_bad_partition_is_a_submit_failure_row_and_exit_3(mad_package, slurm_cluster):
    result = madengine(
        mad_package, "run", "--tags", "dummy,dummy2", "-c", slurm_ctx(partition="nosuchpartition"),
        env=slurm_cluster.env,
    )  # fmt: skip
    assert result.rc == 3, result.output
    assert "invalid partition" in result.output.lower() or "nosuchpartition" in result.output
    rows = perf_rows(mad_package)
    assert sorted(row["model"] for row in rows) == ["dummy", "dummy2"]
    assert {(row["status"], row["failure_reason"]) for row in rows} == {("FAILURE", "SUBMIT_FAILED")}


def test_wait_timeout_cancels_the_jobs(mad_package, slurm_cluster):
    result = madengine(
        mad_package, "run", "--tags", "dummy_sleep", "-c", slurm_ctx(wait_timeout=3), env=slurm_cluster.env
    )
    assert result.rc == 3, result.output
    (row,) = perf_rows(mad_package)
    assert (row["status"], row["failure_reason"]) == ("FAILURE", "WAIT_TIMEOUT")
    (job_id,) = json.loads((results_dir(mad_package) / "jobs.json").read_text())["jobs"].values()
    deadline = time.monotonic() + 30
    while "JobState=CANCELLED" not in slurm_cluster.run("scontrol", "show", "job", "-o", job_id).stdout:
        assert time.monotonic() < deadline, "madengine did not cancel its job"
        time.sleep(0.5)


def test_two_nodes_get_the_launcher_environment(mad_package, slurm_cluster):
    ctx = slurm_ctx(nodes=2, distributed={"launcher": "torchrun", "master_port": 29611})
    result = madengine(mad_package, "run", "--tags", "dummy_launcher", "-c", ctx, env=slurm_cluster.env)
    assert result.rc == 0, result.output
    (row,) = perf_rows(mad_package)
    assert (row["status"], row["nnodes"], row["performance"]) == ("SUCCESS", "2", "7")
    task_root = results_dir(mad_package) / "tasks" / "dummy_launcher"
    seen = {}
    for rank in (0, 1):
        (log,) = (task_root / f"node_{rank}").glob("*.run.live.log")
        env = dict(line[4:].split("=", 1) for line in log.read_text().splitlines() if line.startswith("ENV "))
        seen[rank] = env
        assert env["NODE_RANK"] == str(rank) and env["NNODES"] == "2" and env["MASTER_PORT"] == "29611"
        assert env["MAD_MULTI_NODE_RUNNER"] == (
            f"torchrun --nnodes=2 --nproc_per_node=1 --node_rank={rank} --master_addr=n1 --master_port=29611"
        )
        assert env["MAD_COLLECT_METRICS"] == ("true" if rank == 0 else "false")
    assert seen[0]["MASTER_ADDR"] == seen[1]["MASTER_ADDR"] == "n1"  # the allocation's first node
    nodes = {json.loads((task_root / f"node_{rank}" / "task.json").read_text())["node"] for rank in (0, 1)}
    assert nodes == {"n1", "n2"}


def test_vllm_single_node_gets_its_own_variables(mad_package, slurm_cluster):
    """The original never rendered launcher variables for single-node jobs (spec 15.5.41)."""
    ctx = slurm_ctx(gpus_per_node=0, distributed={"launcher": "vllm"})
    result = madengine(mad_package, "run", "--tags", "dummy_launcher", "-c", ctx, env=slurm_cluster.env)
    assert result.rc == 0, result.output
    (log,) = (results_dir(mad_package) / "tasks" / "dummy_launcher").glob("*.run.live.log")
    text = log.read_text()
    assert "ENV MAD_LAUNCHER_TYPE=vllm" in text and "ENV VLLM_TENSOR_PARALLEL_SIZE=1" in text


def test_self_managed_slurm_multi_runs_the_script_without_a_container(mad_package, slurm_cluster):
    ctx = slurm_ctx(distributed={"launcher": "slurm_multi"})
    result = madengine(mad_package, "run", "--tags", "dummy", "-c", ctx, env=slurm_cluster.env)
    assert result.rc == 0, result.output
    (row,) = perf_rows(mad_package)
    assert (row["status"], row["launcher"], row["deployment_type"]) == ("SUCCESS", "slurm_multi", "slurm")
    (log,) = (results_dir(mad_package) / "tasks" / "dummy").glob("*.run.live.log")
    assert "performance:" in log.read_text()


def test_inside_an_allocation_it_runs_there_instead_of_nesting_sbatch(mad_package, slurm_cluster):
    before = slurm_cluster.run("squeue", "-h", "-o", "%i %j").stdout.splitlines()
    proc = subprocess.run(
        ["salloc", "-N1", "--time=5", sys.executable, "-m", "madengine", "run", "--tags", "dummy,dummy2",
         "-c", slurm_ctx()],
        cwd=mad_package, env=cli_env(slurm_cluster.env), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = perf_rows(mad_package)
    assert sorted((row["model"], row["status"]) for row in rows) == [("dummy", "SUCCESS"), ("dummy2", "SUCCESS")]
    assert json.loads((results_dir(mad_package) / "jobs.json").read_text())["jobs"] != {}
    assert "in allocation" in proc.stderr
    # No job of madengine's own was queued (the allocation itself may still be listed while it completes).
    after = slurm_cluster.run("squeue", "-h", "-o", "%i %j").stdout.splitlines()
    assert [line for line in after if line not in before and " madengine-" in line] == []


def test_generate_writes_scripts_that_sbatch_accepts_without_submitting(mad_package, slurm_cluster):
    assert madengine(mad_package, "build", "--tags", "dummy,dummy2", env=slurm_cluster.env).rc == 0
    before = slurm_cluster.run("squeue", "-h", "-o", "%i").stdout.split()
    result = madengine(
        mad_package, "generate", "slurm", "-c", slurm_ctx(partition="debug"), "--run-id", "weekly-7",
        env=slurm_cluster.env,
    )  # fmt: skip
    assert result.rc == 0, result.output
    assert results_dir(mad_package).name == "weekly-7"
    (script,) = results_dir(mad_package).glob("madengine-weekly-7-*.sh")
    text = script.read_text()
    assert "#SBATCH --partition=debug" in text and "#SBATCH --array=0-1" in text and "slurm-task" in text
    assert slurm_cluster.run("squeue", "-h", "-o", "%i").stdout.split() == before
    check = slurm_cluster.run("sbatch", "--test-only", str(script))
    assert check.returncode == 0, check.stderr
    assert not (mad_package / "perf.csv").exists()


def test_unknown_slurm_key_is_an_invalid_argument(mad_package, slurm_cluster):
    result = madengine(
        mad_package, "run", "--tags", "dummy", "-c", json.dumps({"slurm": {"partiton": "debug"}}), env=slurm_cluster.env
    )
    assert result.rc == 4
    assert "slurm.partiton" in result.output and "Traceback" not in result.output


def test_a_manifest_built_for_slurm_runs_on_slurm(mad_package, slurm_cluster):
    """Like the original: the manifest's deployment_config.slurm applies to `run --manifest-file`."""
    built = madengine(mad_package, "build", "--tags", "dummy", "-c", slurm_ctx(), env=slurm_cluster.env)
    assert built.rc == 0, built.output
    manifest = json.loads((mad_package / "build_manifest.json").read_text())
    assert manifest["deployment_config"]["slurm"]["madengine_command"] == MADENGINE
    result = madengine(mad_package, "run", "--manifest-file", "build_manifest.json", env=slurm_cluster.env)
    assert result.rc == 0, result.output
    (row,) = perf_rows(mad_package)
    assert (row["status"], row["deployment_type"]) == ("SUCCESS", "slurm")
    assert row["machine_name"] in slurm_cluster.nodes


def test_ctrl_c_while_waiting_cancels_the_jobs_and_still_writes_the_rows(mad_package, slurm_cluster):
    proc, job_id = start_until_running(mad_package, slurm_cluster, "dummy_sleep,dummy")
    try:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 3, output
    assert "interrupted" in output
    rows = {row["model"]: row for row in perf_rows(mad_package)}
    assert (rows["dummy_sleep"]["status"], rows["dummy_sleep"]["failure_reason"]) == ("FAILURE", "INTERRUPTED")
    assert set(rows) == {"dummy_sleep", "dummy"}  # dummy may have finished first: then it keeps its own row
    deadline = time.monotonic() + 30
    while "JobState=CANCELLED" not in slurm_cluster.run("scontrol", "show", "job", "-o", job_id).stdout:
        assert time.monotonic() < deadline, "madengine did not cancel its job"
        time.sleep(0.5)


def test_baseline_verdicts_and_the_store_on_slurm(mad_package, slurm_cluster):
    first = madengine(mad_package, "run", "--tags", "dummy_perf", "-c", slurm_ctx(), env=slurm_cluster.env)
    assert first.rc == 0, first.output
    slower = json.loads(slurm_ctx())
    slower["docker_env_vars"] = {"DUMMY_PERF": "50"}
    second = madengine(
        mad_package, "run", "--tags", "dummy_perf", "-c", json.dumps(slower), "--baseline", "perf.csv",
        "--fail-on-regression", env=slurm_cluster.env,
    )  # fmt: skip
    assert second.rc == 5, second.output
    base, new = perf_rows(mad_package)
    assert new["verdict"] == "REGRESSED" and float(new["relative_change"]) < -40 and base["verdict"] == ""
    history = json.loads(madengine(mad_package, "history", "--json").stdout)
    assert [(r["run_id"], r["target"], r["success"]) for r in history] == [
        (new["run_id"], "slurm", 1),
        (base["run_id"], "slurm", 1),
    ]
    refused = madengine(mad_package, "run", "--tags", "dummy_perf", "-c", slurm_ctx(), "--repeat", "2")
    assert refused.rc == 4 and "not supported on the slurm target" in refused.stderr, refused.output
