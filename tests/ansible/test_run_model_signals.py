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


def test_sigterm_to_run_model_writes_rows_and_removes_the_container(
    ansible: Ansible, package: Package, docker_client
) -> None:
    """The module's process gets SIGTERM while a model sleeps: the task fails with 'interrupted by SIGTERM',
    its rows say INTERRUPTED / NOT_STARTED, and no container of the run is left."""
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
    args = {"package_dir": str(package.root), "run_id": "modsig", "timeout": 120}
    argv = [str(venv_bin() / "ansible"), "localhost", "-m", f"{FQCN}.run_model", "-a", json.dumps(args)]
    proc = subprocess.Popen(argv, env=ansible.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    label = {"label": f"{RUN_LABEL}=modsig"}
    deadline = time.monotonic() + 120
    while not docker_client.containers.list(filters=label):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    (container,) = docker_client.containers.list(filters=label)
    os.kill(int(container.labels[PID_LABEL]), signal.SIGTERM)  # the module's own process
    stdout, stderr = proc.communicate(timeout=STOP_GRACE + 60)
    result = ModuleResult(proc.returncode, stdout, stderr, parse_adhoc(stdout))
    data = result.data
    assert result.failed, result.output
    assert data["msg"].startswith("interrupted by SIGTERM"), data["msg"]
    assert data["interrupted"] == "SIGTERM"
    reasons = {row["model"]: row["failure_reason"] for row in data["rows"]}
    assert reasons == {"dummy_sleep": "INTERRUPTED", package.model: "NOT_STARTED"}
    assert docker_client.containers.list(all=True, filters=label) == []
    assert "Traceback" not in stdout + stderr
