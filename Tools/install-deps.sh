#!/usr/bin/env bash
# Installs the system libraries fmodel builds against (HDF5, oneDNN, libjpeg-turbo: libjpeg and
# TurboJPEG, libpng, zlib).
set -euo pipefail
packages=(libhdf5-dev libdnnl-dev libturbojpeg0-dev libjpeg62-turbo-dev libpng-dev zlib1g-dev pkg-config)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
