"""perf.csv: the one definition of its columns, and appending rows safely."""

from __future__ import annotations

import contextlib
import csv
import errno
import fcntl
import io
import json
import os
import tempfile
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

from . import atomic
from .errors import ResultsWriteError

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
# Ours, after them: why a row failed, the script's exit code, what exactly ran, which session, which repeat
# (1..N with --repeat N, else empty) and the verdict against a baseline (IMPROVED, REGRESSED, ... or empty).
EXTRA_COLUMNS = ("failure_reason", "exit_code", "image_digest", "run_id", "repeat", "verdict")
ALL_COLUMNS = PERF_COLUMNS + EXTRA_COLUMNS

STATUS_SUCCESS, STATUS_FAILURE, STATUS_SKIPPED = "SUCCESS", "FAILURE", "SKIPPED"


def number(value: Any) -> Optional[float]:
    """A cell (performance, test_duration) as a float; None when it is not a number."""
    try:
        return float(str(value).strip())
    except ValueError:
        return None


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
    """Open `path` (binary) for appending with an exclusive lock, on the file that is at `path` once locked (a
    header migration replaces the file while others wait)."""
    while True:
        handle = open(path, "a+b")
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            if os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino:
                return handle
        except FileNotFoundError:
            pass
        handle.close()


def _write_error(path: str, rows: int, exc: BaseException, what: str = "append") -> ResultsWriteError:
    """One line: which file, the OS error, that the file is unchanged, and what to do."""
    if isinstance(exc, OSError) and exc.strerror:
        name = errno.errorcode.get(exc.errno or 0, "")
        reason = f"{exc.strerror} ({name})" if name else exc.strerror
    else:
        reason = str(exc)
    return ResultsWriteError(
        f"cannot {what} {rows} row(s) to {path}: {reason}; the file was left as it was",
        hint="free space on its file system or make it writable (or write the results elsewhere), then run again",
        path=path,
    )


def _render(
    header: Optional[List[str]], columns: List[str], rows: Iterable[Mapping[str, Any]], raw: bool = False
) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header is not None:
        writer.writerow(header)
    for row in rows:
        writer.writerow([row.get(col, "") if raw else _cell(row.get(col)) for col in columns])
    return out.getvalue()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _write_new_file(path: str, text: str) -> None:
    """Replace `path` by a file holding `text`, atomically: a temp file in the same directory, then os.replace.
    On any failure the temp file is removed and `path` is untouched. (Raw descriptor writes, unlike
    atomic.replacing: a short write on a full disk shows here, and is what the tests provoke.)"""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".perf-", suffix=".csv")
    try:
        try:
            _write_all(fd, text.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def append_rows(path: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """Append rows under an exclusive lock, all or nothing: on any error (a full or read-only file system) the
    file keeps exactly its earlier bytes and a ResultsWriteError says why. Existing rows are never rewritten,
    except once to migrate a header that lacks columns (e.g. a legacy 24-column file): then every value is kept
    exactly as written, and the new file replaces the old one atomically."""
    if not rows:
        return
    directory = os.path.dirname(os.path.abspath(path))
    existed = os.path.exists(path)
    try:
        os.makedirs(directory, exist_ok=True)
        handle = _open_locked(path)
    except OSError as exc:
        raise _write_error(path, len(rows), exc) from None
    try:
        size = os.fstat(handle.fileno()).st_size
        try:
            handle.seek(0)
            text = handle.read().decode("utf-8").lstrip("\ufeff")
        except (OSError, UnicodeDecodeError) as exc:
            raise _write_error(path, len(rows), exc) from None
        records = list(csv.reader(io.StringIO(text))) if text else []
        existing = [name.strip() for name in records[0]] if records else []
        header = _merged_header(existing, rows)
        if records and header == existing:
            chunk = ("" if text.endswith("\n") else "\n") + _render(None, header, rows)
            _append_or_restore(handle.fileno(), chunk.encode("utf-8"), size, path, len(rows))
            return
        old_rows = [dict(zip(existing, values)) for values in records[1:]]
        try:
            _write_new_file(path, _render(header, header, old_rows, raw=True) + _render(None, header, rows))
        except OSError as exc:
            if not existed and size == 0:
                with contextlib.suppress(OSError):
                    os.unlink(path)  # the empty file our open created; waiting writers reopen (see _open_locked)
            raise _write_error(path, len(rows), exc) from None
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def _append_or_restore(fd: int, data: bytes, size: int, path: str, rows: int) -> None:
    """Append `data` to the locked file `fd` of `size` bytes; on failure cut it back to `size` bytes."""
    try:
        _write_all(fd, data)
        os.fsync(fd)
    except OSError as exc:
        try:
            os.ftruncate(fd, size)
        except OSError as undo:
            raise ResultsWriteError(
                f"cannot append {rows} row(s) to {path}: {exc.strerror}; and cutting off the partial row failed "
                f"({undo.strerror})",
                hint=f"remove everything after the first {size} bytes of {path} by hand",
                path=path,
            ) from None
        raise _write_error(path, rows, exc) from None


def write_rows(path: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """Write a fresh CSV of these rows (perf_entry.csv): our columns first, then any others. Atomic: a reader
    sees the old file or the new one, and a failure leaves the old file (ResultsWriteError)."""
    header = _merged_header([], rows)
    try:
        _write_new_file(path, _render(header, header, rows))
    except OSError as exc:
        raise _write_error(path, len(rows), exc, what="write") from None


def write_entry_files(directory: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """perf_entry.json / perf_entry.csv: the rows of this session, each replaced in one step."""
    path = os.path.join(directory, "perf_entry.json")
    try:
        with atomic.replacing(path) as handle:
            json.dump(rows[0] if len(rows) == 1 else list(rows), handle, indent=2)
    except OSError as exc:
        raise _write_error(path, len(rows), exc, what="write") from None
    write_rows(os.path.join(directory, "perf_entry.csv"), rows)


def check_writable(path: str) -> None:
    """Raise ResultsWriteError now, before any work, when rows could not be appended to `path` (a read-only
    file system or file, a missing permission). A full file system only shows when writing."""
    target = os.path.abspath(path)
    while not os.path.exists(target) and os.path.dirname(target) != target:
        target = os.path.dirname(target)
    if os.access(target, os.W_OK):
        return
    read_only = bool(os.statvfs(target).f_flag & os.ST_RDONLY)
    reason = "Read-only file system (EROFS)" if read_only else "Permission denied (EACCES)"
    where = "" if target == os.path.abspath(path) else f" ({target} is not writable)"
    raise ResultsWriteError(
        f"cannot write rows to {path}: {reason}{where}",
        hint="make it writable or write the results elsewhere, then run again",
        path=path,
    )
