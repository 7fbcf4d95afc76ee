#!/usr/bin/env bash
# Stop the local SLURM cluster of scripts/setup-slurm.sh: cancel every job, then stop the slurmds and slurmctld.
# munged keeps running, and slurm.conf and slurm.env are kept (setup-slurm.sh starts the same cluster again).
#   --purge   also delete the cluster's state, spool and logs (finished jobs, job ids start again at 1)
#
# Environment: MADENGINE_SLURM_DIR   state directory (default /var/tmp/madengine-slurm)
set -euo pipefail

readonly STATE_DIR="${MADENGINE_SLURM_DIR:-/var/tmp/madengine-slurm}"
readonly CONF="$STATE_DIR/slurm.conf"
readonly CANCEL_WAIT=15

log() { printf '%s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

purge=0
for arg in "$@"; do
    case "$arg" in
        --purge) purge=1 ;;
        -h | --help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) printf 'error: unknown argument %s\n' "$arg" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" -eq 0 ] || die "run this script as root (the slurm daemons run as root)"

export SLURM_CONF="$CONF"

# The same look-up as setup-slurm.sh: our daemons by their exact command line, not by pid file.
daemon_pids() { # $1 = slurmctld|slurmd, $2 = node
    local want comm dir
    local -a argv
    if [ "$1" = slurmctld ]; then want="slurmctld -f $CONF"; else want="slurmd -f $CONF -N $2"; fi
    for dir in /proc/[0-9]*; do
        read -r comm 2>/dev/null < "$dir/comm" || continue
        [ "$comm" = "$1" ] || continue
        mapfile -d '' -t argv 2>/dev/null < "$dir/cmdline" || continue
        [ "${#argv[@]}" -gt 0 ] || continue
        argv[0]=${argv[0]##*/}
        [ "${argv[*]}" = "$want" ] && printf '%s\n' "${dir#/proc/}"
    done
    return 0
}

stop_daemon() { # $1 = slurmctld|slurmd, $2 = node, $3 = label; SIGTERM, then SIGKILL after 10 s
    local -a pids
    local pid
    mapfile -t pids < <(daemon_pids "$1" "${2:-}")
    if [ "${#pids[@]}" -eq 0 ]; then
        log "ok: $3 not running"
        return
    fi
    local first="${pids[*]}"
    kill "${pids[@]}" 2>/dev/null || true
    for _ in $(seq 100); do
        mapfile -t pids < <(daemon_pids "$1" "${2:-}")
        [ "${#pids[@]}" -gt 0 ] || break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    log "ok: $3 (pid $first) stopped"
}

nodes=()
if [ -f "$CONF" ]; then
    mapfile -t nodes < <(sed -n 's/^NodeName=\([^ ]*\).*/\1/p' "$CONF")
fi

if [ -n "$(daemon_pids slurmctld)" ] && scontrol ping 2>/dev/null | grep -q 'is UP'; then
    mapfile -t jobs < <(squeue -h -o '%A' 2>/dev/null | sort -u)
    if [ "${#jobs[@]}" -gt 0 ]; then
        scancel "${jobs[@]}" 2>/dev/null || true
        # Let slurmd deliver the signals (KillWait=5 s before SIGKILL) before it goes away.
        deadline=$((SECONDS + CANCEL_WAIT))
        while [ -n "$(squeue -h -o '%A' 2>/dev/null)" ] && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
        left=$(squeue -h -o '%A' 2>/dev/null | wc -l)
        if [ "$left" -eq 0 ]; then
            log "ok: cancelled ${#jobs[@]} job(s)"
        else
            log "warning: cancelled ${#jobs[@]} job(s); $left still not finished after ${CANCEL_WAIT}s"
        fi
    else
        log "ok: no jobs to cancel"
    fi
else
    log "ok: slurmctld not answering; no jobs to cancel"
fi

for node in "${nodes[@]+"${nodes[@]}"}"; do
    stop_daemon slurmd "$node" "slurmd $node"
done
stop_daemon slurmctld "" slurmctld

if [ "$purge" = 1 ]; then
    rm -rf "$STATE_DIR/state" "$STATE_DIR/spool" "$STATE_DIR/log" "$STATE_DIR/run"
    log "ok: removed the state, spool, run and log directories of $STATE_DIR"
fi
log "ok: slurm.conf kept in $STATE_DIR (munged left running)"
