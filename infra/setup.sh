#!/usr/bin/env bash
# `make setup`: everything the project needs, installed by its own files. Idempotent, and
# fast when nothing changed: built services and broker jars are cached under
# ~/.cache/ingestlab keyed by their lock files (see lib/ingestlab/build/artifacts.py).
set -euo pipefail
cd "$(dirname "$0")/.."

# Toolchains: one clear line for whatever is missing, then stop.
missing=()
for tool in python3 java mvn node npm cargo cmake make g++; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
  echo "setup: missing toolchain(s): ${missing[*]} (install them; README.md lists versions)" >&2
  exit 1
fi

# System packages from Debian: headers librdkafka is built against (node-rdkafka and the
# rdkafka crate compile it from source); wrk (closed-loop cross-check) and nginx with the echo
# module (the trivial reference endpoint for engine benchmarks).
APT_PACKAGES=(libssl-dev zlib1g-dev pkg-config wrk nginx-light libnginx-mod-http-echo)
# The workbook's container engine and what its images are built with (build/images/):
# docker.io (dockerd, started by the workbook itself with its own data root, no bridge),
# debootstrap (the Debian minbase root of the conventional images), busybox-static (the shell
# of the minimal Kafka image). Without recommends: they would add git, apparmor, needrestart.
APT_IMAGE_PACKAGES=(docker.io debootstrap busybox-static)
missing_packages() {
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || echo "$pkg"
  done
}
mapfile -t need < <(missing_packages "${APT_PACKAGES[@]}")
mapfile -t need_images < <(missing_packages "${APT_IMAGE_PACKAGES[@]}")
all_need=("${need[@]}" "${need_images[@]}")
if ((${#all_need[@]})); then
  echo "setup: installing system packages: ${all_need[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: need root to apt-get install ${all_need[*]} (run as root or install them first)" >&2
    exit 1
  fi
  apt-get update -qq
  # Debian starts nginx on port 80 of every interface when it is installed, and docker.io's
  # dockerd with the default bridge; ingestlab runs its own nginx on loopback and its own
  # dockerd without a bridge, so service starts are refused for the duration of the install.
  policy=/usr/sbin/policy-rc.d
  [ -e "$policy" ] || { printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; trap 'rm -f "$policy"' EXIT; }
  if ((${#need[@]})); then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  if ((${#need_images[@]})); then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_images[@]}" >/dev/null
  fi
fi

# Python: .venv with the package in editable mode; reinstalled when pyproject.toml changes.
stamp=.venv/.ingestlab-pyproject.sha256
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: creating .venv and installing ingestlab[dev]"
  python3 -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev]'
  echo "$want" > "$stamp"
fi

# Broker jars, Node modules (with node-rdkafka's compiled librdkafka), the Rust binaries,
# oha (the native open-loop generator; about 3.5 min to compile the first time), and the
# container images built from them (minimal and conventional; the workbook's own dockerd is
# started for the build and stopped after it).
.venv/bin/ingestlab build
