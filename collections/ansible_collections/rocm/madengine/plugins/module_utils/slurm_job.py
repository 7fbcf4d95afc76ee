"""What a SLURM job runs on its compute node(s): one model of the job's spec through the core run path.

The submitter writes a JSON job spec next to the batch script; the script only calls
`madengine slurm-task <spec>`, so no model data is ever spliced into shell text. Each task works in its own
directory under the results directory (a copy of the model's scripts), writes perf.csv, logs and task.json
there, and the submitter collects them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Mapping, Optional

from . import containers, launchers, perf, perfcsv
from .commands import Runner, run_command
from .credentials import load_credentials
from .errors import ConfigError, RunError
from .jsonfile import load_json
from .manifest import ManifestEntry, entries, load_manifest
from .perfcsv import STATUS_FAILURE, STATUS_SUCCESS
from .reporting import Reporter

SPEC_VERSION = 1
TASK_INDEX_ENV = "MADENGINE_TASK_INDEX"  # set by the submitter when it runs the script inside an allocation
TERMINATED = "SLURM_TERMINATED"


@dataclass
class JobSpec:
    run_id: str
    manifest: str  # absolute path of the build manifest
    package_root: str  # absolute path of the MAD package (shared with the compute nodes)
    results_dir: str  # absolute path of this run's results directory
    models: List[str]  # manifest keys, one per array task
    nodes: int = 1
    gpus_per_node: int = 0
    launcher: str = "docker"
    distributed: Dict[str, Any] = field(default_factory=dict)
    context: Dict[str, Any] = field(default_factory=dict)
    timeout: Optional[int] = None  # the per-model timeout (None: the model's own; 0: none)
    network_interface: Optional[str] = None
    version: int = SPEC_VERSION

    def write(self, path: str) -> None:
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(asdict(self), handle, indent=2)
            handle.write("\n")
        os.replace(tmp, path)

    @classmethod
    def read(cls, path: str) -> JobSpec:
        data = load_json(path, f"job spec {path}", dict)
        if data.get("version") != SPEC_VERSION:
            raise ConfigError(f"job spec {path}: version {data.get('version')!r} is not {SPEC_VERSION}")
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def safe_name(name: str) -> str:
    """A model name as one path component (`dir/model` -> `dir_model`)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    return safe if safe.strip(".") else "_"


def task_dir(results_dir: str, model: str, node_rank: int, nodes: int) -> str:
    base = os.path.join(results_dir, "tasks", safe_name(model))
    return os.path.join(base, f"node_{node_rank}") if nodes > 1 else base


class Terminated(Exception):
    """SLURM is ending the job (time limit, scancel): unwind so the container is removed."""


def _raise_terminated(signum: int, _frame: Any) -> None:
    raise Terminated(signal.Signals(signum).name)


def slurm_hosts(runner: Runner = run_command) -> List[str]:
    nodelist = os.environ.get("SLURM_JOB_NODELIST") or os.environ.get("SLURM_NODELIST") or ""
    if not nodelist:
        return []
    result = runner(["scontrol", "show", "hostnames", nodelist])
    return result.stdout.split() if result.ok else []


def _int_env(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value.isdigit() else default


def task_index(spec: JobSpec) -> int:
    raw = os.environ.get(TASK_INDEX_ENV) or os.environ.get("SLURM_ARRAY_TASK_ID") or "0"
    if not raw.isdigit() or int(raw) >= len(spec.models):
        raise ConfigError(f"task index {raw!r} is outside the job spec's {len(spec.models)} models")
    return int(raw)


def write_task_state(directory: str, **state: Any) -> None:
    path = os.path.join(directory, "task.json")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(state, handle, indent=2)
    os.replace(tmp, path)


def stage_workspace(spec: JobSpec, entry: ManifestEntry, workspace: str) -> None:
    """The parts of the package the model needs: its script directory and scripts/common, if present."""
    scripts = str((entry.model or {}).get("scripts") or "")
    script_dir = containers.script_command(scripts)[0] if scripts else ""
    for relative in dict.fromkeys([script_dir, os.path.join("scripts", "common")]):
        if not relative:
            continue
        source = os.path.join(spec.package_root, relative)
        if os.path.isdir(source):
            target = os.path.join(workspace, relative)
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source, target, symlinks=False)


@dataclass
class NodeContext:
    job_id: str
    node_rank: int
    nnodes: int
    hosts: List[str]
    node_name: str


def node_context(spec: JobSpec, runner: Runner = run_command) -> NodeContext:
    hosts = slurm_hosts(runner)
    nnodes = _int_env("SLURM_JOB_NUM_NODES", spec.nodes) if spec.nodes > 1 else 1
    node_rank = _int_env("SLURM_NODEID", _int_env("SLURM_PROCID", 0)) if nnodes > 1 else 0
    return NodeContext(
        job_id=os.environ.get("SLURM_ARRAY_JOB_ID") or os.environ.get("SLURM_JOB_ID") or "local",
        node_rank=node_rank,
        nnodes=nnodes,
        hosts=hosts,
        node_name=os.environ.get("SLURMD_NODENAME") or socket.gethostname(),
    )


def task_environment(spec: JobSpec, node: NodeContext, gpu_vendor: str) -> Dict[str, str]:
    """The launcher variables of spec section 11 for this node, plus the MAD_* job markers."""
    layout = launchers.NodeLayout(
        nnodes=node.nnodes,
        nproc_per_node=max(spec.gpus_per_node, 1),
        node_rank=node.node_rank,
        master_addr=node.hosts[0] if node.hosts else node.node_name,
        master_port=int(spec.distributed.get("master_port") or spec.distributed.get("port") or 29500),
        job_id=node.job_id,
        hosts=node.hosts if node.nnodes > 1 else [node.node_name],
    )
    env = launchers.launcher_environment(spec.launcher, layout, spec.distributed)
    env.update(launchers.visible_devices(spec.launcher, gpu_vendor, spec.gpus_per_node))
    env.update(
        MAD_DEPLOYMENT_TYPE="slurm",
        MAD_IN_SLURM_JOB="1",
        MAD_SLURM_JOB_ID=node.job_id,
        MAD_COLLECT_METRICS="true" if node.node_rank == 0 else "false",
        DISTRIBUTED_BACKEND=str(spec.distributed.get("backend") or "nccl"),
    )
    if spec.network_interface:
        env.update(NCCL_SOCKET_IFNAME=spec.network_interface, GLOO_SOCKET_IFNAME=spec.network_interface)
    if spec.launcher == launchers.DEEPSPEED and node.nnodes > 1:
        with open(launchers.deepspeed_hostfile_path(layout), "w", encoding="utf-8") as handle:
            handle.write(launchers.deepspeed_hostfile(layout))
    return env


def run_task(spec_path: str, reporter: Optional[Reporter] = None, runner: Runner = run_command) -> int:
    """Run this task's model; its rows go to <task dir>/perf.csv. Returns the task's exit code."""
    reporter = reporter or Reporter()
    spec = JobSpec.read(spec_path)
    index = task_index(spec)
    key = spec.models[index]
    manifest = load_manifest(spec.manifest)
    entry = next((e for e in entries(manifest) if e.key == key), None)
    if entry is None:
        raise ConfigError(f"job spec {spec_path}: model '{key}' is not in {spec.manifest}")
    node = node_context(spec, runner)
    # slurm_multi runs one task for the whole allocation: one task directory, where the submitter looks.
    span = 1 if spec.launcher == launchers.SLURM_MULTI else node.nnodes
    workspace = task_dir(spec.results_dir, entry.task_name, node.node_rank, span)
    os.makedirs(workspace, exist_ok=True)
    about = dict(model=entry.model_name, job_id=node.job_id, node=node.node_name, node_rank=node.node_rank)
    about["started"] = time.time()
    write_task_state(workspace, state="RUNNING", **about)
    previous = {sig: signal.signal(sig, _raise_terminated) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        rows = _run_model(spec, manifest, entry, node, workspace, reporter)
    except Terminated as exc:
        write_task_state(workspace, state=TERMINATED, signal=str(exc), ended=time.time(), **about)
        return 143
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    ok = all(r.get("status") != STATUS_FAILURE for r in rows)
    write_task_state(workspace, state="DONE", ok=ok, rows=len(rows), ended=time.time(), **about)
    return 0 if ok else 1


def _run_model(
    spec: JobSpec,
    manifest: Mapping[str, Any],
    entry: ManifestEntry,
    node: NodeContext,
    workspace: str,
    reporter: Reporter,
) -> List[Dict[str, Any]]:
    from .hostinfo import detect_host
    from .run import RunOptions, run_entries

    ctx = dict(spec.context)
    host = detect_host(overrides=ctx)
    env = task_environment(spec, node, host.gpu_vendor)
    for name in launchers.visible_devices_unset(spec.launcher, host.gpu_vendor, spec.gpus_per_node):
        os.environ.pop(name, None)
    os.environ.update(env)
    ctx["docker_env_vars"] = {**env, **dict(ctx.get("env_vars") or {}), **dict(ctx.get("docker_env_vars") or {})}
    if spec.launcher == launchers.SLURM_MULTI:
        return run_self_managed(spec, entry, workspace, node, reporter)
    stage_workspace(spec, entry, workspace)
    options = RunOptions(
        context=ctx,
        timeout=spec.timeout,
        output="perf.csv",
        run_id=spec.run_id,
        container_suffix=f"node{node.node_rank}",
        machine_name=node.node_name,
        live_output=True,
        extra_credentials=load_credentials(spec.package_root),
    )
    only_this = {**manifest, "built_images": {entry.key: entry.image}, "built_models": {entry.key: entry.model}}
    outcome = run_entries(workspace, only_this, host, options, reporter)
    shutil.rmtree(os.path.join(workspace, "scripts"), ignore_errors=True)
    if outcome.interrupted is not None:  # its INTERRUPTED row is in the task's perf.csv already
        raise Terminated(outcome.interrupted.name)
    return outcome.rows


def run_self_managed(
    spec: JobSpec, entry: ManifestEntry, workspace: str, node: NodeContext, reporter: Reporter
) -> List[Dict[str, Any]]:
    """slurm_multi: the model's own script runs on the allocation's first node, outside any container,
    and orchestrates the other nodes itself (srun). Its performance lines and multiple_results become rows."""
    from .hostinfo import CPU_HOST
    from .run import EXIT_CODE, NO_METRIC, TIMEOUT, base_row

    model = dict(entry.model or {})
    scripts = str(model.get("scripts") or "")
    script_path = os.path.join(spec.package_root, scripts)
    if not scripts or not os.path.isfile(script_path):
        raise RunError(f"model '{entry.model_name}': script {scripts or '(none)'} not found in {spec.package_root}")
    argv = containers.script_command(scripts)[1] + containers.split_args(str(model.get("args") or ""), entry.model_name)
    image = entry.registry_image or entry.local_name
    env = dict(os.environ)
    env.update({k: str(v) for k, v in (model.get("env_vars") or {}).items()})
    env.update(spec.context.get("env_vars") or {})
    env.setdefault("DOCKER_IMAGE_NAME", entry.local_name if entry.local_name.startswith("ci-") else image)
    log_path = os.path.join(workspace, f"{safe_name(entry.model_name)}.run.live.log")
    row = base_row(model, entry.image, CPU_HOST, spec.context, image, spec.run_id)
    row.update(
        machine_name=node.node_name,
        deployment_type="slurm",
        launcher="slurm_multi",
        nnodes=str(node.nnodes),
        gpus_per_node=str(spec.gpus_per_node),
        n_gpus=str(node.nnodes * spec.gpus_per_node),
    )
    start = time.monotonic()
    timed_out, returncode = False, -1
    with open(log_path, "w", encoding="utf-8") as log:
        try:
            returncode = subprocess.run(
                argv,
                cwd=os.path.dirname(script_path),
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
                timeout=spec.timeout or None,
            ).returncode
        except subprocess.TimeoutExpired:
            timed_out = True
    duration = time.monotonic() - start
    with open(log_path, encoding="utf-8", errors="replace") as log:
        output = log.read()
    value, metric = perf.parse_performance(output)
    row.update(
        performance=value,
        metric=metric,
        test_duration=f"{duration:.3f}",
        exit_code="" if timed_out else str(returncode),
    )
    if timed_out:
        row.update(status=STATUS_FAILURE, failure_reason=TIMEOUT)
    elif returncode != 0:
        row.update(status=STATUS_FAILURE, failure_reason=EXIT_CODE)
    elif value:
        row.update(status=STATUS_SUCCESS, failure_reason="")
    else:
        row.update(status=STATUS_FAILURE, failure_reason=NO_METRIC)
    reporter.model_done(row["model"], "run", row["status"], row["failure_reason"])
    perfcsv.append_rows(os.path.join(workspace, "perf.csv"), [row])
    return [row]
