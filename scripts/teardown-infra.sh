#!/usr/bin/env bash
# Stop the test registry started by scripts/setup-infra.sh. dockerd and the base images are left alone.
#   --purge   also delete the registry's stored images (<state>/registry/data); the password is kept
set -euo pipefail

readonly STATE_DIR="${MADENGINE_INFRA_DIR:-/var/tmp/madengine-infra}"
readonly REG_DIR="$STATE_DIR/registry"
readonly REG_PID_FILE="$REG_DIR/registry.pid"

purge=0
for arg in "$@"; do
    case "$arg" in
        --purge) purge=1 ;;
        -h | --help) sed -n '2,3p' "$0"; exit 0 ;;
        *) printf 'error: unknown argument %s\n' "$arg" >&2; exit 2 ;;
    esac
done

pid=""
if [ -f "$REG_PID_FILE" ]; then
    pid=$(cat "$REG_PID_FILE" 2>/dev/null || true)
fi
if [[ "$pid" =~ ^[0-9]+$ ]] && [ -r "/proc/$pid/cmdline" ] \
        && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q 'docker-registry'; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -9 "$pid" 2>/dev/null || true
    fi
    printf 'ok: registry (pid %s) stopped\n' "$pid"
else
    printf 'ok: registry not running\n'
fi
rm -f "$REG_PID_FILE"

if [ "$purge" = 1 ] && [ -d "$REG_DIR/data" ]; then
    rm -rf "$REG_DIR/data"
    printf 'ok: removed %s\n' "$REG_DIR/data"
fi
