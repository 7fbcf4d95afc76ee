#!/usr/bin/env python3
"""Single-host wall-time benchmark of the madengine CLI against bare baselines.

Measures, in ONE run on the same machine (so ratios compare like with like):

  cli_version   `madengine --version`                 vs `python -c pass`
  cli_help      `madengine --help`                    vs `python -c pass`
  discover      `madengine discover --tags dummy --json`
                                                      vs `python -c "json.load(models.json)"`
  build_warm    `madengine build --tags dummy` (image already built, unchanged)
                                                      vs `docker build -q` of the same Dockerfile (cached)
  run_only      `madengine run --manifest-file build_manifest.json`
                                                      vs `docker run --rm ... bash run.sh` of the same image

Every command runs in a temporary copy of the fixture MAD package
(tests/fixtures/mad, model `dummy`). Each sample is time.perf_counter() around
one subprocess.run() of an argv list; madengine and its baseline alternate so
that drift of the machine affects both alike. The median of --repeat samples is
reported, after one untimed warm-up call of every command.

A benchmark reports; it does not fail CI. The exit status is non-zero only when
a measured command itself fails (rc != 0): its stderr tail is printed.

Usage:  .venv/bin/python bench/bench_single_host.py [--repeat N] [--keep-tmp]

Python 3.9+, standard library only.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
FIXTURE = REPO_ROOT / "tests" / "fixtures" / "mad"
RESULTS_DIR = BENCH_DIR / "results"

MODEL = "dummy"
DOCKERFILE = "docker/dummy.ubuntu.cpu.Dockerfile"
IMAGE = "ci-dummy_dummy.ubuntu.cpu"  # the tag madengine gives model `dummy` with the CPU Dockerfile
BASELINE_IMAGE = "madengine-bench-baseline-dummy_dummy.ubuntu.cpu"  # same build, a different name

STDERR_TAIL = 3000


class CommandFailed(Exception):
    def __init__(self, argv: Sequence[str], cwd: Optional[Path], proc: subprocess.CompletedProcess) -> None:
        super().__init__(f"command failed (rc={proc.returncode}): {' '.join(argv)}")
        self.argv = list(argv)
        self.cwd = cwd
        self.proc = proc


def _tail(data: bytes, limit: int = STDERR_TAIL) -> str:
    text = data.decode("utf-8", errors="replace")
    return text if len(text) <= limit else "..." + text[-limit:]


def run_once(argv: Sequence[str], cwd: Optional[Path]) -> float:
    """Wall seconds of one run of argv; raises CommandFailed when rc != 0."""
    start = time.perf_counter()
    proc = subprocess.run(list(argv), cwd=str(cwd) if cwd else None, capture_output=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise CommandFailed(argv, cwd, proc)
    return elapsed


def madengine_argv() -> List[str]:
    """The madengine entry point of this interpreter's environment (the console script, else -m)."""
    script = Path(sys.executable).parent / ("madengine.exe" if os.name == "nt" else "madengine")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "madengine"]


class Case:
    def __init__(
        self,
        name: str,
        description: str,
        cmd: Sequence[str],
        baseline: Optional[Sequence[str]],
        baseline_label: str,
        target_kind: Optional[str],  # "abs_s" | "ratio" | None
        target_value: Optional[float],
        cwd: Optional[Path],
        before_each: Optional[Any] = None,
    ) -> None:
        self.name = name
        self.description = description
        self.cmd = list(cmd)
        self.baseline = list(baseline) if baseline else None
        self.baseline_label = baseline_label
        self.target_kind = target_kind
        self.target_value = target_value
        self.cwd = cwd
        self.before_each = before_each
        self.samples: List[float] = []
        self.baseline_samples: List[float] = []

    def prepare(self) -> None:
        if self.before_each:
            self.before_each()

    def measure(self, repeat: int, warmup: int) -> None:
        for _ in range(warmup):
            self.prepare()
            run_once(self.cmd, self.cwd)
            if self.baseline:
                run_once(self.baseline, self.cwd)
        for _ in range(repeat):  # alternate: drift hits both sides alike
            self.prepare()
            self.samples.append(run_once(self.cmd, self.cwd))
            if self.baseline:
                self.baseline_samples.append(run_once(self.baseline, self.cwd))

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def baseline_median(self) -> Optional[float]:
        return statistics.median(self.baseline_samples) if self.baseline_samples else None

    @property
    def ratio(self) -> Optional[float]:
        base = self.baseline_median
        return self.median / base if base else None

    @property
    def target_text(self) -> str:
        if self.target_kind == "abs_s":
            return f"<= {self.target_value:g} s"
        if self.target_kind == "ratio":
            return f"<= {self.target_value:g}x"
        return "-"

    @property
    def status(self) -> str:
        if self.target_kind == "abs_s":
            return "PASS" if self.median <= self.target_value else "MISS"
        if self.target_kind == "ratio":
            ratio = self.ratio
            return "PASS" if ratio is not None and ratio <= self.target_value else "MISS"
        return "info"

    def as_json(self) -> Dict[str, Any]:
        def stats(values: List[float]) -> Dict[str, Any]:
            if not values:
                return {}
            return {
                "median_s": round(statistics.median(values), 4),
                "min_s": round(min(values), 4),
                "max_s": round(max(values), 4),
                "samples_s": [round(v, 4) for v in values],
            }

        return {
            "case": self.name,
            "description": self.description,
            "cwd": str(self.cwd) if self.cwd else None,
            "madengine": {"argv": self.cmd, **stats(self.samples)},
            "baseline": {"label": self.baseline_label, "argv": self.baseline, **stats(self.baseline_samples)}
            if self.baseline
            else None,
            "ratio": round(self.ratio, 3) if self.ratio is not None else None,
            "target": {"kind": self.target_kind, "value": self.target_value} if self.target_kind else None,
            "status": self.status,
        }


def _capture(argv: Sequence[str]) -> str:
    try:
        proc = subprocess.run(list(argv), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return ""
    return proc.stdout.decode("utf-8", errors="replace").strip() if proc.returncode == 0 else ""


def host_info(docker: str, me: List[str]) -> Dict[str, Any]:
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "python_executable": sys.executable,
        "madengine_version": _capture(me + ["--version"]),
        "docker_cli": docker,
        "docker_server_version": _capture([docker, "version", "--format", "{{.Server.Version}}"]),
        "git_commit": _capture(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"]),
    }


def print_table(cases: List[Case]) -> None:
    header = ("case", "madengine median s", "baseline median s", "ratio", "target", "status")
    rows = [header]
    for c in cases:
        base = c.baseline_median
        rows.append(
            (
                c.name,
                f"{c.median:.3f}",
                f"{base:.3f}" if base is not None else "-",
                f"{c.ratio:.2f}x" if c.ratio is not None else "-",
                c.target_text,
                c.status,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    for index, row in enumerate(rows):
        print("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))))
        if index == 0:
            print(line)
    print()
    print("baselines:")
    for c in cases:
        if c.baseline:
            print(f"  {c.name:12} {c.baseline_label}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed samples per command (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls per command first (default 1)")
    parser.add_argument("--keep-tmp", action="store_true", help="keep the temporary package copy")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")

    docker = shutil.which("docker")
    if not docker:
        print("error: no `docker` on PATH (the baselines need the docker CLI)", file=sys.stderr)
        return 2
    if not FIXTURE.is_dir():
        print(f"error: fixture package {FIXTURE} not found", file=sys.stderr)
        return 2

    me = madengine_argv()
    py = sys.executable
    tmp = Path(tempfile.mkdtemp(prefix="madengine-bench-"))
    pkg = tmp / "mad"
    shutil.copytree(str(FIXTURE), str(pkg), symlinks=True)
    baseline_tagged = False
    started = _dt.datetime.now().astimezone()
    cases: List[Case] = []
    try:
        info = host_info(docker, me)

        def remove_perf_csv() -> None:
            for name in ("perf.csv",):
                try:
                    (pkg / name).unlink()
                except FileNotFoundError:
                    pass

        # Untimed set-up: build the image once (and produce build_manifest.json), tag the baseline image.
        print(f"setup: madengine build --tags {MODEL} in {pkg} (untimed)", file=sys.stderr)
        run_once(me + ["build", "--tags", MODEL], pkg)
        run_once([docker, "build", "-q", "-t", BASELINE_IMAGE, "-f", DOCKERFILE, "docker"], pkg)
        baseline_tagged = True

        pass_label = f"{py} -c pass"
        cases = [
            Case(
                "cli_version",
                "CLI start: madengine --version",
                me + ["--version"],
                [py, "-c", "pass"],
                pass_label,
                "abs_s",
                0.25,
                pkg,
            ),
            Case(
                "cli_help",
                "CLI start: madengine --help",
                me + ["--help"],
                [py, "-c", "pass"],
                pass_label,
                "abs_s",
                0.25,
                pkg,
            ),
            Case(
                "discover",
                "madengine discover --tags dummy --json",
                me + ["discover", "--tags", MODEL, "--json"],
                [py, "-c", "import json; json.load(open('models.json'))"],
                f"{py} -c \"import json; json.load(open('models.json'))\"",
                None,
                None,
                pkg,
            ),
            Case(
                "build_warm",
                "madengine build --tags dummy, image already built and unchanged",
                me + ["build", "--tags", MODEL],
                [docker, "build", "-q", "-t", BASELINE_IMAGE, "-f", DOCKERFILE, "docker"],
                f"docker build -q -t {BASELINE_IMAGE} -f {DOCKERFILE} docker (cached layers)",
                "abs_s",
                0.4,
                pkg,
            ),
            Case(
                "run_only",
                "madengine run --manifest-file build_manifest.json (no build)",
                me + ["run", "--manifest-file", "build_manifest.json"],
                [
                    docker,
                    "run",
                    "--rm",
                    "--network",
                    "host",
                    "-v",
                    f"{pkg}:/myworkspace",
                    "-w",
                    f"/myworkspace/scripts/{MODEL}",
                    IMAGE,
                    "bash",
                    "run.sh",
                ],
                "docker run --rm --network host -v <pkg>:/myworkspace "
                f"-w /myworkspace/scripts/{MODEL} {IMAGE} bash run.sh",
                "ratio",
                2.5,
                pkg,
                before_each=remove_perf_csv,
            ),
        ]
        for case in cases:
            print(f"measuring {case.name} ({args.warmup} warm-up + {args.repeat} samples)...", file=sys.stderr)
            case.measure(args.repeat, args.warmup)
        remove_perf_csv()
    except CommandFailed as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        print(f"  cwd: {exc.cwd}", file=sys.stderr)
        out = _tail(exc.proc.stdout, 1000)
        if out.strip():
            print(f"--- stdout tail ---\n{out}", file=sys.stderr)
        print(f"--- stderr tail ---\n{_tail(exc.proc.stderr)}", file=sys.stderr)
        return exc.proc.returncode if 0 < exc.proc.returncode < 256 else 1
    finally:
        if baseline_tagged:
            subprocess.run(
                [docker, "rmi", BASELINE_IMAGE], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )  # untags only: the layers are the base image's
        if args.keep_tmp:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(str(tmp), ignore_errors=True)

    print()
    print(
        f"madengine single-host benchmark  {started.isoformat(timespec='seconds')}  "
        f"host={info['hostname']} cpus={info['cpus']} python={info['python']} "
        f"docker={info['docker_server_version'] or '?'}  repeat={args.repeat}"
    )
    print()
    print_table(cases)

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out_path = RESULTS_DIR / f"single_host-{started.strftime('%Y%m%dT%H%M%S')}.json"
    payload = {
        "benchmark": "single_host",
        "started": started.isoformat(timespec="seconds"),
        "repeat": args.repeat,
        "warmup": args.warmup,
        "host": info,
        "cases": [c.as_json() for c in cases],
    }
    out_path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"\nresults: {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
