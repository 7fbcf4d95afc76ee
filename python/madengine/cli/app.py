"""The madengine command line: parse, call the core, render. No logic of its own."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from typing import Any, List, Optional, Type

import typer

from ansible_collections.rocm.madengine.plugins.module_utils import context as ctxmod
from ansible_collections.rocm.madengine.plugins.module_utils.errors import (
    EXIT_BUILD_FAILURE,
    EXIT_FAILURE,
    EXIT_INVALID_ARGS,
    EXIT_RUN_FAILURE,
    ConfigError,
)
from ansible_collections.rocm.madengine.plugins.module_utils.reporting import Reporter
from madengine import __version__
from madengine.cli import render, results
from madengine.cli.common import VerboseOpt, errors_as_messages

app = typer.Typer(
    add_completion=False,
    suggest_commands=False,  # click suggests already; Typer's own suggestion printed it twice
    no_args_is_help=True,
    help="Benchmark AI models from a MAD package in Docker containers.",
    pretty_exceptions_enable=False,
)

TagsOpt = typer.Option(
    [], "--tags", "-t", help="Model names or tags; repeat or comma-separate. dir/model, all, name:k=v."
)
ContextOpt = typer.Option("{}", "--additional-context", "-c", help="JSON (or Python dict literal) additional context.")
ContextFileOpt = typer.Option(None, "--additional-context-file", "-f", help="JSON file with additional context.")
LiveOpt = typer.Option(False, "--live-output", "-l", help="Stream build and model output to the terminal.")
SummaryOpt = typer.Option(None, "--summary-output", "-s", help="Write a JSON summary to this file.")
RegistryOpt = typer.Option(None, "--registry", "-r", help="Push built images to this registry (host[:port]).")
InventoryOpt = typer.Option(
    None,
    "--inventory",
    "-i",
    help="Ansible inventory: run on its madengine_gpu hosts through the rocm.madengine playbooks.",
)
LimitOpt = typer.Option(None, "--limit", help="With --inventory: only these hosts (Ansible --limit pattern).")
RunIdOpt = typer.Option(
    None,
    "--run-id",
    help="The rows' run_id (default: a new random id). On SLURM, the same id collects the jobs of an earlier run.",
)


class CliReporter(Reporter):
    def info(self, message: str) -> None:
        render.info_line(message)

    def warn(self, message: str) -> None:
        render.warn_line(message)

    def live(self, text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    def model_done(self, model: str, phase: str, status: str, detail: str = "") -> None:
        suffix = f"  {detail}" if detail else ""
        render.err.print(f"{phase:5} {render.styled(status)} {render.escape(model)}[dim]{render.escape(suffix)}[/dim]")


def _core():
    """The core's heavier modules, imported when a command runs (keeps `madengine --help` instant)."""
    from ansible_collections.rocm.madengine.plugins.module_utils import build, discovery, run, tags, workflow

    return build, discovery, run, tags, workflow


def _context(text: str, path: Optional[str]) -> dict:
    return ctxmod.load_context(text, path)


def _version(value: bool) -> None:
    if value:
        print(f"madengine version {__version__}")
        raise typer.Exit(0)


@app.callback()
def main_options(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Benchmark AI models from a MAD package in Docker containers."""


@app.command()
def discover(
    tags: List[str] = TagsOpt,
    as_json: bool = typer.Option(False, "--json", help="Print the selected model objects as a JSON list."),
    verbose: bool = VerboseOpt,
) -> None:
    """List the models of the MAD package in the current directory (all, or those the tags select)."""
    with errors_as_messages(verbose):
        _, discovery, _, tagsmod, _ = _core()
        catalog = discovery.discover(".")
        models = tagsmod.select_models(tags, catalog) if tags else [m.resolve() for m in catalog.models]
        for warning in discovery.card_warnings(catalog, models):
            render.warn_line(warning)
        if as_json:
            render.json_list(models)
        else:
            title = f"Selected models ({len(models)})" if tags else f"Available models ({len(models)} total)"
            render.models_table(title, models)


@app.command()
def build(
    tags: List[str] = TagsOpt,
    registry: Optional[str] = RegistryOpt,
    additional_context: str = ContextOpt,
    additional_context_file: Optional[str] = ContextFileOpt,
    clean_docker_cache: bool = typer.Option(False, "--clean-docker-cache", help="Build without the layer cache."),
    manifest_output: str = typer.Option("build_manifest.json", "--manifest-output", "-m", help="Manifest to write."),
    summary_output: Optional[str] = SummaryOpt,
    live_output: bool = LiveOpt,
    batch_manifest: Optional[str] = typer.Option(
        None, "--batch-manifest", help="JSON list of {model_name, build_new, registry, registry_image}."
    ),
    target_archs: List[str] = typer.Option(
        [],
        "--target-archs",
        "-a",
        help="Build one image per GPU architecture (gfx942, MI300X...); repeat or comma-separate.",
    ),
    use_image: Optional[str] = typer.Option(
        None, "--use-image", help="Run the selected models in this existing image ('auto': their DOCKER_IMAGE_NAME)."
    ),
    inventory: Optional[str] = InventoryOpt,
    limit: Optional[str] = LimitOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Build the selected models' images (and push them with --registry); write build_manifest.json."""
    with errors_as_messages(verbose):
        buildmod, _, _, _, workflow = _core()
        ctx = _context(additional_context, additional_context_file)
        if summary_output:
            workflow.check_output_path(summary_output, "--summary-output")
        if inventory:
            raise typer.Exit(
                _fleet(
                    "build",
                    inventory,
                    limit,
                    verbose,
                    ctx,
                    "",
                    tags=tags,
                    registry=registry,
                    timeout=-1,
                    manifest=manifest_output,
                    output="perf.csv",
                )
            )
        options = buildmod.BuildOptions(
            tags=tags,
            context=ctx,
            registry=registry,
            clean_docker_cache=clean_docker_cache,
            manifest_output=manifest_output,
            live_output=live_output,
            batch_manifest=batch_manifest,
            use_image=use_image,
            target_archs=target_archs,
        )
        result = workflow.do_build(".", options, CliReporter())
        render.build_table(result.build.successes, result.build.failures)
        if result.interrupted is not None:
            render.error_line(f"interrupted by {result.interrupted.name}: {manifest_output} was not written")
        else:
            render.info_line(f"manifest: {manifest_output}")
        if summary_output:
            workflow.write_summary(summary_output, result.summary)
    raise typer.Exit(result.exit_code)


@app.command()
def run(
    tags: List[str] = TagsOpt,
    manifest_file: Optional[str] = typer.Option(
        None, "--manifest-file", "-m", help="Run the images of this manifest; nothing is built."
    ),
    registry: Optional[str] = RegistryOpt,
    timeout: int = typer.Option(-1, "--timeout", help="Seconds per model: -1 the model's own or 7200, 0 none."),
    additional_context: str = ContextOpt,
    additional_context_file: Optional[str] = ContextFileOpt,
    keep_alive: bool = typer.Option(False, "--keep-alive", help="Keep the container and the model directory."),
    keep_model_dir: bool = typer.Option(False, "--keep-model-dir", help="Keep run_directory after the run."),
    clean_docker_cache: bool = typer.Option(False, "--clean-docker-cache", help="Build without the layer cache."),
    skip_model_run: bool = typer.Option(False, "--skip-model-run", help="Prepare everything but do not run the model."),
    manifest_output: str = typer.Option("build_manifest.json", "--manifest-output", help="Manifest the build writes."),
    summary_output: Optional[str] = SummaryOpt,
    live_output: bool = LiveOpt,
    output: str = typer.Option("perf.csv", "--output", "-o", help="perf CSV to append rows to."),
    disable_skip_gpu_arch: bool = typer.Option(
        False, "--disable-skip-gpu-arch", help="Run models even on GPU architectures they skip."
    ),
    ignore_deprecated: bool = typer.Option(False, "--ignore-deprecated", help="Accepted for compatibility; no effect."),
    cleanup_perf: bool = typer.Option(False, "--cleanup-perf", help="Remove perf_entry.* files after the run."),
    run_id: Optional[str] = RunIdOpt,
    inventory: Optional[str] = InventoryOpt,
    limit: Optional[str] = LimitOpt,
    repeat: int = typer.Option(1, "--repeat", help="Run each model N times (a row each) and show their statistics."),
    baseline: Optional[str] = typer.Option(
        None, "--baseline", help="Compare with this run: a run id of the store, a perf.csv or RUN@perf.csv."
    ),
    tolerance: str = results.ToleranceOpt,
    directions_file: Optional[str] = results.DirectionsOpt,
    fail_on_regression: bool = results.FailOnRegressionOpt,
    results_db: Optional[str] = results.ResultsDbOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Build (unless --manifest-file) and run the selected models; append their rows to perf.csv."""
    with errors_as_messages(verbose):
        buildmod, _, runmod, _, workflow = _core()
        from ansible_collections.rocm.madengine.plugins.module_utils import compare, directions, results_store

        ctx = _context(additional_context, additional_context_file)
        if summary_output:
            workflow.check_output_path(summary_output, "--summary-output")
        workflow.check_repeat(repeat, workflow.target_of(ctx))
        db_path = results_store.resolve_path(results_db, output)
        if fail_on_regression and not baseline:
            raise ConfigError("--fail-on-regression needs --baseline", hint="name the run to compare with")
        tol = directions.parse_tolerance(tolerance)
        dirs = directions.load_directions(directions_file)
        base = compare.load_baseline(baseline, db_path, tol, dirs) if baseline else None
        if manifest_file and not inventory:
            ctx = workflow.context_with_manifest(ctx, ".", manifest_file)
        options = runmod.RunOptions(
            context=ctx,
            timeout=None if timeout == -1 else timeout,
            keep_alive=keep_alive,
            keep_model_dir=keep_model_dir,
            skip_model_run=skip_model_run,
            live_output=live_output,
            output=output,
            disable_skip_gpu_arch=disable_skip_gpu_arch,
            repeat=repeat,
            baseline=base,
            results_db=db_path or results_store.DISABLED,
        )
        if run_id is not None:
            options.run_id = runmod.check_run_id(run_id)
        if timeout < -1:
            raise ConfigError(f"--timeout {timeout}: must be -1 (default), 0 (no timeout) or positive")
        reporter = CliReporter()
        target = workflow.target_of(ctx)
        if inventory:
            command = "run-only" if manifest_file else "run"
            if target != "local":
                prefix = "slurm" if target == "slurm" else "k8s"
                command = f"{prefix}-run-only" if manifest_file else prefix
            code = _fleet(
                command,
                inventory,
                limit,
                verbose,
                ctx,
                options.run_id,
                tags=tags,
                registry=registry,
                timeout=timeout,
                manifest=manifest_file or manifest_output,
                output=output,
                repeat=repeat,
                results_db=db_path or results_store.DISABLED,
                baseline=base,
                fail_on_regression=fail_on_regression,
            )
            raise typer.Exit(code)
        if manifest_file and tags:
            reporter.warn("--tags is ignored with --manifest-file: every model of the manifest runs")
        if not manifest_file and not tags:
            raise ConfigError(
                "nothing to run", hint="pass --tags to build and run, or --manifest-file to run a manifest"
            )
        local_only = [
            flag
            for flag, given in (
                ("--keep-alive", keep_alive),
                ("--keep-model-dir", keep_model_dir),
                ("--skip-model-run", skip_model_run),
            )
            if given
        ]
        if local_only and target != "local":
            reporter.warn(f"{', '.join(local_only)}: not supported on {target}; ignored")
        build_options = None
        if not manifest_file:
            build_options = buildmod.BuildOptions(
                tags=tags,
                context=ctx,
                registry=registry,
                clean_docker_cache=clean_docker_cache,
                manifest_output=manifest_output,
                live_output=live_output,
            )
        result = workflow.execute(".", options, manifest_file, build_options, reporter)
        if result.build is not None and result.build.failures:
            render.build_table(result.build.successes, result.build.failures)
        deployed = result.deployment
        if deployed is not None and deployed.target != "local":
            render.jobs_table(deployed.target, deployed.jobs(), deployed.results_dir)
        if deployed is not None and deployed.target != "local" and not deployed.collected:
            render.info_line(
                f"not waiting for the jobs ({_WAIT_KEY[deployed.target]} is false); collect their rows later with "
                f"the same command and --manifest-file {manifest_file or manifest_output} --run-id {options.run_id}"
            )
        else:
            render.perf_table(
                workflow.session_rows(result), title=f"Performance (run {options.run_id}, rows appended to {output})"
            )
        session = workflow.session_rows(result)
        if repeat > 1:
            render.stats_table(compare.sample_stats(session), title=f"Repeats ({repeat} per model)")
        collected = deployed is None or deployed.target == "local" or deployed.collected
        comparison = base.compare(session, options.run_id) if base is not None and collected else None
        if comparison is not None:
            render.verdict_table(comparison)
        if result.interrupted is not None:
            render.error_line(
                f"interrupted by {result.interrupted.name}: the running model's container was stopped and "
                f"removed; every model has its row in {output}"
            )
        if summary_output:
            workflow.write_summary(summary_output, result.summary)
        if cleanup_perf:
            for name in ("perf_entry.json", "perf_entry.csv", "perf_entry_super.json", "perf_entry_super.csv"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(name)
    raise typer.Exit(compare.gate_exit_code(result.exit_code, comparison, fail_on_regression))


_WAIT_KEY = {"slurm": "slurm.wait", "kubernetes": "k8s.wait"}


@app.command()
def clean(
    dry_run: bool = typer.Option(False, "--dry-run", help="Only list what would be removed."),
    kept: bool = typer.Option(
        False, "--kept", help="Also remove what was kept on purpose (--keep-alive containers, --keep-model-dir)."
    ),
    verbose: bool = VerboseOpt,
) -> None:
    """Remove the containers and run directories (.madengine/runs) of runs whose process is gone; never a live
    run's."""
    with errors_as_messages(verbose):
        from ansible_collections.rocm.madengine.plugins.module_utils import cleanup

        items = cleanup.find(".", include_kept=kept)
        errors = [] if dry_run else cleanup.remove(items)
        render.leftovers_table(items, removed=not dry_run)
        for line in errors:
            render.error_line(f"cannot remove {line}")
    raise typer.Exit(EXIT_FAILURE if errors else 0)


generate_app = typer.Typer(
    no_args_is_help=True, suggest_commands=False, help="Write deployment files without running anything."
)
app.add_typer(generate_app, name="generate")


@generate_app.command("slurm")
def generate_slurm(
    manifest_file: str = typer.Option("build_manifest.json", "--manifest-file", "-m", help="The manifest to run."),
    timeout: int = typer.Option(-1, "--timeout", help="Seconds per model: -1 the model's own or 7200, 0 none."),
    additional_context: str = ContextOpt,
    additional_context_file: Optional[str] = ContextFileOpt,
    run_id: Optional[str] = RunIdOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Write the sbatch scripts and job specs for a manifest's models; submit them yourself with sbatch."""
    with errors_as_messages(verbose):
        ctx = _context(additional_context, additional_context_file)
        ctx.setdefault("slurm", {})
        prepared = _prepare_only(ctx, manifest_file, timeout, run_id)
        render.slurm_scripts(prepared.plans, prepared.results_dir)


@generate_app.command("k8s")
def generate_k8s(
    manifest_file: str = typer.Option("build_manifest.json", "--manifest-file", "-m", help="The manifest to run."),
    timeout: int = typer.Option(-1, "--timeout", help="Seconds per model: -1 the model's own or 7200, 0 none."),
    additional_context: str = ContextOpt,
    additional_context_file: Optional[str] = ContextFileOpt,
    run_id: Optional[str] = RunIdOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Write each model's Kubernetes objects (Secrets as placeholders, ConfigMap, Service, Job) as YAML files;
    apply them yourself or review them; nothing is sent to a cluster."""
    with errors_as_messages(verbose):
        ctx = _context(additional_context, additional_context_file)
        if "kubernetes" not in ctx:
            ctx.setdefault("k8s", {})
        prepared = _prepare_only(ctx, manifest_file, timeout, run_id)
        render.files_table("Kubernetes manifests", prepared.files, "kubectl apply -f")


def _prepare_only(ctx: dict, manifest_file: str, timeout: int, run_id: Optional[str]):
    """The deployment of a manifest's models, prepared (files written) and not submitted."""
    _, _, runmod, _, workflow = _core()
    if timeout < -1:
        raise ConfigError(f"--timeout {timeout}: must be -1 (default), 0 (no timeout) or positive")
    options = runmod.RunOptions(context=ctx, timeout=None if timeout == -1 else timeout, write_perf=False)
    if run_id is not None:
        options.run_id = runmod.check_run_id(run_id)
    return workflow.execute(".", options, manifest_file, None, CliReporter(), submit=False).deployment


from madengine.cli.report import report_app  # noqa: E402

app.add_typer(report_app, name="report")
from madengine.cli.database import database  # noqa: E402

app.command("database")(database)
app.command("history")(results.history)
app.command("compare")(results.compare_runs)


@app.command("slurm-task", hidden=True)
def slurm_task(
    spec: str = typer.Argument(..., help="The job spec the sbatch script names."),
    verbose: bool = VerboseOpt,
) -> None:
    """Run one task of a SLURM job (called by the scripts madengine writes)."""
    with errors_as_messages(verbose):
        from ansible_collections.rocm.madengine.plugins.module_utils.slurm_job import run_task

        code = run_task(spec, CliReporter())
    raise typer.Exit(code)


# Typer's usage errors are click's UsageError (vendored in recent Typer); found through BadParameter's bases.
UsageError: Type[Exception] = next(cls for cls in typer.BadParameter.__mro__ if cls.__name__ == "UsageError")


def _fleet(
    command: str,
    inventory: str,
    limit: Optional[str],
    verbose: bool,
    ctx: dict,
    run_id: str,
    *,
    tags: List[str],
    registry: Optional[str],
    timeout: int,
    manifest: str,
    output: str,
    repeat: int = 1,
    results_db: str = "",
    baseline: Any = None,
    fail_on_regression: bool = False,
) -> int:
    """Run a rocm.madengine playbook over an inventory and render the merged rows of this run (their statistics
    with repeats, their verdicts with a baseline)."""
    from ansible_collections.rocm.madengine.plugins.module_utils import compare, perfcsv
    from madengine.cli import fleet

    if command in ("run", "slurm") and not tags:
        raise ConfigError("nothing to run", hint="pass --tags (or --manifest-file) with --inventory")
    if tags and command not in ("run-only", "slurm-run-only"):
        _, discovery, _, tagsmod, _ = _core()
        tagsmod.select_models(tags, discovery.discover("."))  # a bad tag fails here, as without --inventory
    cwd = os.getcwd()
    extravars = {
        "madengine_tags": list(tags),
        "madengine_additional_context": ctx,
        "madengine_timeout": timeout,
        "madengine_package_dir": cwd,
        "madengine_output_dir": cwd,
        "madengine_manifest": manifest,
        "madengine_run_id": run_id,
        "madengine_aggregate_perf_csv": os.path.join(cwd, output),
        "madengine_repeat": repeat,
    }
    if results_db:
        extravars["madengine_results_db"] = results_db
    if registry:
        extravars["madengine_registry"] = registry
    outcome = fleet.run_playbook(command, inventory, extravars, limit=limit, verbose=verbose)
    rows = [r for r in perfcsv.read_rows(os.path.join(cwd, output)) if r.get("run_id") == run_id]
    if rows:
        render.perf_table(rows, title=f"Performance (run {run_id}, {inventory}, rows appended to {output})")
    if repeat > 1:
        render.stats_table(compare.sample_stats(rows), title=f"Repeats ({repeat} per model and host)")
    comparison = baseline.compare(rows, run_id) if baseline is not None else None
    if comparison is not None:
        render.verdict_table(comparison)
    if any(r.get("status") == "FAILURE" for r in rows):
        return EXIT_RUN_FAILURE
    if outcome["rc"] != 0:
        render.error_line(f"the playbook failed (status {outcome['status']}); see the output above")
        return EXIT_BUILD_FAILURE if not rows and not command.endswith("run-only") else EXIT_FAILURE
    return compare.gate_exit_code(0, comparison, fail_on_regression)


def main(argv: Optional[List[str]] = None) -> None:
    try:
        code = app(args=argv, prog_name="madengine", standalone_mode=False)
    except UsageError as exc:
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        render.error_line(f"{getattr(exc, 'format_message', exc.__str__)()}{hint}")
        sys.exit(EXIT_INVALID_ARGS)
    except (typer.Abort, KeyboardInterrupt):
        render.error_line("interrupted by SIGINT")
        sys.exit(128 + signal.SIGINT)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
