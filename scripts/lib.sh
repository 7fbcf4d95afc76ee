# shellcheck shell=bash
# Helpers shared by the setup-*.sh and teardown-*.sh scripts; source it, do not run it.
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# A script that runs some commands through sudo sets SUDO=sudo before calling apt_get/install_packages.

log() { printf '%s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
elapsed() { # seconds since $1 (an $EPOCHREALTIME value), one decimal
    local now=$EPOCHREALTIME
    awk -v a="$1" -v b="$now" 'BEGIN { printf "%.1f", b - a }'
}

# ----------------------------------------------------------------------------------------------------------------
# packages
# ----------------------------------------------------------------------------------------------------------------
APT_LOG=/var/log/madengine-setup-apt.log
[ -w /var/log ] || APT_LOG="${TMPDIR:-/tmp}/madengine-setup-apt.log"

apt_get() { # non-interactive apt-get; output goes to $APT_LOG, its tail to stderr on failure
    local -a opts=(-qq)
    [ "$1" = install ] && opts+=(-y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
    if ! ${SUDO:-} env DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a NEEDRESTART_SUSPEND=1 \
            apt-get "${opts[@]}" "$@" >>"$APT_LOG" 2>&1; then
        tail -n 20 "$APT_LOG" >&2 || true
        return 1
    fi
}

pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

install_packages() { # [--no-install-recommends] package...: apt-get update + install, or die
    local -a flags=()
    if [ "${1:-}" = --no-install-recommends ]; then flags=("$1"); shift; fi
    command -v apt-get >/dev/null 2>&1 || die "missing packages ($*) and no apt-get to install them"
    local t=$EPOCHREALTIME
    log "installing packages: $*"
    apt_get update || die "apt-get update failed (log: $APT_LOG)"
    apt_get install "${flags[@]+"${flags[@]}"}" "$@" || die "apt-get install $* failed (log: $APT_LOG)"
    log "ok: installed $* ($(elapsed "$t") s)"
}

# ----------------------------------------------------------------------------------------------------------------
# processes
# ----------------------------------------------------------------------------------------------------------------
running() { # $1 = pid: alive and not a zombie (PID 1 here may take its time reaping daemons)
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [ -n "$stat" ] && [ "${stat:0:1}" != Z ]
}

recorded_pid() { # $1 = pid file, $2 = command name, $3 = a directory its command line names: prints the pid
    # recorded there when that process still runs it (a reused pid runs something else), or fails
    local pid comm cmdline
    pid=$(cat "$1" 2>/dev/null) || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] && running "$pid" || return 1
    read -r comm 2>/dev/null <"/proc/$pid/comm" || return 1
    [ "$comm" = "${2:0:15}" ] || return 1
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ "$cmdline" == *" "*"$3/"* ]] || return 1
    printf '%s\n' "$pid"
}

kill_pids() { # TERM, wait up to 2 s, then KILL
    [ "$#" -gt 0 ] || return 0
    kill "$@" 2>/dev/null || true
    local _ p alive
    for _ in $(seq 20); do
        alive=0
        for p in "$@"; do running "$p" && alive=1; done
        [ "$alive" = 0 ] && return 0
        sleep 0.1
    done
    kill -9 "$@" 2>/dev/null || true
}

pids_in_netns() { # $1 = netns inode: every process in that network namespace (named or not)
    local link pid
    find /proc/[0-9]*/ns/net -maxdepth 0 -lname "net:\\[$1\\]" 2>/dev/null | while read -r link; do
        pid=${link#/proc/}; echo "${pid%%/*}"
    done
}

pids_with_cmdline() { # $1 = command name, $2 = its exact command line (argv[0] without its directory)
    local comm dir
    local -a argv
    for dir in /proc/[0-9]*; do
        read -r comm 2>/dev/null < "$dir/comm" || continue
        [ "$comm" = "$1" ] || continue
        mapfile -d '' -t argv 2>/dev/null < "$dir/cmdline" || continue
        [ "${#argv[@]}" -gt 0 ] || continue   # a zombie has no command line
        argv[0]=${argv[0]##*/}
        [ "${argv[*]}" = "$2" ] && printf '%s\n' "${dir#/proc/}"
    done
    return 0
}

stop_cmdline() { # $1 = command name, $2 = command line; SIGTERM, then SIGKILL after 10 s; prints the pids it found
    local -a pids
    local _ pid
    mapfile -t pids < <(pids_with_cmdline "$1" "$2")
    [ "${#pids[@]}" -gt 0 ] || return 0
    printf '%s\n' "${pids[*]}"
    kill "${pids[@]}" 2>/dev/null || true
    for _ in $(seq 100); do
        mapfile -t pids < <(pids_with_cmdline "$1" "$2")
        [ "${#pids[@]}" -gt 0 ] || return 0
        sleep 0.1
    done
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
}

# ----------------------------------------------------------------------------------------------------------------
# SLURM (setup-slurm.sh and teardown-slurm.sh find their daemons by command line, so stale pid files do not matter)
# ----------------------------------------------------------------------------------------------------------------
slurm_daemon_cmdline() { # $1 = slurm.conf, $2 = slurmctld|slurmd, $3 = node (slurmd)
    if [ "$2" = slurmctld ]; then
        printf '%s\n' "slurmctld -f $1"
    else
        printf '%s\n' "slurmd -f $1 -N $3"
    fi
}

replace_if_changed() { # $1 = file, $2 = mode; content on stdin. Replaced in one step; returns 0 when it changed.
    local tmp="$1.tmp.$$"
    cat >"$tmp"
    chmod "$2" "$tmp"
    if [ -f "$1" ] && cmp -s "$tmp" "$1"; then
        rm -f "$tmp"
        return 1
    fi
    mv -f "$tmp" "$1"
}

new_password_file() { # $1 = file: 24 random bytes as hex, made once (0600); returns 0 when it was made now
    local made=1
    if [ ! -s "$1" ]; then
        (umask 077; od -An -tx1 -N24 /dev/urandom | tr -d ' \n' >"$1")
        made=0
    fi
    chmod 600 "$1"
    return "$made"
}

port_in_use() { (: <"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

require_free_port() { # $1 = port, $2 = what we are about to start there, $3 = what else may hold it (for the hint)
    port_in_use "$1" || return 0
    local owner=""
    command -v ss >/dev/null 2>&1 && owner=$(ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'users:.*' | head -n 1)
    die "cannot start $2: port $1 is already taken by another process${owner:+ ($owner)}; stop it (${3:+$3, or }another cluster using these ports) first"
}
