#!/usr/bin/env bash
# ansible-test sanity for the rocm.madengine collection, without containers (no image can be pulled here).
#
#   bash scripts/sanity.sh                      # every sanity test that can run on this machine
#   bash scripts/sanity.sh --test validate-modules   # extra arguments go to ansible-test
#
# ansible-test --venv needs pip's bootstrap script from ci-files.testing.ansible.com, which this network
# cannot reach. ansible-test documents saving that script to ~/.ansible/test/cache/ by hand; where it is
# missing we write a stand-in there that does the same job with the standard library's ensurepip and then
# pip from PyPI (which is reachable). A real downloaded script is never overwritten.
#
# Without arguments it also runs compile and import on Python 3.9 (the oldest target Python, see
# tests/config.yml) when one is installed (pyenv or /usr/bin); SANITY_OLDEST_PYTHON=0 turns that off.
#
# Environment: PYTHON_VERSION (default 3.11), VENV (default <repo>/.venv, which has ansible-core).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
COLLECTION="$REPO/collections/ansible_collections/rocm/madengine"
VENV="${VENV:-$REPO/.venv}"
PYTHON_VERSION="${PYTHON_VERSION:-3.11}"
ANSIBLE_TEST="$VENV/bin/ansible-test"

if [[ ! -x "$ANSIBLE_TEST" ]]; then
    echo "sanity.sh: $ANSIBLE_TEST not found; create the dev venv first (bash scripts/setup.sh)" >&2
    exit 4
fi

# The pip version ansible-test bootstraps into its virtual environments (e.g. 24.2 -> get_pip_24_2.py).
PIP_VERSION="$("$VENV/bin/python" - <<'EOF'
import pathlib, re
import ansible_test
source = pathlib.Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py"
print(re.search(r"pip='([0-9.]+)'", source.read_text()).group(1))
EOF
)"
BOOTSTRAP="$HOME/.ansible/test/cache/get_pip_${PIP_VERSION//./_}.py"
if [[ ! -s "$BOOTSTRAP" ]]; then
    mkdir -p "$(dirname "$BOOTSTRAP")"
    cat > "$BOOTSTRAP.tmp" <<'EOF'
"""Stand-in for ansible-test's get-pip bootstrap script (written by rocm.madengine's scripts/sanity.sh).

Called as: get_pip [pip install options] pip==<version> [--no-setuptools] [--no-wheel], in a virtual
environment created without pip. Installs pip with ensurepip, then the requested pip from the index.
"""
import subprocess
import sys

args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", "--upgrade"] + args)
EOF
    mv "$BOOTSTRAP.tmp" "$BOOTSTRAP"
    echo "sanity.sh: wrote a pip bootstrap stand-in to $BOOTSTRAP"
fi

# A Python 3.9 (the oldest target Python, tests/config.yml) for compile and import, where there is one.
oldest_python_dir() {
    local candidate
    for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.9*/bin/python3.9 /usr/bin/python3.9 /usr/local/bin/python3.9; do
        if [[ -x "$candidate" ]] && "$candidate" -c "import ensurepip" 2>/dev/null; then
            dirname "$candidate"
            return
        fi
    done
}

cd "$COLLECTION"
# ansible-test writes its results and cached venvs to tests/output/; keep them out of git.
mkdir -p tests/output
[[ -f tests/output/.gitignore ]] || printf '*\n' > tests/output/.gitignore
start=$(date +%s)
status=0
"$ANSIBLE_TEST" sanity --venv --python "$PYTHON_VERSION" --color no "$@" || status=$?
if [[ $# -eq 0 && "${SANITY_OLDEST_PYTHON:-1}" == 1 ]]; then
    py39_dir="$(oldest_python_dir)"
    if [[ -n "$py39_dir" ]]; then
        PATH="$py39_dir:$PATH" "$ANSIBLE_TEST" sanity --venv --python 3.9 --color no --test compile --test import \
            || status=$?
    else
        echo "sanity.sh: no Python 3.9 found; compile/import ran on Python $PYTHON_VERSION only"
    fi
fi
echo "sanity.sh: ansible-test sanity finished with exit code $status in $(( $(date +%s) - start )) s"
exit "$status"
