"""workflow.execute and the results: a remote target's rows get verdicts before perf.csv, every run is recorded
in the store, --repeat is refused where it cannot run."""

from __future__ import annotations

import json

import pytest

from ansible_collections.rocm.madengine.plugins.module_utils import (
    compare,
    deployment,
    perfcsv,
    results_store,
    workflow,
)
from ansible_collections.rocm.madengine.plugins.module_utils.errors import ConfigError
from ansible_collections.rocm.madengine.plugins.module_utils.run import RunOptions


def row(model, perf, run_id="now"):
    return {"model": model, "performance": perf, "metric": "samples_per_second", "machine_name": "node1",
            "status": "SUCCESS" if perf else "FAILURE", "run_id": run_id}  # fmt: skip


class FakeRemote(deployment.Target):
    name = "slurm"

    def prepare(self) -> None: ...

    def submit(self) -> None: ...

    def wait(self) -> None: ...

    def collect(self) -> None: ...

    def cancel(self, reason: str) -> None: ...

    def rows(self):
        return [row("a", "80"), row("b", "")]


@pytest.fixture
def remote(tmp_path, monkeypatch):
    (tmp_path / "build_manifest.json").write_text(json.dumps({"built_images": {}, "built_models": {}}))
    monkeypatch.setattr(deployment, "target_class", lambda name: FakeRemote)
    monkeypatch.delenv(results_store.ENV_VAR, raising=False)
    return tmp_path


def test_remote_rows_get_verdicts_and_are_recorded(remote) -> None:
    baseline = compare.Baseline("b", [row("a", "100", "old"), row("b", "100", "old")], tolerance=5)
    options = RunOptions(context={"slurm": {}}, baseline=baseline, run_id="now")
    result = workflow.execute(str(remote), options, "build_manifest.json")
    written = perfcsv.read_rows(str(remote / "perf.csv"))
    assert [(r["model"], r["relative_change"], r["verdict"]) for r in written] == [("a", "-20.00", "REGRESSED"),
                                                                                    ("b", "", "")]  # fmt: skip
    (run,) = results_store.runs(str(remote / results_store.DEFAULT_NAME))
    assert (run["run_id"], run["target"], run["success"], run["failure"]) == ("now", "slurm", 1, 1)
    assert baseline.compare(workflow.session_rows(result)).counts()["MISSING"] == 1


def test_a_disabled_store_records_nothing(remote) -> None:
    workflow.execute(str(remote), RunOptions(context={"slurm": {}}, results_db="none"), "build_manifest.json")
    assert (remote / "perf.csv").is_file() and not (remote / results_store.DEFAULT_NAME).exists()


def test_repeat_is_refused_on_slurm_and_kubernetes() -> None:
    for target in ("slurm", "kubernetes"):
        with pytest.raises(ConfigError, match=f"--repeat 3: not supported on the {target} target"):
            workflow.check_repeat(3, target)
    with pytest.raises(ConfigError, match="--repeat 0"):
        workflow.check_repeat(0, "local")
    workflow.check_repeat(3, "local")
    workflow.check_repeat(1, "slurm")
