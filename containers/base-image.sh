#!/usr/bin/env bash
# A python:3.11-slim stand-in for machines that cannot pull from a registry: Debian
# bookworm (minbase) with python3 (3.11) and venv, from the Debian mirror apt uses,
# imported into podman. The image tests build the Dockerfile on it
# (--build-arg BASE_IMAGE=localhost/ratchet-base:bookworm); users' builds keep
# python:3.11-slim.
#
# The host's CA bundle replaces the image's, so pip and uv inside a build trust
# what the host trusts (a TLS-inspecting proxy's CA, say).
#
# Cached by a key over this script's commands (not its comments), the mirror and the
# CA bundle: the image carries the key as a label, and the root filesystem is kept as
# a tarball, so a second run does nothing and a fresh container storage only
# re-imports. Prints the image name.
#
#   [RATCHET_BASE_IMAGE=name] [RATCHET_IMAGE_CACHE=dir] [DEBIAN_MIRROR=url] containers/base-image.sh
set -euo pipefail

image=${RATCHET_BASE_IMAGE:-localhost/ratchet-base:bookworm}
cache=${RATCHET_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ratchet-image}
ca_bundle=/etc/ssl/certs/ca-certificates.crt
suite=bookworm
packages=python3,python3-venv,ca-certificates

# The first mirror in apt's sources (deb822 or one-line format), else Debian's own.
apt_mirror() {
  local sources=(/etc/apt/sources.list.d/*.sources /etc/apt/sources.list)
  for file in "${sources[@]}"; do
    [ -f "$file" ] || continue
    sed -n -e 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' \
      -e 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]*\)[[:space:]]\+bookworm[[:space:]].*/\2/p' "$file"
  done | grep -v -- -security | head -n 1 || true
}
mirror=${DEBIAN_MIRROR:-$(apt_mirror)}
mirror=${mirror:-http://deb.debian.org/debian}

key=$({ grep -v '^[[:space:]]*#' "$0"; cat "$ca_bundle"; echo "$mirror $suite $packages"; } | sha256sum | cut -c1-16)
if [ "$(podman image inspect --format '{{ index .Labels "ratchet.base-key" }}' "$image" 2>/dev/null)" = "$key" ]; then
  echo "$image"
  exit 0
fi

tarball=$cache/$suite-$key.tar
if [ ! -f "$tarball" ]; then
  [ "$(id -u)" -eq 0 ] || { echo "error: debootstrap needs root to build $image" >&2; exit 1; }
  command -v debootstrap >/dev/null || { echo "error: debootstrap not found (apt-get install debootstrap)" >&2; exit 1; }
  mkdir -p "$cache"
  rootfs=$(mktemp -d "$cache/rootfs.XXXXXX")
  trap 'rm -rf "$rootfs" "$rootfs.log" "$tarball.partial"' EXIT
  echo "Building $image from $mirror (a few minutes; cached in $cache)" >&2
  debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 ||
    { tail -n 20 "$rootfs.log" >&2; exit 1; }
  cp "$ca_bundle" "$rootfs/etc/ssl/certs/ca-certificates.crt"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar --numeric-owner -C "$rootfs" -cf "$tarball.partial" .
  mv "$tarball.partial" "$tarball"
  find "$cache" -maxdepth 1 -name "$suite-*.tar" ! -name "${tarball##*/}" -delete  # older recipes'
fi

podman import --quiet --change "LABEL ratchet.base-key=$key" --change "ENV LANG=C.UTF-8" \
  --change 'CMD ["python3"]' "$tarball" "$image" >/dev/null
echo "$image"
