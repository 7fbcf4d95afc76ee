"""perf_super files (spec 8.5): --config resolution and loading, multiple-results matching, the four files,
concurrent writers."""

from __future__ import annotations

import csv
import json
import multiprocessing
from pathlib import Path
from typing import List

import pytest

from ansible_collections.rocm.madengine.plugins.module_utils import perf_super

BASE = ["model", "args", "performance", "metric", "status", "test_duration", "run_id"]


def package(tmp_path: Path) -> Path:
    root = tmp_path / "pkg"
    (root / "scripts" / "bench" / "sub").mkdir(parents=True)
    (root / "scripts" / "bench" / "sub" / "run.sh").write_text("#!/bin/sh\n")
    return root


def test_config_arg_forms() -> None:
    assert perf_super.config_arg("--bs 8 --config configs/a.csv --x") == "configs/a.csv"
    assert perf_super.config_arg("--config='my file.json'") == "my file.json"
    assert perf_super.config_arg("--bs 8") == ""
    assert perf_super.config_arg("--config") == ""
    assert perf_super.config_arg("--config 'unbalanced") == "'unbalanced"


def test_resolution_order(tmp_path: Path) -> None:
    root = package(tmp_path)
    scripts = "scripts/bench/sub/run.sh"
    (root / "c.json").write_text('{"where": "root"}')
    assert perf_super.resolve_config("c.json", str(root), scripts) == str(root / "c.json")
    (root / "scripts" / "c.json").write_text('{"where": "scripts"}')
    assert perf_super.resolve_config("c.json", str(root), scripts) == str(root / "scripts" / "c.json")
    (root / "scripts" / "bench" / "c.json").write_text('{"where": "parent"}')
    assert perf_super.resolve_config("c.json", str(root), scripts) == str(root / "scripts" / "bench" / "c.json")
    (root / "scripts" / "bench" / "sub" / "c.json").write_text('{"where": "script dir"}')
    assert perf_super.resolve_config("c.json", str(root), scripts) == str(root / "scripts" / "bench" / "sub" / "c.json")
    absolute = tmp_path / "abs.json"
    absolute.write_text("{}")
    assert perf_super.resolve_config(str(absolute), str(root), scripts) == str(absolute)
    assert perf_super.resolve_config("missing.json", str(root), scripts) == ""


def test_mad_scripts_dir_is_searched(tmp_path: Path) -> None:
    root = package(tmp_path)
    (root / "scripts" / "MAD-private").mkdir()
    (root / "scripts" / "MAD-private" / "x.yaml").write_text("a: 1\n")
    found = perf_super.resolve_config("x.yaml", str(root), "scripts/bench/sub/run.sh")
    assert found == str(root / "scripts" / "MAD-private" / "x.yaml")
    assert perf_super.load_config(found) == {"a": 1}


def test_load_formats(tmp_path: Path) -> None:
    config_csv = tmp_path / "c.csv"
    config_csv.write_text("model,bs,note\nllama-7b,8,\n,,\nmistral,16,x\n")
    assert perf_super.load_config(str(config_csv)) == [
        {"model": "llama-7b", "bs": 8, "note": None},
        {"model": "mistral", "bs": 16, "note": "x"},
    ]
    (tmp_path / "c.json").write_text('[{"a": 1}]')
    assert perf_super.load_config(str(tmp_path / "c.json")) == [{"a": 1}]
    (tmp_path / "c.txt").write_text("x")
    with pytest.raises(perf_super.ConfigReadError, match="unknown format"):
        perf_super.load_config(str(tmp_path / "c.txt"))
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(perf_super.ConfigReadError, match="cannot read"):
        perf_super.load_config(str(tmp_path / "bad.json"))


def test_matching_of_multiple_results() -> None:
    configs = [
        {"model": "Llama-7B", "benchmark": "throughput", "bs": 1},
        {"model": "llama/7b", "benchmark": "latency", "bs": 2},
        {"model": "mistral", "bs": 3},
    ]
    assert perf_super.match_config(configs, {"model": "bench_llama_7b", "benchmark": "latency"})["bs"] == 2
    assert perf_super.match_config(configs, {"model": "bench_llama_7b", "benchmark": "throughput"})["bs"] == 1
    assert perf_super.match_config(configs, {"model": "bench_llama_7b"})["bs"] == 1
    assert perf_super.match_config(configs, {"model": "bench_mistral_v2"})["bs"] == 3
    assert perf_super.match_config(configs, {"model": "other"})["bs"] == 1  # no match: the first row
    assert perf_super.match_config([{"bs": 9}], {"model": "x"}) == [{"bs": 9}]
    assert perf_super.match_config({"k": 1}, {"model": "x"}) == {"k": 1}


def test_update_writes_the_four_files(tmp_path: Path) -> None:
    root = package(tmp_path)
    (root / "scripts" / "bench" / "cfg.csv").write_text("model,bs\nm_1,1\nm_2,2\n")
    model = {
        "name": "m",
        "args": "--config cfg.csv",
        "scripts": "scripts/bench/sub/run.sh",
        "multiple_results": "r.csv",
    }
    rows = [
        {"model": "m_1", "args": "--config cfg.csv", "performance": "10", "metric": "tps", "status": "SUCCESS",
         "temperature": "40", "empty": ""},
        {"model": "m_2", "args": "--config cfg.csv", "performance": "20", "metric": "tps", "status": "SUCCESS",
         "temperature": "41", "empty": ""},
    ]  # fmt: skip
    warnings: List[str] = []
    perf_super.update(str(root), model, rows, BASE, warnings.append)
    assert warnings == []
    entries = json.loads((root / "perf_super.json").read_text())
    assert [e["configs"] for e in entries] == [{"model": "m_1", "bs": 1}, {"model": "m_2", "bs": 2}]
    assert entries[0]["multi_results"] == {"temperature": "40"}
    assert "temperature" not in entries[0]
    single = {"name": "s", "args": "", "scripts": "scripts/bench/sub/run.sh"}
    perf_super.update(str(root), single, [{"model": "s", "performance": "1", "status": "SUCCESS"}], BASE)
    entries = json.loads((root / "perf_super.json").read_text())
    assert [e["model"] for e in entries] == ["m_1", "m_2", "s"]
    assert entries[2]["configs"] is None and entries[2]["multi_results"] is None
    assert [e["model"] for e in json.loads((root / "perf_entry_super.json").read_text())] == ["s"]
    with open(root / "perf_super.csv", newline="") as handle:
        csv_rows = list(csv.DictReader(handle))
    assert [r["model"] for r in csv_rows] == ["m_1", "m_2", "s"]
    assert json.loads(csv_rows[0]["configs"]) == {"model": "m_1", "bs": 1}
    assert json.loads(csv_rows[1]["multi_results"]) == {"temperature": "41"}
    assert csv_rows[2]["configs"] == ""
    with open(root / "perf_entry_super.csv", newline="") as handle:
        assert [r["model"] for r in csv.DictReader(handle)] == ["s"]


def test_unreadable_config_is_a_warning_and_rows_are_written(tmp_path: Path) -> None:
    root = package(tmp_path)
    warnings: List[str] = []
    model = {"name": "m", "args": "--config nowhere.json", "scripts": "scripts/bench/sub/run.sh"}
    perf_super.update(str(root), model, [{"model": "m", "status": "FAILURE"}], BASE, warnings.append)
    assert len(warnings) == 1 and "nowhere.json" in warnings[0]
    assert json.loads((root / "perf_super.json").read_text())[0]["configs"] is None


def test_corrupt_perf_super_is_kept_and_warned(tmp_path: Path) -> None:
    root = package(tmp_path)
    (root / "perf_super.json").write_text("[{")
    warnings: List[str] = []
    perf_super.update(str(root), {"name": "m"}, [{"model": "m"}], BASE, warnings.append)
    assert "not valid JSON" in warnings[0]
    assert (root / "perf_super.json").read_text() == "[{"


def _writer(root: str, index: int) -> None:
    for n in range(10):
        perf_super.update(root, {"name": f"m{index}"}, [{"model": f"m{index}_{n}", "status": "SUCCESS"}], BASE)


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    root = package(tmp_path)
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(root), i)) for i in range(4)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
    assert all(proc.exitcode == 0 for proc in procs)
    models = [e["model"] for e in json.loads((root / "perf_super.json").read_text())]
    assert sorted(models) == sorted(f"m{i}_{n}" for i in range(4) for n in range(10))
    with open(root / "perf_super.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 40
