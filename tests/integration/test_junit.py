"""report to-junit on the perf.csv of a real run (Docker) of the fixture package: the XML validates against
junit-10.xsd and the failing model's testcase carries its reason and the tail of its run log."""

from __future__ import annotations

from pathlib import Path

import pytest
from clirun import madengine, perf_rows

pytestmark = pytest.mark.integration


def test_junit_of_a_real_run(mad_package: Path, infra, junit_schema) -> None:
    from lxml import etree

    run = madengine(mad_package, "run", "--tags", "dummy,dummy_exit,multi", "--run-id", "junit1")
    assert run.rc == 3, run.output
    rows = perf_rows(mad_package)
    result = madengine(mad_package, "report", "to-junit", "--csv-file-path", "perf.csv", "-o", "perf.csv/junit.xml")
    assert result.rc == 1, result.output  # cannot be written: one line, no traceback
    assert "Traceback" not in result.output and "perf.csv/junit.xml" in result.stderr
    result = madengine(mad_package, "report", "to-junit", "--csv-file", "perf.csv", "-o", "out/junit.xml")
    assert result.rc == 0, result.output
    assert f"{len(rows)} tests, 1 failures" in result.stderr
    doc = etree.parse(str(mad_package / "out" / "junit.xml"))
    assert junit_schema.validate(doc), junit_schema.error_log
    cases = {case.get("name"): case for case in doc.iter("testcase")}
    assert set(cases) == {"dummy", "dummy_exit"} | {f"dummy_multi_{i}" for i in range(1, 5)}
    failure = cases["dummy_exit"].find("failure")
    assert failure.get("type") == "EXIT_CODE" and "exit code 3" in failure.get("message")
    assert "dummy_exit_dummy.ubuntu.cpu.run.live.log" in failure.text
    assert "performance: 10 samples_per_second" in failure.text  # the script's own output, from the log tail
    assert "Test Duration:" in failure.text
    assert cases["dummy"].find("failure") is None
    assert "performance: " in cases["dummy"].findtext("system-out")
    suite = doc.find("testsuite")
    assert suite.get("tests") == str(len(rows)) and suite.get("failures") == "1"
    assert suite.get("hostname") == rows[0]["machine_name"]
    assert float(cases["dummy"].get("time")) == pytest.approx(float(rows[0]["test_duration"]), abs=0.001)


def test_junit_default_output_and_run_filter(mad_package: Path, infra, junit_schema) -> None:
    from lxml import etree

    assert madengine(mad_package, "run", "--tags", "dummy", "--run-id", "first").rc == 0
    assert madengine(mad_package, "run", "--tags", "dummy_exit", "--run-id", "second").rc == 3
    result = madengine(mad_package, "report", "to-junit", "--csv-file-path", "perf.csv", "--run-id", "first")
    assert result.rc == 0, result.output
    doc = etree.parse(str(mad_package / "junit.xml"))
    assert junit_schema.validate(doc), junit_schema.error_log
    assert [case.get("name") for case in doc.iter("testcase")] == ["dummy"]
    missing = madengine(mad_package, "report", "to-junit", "--csv-file-path", "nope.csv")
    assert missing.rc == 1 and "nope.csv" in missing.stderr and "Traceback" not in missing.output
