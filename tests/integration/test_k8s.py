"""The Kubernetes target on a real cluster (scripts/setup-k8s.sh: etcd, kube-apiserver, controller-manager,
scheduler and a kubelet on a private containerd, all on loopback) with images pushed to the authenticated local
registry: `madengine run -c '{"k8s": ...}'` end to end, every failure case with its row and exit code."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
from clirun import cli_env, madengine, perf_rows

pytestmark = pytest.mark.integration

FIXTURE_MAD = Path(__file__).resolve().parents[1] / "fixtures" / "mad"
BUILD_TAGS = "dummy,dummy_multi,dummy_exit,dummy_nometric,dummy_sleep,dummy_args"


@pytest.fixture(scope="module")
def built(k8s_cluster, infra, tmp_path_factory) -> Path:
    """The fixture package with its models built once and pushed to the test registry (a private repository)."""
    root = tmp_path_factory.mktemp("k8s") / "mad"
    shutil.copytree(FIXTURE_MAD, root, symlinks=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    creds = {
        infra.registry: {
            "username": infra.username,
            "password": infra.password,
            "repository": f"madengine-k8s/{uuid.uuid4().hex[:8]}",
        }
    }
    (root / "credential.json").write_text(json.dumps(creds))
    result = madengine(root, "build", "--tags", BUILD_TAGS, "--registry", infra.registry)
    assert result.rc == 0, result.output
    return root


@pytest.fixture()
def package(built, tmp_path) -> Path:
    """A fresh copy of the built package (its own perf.csv and results), sharing the pushed images."""
    target = tmp_path / "mad"
    shutil.copytree(built, target, symlinks=True)
    for leftover in ("perf.csv", "k8s_results"):
        path = target / leftover
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    return target


def only(package: Path, *models: str, image_override: Dict[str, str] | None = None) -> str:
    """A manifest with just these models (of build_manifest.json); the file name to pass to --manifest-file."""
    data = json.loads((package / "build_manifest.json").read_text())
    keep = {k for k, v in data["built_models"].items() if v["name"] in models}
    assert len(keep) == len(models), f"not built: {models}"
    data["built_images"] = {k: v for k, v in data["built_images"].items() if k in keep}
    data["built_models"] = {k: v for k, v in data["built_models"].items() if k in keep}
    for record in data["built_images"].values():
        if image_override:
            record["registry_image"] = image_override["registry_image"]
    name = f"manifest-{'-'.join(models)}.json"
    (package / name).write_text(json.dumps(data))
    return name


def k8s_context(cluster, **settings: Any) -> str:
    section = {
        "kubeconfig": str(cluster.kubeconfig),
        "namespace": cluster.namespace,
        "image_pull_policy": "IfNotPresent",
    }
    section.update(settings)
    return json.dumps({"gpu_vendor": "CPU", "k8s": section})


def run_k8s(package: Path, cluster, manifest: str, *extra: str, **settings: Any):
    return madengine(
        package, "run", "--manifest-file", manifest, "-c", k8s_context(cluster, **settings), *extra, timeout=300
    )


def rows(package: Path) -> Dict[str, Dict[str, str]]:
    return {row["model"]: row for row in perf_rows(package)}


def pods_of_run(cluster, run_id: str) -> List[Any]:
    return cluster.core.list_namespaced_pod(cluster.namespace, label_selector=f"madengine/run={run_id}").items


def jobs_of_run(cluster, run_id: str) -> List[Any]:
    return cluster.batch.list_namespaced_job(cluster.namespace, label_selector=f"madengine/run={run_id}").items


# ------------------------------------------------------------------------------------------------ success


def test_one_model_pulls_with_a_pull_secret_and_its_row_comes_back(package, k8s_cluster, infra):
    result = run_k8s(package, k8s_cluster, only(package, "dummy"), "--run-id", "k8s-one")
    assert result.rc == 0, result.output
    (row,) = perf_rows(package)
    assert (row["model"], row["status"], row["deployment_type"]) == ("dummy", "SUCCESS", "kubernetes")
    assert row["performance"] and row["metric"] and row["run_id"] == "k8s-one"
    assert row["machine_name"] == k8s_cluster.node
    assert float(row["test_duration"]) >= 0 and row["exit_code"] == "0"
    results = package / "k8s_results" / "k8s-one"
    assert json.loads((results / "jobs.json").read_text())["jobs"]
    logs = list(results.glob("*/*.log"))
    assert logs and "performance:" in logs[0].read_text()
    # on_success cleanup: the Job and the Secrets it owned are gone; no file holds the registry password
    deadline = time.monotonic() + 30
    while jobs_of_run(k8s_cluster, "k8s-one") or k8s_cluster.secrets_of_run("k8s-one"):
        assert time.monotonic() < deadline, "the succeeded Job or its Secrets were not cleaned up"
        time.sleep(0.5)
    leaked = [p for p in results.rglob("*") if p.is_file() and infra.password in p.read_text(errors="replace")]
    assert not leaked and infra.password not in result.output


def test_several_models_and_failures_each_end_as_rows(package, k8s_cluster):
    manifest = only(package, "dummy", "dummy_multi", "dummy_exit", "dummy_nometric", "dummy_args")
    result = run_k8s(package, k8s_cluster, manifest, "--run-id", "k8s-many", cleanup="always")
    assert result.rc == 3, result.output
    got = rows(package)
    assert got["dummy"]["status"] == "SUCCESS"
    multi = {name: row for name, row in got.items() if name.startswith("dummy_multi_")}
    assert len(multi) >= 2 and all(r["status"] == "SUCCESS" and r["performance"] for r in multi.values())
    assert (got["dummy_exit"]["status"], got["dummy_exit"]["failure_reason"]) == ("FAILURE", "EXIT_CODE")
    assert got["dummy_exit"]["exit_code"] not in ("", "0")
    assert (got["dummy_nometric"]["status"], got["dummy_nometric"]["failure_reason"]) == ("FAILURE", "NO_METRIC")
    assert got["dummy_args"]["status"] == "SUCCESS"
    # The args reached the script as argv, untouched by a shell or by Kubernetes' $(VAR) expansion.
    (args_log,) = (package / "k8s_results" / "k8s-many").glob("madengine-dummy-args-*/*.log")
    text = args_log.read_text()
    assert "arg[4]=$(touch${IFS}/myworkspace/PWNED)" in text and "arg[2]=$HOME" in text and "arg[6]=a;b" in text
    assert "PWNED" not in " ".join(p.name for p in package.rglob("*"))
    assert "dummy_exit" in result.output and "EXIT_CODE" in result.output


def test_an_image_that_cannot_be_pulled(package, k8s_cluster, infra):
    missing = {"registry_image": f"{infra.registry}/madengine-k8s/missing:{uuid.uuid4().hex[:6]}"}
    manifest = only(package, "dummy", image_override=missing)
    result = run_k8s(package, k8s_cluster, manifest, "--run-id", "k8s-pull", image_pull_policy="Always")
    assert result.rc == 3, result.output
    (row,) = perf_rows(package)
    assert (row["status"], row["failure_reason"]) == ("FAILURE", "IMAGE_PULL_FAILED")
    assert "not found" in result.output.lower() or "manifest unknown" in result.output.lower()
    assert not jobs_of_run(k8s_cluster, "k8s-pull")  # a Job that cannot start is deleted, whatever the policy


def test_a_model_past_its_timeout(package, k8s_cluster):
    result = run_k8s(package, k8s_cluster, only(package, "dummy_sleep"), "--timeout", "4", "--run-id", "k8s-slow")
    assert result.rc == 3, result.output
    (row,) = perf_rows(package)
    assert (row["status"], row["failure_reason"]) == ("FAILURE", "TIMEOUT")


def test_a_model_out_of_memory(package, k8s_cluster):
    # The pod gets the model's scripts from this package copy at run time (the ConfigMap): here they allocate 200 MB
    # under a 32 MiB limit, and pass the kill on as the model's exit code.
    (package / "scripts" / "dummy" / "run.sh").write_text(
        '#!/bin/sh\ndd if=/dev/zero of=/dev/null bs=200M count=1 || exit $?\necho "performance: 1 samples_per_second"\n'
    )
    manifest = only(package, "dummy")
    result = run_k8s(package, k8s_cluster, manifest, "--run-id", "k8s-oom", memory="16Mi", memory_limit="32Mi")
    assert result.rc == 3, result.output
    (row,) = perf_rows(package)
    assert (row["status"], row["failure_reason"], row["exit_code"]) == ("FAILURE", "OOM_KILLED", "137")


def test_a_request_no_node_can_satisfy(package, k8s_cluster):
    manifest = only(package, "dummy")
    result = run_k8s(package, k8s_cluster, manifest, "--run-id", "k8s-big", cpu="512", pending_timeout=2)
    assert result.rc == 3, result.output
    (row,) = perf_rows(package)
    assert (row["status"], row["failure_reason"]) == ("FAILURE", "UNSCHEDULABLE")
    assert "Insufficient cpu" in result.output
    assert not jobs_of_run(k8s_cluster, "k8s-big")


def test_wait_false_then_collect_with_the_run_id(package, k8s_cluster):
    manifest = only(package, "dummy")
    submitted = run_k8s(package, k8s_cluster, manifest, "--run-id", "k8s-later", wait=False)
    assert submitted.rc == 0, submitted.output
    assert "--run-id k8s-later" in submitted.output and not (package / "perf.csv").exists()
    assert jobs_of_run(k8s_cluster, "k8s-later")
    collected = run_k8s(package, k8s_cluster, manifest, "--run-id", "k8s-later")
    assert collected.rc == 0, collected.output
    (row,) = perf_rows(package)
    assert row["status"] == "SUCCESS"
    again = run_k8s(package, k8s_cluster, manifest, "--run-id", "k8s-later")
    assert again.rc == 0, again.output
    assert len(perf_rows(package)) == 1  # collected once, appended once


def test_a_job_deleted_from_outside(package, k8s_cluster):
    proc, _ = start_until_running(package, k8s_cluster, "k8s-deleted")
    try:
        for job in jobs_of_run(k8s_cluster, "k8s-deleted"):
            k8s_cluster.batch.delete_namespaced_job(
                job.metadata.name, k8s_cluster.namespace, propagation_policy="Background"
            )
        output, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 3, output
    (row,) = perf_rows(package)
    assert (row["status"], row["failure_reason"]) == ("FAILURE", "K8S_DELETED")


def start_until_running(package: Path, cluster, run_id: str) -> Tuple[subprocess.Popen, str]:
    manifest = only(package, "dummy_sleep")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "madengine",
            "run",
            "--manifest-file",
            manifest,
            "--run-id",
            run_id,
            "-c",
            k8s_context(cluster),
        ],
        cwd=package,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 90
    while True:
        running = [p for p in pods_of_run(cluster, run_id) if p.status.phase == "Running"]
        if running:
            return proc, running[0].metadata.name
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, "the model's pod never ran"
        time.sleep(0.5)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_deletes_the_jobs_and_writes_interrupted_rows(package, k8s_cluster, signum):
    run_id = f"k8s-sig{int(signum)}"
    proc, pod = start_until_running(package, k8s_cluster, run_id)
    try:
        proc.send_signal(signum)
        output, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 3, output
    assert f"interrupted by {signal.Signals(signum).name}" in output
    (row,) = perf_rows(package)
    assert (row["status"], row["failure_reason"]) == ("FAILURE", "INTERRUPTED")
    assert not jobs_of_run(k8s_cluster, run_id)
    assert not pods_of_run(k8s_cluster, run_id)  # madengine waited until its pod was gone


# ------------------------------------------------------------------------------------------------ build + run, errors


def test_build_and_run_in_one_command_as_the_docs_show(k8s_cluster, infra, mad_package):
    repository = "madengine-k8s/e2e"
    creds = {infra.registry: {"username": infra.username, "password": infra.password, "repository": repository}}
    (mad_package / "credential.json").write_text(json.dumps(creds))
    result = madengine(
        mad_package, "run", "--tags", "dummy", "--registry", infra.registry, "-c", k8s_context(k8s_cluster), timeout=300
    )
    assert result.rc == 0, result.output
    (row,) = perf_rows(mad_package)
    assert (row["status"], row["deployment_type"]) == ("SUCCESS", "kubernetes")


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"namespace": "no-such-namespace"}, "k8s.namespace 'no-such-namespace' does not exist"),
        ({"kubeconfig": "/nonexistent/kubeconfig"}, "k8s.kubeconfig /nonexistent/kubeconfig: file not found"),
    ],
)
def test_cluster_errors_are_one_line(package, k8s_cluster, settings, words):
    result = run_k8s(package, k8s_cluster, only(package, "dummy"), **settings)
    assert result.rc == 4, result.output
    assert words in result.output and "Traceback" not in result.output


def test_no_node_advertises_the_gpu_resource(package, k8s_cluster):
    ctx = json.loads(k8s_context(k8s_cluster))
    ctx["gpu_vendor"] = "AMD"
    result = madengine(package, "run", "--manifest-file", only(package, "dummy"), "-c", json.dumps(ctx))
    assert result.rc == 4, result.output
    assert "advertises 'amd.com/gpu'" in result.output and "device plugin" in result.output


def test_generate_k8s_writes_manifests_that_validate_strictly(package, k8s_cluster):
    result = madengine(
        package,
        "generate",
        "k8s",
        "-m",
        only(package, "dummy", "dummy_multi"),
        "--run-id",
        "gen1",
        "-c",
        k8s_context(k8s_cluster),
    )
    assert result.rc == 0, result.output
    files = sorted((package / "k8s_results" / "gen1").glob("*.yaml"))
    assert len(files) == 2
    assert not jobs_of_run(k8s_cluster, "gen1")
    validator = Path(sys.executable).with_name("kubernetes-validate")
    for version in ("1.28.0", None):
        argv = [str(validator), "--strict", "--quiet"] + (["-k", version] if version else []) + [str(f) for f in files]
        checked = subprocess.run(argv, capture_output=True, text=True, check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr
