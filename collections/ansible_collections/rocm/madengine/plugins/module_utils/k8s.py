"""The Kubernetes target: every model of the manifest as its own Job, watched until it ends, its pod logs parsed
into rows like a local run's.

State lives in `<output_dir>/<run id>/jobs.json` beside the collected perf.csv, so the same run id never submits
a model twice: `wait: false` submits and returns, a later call with the same run id waits and collects, and a call
after collection returns the rows it collected (changed=false).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import atomic, perf, perfcsv
from .credentials import load_credentials
from .deployment import KUBERNETES, DeployRequest, Target
from .errors import ConfigError
from .hostinfo import CPU_HOST
from .k8s_cluster import Cluster, K8sError
from .k8s_config import K8sSettings, parse_settings
from .k8s_manifests import RESULTS_BEGIN, RESULTS_END, RenderedModel, render_manifest, run_selector, write_manifests
from .reporting import Reporter
from .run import ERROR_PATTERN, EXIT_CODE, INTERRUPTED, NOT_STARTED, TIMEOUT, base_row, settle_rows

IMAGE_PULL_FAILED, UNSCHEDULABLE, OOM_KILLED = "IMAGE_PULL_FAILED", "UNSCHEDULABLE", "OOM_KILLED"
CONTAINER_ERROR, K8S_DELETED, SUBMIT_FAILED = "CONTAINER_ERROR", "K8S_DELETED", "SUBMIT_FAILED"
WAIT_TIMEOUT, NO_RESULT = "WAIT_TIMEOUT", "NO_RESULT"
STATE_FILE = "jobs.json"
CONTAINER = "model"
_PULL_WAITING = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull", "RegistryUnavailable")
_PULL_FOR_GOOD = ("not found", "manifest unknown", "unauthorized", "authentication required", "denied", "invalid")
_CONTAINER_WAITING = ("CreateContainerConfigError", "CreateContainerError", "RunContainerError")
_WATCH_WINDOW = 5  # seconds a pod watch stays open before the Jobs are looked at again


@dataclass
class PodEnd:
    """How a model's pod ended (or why it cannot start)."""

    reason: str  # '' for success
    message: str = ""
    exit_code: Optional[int] = None
    duration: Optional[float] = None  # seconds the container ran (Kubernetes keeps whole seconds)


@dataclass
class ModelJob:
    rendered: RenderedModel
    job_id: str = ""  # the Job's uid once created or found
    submit_error: str = ""
    collected: bool = False
    pods: Dict[str, Any] = field(default_factory=dict)
    end: Optional[PodEnd] = None
    pending_since: Optional[float] = None
    logs: Dict[str, str] = field(default_factory=dict)
    succeeded: bool = False  # every row of the model is a SUCCESS

    @property
    def name(self) -> str:
        return self.rendered.job_name

    @property
    def done(self) -> bool:
        return self.end is not None


def pod_problem(pod: Any) -> Optional[Tuple[str, str, bool]]:
    """(reason, message, for good) when a pod cannot start: its image cannot be pulled, its container cannot be
    created, or the scheduler finds no node for it. `for good`: waiting longer cannot help."""
    status = pod.status
    for container in list(status.init_container_statuses or []) + list(status.container_statuses or []):
        waiting = container.state.waiting if container.state else None
        if waiting is None or not waiting.reason:
            continue
        message = " ".join(str(waiting.message or "").split())
        if waiting.reason in _PULL_WAITING:
            for_good = waiting.reason in ("InvalidImageName", "ErrImageNeverPull") or any(
                word in message.lower() for word in _PULL_FOR_GOOD
            )
            return IMAGE_PULL_FAILED, f"{waiting.reason}: {message or container.image}", for_good
        if waiting.reason in _CONTAINER_WAITING:
            return CONTAINER_ERROR, f"{waiting.reason}: {message}", True
    for condition in status.conditions or []:
        if condition.type == "PodScheduled" and condition.status == "False" and condition.reason == "Unschedulable":
            return UNSCHEDULABLE, " ".join(str(condition.message or "unschedulable").split()), False
    return None


def pod_end(pod: Any) -> Optional[PodEnd]:
    """How a finished pod ended; None while it has not."""
    phase = pod.status.phase
    if phase not in ("Succeeded", "Failed"):
        return None
    state = None
    for container in pod.status.container_statuses or []:
        if container.name == CONTAINER:
            state = container.state.terminated if container.state else None
            state = state or (container.last_state.terminated if container.last_state else None)
    exit_code = state.exit_code if state is not None else None
    duration = None
    if state is not None and state.started_at and state.finished_at:
        duration = max(0.0, (state.finished_at - state.started_at).total_seconds())
    if phase == "Succeeded":
        return PodEnd("", exit_code=exit_code, duration=duration)
    if pod.status.reason == "DeadlineExceeded":
        return PodEnd(TIMEOUT, "k8s stopped it at its activeDeadlineSeconds", exit_code, duration)
    if state is not None and state.reason == "OOMKilled":
        return PodEnd(OOM_KILLED, "the container ran out of memory (OOMKilled)", exit_code, duration)
    if exit_code not in (None, 0):
        return PodEnd(EXIT_CODE, f"exit code {exit_code}", exit_code, duration)
    message = pod.status.message or pod.status.reason or "the pod failed"
    return PodEnd(CONTAINER_ERROR, " ".join(str(message).split()), exit_code, duration)


def split_results(log: str) -> Tuple[str, str]:
    """(the model's output, the multiple_results CSV the pod printed between the markers, or '')."""
    begin = log.rfind(RESULTS_BEGIN + "\n")
    if begin < 0:
        return log, ""
    end = log.find("\n" + RESULTS_END, begin)
    if end < 0:
        return log, ""
    return log[:begin], log[begin + len(RESULTS_BEGIN) + 1 : end + 1]


class K8sTarget(Target):
    """Jobs on a cluster the kubeconfig names; every model ends as rows, whatever the cluster did to it."""

    name = KUBERNETES

    def __init__(
        self, request: DeployRequest, reporter: Reporter, cluster_factory: Optional[Callable[..., Any]] = None
    ) -> None:
        super().__init__(request, reporter)
        manifest_vendor = str((request.manifest.get("context") or {}).get("gpu_vendor") or "")
        self.settings: K8sSettings = parse_settings(request.context, manifest_vendor)
        self.waits = bool(self.settings.wait)
        self.cluster_factory = cluster_factory or Cluster
        self.cluster: Any = None
        self.models: List[ModelJob] = []
        self.selector = ""
        self._rows: List[Dict[str, Any]] = []

    # ------------------------------------------------------------------ prepare

    def prepare(self) -> None:
        self._plan()
        request, settings = self.request, self.settings
        if not request.submit:
            self.outcome.files = write_manifests(self.outcome.results_dir, [m.rendered for m in self.models])
            return
        self._load_state()
        if all(m.collected for m in self.models):
            return  # collected by an earlier call: its rows are in the results directory
        self._connect()
        version = self.cluster.check_reachable()
        self.cluster.check_namespace()
        resource = settings.gpu_resource_name if settings.gpu_vendor != "CPU" else ""
        if resource and not self.cluster.nodes_with(resource):
            raise ConfigError(
                f"k8s: no node of {self.cluster.where} advertises '{resource}' (gpu_vendor {settings.gpu_vendor})",
                hint="install the AMD or NVIDIA device plugin, set k8s.gpu_resource_name, or use gpu_vendor CPU",
            )
        self.outcome.details["server_version"] = version
        self.outcome.details["namespace"] = settings.namespace

    def _connect(self) -> None:
        if self.cluster is None:
            settings = self.settings
            self.cluster = self.cluster_factory(settings.kubeconfig, settings.context, settings.namespace)

    def _plan(self) -> None:
        """Render every model's objects and name the results directory; nothing leaves this machine."""
        request, settings = self.request, self.settings
        with open(request.manifest_path, encoding="utf-8") as handle:
            manifest_text = handle.read()
        rendered = render_manifest(
            request.manifest,
            settings,
            run_id=request.run_id,
            package_root=os.path.abspath(request.root),
            manifest_text=manifest_text,
            credentials=load_credentials(request.root),
            cli_timeout=request.options.timeout,
            context=request.context,
        )
        self.models = [ModelJob(r) for r in rendered]
        base = settings.output_dir
        base = base if os.path.isabs(base) else os.path.join(os.path.abspath(request.root), base)
        self.outcome.results_dir = os.path.join(base, request.run_id)
        self.selector = run_selector(request.run_id)

    def known_jobs(self) -> Dict[str, str]:
        self._plan()
        self._load_state()
        return {m.name: ("COLLECTED" if m.collected else "SUBMITTED") for m in self.models if m.job_id or m.collected}

    def stop(self, check_mode: bool = False) -> List[str]:
        """Delete every Job of this run id (their pods, ConfigMaps and Secrets go with them)."""
        self._plan()
        self._connect()
        names = sorted(self.cluster.jobs(self.selector))
        if not check_mode:
            for name in names:
                self.cluster.delete_job(name)
        return names

    def _state_path(self) -> str:
        return os.path.join(self.outcome.results_dir, STATE_FILE)

    def _load_state(self) -> None:
        path = self._state_path()
        if not os.path.isfile(path):
            return
        with open(path, encoding="utf-8") as handle:
            known = json.load(handle).get("jobs") or {}
        for model in self.models:
            record = known.get(model.name) or {}
            model.job_id = str(record.get("uid") or "")
            model.collected = bool(record.get("collected"))

    def _save_state(self) -> None:
        os.makedirs(self.outcome.results_dir, exist_ok=True)
        jobs = {
            m.name: {
                "model": m.rendered.entry.model_name,
                "uid": m.job_id,
                "spec_hash": m.rendered.spec_hash,
                "collected": m.collected,
            }
            for m in self.models
            if m.job_id or m.collected
        }
        with atomic.replacing(self._state_path()) as handle:
            json.dump({"run_id": self.request.run_id, "namespace": self.settings.namespace, "jobs": jobs}, handle)

    # ------------------------------------------------------------------ check, submit

    def check(self) -> None:
        """Server-side dry run of every object this run would create (prepare has read the state and connected,
        unless everything was collected already); nothing is stored."""
        to_create = [m for m in self.models if not m.job_id and not m.collected]
        refused = []
        for model in to_create:
            for obj in model.rendered.objects:
                try:
                    self.cluster.create(obj, dry_run=True)
                except K8sError as exc:
                    refused.append({"job_name": model.name, "message": exc.msg})
                    break
        self.outcome.details["dry_run"] = refused
        self.outcome.changed = bool(to_create) or not all(m.collected for m in self.models)
        self.outcome.job_records = self._records()

    def submit(self) -> None:
        if all(m.collected for m in self.models):
            return
        existing = self.cluster.jobs(self.selector)
        for model in self.models:
            if model.collected:
                continue
            found = existing.get(model.name)
            if found is not None:
                model.job_id = str(found.metadata.uid)
                continue
            if model.job_id:  # submitted by an earlier call, gone now
                model.end = PodEnd(K8S_DELETED, f"job {model.name} was deleted before its rows were collected")
                continue
            self._create(model)
            self._save_state()
        self.outcome.job_records = self._records()

    def _create(self, model: ModelJob) -> None:
        job_spec = model.rendered.objects[-1]
        others = model.rendered.objects[:-1]
        try:
            for obj in others:
                self.cluster.create(obj)
            job = self.cluster.create(job_spec)
            model.job_id = str(job["metadata"]["uid"])
            for obj in others:
                self.cluster.set_owner(obj, job)
        except K8sError as exc:
            model.submit_error = exc.msg
            model.end = PodEnd(SUBMIT_FAILED, exc.msg)
            self.reporter.warn(f"{model.rendered.entry.model_name}: {exc.msg}")
            for obj in others:
                self._quietly(self.cluster.delete, obj["kind"], obj["metadata"]["name"])
            return
        self.outcome.submitted.append(model.name)
        self.outcome.changed = True
        self.reporter.info(f"created job {model.name} for {model.rendered.entry.model_name}")

    def _quietly(self, action: Callable[..., Any], *args: Any) -> None:
        try:
            action(*args)
        except K8sError as exc:
            self.reporter.warn(exc.msg)

    # ------------------------------------------------------------------ wait

    def wait(self) -> None:
        """Follow the pods with a watch; a model ends when its pods end, or when they cannot start."""
        waiting = {m.name: m for m in self.models if not m.done and not m.collected and m.job_id}
        if not waiting:
            return
        deadline = time.monotonic() + self.settings.wait_timeout if self.settings.wait_timeout else None
        pods, version = self.cluster.pods(self.selector)
        for pod in pods:
            self._observe(waiting, "ADDED", pod)
        while waiting:
            window = _WATCH_WINDOW
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    self.reporter.warn(f"k8s.wait_timeout {self.settings.wait_timeout} s reached; deleting the jobs")
                    self.cancel(WAIT_TIMEOUT)
                    return
                window = max(1, min(window, int(left) + 1))
            seen_any = False
            for kind, pod in self.cluster.watch_pods(self.selector, version, window):
                seen_any = True
                version = str(pod.metadata.resource_version or version)
                self._observe(waiting, kind, pod)
                if not waiting:
                    return
            if not seen_any:
                pods, version = self.cluster.pods(self.selector)
                for pod in pods:
                    self._observe(waiting, "MODIFIED", pod)
            self._check_jobs(waiting)
            self._check_pending(waiting)

    def _observe(self, waiting: Dict[str, ModelJob], kind: str, pod: Any) -> None:
        model = waiting.get((pod.metadata.labels or {}).get("job-name", ""))
        if model is None:
            return
        name = pod.metadata.name
        model.pods.pop(name, None)
        if kind == "DELETED" or pod.metadata.deletion_timestamp:
            # Someone deletes the pod: whether its Job is gone says more than the killed container's exit code.
            model.end = model.end or self._job_end(model)
        if kind != "DELETED":
            model.pods[name] = pod
        model.end = model.end or self._pods_end(model)
        self._settle(waiting, model)

    def _pods_end(self, model: ModelJob) -> Optional[PodEnd]:
        """The model's end as its pods tell it: the first failure, or all pods succeeded, or a pod that can
        never start; None while it runs (an unschedulable or pull-failing pod starts its pending clock)."""
        ended = [pod_end(model.pods[name]) for name in sorted(model.pods)]
        failed = [e for e in ended if e is not None and e.reason]
        if failed:
            return failed[0]
        done = [e for e in ended if e is not None]
        if done and len(done) == len(ended) >= model.rendered.nnodes:
            durations = [e.duration for e in done if e.duration is not None]
            return PodEnd("", exit_code=done[0].exit_code, duration=max(durations) if durations else None)
        problems = [p for p in (pod_problem(p) for p in model.pods.values()) if p is not None]
        if problems and problems[0][2]:
            return PodEnd(problems[0][0], problems[0][1])
        model.pending_since = (model.pending_since or time.monotonic()) if problems else None
        return None

    def _job_end(self, model: ModelJob) -> Optional[PodEnd]:
        """The end the Job itself tells: deleted from outside, or failed by the Job controller with no pod left."""
        job = self.cluster.job(model.name)
        if job is None:
            return PodEnd(K8S_DELETED, f"job {model.name} was deleted from outside madengine")
        for condition in job.status.conditions or []:
            if condition.type == "Failed" and condition.status == "True" and not model.pods:
                reason = TIMEOUT if condition.reason == "DeadlineExceeded" else CONTAINER_ERROR
                return PodEnd(reason, f"job failed: {condition.reason}: {condition.message or ''}")
        return None

    @staticmethod
    def _settle(waiting: Dict[str, ModelJob], model: ModelJob) -> None:
        """An ended model is no longer waited for; its status is reported with its rows (the log may still turn
        a succeeded pod into a NO_METRIC or ERROR_PATTERN row)."""
        if model.end is not None:
            waiting.pop(model.name, None)

    def _check_jobs(self, waiting: Dict[str, ModelJob]) -> None:
        for model in list(waiting.values()):
            model.end = model.end or self._job_end(model)
            self._settle(waiting, model)

    def _check_pending(self, waiting: Dict[str, ModelJob]) -> None:
        """A pod unschedulable or failing to pull for longer than k8s.pending_timeout ends its model."""
        limit = self.settings.pending_timeout
        for model in list(waiting.values()):
            if model.pending_since is None or time.monotonic() - model.pending_since < limit:
                continue
            problems = [p for p in (pod_problem(p) for p in model.pods.values()) if p is not None]
            if problems:
                reason, message = problems[0][:2]
                model.end = PodEnd(reason, f"{message} (still after k8s.pending_timeout {limit} s)")
                self._settle(waiting, model)

    # ------------------------------------------------------------------ cancel, collect, rows

    def cancel(self, reason: str) -> None:
        """Delete the Jobs of the models still running (their pods get SIGTERM), keep what their pods printed,
        and wait until the pods are gone, so nothing this run started is left running."""
        for model in self.models:
            if not model.job_id and not model.done and not model.collected:
                model.end = PodEnd(NOT_STARTED if reason == INTERRUPTED else reason, "never submitted")
        running = [m for m in self.models if m.job_id and not m.done and not m.collected]
        for model in running:
            self._keep_logs(model)
            if self.cluster.delete_job(model.name):
                self.outcome.cancelled.append(model.name)
            model.end = PodEnd(reason, "deleted by madengine" + (" (interrupted)" if reason == INTERRUPTED else ""))
        deadline = time.monotonic() + 60
        while running and time.monotonic() < deadline:
            pods = self.cluster.pods(self.selector)[0]
            names = {m.name for m in running}
            if not [p for p in pods if (p.metadata.labels or {}).get("job-name") in names]:
                break
            time.sleep(0.5)

    def _keep_logs(self, model: ModelJob) -> None:
        for pod in sorted(model.pods):
            if pod not in model.logs:
                try:
                    model.logs[pod] = self.cluster.log(pod, CONTAINER)
                except K8sError as exc:
                    self.reporter.warn(exc.msg)

    def collect(self) -> None:
        if all(m.collected for m in self.models):
            self._rows = perfcsv.read_rows(os.path.join(self.outcome.results_dir, "perf.csv"))
            self.outcome.newly_collected = False
            return
        if self.cluster is not None:
            for pod in self.cluster.pods(self.selector)[0]:
                for model in self.models:
                    if (pod.metadata.labels or {}).get("job-name") == model.name:
                        model.pods[pod.metadata.name] = pod
        rows: List[Dict[str, Any]] = []
        for model in self.models:
            if self.cluster is not None:
                self._keep_logs(model)
            rows.extend(self._model_rows(model))
            model.collected = model.done
        os.makedirs(self.outcome.results_dir, exist_ok=True)
        perfcsv.write_rows(os.path.join(self.outcome.results_dir, "perf.csv"), rows)
        self._save_state()
        self.outcome.changed = True
        self.outcome.job_records = self._records()
        self._rows = rows

    def _model_rows(self, model: ModelJob) -> List[Dict[str, Any]]:
        entry, request = model.rendered.entry, self.request
        image = entry.registry_image or entry.local_name
        row = base_row(
            entry.model or {"name": entry.model_name}, entry.image, CPU_HOST, request.context, image, request.run_id
        )
        nodes = sorted({str(p.spec.node_name) for p in model.pods.values() if p.spec and p.spec.node_name})
        gpus = str(model.rendered.gpu_count)
        row.update(
            deployment_type=KUBERNETES,
            machine_name=",".join(nodes) or self.settings.namespace,
            nnodes=str(model.rendered.nnodes),
            n_gpus=gpus,
            gpus_per_node=gpus,
        )
        end = model.end or PodEnd(NO_RESULT, "the job had not ended when its rows were collected")
        row["exit_code"] = "" if end.exit_code is None else str(end.exit_code)
        row["test_duration"] = "" if end.duration is None else f"{end.duration:.3f}"
        log = "\n".join(model.logs[name] for name in sorted(model.logs))
        self._write_logs(model)
        output, results_csv = split_results(log)
        rows = [row]
        if model.rendered.multiple_results:
            rows = self._multiple_rows(row, model, results_csv)
        else:
            row["performance"], row["metric"] = perf.parse_performance(output)
        reason, detail = end.reason, end.message
        if not reason:
            error = perf.find_error_pattern(output, perf.ScanConfig.from_settings(entry.model or {}, request.context))
            if error:
                reason, detail = ERROR_PATTERN, f"error pattern '{error}' in the output"
        if not settle_rows(rows, reason) and not reason:
            detail = "no performance metric in the output"
        model.succeeded = all(r["status"] == "SUCCESS" for r in rows)
        if detail and rows[0]["status"] != "SUCCESS":
            self.reporter.warn(f"{entry.model_name}: {detail} (job {model.name})")
        return rows

    def _multiple_rows(self, row: Dict[str, Any], model: ModelJob, text: str) -> List[Dict[str, Any]]:
        name = model.rendered.multiple_results
        if not text:
            self.reporter.warn(f"{row['model']}: multiple_results file {name} was not written")
            return [row]
        with atomic.replacing(os.path.join(self.outcome.results_dir, model.name, os.path.basename(name))) as copy:
            copy.write(text)
        try:
            csv_rows = perf.read_multiple_results(text, name)
        except perf.ResultsCsvError as exc:
            self.reporter.warn(f"{row['model']}: {exc}")
            return [row]
        return [{**row, **csv_row, "model": f"{row['model']}_{csv_row['model']}"} for csv_row in csv_rows]

    def _write_logs(self, model: ModelJob) -> None:
        directory = os.path.join(self.outcome.results_dir, model.name)
        for pod, text in model.logs.items():
            os.makedirs(directory, exist_ok=True)
            with atomic.replacing(os.path.join(directory, pod + ".log")) as handle:
                handle.write(text)

    def rows(self) -> List[Dict[str, Any]]:
        return list(self._rows)

    def finish(self) -> None:
        """Jobs whose pods could not start are deleted (they would retry for ever); the others as k8s.cleanup says:
        `always`, `on_success` (the default: failed Jobs stay for a look) or `never`."""
        if self.cluster is None or not self.outcome.newly_collected:
            return
        for model in self.models:
            if not model.job_id or model.end is None:
                continue
            stuck = model.end.reason in (IMAGE_PULL_FAILED, UNSCHEDULABLE, CONTAINER_ERROR)
            policy = self.settings.cleanup
            if stuck or policy == "always" or (policy == "on_success" and model.succeeded):
                self._quietly(self.cluster.delete_job, model.name)

    def _records(self) -> List[Dict[str, Any]]:
        records = []
        for model in self.models:
            end = model.end
            state = "COLLECTED" if model.collected else ("SUBMITTED" if model.job_id else "NOT_SUBMITTED")
            if end is not None:
                state = "SUCCEEDED" if not end.reason else "FAILED"
            records.append(
                {
                    "model": model.rendered.entry.model_name,
                    "job_name": model.name,
                    "job_id": model.name if model.job_id else "",
                    "state": state,
                    "exit_code": "" if end is None or end.exit_code is None else str(end.exit_code),
                    "reason": (end.reason + (": " + end.message if end.message else "")) if end else model.submit_error,
                }
            )
        return records
