"""madengine history / compare: the results store, baselines and regression verdicts."""

from __future__ import annotations

import json
from typing import Optional

import typer

from ansible_collections.rocm.madengine.plugins.module_utils import results_store
from ansible_collections.rocm.madengine.plugins.module_utils.errors import ConfigError
from madengine.cli import render
from madengine.cli.common import VerboseOpt, errors_as_messages

ResultsDbOpt = typer.Option(
    None,
    "--results-db",
    help=f"Results store (SQLite). Default: ${results_store.ENV_VAR}, else {results_store.DEFAULT_NAME} beside "
    "perf.csv; 'none' disables it.",
)
ToleranceOpt = typer.Option("5%", "--tolerance", help="Changes within this percentage are UNCHANGED (5%, 5, 0.05).")
DirectionsOpt = typer.Option(
    None, "--directions", help="YAML/JSON file: which metrics are better higher or lower (see docs/results.md)."
)
FailOnRegressionOpt = typer.Option(
    False, "--fail-on-regression", help="Exit 5 when a key REGRESSED (and nothing failed) - the CI gate."
)


def store_path(option: Optional[str], perf_csv: str = "perf.csv") -> str:
    path = results_store.resolve_path(option, perf_csv)
    if path is None:
        raise ConfigError(
            f"the results store is disabled (${results_store.ENV_VAR} or --results-db is 'none')",
            hint="give --results-db PATH",
        )
    return path


def history(
    results_db: Optional[str] = ResultsDbOpt,
    model: Optional[str] = typer.Option(None, "--model", help="Show this model's samples over the runs."),
    limit: int = typer.Option(20, "--limit", help="How many runs (newest first)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    verbose: bool = VerboseOpt,
) -> None:
    """List the runs of the results store, newest first (or one model's samples over them)."""
    with errors_as_messages(verbose):
        if limit < 1:
            raise ConfigError(f"--limit {limit}: must be 1 or more")
        path = store_path(results_db)
        if model:
            samples = results_store.model_samples(path, model, limit)
            if as_json:
                print(json.dumps(samples, indent=2))
            else:
                render.samples_table(model, samples)
        else:
            runs = results_store.runs(path, limit)
            if as_json:
                print(json.dumps(runs, indent=2))
            else:
                render.history_table(runs, path)


def compare_runs(
    run_a: str = typer.Argument(
        ..., help="Baseline: a run id of the store, a perf.csv (its newest run) or RUN@perf.csv."
    ),
    run_b: str = typer.Argument(..., help="Current: the same forms as RUN_A."),
    tolerance: str = ToleranceOpt,
    directions_file: Optional[str] = DirectionsOpt,
    results_db: Optional[str] = ResultsDbOpt,
    fail_on_regression: bool = FailOnRegressionOpt,
    as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
    verbose: bool = VerboseOpt,
) -> None:
    """Compare two runs key by key (model, metric, machine): relative change and a verdict each."""
    from ansible_collections.rocm.madengine.plugins.module_utils import compare, directions, result_sources

    with errors_as_messages(verbose):
        tol = directions.parse_tolerance(tolerance)
        dirs = directions.load_directions(directions_file)
        db = results_store.resolve_path(results_db, "perf.csv")
        label_a, rows_a = result_sources.load_rows(run_a, db, option="RUN_A")
        label_b, rows_b = result_sources.load_rows(run_b, db, option="RUN_B")
        comparison = compare.compare_rows(rows_a, rows_b, tol, dirs, label_a, label_b)
        if as_json:
            print(json.dumps(comparison.as_dict(), indent=2))
        else:
            render.verdict_table(comparison)
    raise typer.Exit(compare.gate_exit_code(0, comparison, fail_on_regression))
