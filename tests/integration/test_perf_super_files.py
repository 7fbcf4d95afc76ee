"""perf_super files after real runs (Docker) of the fixture package: configs from --config, multiple results
matched to config rows, cumulative across runs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from clirun import madengine

pytestmark = pytest.mark.integration


def add_config_model(package: Path) -> None:
    models = json.loads((package / "models.json").read_text())
    models.append(
        {
            "name": "dummy_cfg",
            "dockerfile": "docker/dummy",
            "scripts": "scripts/dummy/run_multi.sh",
            "n_gpus": "1",
            "tags": ["cfg"],
            "args": "--config configs/dummy.csv",
            "multiple_results": "perf_dummy.csv",
        }
    )
    (package / "models.json").write_text(json.dumps(models, indent=2))
    (package / "scripts" / "dummy" / "configs").mkdir()
    (package / "scripts" / "dummy" / "configs" / "dummy.csv").write_text(
        "model,batch_size,note\ncfg_1,8,\ncfg_2,16,two\n,,\ncfg_3,32,\n"
    )


def test_perf_super_files_of_real_runs(mad_package: Path, infra) -> None:
    add_config_model(mad_package)
    first = madengine(mad_package, "run", "--tags", "cfg", "--run-id", "s1")
    assert first.rc == 0, first.output
    entries = json.loads((mad_package / "perf_super.json").read_text())
    assert [e["model"] for e in entries] == [f"dummy_cfg_{i}" for i in range(1, 5)]
    by_model = {e["model"]: e for e in entries}
    assert by_model["dummy_cfg_2"]["configs"] == {"model": "cfg_2", "batch_size": 16, "note": "two"}
    assert by_model["dummy_cfg_3"]["configs"]["batch_size"] == 32
    assert by_model["dummy_cfg_4"]["configs"]["model"] == "cfg_1"  # no row matches: the first
    assert set(by_model["dummy_cfg_1"]["multi_results"]) == {"temperature"}
    assert "temperature" not in by_model["dummy_cfg_1"]
    assert all(e["run_id"] == "s1" and e["status"] == "SUCCESS" for e in entries)

    second = madengine(mad_package, "run", "--tags", "dummy_exit", "--run-id", "s2")
    assert second.rc == 3, second.output
    entries = json.loads((mad_package / "perf_super.json").read_text())
    assert len(entries) == 5 and entries[-1]["model"] == "dummy_exit"
    assert entries[-1]["configs"] is None and entries[-1]["multi_results"] is None
    assert entries[-1]["status"] == "FAILURE"
    latest = json.loads((mad_package / "perf_entry_super.json").read_text())
    assert [e["model"] for e in latest] == ["dummy_exit"]
    with open(mad_package / "perf_super.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 5 and json.loads(rows[1]["configs"])["batch_size"] == 16
    assert (
        json.loads(rows[0]["multi_results"])["temperature"] == by_model["dummy_cfg_1"]["multi_results"]["temperature"]
    )


def test_missing_config_warns_and_rows_are_written(mad_package: Path, infra) -> None:
    add_config_model(mad_package)
    (mad_package / "scripts" / "dummy" / "configs" / "dummy.csv").unlink()
    result = madengine(mad_package, "run", "--tags", "cfg")
    assert result.rc == 0, result.output
    assert "configs/dummy.csv of model dummy_cfg: file not found" in result.stderr
    entries = json.loads((mad_package / "perf_super.json").read_text())
    assert len(entries) == 4 and all(e["configs"] is None for e in entries)


def test_cleanup_perf_removes_the_entry_files_and_keeps_the_cumulative_ones(mad_package: Path, infra) -> None:
    result = madengine(mad_package, "run", "--tags", "dummy", "--cleanup-perf")
    assert result.rc == 0, result.output
    for name in ("perf_entry.json", "perf_entry.csv", "perf_entry_super.json", "perf_entry_super.csv"):
        assert not (mad_package / name).exists(), name
    assert json.loads((mad_package / "perf_super.json").read_text())[0]["model"] == "dummy"
    assert (mad_package / "perf.csv").is_file()
