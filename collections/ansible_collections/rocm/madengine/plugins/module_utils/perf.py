"""Reading results out of a model's output: the performance line, multiple_results CSVs, error patterns."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

PERF_REGEX = re.compile(
    r"performance:\s+([+\-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+\-]?[0-9]+)?)(?:,?\s*/[a-zA-Z]+\s*,?|,)?\s+([^\s,]+)"
)
HF_REGEX = re.compile(r"train_samples_per_second['\"\s:=]+([0-9][0-9.eE+-]*)")

DEFAULT_ERROR_PATTERNS = (
    "OutOfMemoryError",
    "HIP out of memory",
    "CUDA out of memory",
    "RuntimeError:",
    "AssertionError:",
    "ValueError:",
    "SystemExit",
    "failed (exitcode:",
    "Traceback (most recent call last)",
    "FAILED",
    "Exception:",
    "ImportError:",
    "ModuleNotFoundError:",
)
BENIGN_SUBSTRINGS = (
    "Failed to establish connection to the metrics exporter agent",
    "RpcError: Running out of retries to initialize the metrics agent",
    "Metrics will not be exported",
    "FutureWarning",
    "Opened result file:",
    "SQLite3 generation ::",
    "rocpd_op:",
    "rpd_tracer:",
)
BENIGN_REGEXES = tuple(
    re.compile(p)
    for p in (
        r"^E[0-9]{8}.*generateRocpd\.cpp",
        r"^W[0-9]{8}.*simple_timer\.cpp",
        r"^W[0-9]{8}.*generateRocpd\.cpp",
        r"^E[0-9]{8}.*tool\.cpp",
        r"\[rocprofv3\]",
    )
)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def parse_performance(text: str) -> Tuple[str, str]:
    """(value, metric) of the first `performance: <value> <metric>` line; ('', '') when there is none."""
    match = PERF_REGEX.search(text)
    if match:
        return match.group(1), match.group(2)
    match = HF_REGEX.search(text)
    if match:
        return match.group(1), "samples_per_second"
    return "", ""


def coerce_scan_flag(value: Any, default: bool = True) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    return default


@dataclass(frozen=True)
class ScanConfig:
    enabled: bool = True
    patterns: Tuple[str, ...] = DEFAULT_ERROR_PATTERNS
    benign: Tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, model: Mapping[str, Any], ctx: Mapping[str, Any]) -> ScanConfig:
        raw = ctx.get("log_error_pattern_scan")
        if raw is None:
            raw = model.get("log_error_pattern_scan")
        patterns = ctx.get("log_error_patterns") or model.get("log_error_patterns") or DEFAULT_ERROR_PATTERNS
        benign = list(model.get("log_error_benign_patterns") or []) + list(ctx.get("log_error_benign_patterns") or [])
        return cls(coerce_scan_flag(raw), tuple(patterns), tuple(benign))


def find_error_pattern(text: str, config: ScanConfig) -> Optional[str]:
    """The first error pattern found on a non-benign line, or None."""
    if not config.enabled:
        return None
    lines = text.splitlines()
    benign = BENIGN_SUBSTRINGS + config.benign
    for pattern in config.patterns:
        quoted = re.escape(pattern)
        skip = re.compile(rf"grep -q.*{quoted}|Found error pattern.*{quoted}")
        for line in lines:
            if pattern not in line:
                continue
            if skip.search(line) or any(b in line for b in benign) or any(r.search(line) for r in BENIGN_REGEXES):
                continue
            return pattern
    return None


class ResultsCsvError(ValueError):
    pass


def read_multiple_results(text: str, source: str) -> List[Dict[str, str]]:
    """Rows of a multiple_results CSV with stripped header names; needs model, performance, metric columns
    and at least one row with a performance value."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        raise ResultsCsvError(f"{source}: empty file") from None
    missing = [col for col in ("model", "performance", "metric") if col not in header]
    if missing:
        raise ResultsCsvError(f"{source}: missing column(s) {', '.join(missing)}")
    rows = []
    for values in reader:
        if not any(v.strip() for v in values):
            continue
        row = {name: (values[i].strip() if i < len(values) else "") for i, name in enumerate(header)}
        rows.append(row)
    if not any(row["performance"] for row in rows):
        raise ResultsCsvError(f"{source}: no row has a performance value")
    return rows


def tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.splitlines()[-lines:])


def join_list(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return "" if value is None else str(value)


def first_nonempty(values: Iterable[Optional[str]]) -> str:
    for value in values:
        if value:
            return value
    return ""
