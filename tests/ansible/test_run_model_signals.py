"""run_model stopped by a signal, for real: the module's process gets SIGTERM (an AWX cancel, a killed job)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from modrun import FQCN, Ansible, ModuleResult, Package, parse_adhoc, venv_bin

from ansible_collections.rocm.madengine.plugins.module_utils.interrupts import STOP_GRACE
from ansible_collections.rocm.madengine.plugins.module_utils.ownership import PID_LABEL, RUN_LABEL

pytestmark = pytest.mark.integration


def build_sleeper(package: Package) -> None:
    build = subprocess.run(
        [sys.executable, "-m", "madengine", "build", "--tags", f"dummy_sleep,{package.tag}"],
        cwd=package.root,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert build.returncode == 0, build.stdout + build.stderr


def start_run(ansible: Ansible, package: Package, docker_client, run_id: str):
    """run_model in the background; returns it and the running container once the sleeping model runs."""
    args = {"package_dir": str(package.root), "run_id": run_id, "timeout": 120}
    argv = [str(venv_bin() / "ansible"), "localhost", "-m", f"{FQCN}.run_model", "-a", json.dumps(args)]
    proc = subprocess.Popen(argv, env=ansible.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    label = {"label": f"{RUN_LABEL}={run_id}"}
    deadline = time.monotonic() + 120
    while not docker_client.containers.list(filters=label):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    (container,) = docker_client.containers.list(filters=label)
    return proc, container


def finished(proc: subprocess.Popen) -> ModuleResult:
    stdout, stderr = proc.communicate(timeout=STOP_GRACE + 60)
    return ModuleResult(proc.returncode, stdout, stderr, parse_adhoc(stdout))


def test_sigterm_to_run_model_writes_rows_and_removes_the_container(
    ansible: Ansible, package: Package, docker_client
) -> None:
    """The module's process gets SIGTERM while a model sleeps: the task fails with 'interrupted by SIGTERM',
    its rows say INTERRUPTED / NOT_STARTED, and no container of the run is left."""
    build_sleeper(package)
    proc, container = start_run(ansible, package, docker_client, "modsig")
    os.kill(int(container.labels[PID_LABEL]), signal.SIGTERM)  # the module's own process
    result = finished(proc)
    stdout, stderr = result.stdout, result.stderr
    label = {"label": f"{RUN_LABEL}=modsig"}
    data = result.data
    assert result.failed, result.output
    assert data["msg"].startswith("interrupted by SIGTERM"), data["msg"]
    assert data["interrupted"] == "SIGTERM"
    reasons = {row["model"]: row["failure_reason"] for row in data["rows"]}
    assert reasons == {"dummy_sleep": "INTERRUPTED", package.model: "NOT_STARTED"}
    assert docker_client.containers.list(all=True, filters=label) == []
    assert "Traceback" not in stdout + stderr


def test_state_absent_stops_a_live_run_and_cleans_a_killed_one(
    ansible: Ansible, package: Package, docker_client
) -> None:
    """run_model state=absent run_id=X: a live run of X is stopped as by Ctrl-C (its task fails 'interrupted by
    SIGTERM' with its rows); for a run whose process was SIGKILLed it removes the container and run directory."""
    build_sleeper(package)
    proc, container = start_run(ansible, package, docker_client, "modstop")
    stopped = ansible.module("run_model", {"package_dir": str(package.root), "state": "absent", "run_id": "modstop"})
    assert stopped.changed and not stopped.failed, stopped.output
    assert stopped.data["stopped"] == [int(container.labels[PID_LABEL])]
    interrupted = finished(proc)
    assert interrupted.failed and interrupted.data["interrupted"] == "SIGTERM", interrupted.output
    assert docker_client.containers.list(all=True, filters={"label": f"{RUN_LABEL}=modstop"}) == []

    proc, container = start_run(ansible, package, docker_client, "modkill")
    os.kill(int(container.labels[PID_LABEL]), signal.SIGKILL)
    finished(proc)
    assert docker_client.containers.list(all=True, filters={"label": f"{RUN_LABEL}=modkill"})  # left behind
    cleaned = ansible.module("run_model", {"package_dir": str(package.root), "state": "absent", "run_id": "modkill"})
    assert cleaned.changed and cleaned.data["stopped"] == [], cleaned.output
    assert {item["kind"] for item in cleaned.data["removed"]} == {"container", "run directory"}
    assert docker_client.containers.list(all=True, filters={"label": f"{RUN_LABEL}=modkill"}) == []
    again = ansible.module("run_model", {"package_dir": str(package.root), "state": "absent", "run_id": "modkill"})
    assert not again.changed and again.data["removed"] == [], again.output
    missing = ansible.module("run_model", {"package_dir": str(package.root), "state": "absent"})
    assert missing.failed and "run_id" in missing.data["msg"], missing.output
