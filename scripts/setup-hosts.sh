#!/usr/bin/env bash
# Start N SSH-reachable test hosts for Ansible (default 3, at most 8), idempotently. A second run with
# everything up only checks the hosts (well under a second).
#
#   bash scripts/setup-hosts.sh [N]
#
# Each host is a network namespace mdg-h<i> on the bridge mdg-br0 (10.231.0.1/24 in the root namespace) with
# the address 10.231.0.<10+i>, its own UTS namespace (hostname mdg-h<i>) and its own mount namespace in which
# /etc/hosts and /etc/hostname are per host (so fact gathering never waits on DNS) and /sys shows the host's
# own interfaces. One sshd per host listens on <ip>:22 (key auth only, root login with the key).
# The root-side end of host i's veth pair is mdg-h<i>-v: `ip link set mdg-h<i>-v down` cuts the host off
# (tests/fleet/conftest.py host_down()/host_up() do that).
#
# The hosts share everything else with this machine: the filesystem (/tmp, /root, the repo, its .venv) and the
# Docker engine of the root namespace (through /var/run/docker.sock). They have no route out: a FORWARD rule
# rejects new connections from the bridge to anywhere but the bridge, so nothing stalls on the outside world.
#
# Written under the state directory:
#   inventory.ini   group [madengine_gpu] with the N hosts
#   ansible.cfg     export ANSIBLE_CONFIG=<dir>/ansible.cfg (it names the inventory)
#   keys/           the client key pair id_ed25519(.pub) and the host keys
#   run/            sshd configs, pid files and logs; cp/ ansible's ControlPersist sockets; rtmp/ remote tmp dirs
#
# Environment:
#   MADENGINE_HOSTS_DIR     state directory (default /var/tmp/madengine-hosts)
#   MADENGINE_HOSTS_PYTHON  ansible_python_interpreter of the hosts (default: the repo's .venv/bin/python)
#   MADENGINE_HOSTS_WAIT    seconds to wait for the sshds (default 30)
#
# Stop everything with scripts/teardown-hosts.sh.
set -euo pipefail

readonly MAX_HOSTS=8
readonly BRIDGE=mdg-br0
readonly NET=10.231.0
readonly PREFIX=mdg-h
readonly STATE_DIR="${MADENGINE_HOSTS_DIR:-/var/tmp/madengine-hosts}"
readonly WAIT_S="${MADENGINE_HOSTS_WAIT:-30}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly REPO_ROOT
readonly KEY_DIR="$STATE_DIR/keys" RUN_DIR="$STATE_DIR/run" ETC_DIR="$STATE_DIR/etc"
readonly CLIENT_KEY="$KEY_DIR/id_ed25519"
readonly AUTH_KEYS="$KEY_DIR/authorized_keys"
readonly INIT_SCRIPT="$RUN_DIR/host-init.sh"

T0=$EPOCHREALTIME

# shellcheck source=scripts/lib.sh
. "$REPO_ROOT/scripts/lib.sh"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

N=3
case "${1:-}" in
    -h | --help) usage; exit 0 ;;
    "") ;;
    *)
        [[ "$1" =~ ^[1-9][0-9]*$ ]] || die "N must be a number from 1 to $MAX_HOSTS, not '$1'"
        N=$1
        ;;
esac
[ "$#" -le 1 ] || die "usage: $0 [N]"
[ "$N" -le "$MAX_HOSTS" ] || die "at most $MAX_HOSTS hosts (asked for $N)"
[ "$(id -u)" -eq 0 ] || die "run this script as root (it creates network namespaces)"
# The ControlPersist socket (cp/<ip>-22-root plus ansible's random suffix) must fit in a 108-byte unix socket path.
[ "${#STATE_DIR}" -le 60 ] || die "MADENGINE_HOSTS_DIR is too long for ssh control sockets (at most 60 characters)"

PYTHON="${MADENGINE_HOSTS_PYTHON:-$REPO_ROOT/.venv/bin/python}"
if [ ! -x "$PYTHON" ]; then
    [ -z "${MADENGINE_HOSTS_PYTHON:-}" ] || die "MADENGINE_HOSTS_PYTHON=$PYTHON is not executable"
    PYTHON=$(command -v python3 || true)
    [ -n "$PYTHON" ] || die "no $REPO_ROOT/.venv/bin/python and no python3 for the hosts"
    log "warning: no $REPO_ROOT/.venv/bin/python; the hosts use $PYTHON"
fi
readonly PYTHON

host_name() { echo "$PREFIX$1"; }
host_ip() { echo "$NET.$((10 + $1))"; }
host_veth() { echo "$PREFIX$1-v"; }
# Fixed MAC addresses (locally administered 02:6d:64:67:...): a host that is rebuilt keeps its MAC, so the
# neighbour (ARP) entries that the root namespace and the other hosts cached stay right. With random MACs a
# rebuilt host is unreachable until those entries expire (~30 s). The bridge's own MAC is fixed for the same
# reason (a bridge otherwise takes the lowest MAC of its ports, which changes when a port is recreated).
readonly BRIDGE_MAC=02:6d:64:67:00:01
host_mac() { printf '02:6d:64:67:01:%02x' "$1"; }
veth_mac() { printf '02:6d:64:67:02:%02x' "$1"; }

# ----------------------------------------------------------------------------------------------------------------
# packages (apt only when something is missing)
# ----------------------------------------------------------------------------------------------------------------
ensure_packages() {
    local -a missing=()
    [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
    command -v ssh >/dev/null 2>&1 && command -v ssh-keygen >/dev/null 2>&1 || missing+=(openssh-client)
    command -v ip >/dev/null 2>&1 || missing+=(iproute2)
    command -v iptables >/dev/null 2>&1 || missing+=(iptables)
    command -v nsenter >/dev/null 2>&1 && command -v unshare >/dev/null 2>&1 || missing+=(util-linux)
    [ "${#missing[@]}" -eq 0 ] && return
    install_packages --no-install-recommends "${missing[@]}"
}

# ----------------------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------------------
write_if_changed() { # $1 = path, content on stdin; in place (same inode: bind mounts of the file see the change)
    local new
    new=$(cat)
    if [ -f "$1" ] && [ "$(cat "$1")" = "$new" ]; then
        return 1
    fi
    printf '%s\n' "$new" >"$1"
}

netns_inode() { stat -L -c %i "/run/netns/$1" 2>/dev/null; }

sshd_pid() { # pid of host $1's sshd when it runs in the netns called $1, else nothing
    local name=$1 pid ino
    pid=$(cat "$RUN_DIR/sshd_$name.pid" 2>/dev/null || true)
    [[ "$pid" =~ ^[0-9]+$ ]] || return 0
    ino=$(netns_inode "$name") || return 0
    [ "$(readlink "/proc/$pid/ns/net" 2>/dev/null)" = "net:[$ino]" ] || return 0
    local cmdline
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
    [[ "$cmdline" == *"sshd_config_$name"* ]] || return 0
    echo "$pid"
}

ssh_host() { # $1 = ip, rest = command; no ControlMaster, no known_hosts
    local ip=$1; shift
    ssh -F /dev/null -i "$CLIENT_KEY" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
        -o LogLevel=ERROR -o ConnectTimeout=3 -o ControlMaster=no -o ControlPath=none "root@$ip" "$@" </dev/null
}

host_answers() { # $1 = index: ssh works and the host says its own name
    local out
    out=$(ssh_host "$(host_ip "$1")" hostname 2>/dev/null) || return 1
    [ "$out" = "$(host_name "$1")" ]
}

sshd_greets() { # $1 = index: the sshd answers with its banner (no handshake: much cheaper than ssh)
    # shellcheck disable=SC2016
    timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/22" && read -r -t 2 line <&3 && [[ "$line" == SSH-2.0-* ]]' \
        "$(host_ip "$1")" 2>/dev/null
}

remove_host() { # $1 = index: stop the sshd (and its sessions), delete the netns and the veth
    local name veth ino
    name=$(host_name "$1"); veth=$(host_veth "$1")
    ino=$(netns_inode "$name" || true)
    if [ -z "$ino" ] && [ -f "$RUN_DIR/$name.netns" ]; then
        ino=$(cat "$RUN_DIR/$name.netns")   # a namespace that was deleted by name but lingers
    fi
    if [ -n "$ino" ]; then
        # shellcheck disable=SC2046
        kill_pids $(pids_in_netns "$ino")
    fi
    if [ -e "/run/netns/$name" ]; then ip netns del "$name" 2>/dev/null || true; fi
    # Deleting one end of a veth pair deletes both, even when the old namespace lingers.
    ip link del "$veth" 2>/dev/null || true
    rm -f "$RUN_DIR/sshd_$name.pid" "$RUN_DIR/$name.netns"
}

# ----------------------------------------------------------------------------------------------------------------
# 1. packages, state directory, keys
# ----------------------------------------------------------------------------------------------------------------
mkdir -p "$STATE_DIR"
exec 9>"$STATE_DIR/.lock"
flock -w 120 9 || die "another setup-hosts.sh/teardown-hosts.sh holds $STATE_DIR/.lock"
ensure_packages
mkdir -p "$KEY_DIR" "$RUN_DIR" "$ETC_DIR" "$STATE_DIR/cp" "$STATE_DIR/tmp" "$STATE_DIR/rtmp"
chmod 700 "$KEY_DIR" "$STATE_DIR/cp"

[ -f "$CLIENT_KEY" ] || ssh-keygen -q -t ed25519 -N '' -C madengine-test-hosts -f "$CLIENT_KEY"
cp "$CLIENT_KEY.pub" "$AUTH_KEYS.new" && chmod 600 "$AUTH_KEYS.new" && mv "$AUTH_KEYS.new" "$AUTH_KEYS"
mkdir -p /run/sshd && chmod 0755 /run/sshd   # sshd's privilege separation directory

# Runs inside a fresh UTS + mount namespace in the host's netns, then becomes the host's sshd.
write_if_changed "$INIT_SCRIPT" <<'INIT' || true
#!/bin/sh
# host-init.sh NAME STATE_DIR (written by scripts/setup-hosts.sh): runs in the host's own network, UTS and mount
# namespace (a slave of the machine's: later mounts out there show up here, mounts made here stay here) and
# execs the host's sshd.
set -e
name=$1; dir=$2
hostname "$name"
# This mount namespace is a copy: drop the copies of namespace handles (ip netns' /run/netns/*, docker's
# /run/docker/netns/*). Kept, they would keep the other hosts' and containers' namespaces alive after deletion.
awk '{ for (i = 7; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "nsfs") print $5; break } }' /proc/self/mountinfo \
    | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
# /sys for this netns (its own /sys/class/net), keeping the cgroup tree.
cg="$dir/run/cg-$name"; mkdir -p "$cg"
mount --rbind /sys/fs/cgroup "$cg"
mount -t sysfs sysfs /sys
mount --rbind "$cg" /sys/fs/cgroup
umount -l "$cg"; rmdir "$cg" 2>/dev/null || true
mount --bind "$dir/etc/hosts-$name" /etc/hosts
[ ! -f /etc/hostname ] || mount --bind "$dir/etc/hostname-$name" /etc/hostname
exec /usr/sbin/sshd -f "$dir/run/sshd_config_$name" -E "$dir/run/sshd_$name.log"
INIT

# ----------------------------------------------------------------------------------------------------------------
# 2. bridge and firewall
# ----------------------------------------------------------------------------------------------------------------
# The /24 must be ours: no route or address for it on another device.
other_route=$(ip -4 route show to match "$NET.1" | awk -v br="$BRIDGE" '$1 != "default" && $0 !~ (" dev " br "( |$)")')
[ -z "$other_route" ] || die "$NET.0/24 collides with an existing route: $other_route"
other_addr=$(ip -4 -o addr show | awk -v br="$BRIDGE" -v net="$NET." '$2 != br && index($4, net) == 1 { print $2, $4 }')
[ -z "$other_addr" ] || die "$NET.0/24 is already used by $other_addr"

if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" address "$BRIDGE_MAC" type bridge
    log "ok: bridge $BRIDGE created"
fi
br_info=$(ip -o link show "$BRIDGE")
[[ "$br_info" == *"link/ether $BRIDGE_MAC "* ]] || ip link set "$BRIDGE" address "$BRIDGE_MAC"
br_addrs=$(ip -4 -o addr show dev "$BRIDGE")
[[ "$br_addrs" == *"inet $NET.1/24 "* ]] || ip addr add "$NET.1/24" dev "$BRIDGE"
ip link set "$BRIDGE" up

# dockerd sets the FORWARD policy to DROP and bridge-nf-call-iptables=1: host <-> host traffic over the bridge
# must be accepted explicitly. New connections from the hosts to anywhere else are rejected at once (no NAT, no
# internet: a DNS query would otherwise wait for its timeout).
ensure_rule() { iptables -C FORWARD "$@" 2>/dev/null || iptables -I FORWARD "$@"; }
ensure_rule -i "$BRIDGE" ! -o "$BRIDGE" -m conntrack --ctstate NEW -j REJECT --reject-with icmp-net-unreachable
ensure_rule -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT   # inserted last: it ends up first

# ----------------------------------------------------------------------------------------------------------------
# 3. hosts
# ----------------------------------------------------------------------------------------------------------------
hosts_file() { # $1 = index of the host the file is for
    local i
    echo "127.0.0.1 localhost"
    echo "::1 localhost ip6-localhost ip6-loopback"
    echo "$(host_ip "$1") $(host_name "$1")"
    for i in $(seq 1 "$N"); do
        [ "$i" = "$1" ] || echo "$(host_ip "$i") $(host_name "$i")"
    done
    echo "$NET.1 mdg-controller"
}

sshd_config() { # $1 = index
    local name ip
    name=$(host_name "$1"); ip=$(host_ip "$1")
    cat <<CFG
# $name (written by scripts/setup-hosts.sh)
ListenAddress $ip
Port 22
HostKey $KEY_DIR/ssh_host_ed25519_key_$name
PidFile $RUN_DIR/sshd_$name.pid
AuthorizedKeysFile $AUTH_KEYS
PubkeyAuthentication yes
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
PrintLastLog no
AcceptEnv LANG LC_*
Subsystem sftp internal-sftp
MaxStartups 100:30:200
MaxSessions 100
LoginGraceTime 30
ClientAliveInterval 15
ClientAliveCountMax 4
CFG
}

start_host() { # $1 = index: (re)create the namespace, the veth pair and the sshd
    local i=$1 name ip veth ino
    name=$(host_name "$i"); ip=$(host_ip "$i"); veth=$(host_veth "$i")
    remove_host "$i"
    ip netns add "$name"
    ino=$(netns_inode "$name"); echo "$ino" >"$RUN_DIR/$name.netns"
    ip link add "$veth" address "$(veth_mac "$i")" type veth peer name eth0 address "$(host_mac "$i")" netns "$name"
    ip link set "$veth" master "$BRIDGE" up
    ip -n "$name" addr add "$ip/24" dev eth0
    ip -n "$name" link set eth0 up
    ip -n "$name" link set lo up
    ip -n "$name" route add default via "$NET.1"
    ip neigh flush to "$ip" dev "$BRIDGE" 2>/dev/null || true
    [ -f "$KEY_DIR/ssh_host_ed25519_key_$name" ] \
        || ssh-keygen -q -t ed25519 -N '' -C "$name" -f "$KEY_DIR/ssh_host_ed25519_key_$name"
    /usr/sbin/sshd -t -f "$RUN_DIR/sshd_config_$name" || die "bad sshd config $RUN_DIR/sshd_config_$name"
    : >"$RUN_DIR/sshd_$name.log"
    # sshd daemonizes: nsenter returns once it has forked. All output is redirected so that no caller's pipe
    # (pytest's capture) is held open by the daemon.
    nsenter --net="/run/netns/$name" -- unshare --uts --mount --propagation slave -- \
        sh "$INIT_SCRIPT" "$name" "$STATE_DIR" </dev/null >>"$RUN_DIR/sshd_$name.log" 2>&1 \
        || die "could not start the sshd of $name (log: $RUN_DIR/sshd_$name.log)"
}

declare -a started=() checked=()
for i in $(seq 1 "$N"); do
    name=$(host_name "$i")
    printf '%s\n' "$name" | write_if_changed "$ETC_DIR/hostname-$name" || true
    hosts_file "$i" | write_if_changed "$ETC_DIR/hosts-$name" || true   # in place: a running host sees it
    config_changed=0
    sshd_config "$i" | write_if_changed "$RUN_DIR/sshd_config_$name" && config_changed=1
    veth=$(host_veth "$i")
    veth_info=$(ip -o link show "$veth" 2>/dev/null || true)
    if [ "$config_changed" = 0 ] && [ -n "$(sshd_pid "$name")" ] && [[ "$veth_info" == *" master $BRIDGE "* ]]; then
        ip link set "$veth" up   # a host left cut off by host_down() comes back
        checked+=("$i")
    else
        start_host "$i"
        started+=("$i")
    fi
done

# Hosts beyond N from an earlier, larger setup go away.
for i in $(seq $((N + 1)) "$MAX_HOSTS"); do
    name=$(host_name "$i")
    if [ -e "/run/netns/$name" ] || [ -f "$RUN_DIR/$name.netns" ] || ip link show "$(host_veth "$i")" >/dev/null 2>&1; then
        remove_host "$i"
        rm -f "$ETC_DIR/hosts-$name" "$ETC_DIR/hostname-$name" "$RUN_DIR/sshd_config_$name"
        log "ok: removed $name"
    fi
done

wait_hosts() { # indexes; waits until each answers over ssh, in parallel; prints the ones that never did
    local deadline=$((SECONDS + WAIT_S)) i k
    local -a pending=("$@") pids=() left=()
    while :; do
        pids=(); left=()
        for i in "${pending[@]}"; do host_answers "$i" & pids+=($!); done
        for k in "${!pids[@]}"; do wait "${pids[$k]}" || left+=("${pending[$k]}"); done
        pending=("${left[@]+"${left[@]}"}")
        if [ "${#pending[@]}" -eq 0 ] || [ "$SECONDS" -ge "$deadline" ]; then break; fi
        sleep 0.2
    done
    echo "${pending[@]+"${pending[@]}"}"
}

# Running hosts (their sshd runs in their netns with today's config) are checked once, quickly; one that does not
# greet is restarted. Hosts started now are waited for with a real ssh login below.
if [ "${#checked[@]}" -gt 0 ]; then
    declare -a pids=()
    for i in "${checked[@]}"; do sshd_greets "$i" & pids+=($!); done
    for k in "${!pids[@]}"; do
        if ! wait "${pids[$k]}"; then
            i=${checked[$k]}
            log "warning: $(host_name "$i") did not answer; restarting it"
            start_host "$i"
            started+=("$i")
        fi
    done
fi
if [ "${#started[@]}" -gt 0 ]; then
    failed=$(wait_hosts "${started[@]}")
    for i in $failed; do
        name=$(host_name "$i")
        printf 'error: %s (%s) did not answer over ssh within %s s; sshd log:\n' "$name" "$(host_ip "$i")" "$WAIT_S" >&2
        tail -n 5 "$RUN_DIR/sshd_$name.log" >&2 || true
    done
    [ -z "$failed" ] || exit 1
fi

# ----------------------------------------------------------------------------------------------------------------
# 4. inventory and ansible.cfg
# ----------------------------------------------------------------------------------------------------------------
{
    echo "# Written by scripts/setup-hosts.sh: $N test hosts in network namespaces. Do not edit."
    echo "[madengine_gpu]"
    for i in $(seq 1 "$N"); do
        name=$(host_name "$i")
        mkdir -p "$STATE_DIR/rtmp/$name"
        echo "$name ansible_host=$(host_ip "$i") ansible_remote_tmp=$STATE_DIR/rtmp/$name"
    done
    echo
    echo "[madengine_gpu:vars]"
    echo "ansible_user=root"
    echo "ansible_port=22"
    echo "ansible_ssh_private_key_file=$CLIENT_KEY"
    echo "ansible_python_interpreter=$PYTHON"
} | write_if_changed "$STATE_DIR/inventory.ini" || true

# control_path is explicit (<ip>-<port>-<user>) so that host_down() can close one host's master connection.
# ServerAlive: a connection to a host that was cut off mid-run fails after ~15 s instead of hanging.
write_if_changed "$STATE_DIR/ansible.cfg" <<CFG || true
# Written by scripts/setup-hosts.sh. Use it with: export ANSIBLE_CONFIG=$STATE_DIR/ansible.cfg
[defaults]
inventory = $STATE_DIR/inventory.ini
collections_path = $REPO_ROOT/collections:~/.ansible/collections:/usr/share/ansible/collections
host_key_checking = False
forks = 8
interpreter_python = auto_silent
retry_files_enabled = False
local_tmp = $STATE_DIR/tmp

[ssh_connection]
pipelining = True
ssh_args = -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no -o LogLevel=ERROR -o ServerAliveInterval=5 -o ServerAliveCountMax=3
control_path_dir = $STATE_DIR/cp
control_path = %(directory)s/%%h-%%p-%%r
CFG

if [ "${#started[@]}" -gt 0 ]; then
    log "ok: $N hosts up ($(for i in "${started[@]}"; do printf '%s ' "$(host_name "$i")"; done)started) in $(elapsed "$T0") s"
else
    log "ok: $N hosts already up ($(elapsed "$T0") s)"
fi
log "  inventory:  $STATE_DIR/inventory.ini"
log "  config:     export ANSIBLE_CONFIG=$STATE_DIR/ansible.cfg"
