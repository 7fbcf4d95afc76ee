"""Where one side of a comparison comes from: a perf.csv (its newest run), RUN_ID@perf.csv, or a run id of the
results store."""

from __future__ import annotations

import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from . import perfcsv, results_store
from .errors import ConfigError


def newest_run_id(rows: Sequence[Mapping[str, Any]]) -> str:
    """The run id of the last row that has one (perf.csv is appended in time order)."""
    for row in reversed(rows):
        if row.get("run_id"):
            return str(row["run_id"])
    return ""


def load_rows(spec: str, db_path: Optional[str], option: str = "--baseline") -> Tuple[str, List[Dict[str, Any]]]:
    """(label, rows) of one side: a perf.csv path (its newest run), RUN_ID@path/to/perf.csv, or a run id of the
    results store at db_path. A ConfigError naming the option when nothing matches."""
    run_id, at, path = spec.rpartition("@")
    if at and run_id and os.path.isfile(path):
        rows = [r for r in perfcsv.read_rows(path) if r.get("run_id") == run_id]
        if not rows:
            raise ConfigError(f"{option} {spec}: {path} has no rows of run {run_id}", hint="check the run id")
        return spec, rows
    if os.path.isfile(spec):
        rows = perfcsv.read_rows(spec)
        newest = newest_run_id(rows)
        chosen = [r for r in rows if r.get("run_id") == newest] if newest else rows
        if not chosen:
            raise ConfigError(f"{option} {spec}: the file has no rows", hint="give a perf.csv with results")
        return f"{newest}@{spec}" if newest else spec, chosen
    if spec.endswith(".csv") or os.sep in spec:
        raise ConfigError(f"{option} {spec}: no such file", hint="give a perf.csv path or a run id of the store")
    if not db_path or not os.path.isfile(db_path):
        raise ConfigError(
            f"{option} {spec}: not a file, and there is no results store to find a run in ({db_path or 'disabled'})",
            hint="give a perf.csv path, or the store with --results-db",
        )
    rows = results_store.rows_of_run(db_path, spec)
    if not rows:
        raise ConfigError(f"{option} {spec}: no run {spec} in {db_path}", hint="list the runs with 'madengine history'")
    return spec, rows
