#!/usr/bin/env bash
# Build the Kubernetes server binaries for the test cluster once per machine, offline, from Debian 12's
# `kubernetes` source package (1.20.2 with its dependencies vendored), and cache them outside the repository:
#   $MADENGINE_K8S_CACHE (default /var/cache/madengine-k8s)/<source version>/bin/
#     kube-apiserver kube-controller-manager kube-scheduler kubelet etcd etcdctl
#     pause (+ pause.version): the sandbox binary, build/pause/linux/pause.c compiled with `gcc -static`
# Idempotent: a complete cache is reused and nothing is built (prints its path). The first build takes about
# 16 minutes on 2 cores and ~4 GB of scratch space (removed afterwards). A cache from before pause was part of it
# gets just pause added (the source package is downloaded and only pause.c is unpacked: a few seconds).
#   bash scripts/build-k8s.sh              # build if needed, print the bin directory
#   bash scripts/build-k8s.sh --print-bin  # the same, but stdout is the bin directory alone (progress on stderr)
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

print_bin=0
for arg in "$@"; do
    case "$arg" in
        --print-bin) print_bin=1 ;;
        -h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument $arg" ;;
    esac
done
# With --print-bin every message goes to stderr; the path alone is printed on stdout at the end.
if [ "$print_bin" = 1 ]; then exec 3>&1 1>&2; fi
finish() { # $1 = bin dir
    if [ "$print_bin" = 1 ]; then printf '%s\n' "$1" >&3; fi
    exit 0
}

CACHE="${MADENGINE_K8S_CACHE:-/var/cache/madengine-k8s}"
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet)
ETCD_BINARIES=(etcd etcdctl)

complete_in() { # $1 = bin dir: every binary there and executable
    local name
    for name in "${BINARIES[@]}" "${ETCD_BINARIES[@]}"; do
        [ -x "$1/$name" ] || return 1
    done
}

[ "$(id -u)" = 0 ] || die "build-k8s.sh needs root (apt-get, $CACHE)"

# One build at a time (a second caller waits, then finds the cache complete).
mkdir -p "$CACHE"
if command -v flock >/dev/null 2>&1; then
    exec 8>"$CACHE/.build.lock"
    flock -w 3600 8 || die "another build-k8s.sh still holds $CACHE/.build.lock after an hour"
fi

# The version of the source package decides the cache key: a Debian update rebuilds into a new directory.
WORK="$(mktemp -d "${TMPDIR:-/var/tmp}/madengine-k8s-build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
# deb-src entries and their package lists stay private to this build: the system's apt state is not touched.
mkdir -p "$WORK/apt" "$WORK/lists/partial"
sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources >"$WORK/apt/src.sources"
SRC_APT=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$WORK/apt" -o "Dir::State::Lists=$WORK/lists")
apt_get "${SRC_APT[@]}" update || die "apt-get update (deb-src) failed; see $APT_LOG"
VERSION="$(apt-cache "${SRC_APT[@]}" showsrc kubernetes | awk '/^Version:/ { print $2; exit }')"
[ -n "$VERSION" ] || die "Debian has no 'kubernetes' source package here"
# The recipe is part of the key too: bump it when the build changes (a cache of an older recipe is rebuilt).
#   r2: vendored github.com/modern-go/reflect2 1.0.1 replaced by Debian's 1.0.2; 1.0.1 built with Go >= 1.18 makes
#       the apiserver (and every other binary) die at random with "fatal error: fault" in mapiterinit.
readonly RECIPE=r2
BIN="$CACHE/$VERSION-$RECIPE/bin"

ensure_gcc() { # gcc and the static libc, for pause
    local -a missing=()
    command -v gcc >/dev/null 2>&1 || missing+=(gcc)
    [ -e /usr/lib/x86_64-linux-gnu/libc.a ] || ls /usr/lib/*/libc.a >/dev/null 2>&1 || missing+=(libc6-dev)
    [ "${#missing[@]}" -eq 0 ] || install_packages --no-install-recommends "${missing[@]}"
}

build_pause() { # $1 = source tree (at least build/pause/), $2 = output dir: pause and pause.version
    local tag
    tag=$(sed -n 's/^TAG[[:space:]]*?\{0,1\}=[[:space:]]*\([^[:space:]]*\).*/\1/p' "$1/build/pause/Makefile" 2>/dev/null | head -n 1)
    tag=${tag:-3.2}
    gcc -Os -Wall -static -DVERSION="v$tag-madengine" -o "$2/pause" "$1/build/pause/linux/pause.c" \
        || die "compiling pause.c failed"
    printf '%s\n' "$tag" >"$2/pause.version"
}

if complete_in "$BIN"; then
    if [ ! -x "$BIN/pause" ] || [ ! -s "$BIN/pause.version" ]; then
        # A cache from before pause was part of it: fetch the source package, unpack only the pause sources.
        t=$EPOCHREALTIME
        ensure_gcc
        (cd "$WORK" && apt-get "${SRC_APT[@]}" source --download-only -qq kubernetes >>"$APT_LOG" 2>&1) ||
            die "downloading the kubernetes source failed; see $APT_LOG"
        mkdir -p "$WORK/pause-src"
        for tarball in "$WORK"/kubernetes_*.orig*.tar.*; do
            tar -xf "$tarball" -C "$WORK/pause-src" --strip-components=1 --wildcards \
                '*/build/pause/linux/pause.c' '*/build/pause/Makefile' 2>/dev/null || true
        done
        [ -f "$WORK/pause-src/build/pause/linux/pause.c" ] || die "build/pause/linux/pause.c is not in the source package"
        mkdir -p "$WORK/pause-out"
        build_pause "$WORK/pause-src" "$WORK/pause-out"
        cp "$WORK/pause-out/pause.version" "$BIN/pause.version.partial"
        cp "$WORK/pause-out/pause" "$BIN/pause.partial"
        mv -f "$BIN/pause.version.partial" "$BIN/pause.version"
        mv -f "$BIN/pause.partial" "$BIN/pause"
        log "ok: pause $(cat "$BIN/pause.version") compiled and added to $BIN ($(elapsed "$t") s)"
    fi
    log "ok: Kubernetes $VERSION binaries cached in $BIN"
    finish "$BIN"
fi

started=$EPOCHREALTIME
log "building Kubernetes $VERSION (about 16 minutes the first time on a machine)"
install_packages --no-install-recommends golang-go rsync make dpkg-dev
ensure_gcc
(cd "$WORK" && apt-get "${SRC_APT[@]}" source --download-only -qq kubernetes >>"$APT_LOG" 2>&1) ||
    die "downloading the kubernetes source failed; see $APT_LOG"
(cd "$WORK" && dpkg-source -x --no-check kubernetes_*.dsc src >/dev/null) || die "unpacking the source failed"
# reflect2 1.0.2 (Go 1.18+ map iteration), from Debian's golang-github-modern-go-reflect2-dev, unpacked, not installed.
(cd "$WORK" && apt-get -qq download golang-github-modern-go-reflect2-dev >>"$APT_LOG" 2>&1) ||
    die "downloading golang-github-modern-go-reflect2-dev failed; see $APT_LOG"
dpkg-deb -x "$WORK"/golang-github-modern-go-reflect2-dev_*.deb "$WORK/reflect2"
REFLECT2_SRC="$WORK/reflect2/usr/share/gocode/src/github.com/modern-go/reflect2"
[ -f "$REFLECT2_SRC/reflect2.go" ] || die "no reflect2 sources in golang-github-modern-go-reflect2-dev"
rm -rf "$WORK/src/vendor/github.com/modern-go/reflect2"
mkdir -p "$WORK/src/vendor/github.com/modern-go/reflect2"
find "$REFLECT2_SRC" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' -o -name LICENSE \) ! -name '*_test.go' \
    -exec cp {} "$WORK/src/vendor/github.com/modern-go/reflect2/" \;

mkdir -p "$WORK/out"
(
    cd "$WORK/src"
    export GOPROXY=off GOPATH="$WORK/gopath" GOCACHE="$WORK/gocache"
    export KUBE_GIT_VERSION=v1.20.2 KUBE_GIT_TREE_STATE=clean KUBE_GIT_MAJOR=1 KUBE_GIT_MINOR=20
    # `go build ./cmd/...` fails on go.mod updates: the Makefile's build works.
    make WHAT="cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler cmd/kubelet" GOLDFLAGS="-s -w" ||
        exit 1
    for name in "${BINARIES[@]}"; do
        cp "_output/bin/$name" "$WORK/out/" || exit 1
    done
    build_pause "$WORK/src" "$WORK/out"
) >"$WORK/build.log" 2>&1 || {
    # the scratch directory goes away: keep the log
    cp "$WORK/build.log" "$CACHE/build-failed.log" 2>/dev/null || true
    tail -n 30 "$WORK/build.log" >&2
    die "the Kubernetes build failed (log above; all of it in $CACHE/build-failed.log)"
}

# etcd: Debian's own build, unpacked rather than installed (no daemon gets enabled).
(cd "$WORK" && apt-get -qq download etcd-server etcd-client >>"$APT_LOG" 2>&1) || die "downloading etcd failed"
for deb in "$WORK"/etcd-server_*.deb "$WORK"/etcd-client_*.deb; do
    dpkg-deb -x "$deb" "$WORK/etcd"
done
for name in "${ETCD_BINARIES[@]}"; do
    cp "$WORK/etcd/usr/bin/$name" "$WORK/out/"
done

mkdir -p "${BIN%/*}"
rm -rf "$BIN.partial" && mv "$WORK/out" "$BIN.partial" && rm -rf "$BIN" && mv "$BIN.partial" "$BIN"
complete_in "$BIN" || die "the build left $BIN incomplete"
log "ok: Kubernetes $VERSION binaries built in $(elapsed "$started") s and cached in $BIN"
finish "$BIN"
