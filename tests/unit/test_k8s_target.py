"""The Kubernetes target's reading of pods (why a model failed), results markers and the lifecycle's bookkeeping,
on the kubernetes client's own model objects. The cluster itself is exercised in tests/integration/test_k8s.py."""

from __future__ import annotations

import datetime as dt

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

from ansible_collections.rocm.madengine.plugins.module_utils import deployment, k8s
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
    assert end.duration == (7.0 if terminated else 0.0)


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
