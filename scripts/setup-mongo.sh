#!/usr/bin/env bash
# Start a MongoDB wire-protocol server for the `madengine database` tests, idempotently:
#   1. a Python >= 3.13 (mongoeco needs it): $MADENGINE_PYTHON313, python3.13/python3.14 on PATH, pyenv's
#      versions, /usr/local/bin, /usr/bin; fails with a clear message when there is none
#   2. a virtual environment <dir>/venv with mongoeco[wire] (a MongoDB server in pure Python, on SQLite) from PyPI
#   3. a generated password in <dir>/password (mode 0600) for the user `madengine` (role root on admin)
#   4. scripts/mongo_server.py, copied to <dir>/, started on 127.0.0.1:$MADENGINE_MONGO_PORT (default 27018) with
#      SCRAM-SHA-256 auth and its data in <dir>/data.sqlite; pid in <dir>/mongo.pid, log in <dir>/mongo.log
#   5. <dir>/mongo.env (KEY=VALUE): MONGO_HOST, MONGO_PORT, MONGO_USER, MONGO_PASSWORD_FILE, MONGO_AUTH_SOURCE,
#      MONGO_AUTH_MECHANISM: what `madengine database` and the tests need (the password itself stays in its file)
#
# A second run, with the server up, takes about a second. Stop it with scripts/teardown-mongo.sh.
#
# Environment:
#   MADENGINE_MONGO_DIR    state directory (default /var/tmp/madengine-mongo)
#   MADENGINE_MONGO_PORT   port on 127.0.0.1 (default 27018)
#   MADENGINE_PYTHON313    the Python >= 3.13 to build the virtual environment with
#   MADENGINE_MONGOECO     the pip requirement of the server (default mongoeco[wire]==4.11.0)
set -euo pipefail

readonly STATE_DIR="${MADENGINE_MONGO_DIR:-/var/tmp/madengine-mongo}"
readonly PORT="${MADENGINE_MONGO_PORT:-27018}"
readonly HOST=127.0.0.1
readonly USER_NAME=madengine
readonly REQUIREMENT="${MADENGINE_MONGOECO:-mongoeco[wire]==4.11.0}"
readonly VENV="$STATE_DIR/venv"
readonly PASSWORD_FILE="$STATE_DIR/password"
readonly PID_FILE="$STATE_DIR/mongo.pid"
readonly LOG_FILE="$STATE_DIR/mongo.log"
readonly ENV_FILE="$STATE_DIR/mongo.env"
readonly SERVER="$STATE_DIR/mongo_server.py"
readonly DATA="$STATE_DIR/data.sqlite"
readonly WAIT_S=30

T0=$EPOCHREALTIME
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SOURCE_SERVER="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/mongo_server.py"
readonly SOURCE_SERVER

new_enough() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 13) else 1)' >/dev/null 2>&1; }

find_python() { # prints a Python >= 3.13, or fails
    local candidate
    local -a candidates=()
    [ -n "${MADENGINE_PYTHON313:-}" ] && candidates+=("$MADENGINE_PYTHON313")
    for candidate in python3.13 python3.14; do
        command -v "$candidate" >/dev/null 2>&1 && candidates+=("$(command -v "$candidate")")
    done
    for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[3-9]*/bin/python3 /root/.pyenv/versions/3.1[3-9]*/bin/python3 \
        /usr/local/bin/python3.1[3-9] /usr/bin/python3.1[3-9]; do
        [ -x "$candidate" ] && candidates+=("$candidate")
    done
    for candidate in "${candidates[@]+"${candidates[@]}"}"; do
        if new_enough "$candidate"; then printf '%s\n' "$candidate"; return 0; fi
    done
    return 1
}

ensure_venv() {
    local stamp="$VENV/.madengine-requirement" py t
    if [ -x "$VENV/bin/python" ] && new_enough "$VENV/bin/python" && [ "$(cat "$stamp" 2>/dev/null)" = "$REQUIREMENT" ]; then
        log "ok: $VENV has $REQUIREMENT"
        return 0
    fi
    py=$(find_python) || die "no Python >= 3.13 found (mongoeco needs it): install one (e.g. pyenv install 3.13) or set MADENGINE_PYTHON313"
    t=$EPOCHREALTIME
    rm -rf "$VENV"
    "$py" -m venv "$VENV" || die "cannot create a virtual environment in $VENV with $py"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$REQUIREMENT" 2>&1 \
        | grep -v "is ignored: it is neither a file nor a directory" >&2 || true
    "$VENV/bin/python" -c 'import mongoeco.wire, pymongo' 2>/dev/null \
        || die "pip could not install $REQUIREMENT into $VENV"
    printf '%s\n' "$REQUIREMENT" > "$stamp"
    log "ok: $VENV with $REQUIREMENT ($("$VENV/bin/python" -V), $(elapsed "$t") s)"
}

ensure_password() {
    mkdir -p "$STATE_DIR"
    chmod 700 "$STATE_DIR"
    if new_password_file "$PASSWORD_FILE"; then log "ok: generated a password in $PASSWORD_FILE"; fi
}

write_env() {
    replace_if_changed "$ENV_FILE" 644 <<EOF || true
MONGO_HOST=$HOST
MONGO_PORT=$PORT
MONGO_USER=$USER_NAME
MONGO_PASSWORD_FILE=$PASSWORD_FILE
MONGO_AUTH_SOURCE=admin
MONGO_AUTH_MECHANISM=SCRAM-SHA-256
EOF
}

server_args() { printf '%s\n' --host "$HOST" --port "$PORT" --user "$USER_NAME" --password-file "$PASSWORD_FILE"; }

answers() { # the server accepts our credentials
    local -a args
    mapfile -t args < <(server_args)
    "$VENV/bin/python" "$SERVER" "${args[@]}" --check 2>/dev/null
}

our_pid() { recorded_pid "$PID_FILE" python "$STATE_DIR"; }

stop_ours() {
    local pid
    if pid=$(our_pid); then
        kill_pids "$pid"
        log "ok: stopped the old server (pid $pid)"
    fi
    rm -f "$PID_FILE"
}

start_server() {
    local -a args
    local pid _
    mapfile -t args < <(server_args)
    if (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; then
        die "port $HOST:$PORT is taken by another program; set MADENGINE_MONGO_PORT to a free port"
    fi
    setsid "$VENV/bin/python" "$SERVER" "${args[@]}" --db "$DATA" >>"$LOG_FILE" 2>&1 </dev/null &
    pid=$!
    printf '%s\n' "$pid" > "$PID_FILE"
    for _ in $(seq $((WAIT_S * 5))); do
        running "$pid" || { tail -n 20 "$LOG_FILE" >&2; die "the server exited at start (log: $LOG_FILE)"; }
        if answers; then
            log "ok: MongoDB wire-protocol server (mongoeco, pid $pid) on $HOST:$PORT with auth"
            return 0
        fi
        sleep 0.2
    done
    tail -n 20 "$LOG_FILE" >&2
    die "the server on $HOST:$PORT did not answer within $WAIT_S s (log: $LOG_FILE)"
}

ensure_server() {
    local changed=0
    if ! cmp -s "$SOURCE_SERVER" "$SERVER"; then
        install -m 0644 "$SOURCE_SERVER" "$SERVER"
        changed=1
    fi
    if [ "$changed" = 0 ] && our_pid >/dev/null && answers; then
        log "ok: MongoDB wire-protocol server already running on $HOST:$PORT (pid $(our_pid))"
        return 0
    fi
    stop_ours
    start_server
}

ensure_password
ensure_venv
write_env
ensure_server
log "ok: mongo ready: settings in $ENV_FILE ($(elapsed "$T0") s)"
