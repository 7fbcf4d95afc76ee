"""aggregate.merge_results: every model x host ends as a row."""

from __future__ import annotations

from ansible_collections.rocm.madengine.plugins.module_utils import aggregate, perfcsv

MANIFEST = {
    "built_images": {
        "ci-a_a.ubuntu.cpu": {"docker_image": "ci-a_a.ubuntu.cpu", "dockerfile": "docker/a.ubuntu.cpu.Dockerfile"},
        "ci-multi_a.ubuntu.cpu": {
            "docker_image": "ci-multi_a.ubuntu.cpu",
            "dockerfile": "docker/a.ubuntu.cpu.Dockerfile",
        },
    },
    "built_models": {
        "ci-a_a.ubuntu.cpu": {"name": "a", "tags": ["t1", "t2"], "args": "--x 1"},
        "ci-multi_a.ubuntu.cpu": {"name": "multi", "tags": ["t1"], "multiple_results": "r.csv"},
    },
}


def host_csv(tmp_path, host, rows):
    path = tmp_path / f"{host}.csv"
    perfcsv.append_rows(str(path), rows)
    return str(path)


def test_reachable_hosts_rows_are_kept_and_failed_hosts_get_failure_rows(tmp_path):
    h1 = host_csv(
        tmp_path,
        "h1",
        [
            {"model": "a", "status": "SUCCESS", "performance": "12", "machine_name": "node-1", "run_id": "r1"},
            {"model": "multi_1", "status": "SUCCESS", "performance": "3", "run_id": "r1"},
            {"model": "multi_2", "status": "SUCCESS", "performance": "4", "run_id": "r1"},
        ],
    )
    h2 = host_csv(tmp_path, "h2", [{"model": "a", "status": "FAILURE", "failure_reason": "EXIT_CODE", "run_id": "r1"}])
    dest = tmp_path / "perf.csv"
    summary = aggregate.merge_results(
        str(dest),
        [
            aggregate.HostResult("h1", h1),
            aggregate.HostResult("h2", h2),
            aggregate.HostResult("h3", "", "unreachable", "ssh: connect timed out"),
        ],
        MANIFEST,
        run_id="r1",
    )
    rows = perfcsv.read_rows(str(dest))
    got = [(r["machine_name"], r["model"], r["status"], r["failure_reason"]) for r in rows]
    assert got == [
        ("node-1", "a", "SUCCESS", ""),
        ("h1", "multi_1", "SUCCESS", ""),
        ("h1", "multi_2", "SUCCESS", ""),
        ("h2", "a", "FAILURE", "EXIT_CODE"),
        ("h2", "multi", "FAILURE", "NO_RESULT"),
        ("h3", "a", "FAILURE", "HOST_UNREACHABLE"),
        ("h3", "multi", "FAILURE", "HOST_UNREACHABLE"),
    ]
    assert rows[5]["docker_image"] == "ci-a_a.ubuntu.cpu" and rows[5]["tags"] == "t1,t2" and rows[5]["run_id"] == "r1"
    assert summary["hosts"]["h3"]["missing_models"] == ["a", "multi"]
    assert summary["hosts"]["h1"]["success"] == 3 and summary["failure"] == 4 and summary["rows"] == 7


def test_check_only_writes_nothing(tmp_path):
    dest = tmp_path / "perf.csv"
    summary = aggregate.merge_results(str(dest), [aggregate.HostResult("h1", "", "failed")], MANIFEST, check_only=True)
    assert summary["rows"] == 2 and not dest.exists()


def test_only_rows_of_this_run_are_merged(tmp_path):
    h1 = host_csv(
        tmp_path,
        "h1",
        [
            {"model": "a", "status": "SUCCESS", "performance": "1", "run_id": "old"},
            {"model": "a", "status": "SUCCESS", "performance": "2", "run_id": "new"},
        ],
    )
    dest = tmp_path / "perf.csv"
    aggregate.merge_results(str(dest), [aggregate.HostResult("h1", h1)], MANIFEST, run_id="new")
    rows = perfcsv.read_rows(str(dest))
    assert [(r["model"], r["performance"], r["failure_reason"]) for r in rows] == [
        ("a", "2", ""),
        ("multi", "", "NO_RESULT"),
    ]
