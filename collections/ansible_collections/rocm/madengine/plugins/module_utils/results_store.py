"""The results store: every run's rows with their provenance in one SQLite file (WAL, one transaction per run).
perf.csv stays the compatible export; this is what history, compare and trends read."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

from . import perfcsv
from .errors import ConfigError

DEFAULT_NAME = "madengine_results.sqlite"
ENV_VAR = "MADENGINE_RESULTS_DB"
DISABLED = "none"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 60000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    started_at TEXT,
    finished_at TEXT,
    host TEXT,
    target TEXT,
    package_dir TEXT,
    git_commit TEXT,
    command TEXT,
    context TEXT,
    madengine_version TEXT,
    tags TEXT
);
CREATE TABLE IF NOT EXISTS rows (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    row_key TEXT NOT NULL,
    model TEXT,
    machine_name TEXT,
    args TEXT,
    metric TEXT,
    performance REAL,
    status TEXT,
    failure_reason TEXT,
    repeat TEXT,
    image_digest TEXT,
    docker_image TEXT,
    log_path TEXT,
    recorded_at TEXT,
    row_json TEXT NOT NULL,
    UNIQUE (run_id, row_key)
);
CREATE INDEX IF NOT EXISTS rows_model ON rows (model, metric, machine_name);
"""


@dataclass
class RunInfo:
    """A run's provenance (the `runs` table). context must already be free of secrets (see redact)."""

    run_id: str
    started_at: str = ""
    finished_at: str = ""
    host: str = ""
    target: str = ""
    package_dir: str = ""
    git_commit: str = ""
    command: str = ""
    context: Mapping[str, Any] = field(default_factory=dict)
    madengine_version: str = ""
    tags: Sequence[str] = ()


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def resolve_path(option: Optional[str], perf_csv: str) -> Optional[str]:
    """The store a run records to: --results-db, else $MADENGINE_RESULTS_DB, else madengine_results.sqlite beside
    the perf.csv; None when the value is 'none' (disabled)."""
    value = option if option else os.environ.get(ENV_VAR, "")
    if value.strip().lower() == DISABLED:
        return None
    if value:
        return os.path.abspath(value)
    return os.path.join(os.path.dirname(os.path.abspath(perf_csv)), DEFAULT_NAME)


_SECRET_WORDS = ("password", "passwd", "secret", "token", "apikey", "api_key", "credential", "private_key")


def redact(value: Any) -> Any:
    """A copy of a context with the values of secret-looking keys (password, token, MAD_SECRETS...) replaced."""
    if isinstance(value, Mapping):
        return {
            str(k): "<redacted>" if any(w in str(k).lower() for w in _SECRET_WORDS) else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value


@contextlib.contextmanager
def connect(path: str, create: bool = True) -> Iterator[sqlite3.Connection]:
    """A connection in autocommit mode (transactions are explicit), WAL and a busy timeout; the schema is
    created on first use. A store of a newer schema is refused."""
    if not create and not os.path.isfile(path):
        raise ConfigError(f"--results-db {path}: no such store", hint="run something first or give another path")
    try:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    except sqlite3.Error as exc:
        raise ConfigError(f"--results-db {path}: cannot open it: {exc}") from None
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise ConfigError(
                f"--results-db {path}: schema version {version} is newer than this madengine's ({SCHEMA_VERSION})",
                hint="use a newer madengine",
            )
        if version < SCHEMA_VERSION:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        conn.row_factory = sqlite3.Row
        yield conn
    except sqlite3.Error as exc:
        raise ConfigError(f"--results-db {path}: {exc}") from None
    finally:
        conn.close()


def row_key(row: Mapping[str, Any]) -> str:
    """The identity of a row: a hash of all its values (the same row recorded twice is one row)."""
    text = json.dumps({str(k): "" if v is None else str(v) for k, v in row.items()}, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def record_run(
    path: str, info: RunInfo, rows: Iterable[Mapping[str, Any]], log_paths: Optional[Sequence[str]] = None
) -> int:
    """Record a run and its rows in one transaction; rows already recorded (same run and values) are skipped.
    A run recorded again keeps its first start and its newest end. Returns the number of rows added.
    log_paths: the run log of each row, in the same order, when known."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    stamp = now()
    logs = list(log_paths or [])
    with connect(path) as conn:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "INSERT INTO runs (run_id, started_at, finished_at, host, target, package_dir, git_commit, command,"
                " context, madengine_version, tags) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT(run_id) DO UPDATE SET finished_at = max(coalesce(finished_at, ''), excluded.finished_at)",
                (
                    info.run_id,
                    info.started_at or stamp,
                    info.finished_at or stamp,
                    info.host,
                    info.target,
                    info.package_dir,
                    info.git_commit,
                    info.command,
                    json.dumps(redact(dict(info.context)), sort_keys=True, default=str),
                    info.madengine_version,
                    ",".join(info.tags),
                ),
            )
            added = 0
            for index, row in enumerate(rows):
                model = str(row.get("model", ""))
                cursor = conn.execute(
                    "INSERT OR IGNORE INTO rows (run_id, row_key, model, machine_name, args, metric, performance,"
                    " status, failure_reason, repeat, image_digest, docker_image, log_path, recorded_at, row_json)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        str(row.get("run_id") or info.run_id),
                        row_key(row),
                        model,
                        str(row.get("machine_name", "")),
                        str(row.get("args", "")),
                        str(row.get("metric", "")),
                        perfcsv.number(row.get("performance", "")),
                        str(row.get("status", "")),
                        str(row.get("failure_reason", "")),
                        str(row.get("repeat", "") or ""),
                        str(row.get("image_digest", "")),
                        str(row.get("docker_image", "")),
                        logs[index] if index < len(logs) else "",
                        stamp,
                        json.dumps(dict(row), sort_keys=True, default=str),
                    ),
                )
                added += cursor.rowcount
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return added


def runs(path: str, limit: int = 20) -> List[Dict[str, Any]]:
    """The newest runs first: provenance plus models, row, SUCCESS and FAILURE counts."""
    with connect(path, create=False) as conn:
        records = conn.execute(
            "SELECT r.*, count(x.id) AS row_count,"
            " sum(x.status = 'SUCCESS') AS success, sum(x.status = 'FAILURE') AS failure,"
            " group_concat(DISTINCT x.model) AS models"
            " FROM runs r LEFT JOIN rows x ON x.run_id = r.run_id"
            " GROUP BY r.run_id ORDER BY r.finished_at DESC, r.started_at DESC LIMIT ?",
            (limit,),
        ).fetchall()
    result = []
    for record in records:
        item = dict(record)
        item["models"] = sorted(set((item.get("models") or "").split(","))) if item.get("models") else []
        item["success"], item["failure"] = item["success"] or 0, item["failure"] or 0
        item["context"] = json.loads(item["context"] or "{}")
        result.append(item)
    return result


def model_samples(path: str, model: str, limit: int = 20) -> List[Dict[str, Any]]:
    """A model's rows over the newest `limit` runs, newest first."""
    with connect(path, create=False) as conn:
        records = conn.execute(
            "SELECT x.run_id, r.finished_at, r.host, r.target, x.machine_name, x.metric, x.performance, x.status,"
            " x.failure_reason, x.repeat, x.args, x.image_digest FROM rows x JOIN runs r ON r.run_id = x.run_id"
            " WHERE x.model = ? AND x.run_id IN (SELECT DISTINCT y.run_id FROM rows y JOIN runs s"
            " ON s.run_id = y.run_id WHERE y.model = ? ORDER BY s.finished_at DESC LIMIT ?)"
            " ORDER BY r.finished_at DESC, x.id",
            (model, model, limit),
        ).fetchall()
    return [dict(r) for r in records]


def rows_of_run(path: str, run_id: str) -> List[Dict[str, Any]]:
    """The full perf rows of one run, in the order they were recorded."""
    with connect(path, create=False) as conn:
        records = conn.execute("SELECT row_json FROM rows WHERE run_id = ? ORDER BY id", (run_id,)).fetchall()
    return [json.loads(r["row_json"]) for r in records]


def trend_rows(db_path: str, keys: Optional[Iterable[Tuple[str, str, Optional[str]]]] = None) -> List[Dict[str, Any]]:
    """Performance samples over time for trend charts (stable API for the HTML report).

    keys: (model, metric, machine_name) tuples; machine_name None matches every machine; None or empty: all keys.
    Returns one dict per SUCCESS row with a performance value, oldest first:
    {run_id, recorded_at, finished_at, model, metric, machine_name, performance (float), repeat}.
    A missing store gives []."""
    if not os.path.isfile(db_path):
        return []
    wanted = list(keys or [])
    clauses, params = [], []
    for model, metric, machine in wanted:
        if machine is None:
            clauses.append("(x.model = ? AND x.metric = ?)")
            params += [model, metric]
        else:
            clauses.append("(x.model = ? AND x.metric = ? AND x.machine_name = ?)")
            params += [model, metric, machine]
    where = " AND (" + " OR ".join(clauses) + ")" if clauses else ""
    with connect(db_path, create=False) as conn:
        records = conn.execute(
            "SELECT x.run_id, x.recorded_at, r.finished_at, x.model, x.metric, x.machine_name, x.performance,"
            " x.repeat FROM rows x JOIN runs r ON r.run_id = x.run_id"
            " WHERE x.status = 'SUCCESS' AND x.performance IS NOT NULL" + where + " ORDER BY r.finished_at, x.id",
            params,
        ).fetchall()
    return [dict(r) for r in records]


def run_info_dict(info: RunInfo) -> Dict[str, Any]:
    return asdict(info)
