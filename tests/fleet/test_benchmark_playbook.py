"""benchmark.yml across real SSH hosts: registry and archive distribution, a host lost mid-run, AWX-style
ansible-runner, and `madengine run --inventory`."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import pytest

from ansible_collections.rocm.madengine.plugins.module_utils import results_store

REPO_ROOT = Path(__file__).resolve().parents[2]
BENCHMARK = REPO_ROOT / "playbooks" / "benchmark.yml"
pytestmark = pytest.mark.integration


def controller_inventory(directory: Path) -> Path:
    """The build host and the controller: this machine, with the interpreter running the tests."""
    path = directory / "controller.yml"
    path.write_text(
        json.dumps(
            {
                "all": {
                    "hosts": {
                        "localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
                    },
                    "children": {"madengine_build": {"hosts": {"localhost": {}}}},
                }
            }
        )
    )
    return path


def playbook_cmd(fleet, inventory: Path, extravars: Dict, *args: str) -> List[str]:
    return [
        str(fleet.ansible_playbook_bin),
        str(BENCHMARK),
        "-i",
        str(fleet.inventory),
        "-i",
        str(inventory),
        "-e",
        json.dumps(extravars),
        *args,
    ]


def run_playbook(fleet, package: Path, inventory: Path, extravars: Dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        playbook_cmd(fleet, inventory, extravars, *args),
        cwd=package,
        capture_output=True,
        text=True,
        timeout=900,
        env={**fleet.subprocess_env(), "PWD": str(package)},
        stdin=subprocess.DEVNULL,
        check=False,
    )


def read_perf(path: Path) -> List[Dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def by_host(rows: List[Dict[str, str]]) -> Dict[str, List[Dict[str, str]]]:
    grouped: Dict[str, List[Dict[str, str]]] = {}
    for row in rows:
        grouped.setdefault(row["machine_name"], []).append(row)
    return grouped


@pytest.fixture
def package(mad_package: Path) -> Path:
    return mad_package


def test_registry_distribution_every_model_on_every_host(
    fleet, infra, package: Path, tmp_path: Path, docker_client
) -> None:
    repository = f"madengine-fleet/{os.getpid()}"
    (package / "credential.json").write_text(
        json.dumps({infra.registry: {"username": infra.username, "password": infra.password, "repository": repository}})
    )
    out = tmp_path / "out"
    out.mkdir()
    inventory = controller_inventory(tmp_path)
    extravars = {
        "madengine_tags": ["dummy", "multi"],
        "madengine_registry": infra.registry,
        "madengine_package_dir": str(package),
        "madengine_output_dir": str(out),
        "madengine_work_dir": str(tmp_path / "work" / "{{ inventory_hostname }}"),
    }
    built = run_playbook(fleet, package, inventory, extravars, "--tags", "build")
    assert built.returncode == 0, built.stdout[-3000:]
    manifest = json.loads((out / "build_manifest.json").read_text())
    remotes = [r["registry_image"] for r in manifest["built_images"].values()]
    assert len(remotes) == 2 and all(r.startswith(f"{infra.registry}/{repository}:") for r in remotes)
    for record in manifest["built_images"].values():  # the hosts must pull from the registry
        for name in (record["registry_image"], record["docker_image"]):
            docker_client.images.remove(name, force=True)

    ran = run_playbook(fleet, package, inventory, extravars, "--tags", "distribute,run,report")
    assert ran.returncode == 0, ran.stdout[-3000:]
    assert infra.password not in ran.stdout + built.stdout
    rows = read_perf(out / "perf.csv")
    hosts = by_host(rows)
    assert sorted(hosts) == fleet.names
    for host_rows in hosts.values():
        assert sorted(r["model"] for r in host_rows) == ["dummy"] + [f"dummy_multi_{i}" for i in range(1, 5)]
        assert {r["status"] for r in host_rows} == {"SUCCESS"}
        assert {r["docker_image"] for r in host_rows} <= set(remotes)
    assert len({r["run_id"] for r in rows}) == 1
    summary = json.loads((out / "perf_summary.json").read_text())
    assert summary["success"] == 15 and summary["failure"] == 0
    for name in fleet.names:
        assert (out / "hosts" / name / "perf.csv").is_file()
        assert (out / "hosts" / name / "logs" / "dummy_dummy.ubuntu.cpu.run.live.log").is_file()


def test_archive_distribution(fleet, package: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    extravars = {
        "madengine_tags": "dummy",
        "madengine_distribute_mode": "archive",
        "madengine_package_dir": str(package),
        "madengine_output_dir": str(out),
        "madengine_work_dir": str(tmp_path / "work" / "{{ inventory_hostname }}"),
    }
    result = run_playbook(fleet, package, controller_inventory(tmp_path), extravars)
    assert result.returncode == 0, result.stdout[-3000:]
    assert (out / "images" / "images.tar").stat().st_size > 0
    assert "Load the images" in result.stdout
    rows = read_perf(out / "perf.csv")
    assert sorted((r["machine_name"], r["model"], r["status"]) for r in rows) == [
        (name, "dummy", "SUCCESS") for name in fleet.names
    ]


def test_a_host_lost_mid_run_loses_no_rows(fleet, package: Path, tmp_path: Path, docker_client) -> None:
    out = tmp_path / "out"
    out.mkdir()
    victim = fleet.names[1]
    extravars = {
        "madengine_tags": ["dummy", "dummy_sleep"],
        "madengine_package_dir": str(package),
        "madengine_output_dir": str(out),
        "madengine_run_poll_interval": 1,
        "madengine_additional_context": {"model_args": "12"},
        "madengine_work_dir": str(tmp_path / "work" / "{{ inventory_hostname }}"),
    }
    proc = subprocess.Popen(
        playbook_cmd(fleet, controller_inventory(tmp_path), extravars),
        cwd=package,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        stdin=subprocess.DEVNULL,
        env={**fleet.subprocess_env(), "PWD": str(package)},
    )
    container = f"container_ci-dummy_sleep_dummy.ubuntu.cpu_{victim}"
    try:
        deadline = time.monotonic() + 240
        while not docker_client.containers.list(filters={"name": f"^{container}_"}):
            assert proc.poll() is None, "the playbook ended before the victim's model started"
            assert time.monotonic() < deadline, "the victim's model never started"
            time.sleep(0.2)
        with fleet.unreachable(victim):
            output, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0, output[-2000:]
    rows = read_perf(out / "perf.csv")
    hosts = by_host(rows)
    assert sorted(hosts) == fleet.names
    for name in fleet.names:
        models = sorted((r["model"], r["status"], r["failure_reason"]) for r in hosts[name])
        if name == victim:
            assert models == [("dummy", "FAILURE", "HOST_FAILED"), ("dummy_sleep", "FAILURE", "HOST_FAILED")]
        else:
            assert models == [("dummy", "SUCCESS", ""), ("dummy_sleep", "SUCCESS", "")]


def test_ansible_runner_as_awx_would(fleet, package: Path, tmp_path: Path) -> None:
    import ansible_runner

    out = tmp_path / "out"
    out.mkdir()
    result = ansible_runner.run(
        private_data_dir=str(tmp_path),
        playbook=str(BENCHMARK),
        inventory=[str(fleet.inventory), str(controller_inventory(tmp_path))],
        extravars={
            "madengine_tags": "dummy",
            "madengine_package_dir": str(package),
            "madengine_output_dir": str(out),
            "madengine_work_dir": str(tmp_path / "work" / "{{ inventory_hostname }}"),
        },
        envvars={**fleet.env, "PWD": str(package)},
        quiet=True,
    )
    assert result.status == "successful", result.stdout.read()[-3000:]
    assert set(result.stats["ok"]) >= set(fleet.names) | {"localhost"}
    assert not result.stats["failures"] and not result.stats["dark"]
    assert [r["status"] for r in read_perf(out / "perf.csv")] == ["SUCCESS"] * len(fleet.names)


def test_cli_run_with_inventory(fleet, package: Path, tmp_path: Path) -> None:
    inventory_dir = tmp_path / "inventory"
    inventory_dir.mkdir()
    (inventory_dir / "hosts.ini").write_text(fleet.inventory.read_text())
    controller_inventory(inventory_dir)
    env = {
        **fleet.subprocess_env(),
        "PWD": str(package),
        "COLUMNS": "200",
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "python"), str(REPO_ROOT / "collections")]),
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "madengine",
            "run",
            "--tags",
            "dummy",
            "--inventory",
            str(inventory_dir),
            "--repeat",
            "2",
        ],
        cwd=package,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    rows = read_perf(package / "perf.csv")
    assert sorted((r["machine_name"], r["status"], r["repeat"]) for r in rows) == [
        (n, "SUCCESS", repeat) for n in fleet.names for repeat in ("1", "2")
    ]
    assert "SUCCESS" in result.stdout and "PLAY" in result.stderr
    assert "Repeats (2 per model and host)" in result.stdout
    (run,) = results_store.runs(str(package / results_store.DEFAULT_NAME))
    assert (run["run_id"], run["target"], run["success"]) == (rows[0]["run_id"], "fleet", 2 * len(fleet.names))


def test_limit_aggregates_only_the_limited_hosts(fleet, package: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    chosen = fleet.names[0]
    extravars = {
        "madengine_tags": "dummy",
        "madengine_package_dir": str(package),
        "madengine_output_dir": str(out),
        "madengine_work_dir": str(tmp_path / "work" / "{{ inventory_hostname }}"),
    }
    result = run_playbook(fleet, package, controller_inventory(tmp_path), extravars, "--limit", f"localhost:{chosen}")
    assert result.returncode == 0, result.stdout[-3000:]
    assert [(r["machine_name"], r["status"]) for r in read_perf(out / "perf.csv")] == [(chosen, "SUCCESS")]
