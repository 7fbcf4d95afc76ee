#!/usr/bin/env bash
# The main job: set up, then benchmark the dummy model of the fixture MAD package end to end
# (discover, build its image, run it in a container, append to perf.csv) and print its perf table.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
demo=${MADENGINE_DEMO_DIR:-/tmp/madengine-demo}
rm -rf "$demo"
cp -a tests/fixtures/mad "$demo"
cd "$demo"
echo "== madengine discover --tags dummy (in $demo)"
"$OLDPWD/.venv/bin/madengine" discover --tags dummy
echo "== madengine run --tags dummy"
"$OLDPWD/.venv/bin/madengine" run --tags dummy
echo "== perf.csv"
cat perf.csv
