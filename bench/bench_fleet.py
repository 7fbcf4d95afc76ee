#!/usr/bin/env python3
"""Fleet wall-time benchmark: playbooks/benchmark.yml on 1, 3 and 6 SSH hosts.

The same models run on every host; the wall time of the whole playbook
(build -> distribute -> run -> aggregate) on N hosts is reported as a ratio to
the 1-host time. Target (from the issue): 6 hosts <= 1.5x the 1-host time.

Set-up: `scripts/setup-hosts.sh <max hosts>` once (network-namespace hosts
mdg-h1..N with their own sshd, sharing this machine's CPUs, filesystem and
Docker engine), then one untimed warm-up run on all hosts (images built and
cached). Every timed run is one `ansible-playbook playbooks/benchmark.yml`
with the hosts' inventory plus a controller inventory (localhost in
madengine_build, connection local) and `--limit localhost:mdg-h1:...`, in a
fresh temporary copy of the fixture MAD package (tests/fixtures/mad) with its
own output and work directories. ansible's ControlPersist masters to the hosts
are closed before every run, so each run opens its SSH connections like a
fresh invocation. The host counts alternate within each repetition (and the
order rotates between repetitions) so that drift of the machine hits all alike.
The median of --repeat samples is reported, with the CPU used during each run:
the whole machine (/proc/stat), ansible-playbook's process tree (RUSAGE_CHILDREN)
and the hosts' ssh sessions (cutime+cstime of each host's sshd).

--profile records per-task, per-host wall times through a small callback plugin
(written to the temporary directory; ansible.posix's profile_tasks is not needed)
and prints the tasks that grow most with the host count.

At the end the hosts are set back to the count found before (3, the fleet
tests' size, when there was none).

A benchmark reports; it does not fail CI. The exit status is non-zero only when
a playbook fails (or leaves a perf.csv without a SUCCESS row per host and model):
the tail of its output is printed.

Usage:  .venv/bin/python bench/bench_fleet.py [--repeat 3] [--models dummy] [--profile]
            [--hosts 1,3,6] [--forks N] [--extra-vars JSON] [--keep-tmp] [--restore-hosts N]
(ANSIBLE_COLLECTIONS_PATH in the environment overrides ansible.cfg's, to time a changed collection.)
Needs root (network namespaces), Docker, the repo's .venv with ansible.
Python 3.9+, standard library only.
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
FIXTURE = REPO_ROOT / "tests" / "fixtures" / "mad"
PLAYBOOK = REPO_ROOT / "playbooks" / "benchmark.yml"
SETUP_HOSTS = REPO_ROOT / "scripts" / "setup-hosts.sh"
RESULTS_DIR = BENCH_DIR / "results"

HOST_PREFIX = "mdg-h"
NET = "10.231.0"
GROUP = "madengine_gpu"
FLEET_TEST_SIZE = 3  # tests/fleet/conftest.py FLEET_SIZE
DEFAULT_COUNTS = (1, 3, 6)
TARGETS = {6: 1.5}  # hosts -> max ratio to the 1-host time
OUTPUT_TAIL = 4000

PROFILE_CALLBACK = "madengine_bench_profile"
PROFILE_CALLBACK_SOURCE = '''\
"""Per-task, per-host wall times for bench/bench_fleet.py (JSON to $MADENGINE_BENCH_PROFILE)."""
from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: madengine_bench_profile
type: aggregate
short_description: per-task, per-host wall times for bench/bench_fleet.py
description: Writes the start/end of every task and of every host's part of it to $MADENGINE_BENCH_PROFILE.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "madengine_bench_profile"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._t0 = time.perf_counter()
        self._play = ""
        self._tasks = []
        self._current = None

    def _now(self):
        return round(time.perf_counter() - self._t0, 4)

    def _close(self):
        if self._current is not None and "end" not in self._current:
            self._current["end"] = self._now()

    def _start(self, task):
        self._close()
        self._current = {"play": self._play, "task": task.get_name(), "start": self._now(), "hosts": {}}
        self._tasks.append(self._current)

    def v2_playbook_on_play_start(self, play):
        self._close()
        self._current = None
        self._play = play.get_name()

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._start(task)

    def v2_playbook_on_handler_task_start(self, task):
        self._start(task)

    def v2_runner_on_start(self, host, task):
        if self._current is not None:
            self._current["hosts"].setdefault(host.get_name(), {})["start"] = self._now()

    def _done(self, result, status):
        if self._current is not None:
            entry = self._current["hosts"].setdefault(result._host.get_name(), {})
            entry["end"] = self._now()
            entry["status"] = status

    def v2_runner_on_ok(self, result):
        self._done(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._done(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._done(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._done(result, "unreachable")

    def v2_playbook_on_stats(self, stats):
        self._close()
        path = os.environ.get("MADENGINE_BENCH_PROFILE")
        if path:
            with open(path, "w") as handle:
                json.dump({"total_s": self._now(), "tasks": self._tasks}, handle)
'''


class PlaybookFailed(Exception):
    def __init__(self, message: str, argv: Sequence[str], cwd: Path, rc: int, output: str) -> None:
        super().__init__(message)
        self.argv = list(argv)
        self.cwd = cwd
        self.rc = rc
        self.output = output


def _tail(text: str, limit: int = OUTPUT_TAIL) -> str:
    return text if len(text) <= limit else "..." + text[-limit:]


def _capture(argv: Sequence[str], env: Optional[Dict[str, str]] = None) -> str:
    try:
        proc = subprocess.run(
            list(argv), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=30, env=env,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return ""
    return proc.stdout.decode("utf-8", errors="replace").strip() if proc.returncode == 0 else ""


def hosts_state_dir() -> Path:
    return Path(os.environ.get("MADENGINE_HOSTS_DIR") or "/var/tmp/madengine-hosts")


def venv_bin() -> Path:
    """The repo's .venv/bin when it has ansible-playbook, else the directory of this interpreter."""
    candidate = REPO_ROOT / ".venv" / "bin"
    return candidate if (candidate / "ansible-playbook").exists() else Path(sys.executable).parent


def host_names(count: int) -> List[str]:
    return [f"{HOST_PREFIX}{i}" for i in range(1, count + 1)]


def inventory_hosts(path: Path) -> List[str]:
    """Host names in the [madengine_gpu] group of setup-hosts.sh's inventory.ini (empty when there is none)."""
    if not path.exists():
        return []
    names: List[str] = []
    section = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
        elif section == GROUP:
            names.append(line.split()[0])
    return names


def setup_hosts(count: int, state_dir: Path) -> str:
    proc = subprocess.run(
        ["bash", str(SETUP_HOSTS), str(count)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "MADENGINE_HOSTS_DIR": str(state_dir)},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"scripts/setup-hosts.sh {count} failed (rc={proc.returncode}):\n{_tail(proc.stdout)}")
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    return lines[0] if lines else "ok"


def close_masters(names: Sequence[str], state_dir: Path) -> None:
    """Close ansible's ControlPersist masters to these hosts (ansible.cfg: control_path = <cp>/<ip>-<port>-<user>)."""
    for name in names:
        sock = state_dir / "cp" / f"{NET}.{10 + int(name[len(HOST_PREFIX) :])}-22-root"
        if sock.exists():
            subprocess.run(
                ["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "mdg-host"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, timeout=10,
                check=False,
            )  # fmt: skip
            try:
                sock.unlink()
            except FileNotFoundError:
                pass


def sshd_children_cpu(names: Sequence[str], state_dir: Path, settle: bool = False) -> Optional[float]:
    """CPU seconds of the finished ssh sessions of these hosts' sshds (cutime + cstime of each listener).

    A session (the sshd child, its shell, the modules' Python) counts once it has ended and been reaped: call this
    after close_masters(). Daemonized processes (the async_wrapper job of `Run the models`) are not included.
    With settle, wait (up to 2 s) until the sum stops changing.
    """
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def read() -> Optional[int]:
        total = 0
        for name in names:
            try:
                pid = int((state_dir / "run" / f"sshd_{name}.pid").read_text().strip())
                with open(f"/proc/{pid}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except (OSError, ValueError, IndexError):
                return None
            total += int(fields[13]) + int(fields[14])  # cutime, cstime (fields 16, 17 of proc(5))
        return total

    value = read()
    if settle and value is not None:
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            time.sleep(0.2)
            again = read()
            if again is None or again == value:
                break
            value = again
    return value / hz if value is not None else None


def cpu_ticks() -> Optional[Tuple[int, int]]:
    """(busy, total) jiffies of all CPUs from /proc/stat; None where there is no /proc/stat."""
    try:
        with open("/proc/stat") as handle:
            fields = [int(v) for v in handle.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal (guest is inside user)
    return total - idle, total


def controller_inventory(directory: Path, python: Path) -> Path:
    """The build host and the controller: this machine (as in tests/fleet/test_benchmark_playbook.py)."""
    path = directory / "controller.yml"
    path.write_text(
        json.dumps(
            {
                "all": {
                    "hosts": {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": str(python)}},
                    "children": {"madengine_build": {"hosts": {"localhost": {}}}},
                }
            }
        )
    )
    return path


class Fleet:
    """Everything one playbook run needs; run() does one (timed) sample."""

    def __init__(
        self,
        tmp: Path,
        state_dir: Path,
        bin_dir: Path,
        models: List[str],
        forks: Optional[int],
        profile: bool,
        timeout: float,
        extra_vars: Optional[Dict[str, Any]] = None,
    ) -> None:
        self.tmp = tmp
        self.state_dir = state_dir
        self.bin_dir = bin_dir
        self.models = models
        self.forks = forks
        self.profile = profile
        self.timeout = timeout
        self.extra_vars = dict(extra_vars or {})
        self.controller = controller_inventory(tmp, bin_dir / "python")
        self.callback_dir = tmp / "callback_plugins"
        if profile:
            self.callback_dir.mkdir()
            (self.callback_dir / f"{PROFILE_CALLBACK}.py").write_text(PROFILE_CALLBACK_SOURCE)
        self.counter = 0

    def env(self, package: Path, profile_path: Optional[Path]) -> Dict[str, str]:
        env = {
            **os.environ,
            "ANSIBLE_CONFIG": str(self.state_dir / "ansible.cfg"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "PATH": f"{self.bin_dir}{os.pathsep}{os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}",
            "PWD": str(package),
        }
        if self.forks:
            env["ANSIBLE_FORKS"] = str(self.forks)
        if profile_path is not None:
            enabled = [c for c in env.get("ANSIBLE_CALLBACKS_ENABLED", "").split(",") if c.strip()]
            env["ANSIBLE_CALLBACKS_ENABLED"] = ",".join(enabled + [PROFILE_CALLBACK])
            paths = [p for p in env.get("ANSIBLE_CALLBACK_PLUGINS", "").split(os.pathsep) if p]
            env["ANSIBLE_CALLBACK_PLUGINS"] = os.pathsep.join([str(self.callback_dir)] + paths)
            env["MADENGINE_BENCH_PROFILE"] = str(profile_path)
        return env

    def argv(self, hosts: List[str], extravars: Dict[str, Any]) -> List[str]:
        return [
            str(self.bin_dir / "ansible-playbook"),
            str(PLAYBOOK),
            "-i",
            str(self.state_dir / "inventory.ini"),
            "-i",
            str(self.controller),
            "-e",
            json.dumps(extravars),
            "--limit",
            ":".join(["localhost"] + hosts),
        ]

    def run(self, count: int, label: str) -> Dict[str, Any]:
        """One playbook run on mdg-h1..count in fresh copies; returns its sample (raises PlaybookFailed)."""
        self.counter += 1
        hosts = host_names(count)
        run_dir = self.tmp / f"{self.counter:03d}-{label}-{count}h"
        package = run_dir / "mad"
        out = run_dir / "out"
        shutil.copytree(str(FIXTURE), str(package), symlinks=True)
        out.mkdir()
        extravars = {
            "madengine_tags": self.models,
            "madengine_package_dir": str(package),
            "madengine_output_dir": str(out),
            "madengine_work_dir": str(run_dir / "work" / "{{ inventory_hostname }}"),
            # The aggregate role's default is every host of the group, also those outside --limit (they would be
            # reported as HOST_UNREACHABLE rows): name the hosts of this run, as an N-host inventory would.
            "madengine_aggregate_hosts": hosts,
            **self.extra_vars,
        }
        profile_path = run_dir / "profile.json" if self.profile else None
        argv = self.argv(hosts, extravars)
        close_masters(host_names(8), self.state_dir)
        sshd_before = sshd_children_cpu(hosts, self.state_dir)
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu_before = cpu_ticks()
        start = time.perf_counter()
        try:
            proc = subprocess.run(
                argv,
                cwd=str(package),
                env=self.env(package, profile_path),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                stdin=subprocess.DEVNULL,
                timeout=self.timeout,
            )
        except subprocess.TimeoutExpired as exc:
            output = exc.stdout if isinstance(exc.stdout, str) else (exc.stdout or b"").decode("utf-8", "replace")
            raise PlaybookFailed(f"playbook timed out after {self.timeout:.0f} s", argv, package, -1, output) from None
        wall = time.perf_counter() - start
        cpu_after = cpu_ticks()
        children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        close_masters(hosts, self.state_dir)  # the hosts' ssh sessions end: their CPU reaches the sshd's cutime
        sshd_after = sshd_children_cpu(hosts, self.state_dir, settle=True)
        if proc.returncode != 0:
            raise PlaybookFailed(f"playbook failed (rc={proc.returncode})", argv, package, proc.returncode, proc.stdout)
        problem = check_perf(out / "perf.csv", hosts)
        if problem:
            raise PlaybookFailed(problem, argv, package, proc.returncode, proc.stdout)
        sample: Dict[str, Any] = {"hosts": count, "label": label, "wall_s": round(wall, 4)}
        # CPU of ansible-playbook and its descendants (workers, ssh clients, localhost's modules); the hosts'
        # side (sshd, the modules' Python on the hosts) and dockerd are not descendants: they are in cpu_busy_s.
        sample["controller_cpu_s"] = round(
            (children_after.ru_utime - children_before.ru_utime) + (children_after.ru_stime - children_before.ru_stime),
            2,
        )
        if sshd_before is not None and sshd_after is not None:
            sample["hosts_cpu_s"] = round(sshd_after - sshd_before, 2)
        if load is not None:
            sample["loadavg_1m_before"] = round(load, 2)
        if cpu_before and cpu_after and cpu_after[1] > cpu_before[1]:
            busy = cpu_after[0] - cpu_before[0]
            total = cpu_after[1] - cpu_before[1]
            hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
            sample["cpu_busy_s"] = round(busy / hz, 2)
            sample["cpu_util"] = round(busy / total, 3)  # share of all CPUs busy during the run
        if profile_path is not None and profile_path.exists():
            sample["profile"] = json.loads(profile_path.read_text())
        return sample


def check_perf(path: Path, hosts: List[str]) -> str:
    """'' when perf.csv has only SUCCESS rows, the same models on every host of the run; else what is wrong."""
    if not path.exists():
        return f"no {path}"
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    per_host: Dict[str, List[str]] = {}
    for row in rows:
        per_host.setdefault(row.get("machine_name", ""), []).append(row.get("model", ""))
    bad = [f"{r.get('machine_name')}/{r.get('model')}={r.get('status')}" for r in rows if r.get("status") != "SUCCESS"]
    if sorted(per_host) != sorted(hosts):
        return f"perf.csv has rows for {sorted(per_host)}, expected {hosts}"
    if bad:
        return f"perf.csv has rows that are not SUCCESS: {', '.join(bad[:10])}"
    if len({tuple(sorted(models)) for models in per_host.values()}) != 1:
        return f"the hosts ran different models: {per_host}"
    return ""


# ---------------------------------------------------------------------------------------------------------------
# reporting
# ---------------------------------------------------------------------------------------------------------------
def summarize(samples: List[Dict[str, Any]], counts: Sequence[int]) -> List[Dict[str, Any]]:
    rows: List[Dict[str, Any]] = []
    walls = {n: [s["wall_s"] for s in samples if s["hosts"] == n] for n in counts}
    base = statistics.median(walls[counts[0]]) if walls[counts[0]] else None
    for n in counts:
        values = walls[n]
        median = statistics.median(values)
        utils = [s["cpu_util"] for s in samples if s["hosts"] == n and "cpu_util" in s]
        busy = [s["cpu_busy_s"] for s in samples if s["hosts"] == n and "cpu_busy_s" in s]
        ctl = [s["controller_cpu_s"] for s in samples if s["hosts"] == n and "controller_cpu_s" in s]
        remote = [s["hosts_cpu_s"] for s in samples if s["hosts"] == n and "hosts_cpu_s" in s]
        ratio = median / base if base else None
        target = TARGETS.get(n)
        if n == counts[0]:
            status = "ref"
        elif target is None:
            status = "info"
        else:
            status = "PASS" if ratio is not None and ratio <= target else "MISS"
        rows.append(
            {
                "hosts": n,
                "median_s": round(median, 3),
                "min_s": round(min(values), 3),
                "max_s": round(max(values), 3),
                "samples_s": values,
                "ratio": round(ratio, 3) if ratio is not None else None,
                "target_ratio": target,
                "status": status,
                "cpu_util_median": round(statistics.median(utils), 3) if utils else None,
                "cpu_busy_s_median": round(statistics.median(busy), 2) if busy else None,
                "controller_cpu_s_median": round(statistics.median(ctl), 2) if ctl else None,
                "hosts_cpu_s_median": round(statistics.median(remote), 2) if remote else None,
            }
        )
    return rows


def print_rows(header: Sequence[str], rows: List[Sequence[str]], left: int = 1) -> None:
    table = [list(header)] + [list(r) for r in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for index, row in enumerate(table):
        cells = [c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
        print("  ".join(cells).rstrip())
        if index == 0:
            print("  ".join("-" * w for w in widths))


def print_table(summary: List[Dict[str, Any]], base_hosts: int) -> None:
    rows = []
    for r in summary:
        rows.append(
            [
                str(r["hosts"]),
                f"{r['median_s']:.2f}",
                f"{r['min_s']:.2f}-{r['max_s']:.2f}",
                f"{r['ratio']:.2f}x" if r["ratio"] is not None else "-",
                f"<= {r['target_ratio']:g}x" if r["target_ratio"] else "-",
                r["status"],
                f"{r['cpu_util_median'] * 100:.0f} %" if r["cpu_util_median"] is not None else "-",
                f"{r['cpu_busy_s_median']:.1f}" if r["cpu_busy_s_median"] is not None else "-",
                f"{r['controller_cpu_s_median']:.1f}" if r["controller_cpu_s_median"] is not None else "-",
                f"{r['hosts_cpu_s_median']:.1f}" if r["hosts_cpu_s_median"] is not None else "-",
            ]
        )
    print_rows(
        (
            "hosts", "median s", "min-max s", f"ratio to {base_hosts} host", "target", "status",
            "cpu busy", "cpu s all", "cpu s ansible", "cpu s hosts",
        ),
        rows,
    )  # fmt: skip
    print()
    print("cpu busy, cpu s all: all CPUs of this machine during the run (/proc/stat; the hosts share them,")
    print("                     and any other load on the machine counts too)")
    print("cpu s ansible:       ansible-playbook and its child processes (the controller side)")
    print("cpu s hosts:         the hosts' ssh sessions (sshd, shell, the modules' Python; not the async job)")


def profile_summary(samples: List[Dict[str, Any]], counts: Sequence[int]) -> List[Dict[str, Any]]:
    """Per task (in playbook order): the median wall of the task per host count and its growth."""
    order: List[Tuple[str, str]] = []
    per: Dict[Tuple[str, str], Dict[int, List[float]]] = {}
    per_host_max: Dict[Tuple[str, str], Dict[int, List[float]]] = {}
    totals: Dict[int, List[float]] = {}
    for sample in samples:
        prof = sample.get("profile")
        if not prof:
            continue
        n = sample["hosts"]
        totals.setdefault(n, []).append(prof.get("total_s", 0.0))
        seen: Dict[Tuple[str, str], float] = {}
        seen_max: Dict[Tuple[str, str], float] = {}
        for task in prof.get("tasks", []):
            key = (task.get("play", ""), task.get("task", ""))
            if key not in per:
                order.append(key)
                per[key] = {}
                per_host_max[key] = {}
            seen[key] = seen.get(key, 0.0) + task.get("end", task["start"]) - task["start"]
            spans = [h["end"] - h["start"] for h in task.get("hosts", {}).values() if "end" in h and "start" in h]
            seen_max[key] = seen_max.get(key, 0.0) + (max(spans) if spans else 0.0)
        for key, value in seen.items():
            per[key].setdefault(n, []).append(value)
            per_host_max[key].setdefault(n, []).append(seen_max[key])
    result = []
    for key in order:
        entry: Dict[str, Any] = {"play": key[0], "task": key[1], "wall_s": {}, "slowest_host_s": {}}
        for n in counts:
            if per[key].get(n):
                entry["wall_s"][str(n)] = round(statistics.median(per[key][n]), 3)
                entry["slowest_host_s"][str(n)] = round(statistics.median(per_host_max[key][n]), 3)
        result.append(entry)
    return result


def print_profile(tasks: List[Dict[str, Any]], counts: Sequence[int], top: int) -> None:
    lo, hi = str(counts[0]), str(counts[-1])
    ranked = sorted(tasks, key=lambda t: t["wall_s"].get(hi, 0.0) - t["wall_s"].get(lo, 0.0), reverse=True)
    rows = []
    for t in ranked[:top]:
        w = t["wall_s"]
        first, last = w.get(lo), w.get(hi)
        rows.append(
            [t["task"][:78]]
            + [f"{w[str(n)]:.2f}" if str(n) in w else "-" for n in counts]
            + [
                f"{last - first:+.2f}" if first is not None and last is not None else "-",
                f"{last / first:.1f}x" if first and last is not None else "-",
            ]
        )
    print_rows(
        ["task (median wall s, first task start to last host done)"]
        + [f"{n} host{'s' if n > 1 else ''}" for n in counts]
        + [f"{hi}-{lo}", "growth"],
        rows,
    )


def host_info(bin_dir: Path) -> Dict[str, Any]:
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "ansible_core": _capture([str(bin_dir / "python"), "-c", "import ansible; print(ansible.__version__)"]),
        "docker_server_version": _capture(["docker", "version", "--format", "{{.Server.Version}}"]),
        "git_commit": _capture(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"]),
        "loadavg_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def ansible_forks(state_dir: Path) -> Optional[int]:
    try:
        match = re.search(r"^\s*forks\s*=\s*(\d+)", (state_dir / "ansible.cfg").read_text(), re.M)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per host count (default 3)")
    parser.add_argument("--models", default="dummy", help="comma-separated madengine tags (default dummy)")
    parser.add_argument(
        "--hosts", default=",".join(map(str, DEFAULT_COUNTS)), help="host counts, first = reference (default 1,3,6)"
    )
    parser.add_argument("--forks", type=int, default=None, help="ANSIBLE_FORKS (default: ansible.cfg's forks)")
    parser.add_argument(
        "--extra-vars",
        default="",
        metavar="JSON",
        help="more extra vars for every run, a JSON object (e.g. '{\"madengine_install_requirements\": false}')",
    )
    parser.add_argument("--profile", action="store_true", help="record and print per-task wall times")
    parser.add_argument("--top", type=int, default=12, help="tasks shown by --profile (default 12)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per playbook run (default 900)")
    parser.add_argument("--keep-tmp", action="store_true", help="keep the temporary packages, outputs, work dirs")
    parser.add_argument(
        "--restore-hosts", type=int, default=None,
        help="host count to leave behind (default: the count before, else 3; 0 = leave as is)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    try:
        counts = [int(v) for v in args.hosts.split(",") if v.strip()]
    except ValueError:
        parser.error("--hosts must be comma-separated numbers")
    if not counts or any(not 1 <= n <= 8 for n in counts) or len(set(counts)) != len(counts):
        parser.error("--hosts: distinct counts from 1 to 8")
    try:
        extra_vars = json.loads(args.extra_vars) if args.extra_vars.strip() else {}
    except json.JSONDecodeError as exc:
        parser.error(f"--extra-vars: not JSON ({exc})")
    if not isinstance(extra_vars, dict):
        parser.error("--extra-vars must be a JSON object")
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if not models:
        parser.error("--models must name at least one tag")

    if os.geteuid() != 0:
        print("error: run as root (scripts/setup-hosts.sh creates network namespaces)", file=sys.stderr)
        return 2
    bin_dir = venv_bin()
    if not (bin_dir / "ansible-playbook").exists():
        print(f"error: no ansible-playbook in {bin_dir} (pip install -e '.[dev]' into .venv)", file=sys.stderr)
        return 2
    if not shutil.which("docker"):
        print("error: no `docker` on PATH", file=sys.stderr)
        return 2

    state_dir = hosts_state_dir()
    before = len(inventory_hosts(state_dir / "inventory.ini"))
    restore = args.restore_hosts if args.restore_hosts is not None else (before or FLEET_TEST_SIZE)
    fleet_size = max(counts)
    started = _dt.datetime.now().astimezone()
    tmp = Path(tempfile.mkdtemp(prefix="madengine-bench-fleet-"))
    samples: List[Dict[str, Any]] = []
    warmup: Dict[str, Any] = {}
    info: Dict[str, Any] = {}
    try:
        print(f"setup: scripts/setup-hosts.sh {fleet_size}: {setup_hosts(fleet_size, state_dir)}", file=sys.stderr)
        info = host_info(bin_dir)
        info["forks"] = args.forks or ansible_forks(state_dir)
        fleet = Fleet(tmp, state_dir, bin_dir, models, args.forks, args.profile, args.timeout, extra_vars)
        print(f"warm-up: {fleet_size} hosts, models {','.join(models)} (untimed)", file=sys.stderr)
        warmup = fleet.run(fleet_size, "warmup")
        print(f"  {warmup['wall_s']:.1f} s", file=sys.stderr)
        for rep in range(args.repeat):
            shift = rep % len(counts)  # rotate: 1,3,6 / 3,6,1 / 6,1,3 ...
            for n in counts[shift:] + counts[:shift]:
                sample = fleet.run(n, f"r{rep + 1}")
                samples.append(sample)
                util = f", cpu busy {sample['cpu_util'] * 100:.0f} %" if "cpu_util" in sample else ""
                print(f"  repeat {rep + 1}/{args.repeat}: {n} host(s) {sample['wall_s']:.2f} s{util}", file=sys.stderr)
    except PlaybookFailed as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        print(f"  cwd: {exc.cwd}", file=sys.stderr)
        print(f"  argv: {' '.join(exc.argv)}", file=sys.stderr)
        print(f"--- playbook output (tail) ---\n{_tail(exc.output)}", file=sys.stderr)
        return exc.rc if 0 < exc.rc < 256 else 1
    except RuntimeError as exc:  # setup-hosts.sh
        print(f"\nerror: {exc}", file=sys.stderr)
        return 1
    finally:
        if restore and restore != fleet_size:
            try:
                print(f"restore: scripts/setup-hosts.sh {restore}: {setup_hosts(restore, state_dir)}", file=sys.stderr)
            except (RuntimeError, subprocess.SubprocessError) as exc:
                print(f"warning: could not set the hosts back to {restore}: {exc}", file=sys.stderr)
        if args.keep_tmp:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(str(tmp), ignore_errors=True)

    summary = summarize(samples, counts)
    print()
    print(
        f"madengine fleet benchmark  {started.isoformat(timespec='seconds')}  host={info['hostname']} "
        f"cpus={info['cpus']} ansible-core={info['ansible_core'] or '?'} forks={info['forks']} "
        f"models={','.join(models)} repeat={args.repeat}"
        + (f" extra-vars={json.dumps(extra_vars)}" if extra_vars else "")
    )
    print()
    print_table(summary, counts[0])
    tasks: List[Dict[str, Any]] = []
    if args.profile:
        tasks = profile_summary(samples, counts)
        print()
        print_profile(tasks, counts, args.top)

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out_path = RESULTS_DIR / f"fleet-{started.strftime('%Y%m%dT%H%M%S')}.json"
    payload = {
        "benchmark": "fleet",
        "started": started.isoformat(timespec="seconds"),
        "repeat": args.repeat,
        "models": models,
        "host_counts": counts,
        "extra_vars": extra_vars,
        "forks_override": args.forks,
        "collections_path_env": os.environ.get("ANSIBLE_COLLECTIONS_PATH"),
        "targets": {str(k): v for k, v in TARGETS.items()},
        "host": info,
        "playbook": str(PLAYBOOK.relative_to(REPO_ROOT)),
        "warmup": {k: v for k, v in warmup.items() if k != "profile"},
        "summary": summary,
        "samples": [{k: v for k, v in s.items() if k != "profile"} for s in samples],
        "profile": tasks or None,
    }
    out_path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"\nresults: {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
