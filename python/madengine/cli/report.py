"""madengine report ...: reports of perf.csv files (HTML with charts, e-mail, JUnit)."""

from __future__ import annotations

import typer

report_app = typer.Typer(
    no_args_is_help=True, suggest_commands=False, help="Reports of perf.csv files: HTML, e-mail, JUnit."
)
