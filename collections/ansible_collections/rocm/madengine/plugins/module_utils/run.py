"""The run phase: manifest entries -> one container each -> perf rows, every attempted model a row."""

from __future__ import annotations

import os
import re
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence

from . import atomic, cleanup, compare, containers, dockerapi, dockerfiles, images, interrupts, launchers, perf, perfcsv
from .context import runtime_gpu_override, secret_env
from .credentials import load_credentials, model_credential_env, registry_auth, registry_of
from .errors import ConfigError, DockerUnavailableError, MadengineError, RunError
from .hostinfo import HostInfo, parse_gpu_list
from .manifest import ManifestEntry, entries
from .ownership import Owner, this_process
from .perf_super import update as write_perf_super
from .perfcsv import STATUS_FAILURE, STATUS_SKIPPED, STATUS_SUCCESS
from .reporting import Reporter
from .runspace import RUN_DIRECTORY, RunSpace, safe_name

DEFAULT_TIMEOUT = 7200

# failure_reason values
NO_METRIC, TIMEOUT, EXIT_CODE, ERROR_PATTERN = "NO_METRIC", "TIMEOUT", "EXIT_CODE", "ERROR_PATTERN"
BUILD_FAILED, IMAGE_MISSING, VENDOR_MISMATCH, SETUP_FAILED = (
    "BUILD_FAILED",
    "IMAGE_MISSING",
    "VENDOR_MISMATCH",
    "SETUP_FAILED",
)
SKIP_GPU_ARCH, SKIP_MODEL_RUN, MANIFEST_ERROR = "SKIP_GPU_ARCH", "SKIP_MODEL_RUN", "MANIFEST_ERROR"
ARCH_MISMATCH = "ARCH_MISMATCH"
INTERRUPTED, NOT_STARTED, ENGINE_ERROR = "INTERRUPTED", "NOT_STARTED", "ENGINE_ERROR"

# A run id ends up in perf rows, container labels, SLURM job names and a results directory name.
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]*\Z")


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def check_run_id(value: str, name: str = "--run-id") -> str:
    """value, when it is a usable run id; a ConfigError naming the option (`name`) otherwise."""
    if not _RUN_ID.match(value) or len(value) > 128:
        raise ConfigError(
            f"{name} {value!r} is not allowed",
            hint="use up to 128 letters, digits and . _ @ + - (starting with a letter or digit)",
            option="run_id",
        )
    return value


@dataclass
class RunOptions:
    context: Mapping[str, Any]
    timeout: Optional[int] = None  # None: not given (the model's timeout or 7200); 0: no timeout
    keep_alive: bool = False
    keep_model_dir: bool = False
    skip_model_run: bool = False
    live_output: bool = False
    output: str = "perf.csv"
    disable_skip_gpu_arch: bool = False
    run_id: str = field(default_factory=new_run_id)
    container_suffix: str = ""
    write_perf: bool = True
    extra_credentials: Mapping[str, Any] = field(default_factory=dict)
    machine_name: str = ""  # perf rows' machine_name; default: this host's name
    repeat: int = 1  # run each model this many times (local target), a row each with its repeat index
    baseline: Optional[Any] = None  # a compare.Baseline: rows get relative_change and verdict as appended
    results_db: Optional[str] = None  # the results store: None = $MADENGINE_RESULTS_DB or beside perf.csv


@dataclass
class RunOutcome:
    rows: List[Dict[str, Any]] = field(default_factory=list)
    successful_runs: List[Dict[str, Any]] = field(default_factory=list)
    failed_runs: List[Dict[str, Any]] = field(default_factory=list)
    interrupted: Optional[interrupts.Interrupted] = None  # the signal that cut the run short
    kept: List[str] = field(default_factory=list)  # run directories left on purpose (--keep-model-dir)
    logs: List[str] = field(default_factory=list)  # the run log of each of `rows` ('' when none)

    def record(
        self, rows: Sequence[Dict[str, Any]], model: str, image: str, duration: float, log_path: str = ""
    ) -> None:
        self.rows.extend(rows)
        self.logs.extend([log_path] * len(rows))
        ok = all(r["status"] in (STATUS_SUCCESS, STATUS_SKIPPED) for r in rows)
        status = rows[0]["status"] if len(rows) == 1 else (STATUS_SUCCESS if ok else STATUS_FAILURE)
        entry: Dict[str, Any] = {"model": model, "image": image, "status": status, "log": log_path}
        if ok:
            entry.update(performance=rows[0]["performance"] or None, duration=round(duration, 3))
            self.successful_runs.append(entry)
        else:
            reasons = sorted({r["failure_reason"] for r in rows if r.get("failure_reason")})
            entry["error"] = ", ".join(reasons)
            entry["failure_reason"] = reasons[0] if reasons else ""
            self.failed_runs.append(entry)


def effective_timeout(cli_timeout: Optional[int], model: Mapping[str, Any]) -> Optional[int]:
    """An explicit --timeout wins (0 = none); otherwise the model's positive timeout, else 7200."""
    if cli_timeout is not None:
        if cli_timeout < -1:
            raise ConfigError(f"--timeout {cli_timeout}: must be -1 (default), 0 (no timeout) or positive")
        if cli_timeout >= 0:
            return cli_timeout or None
    raw = model.get("timeout")
    try:
        model_timeout = int(str(raw).strip()) if raw not in (None, "") else 0
    except ValueError:
        raise ConfigError(f"model '{model.get('name')}': timeout {raw!r} is not a whole number") from None
    return model_timeout if model_timeout > 0 else DEFAULT_TIMEOUT


def requested_gpus(model: Mapping[str, Any], ctx: Mapping[str, Any]) -> int:
    override = runtime_gpu_override(ctx)
    if override is not None:
        return override
    if os.environ.get("MAD_DEPLOYMENT_TYPE") == "slurm":
        for name in ("NPROC_PER_NODE", "GPUS_PER_NODE"):
            if os.environ.get(name, "").strip().isdigit():
                return int(os.environ[name])
    for key in ("gpus_per_node", "gpu_count", "n_gpus", "num_gpus", "ngpus"):
        if model.get(key) not in (None, ""):
            try:
                return int(str(model[key]).strip())
            except ValueError:
                raise ConfigError(f"model '{model.get('name')}': {key} {model[key]!r} is not a whole number") from None
    return 1


def launcher(model: Mapping[str, Any], ctx: Mapping[str, Any]) -> str:
    return str(
        (ctx.get("distributed") or {}).get("launcher")
        or (model.get("distributed") or {}).get("launcher")
        or os.environ.get("MAD_LAUNCHER")
        or "docker"
    )


def multi_node_runner(launcher_name: str, ngpus: int) -> str:
    """MAD_MULTI_NODE_RUNNER of a local (one node) run; the plain docker launcher gets torchrun, as the original."""
    name = launchers.normalise_launcher(launcher_name)
    if name == launchers.DOCKER:
        name = launchers.TORCHRUN
    return launchers.multi_node_runner(name, launchers.NodeLayout(1, max(ngpus, 1), 0, "localhost"))


def base_row(
    model: Mapping[str, Any], record: Mapping[str, Any], host: HostInfo, ctx: Mapping[str, Any], image: str, run_id: str
) -> Dict[str, Any]:
    env_overrides = ctx.get("docker_env_vars") or {}
    return {
        "model": model.get("name", record.get("model", "")),
        "n_gpus": "",
        "nnodes": "1",
        "gpus_per_node": "",
        "training_precision": model.get("training_precision", ""),
        "pipeline": os.environ.get("pipeline", ""),
        "args": model.get("args", ""),
        "tags": perf.join_list(model.get("tags", [])),
        "docker_file": record.get("dockerfile", ""),
        "base_docker": record.get("base_docker", ""),
        "docker_sha": record.get("docker_sha", ""),
        "docker_image": image,
        "git_commit": "",
        "machine_name": socket.gethostname(),
        "deployment_type": os.environ.get("MAD_DEPLOYMENT_TYPE", "local"),
        "launcher": launcher(model, ctx),
        "gpu_architecture": env_overrides.get("MAD_SYSTEM_GPU_ARCHITECTURE", host.gpu_architecture),
        "performance": "",
        "metric": "",
        "relative_change": "",
        "status": STATUS_FAILURE,
        "build_duration": record.get("build_duration", ""),
        "test_duration": "",
        "dataname": "",
        "data_provider_type": "",
        "data_size": "",
        "data_download_duration": "",
        "build_number": os.environ.get("BUILD_NUMBER", "0"),
        "additional_docker_run_options": model.get("additional_docker_run_options", ""),
        "failure_reason": "",
        "exit_code": "",
        "image_digest": record.get("image_digest", ""),
        "run_id": run_id,
        "repeat": "",
        "verdict": "",
    }


def failed_build_rows(
    failures: Sequence[Mapping[str, Any]],
    models: Sequence[Mapping[str, Any]],
    host: HostInfo,
    ctx: Mapping[str, Any],
    run_id: str,
) -> List[Dict[str, Any]]:
    by_name = {m["name"]: m for m in models}
    rows = []
    for failure in failures:
        model = by_name.get(failure["model"], {"name": failure["model"]})
        if "args" in failure:  # one of several selections of the model, each with its own args
            model = {**model, "args": failure["args"]}
        row = base_row(model, {"dockerfile": failure.get("dockerfile", "")}, host, ctx, "", run_id)
        row.update(status=STATUS_FAILURE, failure_reason=INTERRUPTED if failure.get("interrupted") else BUILD_FAILED)
        rows.append(row)
    return rows


def not_started_rows(
    manifest: Mapping[str, Any],
    models: Sequence[Mapping[str, Any]],
    host: HostInfo,
    ctx: Mapping[str, Any],
    run_id: str,
) -> List[Dict[str, Any]]:
    """NOT_STARTED rows for the entries of `manifest` and the `models` not built, when a signal ended a run
    before they ran."""
    rows = [
        base_row(e.model or {"name": e.model_name}, e.image, host, ctx, e.local_name, run_id) for e in entries(manifest)
    ]
    rows += [base_row(model, {}, host, ctx, "", run_id) for model in models]
    for row in rows:
        row.update(status=STATUS_FAILURE, failure_reason=NOT_STARTED)
    return rows


class ModelRun:
    """Everything about running one manifest entry; `execute` always returns rows."""

    def __init__(
        self,
        root: str,
        entry: ManifestEntry,
        host: HostInfo,
        options: RunOptions,
        creds: Mapping[str, Any],
        reporter: Reporter,
        space: Optional[RunSpace] = None,
        repeat: int = 0,
    ) -> None:
        self.root = root
        self.repeat = repeat  # 1..N when the model runs N > 1 times, else 0
        self.entry = entry
        self.owner: Owner = space.owner if space else this_process(options.run_id)
        self.space = space or RunSpace(root, self.owner)
        self.host = host
        self.options = options
        self.ctx = options.context
        self.creds = creds
        self.reporter = reporter
        self.model: Dict[str, Any] = dict(entry.model or {})
        if "model_args" in self.ctx:
            self.model["args"] = self.ctx["model_args"]
        self.image = entry.registry_image or entry.local_name
        self.row = base_row(self.model, entry.image, host, self.ctx, self.image, options.run_id)
        if options.machine_name:
            self.row["machine_name"] = options.machine_name
        if repeat:
            self.row["repeat"] = str(repeat)
        self.log_path = ""
        self.duration = 0.0
        self.image_record: Optional[Dict[str, Any]] = None

    def fail(self, reason: str, message: str) -> List[Dict[str, Any]]:
        self.row.update(status=STATUS_FAILURE, failure_reason=reason)
        self.reporter.warn(f"{self.row['model']}: {message}")
        return [self.row]

    def interrupted(self, exc: interrupts.Interrupted, started: bool = True) -> List[Dict[str, Any]]:
        """The row of a model that a signal stopped (started) or kept from starting."""
        if started:
            return self.fail(INTERRUPTED, f"interrupted by {exc.name}; its container was stopped and removed")
        self.row.update(status=STATUS_FAILURE, failure_reason=NOT_STARTED)
        return [self.row]

    def execute(self) -> List[Dict[str, Any]]:
        """The model's rows; a failing or vanished Docker engine makes an ENGINE_ERROR row, not an exception."""
        try:
            return self._execute()
        except DockerUnavailableError as exc:
            return self.fail(ENGINE_ERROR, exc.one_line())
        except dockerapi.engine_errors() as exc:
            return self.fail(ENGINE_ERROR, f"the Docker engine failed: {dockerapi.short_error(exc)}")

    def _execute(self) -> List[Dict[str, Any]]:
        if self.entry.model is None:
            return self.fail(
                MANIFEST_ERROR,
                f"manifest entry '{self.entry.key}' has no built_models record; rebuild the manifest with "
                "'madengine build'",
            )
        image_vendor = str(self.entry.image.get("gpu_vendor") or "")
        if image_vendor and image_vendor != self.host.gpu_vendor:
            return self.fail(
                VENDOR_MISMATCH,
                f"image {self.image} was built for {image_vendor} GPUs but this host is {self.host.gpu_vendor}",
            )
        image_arch = str(self.entry.image.get("gpu_architecture") or "")
        host_arch = self.host.short_arch()
        if self.host.gpu_vendor == "AMD" and image_arch.startswith("gfx") and host_arch and image_arch != host_arch:
            return self.fail(
                ARCH_MISMATCH, f"image {self.image} was built for {image_arch} but this host has {host_arch}"
            )
        skip = self.skip_reason()
        if skip:
            self.row.update(status=STATUS_SKIPPED, failure_reason=SKIP_GPU_ARCH)
            self.reporter.info(skip)
            return [self.row]
        try:
            self.image = self.resolve_image()
        except DockerUnavailableError:
            raise
        except MadengineError as exc:
            return self.fail(IMAGE_MISSING, exc.one_line())
        self.row["docker_image"] = self.image
        try:
            plan, timeout = self.plan()
        except DockerUnavailableError:
            raise
        except MadengineError as exc:
            return self.fail(SETUP_FAILED, exc.one_line())
        if self.options.skip_model_run:
            self.row.update(status=STATUS_SKIPPED, failure_reason=SKIP_MODEL_RUN)
            return [self.row]
        return self.run(plan, timeout)

    def skip_reason(self) -> str:
        if self.options.disable_skip_gpu_arch:
            return ""
        skip = [a.strip() for a in str(self.model.get("skip_gpu_arch") or "").split(",") if a.strip()]
        arch = self.host.short_arch()
        if arch and arch in skip:
            return f"Skipping model {self.row['model']} as it is not supported on {arch} architecture."
        return ""

    def resolve_image(self) -> str:
        """The local image to run: the registry image if present or pullable, else the build host's name."""
        local = self.entry.local_name
        remote = self.entry.registry_image
        for candidate in (remote, local):
            record = dockerapi.inspect_image(candidate) if candidate else None
            if record:
                self.image_record = record
                return candidate
        # A registry image, or an existing image named by --use-image / MAD_CONTAINER_IMAGE, can be pulled.
        pullable = remote or (local if self.entry.image.get("local_image") is True else "")
        if pullable:
            registry = str(self.entry.image.get("registry") or registry_of(pullable))
            auth = registry_auth(self.creds, registry) if registry else None
            self.reporter.info(f"pulling {pullable}")
            images.pull(pullable, auth, lambda _text: None)
            return pullable
        raise RunError(
            f"image {local} not found on this host", hint="build it first (madengine build) or push it with --registry"
        )

    def plan(self) -> tuple:
        model, ctx = self.model, self.ctx
        name = model["name"]
        scripts = str(model.get("scripts") or "")
        if not scripts:
            raise RunError(f"model '{name}': no 'scripts' in its model card")
        script_dir, prefix = containers.script_command(scripts)
        if not os.path.isdir(os.path.join(self.root, script_dir)):
            raise RunError(f"model '{name}': script directory {script_dir} not found in {self.root}")
        if model.get("url"):
            raise RunError(f"model '{name}': cloning its 'url' into the container is not supported yet")
        command = prefix + containers.split_args(str(model.get("args") or ""), name)
        gpu_ids = self.select_gpus()
        env = self.environment(len(gpu_ids))
        plan = containers.ContainerPlan(
            name=containers.container_name(
                self.image, self.options.container_suffix, self.options.run_id, self.entry.selection
            ),
            image=self.image,
            command=command,
            working_dir=containers.WORKSPACE + RUN_DIRECTORY,
            environment=env,
            binds={self.root: {"bind": containers.WORKSPACE, "mode": "rw"}},
            labels=self.owner.labels(name, keep=self.options.keep_alive),
        )
        for container_path, host_path in (ctx.get("docker_mounts") or {}).items():
            plan.binds[host_path] = {"bind": container_path, "mode": "rw"}
        if ctx.get("docker_cpus"):
            plan.cpuset_cpus = ctx["docker_cpus"].replace(" ", "")
        self.vendor_options(plan, gpu_ids)
        if model.get("additional_docker_run_options"):
            containers.apply_run_options(plan, str(model["additional_docker_run_options"]), name)
        n = str(len(gpu_ids))
        self.row.update(n_gpus=n, gpus_per_node=n)
        return plan, effective_timeout(self.options.timeout, model)

    def select_gpus(self) -> List[int]:
        if self.host.gpu_vendor == "CPU":
            return []
        available = parse_gpu_list(self.ctx.get("docker_gpus") or self.host.docker_gpus())
        name = self.model["name"]
        beyond = [g for g in available if g >= self.host.ngpus]
        if beyond:
            raise RunError(
                f"model '{name}': docker_gpus names GPU {beyond[0]} but this host has {self.host.ngpus} GPUs "
                f"(0-{self.host.ngpus - 1})"
            )
        wanted = requested_gpus(self.model, self.ctx)
        if wanted == -1:
            return available
        if wanted < -1:
            raise RunError(f"model '{name}': {wanted} GPUs requested; use a count or -1 for all")
        if wanted > len(available):
            raise RunError(
                f"model '{name}': {wanted} GPUs requested but only {len(available)} available "
                f"(docker_gpus {self.ctx.get('docker_gpus') or self.host.docker_gpus()})"
            )
        return available[:wanted]

    def environment(self, ngpus: int) -> Dict[str, str]:
        model, host, ctx = self.model, self.host, self.ctx
        env: Dict[str, str] = {
            "MAD_MODEL_NAME": model["name"],
            "JENKINS_BUILD_NUMBER": os.environ.get("BUILD_NUMBER", "0"),
            "MAD_GPU_VENDOR": host.gpu_vendor,
            "MAD_SYSTEM_NGPUS": str(host.ngpus),
            "MAD_SYSTEM_GPU_ARCHITECTURE": host.gpu_architecture,
            "MAD_SYSTEM_HIP_VERSION": host.hip_version,
            "MAD_SYSTEM_GPU_PRODUCT_NAME": host.gpu_product_name,
            "MAD_RUNTIME_NGPUS": str(ngpus),
            "MAD_GUEST_OS": str(ctx.get("guest_os") or "UBUNTU").upper(),
            "MAD_MULTI_NODE_RUNNER": multi_node_runner(launcher(model, ctx), ngpus),
        }
        if model.get("multiple_results"):
            env["MAD_OUTPUT_CSV"] = str(model["multiple_results"])
        if model.get("data"):
            env["MAD_DATANAME"] = str(model["data"])
            self.reporter.warn(
                f"{model['name']}: data providers are not supported yet; running without data mounts "
                "(data.json is not read)"
            )
        if host.gpu_vendor == "AMD":
            env["ROCM_PATH"] = self.container_rocm_path()
        env.update(model_credential_env(model, self.creds))
        if os.environ.get("MAD_DEPLOYMENT_TYPE") == "slurm":
            env.update({k: os.environ[k] for k in containers.SLURM_PASSTHROUGH if k in os.environ})
        if "MIOPEN_USER_DB_PATH" in os.environ:
            env["MIOPEN_USER_DB_PATH"] = os.environ["MIOPEN_USER_DB_PATH"]
        env.update(secret_env())
        env.update(ctx.get("docker_env_vars") or {})
        if "HIP_VISIBLE_DEVICES" in env:
            env["RAY_EXPERIMENTAL_NOSET_HIP_VISIBLE_DEVICES"] = ""
        return env

    def container_rocm_path(self) -> str:
        user = (self.ctx.get("docker_env_vars") or {}).get("ROCM_PATH")
        if user:
            return user
        record = self.image_record or dockerapi.inspect_image(self.image) or {}
        for item in (record.get("Config") or {}).get("Env") or []:
            key, _sep, value = item.partition("=")
            if key in ("ROCM_PATH", "ROCM_HOME") and value:
                return value
        self.reporter.warn(
            f"{self.model['name']}: image {self.image} sets no ROCM_PATH; using /opt/rocm "
            """(pin it with -c '{"docker_env_vars": {"ROCM_PATH": "..."}}')"""
        )
        return "/opt/rocm"

    def vendor_options(self, plan: containers.ContainerPlan, gpu_ids: List[int]) -> None:
        vendor = self.host.gpu_vendor
        if vendor == "CPU":
            return
        plan.cap_add += ["SYS_PTRACE", "SYS_ADMIN"] + (["SYS_NICE"] if vendor == "NVIDIA" else [])
        plan.security_opt += ["seccomp=unconfined", "apparmor=unconfined"]
        if os.path.exists("/dev/fuse"):
            plan.devices.append("/dev/fuse")
        if vendor == "AMD":
            plan.group_add.append("video")
            plan.devices.append("/dev/kfd")
            for gpu in gpu_ids:
                if gpu < len(self.host.render_devices):
                    plan.devices.append(f"/dev/dri/renderD{self.host.render_devices[gpu]}")
        elif vendor == "NVIDIA":
            plan.gpu_ids = list(gpu_ids)

    def run(self, plan: containers.ContainerPlan, timeout: Optional[int]) -> List[Dict[str, Any]]:
        """Run the model in its own copy of the script directory (this run's slot, mounted over
        /myworkspace/run_directory); the log is written in the run's directory and published when it ends."""
        name = self.model["name"]
        base = dockerfiles.run_log_base(name, self.image) + (f"-{self.entry.selection}" if self.entry.selection else "")
        base += f".repeat{self.repeat}" if self.repeat else ""
        self.log_path = os.path.join(self.root, base + ".run.live.log")
        started_wall = time.time()
        script_dir = containers.script_command(str(self.model["scripts"]))[0]
        slot_name = f"{base}{'.' + self.options.container_suffix if self.options.container_suffix else ''}"
        try:
            run_dir = self.space.slot(slot_name, os.path.join(self.root, script_dir))
        except OSError as exc:
            return self.fail(SETUP_FAILED, f"cannot prepare the run directory: {exc}")
        plan.binds[run_dir] = {"bind": containers.WORKSPACE + RUN_DIRECTORY, "mode": "rw"}
        keep_dir = self.options.keep_model_dir or self.options.keep_alive
        live_log = self.space.log_path(safe_name(slot_name) + ".run.live.log")
        try:
            rows = self._run_logged(plan, timeout, live_log, run_dir, started_wall)
        finally:
            with interrupts.deferred(raise_pending=False):
                self._publish_log(live_log)
                self.space.release(run_dir, keep_dir)
        return rows

    def _run_logged(
        self, plan: containers.ContainerPlan, timeout: Optional[int], live_log: str, run_dir: str, started_wall: float
    ) -> List[Dict[str, Any]]:
        with open(live_log, "w", encoding="utf-8") as log:
            log.write(
                f"⏰ Setting timeout to {timeout} seconds.\n" if timeout else "⏰ Setting timeout to None seconds.\n"
            )
            log.write("> " + plan.display_command() + "\n")
            log.flush()

            def sink(text: str) -> None:
                log.write(text)
                log.flush()
                if self.options.live_output:
                    self.reporter.live(text)

            try:
                outcome = containers.run_container(plan, timeout, sink, keep=self.options.keep_alive)
            except interrupts.Interrupted as exc:
                log.write(f"\nInterrupted by {exc.name}: the container was stopped and removed.\n")
                raise
            except RunError as exc:
                return self.fail(SETUP_FAILED, exc.one_line())
            log.write(f"\nTest Duration: {outcome.duration:.2f} seconds\ntest_duration: {outcome.duration:.2f}s\n")
        self.duration = outcome.duration
        return self.results(outcome, run_dir, started_wall)

    def _publish_log(self, live_log: str) -> None:
        """The run's log replaces <model>_<dockerfile>.run.live.log in the package in one step: concurrent runs
        of the same model never interleave their lines there."""
        if os.path.isfile(live_log):
            try:
                os.replace(live_log, self.log_path)
            except OSError as exc:
                self.reporter.warn(f"{self.row['model']}: cannot publish its log to {self.log_path}: {exc}")
                self.log_path = live_log

    def results(self, outcome: containers.ContainerOutcome, run_dir: str, started_wall: float) -> List[Dict[str, Any]]:
        row = self.row
        row["test_duration"] = f"{outcome.duration:.3f}"
        row["exit_code"] = "" if outcome.exit_code is None else str(outcome.exit_code)
        record = self.image_record or dockerapi.inspect_image(self.image)
        row["image_digest"] = row["image_digest"] or images.repo_digest(self.image, record)
        scan = perf.ScanConfig.from_settings(self.model, self.ctx)
        error = perf.find_error_pattern(outcome.output, scan)
        multiple = str(self.model.get("multiple_results") or "")
        rows: List[Dict[str, Any]]
        if multiple:
            rows = self.multiple_rows(multiple, run_dir, started_wall)
        else:
            value, metric = perf.parse_performance(outcome.output)
            row.update(performance=value, metric=metric)
            rows = [row]
        reason = ""
        if outcome.timed_out:
            reason, detail = TIMEOUT, f"timed out after {outcome.duration:.0f} s"
        elif outcome.exit_code not in (0, None):
            reason, detail = EXIT_CODE, f"exit code {outcome.exit_code}"
        elif error:
            reason, detail = ERROR_PATTERN, f"error pattern '{error}' in the output"
        if not settle_rows(rows, reason) and not reason:
            reason, detail = NO_METRIC, "no performance metric in the output"
        if reason:
            self.reporter.warn(f"{row['model']}: {detail} (log: {os.path.relpath(self.log_path, self.root)})")
        return rows

    def multiple_rows(self, name: str, run_dir: str, started_wall: float) -> List[Dict[str, Any]]:
        """Rows of the model's results CSV, read from its own run directory (a copy in the package, written by
        another run at the same time, could hold that run's numbers); the copy is replaced in one step."""
        source = os.path.join(run_dir, name)
        target = os.path.join(self.root, name)
        if os.path.isfile(source):
            with open(source, encoding="utf-8", errors="replace") as handle:
                text = handle.read()
            with atomic.replacing(target) as copy:
                copy.write(text)
        elif os.path.isfile(target) and os.path.getmtime(target) >= started_wall:
            with open(target, encoding="utf-8", errors="replace") as handle:
                text = handle.read()
        else:
            self.reporter.warn(f"{self.row['model']}: multiple_results file {name} was not written")
            return [self.row]
        try:
            csv_rows = perf.read_multiple_results(text, name)
        except perf.ResultsCsvError as exc:
            self.reporter.warn(f"{self.row['model']}: {exc}")
            return [self.row]
        rows = []
        for csv_row in csv_rows:
            row = dict(self.row)
            for key, value in csv_row.items():
                row[key] = value
            row["model"] = f"{self.row['model']}_{csv_row['model']}"
            rows.append(row)
        return rows


def settle_rows(rows: Sequence[Dict[str, Any]], reason: str) -> bool:
    """Each row's status: FAILURE with `reason` when there is one, else SUCCESS when it has a performance value
    (or MAD_COLLECT_METRICS=false), else FAILURE NO_METRIC. False when some row has no metric."""
    metrics_optional = os.environ.get("MAD_COLLECT_METRICS", "").lower() == "false"
    for row in rows:
        if reason:
            row.update(status=STATUS_FAILURE, failure_reason=reason)
        elif row.get("performance") or metrics_optional:
            row.update(status=STATUS_SUCCESS, failure_reason="")
        else:
            row.update(status=STATUS_FAILURE, failure_reason=NO_METRIC)
    return not any(row["failure_reason"] == NO_METRIC for row in rows)


def run_entries(
    root: str,
    manifest: Mapping[str, Any],
    host: HostInfo,
    options: RunOptions,
    reporter: Optional[Reporter] = None,
    outcome: Optional[RunOutcome] = None,
) -> RunOutcome:
    """Run every entry; each ends as rows appended to perf.csv. SIGINT, SIGTERM or SIGHUP stop the running
    model's container (INTERRUPTED row) and leave the rest unstarted (NOT_STARTED rows); outcome.interrupted
    says which signal came."""
    reporter = reporter or Reporter()
    outcome = outcome or RunOutcome()
    root = os.path.abspath(root)
    creds = {**load_credentials(root), **options.extra_credentials}
    space = RunSpace(root, this_process(options.run_id))
    if options.write_perf:
        perfcsv.check_writable(os.path.join(root, options.output))
    warn_leftovers(root, reporter)
    repeats = max(options.repeat, 1)
    with interrupts.guarded():
        try:
            for entry, repeat in ((e, r) for e in entries(manifest) for r in range(1, repeats + 1)):
                job = ModelRun(root, entry, host, options, creds, reporter, space, repeat if repeats > 1 else 0)
                outcome.interrupted = outcome.interrupted or interrupts.take()
                if outcome.interrupted is not None:
                    rows = job.interrupted(outcome.interrupted, started=False)
                else:
                    try:
                        with interrupts.allowed():
                            rows = job.execute()
                    except interrupts.Interrupted as exc:
                        outcome.interrupted = exc
                        rows = job.interrupted(exc)
                finish_model(root, options, outcome, job, rows, reporter)
            outcome.interrupted = outcome.interrupted or interrupts.take()
        finally:
            kept = space.close()
    if kept:
        outcome.kept.append(kept)
        reporter.info(f"run directories kept in {os.path.relpath(kept, root)}")
    return outcome


def finish_model(
    root: str, options: RunOptions, outcome: RunOutcome, job: ModelRun, rows: List[Dict[str, Any]], reporter: Reporter
) -> None:
    compare.annotate_rows(rows, options.baseline)
    if options.write_perf:
        perfcsv.write_entry_files(root, outcome.rows + rows)
        perfcsv.append_rows(os.path.join(root, options.output), rows)
        write_perf_super(root, job.model, rows, list(job.row), reporter.warn)
    outcome.record(rows, job.row["model"], job.image, job.duration, job.log_path)
    reporter.model_done(
        job.row["model"],
        "run",
        rows[0]["status"]
        if len(rows) == 1
        else (STATUS_SUCCESS if all(r["status"] == STATUS_SUCCESS for r in rows) else STATUS_FAILURE),
        rows[0].get("failure_reason", ""),
    )


def warn_leftovers(root: str, reporter: Reporter) -> None:
    """Say so when killed runs left containers or run directories behind (`madengine clean` removes them)."""
    try:
        found = cleanup.find(root)
    except MadengineError:
        return  # the run itself reports an engine that cannot be reached
    except dockerapi.engine_errors():
        return
    if found:
        runs = sorted({item.run_id for item in found})
        reporter.warn(
            f"{len(found)} container(s)/run directories of runs that ended without cleaning up "
            f"(run {', '.join(runs[:5])}{', ...' if len(runs) > 5 else ''}); remove them with 'madengine clean'"
        )
