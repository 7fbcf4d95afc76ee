#!/usr/bin/env python3
"""Kubernetes wall-time benchmark: madengine's Kubernetes target against bare `kubectl` Jobs, in ONE run.

  one_model   `madengine run --manifest-file build_manifest.json -c '{"k8s": ...}'` (model `dummy`)
              vs `kubectl create job --image <the same image> -- sh -c <the model's script>` followed by
              `kubectl wait --for=condition=complete`, then `kubectl logs` (what a script needs to get a number)
  five_models the same with five models (five madengine Jobs) vs five bare Jobs created, then waited for together

Needs the cluster of scripts/setup-k8s.sh and the registry of scripts/setup-infra.sh. The images are built and
pushed once (untimed) and pulled once by an untimed warm-up of each side (imagePullPolicy IfNotPresent on both).
madengine and its baseline alternate; the median of --repeat samples is reported with their ratio. A benchmark
reports; it does not fail CI.

Usage:  .venv/bin/python bench/bench_k8s.py [--repeat N]
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
import uuid
from pathlib import Path
from typing import Dict, List, Sequence

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
FIXTURE = REPO_ROOT / "tests" / "fixtures" / "mad"
RESULTS_DIR = BENCH_DIR / "results"
MODELS = ["dummy", "dummy2", "dummy_env", "dummy_launcher", "dummy_args"]
MADENGINE = str(Path(sys.executable).parent / "madengine")
KUBECONFIG = Path(os.environ.get("MADENGINE_K8S_DIR", "/var/tmp/madengine-k8s")) / "kubeconfig"
INFRA = Path(os.environ.get("MADENGINE_INFRA_DIR", "/var/tmp/madengine-infra"))


def run(argv: Sequence[str], cwd: Path, env: Dict[str, str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(argv), cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"failed (rc={proc.returncode}): {' '.join(argv)}\n{proc.stderr[-2000:]}")
    return proc


def timed(argv: Sequence[str], cwd: Path, env: Dict[str, str]) -> float:
    start = time.perf_counter()
    run(argv, cwd, env)
    return time.perf_counter() - start


def timed_bare_jobs(images: List[str], scripts: List[str], cwd: Path, env: Dict[str, str], ns: str) -> float:
    """kubectl create job for each model, kubectl wait for all of them, kubectl logs of each, delete them."""
    kubectl = ["kubectl", "--kubeconfig", str(KUBECONFIG), "-n", ns]
    names = [f"bare-{uuid.uuid4().hex[:8]}" for _ in images]
    start = time.perf_counter()
    for name, image, script in zip(names, images, scripts):
        run(kubectl + ["create", "job", name, f"--image={image}", "--", "sh", "-c", script], cwd, env)
    run(kubectl + ["wait", "--for=condition=complete", "--timeout=300s"] + [f"job/{n}" for n in names], cwd, env)
    for name in names:
        if "performance:" not in run(kubectl + ["logs", f"job/{name}"], cwd, env).stdout:
            raise SystemExit(f"baseline job {name} printed no performance line")
    elapsed = time.perf_counter() - start
    run(kubectl + ["delete", "job", "--wait=false"] + names, cwd, env)
    return elapsed


def registry() -> Dict[str, str]:
    values = {}
    for line in (INFRA / "registry.env").read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    return {
        "registry": values["MADENGINE_TEST_REGISTRY"],
        "username": values["MADENGINE_TEST_REGISTRY_USER"],
        "password": Path(values["MADENGINE_TEST_REGISTRY_PASSWORD_FILE"]).read_text().strip(),
    }


def model_script(package: Path, model: str) -> str:
    """The shell the bare Job runs: the model's script, shipped inline (a bare Job has no ConfigMap)."""
    card = next(c for c in json.loads((package / "models.json").read_text()) if c["name"] == model)
    return (package / card["scripts"]).read_text()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    reg = registry()
    ns = f"madengine-bench-{uuid.uuid4().hex[:6]}"
    kubectl = ["kubectl", "--kubeconfig", str(KUBECONFIG)]
    tmp = Path(tempfile.mkdtemp(prefix="madengine-bench-k8s-"))
    run(kubectl + ["create", "namespace", ns], tmp, env)
    while subprocess.run(kubectl + ["-n", ns, "get", "serviceaccount", "default"], capture_output=True).returncode:
        time.sleep(0.2)  # the controller-manager creates it
    # The bare Jobs pull with the default service account's pull secret, as a hand-written Job would; the
    # password goes through a file, never argv.
    auth = {"auths": {reg["registry"]: {"username": reg["username"], "password": reg["password"]}}}
    docker_config = tmp / "docker-config.json"
    docker_config.write_text(json.dumps(auth))
    run(
        kubectl + ["-n", ns, "create", "secret", "generic", "regcred", "--type=kubernetes.io/dockerconfigjson",
                   f"--from-file=.dockerconfigjson={docker_config}"],
        tmp, env,
    )  # fmt: skip
    docker_config.unlink()
    run(kubectl + ["-n", ns, "patch", "serviceaccount", "default", "-p",
                   '{"imagePullSecrets": [{"name": "regcred"}]}'], tmp, env)  # fmt: skip
    section = {"kubeconfig": str(KUBECONFIG), "namespace": ns, "image_pull_policy": "IfNotPresent"}
    context = json.dumps({"gpu_vendor": "CPU", "k8s": section})
    cases = {}
    try:
        for case, models in (("one_model", MODELS[:1]), ("five_models", MODELS)):
            package = tmp / case
            shutil.copytree(FIXTURE, package, symlinks=True)
            creds = {reg["registry"]: {"username": reg["username"], "password": reg["password"],
                                       "repository": f"madengine-bench/{uuid.uuid4().hex[:6]}"}}  # fmt: skip
            (package / "credential.json").write_text(json.dumps(creds))
            run([MADENGINE, "build", "--tags", ",".join(models), "--registry", reg["registry"]], package, env)
            data = json.loads((package / "build_manifest.json").read_text())
            by_model = {m["name"]: k for k, m in data["built_models"].items()}
            images = [data["built_images"][by_model[m]]["registry_image"] for m in models]
            scripts = [model_script(package, m) for m in models]
            samples: Dict[str, List[float]] = {"madengine": [], "baseline": []}

            def ours(run_id: str, package: Path = package) -> List[str]:
                return [MADENGINE, "run", "--manifest-file", "build_manifest.json", "-c", context, "--run-id", run_id]

            timed(ours(f"warm-{case}"), package, env)
            timed_bare_jobs(images, scripts, package, env, ns)
            for index in range(args.repeat):
                samples["madengine"].append(timed(ours(f"{case}-{index}"), package, env))
                samples["baseline"].append(timed_bare_jobs(images, scripts, package, env, ns))
            med = {k: statistics.median(v) for k, v in samples.items()}
            cases[case] = {"median_s": med, "ratio": med["madengine"] / med["baseline"], "samples": samples}
            print(f"{case:12} madengine {med['madengine']:.2f} s  bare kubectl {med['baseline']:.2f} s  "
                  f"ratio {cases[case]['ratio']:.2f}")  # fmt: skip
    finally:
        subprocess.run(kubectl + ["delete", "namespace", ns, "--wait=false"], capture_output=True, check=False)
        shutil.rmtree(tmp, ignore_errors=True)
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    out = RESULTS_DIR / f"k8s-{stamp}.json"
    out.write_text(json.dumps({"repeat": args.repeat, "cases": cases}, indent=2) + "\n")
    print(f"results: {out.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
