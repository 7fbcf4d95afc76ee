"""perf.csv columns, appends, legacy migration and concurrency (spec 8.1, fix 15.3.28)."""

from __future__ import annotations

import csv
import errno
import multiprocessing
import os

import pytest

from ansible_collections.rocm.madengine.plugins.module_utils import perfcsv

HEADER_29 = (
    "model,n_gpus,nnodes,gpus_per_node,training_precision,pipeline,args,tags,docker_file,base_docker,docker_sha,"
    "docker_image,git_commit,machine_name,deployment_type,launcher,gpu_architecture,performance,metric,"
    "relative_change,status,build_duration,test_duration,dataname,data_provider_type,data_size,"
    "data_download_duration,build_number,additional_docker_run_options"
)
LEGACY_24 = (
    "model, n_gpus, training_precision, pipeline, args, tags, docker_file, base_docker, docker_sha, docker_image, "
    "git_commit, machine_name, gpu_architecture, performance, metric, relative_change, status, build_duration, "
    "test_duration, dataname, data_provider_type, data_size, data_download_duration, build_number"
)


def row(model="dummy", **values):
    data = {"model": model, "n_gpus": "1", "performance": "100", "metric": "samples_per_second", "status": "SUCCESS"}
    data.update(values)
    return data


def header_of(path):
    with open(path, newline="") as handle:
        return next(csv.reader(handle))


def test_the_29_columns_are_the_spec_header():
    assert ",".join(perfcsv.PERF_COLUMNS) == HEADER_29
    assert len(perfcsv.PERF_COLUMNS) == 29
    assert perfcsv.ALL_COLUMNS[:29] == perfcsv.PERF_COLUMNS
    assert not set(perfcsv.EXTRA_COLUMNS) & set(perfcsv.PERF_COLUMNS)


def test_new_file_has_the_29_columns_first_then_ours(tmp_path):
    path = tmp_path / "perf.csv"
    perfcsv.append_rows(str(path), [row()])
    header = header_of(path)
    assert ",".join(header[:29]) == HEADER_29
    assert tuple(header[29:]) == perfcsv.EXTRA_COLUMNS
    rows = perfcsv.read_rows(str(path))
    assert len(rows) == 1
    assert rows[0]["model"] == "dummy"
    assert rows[0]["performance"] == "100"
    assert rows[0]["nnodes"] == ""


def test_new_file_in_a_new_directory(tmp_path):
    path = tmp_path / "out" / "sub" / "perf.csv"
    perfcsv.append_rows(str(path), [row()])
    assert perfcsv.read_rows(str(path))[0]["model"] == "dummy"


def test_no_rows_creates_nothing(tmp_path):
    path = tmp_path / "perf.csv"
    perfcsv.append_rows(str(path), [])
    assert not path.exists()


def test_empty_existing_file_gets_a_header(tmp_path):
    path = tmp_path / "perf.csv"
    path.write_text("")
    perfcsv.append_rows(str(path), [row()])
    assert header_of(path)[0] == "model"
    assert len(perfcsv.read_rows(str(path))) == 1


def test_appending_keeps_earlier_rows_byte_identical(tmp_path):
    path = tmp_path / "perf.csv"
    perfcsv.append_rows(str(path), [row("a", args="--x 'quoted, with comma'"), row("b", performance="")])
    before = path.read_bytes()
    perfcsv.append_rows(str(path), [row("c")])
    after = path.read_bytes()
    assert after.startswith(before)
    assert after[len(before) :].count(b"\n") == 1
    assert [r["model"] for r in perfcsv.read_rows(str(path))] == ["a", "b", "c"]


def test_values_are_kept_as_written(tmp_path):
    path = tmp_path / "perf.csv"
    perfcsv.append_rows(
        str(path),
        [
            row("a", performance="123", build_duration=""),
            row("b", performance="+1.5E3", build_duration="12.30"),
            row("c", performance=7, build_duration=0.5, tags=["x", "y"], n_gpus=None),
        ],
    )
    rows = perfcsv.read_rows(str(path))
    assert [r["performance"] for r in rows] == ["123", "+1.5E3", "7"]
    assert [r["build_duration"] for r in rows] == ["", "12.30", "0.5"]
    assert rows[2]["tags"] == "x,y"
    assert rows[2]["n_gpus"] == ""
    text = path.read_text()
    assert "123.0" not in text


def test_multiline_and_comma_values_round_trip(tmp_path):
    path = tmp_path / "perf.csv"
    perfcsv.append_rows(str(path), [row("a", args='--msg "a,b"\nline2')])
    perfcsv.append_rows(str(path), [row("b")])
    rows = perfcsv.read_rows(str(path))
    assert rows[0]["args"] == '--msg "a,b"\nline2'
    assert [r["model"] for r in rows] == ["a", "b"]


def test_legacy_24_column_file_is_migrated_by_name(tmp_path):
    path = tmp_path / "perf.csv"
    legacy_values = [
        "old_model", "8", "fp16", "nightly", "--batch 4, --x", "a,b", "docker/x.Dockerfile", "rocm/pytorch",
        "sha256:1", "ci-old", "abc123", "host1", "gfx942", "123", "samples/sec", "", "SUCCESS", "10",
        "20", "data1", "local", "1GB", "3", "42",
    ]  # fmt: skip
    with open(path, "w", newline="") as handle:
        handle.write(LEGACY_24 + "\n")
        csv.writer(handle, lineterminator="\n").writerow(legacy_values)
    perfcsv.append_rows(str(path), [row("new_model", nnodes="1")])
    header = header_of(path)
    assert ",".join(header[:29]) == HEADER_29
    assert tuple(header[29:35]) == perfcsv.EXTRA_COLUMNS
    old, new = perfcsv.read_rows(str(path))
    legacy_names = [name.strip() for name in LEGACY_24.split(",")]
    assert {name: old[name] for name in legacy_names} == dict(zip(legacy_names, legacy_values))
    assert old["nnodes"] == "" and old["launcher"] == "" and old["deployment_type"] == ""
    assert new["model"] == "new_model"
    assert new["nnodes"] == "1"


def test_original_29_column_file_with_unknown_columns_keeps_them(tmp_path):
    path = tmp_path / "perf.csv"
    original = ["m0"] + [""] * 16 + ["55", "x"] + [""] * 10 + ["{'cfg': 1}", "7"]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(list(perfcsv.PERF_COLUMNS) + ["configs", "temperature"])
        writer.writerow(original)
    perfcsv.append_rows(str(path), [row("m1", temperature="30")])
    header = header_of(path)
    assert header == list(perfcsv.ALL_COLUMNS) + ["configs", "temperature"]
    old, new = perfcsv.read_rows(str(path))
    assert old["configs"] == "{'cfg': 1}"
    assert old["temperature"] == "7"
    assert old["performance"] == "55"
    assert new["configs"] == ""
    assert new["temperature"] == "30"


def test_rows_with_extra_keys_add_columns(tmp_path):
    path = tmp_path / "perf.csv"
    perfcsv.append_rows(str(path), [row("plain")])
    perfcsv.append_rows(
        str(path), [row("multi_1", temperature="20.5"), row("multi_2", test_duration="3", benchmark="b")]
    )
    header = header_of(path)
    assert header[-2:] == ["temperature", "benchmark"]
    rows = perfcsv.read_rows(str(path))
    assert [r["temperature"] for r in rows] == ["", "20.5", ""]
    assert [r["benchmark"] for r in rows] == ["", "", "b"]
    assert rows[0]["model"] == "plain"


def test_migration_leaves_no_temp_files(tmp_path):
    path = tmp_path / "perf.csv"
    perfcsv.append_rows(str(path), [row("a")])
    perfcsv.append_rows(str(path), [row("b", extra="1")])
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name not in ("perf.csv", "perf.csv.lock"))
    assert leftovers == []


def test_write_rows_fresh_file(tmp_path):
    path = tmp_path / "perf_entry.csv"
    path.write_text("garbage\n")
    perfcsv.write_rows(str(path), [row("a", temperature="1")])
    header = header_of(path)
    assert header == list(perfcsv.ALL_COLUMNS) + ["temperature"]
    assert [r["model"] for r in perfcsv.read_rows(str(path))] == ["a"]


def test_read_rows_of_missing_file(tmp_path):
    assert perfcsv.read_rows(str(tmp_path / "nope.csv")) == []


def _append_many(path, worker, count):
    for i in range(count):
        extra = {f"col_w{worker}": str(i)} if i % 5 == 0 else {}
        perfcsv.append_rows(path, [row(f"w{worker}_{i}", **extra)])


def test_concurrent_appends_lose_no_row(tmp_path):
    path = str(tmp_path / "perf.csv")
    workers, count = 4, 25
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(path, w, count)) for w in range(workers)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    rows = perfcsv.read_rows(path)
    names = sorted(r["model"] for r in rows)
    assert names == sorted(f"w{w}_{i}" for w in range(workers) for i in range(count))
    header = header_of(path)
    assert ",".join(header[:29]) == HEADER_29
    assert sorted(header[35:]) == [f"col_w{w}" for w in range(workers)]
    for r in rows:
        worker, index = r["model"][1:].split("_")
        assert r[f"col_w{worker}"] == (index if int(index) % 5 == 0 else "")


def test_file_without_trailing_newline_keeps_rows_apart(tmp_path):
    path = tmp_path / "perf.csv"
    perfcsv.append_rows(str(path), [row("a")])
    path.write_bytes(path.read_bytes().rstrip(b"\n"))  # e.g. saved by a spreadsheet
    perfcsv.append_rows(str(path), [row("b")])
    assert [r["model"] for r in perfcsv.read_rows(str(path))] == ["a", "b"]


def test_header_with_utf8_bom_is_merged_by_name(tmp_path):
    path = tmp_path / "perf.csv"
    perfcsv.append_rows(str(path), [row("a")])
    path.write_text("\ufeff" + path.read_text(encoding="utf-8"), encoding="utf-8")
    perfcsv.append_rows(str(path), [row("b")])
    assert [r["model"] for r in perfcsv.read_rows(str(path))] == ["a", "b"]
    assert perfcsv.read_header(str(path))[0] == "model"


# ---------------------------------------------------------------- all or nothing (a full or read-only file system)


def partial_writes(monkeypatch, allowed: int, error: int = errno.ENOSPC):
    """os.write as on a file system with `allowed` bytes left: a short write, then the error."""
    real_write = os.write
    left = {"bytes": allowed}

    def write(fd, data):
        if left["bytes"] <= 0:
            raise OSError(error, os.strerror(error))
        written = real_write(fd, bytes(data[: left["bytes"]]))
        left["bytes"] -= written
        return written

    monkeypatch.setattr(perfcsv.os, "write", write)


def test_a_full_file_system_leaves_the_file_byte_identical(tmp_path, monkeypatch):
    path = tmp_path / "perf.csv"
    perfcsv.append_rows(str(path), [row("a"), row("b")])
    before = path.read_bytes()
    partial_writes(monkeypatch, allowed=25)
    with pytest.raises(perfcsv.ResultsWriteError) as caught:
        perfcsv.append_rows(str(path), [row("c"), row("d")])
    assert path.read_bytes() == before
    message = caught.value.one_line()
    assert "\n" not in message
    assert str(path) in message and "2 row(s)" in message
    assert "No space left on device (ENOSPC)" in message and "left as it was" in message
    assert "free space" in message
    assert caught.value.exit_code == 1
    monkeypatch.undo()
    perfcsv.append_rows(str(path), [row("e")])  # once there is room again, appending works
    assert [r["model"] for r in perfcsv.read_rows(str(path))] == ["a", "b", "e"]


def test_a_failing_fsync_also_cuts_the_rows_off(tmp_path, monkeypatch):
    path = tmp_path / "perf.csv"
    perfcsv.append_rows(str(path), [row("a")])
    before = path.read_bytes()

    def fsync(_fd):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(perfcsv.os, "fsync", fsync)
    with pytest.raises(perfcsv.ResultsWriteError, match=r"Input/output error \(EIO\)"):
        perfcsv.append_rows(str(path), [row("b")])
    assert path.read_bytes() == before


def test_a_failing_header_migration_keeps_the_old_file_and_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "perf.csv"
    perfcsv.append_rows(str(path), [row("a")])
    before = path.read_bytes()
    partial_writes(monkeypatch, allowed=100)
    with pytest.raises(perfcsv.ResultsWriteError, match="No space left on device"):
        perfcsv.append_rows(str(path), [row("b", new_column="1")])  # a new column: the file is rewritten
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["perf.csv"]


def test_a_new_file_that_cannot_be_written_is_not_left_behind(tmp_path, monkeypatch):
    path = tmp_path / "perf.csv"
    partial_writes(monkeypatch, allowed=0)
    with pytest.raises(perfcsv.ResultsWriteError, match="No space left on device"):
        perfcsv.append_rows(str(path), [row("a")])
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_cannot_be_opened_is_one_line_naming_it(tmp_path, monkeypatch):
    path = tmp_path / "perf.csv"

    def refuse(*_args, **_kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    monkeypatch.setattr(perfcsv, "open", refuse, raising=False)
    with pytest.raises(perfcsv.ResultsWriteError) as caught:
        perfcsv.append_rows(str(path), [row("a")])
    assert f"cannot append 1 row(s) to {path}: Read-only file system (EROFS)" in caught.value.one_line()


def test_a_file_that_is_not_utf8_is_refused_and_kept(tmp_path):
    path = tmp_path / "perf.csv"
    path.write_bytes(b"model,status\n\xff\xfe,SUCCESS\n")
    with pytest.raises(perfcsv.ResultsWriteError, match="can't decode"):
        perfcsv.append_rows(str(path), [row("a")])
    assert path.read_bytes() == b"model,status\n\xff\xfe,SUCCESS\n"


def test_write_rows_replaces_the_file_atomically(tmp_path, monkeypatch):
    path = tmp_path / "perf_entry.csv"
    perfcsv.write_rows(str(path), [row("old")])
    before = path.read_bytes()
    inode = path.stat().st_ino
    partial_writes(monkeypatch, allowed=30)
    with pytest.raises(perfcsv.ResultsWriteError) as caught:
        perfcsv.write_rows(str(path), [row("new")])
    assert f"cannot write 1 row(s) to {path}: No space left on device" in caught.value.one_line()
    assert path.read_bytes() == before and path.stat().st_ino == inode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["perf_entry.csv"]
    monkeypatch.undo()
    perfcsv.write_rows(str(path), [row("new")])
    assert path.stat().st_ino != inode  # a new file took its place: readers never see half of one
    assert [r["model"] for r in perfcsv.read_rows(str(path))] == ["new"]
    assert path.stat().st_mode & 0o777 == 0o644


def test_check_writable_accepts_a_writable_file_or_directory(tmp_path):
    perfcsv.check_writable(str(tmp_path / "perf.csv"))
    perfcsv.check_writable(str(tmp_path / "not" / "yet" / "perf.csv"))
    assert list(tmp_path.iterdir()) == []  # checking creates nothing


def test_check_writable_names_the_read_only_file_system(tmp_path, monkeypatch):
    class ReadOnly:
        f_flag = os.ST_RDONLY

    monkeypatch.setattr(perfcsv.os, "access", lambda *_args: False)
    monkeypatch.setattr(perfcsv.os, "statvfs", lambda _path: ReadOnly())
    with pytest.raises(perfcsv.ResultsWriteError) as caught:
        perfcsv.check_writable(str(tmp_path / "out" / "perf.csv"))
    message = caught.value.one_line()
    assert f"cannot write rows to {tmp_path / 'out' / 'perf.csv'}: Read-only file system (EROFS)" in message
    assert f"({tmp_path} is not writable)" in message
