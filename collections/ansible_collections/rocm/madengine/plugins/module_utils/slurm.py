"""The SLURM target from the login node: plan jobs, write their scripts, submit, wait, collect rows.

Every model of the manifest ends as a row: the rows its task wrote, or a FAILURE row saying what SLURM did
to it (never submitted, time limit, cancelled, node failure, ...).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple

from . import interrupts, launchers, perfcsv, slurm_script
from .commands import CommandResult, Runner, run_command, which
from .deployment import SLURM, DeployOutcome, DeployRequest, Target, deploy, interruptible
from .errors import ConfigError
from .hostinfo import CPU_HOST
from .manifest import ManifestEntry, entries
from .perfcsv import STATUS_FAILURE
from .reporting import Reporter
from .run import INTERRUPTED, NOT_STARTED
from .slurm_config import SlurmSettings, parse_settings, resolve_madengine_command
from .slurm_job import TASK_INDEX_ENV, JobSpec, task_dir

TERMINAL_STATES = (
    "COMPLETED",
    "FAILED",
    "TIMEOUT",
    "CANCELLED",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "PREEMPTED",
    "BOOT_FAIL",
    "DEADLINE",
    "REVOKED",
    "SPECIAL_EXIT",
)
SUBMIT_FAILED, WAIT_TIMEOUT, NO_RESULT = "SUBMIT_FAILED", "WAIT_TIMEOUT", "NO_RESULT"
STATE_FILE = "jobs.json"
_SAFE_PATH = re.compile(r"^[A-Za-z0-9_./@+-]+$")


@dataclass
class TaskState:
    state: str  # a SLURM job state, or PENDING/RUNNING/UNKNOWN
    exit_code: str = ""
    reason: str = ""
    nodes: str = ""
    purged: bool = False  # slurmctld no longer knows the job: it ended, and how is unknown

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES or self.purged


@dataclass
class JobPlan:
    """One sbatch submission: a single model, or an array with one task per model."""

    name: str
    entries: List[ManifestEntry]
    gpus_per_node: int
    launcher: str
    script_path: str = ""
    spec_path: str = ""
    job_id: str = ""
    submit_error: str = ""
    states: Dict[int, TaskState] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.entries)

    def task_label(self, index: int) -> str:
        return f"{self.job_id}_{index}" if self.size > 1 else self.job_id


@dataclass
class SlurmRequest:
    """Everything the target needs besides the manifest."""

    settings: SlurmSettings
    context: Mapping[str, Any]
    package_root: str
    manifest_path: str
    run_id: str
    timeout: Optional[int] = None
    check_mode: bool = False
    submit: bool = True  # False: write the scripts only (madengine generate slurm)


class SlurmOutcome(DeployOutcome):
    """The deployment outcome, plus the SLURM jobs: their plans, reused job ids, sbatch --test-only answers."""

    def __init__(self, plans: List[JobPlan], results_dir: str, **fields: Any) -> None:
        super().__init__(target=SLURM, results_dir=results_dir, **fields)
        self.plans = plans
        self.reused: List[str] = []
        self.in_allocation = False
        self.test_only: List[Dict[str, str]] = []

    @property
    def in_allocation(self) -> bool:
        """The jobs ran in the allocation madengine itself runs in (no sbatch); reported in the summary."""
        return bool(self.details.get("in_allocation"))

    @in_allocation.setter
    def in_allocation(self, value: bool) -> None:
        self.details["in_allocation"] = value

    def jobs(self) -> List[Dict[str, Any]]:
        result = []
        for plan in self.plans:
            for index, entry in enumerate(plan.entries):
                state = plan.states.get(index, TaskState("UNKNOWN"))
                result.append(
                    {
                        "model": entry.model_name,
                        "job_name": plan.name,
                        "job_id": plan.task_label(index) if plan.job_id else "",
                        "state": state.state,
                        "exit_code": state.exit_code,
                        "reason": state.reason or plan.submit_error,
                        "script": plan.script_path,
                    }
                )
        return result


# ---------------------------------------------------------------- the SLURM commands


class SlurmClient:
    def __init__(self, runner: Runner = run_command) -> None:
        self.runner = runner

    def _run(self, argv: List[str], timeout: float = 60) -> CommandResult:
        return self.runner(argv, timeout=timeout)

    def require(self) -> None:
        for tool in ("sbatch", "scontrol", "scancel"):
            if not which(tool):
                raise ConfigError(
                    f"slurm: '{tool}' not found on PATH",
                    hint="run madengine on a SLURM login node (set SLURM_CONF if the cluster needs it)",
                )

    def submit(self, script: str, test_only: bool = False) -> CommandResult:
        return self._run(["sbatch", "--parsable"] + (["--test-only"] if test_only else []) + [script])

    def cancel(self, job_ids: List[str]) -> None:
        if job_ids:
            self._run(["scancel"] + job_ids)

    def states(self, job_id: str, size: int) -> Dict[int, TaskState]:
        shown = self._run(["scontrol", "show", "job", "-o", job_id])
        if shown.ok and shown.stdout.strip():
            return parse_scontrol(shown.stdout, size)
        result = self._run(["sacct", "-j", job_id, "-X", "-P", "-n", "-o", "JobID,State,ExitCode,NodeList"])
        if result.ok and result.stdout.strip():
            return parse_sacct(result.stdout, job_id, size)
        # slurmctld forgets finished jobs after MinJobAge; without accounting that is all there is to know.
        purged = "Invalid job id" in shown.stderr
        reason = "ended; SLURM no longer lists it" if purged else _first_error(shown)
        return {index: TaskState("UNKNOWN", reason=reason, purged=purged) for index in range(size)}


_FIELD = re.compile(r"(\w+)=(\S*)")


def _indices(spec: str, size: int) -> List[int]:
    """'3' -> [3]; '0-2' -> [0,1,2]; '1,3-4%2' -> [1,3,4]; '' (not an array) -> all."""
    if not spec:
        return list(range(size))
    found: List[int] = []
    for part in spec.split("%")[0].strip("[]").split(","):
        low, _sep, high = part.partition("-")
        if low.isdigit():
            found.extend(range(int(low), int(high or low) + 1))
    return [i for i in found if i < size]


def parse_scontrol(text: str, size: int) -> Dict[int, TaskState]:
    states: Dict[int, TaskState] = {}
    for line in text.splitlines():
        fields = dict(_FIELD.findall(line))
        if "JobState" not in fields:
            continue
        state = TaskState(
            fields["JobState"],
            fields.get("ExitCode", ""),
            "" if fields.get("Reason") in (None, "None") else fields["Reason"],
            fields.get("NodeList", "") if fields.get("NodeList") != "(null)" else "",
        )
        for index in _indices(fields.get("ArrayTaskId", ""), size):
            states[index] = state
    return states


def parse_sacct(text: str, job_id: str, size: int) -> Dict[int, TaskState]:
    states: Dict[int, TaskState] = {}
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) < 3:
            continue
        job, state, exit_code = parts[0], parts[1].split()[0] if parts[1] else "UNKNOWN", parts[2]
        nodes = parts[3] if len(parts) > 3 and parts[3] != "None assigned" else ""
        base, _sep, task = job.partition("_")
        if base != job_id:
            continue
        for index in _indices(task, size):
            states[index] = TaskState(state, exit_code, "", nodes)
    return states


# ---------------------------------------------------------------- planning and writing the jobs


def resolve_launcher(entry: ManifestEntry, ctx: Mapping[str, Any]) -> str:
    model_distributed = (entry.model or {}).get("distributed") or {}
    return launchers.normalise_launcher(
        (ctx.get("distributed") or {}).get("launcher") or model_distributed.get("launcher") or None
    )


def resolve_gpus(entry: ManifestEntry, settings: SlurmSettings, ctx: Mapping[str, Any], vendor: str) -> int:
    from .run import requested_gpus

    if settings.gpus_per_node is not None:
        return settings.gpus_per_node
    image_vendor = str(entry.image.get("gpu_vendor") or vendor or "")
    if image_vendor == "CPU":
        return 0
    wanted = requested_gpus(entry.model or {}, ctx)
    if wanted < 1:
        raise ConfigError(
            f"model '{entry.model_name}': asks for all GPUs ({wanted}); SLURM needs a number",
            hint="set slurm.gpus_per_node",
        )
    return wanted


def plan_jobs(manifest: Mapping[str, Any], request: SlurmRequest) -> List[JobPlan]:
    """Models that need the same resources go as one array (or one job each with array: false)."""
    settings, ctx = request.settings, request.context
    vendor = str(ctx.get("gpu_vendor") or (manifest.get("context") or {}).get("gpu_vendor") or "")
    groups: Dict[Tuple[int, str], List[ManifestEntry]] = {}
    for entry in entries(manifest):
        if entry.model is None:
            raise ConfigError(f"manifest entry '{entry.key}' has no built_models record")
        key = (resolve_gpus(entry, settings, ctx, vendor), resolve_launcher(entry, ctx))
        groups.setdefault(key, []).append(entry)
    plans: List[JobPlan] = []
    for (gpus, launcher), members in groups.items():
        batches = [members] if settings.array and launcher != "slurm_multi" else [[m] for m in members]
        for batch in batches:
            plans.append(JobPlan(f"madengine-{request.run_id}-{len(plans)}", batch, gpus, launcher))
    return plans


def results_dir(request: SlurmRequest) -> str:
    base = request.settings.output_dir
    base = base if os.path.isabs(base) else os.path.join(request.package_root, base)
    path = os.path.join(base, request.run_id)
    if not _SAFE_PATH.fullmatch(path):
        raise ConfigError(
            f"slurm.output_dir {path!r}: SLURM log paths cannot contain spaces, quotes or shell characters",
            hint="choose a plain directory path",
        )
    return path


def write_jobs(plans: List[JobPlan], request: SlurmRequest, directory: str, files_dir: Optional[str] = None) -> None:
    """The spec and script of each plan, into files_dir (default: the results directory itself)."""
    settings = request.settings
    madengine = resolve_madengine_command(settings, which)
    files_dir = files_dir or directory
    if files_dir == directory:
        os.makedirs(os.path.join(directory, "logs"), exist_ok=True)
    distributed = dict(request.context.get("distributed") or {})
    for plan in plans:
        spec = JobSpec(
            run_id=request.run_id,
            manifest=os.path.abspath(request.manifest_path),
            package_root=os.path.abspath(request.package_root),
            results_dir=directory,
            models=[e.key for e in plan.entries],
            nodes=settings.nodes,
            gpus_per_node=plan.gpus_per_node,
            launcher=plan.launcher,
            distributed={**((plan.entries[0].model or {}).get("distributed") or {}), **distributed},
            context={k: v for k, v in request.context.items() if k != "slurm"},
            timeout=request.timeout,
            network_interface=settings.network_interface,
        )
        plan.spec_path = os.path.join(files_dir, plan.name + ".json")
        plan.script_path = os.path.join(files_dir, plan.name + ".sh")
        spec.write(plan.spec_path)
        pattern = "%A_%a" if plan.size > 1 else "%j"
        script = slurm_script.render(
            slurm_script.ScriptInputs(
                settings=settings,
                job_name=plan.name,
                run_id=request.run_id,
                spec_path=plan.spec_path,
                log_pattern=os.path.join(directory, "logs", f"{plan.name}_{pattern}.out"),
                madengine=madengine,
                array_size=plan.size,
                gpus_per_node=plan.gpus_per_node,
                self_managed=plan.launcher == "slurm_multi",
            )
        )
        with open(plan.script_path, "w", encoding="utf-8") as handle:
            handle.write(script)
        os.chmod(plan.script_path, 0o755)


# ---------------------------------------------------------------- submission, waiting, cancelling


def _load_state(directory: str) -> Dict[str, Any]:
    path = os.path.join(directory, STATE_FILE)
    if not os.path.isfile(path):
        return {"jobs": {}, "collected": False}
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    jobs = {str(k): str(v) for k, v in (data.get("jobs") or {}).items()}
    return {"jobs": jobs, "collected": bool(data.get("collected"))}


def _save_state(directory: str, run_id: str, plans: List[JobPlan], collected: bool = False) -> None:
    path = os.path.join(directory, STATE_FILE)
    jobs = {p.name: p.job_id for p in plans if p.job_id}
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        json.dump({"run_id": run_id, "jobs": jobs, "collected": collected}, handle, indent=2)
    os.replace(path + ".tmp", path)


def submit_jobs(
    plans: List[JobPlan], client: SlurmClient, outcome: SlurmOutcome, run_id: str, reporter: Reporter
) -> None:
    """sbatch each plan once per run id: a plan already in jobs.json is not submitted again."""
    known = _load_state(outcome.results_dir)["jobs"]
    with cancel_on_interrupt(plans, client, outcome, reporter):
        for plan in plans:
            if plan.name in known:
                plan.job_id = known[plan.name]
                outcome.reused.append(plan.job_id)
                continue
            result = client.submit(plan.script_path)
            if result.ok and result.stdout.strip():
                plan.job_id = result.stdout.strip().split(";")[0]
                outcome.submitted.append(plan.job_id)
                outcome.changed = True
                reporter.info(f"submitted {plan.name} as job {plan.job_id} ({plan.size} model(s))")
            else:
                plan.submit_error = _first_error(result)
                reporter.warn(f"sbatch {plan.name} failed: {plan.submit_error}")
            _save_state(outcome.results_dir, run_id, plans)


def _first_error(result: CommandResult) -> str:
    lines = [line.strip() for line in (result.stderr or result.stdout).splitlines() if line.strip()]
    return (lines[-1] if lines else f"exit code {result.rc}")[:300]


def test_jobs(plans: List[JobPlan], client: SlurmClient, outcome: SlurmOutcome) -> None:
    """Check mode: `sbatch --test-only` says whether and where each job would start."""
    for plan in plans:
        result = client.submit(plan.script_path, test_only=True)
        message = _first_error(result)
        outcome.test_only.append({"job_name": plan.name, "ok": str(result.ok).lower(), "message": message})
        if not result.ok:
            plan.submit_error = message


@contextlib.contextmanager
def cancel_on_interrupt(
    plans: List[JobPlan], client: SlurmClient, outcome: SlurmOutcome, reporter: Reporter
) -> Iterator[None]:
    """Ctrl-C, SIGTERM or SIGHUP (the play or the job around us ends) inside the block: cancel the jobs of
    `plans` submitted so far, mark every unfinished model INTERRUPTED and carry on, so the rows are written."""

    def cancel(exc: interrupts.Interrupted) -> None:
        reporter.warn(f"interrupted by {exc.name}; cancelling the submitted jobs")
        _cancel(plans, client, outcome, INTERRUPTED)
        outcome.interrupted = exc

    with interruptible(cancel):
        yield


def wait_jobs(
    plans: List[JobPlan],
    client: SlurmClient,
    settings: SlurmSettings,
    outcome: SlurmOutcome,
    reporter: Reporter,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Poll until every job is terminal; on the wait timeout or an interruption, cancel our jobs (and say so)."""
    live = [p for p in plans if p.job_id]
    deadline = clock() + settings.wait_timeout if settings.wait_timeout else None
    polls = 0
    with cancel_on_interrupt(live, client, outcome, reporter):
        while True:
            pending = False
            for plan in live:
                plan.states = client.states(plan.job_id, plan.size)
                pending = pending or not all(
                    plan.states.get(i, TaskState("PENDING")).terminal for i in range(plan.size)
                )
            if not pending:
                return
            if deadline is not None and clock() >= deadline:
                reporter.warn(f"slurm.wait_timeout {settings.wait_timeout} s reached; cancelling the jobs")
                _cancel(live, client, outcome, WAIT_TIMEOUT)
                return
            # Short jobs come back quickly: look again after 0.25 s, 0.35 s, 0.45 s, ... up to wait_sleep.
            sleep(min(float(settings.wait_sleep), 0.25 + 0.1 * polls))
            polls += 1


def _cancel(plans: List[JobPlan], client: SlurmClient, outcome: SlurmOutcome, reason: str) -> None:
    ids = [
        p.job_id
        for p in plans
        if p.job_id and (not all(s.terminal for s in p.states.values()) or len(p.states) < p.size)
    ]
    client.cancel(ids)
    outcome.cancelled.extend(ids)
    for plan in plans:
        for index in range(plan.size):
            state = plan.states.get(index)
            if state is None or not state.terminal:
                plan.states[index] = TaskState("CANCELLED", reason=reason)


def run_in_allocation(plans: List[JobPlan], outcome: SlurmOutcome, reporter: Reporter) -> None:
    """Inside salloc/an existing job: run each task's script here, one after another, instead of sbatch."""
    import subprocess

    outcome.in_allocation = True
    job_id = os.environ.get("SLURM_JOB_ID", "")
    for plan in plans:
        plan.job_id = job_id
        for index in range(plan.size):
            env = dict(os.environ, **{TASK_INDEX_ENV: str(index)})
            log = os.path.join(outcome.results_dir, "logs", f"{plan.name}_{job_id}_{index}.out")
            reporter.info(f"running {plan.entries[index].model_name} in allocation {job_id}")
            with open(log, "w", encoding="utf-8") as handle:
                rc = subprocess.run(
                    ["bash", plan.script_path], env=env, stdout=handle, stderr=subprocess.STDOUT, check=False
                ).returncode
            plan.states[index] = TaskState("COMPLETED" if rc == 0 else "FAILED", f"{rc}:0")
        outcome.changed = True


# ---------------------------------------------------------------- collecting rows


def failure_row(entry: ManifestEntry, request: SlurmRequest, reason: str) -> Dict[str, Any]:
    from .run import base_row

    image = entry.registry_image or entry.local_name
    row = base_row(
        entry.model or {"name": entry.model_name}, entry.image, CPU_HOST, request.context, image, request.run_id
    )
    row.update(
        status=STATUS_FAILURE,
        failure_reason=reason,
        deployment_type="slurm",
        machine_name="",
        nnodes=str(request.settings.nodes),
    )
    return {key: "" if value is None else str(value) for key, value in row.items()}


def state_reason(plan: JobPlan, index: int) -> Tuple[str, str]:
    """(failure_reason, words) for a task that left no rows."""
    if plan.submit_error:
        return SUBMIT_FAILED, f"sbatch failed: {plan.submit_error}"
    state = plan.states.get(index, TaskState("UNKNOWN"))
    label = f"job {plan.task_label(index)}"
    if state.reason in (WAIT_TIMEOUT, INTERRUPTED):
        if not plan.job_id:
            return state.reason, f"{plan.name} was not submitted: madengine was interrupted first"
        return state.reason, f"{label} cancelled by madengine ({state.reason.lower().replace('_', ' ')})"
    if state.state == "COMPLETED":
        return NO_RESULT, f"{label} completed but wrote no perf rows"
    detail = f" ({state.reason})" if state.reason else ""
    return f"SLURM_{state.state}", f"{label} ended {state.state}{detail}"


def collect_rows(
    plans: List[JobPlan], request: SlurmRequest, directory: str, reporter: Reporter
) -> List[Dict[str, Any]]:
    rows: List[Dict[str, Any]] = []
    nodes = request.settings.nodes
    for plan in plans:
        span = 1 if plan.launcher == "slurm_multi" else nodes
        for index, entry in enumerate(plan.entries):
            head = task_dir(directory, entry.task_name, 0, span)
            task_rows = perfcsv.read_rows(os.path.join(head, "perf.csv"))
            if task_rows:
                _apply_node_failures(task_rows, directory, entry.task_name, span, reporter)
                _apply_job_end(task_rows, plan, index)
                for row in task_rows:
                    row.update(deployment_type="slurm", nnodes=str(nodes))
                rows.extend(task_rows)
                continue
            reason, words = state_reason(plan, index)
            log = _task_log(directory, plan, index)
            reporter.warn(f"{entry.model_name}: {words}" + (f" (log: {log})" if log else ""))
            rows.append(failure_row(entry, request, reason))
    return rows


def _apply_job_end(rows: List[Dict[str, Any]], plan: JobPlan, index: int) -> None:
    """The task writes INTERRUPTED rows when SLURM signals it; the job's state says why (SLURM_TIMEOUT,
    SLURM_CANCELLED, SLURM_PREEMPTED, madengine's own cancel, ...)."""
    state = plan.states.get(index)
    if state is None or not state.terminal or state.state == "COMPLETED":
        return
    reason = state_reason(plan, index)[0]
    for row in rows:
        if row.get("failure_reason") in (INTERRUPTED, NOT_STARTED):
            row["failure_reason"] = reason


def _apply_node_failures(
    rows: List[Dict[str, Any]], directory: str, model: str, nodes: int, reporter: Reporter
) -> None:
    """A multi-node model fails when any node's task failed, not only when node 0 did."""
    for rank in range(1, nodes):
        node_rows = perfcsv.read_rows(os.path.join(task_dir(directory, model, rank, nodes), "perf.csv"))
        failed = [r for r in node_rows if r.get("status") == STATUS_FAILURE]
        if failed or not node_rows:
            reason = failed[0].get("failure_reason", "") if failed else NO_RESULT
            reporter.warn(f"{model}: node {rank} failed ({reason})")
            for row in rows:
                row.update(status=STATUS_FAILURE, failure_reason=f"NODE_{rank}_{reason}")
            return


def _task_log(directory: str, plan: JobPlan, index: int) -> str:
    name = f"{plan.name}_{plan.job_id}_{index}.out" if plan.size > 1 else f"{plan.name}_{plan.job_id}.out"
    path = os.path.join(directory, "logs", name)
    return path if plan.job_id and os.path.isfile(path) else ""


# ---------------------------------------------------------------- the whole target


class SlurmTarget(Target):
    """Every model as an sbatch job (models with the same resources share an array); each task runs
    `madengine slurm-task` on its node and writes its rows where the login node collects them."""

    name = SLURM
    outcome: SlurmOutcome

    def __init__(
        self,
        request: DeployRequest,
        reporter: Reporter,
        slurm_request: Optional[SlurmRequest] = None,
        runner: Runner = run_command,
    ) -> None:
        super().__init__(request, reporter)
        self.slurm = slurm_request or SlurmRequest(
            settings=parse_settings(request.context.get("slurm")),
            context=request.context,
            package_root=os.path.abspath(request.root),
            manifest_path=request.manifest_path,
            run_id=request.run_id,
            timeout=request.options.timeout,
            submit=request.submit,
            check_mode=request.check_mode,
        )
        self.client = SlurmClient(runner)
        self.in_allocation = bool(os.environ.get("SLURM_JOB_ID"))
        self.waits = self.slurm.settings.wait or self.in_allocation
        self.plans: List[JobPlan] = []
        self.outcome = SlurmOutcome([], "")
        self._rows: List[Dict[str, Any]] = []

    def prepare(self) -> None:
        self.plans = plan_jobs(self.request.manifest, self.slurm)
        directory = results_dir(self.slurm)
        self.outcome.plans, self.outcome.results_dir = self.plans, directory
        if not self.slurm.check_mode:
            write_jobs(self.plans, self.slurm, directory)

    def check(self) -> None:
        """Write nothing; ask sbatch --test-only about the jobs this run id has not submitted yet."""
        directory, outcome = self.outcome.results_dir, self.outcome
        state = _load_state(directory)
        known = state["jobs"]
        with tempfile.TemporaryDirectory(prefix="madengine-slurm-check-") as scratch:
            write_jobs(self.plans, self.slurm, directory, files_dir=scratch)
            pending = [p for p in self.plans if p.name not in known]
            if pending and not self.in_allocation:
                self.client.require()
                test_jobs(pending, self.client, outcome)
        for plan in self.plans:
            plan.job_id = known.get(plan.name, "")
            plan.script_path = os.path.join(directory, plan.name + ".sh")
            plan.spec_path = os.path.join(directory, plan.name + ".json")
        outcome.changed = bool(pending) or not state["collected"]

    def submit(self) -> None:
        if self.in_allocation:
            run_in_allocation(self.plans, self.outcome, self.reporter)
            return
        self.client.require()
        submit_jobs(self.plans, self.client, self.outcome, self.slurm.run_id, self.reporter)
        if not self.waits:
            for plan in self.plans:
                if plan.job_id:
                    plan.states = self.client.states(plan.job_id, plan.size)

    def wait(self) -> None:
        if not self.in_allocation:
            wait_jobs(self.plans, self.client, self.slurm.settings, self.outcome, self.reporter)

    def cancel(self, reason: str) -> None:
        _cancel([p for p in self.plans if p.job_id], self.client, self.outcome, reason)

    def collect(self) -> None:
        directory = self.outcome.results_dir
        rows = collect_rows(self.plans, self.slurm, directory, self.reporter)
        perfcsv.write_rows(os.path.join(directory, "perf.csv"), rows)
        self.outcome.newly_collected = not _load_state(directory)["collected"]
        self.outcome.changed = self.outcome.changed or self.outcome.newly_collected
        _save_state(directory, self.slurm.run_id, self.plans, collected=True)
        self._rows = rows

    def rows(self) -> List[Dict[str, Any]]:
        return self._rows


def run_on_slurm(
    manifest: Mapping[str, Any],
    request: SlurmRequest,
    reporter: Optional[Reporter] = None,
    runner: Runner = run_command,
) -> SlurmOutcome:
    """Write, submit (once per run id), wait, collect. Check mode writes nothing and asks sbatch --test-only."""
    reporter = reporter or Reporter()
    deploy_request = DeployRequest(
        root=request.package_root,
        manifest=manifest,
        manifest_path=request.manifest_path,
        options=None,
        check_mode=request.check_mode,
        submit=request.submit,
    )
    target = SlurmTarget(deploy_request, reporter, request, runner)
    deploy(target)
    return target.outcome
