"""report to-junit: perf.csv rows as JUnit testcases, counts, failures with log tails, well-formed XML against
junit-10.xsd."""

from __future__ import annotations

import datetime
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ansible_collections.rocm.madengine.plugins.module_utils import perfcsv, report_junit
from ansible_collections.rocm.madengine.plugins.module_utils.errors import MadengineError

STAMP = datetime.datetime(2026, 12, 3, 12, 0, 0, tzinfo=datetime.timezone.utc)


def row(model: str = "dummy", **values: str) -> dict:
    data = {
        "model": model,
        "args": "",
        "machine_name": "node-1.example.com",
        "docker_image": f"ci-{model}_dummy.ubuntu.cpu",
        "performance": "100",
        "metric": "samples_per_second",
        "status": "SUCCESS",
        "test_duration": "1.25",
        "run_id": "r1",
    }
    data.update(values)
    return data


def write_csv(tmp_path: Path, rows: list) -> Path:
    path = tmp_path / "perf.csv"
    perfcsv.append_rows(str(path), rows)
    return path


def report(tmp_path: Path, rows: list, **kwargs) -> ET.Element:
    path = write_csv(tmp_path, rows)
    out = tmp_path / "junit.xml"
    report_junit.write(str(path), str(out), timestamp=STAMP, **kwargs)
    return ET.parse(out).getroot()


def cases(root: ET.Element) -> dict:
    return {case.get("name"): case for case in root.iter("testcase")}


def test_one_testcase_per_row_with_counts_per_machine(tmp_path: Path) -> None:
    rows = [
        row("a"),
        row("b", status="FAILURE", failure_reason="EXIT_CODE", exit_code="3", performance="", metric=""),
        row("c", status="SKIPPED", failure_reason="SKIP_GPU_ARCH", test_duration=""),
        row("d", machine_name="other"),
        row("e", status="", test_duration="x"),
    ]
    root = report(tmp_path, rows)
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["madengine.node-1_example_com", "madengine.other"]
    first = suites[0]
    assert (first.get("tests"), first.get("failures"), first.get("skipped"), first.get("errors")) == (
        "4",
        "1",
        "1",
        "1",
    )
    assert first.get("hostname") == "node-1.example.com" and first.get("timestamp") == "2026-12-03T12:00:00"
    assert first.get("time") == "2.500"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("5", "1", "1")
    by_name = cases(root)
    assert by_name["a"].get("classname") == "madengine.node-1_example_com" and by_name["a"].get("time") == "1.250"
    assert by_name["a"].find("failure") is None
    assert "performance: 100 samples_per_second" in by_name["a"].findtext("system-out")
    failure = by_name["b"].find("failure")
    assert failure.get("type") == "EXIT_CODE" and "exit code 3" in failure.get("message")
    assert by_name["c"].find("skipped").get("message") == "SKIP_GPU_ARCH"
    assert by_name["e"].find("error").get("type") == "UNKNOWN_STATUS"


def test_names_carry_args_and_repeat(tmp_path: Path) -> None:
    root = report(tmp_path, [row("m", args="--bs 8", repeat="2"), row("m", args="--bs 16")])
    assert set(cases(root)) == {"m [--bs 8] #2", "m [--bs 16]"}


def test_failure_has_the_tail_of_its_run_log(tmp_path: Path) -> None:
    lines = [f"line {i}" for i in range(200)] + ["Traceback: boom"]
    (tmp_path / "dummy_exit_dummy.ubuntu.cpu.run.live.log").write_text("\n".join(lines) + "\n")
    root = report(tmp_path, [row("dummy_exit", status="FAILURE", failure_reason="EXIT_CODE")])
    text = cases(root)["dummy_exit"].findtext("failure")
    assert "Traceback: boom" in text and "line 199" in text
    assert "line 150" not in text  # only the last 50 lines


def test_multiple_results_rows_find_their_models_log(tmp_path: Path) -> None:
    (tmp_path / "dummy_multi_dummy.ubuntu.cpu.run.live.log").write_text("multi went wrong\n")
    root = report(
        tmp_path,
        [row("dummy_multi_1", docker_image="ci-dummy_multi_dummy.ubuntu.cpu", status="FAILURE", failure_reason="X")],
    )
    assert "multi went wrong" in cases(root)["dummy_multi_1"].findtext("failure")


def test_log_file_column_wins(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "mine.log").write_text("from the store\n")
    root = report(tmp_path, [row("x", status="FAILURE", failure_reason="TIMEOUT", log_file="logs/mine.log")])
    assert "from the store" in cases(root)["x"].findtext("failure")


def test_regressed_verdict_is_a_failure_with_the_change(tmp_path: Path) -> None:
    root = report(
        tmp_path, [row("slow", verdict="REGRESSED", relative_change="-12.34"), row("ok", verdict="UNCHANGED")]
    )
    failure = cases(root)["slow"].find("failure")
    assert failure.get("type") == "REGRESSED" and "-12.34" in failure.get("message")
    assert cases(root)["ok"].find("failure") is None
    assert "verdict: UNCHANGED" in cases(root)["ok"].findtext("system-out")
    assert root.get("failures") == "1"


def test_control_characters_and_cdata_end_stay_well_formed(tmp_path: Path, junit_schema) -> None:
    nasty = "\x1b[31mred\x1b[0m \x00\x01\x08\x0b\x0c\x1f ]]> <b>&amp; \ud800 ok"
    (tmp_path / "bad_dummy.ubuntu.cpu.run.live.log").write_text(nasty + "\n", errors="surrogatepass")
    rows = [row("bad", status="FAILURE", failure_reason="ERROR\x07PATTERN", args="--x ]]> \x02")]
    path = write_csv(tmp_path, rows)
    out = tmp_path / "junit.xml"
    report_junit.write(str(path), str(out))
    from lxml import etree

    doc = etree.parse(str(out))
    assert junit_schema.validate(doc), junit_schema.error_log
    text = doc.find(".//failure").text
    assert "red" in text and "]]>" in text and "<b>&amp;" in text
    assert "\x1b" not in text and "\x01" not in text
    assert doc.find(".//failure").get("type") == "ERRORPATTERN"


def test_report_validates_against_junit_10_xsd(tmp_path: Path, junit_schema) -> None:
    from lxml import etree

    rows = [
        row("a"),
        row("b", status="FAILURE", failure_reason="NO_METRIC"),
        row("c", status="SKIPPED"),
        row("d", verdict="REGRESSED", relative_change="-20"),
        row("e", machine_name=""),
    ]
    path = write_csv(tmp_path, rows)
    out = tmp_path / "out" / "junit.xml"
    out.parent.mkdir()
    report_junit.write(str(path), str(out))
    doc = etree.parse(str(out))
    assert junit_schema.validate(doc), junit_schema.error_log


def test_run_id_selects_rows(tmp_path: Path) -> None:
    root = report(tmp_path, [row("a", run_id="r1"), row("b", run_id="r2")], run_id="r2")
    assert set(cases(root)) == {"b"}
    with pytest.raises(MadengineError, match="no rows of this run"):
        report(tmp_path, [], run_id="nope")


def test_missing_or_non_csv_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(MadengineError, match="no such file"):
        report_junit.write(str(tmp_path / "nope.csv"), str(tmp_path / "j.xml"))
    other = tmp_path / "perf.txt"
    other.write_text("model\n")
    with pytest.raises(MadengineError, match="not a .csv"):
        report_junit.write(str(other), str(tmp_path / "j.xml"))
    assert not (tmp_path / "j.xml").exists()


def test_safe_class_part() -> None:
    assert report_junit.safe_class_part("a.b c/d") == "a_b_c_d"
    assert report_junit.safe_class_part("") == "unknown"
