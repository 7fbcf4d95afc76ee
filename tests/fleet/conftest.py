"""Fixtures for the fleet tests: real SSH hosts for Ansible, started by scripts/setup-hosts.sh.

Each host is a network namespace (mdg-h1, mdg-h2, ... at 10.231.0.11, .12, ... on the bridge mdg-br0) with its
own sshd, hostname and /etc/hosts. The hosts share this machine's filesystem and Docker engine. Nothing is
mocked: when the hosts cannot be started, the `fleet` fixture FAILS with one line that says why.

    def test_something(fleet):
        result = fleet.ansible("madengine_gpu", "-m", "ping")
        assert result.hosts["mdg-h1"].ok
        with fleet.unreachable("mdg-h2"):      # host_down() ... host_up(), also when the test fails
            ...

Cutting a host off mid-run (these are plain functions too, for use from a thread while a playbook runs):

    host_down(name, how="link")   `ip link set <name>-v down` on the root side: a network partition. New
                                  connections time out (ansible: UNREACHABLE after its `timeout`, -T), and a
                                  running task's connection dies after ~15 s (ServerAliveInterval 5 x 3).
    host_down(name, how="sshd")   kill the host's sshd and every session in its namespace: a crashed host.
                                  New connections are refused at once.
    host_up(name)                 undo either, and wait until the host answers over ssh again.

Both close the host's ansible ControlPersist master (<hosts dir>/cp/<ip>-22-root, ansible.cfg's control_path):
after "link", a new ansible run would otherwise reuse a master connection that hangs; a task running over it
fails at once instead of after the ServerAlive time-out. host_up() runs scripts/setup-hosts.sh (it restarts
only what is not healthy, in about 0.1 s when nothing is) and waits for an ssh login.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SETUP_SCRIPT = REPO_ROOT / "scripts" / "setup-hosts.sh"
TEARDOWN_SCRIPT = REPO_ROOT / "scripts" / "teardown-hosts.sh"
FLEET_SIZE = 3
GROUP = "madengine_gpu"
HOST_PREFIX = "mdg-h"
NET = "10.231.0"
SSH_PORT = 22
SSH_USER = "root"


def hosts_state_dir() -> Path:
    return Path(os.environ.get("MADENGINE_HOSTS_DIR") or "/var/tmp/madengine-hosts")


def venv_bin() -> Path:
    """The repo's .venv/bin when there is one, else the directory of the running interpreter."""
    candidate = REPO_ROOT / ".venv" / "bin"
    return candidate if (candidate / "ansible").exists() else Path(sys.executable).parent


def host_index(name: str) -> int:
    match = re.fullmatch(re.escape(HOST_PREFIX) + r"([1-8])", name)
    if not match:
        raise ValueError(f"not a test host name: {name!r} (expected {HOST_PREFIX}1 .. {HOST_PREFIX}8)")
    return int(match.group(1))


def host_ip(name: str) -> str:
    return f"{NET}.{10 + host_index(name)}"


def host_veth(name: str) -> str:
    """The root-namespace end of the host's veth pair (setup-hosts.sh names it <host>-v)."""
    host_index(name)
    return f"{name}-v"


def _run(cmd: List[str], timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed (rc={proc.returncode}): {proc.stderr.strip()[-300:]}")
    return proc


def ssh_command(name: str, *command: str, hosts_dir: Optional[Path] = None, connect_timeout: int = 3) -> List[str]:
    """An ssh command line to one host with the fleet's key: no ControlMaster, no known_hosts."""
    key = (hosts_dir or hosts_state_dir()) / "keys" / "id_ed25519"
    return [
        "ssh", "-F", "/dev/null", "-i", str(key), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
        "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", f"ConnectTimeout={connect_timeout}",
        "-o", "ControlMaster=no", "-o", "ControlPath=none", f"{SSH_USER}@{host_ip(name)}", *command,
    ]  # fmt: skip


def close_master(name: str, hosts_dir: Optional[Path] = None) -> None:
    """Close ansible's ControlPersist master connection to one host, if there is one."""
    sock = (hosts_dir or hosts_state_dir()) / "cp" / f"{host_ip(name)}-{SSH_PORT}-{SSH_USER}"
    if sock.exists():
        _run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "mdg-host"], timeout=10, check=False)
        sock.unlink(missing_ok=True)


def host_down(name: str, how: str = "link", hosts_dir: Optional[Path] = None) -> None:
    """Make one host unreachable: how="link" cuts its veth (time-outs), how="sshd" kills its sshd (refusals)."""
    if how == "link":
        _run(["ip", "link", "set", host_veth(name), "down"])
    elif how == "sshd":
        # Every process in the namespace: the listener and the sessions of ControlPersist masters.
        pids = _run(["ip", "netns", "pids", name]).stdout.split()
        if pids:
            _run(["kill", "-9", *pids], check=False)
    else:
        raise ValueError(f"how must be 'link' or 'sshd', not {how!r}")
    close_master(name, hosts_dir)


def host_answers(name: str, hosts_dir: Optional[Path] = None) -> bool:
    try:
        proc = _run(ssh_command(name, "hostname", hosts_dir=hosts_dir), timeout=10, check=False)
    except subprocess.TimeoutExpired:
        return False
    return proc.returncode == 0 and proc.stdout.strip() == name


def host_up(name: str, hosts_dir: Optional[Path] = None, timeout: float = 30.0) -> None:
    """Undo host_down() (either way) and wait until the host answers over ssh."""
    _run(["ip", "link", "set", host_veth(name), "up"])
    # After how="sshd" the sshd is gone: setup-hosts.sh restarts every host that is not healthy (with as many hosts
    # as before) and leaves the others alone. (Don't judge by the pid file: the killed sshd can linger as a zombie
    # until PID 1 gets round to reaping it.)
    state_dir = hosts_dir or hosts_state_dir()
    count = len(read_inventory(state_dir / "inventory.ini")) or FLEET_SIZE
    proc = subprocess.run(
        ["bash", str(SETUP_SCRIPT), str(count)],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "MADENGINE_HOSTS_DIR": str(state_dir)},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"setup-hosts.sh could not bring {name} back: {_last_line(proc)}")
    deadline = time.monotonic() + timeout
    while not host_answers(name, state_dir):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} ({host_ip(name)}) did not answer over ssh within {timeout:.0f} s")
        time.sleep(0.2)


def read_inventory(path: Path) -> List[Tuple[str, str]]:
    """(name, ansible_host) of the hosts in the [madengine_gpu] group of setup-hosts.sh's inventory.ini."""
    hosts: List[Tuple[str, str]] = []
    if not path.exists():
        return hosts
    section = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        if section == GROUP:
            name, *pairs = line.split()
            values = dict(pair.split("=", 1) for pair in pairs if "=" in pair)
            hosts.append((name, values.get("ansible_host", name)))
    return hosts


def _last_line(proc: subprocess.CompletedProcess) -> str:
    for text in (proc.stderr, proc.stdout):
        lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
        if lines:
            return lines[-1]
    return f"exit status {proc.returncode}, no output"


# ---------------------------------------------------------------------------------------------------------------
# ad-hoc results
# ---------------------------------------------------------------------------------------------------------------
# The ad-hoc `minimal` stdout callback prints "host | STATUS => {json}" or, for command modules,
# "host | STATUS | rc=N >>" followed by the command's output.
_RESULT_HEAD = re.compile(r"^(?P<host>\S+) \| (?P<status>[A-Z]+!?)(?: \| rc=(?P<rc>-?\d+))? (?P<kind>=>|>>)", re.M)


@dataclass
class HostResult:
    status: str  # SUCCESS, CHANGED, FAILED, UNREACHABLE (without the "!")
    data: Dict[str, Any] = field(default_factory=dict)  # the module's JSON result ("=>" form)
    rc: Optional[int] = None  # command modules ("rc=N >>" form)
    output: str = ""  # command modules: their stdout and stderr

    @property
    def ok(self) -> bool:
        return self.status in ("SUCCESS", "CHANGED") and (self.rc is None or self.rc == 0)


@dataclass
class AdhocResult:
    cmd: List[str]
    returncode: int
    stdout: str
    stderr: str
    hosts: Dict[str, HostResult]

    def describe(self) -> str:
        return f"{' '.join(self.cmd)} -> rc={self.returncode}\n{self.stdout[-3000:]}\n{self.stderr[-2000:]}"


def parse_adhoc(stdout: str) -> Dict[str, HostResult]:
    heads = list(_RESULT_HEAD.finditer(stdout))
    results: Dict[str, HostResult] = {}
    decoder = json.JSONDecoder()
    for n, head in enumerate(heads):
        end = heads[n + 1].start() if n + 1 < len(heads) else len(stdout)
        body = stdout[head.end() : end].strip()
        status = head["status"].rstrip("!")
        if head["kind"] == "=>":
            try:
                data, _ = decoder.raw_decode(body)
            except json.JSONDecodeError:
                data = {"_unparsed": body}
            results[head["host"]] = HostResult(status=status, data=data)
        else:
            results[head["host"]] = HostResult(status=status, rc=int(head["rc"]), output=body)
    return results


# ---------------------------------------------------------------------------------------------------------------
# the fleet
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Host:
    name: str
    ip: str

    @property
    def veth(self) -> str:
        return host_veth(self.name)


@dataclass(frozen=True)
class Fleet:
    hosts: Tuple[Host, ...]
    state_dir: Path
    inventory: Path
    ansible_cfg: Path
    env: Dict[str, str]  # what ansible (or ansible_runner.run(envvars=...)) needs on top of os.environ
    bin_dir: Path  # where ansible, ansible-playbook live
    group: str = GROUP
    setup_script: Path = SETUP_SCRIPT

    @property
    def names(self) -> List[str]:
        return [host.name for host in self.hosts]

    @property
    def ansible_bin(self) -> Path:
        return self.bin_dir / "ansible"

    @property
    def ansible_playbook_bin(self) -> Path:
        return self.bin_dir / "ansible-playbook"

    def subprocess_env(self) -> Dict[str, str]:
        return {**os.environ, **self.env}

    def ansible(self, pattern: str, *args: str, timeout: float = 180) -> AdhocResult:
        """Run the venv's `ansible PATTERN -i inventory ARGS...` and parse its per-host results."""
        cmd = [str(self.ansible_bin), pattern, "-i", str(self.inventory), *args]
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.subprocess_env(),
            cwd=self.state_dir,
            stdin=subprocess.DEVNULL,
        )
        return AdhocResult(cmd, proc.returncode, proc.stdout, proc.stderr, parse_adhoc(proc.stdout))

    def host_down(self, name: str, how: str = "link") -> None:
        host_down(name, how=how, hosts_dir=self.state_dir)

    def host_up(self, name: str, timeout: float = 30.0) -> None:
        host_up(name, hosts_dir=self.state_dir, timeout=timeout)

    @contextmanager
    def unreachable(self, name: str, how: str = "link") -> Iterator[Host]:
        """host_down(name) for the duration of the block; host_up(name) afterwards, also on failure."""
        host = next(h for h in self.hosts if h.name == name)
        self.host_down(name, how=how)
        try:
            yield host
        finally:
            self.host_up(name)


@pytest.fixture(scope="session")
def fleet() -> Fleet:
    """FLEET_SIZE SSH hosts, started (or found healthy and reused) by scripts/setup-hosts.sh."""
    if os.geteuid() != 0:
        pytest.fail("the fleet tests need root (network namespaces); run pytest as root", pytrace=False)
    bin_dir = venv_bin()
    if not (bin_dir / "ansible").exists():
        pytest.fail(f"no ansible in {bin_dir}: pip install -e '.[dev]' into the repo's .venv", pytrace=False)
    state_dir = hosts_state_dir()
    try:
        proc = subprocess.run(
            ["bash", str(SETUP_SCRIPT), str(FLEET_SIZE)],
            capture_output=True,
            text=True,
            timeout=600,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "MADENGINE_HOSTS_DIR": str(state_dir)},
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"scripts/setup-hosts.sh {FLEET_SIZE} did not finish within 600 s", pytrace=False)
    if proc.returncode != 0:
        pytest.fail(f"scripts/setup-hosts.sh {FLEET_SIZE} failed: {_last_line(proc)}", pytrace=False)

    inventory = state_dir / "inventory.ini"
    ansible_cfg = state_dir / "ansible.cfg"
    hosts = tuple(Host(name, ip) for name, ip in read_inventory(inventory))
    if len(hosts) != FLEET_SIZE or not ansible_cfg.exists():
        pytest.fail(f"setup-hosts.sh left {len(hosts)} hosts in {inventory} (expected {FLEET_SIZE})", pytrace=False)
    env = {
        "ANSIBLE_CONFIG": str(ansible_cfg),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        # ansible_runner and ansible find ansible-playbook & co. on PATH: the venv's come first.
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}",
    }
    return Fleet(hosts, state_dir, inventory, ansible_cfg, env, bin_dir)
