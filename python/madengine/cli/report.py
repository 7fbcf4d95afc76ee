"""madengine report ...: reports of perf.csv files (HTML with charts, e-mail, JUnit)."""

from __future__ import annotations

import os
from typing import Optional

import typer

from madengine.cli import render
from madengine.cli.common import VerboseOpt, errors_as_messages

report_app = typer.Typer(
    no_args_is_help=True, suggest_commands=False, help="Reports of perf.csv files: HTML, e-mail, JUnit."
)


@report_app.command("to-junit")
def to_junit(
    csv_file_path: str = typer.Option(
        ..., "--csv-file-path", "--csv-file", help="The perf.csv to report (its run logs are found beside it)."
    ),
    output: Optional[str] = typer.Option(
        None, "--output", "-o", help="JUnit XML file to write (default: junit.xml beside the CSV)."
    ),
    run_id: Optional[str] = typer.Option(None, "--run-id", help="Only the rows of this run."),
    verbose: bool = VerboseOpt,
) -> None:
    """Write a JUnit XML report of a perf.csv: a testcase per row, a testsuite per machine; failures carry their
    reason and the tail of the model's run log, REGRESSED verdicts are failures, SKIPPED rows skipped."""
    from ansible_collections.rocm.madengine.plugins.module_utils import report_junit

    with errors_as_messages(verbose):
        target = output or os.path.join(os.path.dirname(csv_file_path), "junit.xml")
        report = report_junit.write(csv_file_path, target, run_id=run_id)
        counts = report.counts
        render.info_line(
            f"junit: {report.path} ({counts.tests} tests, {counts.failures} failures, {counts.errors} errors, "
            f"{counts.skipped} skipped)"
        )
