"""Fixtures for the integration tests: the real Docker engine, base images and registry of setup-infra.sh.

Nothing here is mocked. When the infrastructure is missing the tests FAIL (they do not skip), with a message
that says to run `bash scripts/setup-infra.sh`. Test modules mark themselves with
`pytestmark = pytest.mark.integration`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
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


@dataclass
class K8sCluster:
    """The single-node cluster of setup-k8s.sh, a namespace of this test session in it, and API clients."""

    kubeconfig: str
    namespace: str
    node: str
    core: Any
    batch: Any

    def secrets_of_run(self, run_id: str) -> list:
        return self.core.list_namespaced_secret(self.namespace, label_selector=f"madengine/run={run_id}").items


@pytest.fixture(scope="session")
def k8s_cluster(infra: Infra) -> Iterator[K8sCluster]:
    """The running cluster (fails with a one-line hint when it is not up) and a fresh namespace, deleted after."""
    import uuid

    import kubernetes

    state = Path(os.environ.get("MADENGINE_K8S_DIR") or "/var/tmp/madengine-k8s")
    kubeconfig = state / "kubeconfig"
    if not kubeconfig.is_file():
        pytest.fail(f"{kubeconfig} is missing: {K8S_HINT}", pytrace=False)
    api = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
    core, batch = kubernetes.client.CoreV1Api(api), kubernetes.client.BatchV1Api(api)
    try:
        nodes = core.list_node(_request_timeout=15).items
    except Exception as exc:  # the API server is down or refuses us
        pytest.fail(f"Kubernetes API not usable ({str(exc).splitlines()[0]}): {K8S_HINT}", pytrace=False)
    ready = [
        n.metadata.name
        for n in nodes
        if any(c.type == "Ready" and c.status == "True" for c in (n.status.conditions or []))
    ]
    if not ready:
        pytest.fail(f"no Kubernetes node is Ready: {K8S_HINT}", pytrace=False)
    namespace = f"madengine-test-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": namespace}})
    deadline = time.monotonic() + 60
    while not core.list_namespaced_service_account(namespace).items:  # pods need the default service account
        if time.monotonic() > deadline:
            pytest.fail(f"namespace {namespace} got no service account: is the controller-manager up?", pytrace=False)
        time.sleep(0.2)
    yield K8sCluster(str(kubeconfig), namespace, ready[0], core, batch)
    core.delete_namespace(namespace)
