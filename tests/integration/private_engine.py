"""A private Docker engine that a test may stop, kill and start again, leaving the shared engine alone.

It runs in a network namespace of its own (never in the root one: a second dockerd there can delete the host's
docker0, see docs of the test infrastructure), with its own --data-root, --exec-root, --pidfile, config file and
unix socket, all under one short directory /tmp/mdf-<id>. It shares the mount namespace (`nsenter --net` only),
so bind mounts of the MAD package resolve as for the shared engine. madengine reaches it through DOCKER_HOST.

Teardown always: stops dockerd, kills every process left in its network namespace (containerd, shims, containers),
removes the cgroups and shim sockets of its containers, unmounts what it mounted under its directory, removes the
directory and deletes the namespace. Instances whose test process died (a killed pytest) are reaped when the next
one starts.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Iterator, List, Optional

PREFIX = "mdf-"  # /tmp/mdf-<id>: unix socket paths must stay short
STATE_PARENT = Path(tempfile.gettempdir())
START_WAIT_S = 60
SHIM_SOCKETS = Path("/run/containerd/s")


class EngineError(RuntimeError):
    """The private engine could not be set up; the message says what failed and where its log is."""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _netns_inode(path: str) -> int:
    return os.stat(path).st_ino


def _pids_in_netns(inode: int) -> List[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            if os.stat(f"/proc/{entry}/ns/net").st_ino == inode and int(entry) != os.getpid():
                found.append(int(entry))
    return found


def _mounts_under(directory: Path) -> List[str]:
    prefix = str(directory) + "/"
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        points = [line.split()[4] for line in handle]
    inside = {p for p in points if p == str(directory) or p.startswith(prefix)}
    return sorted(inside, key=lambda p: p.count("/"), reverse=True)


def _run(*argv: str, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False, **kwargs)


class PrivateEngine:
    def __init__(self, directory: Optional[Path] = None) -> None:
        ident = uuid.uuid4().hex[:10]
        self.directory = directory or STATE_PARENT / f"{PREFIX}{ident}"
        self.netns = (self.directory / "netns").read_text().strip() if directory else f"madengine-faults-{ident}"
        self.process: Optional[subprocess.Popen] = None

    # ------------------------------------------------------------------------------------------------ paths

    @property
    def socket(self) -> Path:
        return self.directory / "docker.sock"

    @property
    def url(self) -> str:
        """DOCKER_HOST for madengine and the docker CLI."""
        return f"unix://{self.socket}"

    @property
    def log(self) -> Path:
        return self.directory / "dockerd.log"

    @property
    def netns_path(self) -> str:
        return f"/run/netns/{self.netns}"

    def docker(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return _run("docker", "-H", self.url, *args, timeout=timeout)

    # ------------------------------------------------------------------------------------------------ life

    def create(self) -> None:
        """The directory and the network namespace (with its loopback up)."""
        for tool in ("dockerd", "docker", "ip", "nsenter"):
            if shutil.which(tool) is None:
                raise EngineError(f"{tool} not found on PATH: run `bash scripts/setup-infra.sh` (as root) first")
        self.reap_stale()
        self.directory.mkdir(mode=0o700)
        (self.directory / "owner").write_text(str(os.getpid()))
        (self.directory / "netns").write_text(self.netns)
        (self.directory / "daemon.json").write_text("{}\n")
        made = _run("ip", "netns", "add", self.netns)
        if made.returncode != 0:
            raise EngineError(f"`ip netns add {self.netns}` failed: {made.stderr.strip()}")
        _run("nsenter", f"--net={self.netns_path}", "ip", "link", "set", "lo", "up")
        if _netns_inode(self.netns_path) == _netns_inode("/proc/self/ns/net"):
            raise EngineError(f"{self.netns_path} is the root network namespace; refusing to start a second dockerd")

    def start(self) -> None:
        """Start dockerd (again, on the same data) and wait until it answers."""
        if self.process is not None and self.process.poll() is None:
            return
        # A killed dockerd leaves its containerd a zombie until PID 1 reaps it; dockerd would take the zombie for a
        # running containerd and wait for it in vain.
        containerd_pid = self.directory / "exec" / "containerd" / "containerd.pid"
        with contextlib.suppress(OSError, ValueError):
            if not _alive(int(containerd_pid.read_text().strip())):
                containerd_pid.unlink()
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [
                    "nsenter", f"--net={self.netns_path}", "dockerd",
                    "--config-file", str(self.directory / "daemon.json"),
                    "--data-root", str(self.directory / "root"),
                    "--exec-root", str(self.directory / "exec"),
                    "--pidfile", str(self.directory / "dockerd.pid"),
                    "--host", self.url,
                    # in its own namespace: no bridge and no iptables rules at all (containers use the host network)
                    "--bridge", "none", "--iptables=false", "--ip-masq=false",
                    "--shutdown-timeout", "2",
                ],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + START_WAIT_S
        while self.docker("version", "--format", "{{.Server.Version}}", timeout=30).returncode != 0:
            if self.process.poll() is not None or time.monotonic() > deadline:
                why = "exited" if self.process.poll() is not None else f"did not answer within {START_WAIT_S} s"
                raise EngineError(f"the private dockerd {why}; its log {self.log} ends:\n{self.log_tail()}")
            time.sleep(0.1)

    def log_tail(self, lines: int = 15) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def load_image(self, image: str) -> None:
        """Copy `image` from the shared engine (the default DOCKER_HOST) into this one."""
        env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
        with subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE, env=env) as save:
            loaded = subprocess.run(
                ["docker", "-H", self.url, "load"], stdin=save.stdout, capture_output=True, text=True, check=False
            )
        if save.returncode != 0 or loaded.returncode != 0:
            raise EngineError(f"cannot copy {image} into the private engine: {loaded.stderr.strip()}")

    def stop(self, sig: int = signal.SIGTERM, wait_s: float = 30) -> None:
        """Send `sig` to dockerd and wait until it has exited (SIGKILL after wait_s)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(wait_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None

    def close(self) -> None:
        """Everything back as it was; safe to call more than once, and on a half-created instance."""
        with contextlib.suppress(Exception):
            self.stop(signal.SIGKILL)  # no graceful shutdown needed: everything in the namespace goes next
        if os.path.exists(self.netns_path):
            inode = _netns_inode(self.netns_path)
            if inode != _netns_inode("/proc/self/ns/net"):
                self._kill_all(inode)
        self._remove_container_leftovers()
        for point in _mounts_under(self.directory):
            if _run("umount", point).returncode != 0:
                _run("umount", "-l", point)
        shutil.rmtree(self.directory, ignore_errors=True)
        if os.path.exists(self.netns_path):
            _run("ip", "netns", "del", self.netns)

    def _kill_all(self, inode: int) -> None:
        for _ in range(50):
            pids = _pids_in_netns(inode)
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)
            if not any(_alive(pid) for pid in pids):
                return

    def _remove_container_leftovers(self) -> None:
        """What a killed container leaves outside the directory: its cgroups (runc removes them only when the
        container ends normally) and its shim's socket (containerd names it sha256(<address>/<namespace>/<id>))."""
        containers = self.directory / "root" / "containers"
        ids = [p.name for p in containers.iterdir()] if containers.is_dir() else []
        address = self.directory / "exec" / "containerd" / "containerd.sock"
        for container_id in ids:
            for cgroup in Path("/sys/fs/cgroup").glob(f"*/docker/{container_id}"):
                with contextlib.suppress(OSError):
                    cgroup.rmdir()
            digest = hashlib.sha256(f"{address}/moby/{container_id}".encode()).hexdigest()
            shim_socket = SHIM_SOCKETS / digest
            if shim_socket.is_socket():
                with contextlib.suppress(OSError):
                    shim_socket.unlink()

    @classmethod
    def reap_stale(cls) -> None:
        """Close the instances of test processes that died without their teardown."""
        for directory in STATE_PARENT.glob(f"{PREFIX}*"):
            try:
                owner = int((directory / "owner").read_text())
                (directory / "netns").read_text()
            except (OSError, ValueError):
                continue
            if owner != os.getpid() and not _alive(owner):
                cls(directory).close()


@contextlib.contextmanager
def private_engine(*images: str) -> Iterator[PrivateEngine]:
    """A started private engine holding `images` (copied from the shared engine); always closed afterwards."""
    engine = PrivateEngine()
    try:
        engine.create()
        engine.start()
        for image in images:
            engine.load_image(image)
        yield engine
    finally:
        engine.close()
