"""The commands' work end to end: build, run from a manifest, or both; summaries and exit codes."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, cast

from . import atomic, interrupts, perfcsv
from . import manifest as manifest_io
from .build import BuildOptions, BuildOutcome, build_models
from .errors import EXIT_BUILD_FAILURE, EXIT_RUN_FAILURE, EXIT_SUCCESS, ConfigError
from .hostinfo import CPU_HOST, HostInfo, detect_host
from .interrupts import Interrupted
from .reporting import Reporter
from .run import RunOptions, RunOutcome, failed_build_rows, not_started_rows, run_entries


def host_facts(ctx: Mapping[str, Any]) -> HostInfo:
    return detect_host(overrides=ctx)


@dataclass
class WorkflowResult:
    build: Optional[BuildOutcome] = None
    run: Optional[RunOutcome] = None
    host: Optional[HostInfo] = None
    summary: Dict[str, Any] = field(default_factory=dict)
    slurm: Optional[Any] = None  # slurm.SlurmOutcome for the SLURM target

    @property
    def interrupted(self) -> Optional[Interrupted]:
        """The signal that stopped the build or the run, if one did."""
        if self.run is not None and self.run.interrupted is not None:
            return self.run.interrupted
        return self.build.interrupted if self.build is not None else None

    @property
    def exit_code(self) -> int:
        if self.interrupted is not None:
            return self.interrupted.exit_code
        if self.run is not None and any(r.get("failure_reason") != "BUILD_FAILED" for r in self.run.failed_runs):
            return EXIT_RUN_FAILURE
        if self.build is not None and self.build.failures:
            return EXIT_BUILD_FAILURE
        return EXIT_SUCCESS


def build_summary(outcome: BuildOutcome) -> Dict[str, Any]:
    return dict(outcome.manifest["summary"])


def run_summary(outcome: RunOutcome) -> Dict[str, Any]:
    return {
        "successful_runs": outcome.successful_runs,
        "failed_runs": outcome.failed_runs,
        "total_runs": len(outcome.successful_runs) + len(outcome.failed_runs),
        "session_row_count": len(outcome.rows),
        "interrupted": outcome.interrupted.name if outcome.interrupted else None,
    }


def do_build(root: str, options: BuildOptions, reporter: Optional[Reporter] = None) -> WorkflowResult:
    """Build for the vendor the context names, else for this host's (a CPU host builds CPU images)."""
    options.default_vendor = str(options.context.get("gpu_vendor") or host_facts(options.context).gpu_vendor)
    with interrupts.guarded():
        outcome = build_models(root, options, reporter)
    return WorkflowResult(build=outcome, summary=build_summary(outcome))


def do_run_manifest(
    root: str, manifest_file: str, options: RunOptions, reporter: Optional[Reporter] = None
) -> WorkflowResult:
    data = manifest_io.load_manifest(os.path.join(root, manifest_file))
    if not data["built_images"]:
        raise ConfigError(
            f"--manifest-file {manifest_file}: lists no images, nothing to run",
            hint="build the models first (madengine build --tags ...)",
        )
    host = host_facts(options.context)
    with interrupts.guarded():
        outcome = run_entries(root, data, host, options, reporter)
    return WorkflowResult(run=outcome, host=host, summary=run_summary(outcome))


def do_build_and_run(
    root: str, build_options: BuildOptions, options: RunOptions, reporter: Optional[Reporter] = None
) -> WorkflowResult:
    host = host_facts(options.context)
    build_options.default_vendor = host.gpu_vendor
    build_args = dict(build_options.context.get("docker_build_arg") or {})
    if host.gpu_vendor == "AMD" and host.gpu_architecture and "MAD_SYSTEM_GPU_ARCHITECTURE" not in build_args:
        build_args["MAD_SYSTEM_GPU_ARCHITECTURE"] = host.gpu_architecture
        build_options.context = {**build_options.context, "docker_build_arg": build_args}
    with interrupts.guarded():
        return _build_and_run(root, host, build_options, options, reporter)


def _build_and_run(
    root: str, host: HostInfo, build_options: BuildOptions, options: RunOptions, reporter: Optional[Reporter]
) -> WorkflowResult:
    built = build_models(root, build_options, reporter)
    outcome = RunOutcome(interrupted=built.interrupted or interrupts.take())
    rows = failed_build_rows(built.failures, built.models, host, options.context, options.run_id)
    if outcome.interrupted is not None:
        rows += not_started_rows(built.manifest, built.not_started, host, options.context, options.run_id)
    if rows:
        if options.write_perf:
            perfcsv.write_entry_files(root, rows)
            perfcsv.append_rows(os.path.join(root, options.output), rows)
        for row in rows:
            outcome.record([row], row["model"], "", 0.0)
    if outcome.interrupted is None:
        run_entries(root, built.manifest, host, options, reporter, outcome)
        write_combined_logs(root, built.manifest)
    result = WorkflowResult(build=built, run=outcome, host=host)
    result.summary = {
        "build_phase": build_summary(built),
        "run_phase": run_summary(outcome),
        "overall_success": result.exit_code == EXIT_SUCCESS,
    }
    return result


def write_combined_logs(root: str, data: Mapping[str, Any]) -> None:
    """<base>.live.log = build log + a banner + run log, for tools that read the original's combined log."""
    banner = "\n" + "=" * 80 + "\nRUN PHASE LOG\n" + "=" * 80 + "\n\n"
    for record in (data.get("built_images") or {}).values():
        build_log = str(record.get("log_file") or "")
        if not build_log.endswith(".build.live.log"):
            continue
        base = build_log[: -len(".build.live.log")]
        build_path, run_path = os.path.join(root, build_log), os.path.join(root, base + ".run.live.log")
        if os.path.isfile(build_path) and os.path.isfile(run_path):
            with atomic.replacing(os.path.join(root, base + ".live.log")) as out:
                for index, path in enumerate((build_path, run_path)):
                    with open(path, encoding="utf-8", errors="replace") as part:
                        out.write(part.read())
                    if index == 0:
                        out.write(banner)


def check_output_path(path: str, option: str) -> None:
    """Fail before any work when `path` could not be written (its directory is missing)."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ConfigError(
            f"{option} {path}: directory {directory} does not exist", hint="create it or pick another path"
        )


def write_summary(path: str, summary: Mapping[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(summary, handle, indent=2)
        handle.write("\n")


def session_rows(result: WorkflowResult) -> List[Dict[str, Any]]:
    return list(result.run.rows) if result.run else []


def is_slurm_target(ctx: Mapping[str, Any]) -> bool:
    return "slurm" in ctx or str(ctx.get("deploy") or "").strip().lower() == "slurm"


def do_run_slurm(
    root: str,
    options: RunOptions,
    manifest_file: Optional[str] = None,
    build_options: Optional[BuildOptions] = None,
    reporter: Optional[Reporter] = None,
    submit: bool = True,
    check_mode: bool = False,
) -> WorkflowResult:
    """Build here (unless given a manifest), then run every model as a SLURM job and collect its rows."""
    from . import slurm
    from .slurm_config import parse_settings

    reporter = reporter or Reporter()
    settings = parse_settings(options.context.get("slurm"))
    run_outcome = RunOutcome()
    result = WorkflowResult(run=run_outcome)
    if build_options is not None:
        built = cast(BuildOutcome, do_build(root, build_options, reporter).build)
        result.build = built
        manifest_path = os.path.join(root, build_options.manifest_output)
        data = built.manifest
    else:
        manifest_path = os.path.join(root, manifest_file or "build_manifest.json")
        data = manifest_io.load_manifest(manifest_path)
    request = slurm.SlurmRequest(
        settings=settings,
        context=options.context,
        package_root=os.path.abspath(root),
        manifest_path=manifest_path,
        run_id=options.run_id,
        timeout=options.timeout,
        submit=submit,
        check_mode=check_mode,
    )
    outcome = slurm.run_on_slurm(data, request, reporter)
    rows = list(outcome.rows)
    if result.build is not None:
        rows = (
            failed_build_rows(result.build.failures, result.build.models, CPU_HOST, options.context, options.run_id)
            + rows
        )
        for row in rows[: len(result.build.failures)]:
            row["deployment_type"] = "slurm"
    if rows and options.write_perf and (outcome.newly_collected or not outcome.rows):
        perfcsv.append_rows(os.path.join(root, options.output), rows)
    for row in rows:
        run_outcome.record([row], row["model"], row.get("docker_image", ""), 0.0)
        reporter.model_done(row["model"], "slurm", row["status"], row.get("failure_reason", ""))
    result.summary = {
        "run_phase": run_summary(run_outcome),
        "slurm": {
            "results_dir": outcome.results_dir,
            "jobs": outcome.jobs(),
            "submitted": outcome.submitted,
            "cancelled": outcome.cancelled,
            "in_allocation": outcome.in_allocation,
        },
    }
    result.slurm = outcome
    return result


def context_with_manifest(ctx: Mapping[str, Any], root: str, manifest_file: str) -> Dict[str, Any]:
    """The run context of a manifest run: the manifest's deployment_config supplies `slurm` and `distributed`
    when the command line does not (a manifest built with a SLURM config runs on SLURM, as with the original)."""
    from .context import validate_context

    path = os.path.join(root, manifest_file)
    if not os.path.isfile(path):
        return dict(ctx)  # the run reports the missing manifest
    config = manifest_io.load_manifest(path).get("deployment_config") or {}
    merged = dict(ctx)
    for key in ("slurm", "distributed"):
        if isinstance(config.get(key), dict) and key not in merged:
            merged[key] = config[key]
    if str(config.get("target") or "").lower() == "slurm":
        merged.setdefault("slurm", {})
    if merged == dict(ctx):
        return merged
    try:
        return validate_context(merged)
    except ConfigError as exc:
        raise ConfigError(f"{path}: deployment_config: {exc.msg}", hint=exc.hint) from None
