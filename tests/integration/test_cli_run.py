"""madengine build/run against the real Docker engine with the fixture MAD package."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clirun import madengine, manifest, perf_header, perf_rows, rows_by_model

from ansible_collections.rocm.madengine.plugins.module_utils.ownership import RUN_LABEL
from ansible_collections.rocm.madengine.plugins.module_utils.perfcsv import EXTRA_COLUMNS, PERF_COLUMNS

pytestmark = pytest.mark.integration


def containers_of_run(docker_client, run_id: str) -> list:
    return docker_client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run_id}"})


def test_dummy_runs_end_to_end(mad_package: Path, docker_client) -> None:
    result = madengine(mad_package, "run", "--tags", "dummy", "--summary-output", "summary.json", "--run-id", "e2e")
    assert result.rc == 0, result.output
    header = perf_header(mad_package)
    assert tuple(header[: len(PERF_COLUMNS)]) == PERF_COLUMNS
    assert tuple(header[len(PERF_COLUMNS) : len(PERF_COLUMNS) + len(EXTRA_COLUMNS)]) == EXTRA_COLUMNS
    (row,) = perf_rows(mad_package)
    assert row["model"] == "dummy"
    assert row["status"] == "SUCCESS"
    assert row["performance"].isdigit() and row["metric"] == "samples_per_second"
    assert row["docker_image"] == "ci-dummy_dummy.ubuntu.cpu"
    assert row["docker_file"] == "docker/dummy.ubuntu.cpu.Dockerfile"
    assert row["exit_code"] == "0" and row["failure_reason"] == ""
    assert row["n_gpus"] == "0" and row["gpu_architecture"] == ""
    data = manifest(mad_package)
    assert list(data["built_images"]) == ["ci-dummy_dummy.ubuntu.cpu"] == list(data["built_models"])
    record = data["built_images"]["ci-dummy_dummy.ubuntu.cpu"]
    assert record["gpu_vendor"] == "CPU" and record["base_docker"] == "madengine-test/busybox:latest"
    assert record["docker_sha"].startswith("sha256:")
    assert data["deployment_config"] == {"target": "local", "env_vars": {}, "debug": False}
    for log in ("dummy_dummy.ubuntu.cpu.build.live.log", "dummy_dummy.ubuntu.cpu.run.live.log"):
        assert (mad_package / log).is_file()
    assert "performance:" in (mad_package / "dummy_dummy.ubuntu.cpu.run.live.log").read_text()
    summary = json.loads((mad_package / "summary.json").read_text())
    assert summary["overall_success"] is True
    assert summary["run_phase"]["successful_runs"][0]["model"] == "dummy"
    assert json.loads((mad_package / "perf_entry.json").read_text())["model"] == "dummy"
    assert not (mad_package / "run_directory").exists()
    assert containers_of_run(docker_client, "e2e") == []
    assert not (mad_package / ".madengine" / "runs").exists() or not any(
        (mad_package / ".madengine" / "runs").iterdir()
    )


def test_failures_end_as_rows_with_reasons(mad_package: Path) -> None:
    result = madengine(mad_package, "run", "--tags", "failures")
    assert result.rc == 3, result.output
    rows = rows_by_model(mad_package)
    assert rows["dummy_exit"]["status"] == "FAILURE"
    assert rows["dummy_exit"]["failure_reason"] == "EXIT_CODE"
    assert rows["dummy_exit"]["exit_code"] == "3"
    assert rows["dummy_nometric"]["failure_reason"] == "NO_METRIC"
    assert rows["dummy_errpattern"]["failure_reason"] == "ERROR_PATTERN"
    assert rows["dummy_errpattern"]["performance"] == "5"
    assert "Traceback" not in result.output


def test_timeout_kills_and_removes_the_container(mad_package: Path, docker_client) -> None:
    result = madengine(mad_package, "run", "--tags", "dummy_sleep", "--timeout", "3", "--run-id", "timeout3")
    assert result.rc == 3, result.output
    (row,) = perf_rows(mad_package)
    assert (row["model"], row["status"], row["failure_reason"]) == ("dummy_sleep", "FAILURE", "TIMEOUT")
    assert float(row["test_duration"]) < 120  # the model sleeps 300 s and its own timeout is 120 s
    assert containers_of_run(docker_client, "timeout3") == []
    log = (mad_package / "dummy_sleep_dummy.ubuntu.cpu.run.live.log").read_text()
    assert "Setting timeout to 3 seconds." in log


def test_broken_builds_exit_2_with_build_failed_rows(mad_package: Path) -> None:
    result = madengine(mad_package, "run", "--tags", "broken_build")
    assert result.rc == 2, result.output
    rows = rows_by_model(mad_package)
    assert set(rows) == {"dummy_missing_dockerfile", "dummy_noheader"}
    assert {r["failure_reason"] for r in rows.values()} == {"BUILD_FAILED"}
    assert "docker/does_not_exist" in result.stderr
    assert "no '# CONTEXT" in result.stderr


def test_partial_build_failure_still_runs_the_rest(mad_package: Path) -> None:
    result = madengine(mad_package, "run", "--tags", "dummy,dummy_missing_dockerfile")
    assert result.rc == 2, result.output
    rows = rows_by_model(mad_package)
    assert rows["dummy"]["status"] == "SUCCESS"
    assert rows["dummy_missing_dockerfile"]["failure_reason"] == "BUILD_FAILED"


def test_multiple_results_rows(mad_package: Path) -> None:
    result = madengine(mad_package, "run", "--tags", "multi")
    assert result.rc == 0, result.output
    rows = perf_rows(mad_package)
    assert [r["model"] for r in rows] == [f"dummy_multi_{i}" for i in range(1, 5)]
    assert all(r["status"] == "SUCCESS" and r["metric"] == "samples_per_sec" for r in rows)
    assert all(r["temperature"] for r in rows)
    assert perf_header(mad_package)[-1] == "temperature"


def test_args_reach_the_script_literally(mad_package: Path) -> None:
    result = madengine(mad_package, "run", "--tags", "security")
    assert result.rc == 0, result.output
    log = (mad_package / "dummy_args_dummy.ubuntu.cpu.run.live.log").read_text()
    expected = [
        "--literal",
        "$HOME",
        "--cmd",
        "$(touch${IFS}/myworkspace/PWNED)",
        "--semi",
        "a;b",
        "--quoted",
        "two words",
        "--glob",
        "*",
    ]
    for index, value in enumerate(expected, start=1):
        assert f"arg[{index}]={value}\n" in log
    assert "argc=10" in log
    assert not (mad_package / "PWNED").exists()


def test_scoped_and_dynamic_models_in_tag_order(mad_package: Path) -> None:
    result = madengine(mad_package, "run", "--tags", "dummy_test_group_1,dummy_test_group_2,dummy_test_group_3")
    assert result.rc == 0, result.output
    rows = perf_rows(mad_package)
    assert [r["model"] for r in rows] == ["dummy", "dummy2/model1", "dummy2/model2", "dummy3/model3", "dummy3/model4"]
    assert all(r["status"] == "SUCCESS" for r in rows)
    assert rows[1]["docker_image"] == "ci-dummy2_model1_dummy.ubuntu.cpu"


def test_dynamic_model_params_and_tag_extra_args(mad_package: Path) -> None:
    result = madengine(mad_package, "run", "--tags", "dummy3/model_bs8:warmup=2", "--tags", "dummy3:model_bs1")
    assert result.rc == 0, result.output
    rows = rows_by_model(mad_package)
    assert rows["dummy3/model_bs8"]["args"] == "--batch-size 8 --warmup 2"
    assert rows["dummy3/model_bs1"]["args"] == "--batch-size 1"
    log = (mad_package / "dummy3_model_bs8_dummy.ubuntu.cpu.run.live.log").read_text()
    assert "--batch-size 8 --warmup 2" in log


def test_context_selects_dockerfiles(mad_package: Path) -> None:
    result = madengine(mad_package, "run", "--tags", "ctx", "-c", "{'ctx_test': '2'}")
    assert result.rc == 0, result.output
    rows = perf_rows(mad_package)
    assert sorted(r["docker_file"] for r in rows) == [
        "docker/dummy_ctxtest.ctx2a.ubuntu.cpu.Dockerfile",
        "docker/dummy_ctxtest.ctx2b.ubuntu.cpu.Dockerfile",
    ]
    assert [r["performance"] for r in rows] == ["2", "2"]
    (mad_package / "perf.csv").unlink()
    result = madengine(mad_package, "run", "--tags", "ctx")
    assert result.rc == 0, result.output
    (row,) = perf_rows(mad_package)
    assert row["docker_file"] == "docker/dummy_ctxtest.noctx.ubuntu.cpu.Dockerfile" and row["performance"] == "0"


def test_unchanged_image_is_cached_not_rebuilt(mad_package: Path) -> None:
    first = madengine(mad_package, "build", "--tags", "dummy")
    assert first.rc == 0, first.output
    before = manifest(mad_package)["built_images"]["ci-dummy_dummy.ubuntu.cpu"]
    second = madengine(mad_package, "build", "--tags", "dummy")
    assert second.rc == 0, second.output
    after = manifest(mad_package)["built_images"]["ci-dummy_dummy.ubuntu.cpu"]
    assert after["cached"] is True
    assert after["image_id"] == before["image_id"]
    assert after["content_hash"] == before["content_hash"]
    (mad_package / "scripts" / "dummy" / "touched.txt").write_text("x")  # not in the build context
    (mad_package / "docker" / "extra.txt").write_text("changed context")
    third = madengine(mad_package, "build", "--tags", "dummy")
    assert third.rc == 0, third.output
    rebuilt = manifest(mad_package)["built_images"]["ci-dummy_dummy.ubuntu.cpu"]
    assert rebuilt["cached"] is False and rebuilt["content_hash"] != before["content_hash"]


def test_vendor_mismatch_is_a_per_model_failure(mad_package: Path) -> None:
    built = madengine(mad_package, "build", "--tags", "dummy_amd_only,dummy", "-c", '{"gpu_vendor": "AMD"}')
    assert built.rc == 0, built.output
    result = madengine(mad_package, "run", "--manifest-file", "build_manifest.json")
    assert result.rc == 3, result.output
    rows = rows_by_model(mad_package)
    assert rows["dummy_amd_only"]["failure_reason"] == "VENDOR_MISMATCH"
    assert rows["dummy"]["failure_reason"] == "VENDOR_MISMATCH"
    assert "built for AMD GPUs but this host is CPU" in result.stderr


def test_skip_model_run_writes_skipped_rows(mad_package: Path) -> None:
    result = madengine(mad_package, "run", "--tags", "dummy", "--skip-model-run")
    assert result.rc == 0, result.output
    (row,) = perf_rows(mad_package)
    assert (row["status"], row["failure_reason"]) == ("SKIPPED", "SKIP_MODEL_RUN")


def test_keep_alive_leaves_the_container_running(mad_package: Path, docker_client) -> None:
    try:
        result = madengine(mad_package, "run", "--tags", "dummy", "--keep-alive", "--run-id", "alive")
        assert result.rc == 0, result.output
        (container,) = containers_of_run(docker_client, "alive")
        assert container.status == "running"
        assert container.name == "container_ci-dummy_dummy.ubuntu.cpu_alive"
        (kept,) = (mad_package / ".madengine" / "runs").iterdir()
        assert (kept / "dummy_dummy.ubuntu.cpu" / "run.sh").is_file()
        assert f"run directories kept in .madengine/runs/{kept.name}" in result.stderr
        assert perf_rows(mad_package)[0]["status"] == "SUCCESS"
        listed = madengine(mad_package, "clean", "--dry-run")
        assert "alive" not in listed.stdout  # kept on purpose: only `clean --kept` touches it
        cleaned = madengine(mad_package, "clean", "--kept")
        assert cleaned.rc == 0, cleaned.output
        assert containers_of_run(docker_client, "alive") == [] and not kept.exists()
    finally:
        for container in containers_of_run(docker_client, "alive"):
            container.remove(force=True)


def test_environment_and_context_env_vars(mad_package: Path) -> None:
    result = madengine(
        mad_package,
        "run",
        "--tags",
        "env",
        "-c",
        '{"docker_env_vars": {"MY_VAR": "hello world"}}',
        env={"MAD_SECRETS_TOKEN": "not-in-the-manifest"},
    )
    assert result.rc == 0, result.output
    log = (mad_package / "dummy_env_dummy.ubuntu.cpu.run.live.log").read_text()
    assert "MAD_MODEL_NAME=dummy_env\n" in log
    assert "MAD_GPU_VENDOR=CPU\n" in log
    assert "MY_VAR=hello world\n" in log
    assert "not-in-the-manifest" not in (mad_package / "build_manifest.json").read_text()


def test_real_bash_image(mad_package: Path) -> None:
    result = madengine(mad_package, "run", "--tags", "bash")
    assert result.rc == 0, result.output
    (row,) = perf_rows(mad_package)
    assert row["status"] == "SUCCESS" and row["base_docker"] == "madengine-test/debian:bookworm"


def test_legacy_perf_csv_is_merged_by_column_name(mad_package: Path) -> None:
    legacy_header = (
        "model, n_gpus, training_precision, pipeline, args, tags, docker_file, base_docker, docker_sha, "
        "docker_image, git_commit, machine_name, gpu_architecture, performance, metric, relative_change, status, "
        "build_duration, test_duration, dataname, data_provider_type, data_size, data_download_duration, build_number"
    )
    legacy_row = "old_model,8,fp16,,,tag1,docker/x,rocm/pytorch,sha,ci-x,,host1,gfx942,123,tokens/s,,SUCCESS,1,2,,,,,7"
    (mad_package / "perf.csv").write_text(legacy_header + "\n" + legacy_row + "\n")
    result = madengine(mad_package, "run", "--tags", "dummy")
    assert result.rc == 0, result.output
    rows = rows_by_model(mad_package)
    assert rows["old_model"]["performance"] == "123" and rows["old_model"]["n_gpus"] == "8"
    assert rows["old_model"]["build_number"] == "7" and rows["old_model"]["nnodes"] == ""
    assert rows["dummy"]["status"] == "SUCCESS"
    assert tuple(perf_header(mad_package)[: len(PERF_COLUMNS)]) == PERF_COLUMNS


def test_use_image_and_batch_manifest(mad_package: Path) -> None:
    built = madengine(mad_package, "build", "--tags", "dummy")
    assert built.rc == 0, built.output
    result = madengine(
        mad_package,
        "build",
        "--tags",
        "dummy2/model1",
        "--use-image",
        "ci-dummy_dummy.ubuntu.cpu",
        "-m",
        "prebuilt.json",
    )
    assert result.rc == 0, result.output
    data = manifest(mad_package, "prebuilt.json")
    assert data["built_images"]["dummy2/model1"]["docker_image"] == "ci-dummy_dummy.ubuntu.cpu"
    run = madengine(mad_package, "run", "--manifest-file", "prebuilt.json")
    assert run.rc == 0, run.output
    (row,) = perf_rows(mad_package)
    assert (row["model"], row["docker_image"], row["status"]) == (
        "dummy2/model1",
        "ci-dummy_dummy.ubuntu.cpu",
        "SUCCESS",
    )

    (mad_package / "batch.json").write_text(
        json.dumps(
            [
                {"model_name": "dummy2", "build_new": True},
                {"model_name": "dummy", "build_new": False},
            ]
        )
    )
    batch = madengine(mad_package, "build", "--batch-manifest", "batch.json", "-m", "batch_manifest.json")
    assert batch.rc == 0, batch.output
    data = manifest(mad_package, "batch_manifest.json")
    assert set(data["built_images"]) == {"ci-dummy2_dummy.ubuntu.cpu", "ci-dummy_dummy.ubuntu.cpu"}
    skipped = data["built_images"]["ci-dummy_dummy.ubuntu.cpu"]
    assert skipped["build_command"].startswith("# Skipped build for dummy")


def test_live_output_streams_build_and_model_output(mad_package: Path) -> None:
    quiet = madengine(mad_package, "run", "--tags", "dummy")
    assert quiet.rc == 0, quiet.output
    assert "performance:" not in quiet.stdout and "ARG BASE_DOCKER=" not in quiet.stdout
    (mad_package / "docker" / "force-rebuild.txt").write_text("x")
    live = madengine(mad_package, "run", "--tags", "dummy", "--live-output")
    assert live.rc == 0, live.output
    assert "ARG BASE_DOCKER=" in live.stdout
    assert "performance: " in live.stdout
    combined = (mad_package / "dummy_dummy.ubuntu.cpu.live.log").read_text()
    assert "ARG BASE_DOCKER=" in combined and "RUN PHASE LOG" in combined and "performance: " in combined


def test_target_archs_build_one_image_per_architecture(mad_package: Path) -> None:
    result = madengine(mad_package, "build", "--tags", "dummy", "-c", '{"gpu_vendor": "AMD"}', "-a", "gfx90a,MI300X")
    assert result.rc == 0, result.output
    data = manifest(mad_package)
    assert set(data["built_images"]) == {"ci-dummy_dummy.ubuntu.amd_gfx90a", "ci-dummy_dummy.ubuntu.amd_gfx942"}
    assert data["built_images"]["ci-dummy_dummy.ubuntu.amd_gfx942"]["gpu_architecture"] == "gfx942"
    assert (mad_package / "dummy_dummy.ubuntu.amd_gfx90a.build.live.log").is_file()
    assert (mad_package / "dummy_dummy.ubuntu.amd_gfx942.build.live.log").is_file()
