"""The infrastructure of scripts/setup-infra.sh really works: base images, authenticated registry, fixture."""

from __future__ import annotations

import ast
import base64
import json
import os
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional

import docker
import pytest
from docker.errors import APIError, ImageNotFound

pytestmark = pytest.mark.integration

FIXTURE_MAD = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "mad"
HEADER_LINES = 5
CONTEXT_MARK = "# CONTEXT "


def run_output(client: docker.DockerClient, image: str, command: List[str]) -> str:
    out = client.containers.run(image, command, remove=True, network_mode="none")
    return out.decode("utf-8", "replace").strip()


def push_errors(stream: Iterable[Dict[str, Any]]) -> List[str]:
    """The error messages of a decoded push/pull progress stream (the SDK does not raise for them)."""
    errors = []
    for event in stream:
        if "error" in event:
            errors.append(str(event["error"]))
        elif event.get("errorDetail"):
            errors.append(str(event["errorDetail"].get("message", event["errorDetail"])))
    return errors


def registry_request(
    infra: Any,
    path: str,
    method: str = "GET",
    password: Optional[str] = None,
    headers: Optional[Dict[str, str]] = None,
) -> urllib.request.Request:
    request = urllib.request.Request(f"http://{infra.registry}{path}", method=method, headers=headers or {})
    if password is not None:
        token = base64.b64encode(f"{infra.username}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    return request


def http_status(request: urllib.request.Request) -> int:
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@pytest.fixture
def unique_repo(infra: Any, docker_client: docker.DockerClient):
    """A repository name no other run uses; its local tags and registry manifest are removed afterwards."""
    repo = f"{infra.registry}/madengine-test/infra-check-{uuid.uuid4().hex[:12]}"
    yield repo
    for image in docker_client.images.list(name=repo):
        for tag in image.tags:
            if tag.startswith(repo + ":"):
                try:
                    docker_client.images.remove(tag, noprune=False)
                except (ImageNotFound, APIError):
                    pass
    path = repo.split("/", 1)[1]
    accept = {"Accept": "application/vnd.docker.distribution.manifest.v2+json"}
    try:
        with urllib.request.urlopen(  # noqa: S310
            registry_request(infra, f"/v2/{path}/manifests/1", "HEAD", infra.password, accept), timeout=10
        ) as response:
            digest = response.headers.get("Docker-Content-Digest")
        if digest:
            http_status(registry_request(infra, f"/v2/{path}/manifests/{digest}", "DELETE", infra.password))
    except (urllib.error.URLError, OSError):
        pass


@pytest.fixture
def tiny_image(docker_client: docker.DockerClient, unique_repo: str, tmp_path: Path) -> str:
    """A FROM scratch image with one file of unique content, so a pull really has to fetch its layer."""
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "payload.txt").write_text(f"{unique_repo}\n", encoding="utf-8")
    (context / "Dockerfile").write_text("FROM scratch\nCOPY payload.txt /payload.txt\n", encoding="utf-8")
    tag = f"{unique_repo}:1"
    docker_client.images.build(path=str(context), tag=tag, rm=True)
    return tag


# --------------------------------------------------------------------------------------------------
# base images


def test_busybox_image_runs_bash_wrapper(infra: Any, docker_client: docker.DockerClient) -> None:
    number = run_output(docker_client, infra.busybox_image, ["bash", "-c", "echo $RANDOM"])
    assert number.isdigit(), f"`bash -c 'echo $RANDOM'` printed {number!r}"
    # /bin/bash is the busybox sh wrapper, not a real bash
    version = run_output(docker_client, infra.busybox_image, ["bash", "-c", "echo ${BASH_VERSION:-none}"])
    assert version == "none"
    assert run_output(docker_client, infra.busybox_image, ["sh", "-c", "echo $PATH"]) == "/bin:/usr/bin"


def test_busybox_image_runs_a_script_with_arguments(infra: Any, docker_client: docker.DockerClient) -> None:
    # the way model scripts are started: bash <script> <args...>, cwd = the copied script directory
    out = docker_client.containers.run(
        infra.busybox_image,
        ["bash", "run_args.sh", "two words", "$HOME"],
        remove=True,
        network_mode="none",
        working_dir="/myworkspace/scripts/dummy",
        volumes={str(FIXTURE_MAD): {"bind": "/myworkspace", "mode": "ro"}},
    ).decode()
    assert "arg[1]=two words\narg[2]=$HOME\nargc=2\n" in out
    assert "performance: 1 samples_per_second" in out


def test_debian_image_has_real_bash(infra: Any, docker_client: docker.DockerClient) -> None:
    out = run_output(
        docker_client,
        infra.debian_image,
        ["bash", "-c", 'a=(x y z); [[ ${#a[@]} -eq 3 ]] && echo "ok ${BASH_VERSION}"'],
    )
    assert out.startswith("ok 5."), out


# --------------------------------------------------------------------------------------------------
# registry


def test_registry_http_auth(infra: Any) -> None:
    assert http_status(registry_request(infra, "/v2/")) == 401
    assert http_status(registry_request(infra, "/v2/", password=infra.password + "x")) == 401
    assert http_status(registry_request(infra, "/v2/", password=infra.password)) == 200


def test_registry_rejects_unauthenticated_push(
    infra: Any, tiny_image: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A client with an empty config dir: no credentials from ~/.docker/config.json can sneak in.
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "empty-docker-config"))
    (tmp_path / "empty-docker-config").mkdir()
    client = docker.from_env(timeout=300)
    try:
        repo, tag = tiny_image.rsplit(":", 1)
        errors = push_errors(client.images.push(repo, tag=tag, stream=True, decode=True))
        assert errors, "an unauthenticated push was accepted"
        assert any("basic auth" in e or "unauthorized" in e.lower() for e in errors), errors

        wrong = {"username": infra.username, "password": infra.password + "-wrong"}
        errors = push_errors(client.images.push(repo, tag=tag, stream=True, decode=True, auth_config=wrong))
        assert errors, "a push with a wrong password was accepted"
    finally:
        client.close()


def test_registry_authenticated_push_pull_round_trip(
    infra: Any, docker_client: docker.DockerClient, tiny_image: str
) -> None:
    repo, tag = tiny_image.rsplit(":", 1)
    image_id = docker_client.images.get(tiny_image).id

    errors = push_errors(
        docker_client.images.push(repo, tag=tag, stream=True, decode=True, auth_config=infra.auth_config)
    )
    assert not errors, errors

    path = repo.split("/", 1)[1]
    request = registry_request(infra, f"/v2/{path}/tags/list", password=infra.password)
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        assert json.load(response) == {"name": path, "tags": [tag]}

    docker_client.images.remove(tiny_image)
    with pytest.raises(ImageNotFound):
        docker_client.images.get(tiny_image)

    with pytest.raises(APIError):
        docker_client.images.pull(repo, tag=tag, auth_config={"username": infra.username, "password": "nope"})

    pulled = docker_client.images.pull(repo, tag=tag, auth_config=infra.auth_config)
    assert pulled.id == image_id


# --------------------------------------------------------------------------------------------------
# fixture MAD package


def context_header(path: Path) -> Optional[Dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for _, line in zip(range(HEADER_LINES), handle):
            if CONTEXT_MARK in line:
                value = ast.literal_eval(line.split(CONTEXT_MARK, 1)[1].strip())
                assert isinstance(value, dict), f"{path.name}: CONTEXT is a {type(value).__name__}"
                return value
    return None


FIXTURE_DOCKERFILES = sorted((FIXTURE_MAD / "docker").glob("*.Dockerfile"))


WITH_HEADER = [p for p in FIXTURE_DOCKERFILES if not p.name.startswith("dummy_noheader.")]


@pytest.mark.parametrize("dockerfile", WITH_HEADER, ids=lambda p: p.name)
def test_fixture_dockerfile_has_context_header(dockerfile: Path) -> None:
    header = context_header(dockerfile)
    assert header, f"{dockerfile.name}: no parseable '# CONTEXT {{...}}' in its first {HEADER_LINES} lines"
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in header.items()), header


def test_fixture_noheader_dockerfile_has_no_header() -> None:
    assert context_header(FIXTURE_MAD / "docker" / "dummy_noheader.ubuntu.cpu.Dockerfile") is None


def test_fixture_dummy3_dockerfile_symlinks_resolve_inside_the_package() -> None:
    links = sorted((FIXTURE_MAD / "scripts" / "dummy3" / "docker").glob("*.Dockerfile"))
    assert [p.name for p in links] == [
        "dummy.ubuntu.amd.Dockerfile",
        "dummy.ubuntu.cpu.Dockerfile",
        "dummy.ubuntu.nvidia.Dockerfile",
    ]
    for link in links:
        assert link.is_symlink() and not os.path.isabs(os.readlink(link)), link
        assert link.resolve() == (FIXTURE_MAD / "docker" / link.name).resolve()


def test_fixture_models_reference_existing_scripts() -> None:
    models = json.loads((FIXTURE_MAD / "models.json").read_text(encoding="utf-8"))
    for model in models:
        assert (FIXTURE_MAD / model["scripts"]).is_file(), model["name"]
    scope = FIXTURE_MAD / "scripts" / "dummy2"
    for scoped in json.loads((scope / "models.json").read_text(encoding="utf-8")):
        assert (scope / scoped["scripts"]).is_file(), scoped["name"]
