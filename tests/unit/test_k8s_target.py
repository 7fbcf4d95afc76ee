"""The Kubernetes target's reading of pods (why a model failed), results markers and the lifecycle's bookkeeping,
on the kubernetes client's own model objects. The cluster itself is exercised in tests/integration/test_k8s.py."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from kubernetes.client import (
    V1ContainerState,
    V1ContainerStateTerminated,
    V1ContainerStateWaiting,
    V1ContainerStatus,
    V1ObjectMeta,
    V1Pod,
    V1PodCondition,
    V1PodStatus,
)

from ansible_collections.rocm.madengine.plugins.module_utils import deployment, k8s, k8s_manifests
from ansible_collections.rocm.madengine.plugins.module_utils.errors import ConfigError
from ansible_collections.rocm.madengine.plugins.module_utils.k8s_manifests import RESULTS_BEGIN, RESULTS_END

T0 = dt.datetime(2026, 12, 3, 12, 0, 0, tzinfo=dt.timezone.utc)


def pod(phase="Pending", waiting=None, terminated=None, conditions=None, reason=None, message=None):
    state = None
    if waiting is not None:
        state = V1ContainerState(waiting=V1ContainerStateWaiting(reason=waiting[0], message=waiting[1]))
    if terminated is not None:
        code, why = terminated
        state = V1ContainerState(
            terminated=V1ContainerStateTerminated(
                exit_code=code, reason=why, started_at=T0, finished_at=T0 + dt.timedelta(seconds=7)
            )
        )
    statuses = None
    if state is not None:
        statuses = [
            V1ContainerStatus(name="model", image="reg/x:1", image_id="", ready=False, restart_count=0, state=state)
        ]
    return V1Pod(
        metadata=V1ObjectMeta(name="p", labels={"job-name": "j"}),
        status=V1PodStatus(
            phase=phase, container_statuses=statuses, conditions=conditions, reason=reason, message=message
        ),
    )


@pytest.mark.parametrize(
    ("waiting", "reason", "for_good"),
    [
        (("ErrImagePull", 'failed to resolve reference "reg/x:1": reg/x:1: not found'), k8s.IMAGE_PULL_FAILED, True),
        (("ImagePullBackOff", "pull access denied, authorization failed"), k8s.IMAGE_PULL_FAILED, True),
        (("ErrImagePull", "dial tcp 10.0.0.9:443: i/o timeout"), k8s.IMAGE_PULL_FAILED, False),
        (("InvalidImageName", "couldn't parse image reference"), k8s.IMAGE_PULL_FAILED, True),
        (("CreateContainerConfigError", 'secret "s" not found'), k8s.CONTAINER_ERROR, True),
    ],
)
def test_a_pod_that_cannot_start_says_why(waiting, reason, for_good):
    problem = k8s.pod_problem(pod(waiting=waiting))
    assert problem is not None
    assert (problem[0], problem[2]) == (reason, for_good)
    assert waiting[0] in problem[1] and waiting[1].split()[0] in problem[1]


def test_unschedulable_carries_the_scheduler_message_and_may_pass():
    condition = V1PodCondition(
        type="PodScheduled",
        status="False",
        reason="Unschedulable",
        message="0/1 nodes are available: 1 Insufficient cpu.",
    )
    assert k8s.pod_problem(pod(conditions=[condition])) == (
        k8s.UNSCHEDULABLE,
        "0/1 nodes are available: 1 Insufficient cpu.",
        False,
    )


def test_a_creating_or_running_pod_has_no_problem_and_no_end():
    creating = pod(waiting=("ContainerCreating", ""))
    assert k8s.pod_problem(creating) is None and k8s.pod_end(creating) is None
    assert k8s.pod_end(pod(phase="Running")) is None


@pytest.mark.parametrize(
    ("phase", "terminated", "pod_reason", "reason", "exit_code"),
    [
        ("Succeeded", (0, "Completed"), None, "", 0),
        ("Failed", (3, "Error"), None, "EXIT_CODE", 3),
        ("Failed", (137, "OOMKilled"), None, k8s.OOM_KILLED, 137),
        ("Failed", (137, "Error"), "DeadlineExceeded", "TIMEOUT", 137),
        ("Failed", None, "Evicted", k8s.CONTAINER_ERROR, None),
    ],
)
def test_how_a_pod_ended(phase, terminated, pod_reason, reason, exit_code):
    end = k8s.pod_end(pod(phase=phase, terminated=terminated, reason=pod_reason, message="The node was low"))
    assert end is not None
    assert (end.reason, end.exit_code) == (reason, exit_code)
    assert end.duration == (7.0 if terminated else None)


def test_results_between_the_markers_are_split_from_the_output():
    log = f"performance: 1 x\n{RESULTS_BEGIN}\nmodel,performance,metric\na,1,x\n{RESULTS_END}\n"
    output, results = k8s.split_results(log)
    assert output == "performance: 1 x\n"
    assert results == "model,performance,metric\na,1,x\n"
    assert k8s.split_results("no markers\n") == ("no markers\n", "")
    assert k8s.split_results(f"{RESULTS_BEGIN}\ncut short") == (f"{RESULTS_BEGIN}\ncut short", "")


@pytest.mark.parametrize(
    ("ctx", "target"),
    [
        ({}, "local"),
        ({"slurm": {}}, "slurm"),
        ({"k8s": {}}, "kubernetes"),
        ({"kubernetes": {}}, "kubernetes"),
        ({"deploy": "k8s"}, "kubernetes"),
        ({"deploy": "docker"}, "local"),
        ({"k8s": {}, "deploy": "kubernetes"}, "kubernetes"),
    ],
)
def test_the_context_names_the_target(ctx, target):
    assert deployment.target_name(ctx) == target
    assert deployment.target_class(target).name == target


@pytest.mark.parametrize(
    "ctx", [{"slurm": {}, "k8s": {}}, {"k8s": {}, "kubernetes": {}}, {"slurm": {}, "deploy": "k8s"}]
)
def test_two_targets_are_refused(ctx):
    with pytest.raises(ConfigError):
        deployment.target_name(ctx)


# ------------------------------------------------------------------------------------------------ the lifecycle
# A scripted stand-in for k8s_cluster.Cluster (the real one is exercised in tests/integration/test_k8s.py): pods
# appear and change only through the events each test scripts.


class FakeCluster:
    where = "https://fake:6443"

    def __init__(self, events, logs=None, fail_create=None) -> None:
        self.events = list(events)  # lists of (kind, pod) given out one watch window at a time
        self.logs = logs or {}
        self.fail_create = fail_create
        self.created, self.deleted, self.jobs_alive = [], [], {}

    def check_reachable(self):
        return "v1.20.2"

    def check_namespace(self):
        pass

    def nodes_with(self, resource):
        return []

    def create(self, obj, dry_run=False):
        if self.fail_create and obj["kind"] == self.fail_create:
            raise k8s.K8sError("k8s: create failed: admission webhook said no")
        self.created.append((obj["kind"], obj["metadata"]["name"], dry_run))
        if obj["kind"] == "Job" and not dry_run:
            self.jobs_alive[obj["metadata"]["name"]] = True
        return {"metadata": {"name": obj["metadata"]["name"], "uid": "uid-" + obj["metadata"]["name"]}}

    def set_owner(self, obj, job):
        pass

    def jobs(self, selector):
        return {}

    def job(self, name):
        if name not in self.jobs_alive:
            return None
        return type("Job", (), {"status": type("S", (), {"conditions": []})()})()

    def pods(self, selector):
        return [], "1"

    def watch_pods(self, selector, version, seconds):
        if not self.events:
            return
        batch = self.events.pop(0)
        if isinstance(batch, BaseException):
            raise batch
        yield from batch

    def log(self, pod, container):
        return self.logs.get(pod, "")

    def delete_job(self, name):
        self.deleted.append(name)
        return self.jobs_alive.pop(name, None) is not None

    def delete(self, kind, name):
        self.deleted.append(f"{kind}/{name}")


def job_pod(job, phase, terminated=None, name="pod-0"):
    p = pod(phase=phase, terminated=terminated)
    p.metadata = V1ObjectMeta(name=name, labels={"job-name": job}, resource_version="5")
    return p


@pytest.fixture
def lifecycle(tmp_path):
    """A package with one CPU model built into a registry, and a factory of K8sTargets around a FakeCluster."""
    from ansible_collections.rocm.madengine.plugins.module_utils.run import RunOptions

    (tmp_path / "scripts" / "dummy").mkdir(parents=True)
    (tmp_path / "scripts" / "dummy" / "run.sh").write_text("echo performance: 1 x\n")
    key = "ci-dummy_dummy.ubuntu.cpu"
    data = {
        "built_images": {key: {"docker_image": key, "registry_image": f"reg:5000/{key}"}},
        "built_models": {key: {"name": "dummy", "scripts": "scripts/dummy/run.sh", "n_gpus": "1"}},
        "context": {"gpu_vendor": "CPU"},
    }
    (tmp_path / "build_manifest.json").write_text(json.dumps(data))

    def make(cluster, run_id="r1", **settings):
        ctx = {"gpu_vendor": "CPU", "k8s": settings}
        request = deployment.DeployRequest(
            str(tmp_path), data, str(tmp_path / "build_manifest.json"), RunOptions(context=ctx, run_id=run_id)
        )
        return k8s.K8sTarget(request, Recorder(), cluster_factory=lambda *_args: cluster)

    return make


class Recorder:
    def __init__(self):
        self.lines = []

    def info(self, message):
        self.lines.append(message)

    warn = live = info

    def model_done(self, *parts):
        self.lines.append(" ".join(parts))


def test_a_model_runs_succeeds_and_is_collected_once(lifecycle, tmp_path):
    job = k8s_manifests.job_name("dummy", "r1")
    cluster = FakeCluster(
        [[("ADDED", job_pod(job, "Running"))], [("MODIFIED", job_pod(job, "Succeeded", (0, "Completed")))]],
        logs={"pod-0": "hello\nperformance: 42 samples_per_second\n"},
    )
    outcome = deployment.deploy(lifecycle(cluster))
    (row,) = outcome.rows
    assert (row["status"], row["performance"], row["metric"]) == ("SUCCESS", "42", "samples_per_second")
    assert (row["deployment_type"], row["exit_code"], row["test_duration"]) == ("kubernetes", "0", "7.000")
    assert [kind for kind, _name, dry in cluster.created if not dry] == ["ConfigMap", "Job"]
    assert cluster.deleted == [job]  # on_success cleanup
    results = tmp_path / "k8s_results" / "r1"
    assert "performance: 42" in (results / job / "pod-0.log").read_text()
    assert outcome.newly_collected and outcome.changed
    # The same run id again: nothing created, the rows come from the results directory, not appended again.
    again_cluster = FakeCluster([])
    again = deployment.deploy(lifecycle(again_cluster))
    assert [r["performance"] for r in again.rows] == ["42"] and not again.newly_collected
    assert again_cluster.created == [] and not again.changed


def test_interrupted_while_waiting_deletes_the_job_and_writes_an_interrupted_row(lifecycle):
    job = k8s_manifests.job_name("dummy", "r1")
    cluster = FakeCluster([[("ADDED", job_pod(job, "Running"))], KeyboardInterrupt()], logs={"pod-0": "step 1\n"})
    outcome = deployment.deploy(lifecycle(cluster))
    (row,) = outcome.rows
    assert (row["status"], row["failure_reason"]) == ("FAILURE", "INTERRUPTED")
    assert outcome.interrupted is not None and outcome.interrupted.name == "SIGINT"
    assert job in cluster.deleted and outcome.cancelled == [job]


def test_a_refused_object_is_a_submit_failed_row(lifecycle):
    cluster = FakeCluster([], fail_create="Job")
    outcome = deployment.deploy(lifecycle(cluster))
    (row,) = outcome.rows
    assert (row["status"], row["failure_reason"]) == ("FAILURE", "SUBMIT_FAILED")
    assert any(name.startswith("ConfigMap/") for name in cluster.deleted)  # nothing half-made is left


def test_without_waiting_the_jobs_are_created_and_nothing_is_collected(lifecycle, tmp_path):
    cluster = FakeCluster([])
    outcome = deployment.deploy(lifecycle(cluster, wait=False))
    assert not outcome.collected and outcome.rows == [] and outcome.submitted
    assert json.loads((tmp_path / "k8s_results" / "r1" / "jobs.json").read_text())["jobs"]


def test_check_mode_dry_runs_every_object_and_stores_nothing(lifecycle, tmp_path):
    cluster = FakeCluster([])
    target = lifecycle(cluster)
    target.request.check_mode = True
    outcome = deployment.deploy(target)
    assert cluster.created and all(dry for _kind, _name, dry in cluster.created)
    assert outcome.changed and not (tmp_path / "k8s_results" / "r1" / "jobs.json").exists()


def test_a_gpu_model_needs_a_node_with_the_resource(lifecycle):
    target = lifecycle(FakeCluster([]))
    target.settings.gpu_vendor, target.settings.gpu_resource_name = "AMD", "amd.com/gpu"
    with pytest.raises(ConfigError) as info:
        deployment.deploy(target)
    assert "advertises 'amd.com/gpu'" in info.value.msg and "device plugin" in info.value.hint
