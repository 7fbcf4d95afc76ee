#!/usr/bin/env bash
# Set up everything madengine's integration tests need on this machine, idempotently:
#   1. Debian packages (docker.io debootstrap busybox-static docker-registry apache2-utils curl)
#   2. a running Docker engine (started without systemd when `docker info` fails)
#   3. base images built locally (nothing is pulled from Docker Hub):
#        madengine-test/busybox:latest   FROM scratch + busybox-static (+ a /bin/bash -> sh wrapper)
#        madengine-test/debian:bookworm  debootstrap --variant=minbase bookworm + docker import
#   4. a docker-registry with htpasswd (bcrypt) auth on 127.0.0.1:5001
#
# Run it as root (or as a user with password-less sudo). A second run, with everything up, takes about a second.
#
# Environment:
#   MADENGINE_INFRA_DIR      state directory (default /var/tmp/madengine-infra); the registry lives in <dir>/registry/
#                            and <dir>/registry.env tells the tests where it is and where its password file is
#   MADENGINE_TEST_CACHE     rootfs tarball cache (default /var/cache/madengine-test)
#   MADENGINE_DEBIAN_MIRROR  mirror for debootstrap (default http://deb.debian.org/debian)
#   MADENGINE_DOCKERD_WAIT   seconds to wait for a freshly started dockerd (default 60)
set -euo pipefail

readonly STATE_DIR="${MADENGINE_INFRA_DIR:-/var/tmp/madengine-infra}"
readonly CACHE_DIR="${MADENGINE_TEST_CACHE:-/var/cache/madengine-test}"
readonly DEBIAN_MIRROR="${MADENGINE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
readonly DOCKERD_WAIT="${MADENGINE_DOCKERD_WAIT:-60}"
readonly DOCKERD_LOG=/var/log/dockerd.log

readonly BUSYBOX_IMAGE=madengine-test/busybox:latest
readonly DEBIAN_IMAGE=madengine-test/debian:bookworm
# Bump a recipe version when the image recipe changes: an image with another version is rebuilt.
readonly RECIPE_LABEL=org.madengine.test.recipe
readonly BUSYBOX_RECIPE=busybox-1
readonly DEBIAN_RECIPE=debian-bookworm-minbase-1
readonly DEBIAN_TARBALL="$CACHE_DIR/debian-bookworm-minbase.tar.gz"

readonly REGISTRY_HOST=127.0.0.1
readonly REGISTRY_PORT=5001
readonly REGISTRY="$REGISTRY_HOST:$REGISTRY_PORT"
readonly REGISTRY_USER=madengine
readonly REG_DIR="$STATE_DIR/registry"
readonly REG_PASSWORD_FILE="$REG_DIR/password"
readonly REG_PID_FILE="$REG_DIR/registry.pid"
readonly REG_LOG="$REG_DIR/registry.log"
readonly REG_ENV="$STATE_DIR/registry.env"

T0=$EPOCHREALTIME

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "run this script as root (or install sudo)"
    SUDO="sudo"
fi

TMP_ITEMS=()
cleanup() {
    local item
    for item in "${TMP_ITEMS[@]+"${TMP_ITEMS[@]}"}"; do
        $SUDO rm -rf -- "$item" 2>/dev/null || true
    done
}
trap cleanup EXIT

# ----------------------------------------------------------------------------------------------------------------
# 1. packages
# ----------------------------------------------------------------------------------------------------------------
ensure_packages() {
    local -a missing=()
    # An engine that is already there (docker.io, or docker-ce on CI runners) is kept: docker.io would conflict.
    command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
    command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
    # FROM scratch needs the *static* busybox; the dynamic `busybox` package would not run inside the image.
    pkg_installed busybox-static || missing+=(busybox-static)
    command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
    command -v htpasswd >/dev/null 2>&1 || missing+=(apache2-utils)
    command -v curl >/dev/null 2>&1 || missing+=(curl)
    # debootstrap on a non-Debian host (Ubuntu CI) needs Debian's archive keys to verify bookworm.
    [ -e /usr/share/keyrings/debian-archive-keyring.gpg ] || missing+=(debian-archive-keyring)
    if [ "${#missing[@]}" -eq 0 ]; then
        log "ok: packages already installed"
        return
    fi
    install_packages "${missing[@]}"
}

# ----------------------------------------------------------------------------------------------------------------
# 2. Docker engine
# ----------------------------------------------------------------------------------------------------------------
docker_up() { $SUDO docker info >/dev/null 2>&1; }

dockerd_running() { # is there a dockerd process at all (pgrep may be missing on minimal hosts)
    local comm
    for comm in /proc/[0-9]*/comm; do
        [ "$(cat "$comm" 2>/dev/null)" = dockerd ] && return 0
    done
    return 1
}

devices_cgroup_ok() {
    # cgroup v2 (unified) has no per-controller directories; v1 needs the devices hierarchy mounted.
    [ -e /sys/fs/cgroup/cgroup.controllers ] && return 0
    [ -d /sys/fs/cgroup/devices ] && grep -qw devices /proc/self/mountinfo
}

wait_for_docker() { # $1 = seconds
    local deadline=$((SECONDS + $1))
    until docker_up; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.2
    done
}

ensure_dockerd() {
    if docker_up; then
        log "ok: dockerd already running"
        return
    fi
    local t=$EPOCHREALTIME
    # Never start a second engine next to a live one (a second dockerd in this network namespace can delete
    # docker0 under the first). A dockerd that is still starting up gets time to answer instead.
    if dockerd_running; then
        log "dockerd is running but not answering yet; waiting up to ${DOCKERD_WAIT}s"
        wait_for_docker "$DOCKERD_WAIT" \
            || die "a dockerd process exists but \`docker info\` keeps failing; check it (log: $DOCKERD_LOG?) instead of starting another"
        log "ok: dockerd answered ($(elapsed "$t") s)"
        return
    fi
    if ! devices_cgroup_ok; then
        command -v cgroupfs-mount >/dev/null 2>&1 || {
            apt_get install cgroupfs-mount || die "the devices cgroup is not mounted and cgroupfs-mount could not be installed"
        }
        log "mounting cgroup hierarchies (cgroupfs-mount)"
        $SUDO cgroupfs-mount || die "cgroupfs-mount failed"
    fi
    log "starting dockerd (log: $DOCKERD_LOG)"
    # 9>&-: the daemon must not inherit (and hold forever) the fd of this script's lock
    $SUDO sh -c "setsid dockerd >>'$DOCKERD_LOG' 2>&1 </dev/null &" 9>&-
    local deadline=$((SECONDS + DOCKERD_WAIT)) started=$SECONDS why=""
    until docker_up; do
        if [ $((SECONDS - started)) -ge 2 ] && ! dockerd_running; then
            why="dockerd exited at start"
            break
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            why="dockerd did not become ready within ${DOCKERD_WAIT}s"
            break
        fi
        sleep 0.2
    done
    if [ -n "$why" ]; then
        printf 'error: %s; last lines of %s:\n' "$why" "$DOCKERD_LOG" >&2
        $SUDO tail -n 20 "$DOCKERD_LOG" >&2 || true
        exit 1
    fi
    log "ok: dockerd started ($(elapsed "$t") s)"
}

# ----------------------------------------------------------------------------------------------------------------
# 3. base images
# ----------------------------------------------------------------------------------------------------------------
image_recipe() { # prints the recipe label of image $1; fails when the image is absent
    $SUDO docker image inspect --format "{{ index .Config.Labels \"$RECIPE_LABEL\" }}" "$1" 2>/dev/null
}

ensure_busybox_image() {
    local have
    if have=$(image_recipe "$BUSYBOX_IMAGE") && [ "$have" = "$BUSYBOX_RECIPE" ]; then
        log "ok: image $BUSYBOX_IMAGE present"
        return
    fi
    local t=$EPOCHREALTIME bb=/bin/busybox
    [ -x "$bb" ] || bb=$(command -v busybox) || die "busybox not found (package busybox-static)"
    # Make sure it is the static build: it has to run inside an image with no libc.
    if command -v file >/dev/null 2>&1 && file -L "$bb" | grep -q 'dynamically linked'; then
        die "$bb is dynamically linked; install busybox-static"
    fi
    local ctx
    ctx=$(mktemp -d)
    TMP_ITEMS+=("$ctx")
    local root="$ctx/rootfs"
    mkdir -p "$root/bin" "$root/usr/bin" "$root/etc" "$root/root" "$root/tmp"
    chmod 1777 "$root/tmp"
    chmod 700 "$root/root"
    cp "$bb" "$root/bin/busybox"
    local applet
    for applet in $("$bb" --list); do
        case "$applet" in busybox | bash) continue ;; esac
        ln -sf busybox "$root/bin/$applet"
    done
    ln -sf ../../bin/busybox "$root/usr/bin/env"   # for `#!/usr/bin/env ...` shebangs
    # busybox has no bash applet; model scripts are started as `bash run.sh ...`.
    printf '#!/bin/sh\nexec /bin/sh "$@"\n' > "$root/bin/bash"
    chmod 755 "$root/bin/bash"
    printf 'root:x:0:0:root:/root:/bin/sh\n' > "$root/etc/passwd"
    printf 'root:x:0:\n' > "$root/etc/group"
    cat > "$ctx/Dockerfile" <<EOF
FROM scratch
COPY rootfs/ /
ENV PATH=/bin:/usr/bin
LABEL $RECIPE_LABEL=$BUSYBOX_RECIPE
CMD ["/bin/sh"]
EOF
    local out
    # The legacy builder works with every client (the 28.x client here has no buildx plugin).
    out=$($SUDO env DOCKER_BUILDKIT=0 docker build -q -t "$BUSYBOX_IMAGE" "$ctx" 2>&1) \
        || die "building $BUSYBOX_IMAGE failed: $out"
    local rnd
    # shellcheck disable=SC2016  # $RANDOM is for the container's shell
    rnd=$($SUDO docker run --rm --network none "$BUSYBOX_IMAGE" bash -c 'echo $RANDOM' 2>&1) \
        || die "$BUSYBOX_IMAGE does not run: $rnd"
    [[ "$rnd" =~ ^[0-9]+$ ]] || die "$BUSYBOX_IMAGE: bash -c 'echo \$RANDOM' printed '$rnd', not a number"
    log "ok: built $BUSYBOX_IMAGE ($(elapsed "$t") s)"
}

build_debian_tarball() {
    local t=$EPOCHREALTIME
    $SUDO mkdir -p "$CACHE_DIR"
    local rootfs
    rootfs=$($SUDO mktemp -d "$CACHE_DIR/rootfs.XXXXXX")
    TMP_ITEMS+=("$rootfs")
    log "debootstrap --variant=minbase bookworm (takes ~30 s; log: $CACHE_DIR/debootstrap.log)"
    local -a keyring=()
    [ -e /usr/share/keyrings/debian-archive-keyring.gpg ] \
        && keyring=(--keyring=/usr/share/keyrings/debian-archive-keyring.gpg)
    if ! $SUDO debootstrap "${keyring[@]+"${keyring[@]}"}" --variant=minbase bookworm "$rootfs" "$DEBIAN_MIRROR" \
            >"$CACHE_DIR/debootstrap.log" 2>&1; then
        $SUDO tail -n 20 "$CACHE_DIR/debootstrap.log" >&2 || true
        die "debootstrap failed (see $CACHE_DIR/debootstrap.log)"
    fi
    $SUDO sh -c "rm -rf '$rootfs'/var/cache/apt/archives/*.deb '$rootfs'/var/lib/apt/lists/* '$rootfs'/tmp/*"
    local tmp_tar="$DEBIAN_TARBALL.tmp.$$"
    TMP_ITEMS+=("$tmp_tar")
    $SUDO tar --numeric-owner -C "$rootfs" -czf "$tmp_tar" . || die "packing $rootfs failed"
    $SUDO mv -f "$tmp_tar" "$DEBIAN_TARBALL"
    $SUDO rm -rf "$rootfs"
    log "ok: cached rootfs $DEBIAN_TARBALL ($(elapsed "$t") s)"
}

ensure_debian_image() {
    local have
    if have=$(image_recipe "$DEBIAN_IMAGE") && [ "$have" = "$DEBIAN_RECIPE" ]; then
        log "ok: image $DEBIAN_IMAGE present"
        return
    fi
    if [ -s "$DEBIAN_TARBALL" ] && $SUDO gzip -t "$DEBIAN_TARBALL" 2>/dev/null; then
        log "ok: using cached rootfs $DEBIAN_TARBALL"
    else
        build_debian_tarball
    fi
    local t=$EPOCHREALTIME out
    out=$($SUDO docker import \
        -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        -c 'ENV LANG=C.UTF-8' \
        -c "LABEL $RECIPE_LABEL=$DEBIAN_RECIPE" \
        -c 'CMD ["/bin/bash"]' \
        "$DEBIAN_TARBALL" "$DEBIAN_IMAGE" 2>&1) || die "docker import of $DEBIAN_TARBALL failed: $out"
    local ver
    # shellcheck disable=SC2016  # expanded by the container's bash
    ver=$($SUDO docker run --rm --network none "$DEBIAN_IMAGE" bash -c 'echo "${BASH_VERSION}"' 2>&1) \
        || die "$DEBIAN_IMAGE does not run: $ver"
    [ -n "$ver" ] || die "$DEBIAN_IMAGE has no real bash (BASH_VERSION is empty)"
    log "ok: built $DEBIAN_IMAGE (bash $ver; $(elapsed "$t") s)"
}

# ----------------------------------------------------------------------------------------------------------------
# 4. registry
# ----------------------------------------------------------------------------------------------------------------
registry_code() { # HTTP status of /v2/ without credentials ("000" when nothing answers)
    curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://$REGISTRY/v2/" 2>/dev/null || true
}

registry_auth_code() { # HTTP status of /v2/ with our credentials; the password goes through stdin, not argv
    { printf 'user = "%s:' "$REGISTRY_USER"; tr -d '\n' < "$REG_PASSWORD_FILE"; printf '"\n'; } \
        | curl -s -o /dev/null -w '%{http_code}' --max-time 3 -K - "http://$REGISTRY/v2/" 2>/dev/null || true
}

our_registry_pid() { # prints the pid of the registry this script started, if it is still running
    [ -f "$REG_PID_FILE" ] || return 1
    local pid
    pid=$(cat "$REG_PID_FILE" 2>/dev/null) || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q 'docker-registry' || return 1
    printf '%s\n' "$pid"
}

ensure_password() {
    $SUDO mkdir -p "$REG_DIR/data"
    $SUDO chmod 700 "$REG_DIR"
    if [ "$(id -u)" -ne 0 ]; then $SUDO chown -R "$(id -u):$(id -g)" "$STATE_DIR"; fi
    if new_password_file "$REG_PASSWORD_FILE"; then log "ok: generated a registry password in $REG_PASSWORD_FILE"; fi
}

write_registry_env() {
    replace_if_changed "$REG_ENV" 644 <<EOF || true
MADENGINE_TEST_REGISTRY=$REGISTRY
MADENGINE_TEST_REGISTRY_USER=$REGISTRY_USER
MADENGINE_TEST_REGISTRY_PASSWORD_FILE=$REG_PASSWORD_FILE
EOF
}

start_registry() {
    cat > "$REG_DIR/config.yml" <<EOF
version: 0.1
log:
  level: info
  fields:
    service: madengine-test-registry
storage:
  filesystem:
    rootdirectory: $REG_DIR/data
  delete:
    enabled: true
http:
  addr: $REGISTRY
  headers:
    X-Content-Type-Options: [nosniff]
auth:
  htpasswd:
    realm: madengine-test-registry
    path: $REG_DIR/htpasswd
EOF
    # registry 2.x only accepts bcrypt; -i reads the password from stdin so it never shows up in argv.
    (umask 077; htpasswd -iBn "$REGISTRY_USER" < "$REG_PASSWORD_FILE" > "$REG_DIR/htpasswd.tmp") \
        || die "htpasswd failed"
    mv -f "$REG_DIR/htpasswd.tmp" "$REG_DIR/htpasswd"
    setsid docker-registry serve "$REG_DIR/config.yml" >>"$REG_LOG" 2>&1 </dev/null 9>&- &
    echo $! > "$REG_PID_FILE"
    local deadline=$((SECONDS + 20))
    until [ "$(registry_code)" = 401 ]; do
        if ! our_registry_pid >/dev/null; then
            tail -n 20 "$REG_LOG" >&2 || true
            die "docker-registry exited at start (log: $REG_LOG)"
        fi
        [ "$SECONDS" -lt "$deadline" ] || die "docker-registry did not answer 401 on http://$REGISTRY/v2/ within 20 s (log: $REG_LOG)"
        sleep 0.1
    done
}

ensure_registry() {
    ensure_password
    write_registry_env
    local code
    code=$(registry_code)
    if [ "$code" = 401 ]; then
        if [ "$(registry_auth_code)" = 200 ]; then
            log "ok: registry already running on $REGISTRY"
            return
        fi
        # Something answers with other credentials: restart it if it is ours, else refuse to touch it.
        local pid
        pid=$(our_registry_pid) \
            || die "a registry on $REGISTRY rejects the credentials in $REG_PASSWORD_FILE and was not started from $REG_DIR; stop it first"
        log "registry on $REGISTRY has stale credentials; restarting it"
        stop_pid "$pid"
    elif [ "$code" != 000 ]; then
        die "port $REGISTRY_PORT answers HTTP $code on /v2/, not 401: something else holds $REGISTRY"
    else
        local pid
        if pid=$(our_registry_pid); then stop_pid "$pid"; fi   # hung instance of ours
    fi
    local t=$EPOCHREALTIME
    start_registry
    [ "$(registry_auth_code)" = 200 ] || die "registry on $REGISTRY started but rejects our credentials (log: $REG_LOG)"
    log "ok: registry started on $REGISTRY ($(elapsed "$t") s)"
}

stop_pid() {
    local pid=$1
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
}

# ----------------------------------------------------------------------------------------------------------------
# One run at a time (parallel CI jobs on one machine): the others wait for it, then find everything up.
$SUDO mkdir -p "$STATE_DIR"
if [ "$(id -u)" -ne 0 ]; then $SUDO chown "$(id -u):$(id -g)" "$STATE_DIR"; fi
if command -v flock >/dev/null 2>&1; then
    exec 9>"$STATE_DIR/setup.lock"
    flock -w 900 9 || die "another setup-infra.sh still holds $STATE_DIR/setup.lock after 15 min"
fi

ensure_packages
ensure_dockerd
ensure_busybox_image
ensure_debian_image
ensure_registry
log "ok: registry settings in $REG_ENV"
log "done in $(elapsed "$T0") s"
