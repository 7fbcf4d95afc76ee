#!/usr/bin/env bash
# Start a local two-node SLURM cluster (Debian's slurm-wlm 22.05 + munge) without systemd, idempotently:
#   1. Debian packages (slurm-wlm munge), installed when missing
#   2. munge: the key /etc/munge/munge.key is created when missing, munged started when `munge -n | unmunge` fails
#   3. <dir>/slurm.conf: one slurmctld on 127.0.0.1:6917 and the nodes n1 (port 6931) and n2 (port 6932), both on
#      this machine (`slurmd -N n1`, `slurmd -N n2`), CPUs=8 each (more than the real cores, through
#      SlurmdParameters=config_overrides); partition `debug` (default, Nodes=n1,n2, MaxTime=INFINITE).
#      Jobs run as root; finished jobs stay in `scontrol show job -o <id>` for 10 min (MinJobAge=600) and get one
#      line each in <dir>/log/jobcomp.log. There is no accounting database: `sacct` does not work.
#   4. slurmctld and the two slurmds: started when not running, restarted when slurm.conf had to be rewritten
#   5. waits until both nodes are up (idle, or busy with jobs); drained or down nodes are resumed
#
# Run it as root (or as a user with password-less sudo). A second run, with everything up, takes well under a second.
# Clients need SLURM_CONF: <dir>/slurm.env holds it (KEY=VALUE lines), e.g.
#   set -a; . /var/tmp/madengine-slurm/slurm.env; set +a; sbatch --wrap hostname
#
# Written under the state directory: slurm.conf, slurm.env, state/ (slurmctld), spool/<node>/, run/ (pid files),
# log/ (slurmctld.log, slurmd-<node>.log, jobcomp.log). Stop the cluster with scripts/teardown-slurm.sh.
#
# Environment:
#   MADENGINE_SLURM_DIR   state directory (default /var/tmp/madengine-slurm)
#   MADENGINE_SLURM_WAIT  seconds to wait for the daemons and the nodes (default 30)
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    # slurmd has to run as root (SlurmdUser=root); go through sudo once for the whole script.
    command -v sudo >/dev/null 2>&1 || { printf 'error: run this script as root (or install sudo)\n' >&2; exit 1; }
    exec sudo -n env "MADENGINE_SLURM_DIR=${MADENGINE_SLURM_DIR:-}" "MADENGINE_SLURM_WAIT=${MADENGINE_SLURM_WAIT:-}" \
        bash "$0" "$@"
fi

readonly STATE_DIR="${MADENGINE_SLURM_DIR:-/var/tmp/madengine-slurm}"
readonly WAIT_S="${MADENGINE_SLURM_WAIT:-30}"
readonly CONF="$STATE_DIR/slurm.conf"
readonly ENV_FILE="$STATE_DIR/slurm.env"
readonly SAVE_DIR="$STATE_DIR/state"
readonly SPOOL_DIR="$STATE_DIR/spool"
readonly RUN_DIR="$STATE_DIR/run"
readonly LOG_DIR="$STATE_DIR/log"
readonly CTLD_LOG="$LOG_DIR/slurmctld.log"

readonly CLUSTER=madengine
readonly PARTITION=debug
readonly CTLD_PORT=6917
readonly NODES=(n1 n2)
readonly NODE_PORTS=(6931 6932)
readonly NODE_CPUS=8
readonly NODE_MEMORY=4000

readonly MUNGE_KEY=/etc/munge/munge.key
readonly MUNGE_RUN=/run/munge
readonly MUNGE_LOG=/var/log/munge/munged.log

T0=$EPOCHREALTIME

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ "$WAIT_S" =~ ^[1-9][0-9]*$ ]] || die "MADENGINE_SLURM_WAIT must be a whole number of seconds, not '$WAIT_S'"

# ----------------------------------------------------------------------------------------------------------------
# 1. packages
# ----------------------------------------------------------------------------------------------------------------
ensure_packages() {
    local -a missing=()
    local cmd
    for cmd in slurmctld slurmd sbatch srun sinfo squeue scontrol; do
        command -v "$cmd" >/dev/null 2>&1 || { missing+=(slurm-wlm); break; }
    done
    for cmd in munged munge unmunge mungekey; do
        command -v "$cmd" >/dev/null 2>&1 || { missing+=(munge); break; }
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        log "ok: slurm and munge already installed"
        return
    fi
    install_packages --no-install-recommends "${missing[@]}"
}

# ----------------------------------------------------------------------------------------------------------------
# 2. munge
# ----------------------------------------------------------------------------------------------------------------
munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

ensure_munge() {
    if [ ! -s "$MUNGE_KEY" ]; then
        install -d -o munge -g munge -m 0700 "$(dirname "$MUNGE_KEY")"
        runuser -u munge -- mungekey --create --keyfile="$MUNGE_KEY" >/dev/null \
            || die "mungekey could not create $MUNGE_KEY"
        log "ok: created the munge key $MUNGE_KEY"
    fi
    if munge_ok; then
        log "ok: munged already running"
        return
    fi
    local t=$EPOCHREALTIME
    install -d -o munge -g munge -m 0755 "$MUNGE_RUN"
    # 9>&-: the daemon must not inherit (and hold forever) the fd of this script's lock
    runuser -u munge -- munged 9>&- || {
        tail -n 20 "$MUNGE_LOG" >&2 2>/dev/null || true
        die "munged did not start (log: $MUNGE_LOG)"
    }
    local deadline=$((SECONDS + WAIT_S))
    until munge_ok; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            tail -n 20 "$MUNGE_LOG" >&2 2>/dev/null || true
            die "munged started but \`munge -n | unmunge\` still fails after ${WAIT_S}s (log: $MUNGE_LOG)"
        fi
        sleep 0.1
    done
    log "ok: munged started ($(elapsed "$t") s)"
}

# ----------------------------------------------------------------------------------------------------------------
# 3. configuration
# ----------------------------------------------------------------------------------------------------------------
render_conf() {
    local host i
    host=$(hostname -s)
    cat <<EOF
# Written by madengine's scripts/setup-slurm.sh; it rewrites this file (and restarts the daemons) when it differs.
ClusterName=$CLUSTER
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
StateSaveLocation=$SAVE_DIR
SlurmdSpoolDir=$SPOOL_DIR/%n
SlurmctldPidFile=$RUN_DIR/slurmctld.pid
SlurmdPidFile=$RUN_DIR/slurmd-%n.pid
SlurmctldLogFile=$CTLD_LOG
SlurmdLogFile=$LOG_DIR/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobCompType=jobcomp/filetxt
JobCompLoc=$LOG_DIR/jobcomp.log
AccountingStorageType=accounting_storage/none
MinJobAge=600
KillWait=5
OverTimeLimit=0
InactiveLimit=0
ReturnToService=2
SlurmdTimeout=60
SlurmdParameters=config_overrides
MailProg=/bin/true
EOF
    for i in "${!NODES[@]}"; do
        printf 'NodeName=%s NodeHostname=%s NodeAddr=127.0.0.1 Port=%s CPUs=%s RealMemory=%s State=UNKNOWN\n' \
            "${NODES[$i]}" "$host" "${NODE_PORTS[$i]}" "$NODE_CPUS" "$NODE_MEMORY"
    done
    local IFS=,
    printf 'PartitionName=%s Nodes=%s Default=YES MaxTime=INFINITE State=UP\n' "$PARTITION" "${NODES[*]}"
}

CONF_CHANGED=0
write_conf() {
    local node
    mkdir -p "$SAVE_DIR" "$RUN_DIR" "$LOG_DIR"
    for node in "${NODES[@]}"; do mkdir -p "$SPOOL_DIR/$node"; done
    if ! render_conf | replace_if_changed "$CONF" 644; then
        log "ok: $CONF unchanged"
        return
    fi
    CONF_CHANGED=1
    log "ok: wrote $CONF"
}

write_env() {
    printf 'SLURM_CONF=%s\n' "$CONF" | replace_if_changed "$ENV_FILE" 644 || true
}

# ----------------------------------------------------------------------------------------------------------------
# 4. daemons
# ----------------------------------------------------------------------------------------------------------------
daemon_pids() { # pids of our daemon $1 (slurmctld, or slurmd with node $2)
    pids_with_cmdline "$1" "$(slurm_daemon_cmdline "$CONF" "$1" "${2:-}")"
}

stop_daemon() { # $1 = slurmctld|slurmd, $2 = node; SIGTERM, then SIGKILL after 10 s
    stop_cmdline "$1" "$(slurm_daemon_cmdline "$CONF" "$1" "${2:-}")" >/dev/null
}

ctld_answers() { scontrol ping 2>/dev/null | grep -q 'is UP'; }

start_daemon() { # $1 = slurmctld|slurmd, $2 = node; both daemonize themselves
    local -a argv
    read -r -a argv <<< "$(slurm_daemon_cmdline "$CONF" "$1" "${2:-}")"
    argv[0]=$(command -v "${argv[0]}")
    # 9>&-: the daemon must not inherit (and hold forever) the fd of this script's lock
    "${argv[@]}" </dev/null >>"$LOG_DIR/start.log" 2>&1 9>&- \
        || fail_with_logs "\`${argv[*]}\` failed (exit $?)"
}

fail_with_logs() { # print $1 and the tails of the daemons' logs, then exit
    local f node
    local -a logs=("$LOG_DIR/start.log" "$CTLD_LOG")
    for node in "${NODES[@]}"; do logs+=("$LOG_DIR/slurmd-$node.log"); done
    printf 'error: %s\n' "$1" >&2
    for f in "${logs[@]}"; do
        [ -s "$f" ] || continue
        printf -- '--- last lines of %s:\n' "$f" >&2
        tail -n 15 "$f" >&2 || true
    done
    exit 1
}

declare -A STARTED_AT=()   # node -> epoch second its slurmd was started by this run

ensure_daemons() {
    local node pids
    if [ "$CONF_CHANGED" = 1 ]; then
        local running=0
        for node in "${NODES[@]}"; do
            [ -z "$(daemon_pids slurmd "$node")" ] || running=1
        done
        [ -z "$(daemon_pids slurmctld)" ] || running=1
        if [ "$running" = 1 ]; then
            local t=$EPOCHREALTIME
            for node in "${NODES[@]}"; do stop_daemon slurmd "$node"; done
            stop_daemon slurmctld
            log "ok: stopped the daemons to restart them with the new slurm.conf ($(elapsed "$t") s)"
        fi
    fi

    pids=$(daemon_pids slurmctld)
    if [ -n "$pids" ] && ! ctld_answers; then
        # Still starting up, or hung: give it a few seconds, then replace it.
        local deadline=$((SECONDS + 5))
        until ctld_answers || [ "$SECONDS" -ge "$deadline" ]; do sleep 0.2; done
        if ! ctld_answers; then
            log "slurmctld (pid $pids) does not answer \`scontrol ping\`; restarting it"
            stop_daemon slurmctld
            pids=""
        fi
    fi
    if [ -n "$pids" ]; then
        log "ok: slurmctld already running (pid $pids, port $CTLD_PORT)"
    else
        local t=$EPOCHREALTIME deadline=$((SECONDS + WAIT_S))
        require_free_port "$CTLD_PORT" slurmctld scripts/teardown-slurm.sh
        start_daemon slurmctld
        until ctld_answers && [ -n "$(daemon_pids slurmctld)" ]; do
            [ -n "$(daemon_pids slurmctld)" ] || fail_with_logs "slurmctld exited at start"
            [ "$SECONDS" -lt "$deadline" ] || fail_with_logs "slurmctld did not answer \`scontrol ping\` within ${WAIT_S}s"
            sleep 0.1
        done
        log "ok: slurmctld started (pid $(daemon_pids slurmctld), port $CTLD_PORT; $(elapsed "$t") s)"
    fi

    local i
    for i in "${!NODES[@]}"; do
        node=${NODES[$i]}
        pids=$(daemon_pids slurmd "$node")
        if [ -n "$pids" ]; then
            log "ok: slurmd $node already running (pid $pids, port ${NODE_PORTS[$i]})"
            continue
        fi
        local t=$EPOCHREALTIME
        require_free_port "${NODE_PORTS[$i]}" "slurmd $node" scripts/teardown-slurm.sh
        STARTED_AT[$node]=${EPOCHREALTIME%.*}
        start_daemon slurmd "$node"
        # slurmd daemonizes by forking: its parent may return before the daemon runs under its own command line.
        local deadline=$((SECONDS + 5))
        until pids=$(daemon_pids slurmd "$node"); [ -n "$pids" ]; do
            [ "$SECONDS" -lt "$deadline" ] || fail_with_logs "slurmd $node exited at start"
            sleep 0.1
        done
        log "ok: slurmd $node started (pid $pids, port ${NODE_PORTS[$i]}; $(elapsed "$t") s)"
    done
}

# ----------------------------------------------------------------------------------------------------------------
# 5. nodes
# ----------------------------------------------------------------------------------------------------------------
registered_since() { # has node $1's slurmd registered with slurmctld at or after epoch second $2?
    local line when
    line=$(scontrol show node -o "$1" 2>/dev/null) || return 1
    [[ "$line" =~ SlurmdStartTime=([0-9T:-]+) ]] || return 1
    when=$(date -d "${BASH_REMATCH[1]}" +%s 2>/dev/null) || return 1
    [ "$when" -ge "$2" ]
}

wait_for_nodes() {
    local t=$EPOCHREALTIME deadline=$((SECONDS + WAIT_S)) node state line summary
    local -A resumed=() states=()
    local -a not_up
    while :; do
        not_up=()
        summary=""
        states=()
        while read -r line; do
            [ -n "$line" ] || continue
            states[${line%% *}]=${line#* }
        done < <(sinfo -h -N -o '%N %T' 2>/dev/null || true)
        for node in "${NODES[@]}"; do
            state=${states[$node]:-missing}
            summary+=" $node=$state"
            case "$state" in
                idle | mixed | allocated | completing)
                    # A node recovered from the state file shows idle before the new slurmd has registered.
                    if [ -n "${STARTED_AT[$node]:-}" ] && ! registered_since "$node" "${STARTED_AT[$node]}"; then
                        not_up+=("$node")
                    fi
                    ;;
                down | drain | drained | draining | fail | failing)
                    # Left DOWN/DRAIN by an earlier run; the slurmd answers again, so put the node back in service.
                    if [ -z "${resumed[$node]:-}" ]; then
                        scontrol update nodename="$node" state=resume >/dev/null 2>&1 || true
                        resumed[$node]=1
                        log "ok: resumed node $node (it was $state)"
                    fi
                    not_up+=("$node")
                    ;;
                *) not_up+=("$node") ;;
            esac
        done
        [ "${#not_up[@]}" -gt 0 ] || break
        for node in "${NODES[@]}"; do
            [ -n "$(daemon_pids slurmd "$node")" ] || fail_with_logs "slurmd $node exited (node states:$summary)"
        done
        [ -n "$(daemon_pids slurmctld)" ] || fail_with_logs "slurmctld exited (node states:$summary)"
        [ "$SECONDS" -lt "$deadline" ] \
            || fail_with_logs "node(s) ${not_up[*]} not up within ${WAIT_S}s (states:$summary)"
        sleep 0.2
    done
    log "ok: nodes up:$summary (partition $PARTITION; $(elapsed "$t") s)"
}

# ----------------------------------------------------------------------------------------------------------------
mkdir -p "$STATE_DIR"
# One run at a time: the others wait for it, then find everything up.
if command -v flock >/dev/null 2>&1; then
    exec 9>"$STATE_DIR/setup.lock"
    flock -w 300 9 || die "another setup-slurm.sh still holds $STATE_DIR/setup.lock after 5 min"
fi
export SLURM_CONF="$CONF"

ensure_packages
ensure_munge
write_conf
write_env
ensure_daemons
wait_for_nodes
log "ok: slurm settings in $ENV_FILE (SLURM_CONF=$CONF)"
log "done in $(elapsed "$T0") s"
