#!/usr/bin/env bash
# test-env.sh — bring up a REAL, private Docker engine (and its companions) for integration
# tests, idempotently. Safe to run again and again, and from several processes at once (one
# flock serialises them). Debian 12, as root; touches nothing on the network but Debian's apt.
#
#   scripts/test-env.sh              install what is missing, start the private dockerd if none
#                                    answers, build the test image if absent; last stdout line is
#                                    `export DOCKER_HOST=unix:///run/inbm-test/docker.sock`
#   scripts/test-env.sh --registry   the same, plus Debian's docker-registry on 127.0.0.1:5555
#   scripts/test-env.sh --stop       stop the private registry and dockerd (by their pidfiles)
#
# Progress goes to stderr; stdout carries only the export line, so `eval "$(scripts/test-env.sh)"`.
#
# What it provides
#   engine   dockerd 20.10 (docker.io) --bridge=none --iptables=false, own data/exec roots,
#            socket /run/inbm-test/docker.sock, log /var/lib/inbm-test/dockerd.log. There is no
#            bridge network: containers must use network "none" (compose: network_mode: none).
#   image    inbm-test/busybox:1 — `docker import` of /bin/busybox (busybox-static) + applet
#            links, CMD /bin/sh. No outside registry is reachable; this is the only base image.
#   tools    /usr/bin/docker 20.10, docker-compose 1.29.2 (v1; honours DOCKER_HOST),
#            docker-registry, htpasswd. (A docker 28 CLI may sit earlier in PATH, in
#            /usr/local/bin: it works against this engine too; there is no `docker compose` v2.)
#   registry (--registry) http://127.0.0.1:5555, storage /var/lib/inbm-test/registry. Docker
#            treats 127.0.0.0/8 registries as insecure-allowed, so no --insecure-registry flag.
#
# Node test-side helper (design note; e.g. test/docker-env.ts):
#   import { execFileSync } from 'node:child_process';
#   let host: string | null | undefined;                    // memoised per test process
#   export function dockerEnv(): { DOCKER_HOST: string; socketPath: string } | null {
#     if (host === undefined) {
#       if (process.getuid?.() !== 0 || process.env.INBM_NO_DOCKER) host = null;
#       else {
#         const out = execFileSync('bash', [join(ROOT, 'scripts/test-env.sh')],
#           { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 600_000 });
#         const m = /^export DOCKER_HOST=(unix:\/\/(\S+))$/m.exec(out.trim().split('\n').at(-1) ?? '');
#         if (!m) throw new Error(`test-env.sh printed no DOCKER_HOST:\n${out}`);
#         host = m[1];
#       }
#     }
#     return host ? { DOCKER_HOST: host, socketPath: host.slice('unix://'.length) } : null;
#   }
#   A test: `const env = dockerEnv(); if (!env) return t.skip('needs root + docker');`, then
#   `new Docker({ socketPath: env.socketPath })` (load dockerode lazily), child processes get
#   `{ ...process.env, DOCKER_HOST: env.DOCKER_HOST }` (docker, docker-compose), containers use
#   `HostConfig: { NetworkMode: 'none', Init: true }` and the image inbm-test/busybox:1. Give
#   each test its own container names / compose project (-p) and remove them in t.after; never
#   call --stop from a test (test files run concurrently and share the engine). .ci/run should
#   call this script once before `npm test`, so the per-file calls cost ~0.1-0.2 s each.
#
# Environment overrides: INBM_TEST_STORAGE_DRIVER (default: overlay2 if an overlay mount works
# on the data root, else vfs), INBM_TEST_REGISTRY_PORT (5555), INBM_TEST_WAIT (30 s).
set -euo pipefail

STATE_DIR=/var/lib/inbm-test
RUN_DIR=/run/inbm-test
SOCK="$RUN_DIR/docker.sock"
DOCKER_HOST_URL="unix://$SOCK"
PIDFILE="$RUN_DIR/dockerd.pid"
DATA_ROOT="$STATE_DIR/docker"
EXEC_ROOT="$RUN_DIR/exec"
LOG="$STATE_DIR/dockerd.log"
IMAGE=inbm-test/busybox:1
REG_PORT="${INBM_TEST_REGISTRY_PORT:-5555}"
REG_ADDR="127.0.0.1:$REG_PORT"
REG_DIR="$STATE_DIR/registry"
REG_CONFIG="$STATE_DIR/registry.yml"
REG_PIDFILE="$RUN_DIR/registry.pid"
REG_LOG="$STATE_DIR/registry.log"
WAIT="${INBM_TEST_WAIT:-30}"
PACKAGES=(docker.io docker-compose busybox-static docker-registry apache2-utils mosquitto mosquitto-clients openssl btrfs-progs debootstrap apt-utils dpkg-dev gpg)

say() { printf 'test-env: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

mode=up
with_registry=0
for arg in "$@"; do
  case "$arg" in
    --stop) mode=stop ;;
    --registry) with_registry=1 ;;
    -h | --help) sed -n '2,12p' "$0" >&2; exit 0 ;;
    *) die "unknown argument: $arg (try --help)" ;;
  esac
done

[ "$(id -u)" -eq 0 ] || die "must run as root (installs packages, runs dockerd)"

mkdir -p "$STATE_DIR" "$RUN_DIR"
chmod 0700 "$STATE_DIR" "$RUN_DIR"
# One caller at a time: node:test runs test files in parallel processes.
exec 9>"$RUN_DIR/lock"
flock -w 900 9 || die "timed out waiting for $RUN_DIR/lock"

# pid_alive PIDFILE NAME: the pidfile names a live process whose command is NAME. (/run is not a
# tmpfs here, so a pidfile can survive a reboot and name an unrelated process.)
pid_alive() {
  local pid
  [ -s "$1" ] || return 1
  pid="$(cat "$1" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ]
}

# stop_pid PIDFILE NAME SECONDS: TERM, wait, then KILL.
stop_pid() {
  local pid i
  if ! pid_alive "$1" "$2"; then
    rm -f "$1"
    return 0
  fi
  pid="$(cat "$1")"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < $3 * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "$2 ($pid) ignored SIGTERM for $3 s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$1"
}

if [ "$mode" = stop ]; then
  stop_pid "$REG_PIDFILE" docker-registry 10
  # dockerd stops its containers (10 s grace each, in parallel) and its containerd on SIGTERM.
  stop_pid "$PIDFILE" dockerd 40
  say "stopped"
  exit 0
fi

# ---- 1. packages ---------------------------------------------------------------------------
missing=()
for p in "${PACKAGES[@]}"; do
  # Captured, not piped into `grep -q`: with pipefail, grep quitting early can SIGPIPE dpkg and
  # make an installed package look missing.
  st="$(dpkg -s "$p" 2>/dev/null)" || st=
  [[ "$st" == *$'\nStatus: install ok installed'* ]] || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 "${missing[@]}" >&2
fi

export DOCKER_HOST="$DOCKER_HOST_URL"
# Debian's CLI by full path: some machines of this kind also carry a newer static docker CLI in
# /usr/local/bin, ahead in PATH (it negotiates down to this engine's API and works too).
docker() { /usr/bin/docker "$@"; }
engine_up() { timeout 10 /usr/bin/docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

# ---- 2. private dockerd --------------------------------------------------------------------
storage_driver() {
  if [ -n "${INBM_TEST_STORAGE_DRIVER:-}" ]; then
    echo "$INBM_TEST_STORAGE_DRIVER"
    return
  fi
  # A data root that already holds one driver's layers keeps it.
  for d in overlay2 vfs; do
    if [ -d "$DATA_ROOT/$d" ] && [ -n "$(ls -A "$DATA_ROOT/$d" 2>/dev/null)" ]; then
      echo "$d"
      return
    fi
  done
  # Otherwise: overlay2 if the kernel can mount an overlay whose upper dir is on the data root
  # (fails on an overlay/aufs-backed root or without the module), else the slow but safe vfs.
  local t
  t="$(mktemp -d "$STATE_DIR/.ovl-probe.XXXXXX")"
  mkdir -p "$t/lower" "$t/upper" "$t/work" "$t/merged"
  if mount -t overlay overlay -o "lowerdir=$t/lower,upperdir=$t/upper,workdir=$t/work" "$t/merged" 2>/dev/null; then
    umount "$t/merged"
    echo overlay2
  else
    echo vfs
  fi
  rm -rf "$t"
}

start_dockerd() {
  local driver flags=()
  driver="$(storage_driver)"
  mkdir -p "$DATA_ROOT" "$EXEC_ROOT"
  flags=(
    --bridge=none --iptables=false --ip-masq=false
    --data-root "$DATA_ROOT" --exec-root "$EXEC_ROOT" --pidfile "$PIDFILE"
    -H "$DOCKER_HOST_URL" --storage-driver "$driver"
  )
  # --ip6tables exists from 20.10 on (off by default); pass it only where it is known.
  local help
  help="$(dockerd --help 2>&1)" || true
  if [[ "$help" == *--ip6tables* ]]; then flags+=(--ip6tables=false); fi
  say "starting dockerd (storage driver $driver), log $LOG"
  printf '\n==== %s dockerd %s\n' "$(date -Is)" "${flags[*]}" >>"$LOG"
  # 9>&-: the daemon must not inherit the lock, or every later call would wait on it forever.
  setsid nohup dockerd "${flags[@]}" </dev/null >>"$LOG" 2>&1 9>&- &
}

if ! engine_up; then
  if pid_alive "$PIDFILE" dockerd; then
    say "dockerd $(cat "$PIDFILE") is running but not answering yet; waiting"
  else
    rm -f "$PIDFILE"
    start_dockerd
  fi
  deadline=$((SECONDS + WAIT))
  until engine_up; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      say "dockerd did not answer on $SOCK within ${WAIT}s; last lines of $LOG:"
      tail -n 40 "$LOG" >&2 || true
      exit 1
    fi
    sleep 0.2
  done
  say "dockerd $(docker version --format '{{.Server.Version}}') up on $SOCK"
fi

# ---- 3. test image -------------------------------------------------------------------------
if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
  say "building $IMAGE from /bin/busybox"
  root="$(mktemp -d "$STATE_DIR/.rootfs.XXXXXX")"
  trap 'rm -rf "$root"' EXIT
  mkdir -p "$root/bin" "$root/etc" "$root/root" "$root/tmp" "$root/var" "$root/usr" \
    "$root/proc" "$root/sys" "$root/dev"
  chmod 1777 "$root/tmp"
  cp /bin/busybox "$root/bin/busybox"
  for a in $(/bin/busybox --list); do
    [ "$a" = busybox ] || ln -sf busybox "$root/bin/$a"
  done
  ln -s bin "$root/sbin"
  ln -s ../bin "$root/usr/bin"
  ln -s ../bin "$root/usr/sbin"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  tar -C "$root" --numeric-owner --owner=0 --group=0 -cf - . |
    docker import \
      --change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'CMD ["/bin/sh"]' \
      --change 'LABEL org.opencontainers.image.title=inbm-test-busybox' \
      - "$IMAGE" >/dev/null
  rm -rf "$root"
  trap - EXIT
fi

# ---- optional: local registry --------------------------------------------------------------
if [ "$with_registry" = 1 ]; then
  reg_up() { timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$REG_PORT" 2>/dev/null; }
  if ! pid_alive "$REG_PIDFILE" docker-registry || ! reg_up; then
    stop_pid "$REG_PIDFILE" docker-registry 5
    reg_up && die "something else listens on $REG_ADDR"
    mkdir -p "$REG_DIR"
    cat >"$REG_CONFIG" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $REG_DIR
  delete:
    enabled: true
http:
  addr: $REG_ADDR
EOF
    say "starting docker-registry on $REG_ADDR, log $REG_LOG"
    setsid nohup docker-registry serve "$REG_CONFIG" </dev/null >>"$REG_LOG" 2>&1 9>&- &
    echo $! >"$REG_PIDFILE"
    deadline=$((SECONDS + WAIT))
    until reg_up; do
      if [ "$SECONDS" -ge "$deadline" ] || ! pid_alive "$REG_PIDFILE" docker-registry; then
        say "docker-registry did not listen on $REG_ADDR; last lines of $REG_LOG:"
        tail -n 20 "$REG_LOG" >&2 || true
        exit 1
      fi
      sleep 0.1
    done
  fi
fi

echo "export DOCKER_HOST=$DOCKER_HOST_URL"
