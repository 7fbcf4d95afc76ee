"""The SQLite results store: schema, dedupe, provenance, concurrent writers, history and trends."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3

import pytest

from ansible_collections.rocm.madengine.plugins.module_utils import provenance, results_store
from ansible_collections.rocm.madengine.plugins.module_utils.errors import ConfigError
from ansible_collections.rocm.madengine.plugins.module_utils.reporting import Reporter


def row(model="m", perf="100", run_id="r1", machine="h1", status="SUCCESS", **extra):
    return {"model": model, "performance": perf, "metric": "samples_per_second", "machine_name": machine,
            "status": status, "run_id": run_id, "args": "", "repeat": "", **extra}  # fmt: skip


def info(run_id="r1", **kw):
    return results_store.RunInfo(run_id, target="local", host="ctl", **kw)


def test_schema_version_wal_and_columns(tmp_path) -> None:
    db = str(tmp_path / "s.sqlite")
    results_store.record_run(db, info(), [row()])
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == results_store.SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    columns = {r[1] for r in conn.execute("PRAGMA table_info(rows)")}
    assert {"run_id", "model", "performance", "repeat", "image_digest", "log_path", "row_json"} <= columns
    conn.close()


def test_newer_schema_is_refused(tmp_path) -> None:
    db = str(tmp_path / "s.sqlite")
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(ConfigError, match="schema version 99"):
        results_store.record_run(db, info(), [row()])


def test_recording_the_same_rows_twice_adds_nothing(tmp_path) -> None:
    db = str(tmp_path / "s.sqlite")
    rows = [row(), row("m2", "5"), row("m3", "", status="FAILURE", failure_reason="EXIT_CODE")]
    assert results_store.record_run(db, info(), rows) == 3
    assert results_store.record_run(db, info(), [dict(r) for r in rows]) == 0
    assert results_store.record_run(db, info(), [row("m", "101")]) == 1
    assert len(results_store.rows_of_run(db, "r1")) == 4
    (run,) = results_store.runs(db)
    assert (run["success"], run["failure"], run["models"]) == (3, 1, ["m", "m2", "m3"])


def test_provenance_is_kept_and_secrets_redacted(tmp_path) -> None:
    db = str(tmp_path / "s.sqlite")
    ctx = {"docker_env_vars": {"HF_TOKEN": "s3cr3t", "X": "1"}, "registry_password": "pw"}
    results_store.record_run(db, info(context=ctx, git_commit="abc", command="madengine run"), [row()], ["m.log"])
    text = open(db, "rb").read() + b"".join(p.read_bytes() for p in tmp_path.glob("s.sqlite-*"))
    assert b"s3cr3t" not in text and b'"pw"' not in text
    (run,) = results_store.runs(db)
    assert run["context"]["docker_env_vars"] == {"HF_TOKEN": "<redacted>", "X": "1"}
    assert (run["git_commit"], run["command"], run["host"], run["target"]) == ("abc", "madengine run", "ctl", "local")
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT log_path, performance FROM rows").fetchone() == ("m.log", 100.0)


def _writer(db: str, worker: int, runs: int) -> None:
    for i in range(runs):
        run_id = f"w{worker}-{i}"
        results_store.record_run(db, info(run_id), [row(f"m{j}", str(j), run_id) for j in range(5)])


def test_concurrent_writer_processes_lose_nothing(tmp_path) -> None:
    db = str(tmp_path / "s.sqlite")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(db, w, 10)) for w in range(6)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    assert len(results_store.runs(db, limit=1000)) == 60
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM rows").fetchone()[0] == 300


def test_history_newest_first_and_model_samples(tmp_path) -> None:
    db = str(tmp_path / "s.sqlite")
    for i, stamp in enumerate(("2026-01-01T00:00:00Z", "2026-01-03T00:00:00Z", "2026-01-02T00:00:00Z")):
        results_store.record_run(
            db, info(f"r{i}", finished_at=stamp), [row("m", str(i), f"r{i}"), row("o", "1", f"r{i}")]
        )
    assert [r["run_id"] for r in results_store.runs(db)] == ["r1", "r2", "r0"]
    assert [r["run_id"] for r in results_store.runs(db, limit=1)] == ["r1"]
    samples = results_store.model_samples(db, "m", limit=2)
    assert [(s["run_id"], s["performance"]) for s in samples] == [("r1", 1.0), ("r2", 2.0)]
    trend = results_store.trend_rows(db, [("m", "samples_per_second", None)])
    assert [t["run_id"] for t in trend] == ["r0", "r2", "r1"]
    assert results_store.trend_rows(db, [("m", "samples_per_second", "other-host")]) == []
    assert len(results_store.trend_rows(db)) == 6
    assert results_store.trend_rows(str(tmp_path / "none.sqlite"), None) == []


def test_history_of_a_missing_store_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="no such store"):
        results_store.runs(str(tmp_path / "nope.sqlite"))


def test_resolve_path(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(results_store.ENV_VAR, raising=False)
    perf = str(tmp_path / "out" / "perf.csv")
    assert results_store.resolve_path(None, perf) == str(tmp_path / "out" / results_store.DEFAULT_NAME)
    monkeypatch.setenv(results_store.ENV_VAR, str(tmp_path / "env.sqlite"))
    assert results_store.resolve_path(None, perf) == str(tmp_path / "env.sqlite")
    assert results_store.resolve_path(str(tmp_path / "opt.sqlite"), perf) == str(tmp_path / "opt.sqlite")
    assert results_store.resolve_path("none", perf) is None
    monkeypatch.setenv(results_store.ENV_VAR, "NONE")
    assert results_store.resolve_path(None, perf) is None


class Collect(Reporter):
    def __init__(self) -> None:
        self.warnings: list = []

    def warn(self, message: str) -> None:
        self.warnings.append(message)


def test_a_store_failure_is_a_warning(tmp_path) -> None:
    reporter = Collect()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    added = provenance.record(
        str(blocker / "s.sqlite"), "r1", [row()], reporter, target="local", package_dir=str(tmp_path),
        context={}, started_at="",
    )  # fmt: skip
    assert added == 0 and len(reporter.warnings) == 1 and "not recorded" in reporter.warnings[0]


def test_command_line_hides_the_context() -> None:
    argv = ["/x/madengine", "run", "-c", '{"a": "secret"}', "--additional-context={}", "-t", "m"]
    assert provenance.command_line(argv) == "madengine run -c <context> --additional-context=<context> -t m"


def test_row_json_keeps_the_full_row(tmp_path) -> None:
    db = str(tmp_path / "s.sqlite")
    results_store.record_run(db, info(), [row(extra_col="x")])
    assert results_store.rows_of_run(db, "r1")[0]["extra_col"] == "x"
    conn = sqlite3.connect(db)
    assert json.loads(conn.execute("SELECT row_json FROM rows").fetchone()[0])["model"] == "m"
