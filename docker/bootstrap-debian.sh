#!/usr/bin/env bash
# Build a minimal Debian root filesystem offline (no registry needed) and write it as a tar to stdout,
# ready for `docker import`. Used by runner/bases.py when a debian:SUITE base can be neither found
# locally nor pulled. Needs root and debootstrap (apt-get install debootstrap).
#
#   bootstrap-debian.sh SUITE [MIRROR] > rootfs.tar
set -euo pipefail
suite=${1:?usage: bootstrap-debian.sh SUITE [MIRROR]}
mirror=${2:-http://deb.debian.org/debian}
case "$suite" in *[!a-z0-9-]*) echo "bad suite name: $suite" >&2; exit 2;; esac
dir=$(mktemp -d "${TMPDIR:-/tmp}/zipstore-rootfs-$suite.XXXXXX")
trap 'rm -rf "$dir"' EXIT
# debootstrap knows a suite by its script; a suite newer than this debootstrap (bookworm's has no
# "forky") is bootstrapped with the script of sid, which every testing suite shares.
scripts=${DEBOOTSTRAP_DIR:-/usr/share/debootstrap}/scripts
script=()
if [ ! -e "$scripts/$suite" ]; then
  echo "debootstrap has no script named $suite: using the sid script" >&2
  script=("$scripts/sid")
fi
debootstrap --variant=minbase "$suite" "$dir" "$mirror" "${script[@]}" >&2
rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/archives/*.deb
tar --numeric-owner -C "$dir" -c .
