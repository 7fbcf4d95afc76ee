"""Baselines and verdicts: rows of two runs matched by (model, metric, machine_name), their relative change and
a verdict per key (IMPROVED, REGRESSED, UNCHANGED, NEW, MISSING), using the distributions when both sides have
repeats."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from . import perfcsv, result_sources
from .directions import DEFAULT_TOLERANCE, HIGHER, Directions
from .errors import EXIT_REGRESSION, EXIT_SUCCESS
from .stats import ALPHA, Stats, describe, mann_whitney_u

IMPROVED, REGRESSED, UNCHANGED, NEW, MISSING = "IMPROVED", "REGRESSED", "UNCHANGED", "NEW", "MISSING"
VERDICTS = (REGRESSED, IMPROVED, UNCHANGED, NEW, MISSING)

Key = Tuple[str, str, str]  # (model, metric, machine_name)


def performance_of(row: Mapping[str, Any]) -> Optional[float]:
    """The row's performance as a number when it is a SUCCESS sample, else None."""
    if str(row.get("status", "")) != perfcsv.STATUS_SUCCESS:
        return None
    value = perfcsv.number(row.get("performance", ""))
    return None if value is None or math.isnan(value) else value


def key_of(row: Mapping[str, Any]) -> Key:
    return (str(row.get("model", "")), str(row.get("metric", "")), str(row.get("machine_name", "")))


def samples(rows: Iterable[Mapping[str, Any]]) -> Dict[Key, List[float]]:
    """SUCCESS samples per key, in row order."""
    result: Dict[Key, List[float]] = {}
    for row in rows:
        value = performance_of(row)
        if value is not None:
            result.setdefault(key_of(row), []).append(value)
    return result


def match(key: Key, other: Mapping[Key, Any]) -> Optional[Key]:
    """The key of `other` that `key` compares with: the same (model, metric, machine_name), else the only
    machine `other` has for (model, metric)."""
    if key in other:
        return key
    same = [k for k in other if k[:2] == key[:2]]
    return same[0] if len(same) == 1 else None


def relative_change(base: float, new: float) -> Optional[float]:
    """(new - base) / |base| * 100, rounded to 2 decimals; None when base is 0."""
    if base == 0:
        return None
    return round((new - base) / abs(base) * 100, 2)


def format_change(change: Optional[float]) -> str:
    return "" if change is None else f"{change:.2f}"


@dataclass
class KeyComparison:
    """One key compared. baseline/current: Stats of each side's SUCCESS samples (None when it has none);
    baseline_value/current_value: their medians; relative_change in percent (None when not computable);
    significance: the Mann-Whitney p-value and whether it is below alpha (None when either side has one sample)."""

    model: str
    metric: str
    machine_name: str
    baseline_machine: str
    direction: str
    tolerance: float
    baseline: Optional[Stats]
    current: Optional[Stats]
    relative_change: Optional[float]
    verdict: str
    p_value: Optional[float] = None
    significant: Optional[bool] = None
    note: str = ""

    @property
    def baseline_value(self) -> Optional[float]:
        return self.baseline.median if self.baseline else None

    @property
    def current_value(self) -> Optional[float]:
        return self.current.median if self.current else None

    def as_dict(self) -> Dict[str, Any]:
        return {
            "model": self.model,
            "metric": self.metric,
            "machine_name": self.machine_name,
            "baseline_machine": self.baseline_machine,
            "direction": self.direction,
            "tolerance": self.tolerance,
            "baseline_value": self.baseline_value,
            "current_value": self.current_value,
            "relative_change": self.relative_change,
            "verdict": self.verdict,
            "p_value": self.p_value,
            "significant": self.significant,
            "note": self.note,
            "baseline": self.baseline.as_dict() if self.baseline else None,
            "current": self.current.as_dict() if self.current else None,
        }


def judge(
    base: Sequence[float], new: Sequence[float], direction: str, tolerance: float, alpha: float = ALPHA
) -> Tuple[str, Optional[float], Optional[float], Optional[bool], str]:
    """(verdict, relative_change, p_value, significant, note) of samples `new` against `base`. Medians are
    compared; a change beyond the tolerance counts only when significant (p < alpha) if both sides have at least
    2 samples."""
    if not base:
        return NEW, None, None, None, ""
    if not new:
        return MISSING, None, None, None, ""
    b, n = statistics.median(base), statistics.median(new)
    change = relative_change(b, n)
    beyond = (abs(change) > tolerance) if change is not None else (n != b)
    p_value: Optional[float] = None
    significant: Optional[bool] = None
    if len(base) >= 2 and len(new) >= 2:
        p_value = mann_whitney_u(new, base)[1]
        significant = p_value < alpha
    if not beyond:
        return UNCHANGED, change, p_value, significant, ""
    if significant is False:
        return UNCHANGED, change, p_value, significant, f"not significant (p={p_value:.3f})"
    better = (n > b) if direction == HIGHER else (n < b)
    return (IMPROVED if better else REGRESSED), change, p_value, significant, ""


@dataclass
class Comparison:
    """Every key of both sides compared; `entries` in (model, metric, machine_name) order."""

    baseline_label: str
    current_label: str
    tolerance: float
    alpha: float = ALPHA
    entries: List[KeyComparison] = field(default_factory=list)

    def by_verdict(self, verdict: str) -> List[KeyComparison]:
        return [e for e in self.entries if e.verdict == verdict]

    @property
    def regressed(self) -> bool:
        return any(e.verdict == REGRESSED for e in self.entries)

    def counts(self) -> Dict[str, int]:
        return {v: len(self.by_verdict(v)) for v in VERDICTS}

    def as_dict(self) -> Dict[str, Any]:
        return {
            "baseline": self.baseline_label,
            "current": self.current_label,
            "tolerance": self.tolerance,
            "alpha": self.alpha,
            "counts": self.counts(),
            "entries": [e.as_dict() for e in self.entries],
        }


def compare_rows(
    base_rows: Iterable[Mapping[str, Any]],
    new_rows: Iterable[Mapping[str, Any]],
    tolerance: float = DEFAULT_TOLERANCE,
    directions: Optional[Directions] = None,
    baseline_label: str = "",
    current_label: str = "",
) -> Comparison:
    """Compare the SUCCESS samples of two sets of rows key by key (see match); a baseline key without a current
    sample is MISSING, a current key without a baseline NEW."""
    directions = directions or Directions()
    base, new = samples(base_rows), samples(new_rows)
    result = Comparison(baseline_label, current_label, tolerance)
    used = set()
    for key in sorted(new):
        other = match(key, base)
        if other is not None:
            used.add(other)
        result.entries.append(_entry(key, other or key, base.get(other or key, []), new[key], tolerance, directions))
    for key in sorted(set(base) - used):
        result.entries.append(_entry(key, key, base[key], [], tolerance, directions))
    result.entries.sort(key=lambda e: (e.model, e.metric, e.machine_name))
    return result


def _entry(
    key: Key, base_key: Key, base: List[float], new: List[float], tolerance: float, directions: Directions
) -> KeyComparison:
    direction = directions.of(key[0], key[1])
    verdict, change, p_value, significant, note = judge(base, new, direction, tolerance)
    return KeyComparison(
        key[0], key[1], key[2], base_key[2], direction, tolerance, describe(base), describe(new), change, verdict,
        p_value, significant, note,
    )  # fmt: skip


@dataclass
class Baseline:
    """The rows a run is compared with, loaded before it starts, and how to compare."""

    label: str
    rows: List[Dict[str, Any]]
    tolerance: float = DEFAULT_TOLERANCE
    directions: Directions = field(default_factory=Directions)

    def __post_init__(self) -> None:
        self.samples = samples(self.rows)

    def annotate(self, rows: Iterable[Dict[str, Any]]) -> None:
        """Fill each row's relative_change and verdict against the baseline's median for its key (one sample:
        the tolerance decides); rows that are not SUCCESS samples get both empty."""
        for row in rows:
            value = performance_of(row)
            row["relative_change"], row["verdict"] = "", ""
            if value is None:
                continue
            base_key = match(key_of(row), self.samples)
            direction = self.directions.of(str(row.get("model", "")), str(row.get("metric", "")))
            base = self.samples.get(base_key, []) if base_key else []
            verdict, change, _p, _s, _n = judge(base, [value], direction, self.tolerance)
            row["relative_change"], row["verdict"] = format_change(change), verdict

    def compare(self, rows: Iterable[Mapping[str, Any]], current_label: str = "") -> Comparison:
        return compare_rows(self.rows, rows, self.tolerance, self.directions, self.label, current_label)


def annotate_rows(rows: Iterable[Dict[str, Any]], baseline: Optional[Baseline]) -> None:
    """The one hook where appended rows get relative_change and verdict (local and remote targets alike)."""
    if baseline is not None:
        baseline.annotate(rows)


def load_baseline(
    spec: str, db_path: Optional[str], tolerance: float = DEFAULT_TOLERANCE, directions: Optional[Directions] = None
) -> Baseline:
    label, rows = result_sources.load_rows(spec, db_path)
    return Baseline(label, rows, tolerance, directions or Directions())


def sample_stats(rows: Iterable[Mapping[str, Any]]) -> List[Tuple[Key, Stats]]:
    """Stats of the SUCCESS samples per (model, metric, machine_name), in key order (the repeats table)."""
    result = []
    for key, values in sorted(samples(rows).items()):
        stats = describe(values)
        if stats is not None:
            result.append((key, stats))
    return result


def gate_exit_code(code: int, comparison: Optional[Comparison], fail_on_regression: bool) -> int:
    """The exit code with the regression gate: EXIT_REGRESSION (5) when asked for, something REGRESSED and
    nothing worse happened (an interrupt, run failure 3 and build failure 2 keep their codes)."""
    if code == EXIT_SUCCESS and fail_on_regression and comparison is not None and comparison.regressed:
        return EXIT_REGRESSION
    return code
