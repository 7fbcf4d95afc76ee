"""Real broken parts for tests/integration/test_faults.py: a private registry that can be stopped, small tmpfs
mounts (full, read-only) and a model of its own per test. Every one of them is unique to the test that asks for it
and is always taken down again."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def http_status(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback only
            return str(response.status)
    except urllib.error.HTTPError as exc:
        return str(exc.code)
    except (urllib.error.URLError, OSError) as exc:
        return f"unreachable ({getattr(exc, 'reason', exc)})"


@dataclass
class PrivateRegistry:
    """A docker-registry with htpasswd auth on a loopback port of its own (the shared one on 5001 is untouched)."""

    directory: Path
    port: int = field(default_factory=free_port)
    username: str = "faults"
    password: str = field(default_factory=lambda: secrets.token_hex(12), repr=False)
    process: Optional[subprocess.Popen] = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, wait_s: float = 30) -> None:
        binary = shutil.which("docker-registry")
        if binary is None:
            raise RuntimeError("docker-registry is not installed: run `bash scripts/setup-infra.sh` (as root) first")
        self.directory.mkdir(parents=True, exist_ok=True)
        htpasswd = self.directory / "htpasswd"
        if not htpasswd.exists():  # bcrypt; -i: the password comes through stdin, never argv
            made = subprocess.run(
                ["htpasswd", "-iBn", self.username], input=self.password, capture_output=True, text=True, check=False
            )
            if made.returncode != 0:
                raise RuntimeError(f"htpasswd failed: {made.stderr.strip()}")
            htpasswd.write_text(made.stdout, encoding="utf-8")
        config = self.directory / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log: {level: warn}\n"
            f"storage: {{filesystem: {{rootdirectory: {self.directory / 'data'}}}, delete: {{enabled: true}}}}\n"
            f"http: {{addr: '{self.address}'}}\n"
            f"auth: {{htpasswd: {{realm: faults, path: {htpasswd}}}}}\n",
            encoding="utf-8",
        )
        log = open(self.directory / "registry.log", "ab")  # noqa: SIM115 - the child keeps it
        with log:
            self.process = subprocess.Popen(
                [binary, "serve", str(config)], stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True
            )
        deadline = time.monotonic() + wait_s
        while http_status(f"http://{self.address}/v2/") != "401":
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = (self.directory / "registry.log").read_text(errors="replace")[-800:]
                self.stop()
                raise RuntimeError(f"the private registry on {self.address} did not come up:\n{tail}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL) and wait until nothing listens on its port any more."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None

    def credentials(self, repository: str) -> Dict[str, Dict[str, str]]:
        """credential.json content for this registry."""
        return {self.address: {"username": self.username, "password": self.password, "repository": repository}}


@contextlib.contextmanager
def private_registry(directory: Path) -> Iterator[PrivateRegistry]:
    registry = PrivateRegistry(directory)
    registry.start()
    try:
        yield registry
    finally:
        registry.stop()


# ---------------------------------------------------------------------------------------------- small file systems


TMPFS_SOURCE = "madengine-faults"


def _mounted(path: Path) -> bool:
    target = str(path.resolve())
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        return any(line.split()[4] == target for line in handle)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_stale_tmpfs() -> None:
    """Unmount the tmpfs mounts of fault tests whose process died before its teardown (their source names the
    pid: madengine-faults-<pid>)."""
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        for line in handle:
            fields = line.split()
            tail = fields[fields.index("-") + 1 :]
            source = tail[1] if len(tail) > 1 else ""
            owner = source[len(TMPFS_SOURCE) + 1 :] if source.startswith(TMPFS_SOURCE + "-") else ""
            if tail[0] == "tmpfs" and owner.isdigit() and not _pid_alive(int(owner)):
                subprocess.run(["umount", "-l", fields[4]], capture_output=True, check=False)


@contextlib.contextmanager
def tmpfs(directory: Path, size: str = "64k") -> Iterator[Path]:
    """A tmpfs of `size` mounted on `directory` (created); unmounted (lazily, if busy) and removed afterwards."""
    reap_stale_tmpfs()
    directory.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", f"{TMPFS_SOURCE}-{os.getpid()}", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"cannot mount a tmpfs on {directory} (the fault tests run as root): {proc.stderr.strip()}")
    try:
        yield directory
    finally:
        if _mounted(directory) and subprocess.run(["umount", str(directory)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(directory)], capture_output=True, check=False)
        with contextlib.suppress(OSError):
            directory.rmdir()


def remount_read_only(directory: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(directory)], capture_output=True, text=True, check=True)


def fill(directory: Path) -> Path:
    """Write a filler file into `directory` until its file system is full; the filler's path."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as handle:
        block = b"\0" * 4096
        with contextlib.suppress(OSError):
            while True:
                handle.write(block)
        with contextlib.suppress(OSError):
            while True:  # the last bytes, one at a time
                handle.write(b"\0")
    return filler


# ---------------------------------------------------------------------------------------------- a model of its own


def add_private_model(package: Path, script: str = "scripts/dummy/run.sh", args: str = "") -> str:
    """Add a model card with a name no other test uses to the package's models.json; its name. Its image
    (ci-<name>_dummy.ubuntu.cpu) can be removed without disturbing anybody."""
    name = f"fault_{uuid.uuid4().hex[:10]}"
    models_json = package / "models.json"
    models: List[dict] = json.loads(models_json.read_text(encoding="utf-8"))
    models.append(
        {"name": name, "dockerfile": "docker/dummy", "scripts": script, "n_gpus": "1", "tags": [], "args": args}
    )
    models_json.write_text(json.dumps(models, indent=4), encoding="utf-8")
    return name


def image_of(model: str) -> str:
    return f"ci-{model}_dummy.ubuntu.cpu"


def remove_images(*names: str, docker_host: str = "") -> None:
    env = dict(os.environ, DOCKER_HOST=docker_host) if docker_host else None
    subprocess.run(["docker", "image", "rm", "--force", *names], capture_output=True, env=env, check=False)


def error_lines(stderr: str) -> List[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]
