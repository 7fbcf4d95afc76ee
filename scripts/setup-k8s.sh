#!/usr/bin/env bash
# Start a real single-node Kubernetes 1.20 cluster on loopback for the integration tests, without systemd,
# idempotently:
#   1. Debian packages, installed when missing: containerd, containernetworking-plugins (CNI in /usr/lib/cni),
#      openssl, curl
#   2. the server binaries: scripts/build-k8s.sh (built once per machine from Debian's source package, ~16 min;
#      cached in /var/cache/madengine-k8s/<version>/bin afterwards, with a statically linked `pause`)
#   3. PKI under <dir>/pki (openssl, created once): a CA, the apiserver's certificate, a service-account key pair and
#      a static token file with one admin token (group system:masters); <dir>/kubeconfig uses that token
#   4. the daemons, each started only when it is not running already (pid files in <dir>/run, logs in <dir>/log):
#        etcd                      http://127.0.0.1:23790 (peer 23800), data in <dir>/etcd
#        kube-apiserver            https://127.0.0.1:16443 (service range 10.0.0.0/24)
#        kube-controller-manager   127.0.0.1:10257      kube-scheduler   127.0.0.1:10259
#        containerd (private)      <dir>/containerd/containerd.sock; its own root and state under <dir>/containerd,
#                                  CNI bridge `mdgk8s0` on 10.88.0.0/24 (no NAT), pause image madengine.local/pause,
#                                  plain-http access to the test registry 127.0.0.1:5001 (credentials come from the
#                                  Pod's imagePullSecret)
#        kubelet                   node `localhost`, 127.0.0.1:10250 (healthz 10248), root dir <dir>/kubelet
#   5. waits until node `localhost` is Ready and the `default` service account exists
#
# Pods should use `hostNetwork: true` (madengine's containers run with --network host); nothing leaves the machine.
# Run it as root (or as a user with password-less sudo). A second run, with everything up, takes about a second.
# Clients read <dir>/k8s.env (KEY=VALUE lines), e.g.
#   set -a; . /var/tmp/madengine-k8s/k8s.env; set +a; kubectl get nodes     # KUBECONFIG is in there
# Stop the cluster with scripts/teardown-k8s.sh (--purge also deletes <dir>).
#
# Environment:
#   MADENGINE_K8S_DIR    state directory (default /var/tmp/madengine-k8s)
#   MADENGINE_K8S_WAIT   seconds to wait for each daemon and for the node (default 120)
#   MADENGINE_K8S_CACHE  binary cache of build-k8s.sh (default /var/cache/madengine-k8s)
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { printf 'error: run this script as root (or install sudo)\n' >&2; exit 1; }
    exec sudo -n env "MADENGINE_K8S_DIR=${MADENGINE_K8S_DIR:-}" "MADENGINE_K8S_WAIT=${MADENGINE_K8S_WAIT:-}" \
        "MADENGINE_K8S_CACHE=${MADENGINE_K8S_CACHE:-}" bash "$0" "$@"
fi

readonly STATE_DIR="${MADENGINE_K8S_DIR:-/var/tmp/madengine-k8s}"
readonly WAIT_S="${MADENGINE_K8S_WAIT:-120}"
SCRIPTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPTS

readonly PKI="$STATE_DIR/pki"
readonly RUN_DIR="$STATE_DIR/run"
readonly LOG_DIR="$STATE_DIR/log"
readonly KUBECONFIG_FILE="$STATE_DIR/kubeconfig"
readonly COMPONENT_KUBECONFIG="$STATE_DIR/components.kubeconfig"
readonly ENV_FILE="$STATE_DIR/k8s.env"
readonly ETCD_DATA="$STATE_DIR/etcd"
readonly CTRD_DIR="$STATE_DIR/containerd"
readonly CTRD_CONF="$CTRD_DIR/config.toml"
readonly CTRD_SOCK="$CTRD_DIR/containerd.sock"
readonly CNI_CONF_DIR="$STATE_DIR/cni/net.d"
readonly CNI_IPAM_DIR="$STATE_DIR/cni/ipam"
readonly KUBELET_DIR="$STATE_DIR/kubelet"

readonly CNI_BIN_DIR=/usr/lib/cni
readonly CNI_NETWORK=madengine-k8s
readonly CNI_BRIDGE=mdgk8s0
readonly CNI_SUBNET=10.88.0.0/24
readonly API_PORT=16443
readonly API_URL="https://127.0.0.1:$API_PORT"
readonly ETCD_PORT=23790
readonly ETCD_PEER_PORT=23800
readonly CM_PORT=10257
readonly SCHED_PORT=10259
readonly KUBELET_PORT=10250
readonly KUBELET_HEALTHZ_PORT=10248
readonly NODE=localhost
readonly REGISTRY=127.0.0.1:5001
readonly PAUSE_REPO=madengine.local/pause

T0=$EPOCHREALTIME

# shellcheck source=scripts/lib.sh
. "$SCRIPTS/lib.sh"

[[ "$WAIT_S" =~ ^[1-9][0-9]*$ ]] || die "MADENGINE_K8S_WAIT must be a whole number of seconds, not '$WAIT_S'"

# ----------------------------------------------------------------------------------------------------------------
# 1. packages
# ----------------------------------------------------------------------------------------------------------------
ensure_packages() {
    local -a missing=()
    local plugin
    for cmd in containerd ctr containerd-shim-runc-v2 runc; do
        command -v "$cmd" >/dev/null 2>&1 || { missing+=(containerd); break; }
    done
    for plugin in bridge host-local loopback; do
        [ -x "$CNI_BIN_DIR/$plugin" ] || { missing+=(containernetworking-plugins); break; }
    done
    command -v openssl >/dev/null 2>&1 || missing+=(openssl)
    command -v curl >/dev/null 2>&1 || missing+=(curl)
    command -v python3 >/dev/null 2>&1 || missing+=(python3)
    command -v ip >/dev/null 2>&1 || missing+=(iproute2)
    if [ "${#missing[@]}" -eq 0 ]; then
        log "ok: containerd, CNI plugins and openssl already installed"
        return
    fi
    install_packages --no-install-recommends "${missing[@]}"
}

# ----------------------------------------------------------------------------------------------------------------
# processes: pid files in $RUN_DIR, checked against the command name and the state directory on the command line
# ----------------------------------------------------------------------------------------------------------------
proc_pid() { # $1 = name (the binary): prints the pid of our running daemon, or fails
    recorded_pid "$RUN_DIR/$1.pid" "$1" "$STATE_DIR"
}

fail_with_log() { # $1 = daemon name, $2 = message
    printf 'error: %s\n' "$2" >&2
    if [ -s "$LOG_DIR/$1.log" ]; then
        printf -- '--- last lines of %s:\n' "$LOG_DIR/$1.log" >&2
        tail -n 25 "$LOG_DIR/$1.log" >&2 || true
    fi
    exit 1
}

start_proc() { # $1 = name, then the full command line; runs it in its own session, records its pid
    local name=$1
    shift
    # 9>&-: the daemon must not inherit (and hold forever) the fd of this script's lock.
    # setsid execs in place (a background job is no process group leader), so $! is the daemon itself.
    setsid "$@" </dev/null >>"$LOG_DIR/$name.log" 2>&1 9>&- &
    local pid=$! base=${1##*/} comm="" tries=0
    printf '%s\n' "$pid" >"$RUN_DIR/$name.pid"
    # Until the forked shell has exec'd the daemon, its comm is still bash (or setsid), and proc_pid would
    # take the daemon for dead: wait (at most 2 s) for the exec, or the exit, before anyone checks it.
    while running "$pid" && read -r comm 2>/dev/null <"/proc/$pid/comm" && [ "$comm" != "${base:0:15}" ] \
        && [ "$tries" -lt 100 ]; do
        tries=$((tries + 1))
        sleep 0.02
    done
}

STARTED=() # the daemons running (or started) so far, in order
check_alive() { # fails with the log of the first daemon in STARTED that is gone
    local name
    for name in "${STARTED[@]+"${STARTED[@]}"}"; do
        proc_pid "$name" >/dev/null || fail_with_log "$name" "$name exited (log: $LOG_DIR/$name.log)"
    done
}

wait_healthy() { # $1 = name, $2 = check command (a function); fails with the daemon's log
    local deadline=$((SECONDS + WAIT_S))
    until "$2"; do
        proc_pid "$1" >/dev/null || fail_with_log "$1" "$1 exited at start"
        check_alive
        [ "$SECONDS" -lt "$deadline" ] || fail_with_log "$1" "$1 not healthy within ${WAIT_S}s"
        sleep 0.2
    done
}

ensure_daemon() { # $1 = name, $2 = health check, $3 = port to check free ("" for none), $4.. = command line
    local name=$1 check=$2 port=$3 pid t=$EPOCHREALTIME
    shift 3
    STARTED+=("$name")
    if pid=$(proc_pid "$name"); then
        wait_healthy "$name" "$check"
        log "ok: $name already running (pid $pid)"
        return
    fi
    [ -z "$port" ] || require_free_port "$port" "$name" scripts/teardown-k8s.sh
    [ "$name" != kubelet ] || KUBELET_STARTED_AT=${EPOCHREALTIME%.*}
    start_proc "$name" "$@"
    wait_healthy "$name" "$check"
    log "ok: $name started (pid $(proc_pid "$name"); $(elapsed "$t") s)"
}

stop_daemon() { # $1 = name (only used to restart a daemon whose configuration changed)
    local pid
    pid=$(proc_pid "$1") || return 0
    kill_pids "$pid"
    rm -f "$RUN_DIR/$1.pid"
}

ALL_DAEMONS=(etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet)
all_running() {
    local name
    for name in "${ALL_DAEMONS[@]}"; do proc_pid "$name" >/dev/null || return 1; done
}

# ----------------------------------------------------------------------------------------------------------------
# 2. binaries
# ----------------------------------------------------------------------------------------------------------------
BIN=""
resolve_bin() {
    local pid exe
    # Everything up: the binaries are the ones the apiserver runs (no apt-get update for build-k8s.sh).
    if all_running && pid=$(proc_pid kube-apiserver) && exe=$(readlink "/proc/$pid/exe") \
            && [ -x "${exe%/*}/kubelet" ] && [ -x "${exe%/*}/pause" ] && [ -s "${exe%/*}/pause.version" ]; then
        BIN=${exe%/*}
        return
    fi
    local t=$EPOCHREALTIME
    BIN=$(MADENGINE_K8S_CACHE="${MADENGINE_K8S_CACHE:-/var/cache/madengine-k8s}" \
        bash "$SCRIPTS/build-k8s.sh" --print-bin 9>&- | tail -n 1) || die "scripts/build-k8s.sh failed"
    [ -x "$BIN/kube-apiserver" ] && [ -x "$BIN/pause" ] || die "scripts/build-k8s.sh printed no usable bin directory ('$BIN')"
    log "ok: Kubernetes binaries in $BIN ($(elapsed "$t") s)"
}

# ----------------------------------------------------------------------------------------------------------------
# 3. PKI and kubeconfigs
# ----------------------------------------------------------------------------------------------------------------
PKI_FILES=(ca.crt ca.key apiserver.crt apiserver.key sa.key sa.pub tokens.csv)
ensure_pki() {
    local f complete=1
    for f in "${PKI_FILES[@]}"; do [ -s "$PKI/$f" ] || complete=0; done
    if [ "$complete" = 1 ]; then
        log "ok: PKI in $PKI reused"
        return
    fi
    local t=$EPOCHREALTIME tmp="$PKI.tmp.$$"
    rm -rf "$tmp" && mkdir -p "$tmp" && chmod 700 "$tmp"
    (
        cd "$tmp"
        openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 -subj /CN=madengine-k8s-ca \
            -keyout ca.key -out ca.crt
        openssl req -newkey rsa:2048 -nodes -sha256 -subj /CN=kube-apiserver -keyout apiserver.key -out apiserver.csr
        printf '%s\n' \
            'subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc' \
            'extendedKeyUsage=serverAuth' 'keyUsage=critical,digitalSignature,keyEncipherment' >apiserver.ext
        openssl x509 -req -sha256 -days 3650 -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
            -extfile apiserver.ext -out apiserver.crt
        openssl genrsa -out sa.key 2048
        openssl rsa -in sa.key -pubout -out sa.pub
        printf '%s,admin,1,system:masters\n' "$(openssl rand -hex 24)" >tokens.csv
        rm -f apiserver.csr apiserver.ext ca.srl
        chmod 600 ./*
    ) >"$LOG_DIR/pki.log" 2>&1 || { tail -n 20 "$LOG_DIR/pki.log" >&2; die "creating the PKI with openssl failed"; }
    rm -rf "$PKI" && mv "$tmp" "$PKI"
    log "ok: created the PKI in $PKI ($(elapsed "$t") s)"
}

TOKEN=""
render_kubeconfig() { # $1 = user name in the file
    cat <<EOF
apiVersion: v1
kind: Config
clusters:
- name: madengine
  cluster:
    server: $API_URL
    certificate-authority-data: $(base64 -w0 "$PKI/ca.crt")
users:
- name: $1
  user:
    token: $TOKEN
contexts:
- name: madengine
  context:
    cluster: madengine
    user: $1
    namespace: default
current-context: madengine
EOF
}

write_kubeconfigs() {
    TOKEN=$(cut -d, -f1 "$PKI/tokens.csv")
    # The tests' kubeconfig and the one of kubelet, controller-manager and scheduler (the same admin token).
    if render_kubeconfig admin | replace_if_changed "$KUBECONFIG_FILE" 600; then log "ok: wrote $KUBECONFIG_FILE"; fi
    render_kubeconfig components | replace_if_changed "$COMPONENT_KUBECONFIG" 600 || true
}

# ----------------------------------------------------------------------------------------------------------------
# 4. containerd and CNI configuration
# ----------------------------------------------------------------------------------------------------------------
PAUSE_IMAGE=""
render_containerd_conf() {
    cat <<EOF
# Written by madengine's scripts/setup-k8s.sh; it rewrites this file (and restarts containerd) when it differs.
version = 2
root = "$CTRD_DIR/root"
state = "$CTRD_DIR/state"
oom_score = 0
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "$CTRD_SOCK"

[ttrpc]
  address = "$CTRD_SOCK.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$CTRD_DIR/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  restrict_oom_score_adj = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  netns_mounts_under_state_dir = true
  max_container_log_line_size = 16384

[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  Root = "$CTRD_DIR/runc"
  SystemdCgroup = false

[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "$CNI_BIN_DIR"
  conf_dir = "$CNI_CONF_DIR"
  max_conf_num = 1

# The test registry speaks plain http; the credentials come from the Pod's imagePullSecret.
[plugins."io.containerd.grpc.v1.cri".registry.mirrors."$REGISTRY"]
  endpoint = ["http://$REGISTRY"]
EOF
}

render_cni_conf() {
    cat <<EOF
{
  "cniVersion": "0.4.0",
  "name": "$CNI_NETWORK",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$CNI_BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$CNI_IPAM_DIR",
        "ranges": [[{ "subnet": "$CNI_SUBNET" }]],
        "routes": [{ "dst": "$CNI_SUBNET" }]
      }
    }
  ]
}
EOF
}

CTRD_CONF_CHANGED=0
write_runtime_conf() {
    PAUSE_IMAGE="$PAUSE_REPO:$(cat "$BIN/pause.version")"
    mkdir -p "$CTRD_DIR" "$CNI_CONF_DIR" "$CNI_IPAM_DIR" "$KUBELET_DIR"
    if render_containerd_conf | replace_if_changed "$CTRD_CONF" 644; then
        CTRD_CONF_CHANGED=1
        log "ok: wrote $CTRD_CONF"
    fi
    if render_cni_conf | replace_if_changed "$CNI_CONF_DIR/10-$CNI_NETWORK.conflist" 644; then
        log "ok: wrote $CNI_CONF_DIR/10-$CNI_NETWORK.conflist"
    fi
}

# ----------------------------------------------------------------------------------------------------------------
# 5. the pause image: FROM scratch + the static pause binary, an OCI archive built here, imported with ctr
# ----------------------------------------------------------------------------------------------------------------
ctr_k8s() { ctr -a "$CTRD_SOCK" -n k8s.io "$@"; }

blob() { # $1 = oci dir, $2 = file: moves it into blobs/sha256, prints "digest size"
    local digest size
    digest=$(sha256sum "$2" | cut -d' ' -f1)
    size=$(stat -c %s "$2")
    mv "$2" "$1/blobs/sha256/$digest"
    printf 'sha256:%s %s\n' "$digest" "$size"
}

ensure_pause_image() {
    if ctr_k8s images ls -q "name==$PAUSE_IMAGE" 2>/dev/null | grep -qxF "$PAUSE_IMAGE"; then
        log "ok: sandbox image $PAUSE_IMAGE present"
        return
    fi
    local t=$EPOCHREALTIME work arch layer config manifest
    work=$(mktemp -d "${TMPDIR:-/var/tmp}/madengine-pause.XXXXXX")
    arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
    mkdir -p "$work/rootfs" "$work/oci/blobs/sha256"
    install -m 0755 "$BIN/pause" "$work/rootfs/pause"
    tar --numeric-owner --owner=0 --group=0 --mtime=@0 -C "$work/rootfs" -cf "$work/layer.tar" pause
    local diff_id
    diff_id=sha256:$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
    layer=$(blob "$work/oci" "$work/layer.tar")
    printf '{"architecture":"%s","os":"linux","config":{"Entrypoint":["/pause"]},"rootfs":{"type":"layers","diff_ids":["%s"]}}' \
        "$arch" "$diff_id" >"$work/config.json"
    config=$(blob "$work/oci" "$work/config.json")
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%s}]}' \
        "${config% *}" "${config#* }" "${layer% *}" "${layer#* }" >"$work/manifest.json"
    manifest=$(blob "$work/oci" "$work/manifest.json")
    printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"platform":{"architecture":"%s","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
        "${manifest% *}" "${manifest#* }" "$arch" "$PAUSE_IMAGE" "${PAUSE_IMAGE##*:}" >"$work/oci/index.json"
    printf '{"imageLayoutVersion":"1.0.0"}' >"$work/oci/oci-layout"
    tar -C "$work/oci" -cf "$work/pause.tar" oci-layout index.json blobs
    if ! ctr_k8s images import "$work/pause.tar" >"$LOG_DIR/pause-import.log" 2>&1; then
        cat "$LOG_DIR/pause-import.log" >&2
        rm -rf "$work"
        die "importing $PAUSE_IMAGE into containerd failed"
    fi
    rm -rf "$work"
    ctr_k8s images ls -q "name==$PAUSE_IMAGE" | grep -qxF "$PAUSE_IMAGE" || die "$PAUSE_IMAGE missing after the import"
    log "ok: sandbox image $PAUSE_IMAGE imported ($(elapsed "$t") s)"
}

# ----------------------------------------------------------------------------------------------------------------
# 6. daemons
# ----------------------------------------------------------------------------------------------------------------
etcd_healthy() { curl -sf --max-time 2 "http://127.0.0.1:$ETCD_PORT/health" 2>/dev/null | grep -q '"health":"true"'; }
api() { # $1 = path: GET it as admin
    curl -sf --max-time 5 --cacert "$PKI/ca.crt" -H "Authorization: Bearer $TOKEN" "$API_URL$1"
}
api_ready() { [ "$(api /readyz 2>/dev/null)" = ok ]; }
cm_healthy() { [ "$(curl -sk --max-time 2 "https://127.0.0.1:$CM_PORT/healthz" 2>/dev/null)" = ok ]; }
sched_healthy() { [ "$(curl -sk --max-time 2 "https://127.0.0.1:$SCHED_PORT/healthz" 2>/dev/null)" = ok ]; }
containerd_healthy() { ctr -a "$CTRD_SOCK" version >/dev/null 2>&1; }
kubelet_healthy() { [ "$(curl -s --max-time 2 "http://127.0.0.1:$KUBELET_HEALTHZ_PORT/healthz" 2>/dev/null)" = ok ]; }

ensure_daemons() {
    mkdir -p "$RUN_DIR" "$LOG_DIR" "$ETCD_DATA"
    chmod 700 "$ETCD_DATA"
    ensure_daemon etcd etcd_healthy "$ETCD_PORT" \
        "$BIN/etcd" --name madengine --data-dir "$ETCD_DATA" \
        --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
        --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-cluster "madengine=http://127.0.0.1:$ETCD_PEER_PORT" --initial-cluster-state new

    ensure_daemon kube-apiserver api_ready "$API_PORT" \
        "$BIN/kube-apiserver" --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
        --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$API_PORT" --insecure-port=0 \
        --cert-dir="$PKI" --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
        --client-ca-file="$PKI/ca.crt" --token-auth-file="$PKI/tokens.csv" --authorization-mode=Node,RBAC \
        --service-account-issuer=https://kubernetes.default.svc --service-account-key-file="$PKI/sa.pub" \
        --service-account-signing-key-file="$PKI/sa.key" --service-cluster-ip-range=10.0.0.0/24 \
        --allow-privileged=true --enable-priority-and-fairness=false --kubelet-preferred-address-types=Hostname \
        --endpoint-reconciler-type=none

    ensure_daemon kube-controller-manager cm_healthy "$CM_PORT" \
        "$BIN/kube-controller-manager" --kubeconfig="$COMPONENT_KUBECONFIG" \
        --authentication-kubeconfig="$COMPONENT_KUBECONFIG" --authorization-kubeconfig="$COMPONENT_KUBECONFIG" \
        --bind-address=127.0.0.1 --secure-port="$CM_PORT" --port=0 --leader-elect=false \
        --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
        --use-service-account-credentials=false '--controllers=*,-nodeipam,-cloud-node-lifecycle'

    ensure_daemon kube-scheduler sched_healthy "$SCHED_PORT" \
        "$BIN/kube-scheduler" --kubeconfig="$COMPONENT_KUBECONFIG" \
        --authentication-kubeconfig="$COMPONENT_KUBECONFIG" --authorization-kubeconfig="$COMPONENT_KUBECONFIG" \
        --bind-address=127.0.0.1 --secure-port="$SCHED_PORT" --port=0 --leader-elect=false

    if [ "$CTRD_CONF_CHANGED" = 1 ] && proc_pid containerd >/dev/null; then
        # A new config.toml: restart containerd (its containers keep running under their shims) and the kubelet.
        stop_daemon kubelet
        stop_daemon containerd
        log "ok: stopped containerd and the kubelet to restart them with the new $CTRD_CONF"
    fi
    [ -S "$CTRD_SOCK" ] && ! proc_pid containerd >/dev/null && rm -f "$CTRD_SOCK" "$CTRD_SOCK.ttrpc"
    ensure_daemon containerd containerd_healthy "" "$(command -v containerd)" --config "$CTRD_CONF"
    ensure_pause_image

    ensure_daemon kubelet kubelet_healthy "$KUBELET_PORT" \
        "$BIN/kubelet" --kubeconfig="$COMPONENT_KUBECONFIG" --root-dir="$KUBELET_DIR" \
        --cert-dir="$KUBELET_DIR/pki" --volume-plugin-dir="$KUBELET_DIR/volume-plugins" \
        --container-runtime=remote --container-runtime-endpoint="unix://$CTRD_SOCK" \
        --runtime-request-timeout=5m --pod-infra-container-image="$PAUSE_IMAGE" \
        --hostname-override="$NODE" --address=127.0.0.1 --port="$KUBELET_PORT" \
        --healthz-bind-address=127.0.0.1 --healthz-port="$KUBELET_HEALTHZ_PORT" --read-only-port=0 \
        --cgroup-driver=cgroupfs --cgroups-per-qos=false --enforce-node-allocatable= --fail-swap-on=false \
        --oom-score-adj=0 --authentication-token-webhook=false --authorization-mode=AlwaysAllow \
        '--eviction-hard=memory.available<100Mi' --image-gc-high-threshold=100 --register-node=true
}

# ----------------------------------------------------------------------------------------------------------------
# 7. node Ready, default service account
# ----------------------------------------------------------------------------------------------------------------
KUBELET_STARTED_AT=0 # epoch second this run started the kubelet: an older Ready (from before a teardown) is stale
node_ready() {
    api "/api/v1/nodes/$NODE" 2>/dev/null | python3 -c '
import datetime, json, sys
node = json.load(sys.stdin)
ready = [c for c in node.get("status", {}).get("conditions", []) if c.get("type") == "Ready"]
if not ready or ready[0].get("status") != "True":
    sys.exit(1)
beat = datetime.datetime.strptime(ready[0]["lastHeartbeatTime"], "%Y-%m-%dT%H:%M:%SZ")
sys.exit(0 if beat.replace(tzinfo=datetime.timezone.utc).timestamp() >= int(sys.argv[1]) else 1)' \
        "$KUBELET_STARTED_AT" 2>/dev/null
}
default_sa() { api /api/v1/namespaces/default/serviceaccounts/default >/dev/null 2>&1; }

wait_for_cluster() {
    local t=$EPOCHREALTIME deadline=$((SECONDS + WAIT_S))
    until node_ready; do
        check_alive
        [ "$SECONDS" -lt "$deadline" ] || fail_with_log kubelet "node $NODE not Ready within ${WAIT_S}s"
        sleep 0.3
    done
    log "ok: node $NODE Ready ($(elapsed "$t") s)"
    t=$EPOCHREALTIME
    until default_sa; do
        check_alive
        [ "$SECONDS" -lt "$deadline" ] \
            || fail_with_log kube-controller-manager "no service account default/default within ${WAIT_S}s"
        sleep 0.3
    done
    log "ok: service account default/default exists ($(elapsed "$t") s)"
}

write_env() {
    {
        printf 'MADENGINE_K8S_KUBECONFIG=%s\n' "$KUBECONFIG_FILE"
        printf 'KUBECONFIG=%s\n' "$KUBECONFIG_FILE"
        printf 'MADENGINE_K8S_SERVER=%s\n' "$API_URL"
        printf 'MADENGINE_K8S_NODE=%s\n' "$NODE"
        printf 'MADENGINE_K8S_CONTAINERD_SOCK=%s\n' "$CTRD_SOCK"
        printf 'MADENGINE_K8S_PAUSE_IMAGE=%s\n' "$PAUSE_IMAGE"
        printf 'MADENGINE_K8S_BIN=%s\n' "$BIN"
        printf 'MADENGINE_K8S_REGISTRY=%s\n' "$REGISTRY"
    } | replace_if_changed "$ENV_FILE" 644 || true
}

# ----------------------------------------------------------------------------------------------------------------
mkdir -p "$STATE_DIR" "$RUN_DIR" "$LOG_DIR"

# One run at a time: the others wait for it, then find everything up.
if command -v flock >/dev/null 2>&1; then
    exec 9>"$STATE_DIR/setup.lock"
    flock -w 1200 9 || die "another setup-k8s.sh still holds $STATE_DIR/setup.lock after 20 min"
fi

ensure_packages
resolve_bin
ensure_pki
write_kubeconfigs
write_runtime_conf
ensure_daemons
wait_for_cluster
write_env
log "ok: kubernetes settings in $ENV_FILE (KUBECONFIG=$KUBECONFIG_FILE)"
log "done in $(elapsed "$T0") s"
