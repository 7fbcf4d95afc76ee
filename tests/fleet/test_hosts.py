"""The SSH test hosts of scripts/setup-hosts.sh really work for Ansible: ping, facts, docker, ansible-runner, and
a host that goes down and comes back."""

from __future__ import annotations

import re
import subprocess
import textwrap
import time
from pathlib import Path
from typing import TYPE_CHECKING

import ansible_runner
import pytest

if TYPE_CHECKING:  # the fixture's type only; conftest modules are not meant to be imported
    from conftest import Fleet

pytestmark = pytest.mark.integration


def test_setup_again_is_a_no_op(fleet: Fleet) -> None:
    pid_files = [fleet.state_dir / "run" / f"sshd_{name}.pid" for name in fleet.names]
    before = [path.read_text() for path in pid_files]
    proc = subprocess.run(
        ["bash", str(fleet.setup_script), str(len(fleet.hosts))],
        capture_output=True,
        text=True,
        timeout=120,
        env=fleet.subprocess_env() | {"MADENGINE_HOSTS_DIR": str(fleet.state_dir)},
    )
    assert proc.returncode == 0, proc.stderr
    assert "already up" in proc.stdout, proc.stdout
    assert [path.read_text() for path in pid_files] == before  # no sshd was restarted


def test_ping_every_host(fleet: Fleet) -> None:
    result = fleet.ansible(fleet.group, "-m", "ping")
    assert result.returncode == 0, result.describe()
    assert sorted(result.hosts) == sorted(fleet.names), result.describe()
    for name, host in result.hosts.items():
        assert host.status == "SUCCESS" and host.data.get("ping") == "pong", f"{name}: {host}"


def test_fact_gathering_sees_distinct_hosts(fleet: Fleet) -> None:
    result = fleet.ansible(fleet.group, "-m", "setup", "-a", "gather_subset=min")
    assert result.returncode == 0, result.describe()
    hostnames = {}
    for name in fleet.names:
        host = result.hosts[name]
        assert host.status == "SUCCESS", f"{name}: {host}"
        facts = host.data["ansible_facts"]
        hostnames[name] = facts["ansible_hostname"]
        # /etc/hosts is per host: the FQDN resolves locally (no DNS round trip, no 10 s stall).
        assert facts["ansible_fqdn"] == name
    assert hostnames == {name: name for name in fleet.names}
    assert len(set(hostnames.values())) == len(fleet.hosts)


def test_docker_on_every_host_is_the_same_engine(fleet: Fleet) -> None:
    result = fleet.ansible(fleet.group, "-m", "command", "-a", "docker ps")
    assert result.returncode == 0, result.describe()
    for name in fleet.names:
        host = result.hosts[name]
        assert host.ok and "CONTAINER ID" in host.output, f"{name}: {host}"

    # ansible 2.19 templates "{{ }}" in ad-hoc arguments: the Go template has to be a Jinja string literal.
    result = fleet.ansible(fleet.group, "-m", "command", "-a", "docker info --format {{ '{{.ID}}' }}")
    assert result.returncode == 0, result.describe()
    engine_ids = {result.hosts[name].output.strip() for name in fleet.names}
    local = subprocess.run(["docker", "info", "--format", "{{.ID}}"], capture_output=True, text=True, timeout=60)
    assert local.returncode == 0, local.stderr
    assert engine_ids == {local.stdout.strip()}


def test_ansible_runner_playbook(fleet: Fleet, tmp_path: Path) -> None:
    private = tmp_path / "runner"
    (private / "project").mkdir(parents=True)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (private / "project" / "site.yml").write_text(
        textwrap.dedent(
            """\
            - name: Fleet smoke test
              hosts: madengine_gpu
              gather_facts: false
              tasks:
                - name: Ask the host for its name
                  ansible.builtin.command: hostname
                  register: hn
                  changed_when: false
                - name: Each host is itself
                  ansible.builtin.assert:
                    that: hn.stdout == inventory_hostname
                    quiet: true
                - name: Write one file per host (the hosts share this machine's filesystem)
                  ansible.builtin.copy:
                    content: "{{ inventory_hostname }}\\n"
                    dest: "{{ out_dir }}/{{ inventory_hostname }}.txt"
                    mode: "0644"
            """
        ),
        encoding="utf-8",
    )
    runner = ansible_runner.run(
        private_data_dir=str(private),
        playbook="site.yml",
        inventory=str(fleet.inventory),
        envvars=fleet.env,
        extravars={"out_dir": str(out_dir)},
        quiet=True,
        timeout=300,
    )
    output = runner.stdout.read() if runner.stdout else ""
    assert runner.status == "successful", f"rc={runner.rc}\n{output[-3000:]}"
    assert runner.rc == 0
    stats = runner.stats
    assert stats["ok"] == {name: 3 for name in fleet.names}, stats
    assert stats["changed"] == {name: 1 for name in fleet.names}, stats
    assert not stats["failures"] and not stats["dark"], stats
    for name in fleet.names:
        assert (out_dir / f"{name}.txt").read_text() == f"{name}\n"


@pytest.mark.parametrize("how", ["link", "sshd"])
def test_host_down_and_up(fleet: Fleet, how: str) -> None:
    victim = fleet.names[1]
    others = [name for name in fleet.names if name != victim]
    # Open ControlPersist masters first: host_down() must not leave one that hangs or still works.
    assert fleet.ansible(fleet.group, "-m", "ping").returncode == 0

    with fleet.unreachable(victim, how=how):
        result = fleet.ansible(fleet.group, "-m", "ping", "-T", "5")
        assert result.returncode != 0, result.describe()
        assert result.hosts[victim].status == "UNREACHABLE", result.describe()
        for name in others:
            assert result.hosts[name].status == "SUCCESS", result.describe()

    result = fleet.ansible(fleet.group, "-m", "ping")
    assert result.returncode == 0, result.describe()
    assert all(result.hosts[name].status == "SUCCESS" for name in fleet.names), result.describe()


def _sleeping_in(name: str, marker: str) -> bool:
    """Is `sleep <marker>` running in host `name`'s network namespace (the hosts share the process table)?"""
    pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True, timeout=10).stdout.split()
    for pid in pids:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmdline[:2] == [b"sleep", marker.encode()]:
            return True
    return False


def test_host_down_mid_run(fleet: Fleet, tmp_path: Path) -> None:
    victim = fleet.names[-1]
    marker = "7.531"  # an unusual duration, to find this task's process
    playbook = tmp_path / "sleep.yml"
    playbook.write_text(
        f"- hosts: {fleet.group}\n  gather_facts: false\n  tasks:\n    - ansible.builtin.command: sleep {marker}\n",
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [str(fleet.ansible_playbook_bin), "-i", str(fleet.inventory), str(playbook)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=fleet.subprocess_env(),
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 60
        while not _sleeping_in(victim, marker):
            assert proc.poll() is None and time.monotonic() < deadline, "the task never started on " + victim
            time.sleep(0.1)
        with fleet.unreachable(victim):
            output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()

    assert proc.returncode != 0, output
    recap = {
        host: {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", counts)}
        for host, counts in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", output, re.M)
    }
    assert recap[victim]["ok"] == 0 and recap[victim]["unreachable"] == 1, output
    for name in fleet.names:
        if name != victim:
            assert recap[name]["ok"] == 1 and recap[name]["unreachable"] == 0 and recap[name]["failed"] == 0, output
