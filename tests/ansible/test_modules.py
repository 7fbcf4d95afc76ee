"""The four modules run for real through ansible-core, on the real Docker engine, with a private MAD package."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Dict, List

import pytest
from modrun import Ansible, Package

from ansible_collections.rocm.madengine.plugins.module_utils import results_store

pytestmark = pytest.mark.integration

SECRET = "Pw-never-shown-7c1e9a"


def csv_rows(path: Path) -> List[Dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def build(ansible: Ansible, package: Package, **extra) -> dict:
    result = ansible.module("docker_build_model", {"package_dir": str(package.root), "tags": [package.tag], **extra})
    assert result.rc == 0 and not result.failed, result.output
    return result.data


def suffix(package: Package) -> str:
    return package.model.rsplit("_", 1)[-1]


# discover_models -------------------------------------------------------------------------------------------


def test_discover_all_and_by_tag(ansible: Ansible, package: Package) -> None:
    everything = ansible.module("discover_models", {"package_dir": str(package.root)})
    assert everything.rc == 0, everything.output
    assert everything.changed is False
    assert {"dummy", "dummy2/model1", "dummy3/model3", package.model} <= set(everything.data["names"])
    assert everything.data["names"] == [m["name"] for m in everything.data["models"]]

    root = str(package.root)
    selected = ansible.module("discover_models", {"package_dir": root, "tags": ["dummy_group_1"]}, check=True)
    assert selected.rc == 0, selected.output
    assert selected.data["names"] == ["dummy", "dummy2"]
    assert selected.changed is False

    extra_args = ansible.module("discover_models", {"package_dir": str(package.root), "tags": ["dummy:batch-size=32"]})
    assert extra_args.data["models"][0]["args"] == " --batch-size 32"


def test_discover_errors_name_the_option(ansible: Ansible, package: Package, tmp_path: Path) -> None:
    unknown = ansible.module("discover_models", {"package_dir": str(package.root), "tags": ["no_such_model"]})
    assert unknown.rc != 0 and unknown.failed
    assert unknown.data["option"] == "tags" and "no_such_model" in unknown.data["msg"]
    assert "\n" not in unknown.data["msg"]

    missing = ansible.module("discover_models", {"package_dir": str(tmp_path / "nowhere")})
    assert missing.failed and missing.data["option"] == "package_dir"

    no_models_json = ansible.module("discover_models", {"package_dir": str(tmp_path)})
    assert no_models_json.failed and no_models_json.data["option"] == "package_dir"
    assert "models.json" in no_models_json.data["msg"]

    context = ansible.module(
        "discover_models", {"package_dir": str(package.root), "additional_context": {"partition": "gpu"}}
    )
    assert context.failed and context.data["option"] == "additional_context"
    assert "slurm" in context.data["msg"]


# docker_build_model ----------------------------------------------------------------------------------------


def test_build_is_idempotent_and_check_mode_predicts(ansible: Ansible, package: Package, docker_client) -> None:
    args = {"package_dir": str(package.root), "tags": [package.tag]}
    manifest = package.root / "build_manifest.json"

    predicted = ansible.module("docker_build_model", args, check=True)
    assert predicted.rc == 0, predicted.output
    assert predicted.changed is True and predicted.data["images"][0]["built"] is True
    assert not manifest.exists(), "check mode wrote the manifest"
    assert not docker_client.images.list(name=package.image), "check mode built the image"

    first = ansible.module("docker_build_model", args)
    assert first.rc == 0, first.output
    assert first.changed is True
    (image,) = first.data["images"]
    assert image["docker_image"] == package.image and image["built"] is True and image["cached"] is False
    assert image["model"] == package.model and image["image_id"].startswith("sha256:")
    assert Path(image["log_file"]).is_file() and image["log_file"].startswith(str(package.root))
    assert first.data["manifest"] == str(manifest) and package.image in package.manifest()["built_images"]
    assert first.data["failed_builds"] == []

    second = ansible.module("docker_build_model", args)
    assert second.rc == 0, second.output
    assert second.changed is False
    assert second.data["images"][0]["cached"] is True
    assert second.data["images"][0]["image_id"] == image["image_id"]

    unchanged = ansible.module("docker_build_model", args, check=True)
    assert unchanged.changed is False

    (package.root / "docker" / "context-change.txt").write_text("new build context file\n", encoding="utf-8")
    manifest_before = manifest.read_text(encoding="utf-8")
    build_log = Path(image["log_file"])
    build_log.write_text("the log of the last real build\n", encoding="utf-8")
    stale = ansible.module("docker_build_model", args, check=True)
    assert stale.rc == 0, stale.output
    assert stale.changed is True and stale.data["images"][0]["built"] is True
    assert docker_client.images.get(package.image).id == image["image_id"], "check mode rebuilt the image"
    assert manifest.read_text(encoding="utf-8") == manifest_before, "check mode rewrote the manifest"
    assert build_log.read_text(encoding="utf-8") == "the log of the last real build\n", "check mode wrote the log"

    rebuilt = ansible.module("docker_build_model", args)
    assert rebuilt.changed is True
    assert rebuilt.data["images"][0]["content_hash"] != image["content_hash"]


def test_build_failures_fail_with_the_list(ansible: Ansible, package: Package) -> None:
    args = {"package_dir": str(package.root), "tags": ["broken_build"], "manifest_output": "broken.json"}
    failed = ansible.module("docker_build_model", args)
    assert failed.rc != 0 and failed.failed, failed.output
    assert "\n" not in failed.data["msg"] and "build(s) failed" in failed.data["msg"]
    models = {f["model"] for f in failed.data["failed_builds"]}
    assert models == {"dummy_missing_dockerfile", "dummy_noheader"}
    assert all(f["error"] for f in failed.data["failed_builds"])

    tolerated = ansible.module("docker_build_model", dict(args, fail_on_error=False))
    assert tolerated.rc == 0 and not tolerated.failed, tolerated.output
    assert len(tolerated.data["failed_builds"]) == 2


def test_registry_password_is_never_shown(ansible: Ansible, package: Package) -> None:
    args = {
        "package_dir": str(package.root),
        "tags": [package.tag],
        "registry": "127.0.0.1:1",
        "registry_username": "ci",
        "registry_password": SECRET,
        "fail_on_error": False,
    }
    pushed = ansible.module("docker_build_model", args, verbosity=3)
    assert pushed.rc == 0, pushed.output
    assert SECRET not in pushed.output
    assert pushed.data["invocation"]["module_args"]["registry_password"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    (failure,) = pushed.data["failed_builds"]
    assert "push of 127.0.0.1:1/" in failure["error"]
    assert failure["log_tail"] and SECRET not in json.dumps(failure)

    strict = ansible.module("docker_build_model", dict(args, fail_on_error=True), verbosity=3)
    assert strict.failed and SECRET not in strict.output

    build(ansible, package)
    ran = ansible.module(
        "run_model",
        {
            "package_dir": str(package.root),
            "container_suffix": suffix(package),
            "registry": "127.0.0.1:1",
            "registry_username": "ci",
            "registry_password": SECRET,
        },
        verbosity=3,
    )
    assert ran.rc == 0, ran.output
    assert SECRET not in ran.output

    half = ansible.module(
        "docker_build_model",
        {"package_dir": str(package.root), "tags": [package.tag], "registry": "127.0.0.1:1", "registry_username": "ci"},
    )
    assert half.failed and "registry_password" in half.data["msg"]


# run_model -------------------------------------------------------------------------------------------------


def test_run_success(ansible: Ansible, package: Package) -> None:
    build(ansible, package)
    args = {"package_dir": str(package.root), "container_suffix": suffix(package), "run_id": "it-run-1"}
    ran = ansible.module("run_model", args)
    assert ran.rc == 0, ran.output
    assert ran.changed is True
    (row,) = ran.data["rows"]
    assert row["model"] == package.model and row["status"] == "SUCCESS" and row["performance"]
    assert row["metric"] == "samples_per_second" and row["run_id"] == "it-run-1"
    assert ran.data["run_id"] == "it-run-1"
    assert ran.data["summary"]["total_runs"] == 1 and len(ran.data["summary"]["successful_runs"]) == 1
    perf_csv = Path(ran.data["perf_csv"])
    assert perf_csv == package.root / "perf.csv"
    assert [r["run_id"] for r in csv_rows(perf_csv)] == ["it-run-1"]
    (log,) = ran.data["logs"]
    assert log["status"] == "SUCCESS" and log["failure_reason"] == ""
    assert Path(log["log_path"]).is_file() and log["log_path"].startswith(str(package.root))
    assert 0 < len(log["log_tail"]) <= 20
    assert any(line.startswith("performance: ") for line in log["log_tail"])

    short = ansible.module("run_model", dict(args, log_tail_lines=2, run_id="it-run-2", machine_name="gpu-a"))
    assert short.rc == 0, short.output
    assert len(short.data["logs"][0]["log_tail"]) == 2
    assert short.data["rows"][0]["machine_name"] == "gpu-a"

    checked = ansible.module("run_model", dict(args, run_id="it-run-3"), check=True)
    assert checked.rc == 0 and checked.status == "SKIPPED", checked.output
    assert [r["run_id"] for r in csv_rows(perf_csv)] == ["it-run-1", "it-run-2"], "check mode ran the model"

    spaced = ansible.module("run_model", dict(args, run_id="it run 4"))
    assert spaced.failed and spaced.data["option"] == "run_id" and "run_id: 'it run 4'" in spaced.data["msg"]
    assert [r["run_id"] for r in csv_rows(perf_csv)] == ["it-run-1", "it-run-2"], "a refused run id ran the model"


def test_run_failures_return_rows_and_reasons(ansible: Ansible, package: Package) -> None:
    built = ansible.module(
        "docker_build_model",
        {"package_dir": str(package.root), "tags": ["failures"], "manifest_output": "failures.json"},
    )
    assert built.rc == 0, built.output
    args = {"package_dir": str(package.root), "manifest_file": "failures.json", "container_suffix": suffix(package)}
    failed = ansible.module("run_model", args)
    assert failed.rc != 0 and failed.failed, failed.output
    assert failed.changed is True
    assert "\n" not in failed.data["msg"] and "3 of 3 row(s) failed" in failed.data["msg"]
    reasons = {row["model"]: row["failure_reason"] for row in failed.data["rows"]}
    assert reasons == {"dummy_exit": "EXIT_CODE", "dummy_nometric": "NO_METRIC", "dummy_errpattern": "ERROR_PATTERN"}
    assert {row["status"] for row in failed.data["rows"]} == {"FAILURE"}
    logs = {log["model"]: log for log in failed.data["logs"]}
    assert set(logs) == set(reasons)
    assert all(log["log_tail"] and Path(log["log_path"]).is_file() for log in logs.values())
    assert failed.data["summary"]["failed_runs"] and not failed.data["summary"]["successful_runs"]

    tolerated = ansible.module("run_model", dict(args, fail_on_error=False))
    assert tolerated.rc == 0 and not tolerated.failed, tolerated.output
    assert len(tolerated.data["rows"]) == 3


def test_run_errors_name_the_option(ansible: Ansible, package: Package) -> None:
    root = str(package.root)
    no_manifest = ansible.module("run_model", {"package_dir": root, "manifest_file": "missing.json"})
    assert no_manifest.failed and no_manifest.data["option"] == "manifest_file"
    assert "--manifest-file" not in no_manifest.data["msg"] and "missing.json" in no_manifest.data["msg"]

    bad_timeout = ansible.module("run_model", {"package_dir": root, "timeout": -5})
    assert bad_timeout.failed and bad_timeout.data["option"] == "timeout"

    bad_context = ansible.module("run_model", {"package_dir": root, "additional_context": {"gpu_vendor": "INTEL"}})
    assert bad_context.failed and bad_context.data["option"] == "additional_context"


# parse_perf ------------------------------------------------------------------------------------------------


def test_parse_perf_on_a_real_run_log(ansible: Ansible, package: Package, tmp_path: Path) -> None:
    build(ansible, package)
    ran = ansible.module("run_model", {"package_dir": str(package.root), "container_suffix": suffix(package)})
    assert ran.rc == 0, ran.output
    run_row = ran.data["rows"][0]
    log_path = ran.data["logs"][0]["log_path"]
    dest = tmp_path / "parsed.csv"
    args = {
        "package_dir": str(package.root),
        "log_path": os.path.basename(log_path),
        "model": package.model,
        "machine_name": "gpu-a",
        "run_id": "parsed-1",
        "dest": str(dest),
    }

    predicted = ansible.module("parse_perf", args, check=True, diff=True)
    assert predicted.rc == 0, predicted.output
    assert predicted.changed is True and not dest.exists()
    assert predicted.data["rows_written"] == 1

    parsed = ansible.module("parse_perf", args)
    assert parsed.rc == 0, parsed.output
    assert parsed.changed is True
    assert parsed.data["status"] == "SUCCESS" and parsed.data["failure_reason"] == ""
    assert parsed.data["performance"] == run_row["performance"] and parsed.data["metric"] == run_row["metric"]
    (written,) = csv_rows(dest)
    assert written["model"] == package.model and written["performance"] == run_row["performance"]
    assert written["machine_name"] == "gpu-a" and written["run_id"] == "parsed-1" and written["test_duration"]

    again = ansible.module("parse_perf", args)
    assert again.rc == 0 and again.changed is False and again.data["rows_written"] == 0
    assert len(csv_rows(dest)) == 1


def test_parse_perf_finds_error_patterns(ansible: Ansible, tmp_path: Path) -> None:
    log = tmp_path / "model.run.live.log"
    log.write_text("starting\nperformance: 12.5 samples_per_second\nRuntimeError: boom\n", encoding="utf-8")
    parsed = ansible.module("parse_perf", {"log_path": str(log)})
    assert parsed.rc == 0, parsed.output
    assert parsed.changed is False
    assert parsed.data["status"] == "FAILURE" and parsed.data["failure_reason"] == "ERROR_PATTERN"
    assert parsed.data["error_pattern"] == "RuntimeError:" and parsed.data["rows"][0]["model"] == "model"

    relative = ansible.module("parse_perf", {"log_path": "model.run.live.log"})
    assert relative.failed and relative.data["option"] == "log_path"


def test_parse_perf_merges_csvs_idempotently(ansible: Ansible, tmp_path: Path) -> None:
    header = "model,performance,metric,status,machine_name,run_id\n"
    first = tmp_path / "h1.csv"
    second = tmp_path / "h2.csv"
    first.write_text(header + "dummy,10,samples_per_second,SUCCESS,h1,r1\n", encoding="utf-8")
    second.write_text(
        header + "dummy,11,samples_per_second,SUCCESS,,r1\ndummy2,,,FAILURE,,r1\n",
        encoding="utf-8",
    )
    dest = tmp_path / "merged" / "perf.csv"
    args = {"csv_paths": [str(first), str(second)], "dest": str(dest), "machine_name": "h2"}

    merged = ansible.module("parse_perf", args, diff=True)
    assert merged.rc == 0, merged.output
    assert merged.changed is True
    assert merged.data["rows_read"] == 3 and merged.data["rows_written"] == 3
    assert merged.data["success"] == 2 and merged.data["failure"] == 1
    assert "0 rows" in merged.stdout and "3 rows" in merged.stdout, "no diff shown"
    rows = csv_rows(dest)
    assert [(r["model"], r["machine_name"]) for r in rows] == [("dummy", "h1"), ("dummy", "h2"), ("dummy2", "h2")]

    again = ansible.module("parse_perf", args)
    assert again.rc == 0 and again.changed is False and again.data["rows_written"] == 0
    assert len(csv_rows(dest)) == 3

    missing = ansible.module("parse_perf", {"csv_paths": [str(tmp_path / "nope.csv")], "dest": str(dest)})
    assert missing.failed and missing.data["option"] == "csv_paths"


def test_parse_perf_host_results_add_rows_for_missing_models(
    ansible: Ansible, package: Package, tmp_path: Path
) -> None:
    build(ansible, package)
    ran = ansible.module(
        "run_model", {"package_dir": str(package.root), "container_suffix": suffix(package), "run_id": "fleet-1"}
    )
    assert ran.rc == 0, ran.output
    dest = tmp_path / "perf.csv"
    summary = tmp_path / "perf_summary.json"
    args = {
        "manifest": str(package.root / "build_manifest.json"),
        "host_results": [
            {"host": "gpu1", "perf_csv": str(package.root / "perf.csv")},
            {"host": "gpu2", "status": "unreachable", "reason": "ssh timed out"},
        ],
        "dest": str(dest),
        "summary": str(summary),
        "run_id": "fleet-1",
        "results_db": str(tmp_path / "store.sqlite"),
    }
    merged = ansible.module("parse_perf", args)
    assert merged.rc == 0, merged.output
    assert merged.changed is True and merged.data["rows_written"] == 2
    rows = {r["machine_name"]: r for r in csv_rows(dest)}
    assert rows["gpu2"]["status"] == "FAILURE" and rows["gpu2"]["failure_reason"] == "HOST_UNREACHABLE"
    assert rows["gpu2"]["model"] == package.model and rows["gpu2"]["run_id"] == "fleet-1"
    assert merged.data["hosts"]["gpu2"]["missing_models"] == [package.model]
    assert merged.data["hosts"]["gpu2"]["message"] == "ssh timed out"
    totals = json.loads(summary.read_text(encoding="utf-8"))
    assert totals["dest"] == str(dest) and totals["success"] == 1 and totals["failure"] == 1
    assert merged.data["rows_recorded"] == 2
    (run,) = results_store.runs(str(tmp_path / "store.sqlite"))
    assert (run["run_id"], run["target"], run["success"], run["failure"]) == ("fleet-1", "fleet", 1, 1)

    again = ansible.module("parse_perf", args)
    assert again.rc == 0 and again.changed is False, again.output
    assert len(csv_rows(dest)) == 2
    assert again.data["rows_recorded"] == 0
    assert len(results_store.rows_of_run(str(tmp_path / "store.sqlite"), "fleet-1")) == 2


# the oldest target Python -----------------------------------------------------------------------------------


def oldest_python() -> str:
    """A Python 3.9 interpreter without the repo's packages (pyenv's, where there is one)."""
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    for candidate in sorted(root.glob("versions/3.9*/bin/python3.9")):
        if os.access(candidate, os.X_OK):
            return str(candidate)
    return ""


def test_stdlib_modules_run_on_python_3_9(ansible: Ansible, package: Package, tmp_path: Path) -> None:
    python = oldest_python()
    if not python:
        pytest.skip("no Python 3.9 interpreter here (pyenv versions/3.9*)")
    ansible.env["ANSIBLE_PYTHON_INTERPRETER"] = python
    found = ansible.module("discover_models", {"package_dir": str(package.root), "tags": ["dummy3/model3", "dummy"]})
    assert found.rc == 0, found.output
    assert found.data["names"] == ["dummy3/model3", "dummy"]
    log = tmp_path / "x.run.live.log"
    log.write_text("performance: 1.5e3 images_per_second\ntest_duration: 2.00s\n", encoding="utf-8")
    parsed = ansible.module("parse_perf", {"log_path": str(log), "dest": str(tmp_path / "perf.csv")})
    assert parsed.rc == 0, parsed.output
    assert parsed.data["performance"] == "1.5e3" and parsed.data["status"] == "SUCCESS"


def test_unreachable_docker_engine_is_a_clear_build_failure(ansible: Ansible, package: Package, tmp_path: Path) -> None:
    ansible.env["DOCKER_HOST"] = f"unix://{tmp_path}/no-such-docker.sock"
    failed = ansible.module("docker_build_model", {"package_dir": str(package.root), "tags": [package.tag]})
    assert failed.failed, failed.output
    assert "\n" not in failed.data["msg"] and "cannot reach the Docker engine" in failed.data["msg"]
    (failure,) = failed.data["failed_builds"]
    assert failure["model"] == package.model and "start dockerd" in failure["error"]
    assert "Traceback" not in failed.output

    ran = ansible.module("run_model", {"package_dir": str(package.root), "manifest_file": "missing.json"})
    assert ran.failed and ran.data["option"] == "manifest_file"
