"""madengine report ...: reports of perf.csv files (HTML with charts, e-mail, JUnit)."""

from __future__ import annotations

import os
from typing import Any, List, Mapping, Optional, Sequence

import typer

from madengine.cli import render, results
from madengine.cli.common import VerboseOpt, errors_as_messages

report_app = typer.Typer(
    no_args_is_help=True, suggest_commands=False, help="Reports of perf.csv files: HTML, e-mail, JUnit."
)


BaselineOpt = typer.Option(
    None, "--baseline", help="Compare with this run id of the store or perf.csv: verdicts and baseline bands."
)


class _Extras:
    """The options that add the store's trends and a baseline's bands to a CSV's section."""

    def __init__(
        self,
        csv_path: str,
        results_db: Optional[str],
        baseline: Optional[str],
        tolerance: str,
        directions: Optional[str],
    ) -> None:
        from ansible_collections.rocm.madengine.plugins.module_utils import directions as directionsmod
        from ansible_collections.rocm.madengine.plugins.module_utils import results_store

        self.db_path = results_store.resolve_path(results_db, csv_path)
        self.baseline = baseline
        self.tolerance = directionsmod.parse_tolerance(tolerance)
        self.directions = directionsmod.load_directions(directions)

    def section(self, name: str, table: Any) -> Any:
        from ansible_collections.rocm.madengine.plugins.module_utils import report_sources

        columns = [column.strip() for column in table.header]
        return report_sources.section(
            name, table.rows(), columns, self.db_path, self.baseline, self.tolerance, self.directions
        )


def _summary_table(title: str, rows: Sequence[Mapping[str, Any]]) -> None:
    from rich.table import Table

    from ansible_collections.rocm.madengine.plugins.module_utils.report_html import summarize

    summary = summarize(rows)
    table = Table(title=title, title_justify="left")
    counts = {**summary.statuses, **summary.verdicts}
    for column in ("rows", "models", *counts, "failure reasons"):
        table.add_column(render.escape(column), overflow="fold")
    reasons = ", ".join(f"{reason} ({count})" for reason, count in summary.failure_reasons)
    table.add_row(
        str(summary.rows), str(len(summary.models)), *(str(n) for n in counts.values()), render.escape(reasons)
    )
    render.out.print(table)


@report_app.command("to-html")
def to_html(
    csv_file_path: str = typer.Option(..., "--csv-file-path", "--csv-file", help="The perf.csv file to report."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="The page to write (default: <csv>.html)."),
    title: Optional[str] = typer.Option(None, "--title", help="The page title (default: the CSV's name)."),
    table_only: bool = typer.Option(False, "--table-only", help="Only the original's bare HTML table."),
    results_db: Optional[str] = results.ResultsDbOpt,
    baseline: Optional[str] = BaselineOpt,
    tolerance: str = results.ToleranceOpt,
    directions_file: Optional[str] = results.DirectionsOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Write an HTML report of a perf.csv file: summary, a chart per metric (with baseline bands and verdicts
    given --baseline), trend charts from the results store, every row."""
    with errors_as_messages(verbose):
        from ansible_collections.rocm.madengine.plugins.module_utils import report_html, report_table

        report_table.check_csv_path(csv_file_path)
        table = report_table.read_csv(csv_file_path)
        name = report_table.title_of(csv_file_path)
        target = output or os.path.join(os.path.dirname(csv_file_path), name + ".html")
        shown = table.rows()
        if table_only:
            text = report_table.bare_table_html(table)
        else:
            section = _Extras(csv_file_path, results_db, baseline, tolerance, directions_file).section(name, table)
            text = report_html.build_page([section], title=title or name).html
            shown = list(section.rows)
        report_table.write_text(target, text)
        _summary_table(name, shown)
        render.out.print(f"wrote {render.escape(target)}")


def _email_sections(directory: str) -> List[Any]:
    from ansible_collections.rocm.madengine.plugins.module_utils import report_table

    tables = []
    for path in report_table.csv_files(directory):
        try:
            tables.append(report_table.read_csv(path))
        except report_table.CsvReadError as exc:
            render.warn_line(f"skipped {exc.one_line()}")
    return tables


@report_app.command("to-email")
def to_email(
    directory: str = typer.Option(".", "--directory", "--dir", help="The directory whose *.csv files to report."),
    output: str = typer.Option("run_results.html", "--output", "-o", help="The page's file name in the directory."),
    title: Optional[str] = typer.Option(None, "--title", help="The page title and subject."),
    table_only: bool = typer.Option(False, "--table-only", help="Only the original's <h2> and bare table per CSV."),
    send: bool = typer.Option(False, "--send", help="Also send it by SMTP (settings: MADENGINE_SMTP_*)."),
    to: List[str] = typer.Option([], "--to", help="Send to this address (repeatable); implies --send."),
    smtp_config: Optional[str] = typer.Option(
        None, "--smtp-config", help="YAML/JSON file of SMTP settings (host, port, user, password, from, to, ...)."
    ),
    results_db: Optional[str] = results.ResultsDbOpt,
    baseline: Optional[str] = BaselineOpt,
    tolerance: str = results.ToleranceOpt,
    directions_file: Optional[str] = results.DirectionsOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Write one HTML page of every CSV file in a directory (a section each) and optionally e-mail it."""
    with errors_as_messages(verbose):
        from ansible_collections.rocm.madengine.plugins.module_utils import report_html, report_mail, report_table

        tables = _email_sections(directory)
        if not tables:
            nothing = "sent or written" if (send or to) else "written"
            render.out.print(f"no readable CSV files in {render.escape(directory)}: nothing {nothing}")
            return
        settings = report_mail.load_settings(os.environ, smtp_config, to) if (send or to) else None
        titles = [report_table.title_of(table.path) for table in tables]
        page_title = title or ", ".join(titles)
        sections = [
            _Extras(table.path, results_db, baseline, tolerance, directions_file).section(name, table)
            for name, table in zip(titles, tables)
        ]
        if table_only:
            text = report_table.bare_sections_html(tables, titles)
        else:
            text = report_html.build_page(sections, title=page_title).html
        target = os.path.join(directory, output)
        report_table.write_text(target, text)
        for name, section in zip(titles, sections):
            _summary_table(name, section.rows)
        render.out.print(f"wrote {render.escape(target)}")
        if settings is None:
            return
        if table_only:
            body, images = text, []
        else:
            mail_page = report_html.build_page(sections, title=page_title, charts_as="cid")
            body, images = mail_page.html, mail_page.images
        message = report_mail.build_message(
            settings,
            subject=report_html.subject_of(page_title, sections),
            html_body=body,
            images=images,
            text_body=report_html.summary_text(sections),
            attachments=[(os.path.basename(target), text)],
        )
        report_mail.send(settings, message)
        render.out.print(f"sent to {render.escape(', '.join(settings.recipients))} via {render.escape(settings.where)}")


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
