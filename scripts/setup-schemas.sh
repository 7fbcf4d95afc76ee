#!/usr/bin/env bash
# Fetch the XML schemas the tests validate reports against, idempotently, into a cache outside the repository:
#   junit-10.xsd   Jenkins xunit-plugin's JUnit schema (what Jenkins and GitLab read), as shipped in pytest's
#                  source distribution on PyPI (testing/example_scripts/junit-10.xsd)
# Nothing is committed; tests find the file at <dir>/junit-10.xsd.
#
# Environment:
#   MADENGINE_SCHEMA_DIR   cache directory (default /var/cache/madengine-schemas)
#   PYTHON                 the Python whose pip downloads the sdist (default python3)
set -euo pipefail

readonly CACHE_DIR="${MADENGINE_SCHEMA_DIR:-/var/cache/madengine-schemas}"
readonly PYTEST_SDIST_VERSION=8.3.5
readonly XSD="$CACHE_DIR/junit-10.xsd"
readonly MEMBER="pytest-$PYTEST_SDIST_VERSION/testing/example_scripts/junit-10.xsd"

T0=$EPOCHREALTIME
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [ -s "$XSD" ] && grep -q '<xs:schema' "$XSD"; then
    log "ok: $XSD present"
    exit 0
fi
py="${PYTHON:-python3}"
"$py" -m pip --version >/dev/null 2>&1 || die "$py has no pip: set PYTHON to a Python with pip (setup.sh uses .venv/bin/python)"
mkdir -p "$CACHE_DIR"
tmp=$(mktemp -d "$CACHE_DIR/.download.XXXXXX")
trap 'rm -rf -- "$tmp"' EXIT
"$py" -m pip download -q --disable-pip-version-check --no-binary :all: --no-deps \
    -d "$tmp" "pytest==$PYTEST_SDIST_VERSION" 2>&1 | grep -v "is ignored: it is neither a file nor a directory" >&2 || true
sdist="$tmp/pytest-$PYTEST_SDIST_VERSION.tar.gz"
[ -s "$sdist" ] || die "pip could not download the pytest $PYTEST_SDIST_VERSION source distribution"
tar -xzf "$sdist" -C "$tmp" "$MEMBER" || die "$sdist has no $MEMBER"
grep -q '<xs:schema' "$tmp/$MEMBER" || die "$MEMBER is not an XML schema"
install -m 0644 "$tmp/$MEMBER" "$XSD"
log "ok: $XSD from pytest $PYTEST_SDIST_VERSION's sdist ($(elapsed "$T0") s)"
