#!/usr/bin/env bash
# Build the Kubernetes server binaries for the test cluster once per machine, offline, from Debian 12's
# `kubernetes` source package (1.20.2 with its dependencies vendored), and cache them outside the repository:
#   $MADENGINE_K8S_CACHE (default /var/cache/madengine-k8s)/<source version>/bin/
#     kube-apiserver kube-controller-manager kube-scheduler kubelet etcd etcdctl
# Idempotent: a complete cache is reused and nothing is built (prints its path). The first build takes about
# 16 minutes on 2 cores and ~4 GB of scratch space (removed afterwards).
#   bash scripts/build-k8s.sh            # build if needed, print the bin directory
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

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
BIN="$CACHE/$VERSION/bin"
if complete_in "$BIN"; then
    log "ok: Kubernetes $VERSION binaries cached in $BIN"
    exit 0
fi

started=$EPOCHREALTIME
log "building Kubernetes $VERSION (about 16 minutes the first time on a machine)"
install_packages --no-install-recommends golang-go rsync make dpkg-dev
(cd "$WORK" && apt-get "${SRC_APT[@]}" source --download-only -qq kubernetes >>"$APT_LOG" 2>&1) ||
    die "downloading the kubernetes source failed; see $APT_LOG"
(cd "$WORK" && dpkg-source -x --no-check kubernetes_*.dsc src >/dev/null) || die "unpacking the source failed"

mkdir -p "$WORK/out"
(
    cd "$WORK/src"
    export GOPROXY=off GOPATH="$WORK/gopath" GOCACHE="$WORK/gocache"
    export KUBE_GIT_VERSION=v1.20.2 KUBE_GIT_TREE_STATE=clean KUBE_GIT_MAJOR=1 KUBE_GIT_MINOR=20
    # `go build ./cmd/...` fails on go.mod updates: the Makefile's build works.
    make WHAT="cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler cmd/kubelet" GOLDFLAGS="-s -w"
    for name in "${BINARIES[@]}"; do
        cp "_output/bin/$name" "$WORK/out/"
    done
) >"$WORK/build.log" 2>&1 || {
    tail -n 30 "$WORK/build.log" >&2
    die "the Kubernetes build failed (log above)"
}

# etcd: Debian's own build, unpacked rather than installed (no daemon gets enabled).
(cd "$WORK" && apt-get -qq download etcd-server etcd-client >>"$APT_LOG" 2>&1) || die "downloading etcd failed"
for deb in "$WORK"/etcd-server_*.deb "$WORK"/etcd-client_*.deb; do
    dpkg-deb -x "$deb" "$WORK/etcd"
done
for name in "${ETCD_BINARIES[@]}"; do
    cp "$WORK/etcd/usr/bin/$name" "$WORK/out/"
done

mkdir -p "$CACHE/$VERSION"
rm -rf "$BIN.partial" && mv "$WORK/out" "$BIN.partial" && rm -rf "$BIN" && mv "$BIN.partial" "$BIN"
complete_in "$BIN" || die "the build left $BIN incomplete"
log "ok: Kubernetes $VERSION binaries built in $(elapsed "$started") s and cached in $BIN"
