"""Pushing to and running from the authenticated registry; secrets stay out of argv, logs and files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import List

import pytest
from clirun import cli_env, manifest, perf_rows

pytestmark = pytest.mark.integration


class ArgvWatcher:
    """Samples every process's command line while a command runs, looking for a secret."""

    def __init__(self, secret: str) -> None:
        self.secret = secret.encode()
        self.hits: List[str] = []
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as handle:
                        cmdline = handle.read()
                except OSError:
                    continue
                if self.secret in cmdline:
                    self.hits.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
            self.samples += 1
            self._stop.wait(0.02)

    def __enter__(self) -> ArgvWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_cli(cwd: Path, *args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "madengine", *args],
        cwd=cwd,
        env=cli_env(env),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def write_credentials(package: Path, infra, repository: str) -> None:
    creds = {infra.registry: {"username": infra.username, "password": infra.password, "repository": repository}}
    (package / "credential.json").write_text(json.dumps(creds))


def test_push_then_run_from_registry_after_local_delete(mad_package: Path, infra, docker_client) -> None:
    repository = f"madengine-it/{os.getpid()}"
    write_credentials(mad_package, infra, repository)
    with ArgvWatcher(infra.password) as watcher:
        built = run_cli(mad_package, "build", "--tags", "dummy", "--registry", infra.registry)
    assert built.returncode == 0, built.stdout + built.stderr
    assert watcher.samples > 0 and watcher.hits == []
    data = manifest(mad_package)
    record = data["built_images"]["ci-dummy_dummy.ubuntu.cpu"]
    remote = f"{infra.registry}/{repository}:ci-dummy_dummy.ubuntu.cpu"
    assert record["registry_image"] == remote
    assert record["registry"] == infra.registry
    assert record["image_digest"].startswith(f"{infra.registry}/{repository}@sha256:")
    assert data["summary"]["successful_pushes"] == [remote]
    assert data["built_models"]["ci-dummy_dummy.ubuntu.cpu"]["env_vars"]["DOCKER_IMAGE_NAME"] == remote

    for name in (remote, "ci-dummy_dummy.ubuntu.cpu"):
        docker_client.images.remove(name, force=True)
    with ArgvWatcher(infra.password) as watcher:
        ran = run_cli(mad_package, "run", "--manifest-file", "build_manifest.json")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert watcher.hits == []
    (row,) = perf_rows(mad_package)
    assert row["status"] == "SUCCESS" and row["docker_image"] == remote
    assert row["image_digest"] == record["image_digest"]
    assert docker_client.images.get(remote)

    leaked = [
        p.name
        for p in mad_package.iterdir()
        if p.is_file() and p.name != "credential.json" and infra.password in p.read_text(errors="replace")
    ]
    assert leaked == []
    assert infra.password not in built.stdout + built.stderr + ran.stdout + ran.stderr


def test_wrong_password_is_a_build_failure_without_the_secret(mad_package: Path, infra) -> None:
    creds = {infra.registry: {"username": infra.username, "password": "wrong-password-123", "repository": "x"}}
    (mad_package / "credential.json").write_text(json.dumps(creds))
    result = run_cli(mad_package, "build", "--tags", "dummy", "--registry", infra.registry)
    assert result.returncode == 2
    assert "push of" in result.stderr
    assert "wrong-password-123" not in result.stdout + result.stderr
    data = manifest(mad_package)
    assert data["built_images"] == {}
    assert data["summary"]["failed_pushes"][0]["model"] == "dummy"
    assert "wrong-password-123" not in json.dumps(data)


def test_dockerhub_env_credentials_are_used_for_the_registry_name(mad_package: Path, infra) -> None:
    env = {"MAD_DOCKERHUB_USER": infra.username, "MAD_DOCKERHUB_PASSWORD": infra.password}
    result = run_cli(mad_package, "build", "--tags", "dummy", "--registry", "docker.io", env=env)
    assert result.returncode == 4
    assert "repository" in result.stderr
    assert infra.password not in result.stdout + result.stderr
