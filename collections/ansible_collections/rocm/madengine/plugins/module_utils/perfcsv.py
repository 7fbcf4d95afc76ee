"""perf.csv: the one definition of its columns, and appending rows safely."""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
from typing import Any, Dict, Iterable, List, Mapping, Sequence

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
    with open(path, newline="", encoding="utf-8") as handle:
        first = next(csv.reader(handle), [])
    return [name.strip() for name in first]


def read_rows(path: str) -> List[Dict[str, str]]:
    """All rows keyed by stripped header names (legacy ', ' headers included)."""
    if not os.path.isfile(path):
        return []
    with open(path, newline="", encoding="utf-8") as handle:
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


def append_rows(path: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """Append rows under an exclusive lock on the file itself. Existing rows are never rewritten, except
    once to migrate a header that lacks columns (e.g. a legacy 24-column file): then every value is kept
    exactly as written."""
    if not rows:
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "a+", newline="", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            handle.seek(0)
            text = handle.read()
            existing = [name.strip() for name in next(csv.reader(io.StringIO(text)), [])] if text else []
            header = _merged_header(existing, rows)
            writer = csv.writer(handle, lineterminator="\n")
            if text and header != existing:
                old_rows = [dict(zip(existing, values)) for values in list(csv.reader(io.StringIO(text)))[1:]]
                handle.seek(0)
                handle.truncate()
                writer.writerow(header)
                for old in old_rows:
                    writer.writerow([old.get(col, "") for col in header])
            elif not text:
                writer.writerow(header)
            elif not text.endswith("\n"):
                handle.write("\n")
            for row in rows:
                writer.writerow([_cell(row.get(col)) for col in header])
            handle.flush()
            os.fsync(handle.fileno())
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_rows(path: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """Write a fresh CSV of these rows (perf_entry.csv): our columns first, then any others."""
    header = _merged_header([], rows)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow([_cell(row.get(col)) for col in header])
