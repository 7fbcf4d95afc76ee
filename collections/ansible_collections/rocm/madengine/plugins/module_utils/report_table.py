"""The original's bare HTML table of a CSV file (pandas `read_csv(...).to_html(index=False)`), and reading a CSV
for a report: the one place both `report to-html --table-only` and `report to-email` take it from."""

from __future__ import annotations

import csv
import html
import os
import re
from dataclasses import dataclass
from typing import Dict, List, Optional

from . import atomic
from .errors import MadengineError, ResultsWriteError
from .typed_csv import NA_VALUES as NA_STRINGS  # pandas' default NA strings: such cells show as NaN

_INT = re.compile(r"^[+-]?[0-9]+$")
_FLOAT = re.compile(r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$|^[+-]?(?:inf|infinity)$", re.IGNORECASE)
_DECIMAL = re.compile(r"^\s*[+-]?[0-9]+\.[0-9]*$")
_TRUE, _FALSE = ("True", "TRUE", "true"), ("False", "FALSE", "false")
_PRECISION = 6  # pandas display.precision


class CsvReadError(MadengineError):
    """A CSV file that cannot be read as a table (empty, a row longer than the header, not UTF-8)."""


@dataclass
class CsvTable:
    """A CSV file as read for a report: its header as written, and its records (short rows padded with '')."""

    path: str
    header: List[str]
    records: List[List[str]]

    def rows(self) -> List[Dict[str, str]]:
        """The records as dicts keyed by the stripped header names (legacy ', ' headers included)."""
        names = [name.strip() for name in self.header]
        return [dict(zip(names, record)) for record in self.records]


def read_csv(path: str) -> CsvTable:
    """Read `path`; raise CsvReadError (one line, naming the file and line) when it is not a table."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if not header:
                raise CsvReadError(f"{path}: no columns to parse (the file is empty)")
            records: List[List[str]] = []
            for record in reader:
                if not record:
                    continue
                if len(record) > len(header):
                    raise CsvReadError(
                        f"{path}, line {reader.line_num}: expected {len(header)} fields, saw {len(record)}"
                    )
                records.append(record + [""] * (len(header) - len(record)))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CsvReadError(f"{path}: cannot read it as CSV: {exc}") from None
    return CsvTable(path, header, records)


def _trim_zeros(values: List[str]) -> List[str]:
    def is_decimal(text: str) -> bool:
        return _DECIMAL.match(text) is not None

    trimmed = values
    while True:
        numbers = [text for text in trimmed if is_decimal(text)]
        if not numbers or not all(text.endswith("0") for text in numbers):
            break
        trimmed = [text[:-1] if is_decimal(text) else text for text in trimmed]
    return [text + "0" if is_decimal(text) and text.endswith(".") else text for text in trimmed]


def _format_floats(cells: List[str]) -> List[str]:
    """pandas' FloatArrayFormatter: fixed 6 decimals with common trailing zeros trimmed, or scientific notation
    when a value would show as 0 or a large value makes the column too wide."""
    values: List[Optional[float]] = [None if cell in NA_STRINGS else float(cell) for cell in cells]

    def formatted(spec: str) -> List[str]:
        return _trim_zeros(["NaN" if value is None else format(value, spec) for value in values])

    fixed = formatted(f".{_PRECISION}f")
    present = [abs(value) for value in values if value is not None]
    too_long = bool(fixed) and max(len(text) for text in fixed) > _PRECISION + 6
    large = any(value > 1e6 for value in present)
    small = any(0 < value < 10**-_PRECISION for value in present)
    if small or (too_long and large):
        return formatted(f".{_PRECISION}e")
    return fixed


def _format_column(cells: List[str]) -> List[str]:
    """The cells of one column as pandas shows them, by the dtype read_csv would infer."""
    stripped = [cell.strip() for cell in cells]
    present = [cell for cell in stripped if cell not in NA_STRINGS]
    has_na = len(present) < len(stripped)
    if present and not has_na and all(cell in _TRUE + _FALSE for cell in present):
        return ["True" if cell in _TRUE else "False" for cell in stripped]
    if present and not has_na and all(_INT.match(cell) for cell in present):
        return [str(int(cell)) for cell in stripped]
    if present and all(_FLOAT.match(cell) for cell in present):
        return _format_floats(stripped)
    return ["NaN" if cell in NA_STRINGS else cell for cell in stripped]


def bare_table_html(table: CsvTable) -> str:
    """Exactly the original's table: `<table border="1" class="dataframe">`, no index column, no page around it."""
    columns = [_format_column([record[i] for record in table.records]) for i in range(len(table.header))]
    lines = ['<table border="1" class="dataframe">', "  <thead>", '    <tr style="text-align: right;">']
    lines += [f"      <th>{html.escape(name.strip(), quote=False)}</th>" for name in table.header]
    lines += ["    </tr>", "  </thead>", "  <tbody>"]
    for index in range(len(table.records)):
        lines.append("    <tr>")
        lines += [f"      <td>{html.escape(column[index].strip(), quote=False)}</td>" for column in columns]
        lines.append("    </tr>")
    lines += ["  </tbody>", "</table>"]
    return "\n".join(lines)


def bare_sections_html(tables: List[CsvTable], titles: List[str]) -> str:
    """The original's `report to-email` file: `<h2>name</h2>` and the bare table of each CSV, concatenated."""
    return "".join(f"<h2>{html.escape(title)}</h2>\n{bare_table_html(table)}\n" for title, table in zip(titles, tables))


def check_csv_path(path: str) -> None:
    """The original's checks of --csv-file-path: it exists, is a regular file and ends with .csv (else exit 1)."""
    if not os.path.exists(path):
        raise MadengineError(f"--csv-file-path {path} does not exist", hint="give the path of a perf.csv file")
    if not os.path.isfile(path):
        raise MadengineError(f"--csv-file-path {path} is not a file", hint="give the path of a perf.csv file")
    if not path.endswith(".csv"):
        raise MadengineError(f"--csv-file-path {path} does not end with .csv", hint="give the path of a .csv file")


def csv_files(directory: str) -> List[str]:
    """Every *.csv file directly in `directory`, sorted by path (the original's report to-email)."""
    if not os.path.isdir(directory):
        what = "does not exist" if not os.path.exists(directory) else "is not a directory"
        raise MadengineError(f"--dir {directory} {what}", hint="give the directory that holds the CSV files")
    paths = (os.path.join(directory, name) for name in os.listdir(directory) if name.endswith(".csv"))
    return sorted(path for path in paths if os.path.isfile(path))


def title_of(path: str) -> str:
    """A CSV file's name without the .csv: its section title, as the original's <h2>."""
    name = os.path.basename(path)
    return name[: -len(".csv")] if name.endswith(".csv") else name


def write_text(path: str, text: str) -> None:
    """Replace `path` by `text` in one step; a ResultsWriteError says why it could not be written."""
    try:
        with atomic.replacing(path) as handle:
            handle.write(text)
    except OSError as exc:
        raise ResultsWriteError(
            f"cannot write {path}: {exc.strerror or exc}", hint="make its directory writable or choose --output"
        ) from None
