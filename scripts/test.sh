#!/usr/bin/env bash
# Run every check: ruff, mypy, shellcheck, ansible-lint, ansible-test sanity, then unit, integration (real Docker
# engine and registry), module, fleet (real SSH hosts) and e2e tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/shellcheck -x scripts/*.sh
ANSIBLE_COLLECTIONS_PATH="$PWD/collections" .venv/bin/ansible-lint -q --profile production
bash scripts/sanity.sh
PATH="$PWD/.venv/bin:$PATH" .venv/bin/molecule test -s run
set +e
.venv/bin/python -m pytest -p no:cacheprovider -q "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests" >&2
  exit 1
fi
exit "$rc"
