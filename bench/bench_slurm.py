#!/usr/bin/env python3
"""SLURM wall-time benchmark: madengine's SLURM target against bare sbatch jobs, in ONE run.

  one_model   `madengine run --manifest-file build_manifest.json -c '{"slurm": ...}'` (model `dummy`)
              vs `sbatch --wrap 'docker run --rm <image> sh run.sh'` of the same image, watched with squeue
              every 0.1 s until it is gone
  five_models the same with five models (one madengine job array) vs five bare jobs submitted together

Needs the cluster of scripts/setup-slurm.sh and the engine of scripts/setup-infra.sh. The images are built once
(untimed). madengine and its baseline alternate; the median of --repeat samples is reported with their ratio.
A benchmark reports; it does not fail CI.

Usage:  .venv/bin/python bench/bench_slurm.py [--repeat N]
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Sequence

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
FIXTURE = REPO_ROOT / "tests" / "fixtures" / "mad"
RESULTS_DIR = BENCH_DIR / "results"
MODELS = ["dummy", "dummy2", "dummy_env", "dummy_launcher", "dummy3/model3"]
MADENGINE = str(Path(sys.executable).parent / "madengine")


def slurm_env() -> Dict[str, str]:
    env = dict(os.environ)
    for line in Path("/var/tmp/madengine-slurm/slurm.env").read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep:
            env[key.strip()] = value.strip()
    return env


def timed(argv: Sequence[str], cwd: Path, env: Dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(list(argv), cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"failed (rc={proc.returncode}): {' '.join(argv)}\n{proc.stderr[-2000:]}")
    return elapsed


def timed_bare_jobs(commands: List[List[str]], cwd: Path, env: Dict[str, str]) -> float:
    """Submit every job, then look every 0.1 s until SLURM no longer lists any: the fastest a script can learn
    that plain jobs ended (`sbatch --wait` itself polls at 2 s, then 10 s)."""
    start = time.perf_counter()
    ids = []
    for argv in commands:
        proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"a baseline submission failed: {proc.stderr[-1000:]}")
        ids.append(proc.stdout.strip())
    while True:
        listed = subprocess.run(
            ["squeue", "-h", "-o", "%i", "-j", ",".join(ids)], env=env, capture_output=True, text=True, check=False
        ).stdout.split()
        if not listed:
            break
        time.sleep(0.1)
    elapsed = time.perf_counter() - start
    for job in ids:
        state = subprocess.run(["scontrol", "show", "job", "-o", job], env=env, capture_output=True, text=True)
        if "JobState=COMPLETED" not in state.stdout:
            raise SystemExit(f"baseline job {job} did not complete: {state.stdout[:300]}")
    return elapsed


def manifest_images(package: Path) -> Dict[str, str]:
    data = json.loads((package / "build_manifest.json").read_text())
    return {model["name"]: key for key, model in data["built_models"].items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    env = slurm_env()
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    context = json.dumps({"slurm": {"madengine_command": MADENGINE, "exclusive": False, "time": "5", "wait_sleep": 2}})
    tmp = Path(tempfile.mkdtemp(prefix="madengine-bench-slurm-"))
    cases = {}
    try:
        for case, models in (("one_model", MODELS[:1]), ("five_models", MODELS)):
            package = tmp / case
            shutil.copytree(FIXTURE, package, symlinks=True)
            timed([MADENGINE, "build", "--tags", ",".join(models)], package, env)
            images = manifest_images(package)
            ours = [MADENGINE, "run", "--manifest-file", "build_manifest.json", "-c", context]
            bare = [
                [
                    "sbatch", "--parsable", "--time=5", "--output=/dev/null", "--wrap",
                    f"docker run --rm --network host -v {package}:/w -w /w {images[m]} sh {script(package, m)}",
                ]
                for m in models
            ]  # fmt: skip
            samples: Dict[str, List[float]] = {"madengine": [], "baseline": []}
            timed(ours, package, env)  # warm-up
            for _ in range(args.repeat):
                samples["madengine"].append(timed(ours, package, env))
                samples["baseline"].append(timed_bare_jobs(bare, package, env))
            med = {k: statistics.median(v) for k, v in samples.items()}
            cases[case] = {"median_s": med, "ratio": med["madengine"] / med["baseline"], "samples": samples}
            print(f"{case:12} madengine {med['madengine']:.2f} s  bare sbatch {med['baseline']:.2f} s  "
                  f"ratio {cases[case]['ratio']:.2f}")  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    out = RESULTS_DIR / f"slurm-{stamp}.json"
    out.write_text(json.dumps({"repeat": args.repeat, "cases": cases}, indent=2) + "\n")
    print(f"results: {out.relative_to(REPO_ROOT)}")
    return 0


def script(package: Path, model: str) -> str:
    cards = json.loads((package / "models.json").read_text())
    for card in cards:
        if card["name"] == model:
            return card["scripts"]
    directory, _, name = model.partition("/")
    return f"scripts/{directory}/run.sh"


if __name__ == "__main__":
    sys.exit(main())
