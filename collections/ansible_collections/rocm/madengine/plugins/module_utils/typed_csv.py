"""Reading a CSV into typed values the way pandas.read_csv would: per column int, float or bool when every
non-empty cell is one, empty and NA-like cells as None, cells starting with { or [ parsed as JSON."""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any, Dict, List, Optional, Sequence

# pandas' default na_values
NA_VALUES = frozenset(
    (
        "",
        "#N/A",
        "#N/A N/A",
        "#NA",
        "-1.#IND",
        "-1.#QNAN",
        "-NaN",
        "-nan",
        "1.#IND",
        "1.#QNAN",
        "<NA>",
        "N/A",
        "NA",
        "NULL",
        "NaN",
        "None",
        "n/a",
        "nan",
        "null",
    )
)
_INT = re.compile(r"^\s*[+-]?[0-9]+\s*\Z")
_FLOAT = re.compile(
    r"^\s*[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\s*\Z|^\s*[+-]?(?:inf|infinity)\s*\Z", re.IGNORECASE
)
_BOOLS = {"True": True, "TRUE": True, "true": True, "False": False, "FALSE": False, "false": False}


def _column_type(values: Sequence[Optional[str]]) -> str:
    present = [v for v in values if v is not None]
    if not present:
        return "empty"
    if all(_INT.match(v) for v in present):
        return "int"
    if all(_FLOAT.match(v) for v in present):
        return "float"
    if len(present) == len(values) and all(v in _BOOLS for v in present):
        return "bool"
    return "str"


def _json_or_text(text: str) -> Any:
    if text[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def _convert(value: Optional[str], kind: str) -> Any:
    if value is None:
        return None
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    if kind == "bool":
        return _BOOLS[value]
    return _json_or_text(value)


def parse(text: str) -> List[Dict[str, Any]]:
    """Typed rows of a CSV text (header stripped of spaces, as perfcsv reads legacy headers)."""
    records = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    if not records:
        return []
    header = [name.strip() for name in records[0]]
    raw = [[(None if cell in NA_VALUES else cell) for cell in values] for values in records[1:] if any(values)]
    kinds = [_column_type([r[i] if i < len(r) else None for r in raw]) for i in range(len(header))]
    rows = []
    for values in raw:
        cells = values + [None] * (len(header) - len(values))
        rows.append({name: _convert(cells[i], kinds[i]) for i, name in enumerate(header)})
    return rows


def read(path: str) -> List[Dict[str, Any]]:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        return parse(handle.read())
