"""The results store, baselines, verdicts and repeats through the real CLI on the fixture package (real Docker)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from clirun import madengine, perf_rows

from ansible_collections.rocm.madengine.plugins.module_utils.results_store import DEFAULT_NAME

pytestmark = pytest.mark.integration

SLOWER = '{"docker_env_vars": {"DUMMY_PERF": "50"}}'


def test_slower_model_regresses_and_gates_ci(mad_package: Path) -> None:
    first = madengine(mad_package, "run", "--tags", "dummy_perf,dummy", "--run-id", "base")
    assert first.rc == 0, first.output
    second = madengine(mad_package, "run", "--tags", "dummy_perf,dummy", "--run-id", "slow", "-c", SLOWER)
    assert second.rc == 0, second.output

    compared = madengine(mad_package, "compare", "base", "slow", "--json")
    assert compared.rc == 0, compared.output
    entries = {e["model"]: e for e in json.loads(compared.stdout)["entries"]}
    perf = entries["dummy_perf"]
    assert perf["verdict"] == "REGRESSED" and perf["direction"] == "higher"
    base_value, new_value = perf["baseline_value"], perf["current_value"]
    assert 100 <= base_value <= 102 and 50 <= new_value <= 52
    assert perf["relative_change"] == round((new_value - base_value) / base_value * 100, 2)

    table = madengine(mad_package, "compare", "base", "slow")
    assert "REGRESSED" in table.stdout and f"{perf['relative_change']:+.2f}" in table.stdout

    gated = madengine(mad_package, "compare", "base", "slow", "--fail-on-regression")
    assert gated.rc == 5, gated.output
    reverse = madengine(mad_package, "compare", "slow", "base", "--json")
    assert reverse.rc == 0, reverse.output
    assert {e["model"]: e["verdict"] for e in json.loads(reverse.stdout)["entries"]}["dummy_perf"] == "IMPROVED"


def test_run_with_baseline_fills_the_rows_and_exits_5(mad_package: Path) -> None:
    assert madengine(mad_package, "run", "--tags", "dummy_perf", "--run-id", "b1").rc == 0
    result = madengine(
        mad_package, "run", "--tags", "dummy_perf", "--run-id", "b2", "-c", SLOWER,
        "--baseline", "perf.csv", "--fail-on-regression",
    )  # fmt: skip
    assert result.rc == 5, result.output
    base, new = perf_rows(mad_package)
    assert (base["verdict"], base["relative_change"]) == ("", "")
    expected = (float(new["performance"]) - float(base["performance"])) / float(base["performance"]) * 100
    assert new["verdict"] == "REGRESSED" and new["relative_change"] == f"{expected:.2f}"
    assert "Compared with b1@perf.csv" in result.stdout


def test_bad_baseline_fails_before_anything_runs(mad_package: Path) -> None:
    result = madengine(mad_package, "run", "--tags", "dummy_perf", "--baseline", "nosuchrun")
    assert result.rc == 4, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and "nosuchrun" in result.stderr
    assert not (mad_package / "perf.csv").exists() and not (mad_package / "build_manifest.json").exists()
    for bad in (("--repeat", "0"), ("--tolerance", "-3")):
        bad_run = madengine(mad_package, "run", "--tags", "dummy_perf", *bad, "--baseline", "x.csv")
        assert bad_run.rc == 4 and bad[0] in bad_run.stderr, bad_run.output


def test_repeat_five_gives_rows_statistics_and_a_significant_verdict(mad_package: Path) -> None:
    base = madengine(mad_package, "run", "--tags", "dummy_perf", "--repeat", "5", "--run-id", "r5")
    assert base.rc == 0, base.output
    rows = perf_rows(mad_package)
    assert [r["repeat"] for r in rows] == ["1", "2", "3", "4", "5"]
    assert all(r["status"] == "SUCCESS" and r["run_id"] == "r5" for r in rows)
    assert "Repeats (5 per model)" in base.stdout and "CV%" in base.stdout
    conn = sqlite3.connect(mad_package / DEFAULT_NAME)
    logs = conn.execute("SELECT repeat, log_path FROM rows WHERE run_id = 'r5' ORDER BY id").fetchall()
    assert [(r, Path(p).name) for r, p in logs] == [
        (str(i), f"dummy_perf_dummy.ubuntu.cpu.repeat{i}.run.live.log") for i in range(1, 6)
    ]
    assert all(Path(p).is_file() for _r, p in logs)
    slow = madengine(
        mad_package, "run", "--tags", "dummy_perf", "--repeat", "5", "--run-id", "s5", "-c", SLOWER,
        "--baseline", "r5",
    )  # fmt: skip
    assert slow.rc == 0, slow.output
    compared = json.loads(madengine(mad_package, "compare", "r5", "s5", "--json").stdout)
    (entry,) = compared["entries"]
    assert entry["verdict"] == "REGRESSED" and entry["significant"] is True and entry["p_value"] < 0.05
    assert entry["baseline"]["n"] == entry["current"]["n"] == 5


def test_store_keeps_provenance_and_history_lists_runs(mad_package: Path) -> None:
    assert madengine(mad_package, "run", "--tags", "dummy_perf", "--run-id", "p1").rc == 0
    assert madengine(mad_package, "run", "--tags", "dummy_exit", "--run-id", "p2").rc == 3
    conn = sqlite3.connect(mad_package / DEFAULT_NAME)
    run = conn.execute("SELECT host, target, package_dir, command, started_at, finished_at FROM runs WHERE run_id='p1'")
    host, target, package_dir, command, started, finished = run.fetchone()
    assert target == "local" and package_dir == str(mad_package) and command.startswith("__main__.py run")
    assert host and started <= finished
    digest, image, log, perf = conn.execute(
        "SELECT image_digest, docker_image, log_path, performance FROM rows WHERE run_id='p1'"
    ).fetchone()
    assert image == "ci-dummy_perf_dummy.ubuntu.cpu" and log.endswith(".run.live.log") and perf >= 100
    history = json.loads(madengine(mad_package, "history", "--json").stdout)
    assert [(r["run_id"], r["success"], r["failure"]) for r in history] == [("p2", 0, 1), ("p1", 1, 0)]
    samples = json.loads(madengine(mad_package, "history", "--model", "dummy_perf", "--json").stdout)
    assert [s["run_id"] for s in samples] == ["p1"]
    disabled = madengine(mad_package, "run", "--tags", "dummy_perf", "--run-id", "p3", "--results-db", "none")
    assert disabled.rc == 0
    assert [r["run_id"] for r in json.loads(madengine(mad_package, "history", "--json").stdout)] == ["p2", "p1"]


def test_compare_and_history_input_errors_are_one_line(mad_package: Path, tmp_path: Path) -> None:
    missing_store = madengine(mad_package, "history")
    assert missing_store.rc == 4 and "no such store" in missing_store.stderr
    unknown = madengine(mad_package, "compare", "nosuch.csv", "other")
    assert unknown.rc == 4 and "RUN_A nosuch.csv: no such file" in unknown.stderr
    bad_directions = tmp_path / "d.yaml"
    bad_directions.write_text("metrics:\n  ms: sideways\n")
    result = madengine(mad_package, "compare", "a", "b", "--directions", str(bad_directions))
    assert result.rc == 4 and "metrics.ms" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_report_draws_the_stores_trend_and_the_baselines_band_and_verdicts(mad_package: Path) -> None:
    for run_id, extra in (("t1", ()), ("t2", ()), ("t3", ("-c", SLOWER))):
        assert madengine(mad_package, "run", "--tags", "dummy_perf", "--run-id", run_id, *extra).rc == 0
    made = madengine(mad_package, "report", "to-html", "--csv-file-path", "perf.csv", "--baseline", "t1")
    assert made.rc == 0, made.output
    page = (mad_package / "perf.html").read_text()
    assert "Trends over runs" in page and "baseline-band" in page
    assert page.count('<td class="REGRESSED">REGRESSED</td>') == 1 and '<td class="UNCHANGED">' in page
    assert "wrote perf.html" in made.stdout and "REGRESSED" in made.stdout
    plain = madengine(mad_package, "report", "to-html", "--csv-file-path", "perf.csv", "--results-db", "none")
    assert plain.rc == 0, plain.output
    page = (mad_package / "perf.html").read_text()
    assert "Trends over runs" not in page and "baseline-band" not in page and '<td class="REGRESSED">' not in page
    bad = madengine(mad_package, "report", "to-html", "--csv-file-path", "perf.csv", "--baseline", "nosuchrun")
    assert bad.rc == 4 and "--baseline nosuchrun" in bad.stderr, bad.output
