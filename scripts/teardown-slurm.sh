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

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

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

daemon_pids() { # $1 = slurmctld|slurmd, $2 = node
    pids_with_cmdline "$1" "$(slurm_daemon_cmdline "$CONF" "$1" "${2:-}")"
}

stop_daemon() { # $1 = slurmctld|slurmd, $2 = node, $3 = label
    local stopped
    stopped=$(stop_cmdline "$1" "$(slurm_daemon_cmdline "$CONF" "$1" "${2:-}")")
    if [ -n "$stopped" ]; then log "ok: $3 (pid $stopped) stopped"; else log "ok: $3 not running"; fi
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
