"""The original's bare table (pandas read_csv(...).to_html(index=False)) and reading CSV files for reports."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.rocm.madengine.plugins.module_utils import report_table
from ansible_collections.rocm.madengine.plugins.module_utils.errors import MadengineError

GOLDEN_CSV = (
    "model,n_gpus,performance,metric,status,relative_change,build_duration,args\n"
    "<b>x&y</b>,8,1234.5,samples_per_second,SUCCESS,,0.5,--batch-size 8\n"
    'dummy2,1,,,FAILURE,,1.25,"a,""b"""\n'
    " dummy3 ,2,0.000001,ms,SUCCESS,,,\n"
)
# What pandas 3.1 printed for GOLDEN_CSV: ints, NaN for blanks, a float column sharing one number of decimals,
# HTML-escaped text, stripped cells.
GOLDEN_HTML = (
    '<table border="1" class="dataframe">\n  <thead>\n    <tr style="text-align: right;">\n      <th>model</th>\n'
    "      <th>n_gpus</th>\n      <th>performance</th>\n      <th>metric</th>\n      <th>status</th>\n"
    "      <th>relative_change</th>\n      <th>build_duration</th>\n      <th>args</th>\n    </tr>\n  </thead>\n"
    "  <tbody>\n    <tr>\n      <td>&lt;b&gt;x&amp;y&lt;/b&gt;</td>\n      <td>8</td>\n      <td>1234.500000</td>\n"
    "      <td>samples_per_second</td>\n      <td>SUCCESS</td>\n      <td>NaN</td>\n      <td>0.50</td>\n"
    "      <td>--batch-size 8</td>\n    </tr>\n    <tr>\n      <td>dummy2</td>\n      <td>1</td>\n      <td>NaN</td>\n"
    "      <td>NaN</td>\n      <td>FAILURE</td>\n      <td>NaN</td>\n      <td>1.25</td>\n"
    '      <td>a,"b"</td>\n    </tr>\n    <tr>\n      <td>dummy3</td>\n      <td>2</td>\n      <td>0.000001</td>\n'
    "      <td>ms</td>\n      <td>SUCCESS</td>\n      <td>NaN</td>\n      <td>NaN</td>\n      <td>NaN</td>\n"
    "    </tr>\n  </tbody>\n</table>"
)


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_bare_table_is_exactly_what_pandas_printed(tmp_path: Path) -> None:
    table = report_table.read_csv(write(tmp_path, "perf.csv", GOLDEN_CSV))
    assert report_table.bare_table_html(table) == GOLDEN_HTML


@pytest.mark.parametrize(
    ("cells", "shown"),
    [
        (["1", "2"], ["1", "2"]),
        (["1", ""], ["1.0", "NaN"]),
        (["1.25", "2.5"], ["1.25", "2.50"]),
        (["123", "1e20"], ["1.230000e+02", "1.000000e+20"]),
        (["0.00000001", "3"], ["1.000000e-08", "3.000000e+00"]),
        (["true", "False"], ["True", "False"]),
        (["1.5", "abc"], ["1.5", "abc"]),
        (["inf", "2"], ["inf", "2.0"]),
        (["NA", "null"], ["NaN", "NaN"]),
    ],
)
def test_columns_are_shown_as_pandas_types_them(cells: list, shown: list) -> None:
    table = report_table.CsvTable("x.csv", ["c"], [[cell] for cell in cells])
    html = report_table.bare_table_html(table)
    assert [line.strip()[4:-5] for line in html.splitlines() if line.strip().startswith("<td>")] == shown


def test_to_email_sections_are_h2_and_table(tmp_path: Path) -> None:
    table = report_table.read_csv(write(tmp_path, "a.csv", "x\n1\n"))
    text = report_table.bare_sections_html([table, table], ["a", "b"])
    assert text.startswith("<h2>a</h2>\n<table") and "</table>\n<h2>b</h2>\n<table" in text
    assert text.endswith("</table>\n")


def test_unreadable_csv_files_raise_one_line_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(report_table.CsvReadError, match=r"long\.csv, line 2: expected 2 fields, saw 3"):
        report_table.read_csv(write(tmp_path, "long.csv", "a,b\n1,2,3\n"))
    with pytest.raises(report_table.CsvReadError, match="empty"):
        report_table.read_csv(write(tmp_path, "empty.csv", ""))
    short = report_table.read_csv(write(tmp_path, "short.csv", "a,b\n1\n"))
    assert short.rows() == [{"a": "1", "b": ""}]


def test_legacy_headers_are_stripped_for_rows_but_kept_in_the_table(tmp_path: Path) -> None:
    table = report_table.read_csv(write(tmp_path, "legacy.csv", "model, status\nm, SUCCESS\n"))
    assert table.rows() == [{"model": "m", "status": " SUCCESS"}]
    assert "<th>status</th>" in report_table.bare_table_html(table)


def test_csv_path_checks_and_directory_listing(tmp_path: Path) -> None:
    for bad, message in ((tmp_path / "nope.csv", "does not exist"), (tmp_path, "is not a file")):
        with pytest.raises(MadengineError, match=message):
            report_table.check_csv_path(str(bad))
    with pytest.raises(MadengineError, match="does not end with .csv"):
        report_table.check_csv_path(write(tmp_path, "perf.txt", "a\n"))
    for name in ("b.csv", "a.csv", "c.txt"):
        write(tmp_path, name, "a\n1\n")
    (tmp_path / "d.csv").mkdir()
    assert report_table.csv_files(str(tmp_path)) == [str(tmp_path / "a.csv"), str(tmp_path / "b.csv")]
    with pytest.raises(MadengineError, match="is not a directory"):
        report_table.csv_files(str(tmp_path / "a.csv"))
