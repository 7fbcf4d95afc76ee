#!/usr/bin/env bash
# Set up everything madengine's demo and tests need on a fresh Debian 12 machine, idempotently:
# the Docker engine, local base images, an authenticated registry (scripts/setup-infra.sh),
# a two-node SLURM cluster (scripts/setup-slurm.sh), a single-node Kubernetes 1.20 cluster on loopback
# (scripts/setup-k8s.sh: kubeconfig in /var/tmp/madengine-k8s/kubeconfig; the first run on a machine builds the
# Kubernetes binaries, about 16 minutes, cached in /var/cache/madengine-k8s),
# a MongoDB wire-protocol server with auth on 127.0.0.1:27018 (scripts/setup-mongo.sh: settings in
# /var/tmp/madengine-mongo/mongo.env), the JUnit schema junit-10.xsd (scripts/setup-schemas.sh: in
# /var/cache/madengine-schemas), a headless Chromium and fonts for the report tests (scripts/setup-reporting.sh),
# and a virtual environment in .venv with madengine installed from this checkout.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-infra.sh
bash scripts/setup-slurm.sh
bash scripts/setup-k8s.sh
bash scripts/setup-mongo.sh
bash scripts/setup-reporting.sh

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.madengine-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  .venv/bin/python -m pip install -q -e '.[dev]'
  touch "$stamp"
fi
echo "ok: .venv ready ($(.venv/bin/madengine --version))"
PYTHON=.venv/bin/python bash scripts/setup-schemas.sh
