#!/usr/bin/env bash
# sota-root.sh — the heavy fixture of the OS-update (SOTA) tests, built once and cached: a
# loop-mounted btrfs image whose subvolume `base` holds a Debian 12 root made by
# `debootstrap --variant=minbase bookworm`. Tests never write to `base`: each one takes its own
# writable snapshot of it (`btrfs subvolume snapshot MNT/base MNT/work/<name>`) and deletes it after.
#
#   bash scripts/sota-root.sh            build if missing (cold ≈ 1 min, needs Debian's mirror),
#                                        mount if not mounted; stdout's last line is
#                                        `SOTA_MNT=/var/lib/inbm-test/sota/<version>/mnt`
#   bash scripts/sota-root.sh --remove   unmount and delete the cache of this version
#
# Idempotent and safe from several processes at once (one flock). As root, Debian 12, with
# btrfs-progs and debootstrap (installed from Debian when missing). The cache is keyed by VERSION:
# change it when the recipe changes, and the next call builds a new image beside the old one.
# The base has no apt sources (tests add a local file: repository), no apt lists, no caches.
#
# Environment: INBM_SOTA_CACHE (default /var/lib/inbm-test/sota), INBM_SOTA_MIRROR (default: the
# first Debian URI of the host's apt sources, else http://deb.debian.org/debian).
set -euo pipefail

VERSION=bookworm-minbase-1
CACHE=${INBM_SOTA_CACHE:-/var/lib/inbm-test/sota}
DIR="$CACHE/$VERSION"
IMG="$DIR/root.img"
MNT="$DIR/mnt"
SIZE=2G

log() { echo "sota-root: $*" >&2; }

[[ $(id -u) -eq 0 ]] || { log "must run as root (loop devices, mount, chroot)"; exit 1; }
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9

need() {
  local missing=()
  command -v mkfs.btrfs >/dev/null || missing+=(btrfs-progs)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v apt-ftparchive >/dev/null || missing+=(apt-utils)
  command -v dpkg-deb >/dev/null || missing+=(dpkg-dev)
  if ((${#missing[@]} > 0)); then
    log "installing ${missing[*]}"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
  fi
}

mounted() { mountpoint -q "$MNT"; }

if [[ ${1:-} == --remove ]]; then
  if mounted; then umount "$MNT"; fi
  rm -rf "$DIR"
  log "removed $DIR"
  exit 0
fi

need

mirror() {
  if [[ -n ${INBM_SOTA_MIRROR:-} ]]; then echo "$INBM_SOTA_MIRROR"; return; fi
  # The host's own mirror (deb822 or one-line format), so a proxy/mirror set up there is reused.
  local uri
  uri=$(grep -hsE '^\s*(URIs:|deb\s)' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list |
    grep -E 'debian/?(\s|$)' | grep -v security | head -n1 |
    sed -E 's/^\s*URIs:\s*//; s/^\s*deb\s+(\[[^]]*\]\s+)?//; s/\s.*$//') || true
  echo "${uri:-http://deb.debian.org/debian}"
}

if [[ ! -f $IMG ]]; then
  mkdir -p "$DIR"
  truncate -s "$SIZE" "$IMG.tmp"
  mkfs.btrfs -q "$IMG.tmp" >&2
  mv "$IMG.tmp" "$IMG"
fi
mkdir -p "$MNT"
# subvolid=5: the top level, whatever a rollback test left as the default subvolume.
if ! mounted; then mount -o loop,subvolid=5 "$IMG" "$MNT"; fi

if [[ ! -f $MNT/base/.inbm-ready ]]; then
  # A build cut short leaves `base.new`: start it again from scratch.
  if [[ -d $MNT/base.new ]]; then btrfs subvolume delete "$MNT/base.new" >/dev/null; fi
  if [[ -d $MNT/base ]]; then btrfs subvolume delete "$MNT/base" >/dev/null; fi
  btrfs subvolume create "$MNT/base.new" >/dev/null
  url=$(mirror)
  log "debootstrap --variant=minbase bookworm from $url (about a minute)"
  start=$(date +%s)
  debootstrap --variant=minbase bookworm "$MNT/base.new" "$url" >"$DIR/debootstrap.log" 2>&1 ||
    { log "debootstrap failed; see $DIR/debootstrap.log"; exit 1; }
  # No sources and no lists: the tests' apt sees only the local repository they add. No daemons
  # start inside the chroot, whatever a package's maintainer scripts ask.
  rm -f "$MNT/base.new/etc/apt/sources.list"
  rm -rf "$MNT/base.new/var/lib/apt/lists/"* "$MNT/base.new/var/cache/apt/archives/"*.deb
  printf '#!/bin/sh\nexit 101\n' >"$MNT/base.new/usr/sbin/policy-rc.d"
  chmod 755 "$MNT/base.new/usr/sbin/policy-rc.d"
  touch "$MNT/base.new/.inbm-ready"
  mv "$MNT/base.new" "$MNT/base"
  log "built in $(($(date +%s) - start)) s"
fi
mkdir -p "$MNT/work"
# Test roots are named <name>-<pid>-<id>[.snapshots]: those of test processes that are gone (killed
# before their cleanup ran) are deleted, nested snapshot subvolumes first.
for dir in "$MNT"/work/*; do
  [[ -e $dir ]] || continue
  pid=$(basename "$dir" .snapshots | sed -nE 's/^.*-([0-9]+)-[0-9a-f]{8}$/\1/p')
  [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null || continue
  for sub in "$dir"/*; do
    if btrfs subvolume show "$sub" >/dev/null 2>&1; then btrfs subvolume delete "$sub" >/dev/null; fi
  done
  if btrfs subvolume show "$dir" >/dev/null 2>&1; then btrfs subvolume delete "$dir" >/dev/null; else rm -rf "$dir"; fi
done
echo "SOTA_MNT=$MNT"
