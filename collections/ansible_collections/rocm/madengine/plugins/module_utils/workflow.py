"""The commands' work end to end: build, run from a manifest, or both; summaries and exit codes."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Type, cast

from . import compare, deployment, interrupts, perfcsv, provenance, results_store
from . import manifest as manifest_io
from .build import BuildOptions, BuildOutcome, build_models
from .errors import EXIT_BUILD_FAILURE, EXIT_RUN_FAILURE, EXIT_SUCCESS, ConfigError
from .hostinfo import CPU_HOST, HostInfo, detect_host
from .interrupts import Interrupted
from .reporting import Reporter
from .run import RunOptions, RunOutcome, failed_build_rows, not_started_rows


def target_of(ctx: Mapping[str, Any]) -> str:
    """local, slurm or kubernetes: where the run context sends the models."""
    return deployment.target_name(ctx)


def host_facts(ctx: Mapping[str, Any]) -> HostInfo:
    return detect_host(overrides=ctx)


@dataclass
class WorkflowResult:
    build: Optional[BuildOutcome] = None
    run: Optional[RunOutcome] = None
    summary: Dict[str, Any] = field(default_factory=dict)
    deployment: Optional[deployment.DeployOutcome] = None  # what the target reported (jobs, results directory)

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


def execute(
    root: str,
    options: RunOptions,
    manifest_file: Optional[str] = None,
    build_options: Optional[BuildOptions] = None,
    reporter: Optional[Reporter] = None,
    submit: bool = True,
    check_mode: bool = False,
) -> WorkflowResult:
    """Build (when given build options) and run every model where the context says (local Docker, SLURM,
    Kubernetes), through the one deployment lifecycle. Every model attempted ends as rows in perf.csv, and the
    session's rows are recorded in the results store at the end (a store failure is only a warning)."""
    reporter = reporter or Reporter()
    check_repeat(options.repeat, deployment.target_name(options.context))
    started_at = results_store.now()
    result = _execute(root, options, manifest_file, build_options, reporter, submit, check_mode)
    if options.write_perf and submit and not check_mode:
        outcome = result.run or RunOutcome()
        provenance.record(
            results_store.resolve_path(options.results_db, os.path.join(root, options.output)),
            options.run_id,
            session_rows(result),
            reporter,
            target=deployment.target_name(options.context),
            package_dir=root,
            context=options.context,
            started_at=started_at,
            tags=build_options.tags if build_options is not None else (),
            log_paths=outcome.logs,
        )
    return result


def check_repeat(repeat: int, target: str) -> None:
    """--repeat must be at least 1; more than 1 runs only on the local target (and through a fleet)."""
    if repeat < 1:
        raise ConfigError(f"--repeat {repeat}: must be 1 or more", hint="give how many times each model runs")
    if repeat > 1 and target != deployment.LOCAL:
        raise ConfigError(
            f"--repeat {repeat}: not supported on the {target} target",
            hint="repeat on the local target or over an inventory (--inventory), or submit the run again",
        )


def _execute(
    root: str,
    options: RunOptions,
    manifest_file: Optional[str],
    build_options: Optional[BuildOptions],
    reporter: Reporter,
    submit: bool,
    check_mode: bool,
) -> WorkflowResult:
    target_class = deployment.target_class(deployment.target_name(options.context))
    run = RunOutcome()
    result = WorkflowResult(run=run)
    host = None
    if build_options is not None:
        manifest_path = os.path.join(root, build_options.manifest_output)
        if target_class.builds_for_this_host:
            host = host_facts(options.context)
        data = _build_for(root, target_class, build_options, options, result, reporter, host)
        if data is None:
            return result
    else:
        manifest_path = os.path.join(root, manifest_file or "build_manifest.json")
        data = manifest_io.load_manifest(manifest_path)
    request = deployment.DeployRequest(root, data, manifest_path, options, check_mode, submit, results=run, host=host)
    target = target_class(request, reporter)
    target.built_here = build_options is not None
    outcome = deployment.deploy(target)
    result.deployment = outcome
    if not target.writes_rows:
        for row in outcome.rows:
            run.record([row], row["model"], row.get("docker_image", ""), 0.0)
            reporter.model_done(row["model"], target_class.name, row["status"], row.get("failure_reason", ""))
        if outcome.rows and options.write_perf and outcome.newly_collected:
            compare.annotate_rows(outcome.rows, options.baseline)
            perfcsv.append_rows(os.path.join(root, options.output), outcome.rows)
    result.summary = _summary(result, target_class.name)
    return result


def _target(root: str, options: RunOptions, manifest_file: str) -> deployment.Target:
    manifest_path = os.path.join(root, manifest_file)
    request = deployment.DeployRequest(root, manifest_io.load_manifest(manifest_path), manifest_path, options)
    return deployment.target_class(deployment.target_name(options.context))(request, Reporter())


def deployment_jobs(root: str, options: RunOptions, manifest_file: str) -> Dict[str, str]:
    """The jobs earlier calls recorded for options.run_id (name -> state), for a module's diff."""
    return _target(root, options, manifest_file).known_jobs()


def stop_deployment(
    root: str, options: RunOptions, manifest_file: str, check_mode: bool = False
) -> deployment.DeployOutcome:
    """Cancel or delete every job of options.run_id on the context's target; `cancelled` names them."""
    target = _target(root, options, manifest_file)
    target.outcome.cancelled = target.stop(check_mode)
    return target.outcome


def _build_for(
    root: str,
    target_class: Type[deployment.Target],
    build_options: BuildOptions,
    options: RunOptions,
    result: WorkflowResult,
    reporter: Reporter,
    host: Optional[HostInfo],
) -> Optional[Mapping[str, Any]]:
    """Build, for `host` when the models run on it (else for the context's vendor); write the rows of the models
    that failed to build (and, after a signal, of those never started). The manifest to run, or None when a
    signal ended the build."""
    if host is not None:
        build_options.default_vendor = host.gpu_vendor
        build_args = dict(build_options.context.get("docker_build_arg") or {})
        if host.gpu_vendor == "AMD" and host.gpu_architecture and "MAD_SYSTEM_GPU_ARCHITECTURE" not in build_args:
            build_args["MAD_SYSTEM_GPU_ARCHITECTURE"] = host.gpu_architecture
            build_options.context = {**build_options.context, "docker_build_arg": build_args}
    else:
        build_options.default_vendor = str(
            build_options.context.get("gpu_vendor") or host_facts(build_options.context).gpu_vendor
        )
    with interrupts.guarded():
        built = build_models(root, build_options, reporter)
        interrupted = built.interrupted or interrupts.take()
    result.build = built
    run = cast(RunOutcome, result.run)
    row_host = host or CPU_HOST
    rows = failed_build_rows(built.failures, built.models, row_host, options.context, options.run_id)
    if interrupted is not None:
        run.interrupted = interrupted
        rows += not_started_rows(built.manifest, built.not_started, row_host, options.context, options.run_id)
    if not target_class.builds_for_this_host:
        for row in rows:
            row["deployment_type"] = target_class.name
    if rows:
        if options.write_perf:
            perfcsv.write_entry_files(root, rows)
            perfcsv.append_rows(os.path.join(root, options.output), rows)
        for row in rows:
            run.record([row], row["model"], "", 0.0)
    if interrupted is not None:
        result.summary = _summary(result, target_class.name)
        return None
    return built.manifest


def _summary(result: WorkflowResult, target: str) -> Dict[str, Any]:
    run = cast(RunOutcome, result.run)
    if result.build is None and target == deployment.LOCAL:
        return run_summary(run)
    summary: Dict[str, Any] = {"run_phase": run_summary(run)}
    if result.build is not None:
        summary = {"build_phase": build_summary(result.build), **summary}
    if target == deployment.LOCAL:
        summary["overall_success"] = result.exit_code == EXIT_SUCCESS
    else:
        outcome = result.deployment or deployment.DeployOutcome(target)
        summary[target] = {
            "results_dir": outcome.results_dir,
            "jobs": outcome.jobs(),
            "submitted": outcome.submitted,
            "cancelled": outcome.cancelled,
            **outcome.details,
        }
    return summary


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


def context_with_manifest(ctx: Mapping[str, Any], root: str, manifest_file: str) -> Dict[str, Any]:
    """The run context of a manifest run: the manifest's deployment_config supplies the target's section
    (`slurm`, `k8s`/`kubernetes`) and `distributed` when the command line names no target (a manifest built with a
    SLURM or Kubernetes config runs there, as with the original)."""
    from .context import validate_context

    path = os.path.join(root, manifest_file)
    if not os.path.isfile(path):
        return dict(ctx)  # the run reports the missing manifest
    config = manifest_io.load_manifest(path).get("deployment_config") or {}
    merged = dict(ctx)
    targets = ("slurm", "k8s", "kubernetes")
    if not any(key in merged for key in targets) and not merged.get("deploy"):
        for key in targets:
            if isinstance(config.get(key), dict):
                merged[key] = config[key]
                break
        else:
            target = str(config.get("target") or "").lower()
            if target in ("slurm", "k8s", "kubernetes"):
                merged.setdefault("k8s" if target == "kubernetes" else target, {})
    if isinstance(config.get("distributed"), dict) and "distributed" not in merged:
        merged["distributed"] = config["distributed"]
    if merged == dict(ctx):
        return merged
    try:
        return validate_context(merged)
    except ConfigError as exc:
        raise ConfigError(f"{path}: deployment_config: {exc.msg}", hint=exc.hint) from None
