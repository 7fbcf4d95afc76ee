"""Rich rendering of the core's results; nothing here decides anything."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Dict, List, Mapping, Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

# Logs and CI output are not terminals: give tables room there instead of Rich's 80 columns.
_WIDTH = None if os.environ.get("COLUMNS") or sys.stdout.isatty() else 160
out = Console(highlight=False, soft_wrap=True, width=_WIDTH)
err = Console(stderr=True, highlight=False, soft_wrap=True, width=_WIDTH)

STATUS_STYLE = {"SUCCESS": "green", "FAILURE": "red", "SKIPPED": "yellow", "BUILT": "green", "CACHED": "cyan"}


def styled(status: str) -> str:
    style = STATUS_STYLE.get(status, "white")
    return f"[{style}]{escape(status)}[/{style}]"


def models_table(title: str, models: Sequence[Mapping[str, Any]]) -> None:
    table = Table(title=title, title_justify="left")
    for column in ("name", "tags", "dockerfile", "scripts", "args"):
        table.add_column(column, overflow="fold")
    for model in models:
        tags = model.get("tags", [])
        table.add_row(
            *(
                escape(str(x))
                for x in (
                    model.get("name", ""),
                    ",".join(tags) if isinstance(tags, list) else tags,
                    model.get("dockerfile", ""),
                    model.get("scripts", ""),
                    model.get("args", ""),
                )
            )
        )
    out.print(table)


def json_list(items: List[Dict[str, Any]]) -> None:
    out.print_json(json.dumps(items)) if out.is_terminal else print(json.dumps(items, indent=2))


def build_table(successes: Sequence[Mapping[str, Any]], failures: Sequence[Mapping[str, Any]]) -> None:
    table = Table(title="Build", title_justify="left")
    for column in ("model", "image", "status", "seconds", "detail"):
        table.add_column(column, overflow="fold")
    for record in successes:
        detail = record.get("registry_image") or record.get("dockerfile", "")
        table.add_row(
            escape(record["model"]),
            escape(record["docker_image"]),
            styled("CACHED" if record.get("cached") else "BUILT"),
            f"{record.get('build_duration', 0):.2f}",
            escape(str(detail)),
        )
    for failure in failures:
        table.add_row(
            escape(failure["model"]),
            escape(failure.get("dockerfile", "")),
            styled("FAILURE"),
            "",
            escape(failure["error"]),
        )
    out.print(table)


def perf_table(rows: Sequence[Mapping[str, Any]], title: str = "Performance") -> None:
    table = Table(title=title, title_justify="left")
    for column in ("model", "status", "performance", "metric", "reason", "seconds", "image"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            escape(str(row.get("model", ""))),
            styled(str(row.get("status", ""))),
            escape(str(row.get("performance", ""))),
            escape(str(row.get("metric", ""))),
            escape(str(row.get("failure_reason", ""))),
            escape(str(row.get("test_duration", ""))),
            escape(str(row.get("docker_image", ""))),
        )
    out.print(table)


def error_line(message: str) -> None:
    err.print(f"[red]error:[/red] {escape(message)}")


def warn_line(message: str) -> None:
    err.print(f"[yellow]warning:[/yellow] {escape(message)}")


def info_line(message: str) -> None:
    err.print(f"[dim]{escape(message)}[/dim]")


TARGET_TITLES = {"slurm": "SLURM", "kubernetes": "Kubernetes"}


def jobs_table(target: str, jobs: Sequence[Mapping[str, Any]], results_dir: str) -> None:
    where = f" (results in {results_dir})" if results_dir else ""
    table = Table(title=f"{TARGET_TITLES.get(target, target)} jobs{where}", title_justify="left")
    for column in ("model", "job", "state", "exit", "reason"):
        table.add_column(column, overflow="fold")
    for job in jobs:
        table.add_row(*(escape(str(job.get(key, ""))) for key in ("model", "job_id", "state", "exit_code", "reason")))
    out.print(table)


def slurm_scripts(plans: Sequence[Any], results_dir: str) -> None:
    table = Table(title=f"SLURM scripts (in {results_dir})", title_justify="left")
    for column in ("script", "models", "submit with"):
        table.add_column(column, overflow="fold")
    for plan in plans:
        names = ", ".join(entry.model_name for entry in plan.entries)
        table.add_row(escape(plan.script_path), escape(names), escape(f"sbatch {plan.script_path}"))
    out.print(table)


def files_table(title: str, paths: Sequence[str], command: str) -> None:
    table = Table(title=f"{title} ({len(paths)})", title_justify="left")
    for column in ("file", "apply with"):
        table.add_column(column, overflow="fold")
    for path in paths:
        table.add_row(escape(path), escape(f"{command} {path}"))
    out.print(table)


def leftovers_table(items: Sequence[Any], removed: bool) -> None:
    title = "Removed" if removed else "Left behind by runs that ended without cleaning up (nothing removed)"
    table = Table(title=f"{title} ({len(items)})", title_justify="left")
    for column in ("kind", "name", "run", "pid", "kept"):
        table.add_column(column, overflow="fold")
    for item in items:
        table.add_row(
            escape(item.kind), escape(item.name), escape(item.run_id), str(item.pid or ""), "yes" if item.kept else ""
        )
    out.print(table)


VERDICT_STYLE = {"IMPROVED": "green", "REGRESSED": "red", "UNCHANGED": "white", "NEW": "cyan", "MISSING": "yellow"}


def _num(value: Any, digits: int = 4) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, float):
        return (
            f"{value:.{digits}g}"
            if abs(value) < 1e-3 or abs(value) >= 1e6
            else f"{value:.{digits}f}".rstrip("0").rstrip(".")
        )
    return escape(str(value))


def verdict_styled(verdict: str) -> str:
    style = VERDICT_STYLE.get(verdict, "white")
    return f"[{style}]{escape(verdict)}[/{style}]" if verdict else ""


def history_table(runs: Sequence[Mapping[str, Any]], db_path: str) -> None:
    table = Table(title=f"Runs in {db_path} (newest first)", title_justify="left")
    for column in ("run", "finished", "host", "target", "models", "SUCCESS", "FAILURE"):
        table.add_column(column, overflow="fold")
    for run in runs:
        models = list(run.get("models") or [])
        shown = ", ".join(models[:6]) + (f", ... ({len(models)})" if len(models) > 6 else "")
        table.add_row(
            escape(str(run.get("run_id", ""))),
            escape(str(run.get("finished_at") or "")),
            escape(str(run.get("host") or "")),
            escape(str(run.get("target") or "")),
            escape(shown),
            f"[green]{run.get('success', 0)}[/green]",
            f"[red]{run.get('failure', 0)}[/red]" if run.get("failure") else "0",
        )
    out.print(table)


def samples_table(model: str, samples: Sequence[Mapping[str, Any]]) -> None:
    table = Table(title=f"{model}: samples over runs (newest first)", title_justify="left")
    for column in ("run", "finished", "machine", "repeat", "performance", "metric", "status", "reason"):
        table.add_column(column, overflow="fold")
    for sample in samples:
        table.add_row(
            escape(str(sample.get("run_id", ""))),
            escape(str(sample.get("finished_at") or "")),
            escape(str(sample.get("machine_name") or "")),
            escape(str(sample.get("repeat") or "")),
            _num(sample.get("performance")),
            escape(str(sample.get("metric") or "")),
            styled(str(sample.get("status") or "")),
            escape(str(sample.get("failure_reason") or "")),
        )
    out.print(table)


def stats_table(stats: Sequence[Any], title: str = "Repeats") -> None:
    """stats: ((model, metric, machine_name), Stats) pairs."""
    table = Table(title=title, title_justify="left")
    for column in ("model", "metric", "machine", "n", "median", "mean", "stdev", "min", "max", "CV%"):
        table.add_column(column, overflow="fold")
    for (model, metric, machine), s in stats:
        cv = "" if s.cv_percent is None else f"{s.cv_percent:.2f}"
        table.add_row(
            escape(model), escape(metric), escape(machine), str(s.n), _num(s.median), _num(s.mean), _num(s.stdev),
            _num(s.min), _num(s.max), cv,
        )  # fmt: skip
    out.print(table)


def verdict_table(comparison: Any) -> None:
    """A compare.Comparison: one line per key, then the MISSING keys by name."""
    title = (
        f"Compared with {comparison.baseline_label} (tolerance {comparison.tolerance:g}%"
        f", alpha {comparison.alpha:g} with repeats)"
    )
    table = Table(title=escape(title), title_justify="left")
    for column in ("model", "metric", "machine", "direction", "baseline", "current", "change %", "verdict", "note"):
        table.add_column(column, overflow="fold")
    for e in comparison.entries:
        base = _num(e.baseline_value) + (f" (n={e.baseline.n})" if e.baseline and e.baseline.n > 1 else "")
        new = _num(e.current_value) + (f" (n={e.current.n})" if e.current and e.current.n > 1 else "")
        note = e.note or (f"p={e.p_value:.3f}" if e.p_value is not None else "")
        change = "" if e.relative_change is None else f"{e.relative_change:+.2f}"
        table.add_row(
            escape(e.model), escape(e.metric), escape(e.machine_name), e.direction, base, new, change,
            verdict_styled(e.verdict), escape(note),
        )  # fmt: skip
    out.print(table)
    counts = comparison.counts()
    out.print(", ".join(f"{verdict_styled(v)} {n}" for v, n in counts.items() if n) or "nothing to compare")
    missing = comparison.by_verdict("MISSING")
    if missing:
        names = ", ".join(f"{e.model} {e.metric} on {e.machine_name}" for e in missing)
        warn_line(f"MISSING (in the baseline, no SUCCESS sample now): {names}")
