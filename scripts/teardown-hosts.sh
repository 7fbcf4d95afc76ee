#!/usr/bin/env bash
# Stop the SSH test hosts of scripts/setup-hosts.sh, idempotently: close ansible's ControlPersist master
# connections, kill every process in the hosts' network namespaces (the sshds and their sessions), delete the
# namespaces, the veth pairs, the bridge mdg-br0 and its FORWARD rules.
#   --purge   also delete the state directory (keys, inventory.ini, ansible.cfg, logs)
#
# Environment: MADENGINE_HOSTS_DIR  state directory (default /var/tmp/madengine-hosts)
set -euo pipefail

readonly MAX_HOSTS=8
readonly BRIDGE=mdg-br0
readonly PREFIX=mdg-h
readonly STATE_DIR="${MADENGINE_HOSTS_DIR:-/var/tmp/madengine-hosts}"
readonly RUN_DIR="$STATE_DIR/run"

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

purge=0
for arg in "$@"; do
    case "$arg" in
        --purge) purge=1 ;;
        -h | --help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument $arg" ;;
    esac
done
[ "$(id -u)" -eq 0 ] || die "run this script as root"

if [ -d "$STATE_DIR" ]; then
    exec 9>"$STATE_DIR/.lock"
    flock -w 120 9 || die "another setup-hosts.sh/teardown-hosts.sh holds $STATE_DIR/.lock"
fi

# 1. ansible's ControlPersist masters. Left open, they keep sessions (and so the namespaces) alive for 60 s.
masters=0
if [ -d "$STATE_DIR/cp" ]; then
    for sock in "$STATE_DIR"/cp/*; do
        [ -S "$sock" ] || continue
        timeout 5 ssh -o ControlPath="$sock" -O exit mdg-host >/dev/null 2>&1 || true
        rm -f "$sock"
        masters=$((masters + 1))
    done
fi

# 2. the hosts: every index that has a namespace, a veth, or a recorded (maybe lingering) namespace.
declare -A names=()
for i in $(seq 1 "$MAX_HOSTS"); do names["$PREFIX$i"]=1; done
while read -r ns _; do
    [[ "$ns" =~ ^${PREFIX}[0-9]+$ ]] && names["$ns"]=1
done < <(ip netns list 2>/dev/null || true)

removed=()
for name in $(printf "%s\n" "${!names[@]}" | sort -V); do
    veth="$name-v"
    inodes=()
    [ -e "/run/netns/$name" ] && inodes+=("$(stat -L -c %i "/run/netns/$name")")
    if [ -f "$RUN_DIR/$name.netns" ]; then
        saved=$(cat "$RUN_DIR/$name.netns")
        [[ " ${inodes[*]+"${inodes[*]}"} " == *" $saved "* ]] || inodes+=("$saved")
    fi
    had_link=0
    ip link show "$veth" >/dev/null 2>&1 && had_link=1
    [ "${#inodes[@]}" -gt 0 ] || [ "$had_link" = 1 ] || continue
    for ino in "${inodes[@]+"${inodes[@]}"}"; do
        # shellcheck disable=SC2046
        kill_pids $(pids_in_netns "$ino")
    done
    if [ -e "/run/netns/$name" ]; then ip netns del "$name" 2>/dev/null || true; fi
    # One end of a veth pair takes the other with it, even when the namespace still lingers.
    ip link del "$veth" 2>/dev/null || true
    rm -f "$RUN_DIR/sshd_$name.pid" "$RUN_DIR/$name.netns"
    removed+=("$name")
done

# A namespace handle mounted into some other process's mount namespace keeps the namespace alive (harmless once
# its veth is gone, but say so).
if [ "${#removed[@]}" -gt 0 ]; then
    for mi in /proc/[0-9]*/mountinfo; do
        if grep -qE " /run/netns/${PREFIX}[0-9]+ " "$mi" 2>/dev/null; then
            pid=${mi#/proc/}; pid=${pid%%/*}
            [ "$pid" = "$$" ] && continue
            log "warning: process $pid ($(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-60)) has a copy" \
                "of a /run/netns/${PREFIX}* mount; that namespace lingers until it exits"
        fi
    done
fi

# 3. bridge and firewall rules
bridge_gone=0
if ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link del "$BRIDGE"
    bridge_gone=1
fi
rules=0
for rule in "-i $BRIDGE -o $BRIDGE -j ACCEPT" \
        "-i $BRIDGE ! -o $BRIDGE -m conntrack --ctstate NEW -j REJECT --reject-with icmp-net-unreachable"; do
    # shellcheck disable=SC2086
    while iptables -C FORWARD $rule 2>/dev/null; do
        # shellcheck disable=SC2086
        iptables -D FORWARD $rule
        rules=$((rules + 1))
    done
done

if [ "${#removed[@]}" -gt 0 ] || [ "$bridge_gone" = 1 ] || [ "$rules" -gt 0 ] || [ "$masters" -gt 0 ]; then
    log "ok: removed ${#removed[@]} host(s)${removed[*]:+ (${removed[*]})}, $masters ssh master(s)," \
        "$([ "$bridge_gone" = 1 ] && echo "bridge $BRIDGE" || echo "no bridge"), $rules FORWARD rule(s)"
else
    log "ok: no test hosts were up"
fi

if [ "$purge" = 1 ] && [ -d "$STATE_DIR" ]; then
    rm -rf -- "$STATE_DIR"
    log "ok: deleted $STATE_DIR"
fi
