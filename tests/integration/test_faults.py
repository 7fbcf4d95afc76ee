"""Faults on real parts, and what the user sees when they happen (issue 8, part 3; docs/faults.md has the table).

Nothing is mocked: the Docker engine really stops (a private one, in a network namespace of its own), the registry
really goes away (a private one on a loopback port of its own), perf.csv really sits on a full or read-only tmpfs,
and a real SLURM node is taken down under a running job. Each test's docstring says what the user sees.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest
from clirun import cli_env, madengine, manifest, perf_rows
from faultkit import (
    PrivateRegistry,
    add_private_model,
    error_lines,
    fill,
    image_of,
    port_open,
    private_registry,
    remount_read_only,
    remove_images,
    tmpfs,
)
from private_engine import PrivateEngine, private_engine

from ansible_collections.rocm.madengine.plugins.module_utils import perfcsv

pytestmark = pytest.mark.integration

REPOSITORY = "faults"


def no_traceback(output: str) -> None:
    assert "Traceback" not in output and "unexpected " not in output, output


# ---------------------------------------------------------------------------------------------- the Docker engine


@pytest.fixture
def engine(infra) -> Iterator[PrivateEngine]:
    """A private dockerd (own network namespace, data, socket) holding the busybox base image."""
    with private_engine(infra.busybox_image) as running:
        yield running


def wait_running(engine: PrivateEngine, run_id: str, proc: subprocess.Popen) -> None:
    """Until the container of run `run_id` runs in `engine` (it started, and madengine waits for it)."""
    deadline = time.monotonic() + 120
    while True:
        listed = engine.docker("ps", "-q", "--filter", f"label=org.madengine.run-id={run_id}", "--filter",
                               "status=running")  # fmt: skip
        if listed.stdout.strip():
            return
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            output, _ = proc.communicate()
            pytest.fail(f"the model's container never ran (madengine rc={proc.returncode}):\n{output}")
        time.sleep(0.2)


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["stopped", "crashed"])
def test_dockerd_going_away_mid_run_is_an_engine_error_row_and_the_next_run_works(
    mad_package: Path, engine: PrivateEngine, how: signal.Signals
) -> None:
    """dockerd stops (SIGTERM, like `systemctl stop docker`) or dies (SIGKILL) while a model runs: the running
    model and the ones after it get FAILURE rows with failure_reason ENGINE_ERROR and a one-line warning each,
    madengine ends by itself long before the model's timeout (exit 3), and once dockerd is back the next run
    works (SUCCESS), warning about the stopped container the engine kept, which `madengine clean` removes."""
    env = {"DOCKER_HOST": engine.url}
    built = madengine(mad_package, "build", "--tags", "dummy_sleep,dummy", env=env)
    assert built.rc == 0, built.output
    run_id = f"faults-{uuid.uuid4().hex[:8]}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "madengine", "run", "--manifest-file", "build_manifest.json", "--timeout", "100",
         "--run-id", run_id],
        cwd=mad_package, env=cli_env(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        wait_running(engine, run_id, proc)
        time.sleep(2)  # a couple of seconds into the model (it sleeps 300 s)
        engine.stop(how)
        # madengine must not wait for the model's 100 s timeout: a hang fails the test here
        output, _ = proc.communicate(timeout=80)
    finally:
        proc.kill()
        proc.wait()
    no_traceback(output)
    assert proc.returncode == 3, output
    rows = {row["model"]: row for row in perf_rows(mad_package)}
    assert sorted(rows) == ["dummy", "dummy_sleep"], output
    assert {(row["status"], row["failure_reason"]) for row in rows.values()} == {("FAILURE", "ENGINE_ERROR")}
    assert all(row["run_id"] == run_id for row in rows.values())
    for model in rows:  # one line each, naming the model
        assert len([line for line in output.splitlines() if line.startswith(f"warning: {model}: ")]) == 1, output

    engine.start()
    again = madengine(mad_package, "run", "--tags", "dummy", env=env)
    assert again.rc == 0, again.output
    assert perf_rows(mad_package)[-1]["status"] == "SUCCESS"
    # The engine kept the stopped container of the run that lost it; the next run said so, clean removes it.
    left = engine.docker("ps", "-aq", "--filter", f"label=org.madengine.run-id={run_id}").stdout.split()
    assert len(left) == 1, left
    assert f"run {run_id}" in again.stderr and "madengine clean" in again.stderr, again.output
    cleaned = madengine(mad_package, "clean", env=env)
    assert cleaned.rc == 0, cleaned.output
    assert engine.docker("ps", "-aq", "--filter", "label=org.madengine.run-id").stdout.split() == []
    assert not any((mad_package / ".madengine" / "runs").iterdir())


# ---------------------------------------------------------------------------------------------- the registry


@pytest.fixture
def registry(tmp_path: Path, infra) -> Iterator[PrivateRegistry]:
    with private_registry(tmp_path / "registry") as running:
        yield running


@pytest.fixture
def pushed_model(mad_package: Path, registry: PrivateRegistry) -> Iterator[str]:
    """A model of this test's own, built and pushed to the private registry (which is up at this point)."""
    model = add_private_model(mad_package)
    (mad_package / "credential.json").write_text(json.dumps(registry.credentials(REPOSITORY)), encoding="utf-8")
    remote = f"{registry.address}/{REPOSITORY}:{image_of(model)}"
    try:
        built = madengine(mad_package, "build", "--tags", model, "--registry", registry.address)
        assert built.rc == 0, built.output
        assert manifest(mad_package)["built_images"][image_of(model)]["registry_image"] == remote
        yield model
    finally:
        remove_images(image_of(model), remote)


def test_registry_down_during_push_is_exit_2_and_one_line(mad_package: Path, registry, pushed_model) -> None:
    """The registry answered a push a moment ago and has stopped since (its port is closed: what a registry host
    that is down looks like). `madengine build --registry` exits 2; stderr has one line for the model,
    `build FAILURE <model>  push of <registry>/<repo>:<image> failed: ...connection refused. the registry <registry>
    is not reachable; check that it is running and reachable from this host`; the manifest lists no image and
    names the model under summary.failed_pushes."""
    registry.stop()
    assert not port_open(registry.port)
    result = madengine(mad_package, "build", "--tags", pushed_model, "--registry", registry.address)
    assert result.rc == 2, result.output
    no_traceback(result.output)
    (line,) = [line for line in result.stderr.splitlines() if "push of" in line]
    remote = f"{registry.address}/{REPOSITORY}:{image_of(pushed_model)}"
    assert line.startswith(f"build FAILURE {pushed_model}  push of {remote} failed: ")
    assert "connection refused" in line
    assert line.endswith(f"the registry {registry.address} is not reachable; check that it is running and reachable "
                         "from this host")  # fmt: skip
    assert error_lines(result.stderr) == []
    data = manifest(mad_package)
    assert data["built_images"] == {}
    assert [push["model"] for push in data["summary"]["failed_pushes"]] == [pushed_model]
    assert registry.password not in result.output


def test_registry_down_during_a_manifest_runs_pull_is_an_image_missing_row(
    mad_package: Path, registry, pushed_model
) -> None:
    """The image is only in the registry (not on this host) and the registry is down when `madengine run
    --manifest-file` pulls it: a FAILURE row with failure_reason IMAGE_MISSING for the model, exit 3, and a warning
    `<model>: pull of <registry>/<repo>:<image> failed: ...connection refused. the registry <registry> is not
    reachable; ...`."""
    remote = f"{registry.address}/{REPOSITORY}:{image_of(pushed_model)}"
    remove_images(image_of(pushed_model), remote)
    registry.stop()
    result = madengine(mad_package, "run", "--manifest-file", "build_manifest.json")
    assert result.rc == 3, result.output
    no_traceback(result.output)
    (row,) = perf_rows(mad_package)
    assert (row["model"], row["status"], row["failure_reason"]) == (pushed_model, "FAILURE", "IMAGE_MISSING")
    assert row["docker_image"] == remote
    (line,) = [line for line in result.stderr.splitlines() if "pull of" in line]
    assert line.startswith(f"warning: {pushed_model}: pull of {remote} failed: ")
    assert f"the registry {registry.address} is not reachable" in line


# ---------------------------------------------------------------------------------------------- perf.csv


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs of this test's own."""
    with tmpfs(tmp_path / f"fs-{uuid.uuid4().hex[:8]}", size="64k") as mount:
        yield mount


def pad_to_page_end(path: Path, slack: int) -> None:
    """Append one more earlier row whose args make the file end `slack` bytes before a 4 KiB page boundary, so
    the next row starts in the page's last bytes and then needs a page a full tmpfs cannot give (a short write,
    then ENOSPC)."""
    earlier = dict(perfcsv.read_rows(str(path))[0], run_id="earlier-padded")
    header = perfcsv.read_header(str(path))
    base = len(perfcsv._render(None, header, [dict(earlier, args="")]).encode())
    size = path.stat().st_size
    pad = (4096 - slack - (size + base)) % 4096
    perfcsv.append_rows(str(path), [dict(earlier, args="x" * pad)])
    assert path.stat().st_size % 4096 == 4096 - slack


def test_output_on_a_full_file_system_is_one_line_and_perf_csv_keeps_its_rows(mad_package: Path, small_fs) -> None:
    """perf.csv on a file system that is full: `madengine run` exits 1 with one line
    `error: cannot append 1 row(s) to <dir>/perf.csv: No space left on device (ENOSPC); the file was left as it was.
    free space on its file system or make it writable (or write the results elsewhere), then run again`;
    perf.csv keeps exactly its earlier bytes (no half row), and appending works again once there is room."""
    output = small_fs / "perf.csv"
    no_store = {"MADENGINE_RESULTS_DB": "none"}  # perf.csv alone on the small file system
    first = madengine(mad_package, "run", "--tags", "dummy", "--output", str(output), env=no_store)
    assert first.rc == 0, first.output
    pad_to_page_end(output, slack=8)
    before = output.read_bytes()
    filler = fill(small_fs)

    result = madengine(mad_package, "run", "--tags", "dummy", "--output", str(output), env=no_store)
    assert result.rc == 1, result.output
    no_traceback(result.output)
    assert error_lines(result.stderr) == [
        f"error: cannot append 1 row(s) to {output}: No space left on device (ENOSPC); the file was left as it "
        "was. free space on its file system or make it writable (or write the results elsewhere), then run again"
    ]
    assert output.read_bytes() == before
    assert sorted(p.name for p in small_fs.iterdir()) == ["filler", "perf.csv"]

    filler.unlink()
    again = madengine(mad_package, "run", "--tags", "dummy", "--output", str(output), env=no_store)
    assert again.rc == 0, again.output
    assert output.read_bytes().startswith(before)
    assert [r["status"] for r in perfcsv.read_rows(str(output))] == ["SUCCESS"] * 3


def test_a_full_results_store_is_a_warning_and_the_run_keeps_its_exit_code(mad_package: Path, small_fs) -> None:
    """The results store on a full file system: the run warns that it was not recorded, exits 0, and its row is in
    perf.csv."""
    store = small_fs / "store.sqlite"
    fill(small_fs)
    result = madengine(mad_package, "run", "--tags", "dummy", "--results-db", str(store))
    assert result.rc == 0, result.output
    no_traceback(result.output)
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: results store")]
    assert len(warnings) == 1 and "the run was not recorded" in warnings[0], result.stderr
    assert [r["status"] for r in perfcsv.read_rows(str(mad_package / "perf.csv"))] == ["SUCCESS"]


def test_read_only_perf_csv_is_one_line_and_exit_1(mad_package: Path, small_fs) -> None:
    """perf.csv on a read-only file system (root ignores chmod, so the tmpfs is remounted read-only):
    `madengine run` exits 1 with one line `error: cannot append 1 row(s) to <dir>/perf.csv: Read-only file system
    (EROFS); ...` (or, once the run checks the output first, `error: cannot write rows to <dir>/perf.csv:
    Read-only file system (EROFS)...`); perf.csv is unchanged."""
    output = small_fs / "perf.csv"
    first = madengine(mad_package, "run", "--tags", "dummy", "--output", str(output))
    assert first.rc == 0, first.output
    before = output.read_bytes()
    remount_read_only(small_fs)

    result = madengine(mad_package, "run", "--tags", "dummy", "--output", str(output))
    assert result.rc == 1, result.output
    no_traceback(result.output)
    (line,) = error_lines(result.stderr)
    assert line.startswith("error: cannot ") and f" {output}: Read-only file system (EROFS)" in line
    assert output.read_bytes() == before


# ---------------------------------------------------------------------------------------------- the manifest


@pytest.fixture
def built(mad_package: Path, infra) -> Path:
    """The package with dummy and dummy2 built and their manifest written."""
    result = madengine(mad_package, "build", "--tags", "dummy,dummy2")
    assert result.rc == 0, result.output
    return mad_package


def edit_manifest(package: Path, edit) -> None:
    path = package / "build_manifest.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    edit(data)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


def test_manifest_naming_an_image_that_does_not_exist_is_an_image_missing_row(built: Path) -> None:
    """build_manifest.json edited after the build so that an entry names an image that exists nowhere:
    that model gets a FAILURE row with IMAGE_MISSING and a warning `<model>: image <name> not found on this host.
    build it first (madengine build) or push it with --registry`; the other model still runs; exit 3."""
    missing = f"ci-renamed-{uuid.uuid4().hex[:8]}"
    edit_manifest(built, lambda data: data["built_images"]["ci-dummy_dummy.ubuntu.cpu"].update(docker_image=missing))
    result = madengine(built, "run", "--manifest-file", "build_manifest.json")
    assert result.rc == 3, result.output
    no_traceback(result.output)
    rows = {row["model"]: row for row in perf_rows(built)}
    assert (rows["dummy"]["status"], rows["dummy"]["failure_reason"]) == ("FAILURE", "IMAGE_MISSING")
    assert rows["dummy"]["docker_image"] == missing
    assert rows["dummy2"]["status"] == "SUCCESS"
    assert f"warning: dummy: image {missing} not found on this host" in result.stderr


def test_manifest_without_a_built_models_record_is_a_manifest_error_row(built: Path) -> None:
    """build_manifest.json edited so that an image has no built_models record: that model gets a FAILURE row with
    MANIFEST_ERROR and a warning `<model>: manifest entry '<key>' has no built_models record`; the other model
    still runs; exit 3."""
    edit_manifest(built, lambda data: data["built_models"].pop("ci-dummy2_dummy.ubuntu.cpu"))
    result = madengine(built, "run", "--manifest-file", "build_manifest.json")
    assert result.rc == 3, result.output
    no_traceback(result.output)
    rows = {row["model"]: row for row in perf_rows(built)}
    assert (rows["dummy2"]["status"], rows["dummy2"]["failure_reason"]) == ("FAILURE", "MANIFEST_ERROR")
    assert rows["dummy"]["status"] == "SUCCESS"
    assert "manifest entry 'ci-dummy2_dummy.ubuntu.cpu' has no built_models record" in result.stderr


@pytest.mark.parametrize(
    "damage,words",
    [
        (lambda text: text[: len(text) // 2], "invalid JSON at line "),
        (
            lambda text: text.replace(
                '"ci-dummy_dummy.ubuntu.cpu": {', '"ci-dummy_dummy.ubuntu.cpu": ["x"], "_": {', 1
            ),
            "built_images['ci-dummy_dummy.ubuntu.cpu'] must be a JSON object, got list",
        ),
    ],
    ids=["truncated", "record-not-an-object"],
)
def test_a_broken_manifest_is_one_line_and_exit_4(built: Path, damage, words: str) -> None:
    """build_manifest.json broken after the build (cut in half, or a record that is not an object): `madengine
    run --manifest-file` exits 4 with one line `error: --manifest-file ./build_manifest.json: <what is wrong>.
    fix it, or write it again with 'madengine build'`; nothing runs and no row is written."""
    path = built / "build_manifest.json"
    path.write_text(damage(path.read_text(encoding="utf-8")), encoding="utf-8")
    result = madengine(built, "run", "--manifest-file", "build_manifest.json")
    assert result.rc == 4, result.output
    no_traceback(result.output)
    (line,) = error_lines(result.stderr)
    assert line.startswith("error: --manifest-file ./build_manifest.json: ")
    assert words in line and line.endswith(". fix it, or write it again with 'madengine build'")
    assert not (built / "perf.csv").exists()


# ---------------------------------------------------------------------------------------------- SLURM

FAULT_NODE = "n2"


def node_state(cluster, node: str) -> str:
    return cluster.run("sinfo", "-h", "-n", node, "-o", "%T").stdout.strip()


@pytest.fixture
def node_back_up(slurm_cluster) -> Iterator[str]:
    """FAULT_NODE, resumed after the test whatever happened (with ReturnToService=2 a DOWN node whose slurmd
    answers comes back by itself; `state=resume` covers a node that stays down or drained)."""
    yield FAULT_NODE
    deadline = time.monotonic() + 60
    while not node_state(slurm_cluster, FAULT_NODE).startswith(("idle", "mixed", "allocated", "completing")):
        slurm_cluster.run("scontrol", "update", f"nodename={FAULT_NODE}", "state=resume")
        assert time.monotonic() < deadline, f"{FAULT_NODE} did not come back: {node_state(slurm_cluster, FAULT_NODE)}"
        time.sleep(0.5)


def test_a_slurm_node_taken_down_mid_job_is_a_node_fail_row(
    mad_package: Path, slurm_cluster, node_back_up, docker_client
):
    """The node running a model's job is set DOWN (`scontrol update nodename=n2 state=down reason=...`): the job
    (madengine's scripts say `--no-requeue` unless slurm.extra_directives asks for `--requeue`) ends NODE_FAIL
    and madengine writes a FAILURE row with failure_reason SLURM_NODE_FAIL, warns `<model>: job <id> ended
    NODE_FAIL (NodeDown) (log: ...)`, exits 3, and the model's container is gone."""
    node = node_back_up
    ctx = {
        "slurm": {
            "madengine_command": str(Path(sys.executable).parent / "madengine"), "wait_sleep": 1, "exclusive": False,
            "time": "00:05:00", "nodelist": node,
        }
    }  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "madengine", "run", "--tags", "dummy_sleep", "-c", json.dumps(ctx)],
        cwd=mad_package, env=cli_env(slurm_cluster.env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        job_id = ""
        deadline = time.monotonic() + 120
        while True:  # until our job runs on the node, alone there (other tests' jobs are not taken down with it)
            jobs = list((mad_package / "slurm_results").glob("*/jobs.json"))
            job_id = job_id or (next(iter(json.loads(jobs[0].read_text())["jobs"].values()), "") if jobs else "")
            on_node = slurm_cluster.run("squeue", "-h", "-w", node, "-t", "running", "-o", "%i").stdout.split()
            if job_id and on_node == [job_id]:
                break
            assert proc.poll() is None and time.monotonic() < deadline, f"job {job_id!r} never ran alone on {node}"
            time.sleep(0.2)
        downed = slurm_cluster.run(
            "scontrol", "update", f"nodename={node}", "state=down", "reason=madengine-fault-test"
        )
        assert downed.returncode == 0, downed.stderr
        output, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
        proc.wait()
    no_traceback(output)
    assert proc.returncode == 3, output
    (row,) = perf_rows(mad_package)
    assert (row["model"], row["status"], row["failure_reason"]) == ("dummy_sleep", "FAILURE", "SLURM_NODE_FAIL")
    assert f"warning: dummy_sleep: job {job_id} ended NODE_FAIL (NodeDown)" in output
    deadline = time.monotonic() + 60  # SLURM reports NODE_FAIL at once; the task on the node unwinds meanwhile
    while docker_client.containers.list(all=True, filters={"label": f"org.madengine.run-id={row['run_id']}"}):
        assert time.monotonic() < deadline, "the model's container outlived its job"
        time.sleep(0.5)
