"""A report section from a perf.csv's rows plus what the results store and a baseline add: the history behind the
trend charts, and the baseline bands and verdicts."""

from __future__ import annotations

import os
from typing import Any, Dict, List, Mapping, Optional, Sequence

from . import compare, results_store
from .directions import Directions
from .report_html import Baseline, BaselineKey, ReportSection


def history_of(rows: Sequence[Mapping[str, Any]], db_path: Optional[str]) -> List[Dict[str, Any]]:
    """The store's SUCCESS samples of the rows' (model, metric, machine_name) keys, oldest first; none without a
    store."""
    if not db_path or not os.path.isfile(db_path):
        return []
    keys = {compare.key_of(row) for row in rows if row.get("metric")}
    return results_store.trend_rows(db_path, sorted(keys)) if keys else []


def baseline_bands(comparison: compare.Comparison) -> Dict[BaselineKey, Baseline]:
    """Each compared key's baseline median with the comparison's tolerance and direction (the comparison's
    tolerance is in percent, a band's is relative)."""
    bands: Dict[BaselineKey, Baseline] = {}
    for entry in comparison.entries:
        if entry.baseline_value is not None and entry.current is not None:
            bands[(entry.model, entry.metric, entry.machine_name)] = Baseline(
                entry.baseline_value, entry.tolerance / 100, entry.direction
            )
    return bands


def section(
    title: str,
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    db_path: Optional[str] = None,
    baseline_spec: Optional[str] = None,
    tolerance: float = compare.DEFAULT_TOLERANCE,
    directions: Optional[Directions] = None,
) -> ReportSection:
    """The section of one CSV. With a baseline, the rows (copies) get relative_change and verdict against it, and
    the charts its bands; with a store, trend charts of the same keys."""
    shown: List[Dict[str, Any]] = [dict(row) for row in rows]
    bands: Dict[BaselineKey, Baseline] = {}
    if baseline_spec:
        baseline = compare.load_baseline(baseline_spec, db_path, tolerance, directions)
        baseline.annotate(shown)
        bands = baseline_bands(baseline.compare(shown))
        columns = list(columns) + [name for name in ("relative_change", "verdict") if name not in columns]
    return ReportSection(
        title=title, rows=shown, history_rows=history_of(shown, db_path), baselines=bands, columns=list(columns)
    )
