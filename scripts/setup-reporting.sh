#!/usr/bin/env bash
# What the report tests need on a fresh Debian machine, idempotently: a headless browser (Debian's `chromium`)
# and fonts for the charts' text (fonts-dejavu-core). `apt-get update` runs only when something is missing.
# Writes <dir>/reporting.env (CHROMIUM=<path>) for tests/integration/test_reports.py.
#
# Environment:
#   MADENGINE_REPORTING_DIR  state directory (default /var/tmp/madengine-reporting)
set -euo pipefail

readonly STATE_DIR="${MADENGINE_REPORTING_DIR:-/var/tmp/madengine-reporting}"
readonly ENV_FILE="$STATE_DIR/reporting.env"
T0=$EPOCHREALTIME

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "run this script as root (or install sudo)"
    SUDO="sudo"
fi

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
if [ "${#missing[@]}" -eq 0 ]; then
    log "ok: chromium and fonts already installed"
else
    install_packages --no-install-recommends "${missing[@]}"
fi

browser=$(command -v chromium) || die "chromium is not on PATH after installing it"
version=$("$browser" --headless --no-sandbox --version 2>/dev/null | head -n 1) \
    || die "$browser --version failed"
$SUDO mkdir -p "$STATE_DIR"
printf 'CHROMIUM=%s\n' "$browser" | $SUDO tee "$ENV_FILE.tmp" >/dev/null
$SUDO mv "$ENV_FILE.tmp" "$ENV_FILE"
log "ok: $version ($browser); settings in $ENV_FILE"
log "done in $(elapsed "$T0") s"
