"""Directions, tolerances, matching and verdicts."""

from __future__ import annotations

import json

import pytest

from ansible_collections.rocm.madengine.plugins.module_utils import compare, result_sources, results_store
from ansible_collections.rocm.madengine.plugins.module_utils.directions import (
    Directions,
    default_direction,
    load_directions,
    parse_tolerance,
)
from ansible_collections.rocm.madengine.plugins.module_utils.errors import ConfigError


def row(model="m", perf="100", metric="samples_per_second", machine="h1", status="SUCCESS", run_id="r", **extra):
    return {"model": model, "performance": perf, "metric": metric, "machine_name": machine, "status": status,
            "run_id": run_id, **extra}  # fmt: skip


@pytest.mark.parametrize(
    "metric",
    ["ms", "s", "sec", "seconds", "ms/iter", "sec_per_batch", "ttft_ms", "tpot", "itl", "latency_p99", "time",
     "step_time", "duration", "us_per_token", "Time To First Token"],
)  # fmt: skip
def test_times_are_lower_is_better(metric) -> None:
    assert default_direction(metric) == "lower"


@pytest.mark.parametrize(
    "metric",
    ["samples_per_second", "samples/s", "tokens/s", "it/s", "TFLOPS", "GB/s", "images_per_sec", "throughput",
     "tokens per second", "qps", ""],
)  # fmt: skip
def test_rates_are_higher_is_better(metric) -> None:
    assert default_direction(metric) == "higher"


def test_override_file_yaml_and_json(tmp_path) -> None:
    yml = tmp_path / "d.yaml"
    yml.write_text("metrics:\n  score: lower\nmodels:\n  m1:\n    score: higher\n")
    d = load_directions(str(yml))
    assert d.of("m1", "score") == "higher" and d.of("m2", "score") == "lower" and d.of("m2", "ms") == "lower"
    js = tmp_path / "d.json"
    js.write_text(json.dumps({"metrics": {"ms": "higher"}}))
    assert load_directions(str(js)).of("x", "ms") == "higher"


@pytest.mark.parametrize(
    "text,needle",
    [
        ("metric:\n  a: lower\n", "unknown key 'metric'"),
        ("metrics:\n  a: faster\n", "metrics.a"),
        ("models:\n  m1:\n    a: up\n", "models.m1.a"),
        ("models:\n  - a\n", "models must be a mapping"),
    ],
)
def test_bad_override_files_name_the_file_and_key(tmp_path, text, needle) -> None:
    path = tmp_path / "d.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_directions(str(path))
    assert str(path) in err.value.msg and needle in err.value.msg


def test_missing_directions_file() -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_directions("/nonexistent/d.yaml")


@pytest.mark.parametrize("text,value", [("5%", 5.0), ("5", 5.0), ("0.05", 5.0), ("0", 0.0), (" 12.5 % ", 12.5)])
def test_tolerance_forms(text, value) -> None:
    assert parse_tolerance(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["-1", "-5%", "abc", "nan", ""])
def test_bad_tolerances(text) -> None:
    with pytest.raises(ConfigError, match="--tolerance"):
        parse_tolerance(text)


def test_relative_change() -> None:
    assert compare.relative_change(100, 87.654) == -12.35
    assert compare.relative_change(-50, -25) == 50.0
    assert compare.relative_change(0, 3) is None
    assert compare.format_change(-12.3) == "-12.30"


def test_verdicts_single_samples_and_tolerance() -> None:
    base = [row("up", "100"), row("down", "100"), row("same", "100"), row("lat", "10", metric="ms"), row("gone")]
    new = [row("up", "110"), row("down", "90"), row("same", "104"), row("lat", "12", metric="ms"), row("fresh")]
    result = compare.compare_rows(base, new, tolerance=5)
    verdicts = {e.model: e.verdict for e in result.entries}
    assert verdicts == {"up": "IMPROVED", "down": "REGRESSED", "same": "UNCHANGED", "lat": "REGRESSED",
                        "gone": "MISSING", "fresh": "NEW"}  # fmt: skip
    lat = next(e for e in result.entries if e.model == "lat")
    assert lat.direction == "lower" and lat.relative_change == 20.0
    assert result.regressed and result.counts()["REGRESSED"] == 2


def test_failure_rows_make_their_key_missing() -> None:
    result = compare.compare_rows([row("m", "100")], [row("m", "", status="FAILURE")])
    assert [e.verdict for e in result.entries] == ["MISSING"]


def test_matching_falls_back_to_the_only_machine() -> None:
    result = compare.compare_rows([row(machine="old-host", perf="100")], [row(machine="new-host", perf="50")])
    (entry,) = result.entries
    assert entry.verdict == "REGRESSED" and entry.baseline_machine == "old-host"
    two = compare.compare_rows([row(machine="a"), row(machine="b")], [row(machine="c")])
    assert sorted(e.verdict for e in two.entries) == ["MISSING", "MISSING", "NEW"]


def test_repeats_need_significance() -> None:
    base = [row(perf=str(v)) for v in (100, 101, 99, 100.5, 100.2)]
    slower = [row(perf=str(v)) for v in (80, 81, 79, 80.5, 80.2)]
    entry = compare.compare_rows(base, slower).entries[0]
    assert entry.verdict == "REGRESSED" and entry.significant is True and entry.p_value == pytest.approx(2 / 252)
    assert entry.baseline is not None and entry.baseline.n == 5
    noisy = [row(perf=str(v)) for v in (60, 140, 85, 70, 130)]
    noisy_base = [row(perf=str(v)) for v in (100, 150, 50, 120, 80)]
    entry = compare.compare_rows(noisy_base, noisy).entries[0]
    assert abs(entry.relative_change or 0) > 5
    assert entry.verdict == "UNCHANGED" and entry.significant is False and "not significant" in entry.note


def test_directions_override_changes_the_verdict() -> None:
    d = Directions(models={"m": {"samples_per_second": "lower"}})
    assert compare.compare_rows([row(perf="100")], [row(perf="50")], directions=d).entries[0].verdict == "IMPROVED"


def test_baseline_annotates_rows() -> None:
    baseline = compare.Baseline("b", [row("a", "100"), row("b", "100")], tolerance=5)
    rows = [row("a", "80"), row("b", "", status="FAILURE"), row("c", "5")]
    baseline.annotate(rows)
    assert [(r["relative_change"], r["verdict"]) for r in rows] == [("-20.00", "REGRESSED"), ("", ""), ("", "NEW")]


def test_gate_exit_code() -> None:
    regressed = compare.compare_rows([row(perf="100")], [row(perf="50")])
    assert compare.gate_exit_code(0, regressed, True) == 5
    assert compare.gate_exit_code(0, regressed, False) == 0
    assert compare.gate_exit_code(3, regressed, True) == 3
    assert compare.gate_exit_code(0, compare.compare_rows([row()], [row()]), True) == 0


def test_load_rows_from_perf_csv_store_and_errors(tmp_path) -> None:
    from ansible_collections.rocm.madengine.plugins.module_utils import perfcsv

    csv_path = tmp_path / "perf.csv"
    perfcsv.append_rows(str(csv_path), [row(run_id="old", perf="1"), row(run_id="new", perf="2")])
    label, rows = result_sources.load_rows(str(csv_path), None)
    assert label == f"new@{csv_path}" and [r["performance"] for r in rows] == ["2"]
    label, rows = result_sources.load_rows(f"old@{csv_path}", None)
    assert [r["performance"] for r in rows] == ["1"]
    db = str(tmp_path / "s.sqlite")
    results_store.record_run(db, results_store.RunInfo("run1"), [row(run_id="run1", perf="7")])
    assert result_sources.load_rows("run1", db)[1][0]["performance"] == "7"
    for spec, needle in (("nosuch", "no run nosuch"), (f"zzz@{csv_path}", "no rows of run zzz"),
                         ("missing.csv", "no such file")):  # fmt: skip
        with pytest.raises(ConfigError, match=needle):
            result_sources.load_rows(spec, db)
    with pytest.raises(ConfigError, match="no results store"):
        result_sources.load_rows("run1", None)


def test_sample_stats_per_key() -> None:
    stats = compare.sample_stats([row(perf="1"), row(perf="3"), row(perf="2"), row("x", "", status="FAILURE")])
    ((key, s),) = stats
    assert key == ("m", "samples_per_second", "h1") and (s.n, s.median, s.min, s.max) == (3, 2.0, 1.0, 3.0)
