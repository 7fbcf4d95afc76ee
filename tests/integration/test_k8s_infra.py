"""The single-node Kubernetes 1.20 cluster of scripts/setup-k8s.sh really runs Jobs.

Nothing is mocked: the kubelet pulls the test image from the authenticated registry of setup-infra.sh
(127.0.0.1:5001) through the private containerd, with the credentials of an imagePullSecret
(kubernetes.io/dockerconfigjson); without that secret the pull is refused. Everything runs in the session's own
namespace (the `k8s_cluster` fixture deletes it at the end).
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Iterator, List, Optional

import pytest
from kubernetes import client

pytestmark = pytest.mark.integration

IMAGE_REPOSITORY = "madengine-test/busybox"
PERF_LINE = "performance: 42 samples_per_second"
JOB_TIMEOUT = 180  # seconds; the Job itself takes a few seconds
PULL_FAILURE_REASONS = ("ErrImagePull", "ImagePullBackOff")


@pytest.fixture(scope="module")
def registry_image(infra, docker_client) -> Iterator[str]:
    """madengine-test/busybox:latest pushed to the authenticated test registry; the local extra tag is removed."""
    remote = f"{infra.registry}/{IMAGE_REPOSITORY}"
    image = docker_client.images.get(infra.busybox_image)
    assert image.tag(remote, "latest")
    try:
        errors = [
            line["error"]
            for line in docker_client.images.push(
                remote, tag="latest", auth_config=infra.auth_config, stream=True, decode=True
            )
            if "error" in line
        ]
        assert errors == [], f"pushing {remote}:latest failed: {errors}"
        yield f"{remote}:latest"
    finally:
        docker_client.images.remove(f"{remote}:latest", noprune=True)


@pytest.fixture(scope="module")
def pull_secret(k8s_cluster, infra) -> str:
    """A kubernetes.io/dockerconfigjson Secret with the registry's credentials, in the session namespace."""
    auth = base64.b64encode(f"{infra.username}:{infra.password}".encode()).decode()
    config = {"auths": {infra.registry: {"username": infra.username, "password": infra.password, "auth": auth}}}
    name = "registry-pull"
    client.CoreV1Api(k8s_cluster.api_client).create_namespaced_secret(
        k8s_cluster.namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name=name),
            type="kubernetes.io/dockerconfigjson",
            string_data={".dockerconfigjson": json.dumps(config)},
        ),
    )
    return name


def perf_job(name: str, image: str, pull_secret: Optional[str]) -> client.V1Job:
    pod_spec = client.V1PodSpec(
        restart_policy="Never",
        host_network=True,  # like madengine's `docker run --network host`
        automount_service_account_token=False,
        termination_grace_period_seconds=0,
        containers=[
            client.V1Container(
                name="model",
                image=image,
                image_pull_policy="Always",  # always through the registry, never a copy already in containerd
                command=["sh", "-c", f"echo {PERF_LINE}"],
            )
        ],
        image_pull_secrets=[client.V1LocalObjectReference(name=pull_secret)] if pull_secret else None,
    )
    return client.V1Job(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1JobSpec(
            backoff_limit=0,
            template=client.V1PodTemplateSpec(metadata=client.V1ObjectMeta(labels={"job-name": name}), spec=pod_spec),
        ),
    )


def job_pods(k8s_cluster, name: str) -> List[client.V1Pod]:
    core = client.CoreV1Api(k8s_cluster.api_client)
    return core.list_namespaced_pod(k8s_cluster.namespace, label_selector=f"job-name={name}").items


def describe(k8s_cluster, name: str) -> str:
    """The pods' phases and container states, and the namespace's events, for an assertion message."""
    lines = []
    for pod in job_pods(k8s_cluster, name):
        states = [str(status.state) for status in pod.status.container_statuses or []]
        lines.append(f"pod {pod.metadata.name}: {pod.status.phase} {' '.join(states)}")
    events = client.CoreV1Api(k8s_cluster.api_client).list_namespaced_event(k8s_cluster.namespace).items
    lines += [f"event {e.involved_object.name}: {e.reason}: {e.message}" for e in events[-15:]]
    return "\n".join(lines)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def test_node_is_ready_and_runs_kubernetes_1_20(k8s_cluster) -> None:
    node = client.CoreV1Api(k8s_cluster.api_client).read_node(k8s_cluster.node)
    ready = {c.type: c.status for c in node.status.conditions}
    assert ready.get("Ready") == "True", node.status.conditions
    assert node.status.node_info.kubelet_version.startswith("v1.20."), node.status.node_info
    assert node.status.node_info.container_runtime_version.startswith("containerd://")


def test_job_pulls_from_the_authenticated_registry_and_its_log_comes_back(
    k8s_cluster, registry_image: str, pull_secret: str
) -> None:
    name = unique("perf")
    batch = client.BatchV1Api(k8s_cluster.api_client)
    batch.create_namespaced_job(k8s_cluster.namespace, perf_job(name, registry_image, pull_secret))
    deadline = time.monotonic() + JOB_TIMEOUT
    while True:
        status = batch.read_namespaced_job_status(name, k8s_cluster.namespace).status
        if status.succeeded or status.failed:
            break
        assert time.monotonic() < deadline, f"Job {name} not finished after {JOB_TIMEOUT}s:\n" + describe(
            k8s_cluster, name
        )
        time.sleep(0.5)
    assert status.succeeded == 1, f"Job {name} failed:\n" + describe(k8s_cluster, name)

    pods = job_pods(k8s_cluster, name)
    assert len(pods) == 1
    pod = pods[0]
    assert pod.spec.host_network is True
    assert pod.status.container_statuses[0].image.endswith(f"{IMAGE_REPOSITORY}:latest")
    log = client.CoreV1Api(k8s_cluster.api_client).read_namespaced_pod_log(pod.metadata.name, k8s_cluster.namespace)
    assert log.strip() == PERF_LINE
    batch.delete_namespaced_job(name, k8s_cluster.namespace, propagation_policy="Foreground")


def test_job_without_the_pull_secret_cannot_pull(k8s_cluster, registry_image: str) -> None:
    name = unique("nosecret")
    batch = client.BatchV1Api(k8s_cluster.api_client)
    batch.create_namespaced_job(k8s_cluster.namespace, perf_job(name, registry_image, None))
    deadline = time.monotonic() + JOB_TIMEOUT
    reason = None
    while reason not in PULL_FAILURE_REASONS:
        for pod in job_pods(k8s_cluster, name):
            for status in pod.status.container_statuses or []:
                assert status.state.running is None and status.state.terminated is None, (
                    f"the container ran without registry credentials: {status.state}"
                )
                if status.state.waiting is not None:
                    reason = status.state.waiting.reason
        if reason in PULL_FAILURE_REASONS:
            break
        assert time.monotonic() < deadline, f"no image pull failure after {JOB_TIMEOUT}s:\n" + describe(
            k8s_cluster, name
        )
        time.sleep(0.5)
    assert reason in PULL_FAILURE_REASONS
    batch.delete_namespaced_job(name, k8s_cluster.namespace, propagation_policy="Background")
