"""Fixtures for the integration tests: the real Docker engine, base images and registry of setup-infra.sh.

Nothing here is mocked. When the infrastructure is missing the tests FAIL (they do not skip), with a message
that says to run `bash scripts/setup-infra.sh`. Test modules mark themselves with
`pytestmark = pytest.mark.integration`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator

import docker
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURE_MAD = REPO_ROOT / "tests" / "fixtures" / "mad"
SETUP_HINT = "run `bash scripts/setup-infra.sh` (as root) first"

BUSYBOX_IMAGE = "madengine-test/busybox:latest"
DEBIAN_IMAGE = "madengine-test/debian:bookworm"


def infra_dir() -> Path:
    return Path(os.environ.get("MADENGINE_INFRA_DIR") or "/var/tmp/madengine-infra")


@dataclass(frozen=True)
class Infra:
    """Where the test registry is and how to log in to it. The password never shows up in a repr."""

    registry: str
    username: str
    password: str = field(repr=False)
    password_file: Path
    state_dir: Path
    busybox_image: str = BUSYBOX_IMAGE
    debian_image: str = DEBIAN_IMAGE

    @property
    def auth_config(self) -> Dict[str, str]:
        """For the docker SDK: images.push/pull(..., auth_config=infra.auth_config)."""
        return {"username": self.username, "password": self.password}


def read_env_file(path: Path) -> Dict[str, str]:
    values: Dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip().strip("'\"")
    return values


def _docker_info_error() -> str:
    """'' when `docker info` works, else a short reason."""
    docker_cli = shutil.which("docker")
    if docker_cli is None:
        return "no docker client on PATH"
    try:
        proc = subprocess.run(
            [docker_cli, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "`docker info` timed out"
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        return f"`docker info` failed: {lines[-1] if lines else 'exit ' + str(proc.returncode)}"
    return ""


def _image_present(image: str) -> bool:
    docker_cli = shutil.which("docker") or "docker"
    proc = subprocess.run(
        [docker_cli, "image", "inspect", "--format", "{{.Id}}", image],
        capture_output=True,
        timeout=60,
        check=False,
    )
    return proc.returncode == 0


def _registry_status(registry: str) -> str:
    try:
        with urllib.request.urlopen(f"http://{registry}/v2/", timeout=5) as response:  # noqa: S310
            return str(response.status)
    except urllib.error.HTTPError as exc:
        return str(exc.code)
    except (urllib.error.URLError, OSError) as exc:
        return f"unreachable ({getattr(exc, 'reason', exc)})"


@pytest.fixture(scope="session")
def infra() -> Infra:
    """The running infrastructure; fails the test (one line) when setup-infra.sh has not been run."""
    state = infra_dir()
    env_file = state / "registry.env"
    if not env_file.is_file():
        pytest.fail(f"{env_file} is missing: {SETUP_HINT}", pytrace=False)
    problem = _docker_info_error()
    if problem:
        pytest.fail(f"Docker engine not usable ({problem}): {SETUP_HINT}", pytrace=False)
    missing = [image for image in (BUSYBOX_IMAGE, DEBIAN_IMAGE) if not _image_present(image)]
    if missing:
        pytest.fail(f"base image(s) {', '.join(missing)} missing: {SETUP_HINT}", pytrace=False)
    values = read_env_file(env_file)
    try:
        registry = values["MADENGINE_TEST_REGISTRY"]
        username = values["MADENGINE_TEST_REGISTRY_USER"]
        password_file = Path(values["MADENGINE_TEST_REGISTRY_PASSWORD_FILE"])
    except KeyError as exc:
        pytest.fail(f"{env_file} lacks {exc.args[0]}: {SETUP_HINT}", pytrace=False)
    try:
        password = password_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        pytest.fail(
            f"cannot read the registry password file {password_file} ({exc.strerror}): {SETUP_HINT}",
            pytrace=False,
        )
    if not password:
        pytest.fail(f"the registry password file {password_file} is empty: {SETUP_HINT}", pytrace=False)
    status = _registry_status(registry)
    if status != "401":
        pytest.fail(f"registry http://{registry}/v2/ answers {status}, not 401: {SETUP_HINT}", pytrace=False)
    return Infra(registry=registry, username=username, password=password, password_file=password_file, state_dir=state)


@pytest.fixture(scope="session")
def docker_client(infra: Infra) -> Iterator[docker.DockerClient]:
    """A docker SDK client for the engine (after `infra` checked that it answers)."""
    client = docker.from_env(timeout=300)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def mad_package(tmp_path: Path) -> Path:
    """A private copy of tests/fixtures/mad (symlinks kept as symlinks) at tmp_path/'mad'."""
    target = tmp_path / "mad"
    shutil.copytree(FIXTURE_MAD, target, symlinks=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return target


SLURM_HINT = "run `bash scripts/setup-slurm.sh` (as root) first"


@dataclass(frozen=True)
class SlurmCluster:
    """The two-node cluster of setup-slurm.sh: the environment its clients need."""

    env: Dict[str, str]
    nodes: tuple = ("n1", "n2")
    partition: str = "debug"

    def run(self, *argv: str, timeout: int = 60) -> subprocess.CompletedProcess:
        return subprocess.run(
            list(argv), env={**os.environ, **self.env}, capture_output=True, text=True, timeout=timeout, check=False
        )


@pytest.fixture(scope="session")
def slurm_cluster(infra: Infra) -> SlurmCluster:
    """The running SLURM cluster (slurmctld + two slurmd); fails (one line) when it is not up."""
    env_file = Path(os.environ.get("MADENGINE_SLURM_DIR") or "/var/tmp/madengine-slurm") / "slurm.env"
    if not env_file.is_file():
        pytest.fail(f"{env_file} is missing: {SLURM_HINT}", pytrace=False)
    cluster = SlurmCluster(env=read_env_file(env_file))
    proc = cluster.run("sinfo", "-h", "-N", "-o", "%N %T")
    states = dict(line.split() for line in proc.stdout.splitlines() if len(line.split()) == 2)
    idle_like = ("idle", "mixed", "allocated", "completing")
    if proc.returncode != 0 or any(states.get(node) not in idle_like for node in cluster.nodes):
        pytest.fail(
            f"SLURM nodes not ready ({proc.stdout.strip() or proc.stderr.strip()}): {SLURM_HINT}", pytrace=False
        )
    return cluster


K8S_HINT = "run `bash scripts/setup-k8s.sh` (as root) first"


def k8s_dir() -> Path:
    return Path(os.environ.get("MADENGINE_K8S_DIR") or "/var/tmp/madengine-k8s")


@dataclass(frozen=True)
class K8sCluster:
    """The single-node Kubernetes 1.20 cluster of setup-k8s.sh and a namespace private to this test session."""

    kubeconfig: Path
    namespace: str
    node: str
    api_client: object = field(repr=False)
    env: Dict[str, str] = field(repr=False)

    @property
    def core(self) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self.api_client)

    @property
    def batch(self) -> Any:
        from kubernetes import client

        return client.BatchV1Api(self.api_client)

    def secrets_of_run(self, run_id: str) -> list:
        return self.core.list_namespaced_secret(self.namespace, label_selector=f"madengine/run={run_id}").items


def _k8s_node_ready(api_client: object, node_name: str) -> str:
    """'' when the node is Ready, else a short reason."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    try:
        node = client.CoreV1Api(api_client).read_node(node_name, _request_timeout=10)
    except ApiException as exc:
        return f"node {node_name}: HTTP {exc.status} {exc.reason}"
    except Exception as exc:  # noqa: BLE001 - connection refused, TLS errors, ...: all mean "not up"
        return f"API server not reachable ({type(exc).__name__}: {str(exc).splitlines()[0][:160]})"
    ready = [c for c in (node.status.conditions or []) if c.type == "Ready"]
    if not ready or ready[0].status != "True":
        return f"node {node_name} not Ready ({ready[0].reason if ready else 'no Ready condition'})"
    return ""


@pytest.fixture(scope="session")
def k8s_cluster() -> Iterator[K8sCluster]:
    """The running cluster with a fresh namespace (deleted at the end); fails (one line) when it is not up."""
    import time
    import uuid

    from kubernetes import client, config
    from kubernetes.client.rest import ApiException

    env_file = k8s_dir() / "k8s.env"
    if not env_file.is_file():
        pytest.fail(f"{env_file} is missing: {K8S_HINT}", pytrace=False)
    values = read_env_file(env_file)
    kubeconfig = Path(values.get("MADENGINE_K8S_KUBECONFIG", ""))
    node = values.get("MADENGINE_K8S_NODE", "localhost")
    if not kubeconfig.is_file():
        pytest.fail(f"kubeconfig {kubeconfig} from {env_file} is missing: {K8S_HINT}", pytrace=False)
    api_client = config.new_client_from_config(config_file=str(kubeconfig))
    problem = _k8s_node_ready(api_client, node)
    if problem:
        api_client.close()
        pytest.fail(f"Kubernetes cluster not usable ({problem}): {K8S_HINT}", pytrace=False)
    core = client.CoreV1Api(api_client)
    namespace = f"madengine-test-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    try:
        # Pods need the namespace's `default` service account, which the controller-manager creates.
        deadline = time.monotonic() + 60
        while True:
            try:
                core.read_namespaced_service_account("default", namespace)
                break
            except ApiException as exc:
                if exc.status != 404 or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield K8sCluster(kubeconfig=kubeconfig, namespace=namespace, node=node, api_client=api_client, env=values)
    finally:
        try:
            core.delete_namespace(namespace, propagation_policy="Background")
        except ApiException as exc:
            if exc.status != 404:
                raise
        finally:
            api_client.close()


SCHEMA_HINT = "run `bash scripts/setup-schemas.sh` first"


@pytest.fixture(scope="session")
def junit_schema() -> Any:
    """An lxml XMLSchema of junit-10.xsd (Jenkins xunit-plugin's, fetched by setup-schemas.sh); the test is
    skipped, saying so, when the script has not been run."""
    from lxml import etree

    path = Path(os.environ.get("MADENGINE_SCHEMA_DIR") or "/var/cache/madengine-schemas") / "junit-10.xsd"
    if not path.is_file():
        pytest.skip(f"{path} is missing: {SCHEMA_HINT}")
    return etree.XMLSchema(etree.parse(str(path)))
