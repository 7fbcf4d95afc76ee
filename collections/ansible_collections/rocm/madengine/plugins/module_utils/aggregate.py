"""Merging per-host results into one perf.csv: every model x host ends as a row, reachable or not."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence

from . import perfcsv
from .manifest import entries
from .perfcsv import STATUS_FAILURE, STATUS_SUCCESS

HOST_UNREACHABLE, HOST_FAILED, NO_RESULT = "HOST_UNREACHABLE", "HOST_FAILED", "NO_RESULT"


@dataclass(frozen=True)
class HostResult:
    host: str
    perf_csv: str = ""  # the host's perf.csv as fetched to the controller ('' when nothing came back)
    status: str = "ok"  # ok | failed | unreachable
    message: str = ""

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> HostResult:
        return cls(
            str(data["host"]),
            str(data.get("perf_csv") or ""),
            str(data.get("status") or "ok"),
            str(data.get("message") or ""),
        )


def expected_models(manifest: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """The model records a run of this manifest attempts, one per image."""
    result = []
    for entry in entries(manifest):
        model = dict(entry.model or {"name": entry.model_name})
        model["_image"] = entry.registry_image or entry.local_name
        model["_dockerfile"] = entry.image.get("dockerfile", "")
        result.append(model)
    return result


def _failure_row(model: Mapping[str, Any], host: str, reason: str, run_id: str) -> Dict[str, Any]:
    row: Dict[str, Any] = {col: "" for col in perfcsv.ALL_COLUMNS}
    row.update(
        model=model.get("name", ""),
        nnodes="1",
        training_precision=model.get("training_precision", ""),
        args=model.get("args", ""),
        tags=",".join(model.get("tags", [])) if isinstance(model.get("tags"), list) else model.get("tags", ""),
        docker_file=model.get("_dockerfile", ""),
        docker_image=model.get("_image", ""),
        machine_name=host,
        deployment_type="ansible",
        status=STATUS_FAILURE,
        failure_reason=reason,
        run_id=run_id,
    )
    return row


def _row_model(row: Mapping[str, Any], names: Sequence[str]) -> str:
    """The manifest model a row belongs to (multiple_results rows are named <model>_<csv model>)."""
    model = str(row.get("model", ""))
    if model in names:
        return model
    for name in sorted(names, key=len, reverse=True):
        if model.startswith(name + "_"):
            return name
    return model


def merge_results(
    dest: str, hosts: Sequence[HostResult], manifest: Mapping[str, Any], run_id: str = "", check_only: bool = False
) -> Dict[str, Any]:
    """Append every host's rows to dest, and a FAILURE row for each expected model a host did not report."""
    models = expected_models(manifest)
    names = [m["name"] for m in models]
    merged: List[Dict[str, Any]] = []
    per_host: Dict[str, Dict[str, Any]] = {}
    for result in hosts:
        rows: List[Dict[str, Any]] = []
        if result.status == "ok" and result.perf_csv and os.path.isfile(result.perf_csv):
            # A host's perf.csv keeps earlier runs too: only this run's rows are merged.
            rows = [dict(r) for r in perfcsv.read_rows(result.perf_csv) if not run_id or r.get("run_id") == run_id]
            for row in rows:
                row["machine_name"] = row.get("machine_name") or result.host
        reported = {_row_model(r, names) for r in rows}
        reason = {"unreachable": HOST_UNREACHABLE, "failed": HOST_FAILED}.get(result.status, NO_RESULT)
        missing = [m for m in models if m["name"] not in reported]
        rows += [_failure_row(m, result.host, reason, run_id) for m in missing]
        merged.extend(rows)
        per_host[result.host] = {
            "status": result.status,
            "message": result.message,
            "rows": len(rows),
            "success": sum(1 for r in rows if r.get("status") == STATUS_SUCCESS),
            "failure": sum(1 for r in rows if r.get("status") == STATUS_FAILURE),
            "missing_models": [m["name"] for m in missing],
        }
    if not check_only:
        perfcsv.append_rows(dest, merged)
    return {
        "dest": dest,
        "rows": len(merged),
        "hosts": per_host,
        "success": sum(h["success"] for h in per_host.values()),
        "failure": sum(h["failure"] for h in per_host.values()),
    }


def write_summary(path: str, summary: Mapping[str, Any], check_only: bool = False) -> Optional[str]:
    if check_only:
        return None
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(summary, handle, indent=2)
        handle.write("\n")
    return path
