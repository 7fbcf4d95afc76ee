"""Concurrent runs in one package, signals and killed runs, on the real Docker engine: no row lost, no container
or run directory left behind."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import pytest
from clirun import cli_env, madengine, perf_rows

from ansible_collections.rocm.madengine.plugins.module_utils.interrupts import STOP_GRACE
from ansible_collections.rocm.madengine.plugins.module_utils.ownership import PID_LABEL, RUN_LABEL
from ansible_collections.rocm.madengine.plugins.module_utils.perfcsv import ALL_COLUMNS

pytestmark = pytest.mark.integration

QUICK = ("dummy", "dummy2", "dummy_multi")


def start(package: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "madengine", *args],
        cwd=package,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def run_containers(docker_client, run_id: str) -> List[dict]:
    """The run's containers as the engine lists them (one call: a container removed meanwhile cannot make a
    per-container inspect fail)."""
    return docker_client.api.containers(all=True, filters={"label": f"{RUN_LABEL}={run_id}"})


def wait_for_running_container(docker_client, run_id: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any(c["State"] == "running" for c in run_containers(docker_client, run_id)):
            return
        assert proc.poll() is None, proc.communicate()[0]
        time.sleep(0.1)
    pytest.fail(f"no running container of run {run_id} within 60 s")


def run_dirs(package: Path) -> List[str]:
    runs = package / ".madengine" / "runs"
    return sorted(os.listdir(runs)) if runs.is_dir() else []


def assert_parseable(package: Path) -> None:
    with open(package / "perf.csv", newline="", encoding="utf-8") as handle:
        records = list(csv.reader(handle))
    assert records[0][: len(ALL_COLUMNS)] == list(ALL_COLUMNS)
    assert all(len(record) == len(records[0]) for record in records)


@pytest.fixture
def built(mad_package: Path) -> Path:
    result = madengine(mad_package, "build", "--tags", ",".join(("dummy_sleep",) + QUICK))
    assert result.rc == 0, result.output
    return mad_package


@pytest.mark.parametrize("runs", [4, 8])
def test_concurrent_manifest_runs_keep_every_row(built: Path, docker_client, runs: int) -> None:
    """`runs` x `madengine run --manifest-file` at once in one package: every run writes all its rows, all
    SUCCESS, each under its own run id; no container and no run directory is left."""
    manifest = built / "quick_manifest.json"
    result = madengine(built, "build", "--tags", ",".join(QUICK), "--manifest-output", manifest.name)
    assert result.rc == 0, result.output
    baseline = madengine(built, "run", "--manifest-file", manifest.name, "--run-id", "alone")
    assert baseline.rc == 0, baseline.output
    expected = sorted(row["model"] for row in perf_rows(built))
    assert len(expected) > len(QUICK)  # dummy_multi writes several rows
    ids = [f"concurrent{i}" for i in range(runs)]
    procs = [start(built, "run", "--manifest-file", manifest.name, "--run-id", run_id) for run_id in ids]
    outputs = [proc.communicate(timeout=300)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * runs, "\n".join(outputs)
    rows = perf_rows(built)
    by_run: Dict[str, List[str]] = {}
    for row in rows:
        by_run.setdefault(row["run_id"], []).append(row["model"])
        assert row["status"] == "SUCCESS", row
    assert {run_id: sorted(models) for run_id, models in by_run.items()} == {i: expected for i in ["alone"] + ids}
    for run_id in ids:
        assert run_containers(docker_client, run_id) == []
    assert run_dirs(built) == []
    assert not (built / "run_directory").exists()
    assert_parseable(built)
    log = (built / "dummy_dummy.ubuntu.cpu.run.live.log").read_text()
    assert log.count("performance:") == 1  # one run's complete log, never lines of several


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signal_stops_the_container_and_writes_rows(built: Path, docker_client, signum: int) -> None:
    """A signal a few seconds into a sleeping model: its container is stopped and removed within the grace
    period, the sleeping model has an INTERRUPTED row, the model after it a NOT_STARTED row, perf.csv stays
    parseable and the exit code is 128 + the signal number."""
    run_id = f"signal{signum}"
    proc = start(built, "run", "--manifest-file", "build_manifest.json", "--run-id", run_id, "--timeout", "120")
    wait_for_running_container(docker_client, run_id, proc)
    time.sleep(1)
    proc.send_signal(signum)
    output = proc.communicate(timeout=STOP_GRACE + 30)[0]
    assert proc.returncode == 128 + signum, output
    assert f"interrupted by {signal.Signals(signum).name}" in output
    assert "Traceback" not in output
    assert run_containers(docker_client, run_id) == []
    rows = {row["model"]: row for row in perf_rows(built) if row["run_id"] == run_id}
    assert (rows["dummy_sleep"]["status"], rows["dummy_sleep"]["failure_reason"]) == ("FAILURE", "INTERRUPTED")
    not_started = [m for m in QUICK if m in rows and rows[m]["failure_reason"] == "NOT_STARTED"]
    succeeded = [m for m in QUICK if m in rows and rows[m]["status"] == "SUCCESS"]
    assert sorted(not_started + succeeded) == sorted(QUICK)  # every model of the manifest has its row
    assert not_started, "the models after the interrupted one must say they were not started"
    assert run_dirs(built) == []
    assert_parseable(built)


def test_killed_run_is_reported_and_cleaned(built: Path, docker_client) -> None:
    """SIGKILL leaves the container and the run directory; the next run warns about them; `madengine clean
    --dry-run` lists them and `madengine clean` removes them, but never those of a live run."""
    killed = start(built, "run", "--manifest-file", "build_manifest.json", "--run-id", "killed", "--timeout", "120")
    wait_for_running_container(docker_client, "killed", killed)
    killed.kill()
    killed.communicate(timeout=30)
    assert len(run_containers(docker_client, "killed")) == 1
    assert len(run_dirs(built)) == 1

    live = start(built, "run", "--manifest-file", "build_manifest.json", "--run-id", "live", "--timeout", "120")
    try:
        wait_for_running_container(docker_client, "live", live)
        listed = madengine(built, "clean", "--dry-run")
        assert listed.rc == 0, listed.output
        assert "killed" in listed.stdout and "live" not in listed.stdout
        assert len(run_containers(docker_client, "killed")) == 1  # a dry run removes nothing

        warned = madengine(built, "run", "--tags", "dummy", "--run-id", "after")
        assert warned.rc == 0, warned.output
        assert "madengine clean" in warned.stderr and "killed" in warned.stderr

        cleaned = madengine(built, "clean")
        assert cleaned.rc == 0, cleaned.output
        assert run_containers(docker_client, "killed") == []
        live_containers = run_containers(docker_client, "live")
        assert [c["Labels"][PID_LABEL] for c in live_containers] == [str(live.pid)]
        assert len(run_dirs(built)) == 1  # the live run's own
    finally:
        live.send_signal(signal.SIGTERM)
        live.communicate(timeout=STOP_GRACE + 30)
    assert run_containers(docker_client, "live") == []
    assert run_dirs(built) == []


def add_slow_build(package: Path, stamp: str) -> None:
    """A model whose image takes a minute to build (the stamp defeats the build cache)."""
    (package / "docker" / "slowbuild.ubuntu.cpu.Dockerfile").write_text(
        "# CONTEXT {'gpu_vendor': 'CPU', 'guest_os': 'UBUNTU'}\n"
        "ARG BASE_DOCKER=madengine-test/busybox:latest\nFROM $BASE_DOCKER\n"
        f"RUN echo {stamp} && sleep 60\n"
    )
    models = json.loads((package / "models.json").read_text())
    models.append({"name": "slowbuild", "dockerfile": "docker/slowbuild", "scripts": "scripts/dummy/run.sh"})
    (package / "models.json").write_text(json.dumps(models))


def test_signal_during_build_keeps_the_old_manifest(mad_package: Path, docker_client) -> None:
    """SIGTERM while an image builds: `madengine run --tags` writes an INTERRUPTED row for the model being built
    and NOT_STARTED rows for the rest, leaves build_manifest.json as it was, and exits 143."""
    first = madengine(mad_package, "build", "--tags", "dummy")
    assert first.rc == 0, first.output
    before = (mad_package / "build_manifest.json").read_text()
    add_slow_build(mad_package, f"{time.time()}")
    proc = start(mad_package, "run", "--tags", "dummy,slowbuild,dummy2", "--run-id", "buildsig")
    log = mad_package / "slowbuild_slowbuild.ubuntu.cpu.build.live.log"
    deadline = time.monotonic() + 60
    while not (log.is_file() and "sleep 60" in log.read_text()):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0]
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=60)[0]
    assert proc.returncode == 143, output
    assert "Traceback" not in output
    rows = {row["model"]: row for row in perf_rows(mad_package) if row["run_id"] == "buildsig"}
    assert {m: r["failure_reason"] for m, r in rows.items()} == {
        "slowbuild": "INTERRUPTED",
        "dummy": "NOT_STARTED",  # built, but the run never began
        "dummy2": "NOT_STARTED",
    }
    assert (mad_package / "build_manifest.json").read_text() == before
    assert not [p for p in os.listdir(mad_package) if p.endswith(".tmp")]
