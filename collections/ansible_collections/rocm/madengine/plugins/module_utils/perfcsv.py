"""perf.csv: the one definition of its columns, and appending rows safely."""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import tempfile
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

# The 29 columns of the original, first and in this order.
PERF_COLUMNS = (
    "model",
    "n_gpus",
    "nnodes",
    "gpus_per_node",
    "training_precision",
    "pipeline",
    "args",
    "tags",
    "docker_file",
    "base_docker",
    "docker_sha",
    "docker_image",
    "git_commit",
    "machine_name",
    "deployment_type",
    "launcher",
    "gpu_architecture",
    "performance",
    "metric",
    "relative_change",
    "status",
    "build_duration",
    "test_duration",
    "dataname",
    "data_provider_type",
    "data_size",
    "data_download_duration",
    "build_number",
    "additional_docker_run_options",
)
# Ours, after them: why a row failed, the script's exit code, what exactly ran, and which session.
EXTRA_COLUMNS = ("failure_reason", "exit_code", "image_digest", "run_id")
ALL_COLUMNS = PERF_COLUMNS + EXTRA_COLUMNS

STATUS_SUCCESS, STATUS_FAILURE, STATUS_SKIPPED = "SUCCESS", "FAILURE", "SKIPPED"


def read_header(path: str) -> List[str]:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        first = next(csv.reader(handle), [])
    return [name.strip() for name in first]


def read_rows(path: str) -> List[Dict[str, str]]:
    """All rows keyed by stripped header names (legacy ', ' headers included)."""
    if not os.path.isfile(path):
        return []
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = [name.strip() for name in next(reader, [])]
        return [dict(zip(header, values)) for values in reader]


def _merged_header(existing: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> List[str]:
    header = list(ALL_COLUMNS) + [c for c in existing if c not in ALL_COLUMNS]
    for row in rows:
        header.extend(key for key in row if key not in header)
    return header


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _open_locked(path: str) -> Any:
    """Open `path` for appending with an exclusive lock, on the file that is at `path` once locked (a header
    migration replaces the file while others wait)."""
    while True:
        handle = open(path, "a+", newline="", encoding="utf-8")
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            if os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino:
                return handle
        except FileNotFoundError:
            pass
        handle.close()


def append_rows(path: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """Append rows under an exclusive lock. Existing rows are never rewritten, except once to migrate a header
    that lacks columns (e.g. a legacy 24-column file): then every value is kept exactly as written, and the new
    file replaces the old one atomically."""
    if not rows:
        return
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle = _open_locked(path)
    try:
        handle.seek(0)
        text = handle.read().lstrip("\ufeff")
        records = list(csv.reader(io.StringIO(text))) if text else []
        existing = [name.strip() for name in records[0]] if records else []
        header = _merged_header(existing, rows)
        if records and header == existing:
            if not text.endswith("\n"):
                handle.write("\n")
            _write(handle, None, header, rows)
            handle.flush()
            os.fsync(handle.fileno())
            return
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".perf-", suffix=".csv")
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as out:
            old_rows = [dict(zip(existing, values)) for values in records[1:]]
            _write(out, header, header, old_rows, raw=True)
            _write(out, None, header, rows)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def _write(
    handle: Any, header: Optional[List[str]], columns: List[str], rows: Iterable[Mapping[str, Any]], raw: bool = False
) -> None:
    writer = csv.writer(handle, lineterminator="\n")
    if header is not None:
        writer.writerow(header)
    for row in rows:
        writer.writerow([row.get(col, "") if raw else _cell(row.get(col)) for col in columns])


def write_rows(path: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """Write a fresh CSV of these rows (perf_entry.csv): our columns first, then any others."""
    header = _merged_header([], rows)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow([_cell(row.get(col)) for col in header])
