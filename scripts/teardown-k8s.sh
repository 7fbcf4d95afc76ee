#!/usr/bin/env bash
# Stop the single-node Kubernetes cluster of scripts/setup-k8s.sh, each daemon by the pid it recorded:
#   kubelet, then every pod container (killed and removed through the private containerd, leftover shims killed),
#   containerd, kube-scheduler, kube-controller-manager, kube-apiserver, etcd. Then the mounts under the kubelet's
#   root dir and containerd's directories are unmounted, the CNI bridge mdgk8s0 and its IP allocations removed, and
#   the kubelet's KUBE-* iptables chains deleted. The PKI, kubeconfig, etcd data (the cluster's objects) and the
#   binaries in /var/cache/madengine-k8s are kept: setup-k8s.sh starts the same cluster again.
#   --purge   also delete the state directory (PKI, etcd data, images, logs)
#
# Environment: MADENGINE_K8S_DIR   state directory (default /var/tmp/madengine-k8s)
set -euo pipefail

readonly STATE_DIR="${MADENGINE_K8S_DIR:-/var/tmp/madengine-k8s}"
readonly RUN_DIR="$STATE_DIR/run"
readonly CTRD_DIR="$STATE_DIR/containerd"
readonly CTRD_SOCK="$CTRD_DIR/containerd.sock"
readonly KUBELET_DIR="$STATE_DIR/kubelet"
readonly CNI_IPAM_DIR="$STATE_DIR/cni/ipam"
readonly CNI_NETWORK=madengine-k8s
readonly CNI_BRIDGE=mdgk8s0

T0=$EPOCHREALTIME

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

purge=0
for arg in "$@"; do
    case "$arg" in
        --purge) purge=1 ;;
        -h | --help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) printf 'error: unknown argument %s\n' "$arg" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" -eq 0 ] || die "run this script as root (the cluster's daemons run as root)"

proc_pid() { # $1 = name: the pid recorded for our daemon, when that process still runs it (same check as setup)
    recorded_pid "$RUN_DIR/$1.pid" "$1" "$STATE_DIR"
}

stop_daemon() { # $1 = name; TERM, then KILL after 2 s (kill_pids)
    local pid t=$EPOCHREALTIME
    if pid=$(proc_pid "$1"); then
        kill_pids "$pid"
        # kill_pids gives up after sending KILL; make sure it is gone before the next one stops.
        for _ in $(seq 50); do running "$pid" || break; sleep 0.1; done
        log "ok: $1 (pid $pid) stopped ($(elapsed "$t") s)"
    else
        log "ok: $1 not running"
    fi
    rm -f "$RUN_DIR/$1.pid"
}

ctr_k8s() { timeout 30 ctr -a "$CTRD_SOCK" -n k8s.io "$@"; }

remove_pod_containers() { # through the private containerd, while it still runs
    if ! proc_pid containerd >/dev/null || ! ctr_k8s version >/dev/null 2>&1; then
        return 0
    fi
    local -a tasks containers
    local id t=$EPOCHREALTIME
    mapfile -t tasks < <(ctr_k8s tasks ls -q 2>/dev/null || true)
    for id in "${tasks[@]+"${tasks[@]}"}"; do
        ctr_k8s tasks kill -a -s SIGKILL "$id" >/dev/null 2>&1 || true
    done
    for id in "${tasks[@]+"${tasks[@]}"}"; do
        ctr_k8s tasks rm -f "$id" >/dev/null 2>&1 || true
    done
    mapfile -t containers < <(ctr_k8s containers ls -q 2>/dev/null || true)
    for id in "${containers[@]+"${containers[@]}"}"; do
        ctr_k8s containers rm "$id" >/dev/null 2>&1 || true
    done
    if [ "${#tasks[@]}" -gt 0 ] || [ "${#containers[@]}" -gt 0 ]; then
        log "ok: killed ${#tasks[@]} running task(s), removed ${#containers[@]} container(s) ($(elapsed "$t") s)"
    else
        log "ok: no pod containers"
    fi
}

kill_leftover_shims() { # shims of our containerd (their command line names its socket), and what runs under them
    local dir comm cmdline
    local -a pids=()
    for dir in /proc/[0-9]*; do
        read -r comm 2>/dev/null <"$dir/comm" || continue
        [[ "$comm" == containerd-shim* ]] || continue
        cmdline=$(tr '\0' ' ' <"$dir/cmdline" 2>/dev/null) || continue
        [[ "$cmdline" == *" -address $CTRD_SOCK "* || "$cmdline" == *" -address $CTRD_SOCK" ]] || continue
        pids+=("${dir#/proc/}")
    done
    [ "${#pids[@]}" -gt 0 ] || return 0
    local pid child
    local -a all=("${pids[@]}") children
    for pid in "${pids[@]}"; do # the containers' processes are the shims' children
        read -r -a children 2>/dev/null < <(cat "/proc/$pid/task/"*/children 2>/dev/null) || true
        for child in "${children[@]+"${children[@]}"}"; do all+=("$child"); done
    done
    kill -9 "${all[@]}" 2>/dev/null || true
    log "ok: killed ${#pids[@]} leftover containerd shim(s) and their containers"
}

unmount_under() { # $@ = directories: unmount everything mounted on or below them, deepest first
    local -a mounts=()
    local dir mnt
    for dir in "$@"; do
        # (the kubelet bind-mounts its root dir onto itself, to make it a shared mount)
        while read -r mnt; do mounts+=("$mnt"); done < <(
            awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sed 's/\\040/ /g'
        )
    done
    [ "${#mounts[@]}" -gt 0 ] || return 0
    local n=0
    while read -r mnt; do
        umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
        n=$((n + 1))
    done < <(printf '%s\n' "${mounts[@]}" | awk '{ print length($0) "\t" $0 }' | sort -rn | cut -f2-)
    log "ok: unmounted $n mount(s) under $*"
}

remove_kube_chains() { # the kubelet's KUBE-* chains (KUBE-FIREWALL, KUBE-MARK-*, KUBE-KUBELET-CANARY, ...)
    local tool table rule chain n=0
    local -a args
    for tool in iptables ip6tables; do
        command -v "$tool" >/dev/null 2>&1 || continue
        for table in filter nat mangle; do
            "$tool" -w -t "$table" -S >/dev/null 2>&1 || continue
            # rules that jump to a KUBE-* chain, from any chain, then the chains themselves
            while read -r rule; do
                # iptables' own -S output, with "quoted" comments: let the shell split it the same way
                eval "args=(${rule#-A })"
                "$tool" -w -t "$table" -D "${args[@]}" 2>/dev/null || true
            done < <("$tool" -w -t "$table" -S 2>/dev/null | grep -E '^-A .* -j KUBE-' || true)
            while read -r chain; do
                "$tool" -w -t "$table" -F "$chain" 2>/dev/null || true
            done < <("$tool" -w -t "$table" -S 2>/dev/null | awk '/^-N KUBE-/ { print $2 }')
            while read -r chain; do
                "$tool" -w -t "$table" -X "$chain" 2>/dev/null && n=$((n + 1))
            done < <("$tool" -w -t "$table" -S 2>/dev/null | awk '/^-N KUBE-/ { print $2 }')
        done
    done
    [ "$n" = 0 ] || log "ok: removed $n KUBE-* iptables chain(s)"
}

stop_daemon kubelet
remove_pod_containers
stop_daemon containerd
kill_leftover_shims
stop_daemon kube-scheduler
stop_daemon kube-controller-manager
stop_daemon kube-apiserver
stop_daemon etcd

unmount_under "$KUBELET_DIR" "$CTRD_DIR"
if ip link show "$CNI_BRIDGE" >/dev/null 2>&1; then
    ip link delete "$CNI_BRIDGE" && log "ok: removed the CNI bridge $CNI_BRIDGE"
fi
# IP allocations of the pods just killed, and libcni's cached results for them
rm -rf "${CNI_IPAM_DIR:?}/$CNI_NETWORK"
rm -f /var/lib/cni/results/"$CNI_NETWORK"-* 2>/dev/null || true
remove_kube_chains
rm -f "$CTRD_SOCK" "$CTRD_SOCK.ttrpc"

if [ "$purge" = 1 ] && [ -d "$STATE_DIR" ]; then
    if awk -v d="$STATE_DIR/" 'index($5, d) == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
        die "something is still mounted under $STATE_DIR; not deleting it"
    fi
    rm -rf "$STATE_DIR"
    log "ok: removed $STATE_DIR"
fi
log "done in $(elapsed "$T0") s (binaries kept in ${MADENGINE_K8S_CACHE:-/var/cache/madengine-k8s})"
