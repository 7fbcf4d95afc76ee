"""perf.csv as a JUnit XML report (the junit-10.xsd that Jenkins and GitLab read): one testcase per row, one
testsuite per machine; failures carry their reason and the tail of the model's run log."""

from __future__ import annotations

import datetime
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence

from . import atomic, perfcsv
from .dockerfiles import run_log_base
from .errors import MadengineError
from .perfcsv import STATUS_FAILURE, STATUS_SKIPPED, STATUS_SUCCESS

LOG_TAIL_LINES = 50
REGRESSED = "REGRESSED"
# Shown as lines of each testcase's <system-out> (junit-10.xsd allows no <properties> in a testcase).
CASE_PROPERTIES = ("performance", "metric", "status", "verdict", "relative_change", "run_id", "docker_image", "repeat")
# Shown as the testsuite's <properties> when every row of the suite has the same value.
SUITE_PROPERTIES = ("run_id", "gpu_architecture", "deployment_type", "launcher", "build_number")

# What XML 1.0 cannot hold, and terminal colour sequences (whose ESC it cannot hold either).
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")


def xml_text(value: Any) -> str:
    """value as text that XML 1.0 can carry (ANSI sequences and forbidden characters removed)."""
    return _NOT_XML.sub("", _ANSI.sub("", "" if value is None else str(value)))


def safe_class_part(machine: str) -> str:
    """A machine name as one classname segment: dots and other odd characters become _."""
    part = re.sub(r"[^A-Za-z0-9_-]+", "_", machine.strip()).strip("_")
    return part or "unknown"


def case_name(row: Mapping[str, Any]) -> str:
    name = str(row.get("model") or "?")
    args = str(row.get("args") or "").strip()
    if args:
        name += f" [{args}]"
    repeat = str(row.get("repeat") or "").strip()
    if repeat:
        name += f" #{repeat}"
    return xml_text(name)


def _seconds(value: Any) -> float:
    seconds = perfcsv.number(value)
    return seconds if seconds is not None and 0 <= seconds != float("inf") else 0.0


def find_log(row: Mapping[str, Any], package_dir: str) -> str:
    """The run log of the row's model: the row's log_file, else <model>_<dockerfile part>.run.live.log in the
    package (for a multiple_results row <base>_<result>, the log of <base>); '' when there is none."""
    given = str(row.get("log_file") or "")
    if given:
        path = given if os.path.isabs(given) else os.path.join(package_dir, given)
        return path if os.path.isfile(path) else ""
    image = str(row.get("docker_image") or "")
    model = str(row.get("model") or "")
    if not image or not model:
        return ""
    parts = model.split("_")
    for end in range(len(parts), 0, -1):
        path = os.path.join(package_dir, run_log_base("_".join(parts[:end]), image) + ".run.live.log")
        if os.path.isfile(path):
            return path
    return ""


def log_tail(path: str, lines: int = LOG_TAIL_LINES, max_bytes: int = 256 * 1024) -> str:
    """The last `lines` lines of a log (reading at most its last max_bytes)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - max_bytes))
            data = handle.read()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def _performance_line(row: Mapping[str, Any]) -> str:
    perf = str(row.get("performance") or "")
    return f"performance: {perf} {row.get('metric') or ''}".rstrip() if perf else "performance: (none)"


def _system_out(row: Mapping[str, Any]) -> str:
    lines = [_performance_line(row)]
    for key in CASE_PROPERTIES:
        value = str(row.get(key) or "")
        if value and key != "performance":
            lines.append(f"{key}: {value}")
    return xml_text("\n".join(lines) + "\n")


@dataclass
class Counts:
    tests: int = 0
    failures: int = 0
    errors: int = 0
    skipped: int = 0
    time: float = 0.0

    def add(self, other: Counts) -> None:
        self.tests += other.tests
        self.failures += other.failures
        self.errors += other.errors
        self.skipped += other.skipped
        self.time += other.time

    def attributes(self) -> Dict[str, str]:
        return {
            "tests": str(self.tests),
            "failures": str(self.failures),
            "errors": str(self.errors),
            "skipped": str(self.skipped),
            "time": f"{self.time:.3f}",
        }


def testcase(row: Mapping[str, Any], package_dir: str, counts: Counts) -> ET.Element:
    """One <testcase>; `counts` gets what it adds."""
    seconds = _seconds(row.get("test_duration"))
    machine = str(row.get("machine_name") or "")
    case = ET.Element(
        "testcase",
        {
            "classname": f"madengine.{safe_class_part(machine)}",
            "name": case_name(row),
            "time": f"{seconds:.3f}",
        },
    )
    counts.tests += 1
    counts.time += seconds
    status = str(row.get("status") or "")
    reason = str(row.get("failure_reason") or "")
    verdict = str(row.get("verdict") or "")
    if status == STATUS_FAILURE:
        counts.failures += 1
        reason = reason or STATUS_FAILURE
        log = find_log(row, package_dir)
        detail = f"{reason}"
        if row.get("exit_code"):
            detail += f" (exit code {row.get('exit_code')})"
        failure = ET.SubElement(case, "failure", {"type": xml_text(reason), "message": xml_text(detail)})
        if log:
            failure.text = xml_text(f"last {LOG_TAIL_LINES} lines of {os.path.basename(log)}:\n{log_tail(log)}\n")
        else:
            failure.text = "no run log found for this row\n"
    elif status == STATUS_SKIPPED:
        counts.skipped += 1
        ET.SubElement(case, "skipped", {"message": xml_text(reason or STATUS_SKIPPED)})
    elif status == STATUS_SUCCESS and verdict == REGRESSED:
        counts.failures += 1
        change = str(row.get("relative_change") or "?")
        metric = row.get("metric") or "performance"
        message = f"{metric} regressed: relative_change {change}% (now {row.get('performance')})"
        failure = ET.SubElement(case, "failure", {"type": REGRESSED, "message": xml_text(message)})
        failure.text = xml_text(message + "\n")
    elif status != STATUS_SUCCESS:
        counts.errors += 1
        ET.SubElement(case, "error", {"type": "UNKNOWN_STATUS", "message": xml_text(f"status {status or '(empty)'!s}")})
    out = ET.SubElement(case, "system-out")
    out.text = _system_out(row)
    return case


def _common(rows: Sequence[Mapping[str, Any]], key: str) -> str:
    values = {str(r.get(key) or "") for r in rows}
    return values.pop() if len(values) == 1 else ""


def build(
    rows: Sequence[Mapping[str, Any]], package_dir: str, timestamp: Optional[datetime.datetime] = None, name: str = ""
) -> ET.Element:
    """<testsuites> with one <testsuite> per machine_name (in first-seen order)."""
    stamp = (timestamp or datetime.datetime.now(datetime.timezone.utc)).strftime("%Y-%m-%dT%H:%M:%S")
    by_machine: Dict[str, List[Mapping[str, Any]]] = {}
    for row in rows:
        by_machine.setdefault(str(row.get("machine_name") or ""), []).append(row)
    root = ET.Element("testsuites", {"name": xml_text(name or "madengine")})
    total = Counts()
    for index, (machine, suite_rows) in enumerate(by_machine.items()):
        counts = Counts()
        suite = ET.Element(
            "testsuite",
            {
                "name": f"madengine.{safe_class_part(machine)}",
                "hostname": xml_text(machine or "unknown"),
                "timestamp": stamp,
                "id": str(index),
            },
        )
        props = [(key, _common(suite_rows, key)) for key in SUITE_PROPERTIES]
        props = [(key, value) for key, value in props if value]
        if props:
            properties = ET.SubElement(suite, "properties")
            for key, value in props:
                ET.SubElement(properties, "property", {"name": key, "value": xml_text(value)})
        for row in suite_rows:
            suite.append(testcase(row, package_dir, counts))
        for key, value in counts.attributes().items():
            suite.set(key, value)
        total.add(counts)
        root.append(suite)
    for key, value in total.attributes().items():
        if key != "skipped":  # junit-10.xsd: <testsuites> has no skipped attribute
            root.set(key, value)
    return root


@dataclass
class JunitReport:
    path: str
    rows: int
    counts: Counts


def write(
    csv_path: str, output: str, run_id: Optional[str] = None, timestamp: Optional[datetime.datetime] = None
) -> JunitReport:
    """Write the JUnit XML of a perf.csv (only the rows of run_id, when given) to `output`, in one step."""
    if not os.path.isfile(csv_path):
        raise MadengineError(f"--csv-file-path {csv_path}: no such file", hint="give the perf.csv of a run")
    if not csv_path.endswith(".csv"):
        raise MadengineError(f"--csv-file-path {csv_path}: not a .csv file", hint="give the perf.csv of a run")
    try:
        rows = perfcsv.read_rows(csv_path)
    except (OSError, UnicodeDecodeError) as exc:
        raise MadengineError(f"--csv-file-path {csv_path}: cannot read it ({exc})") from None
    if run_id is not None:
        rows = [r for r in rows if r.get("run_id") == run_id]
        if not rows:
            raise MadengineError(
                f"--run-id {run_id}: no rows of this run in {csv_path}", hint="see the run_id column for the runs"
            )
    if timestamp is None:
        timestamp = datetime.datetime.fromtimestamp(os.path.getmtime(csv_path), datetime.timezone.utc)
    name = f"madengine {os.path.basename(csv_path)}" + (f" run {run_id}" if run_id else "")
    root = build(rows, os.path.dirname(os.path.abspath(csv_path)), timestamp, name)
    ET.indent(root)
    text = ET.tostring(root, encoding="unicode")
    try:
        os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
        with atomic.replacing(output) as handle:
            handle.write('<?xml version="1.0" encoding="UTF-8"?>\n' + text + "\n")
    except OSError as exc:
        raise MadengineError(f"cannot write {output}: {exc.strerror or exc}") from None
    counts = Counts()
    for suite in root:
        counts.add(
            Counts(
                tests=int(suite.get("tests", "0")),
                failures=int(suite.get("failures", "0")),
                errors=int(suite.get("errors", "0")),
                skipped=int(suite.get("skipped", "0")),
                time=float(suite.get("time", "0")),
            )
        )
    return JunitReport(path=output, rows=len(rows), counts=counts)
