#!/usr/bin/env bash
# Stop the MongoDB wire-protocol server started by scripts/setup-mongo.sh. The virtual environment is kept.
#   --purge   also delete its data (<state>/data.sqlite); the password is kept
set -euo pipefail

readonly STATE_DIR="${MADENGINE_MONGO_DIR:-/var/tmp/madengine-mongo}"
readonly PID_FILE="$STATE_DIR/mongo.pid"

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

purge=0
for arg in "$@"; do
    case "$arg" in
        --purge) purge=1 ;;
        -h | --help) sed -n '2,3p' "$0"; exit 0 ;;
        *) die "unknown argument $arg" ;;
    esac
done

if pid=$(recorded_pid "$PID_FILE" python "$STATE_DIR"); then
    kill_pids "$pid"
    log "ok: mongo server (pid $pid) stopped"
else
    log "ok: mongo server not running"
fi
rm -f "$PID_FILE"

if [ "$purge" = 1 ]; then
    rm -f "$STATE_DIR"/data.sqlite*
    log "ok: removed $STATE_DIR/data.sqlite"
fi
