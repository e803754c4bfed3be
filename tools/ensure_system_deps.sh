#!/usr/bin/env bash
# Installs the Debian packages that building and testing tinysense needs.
# As root it runs apt-get; otherwise it prints the exact command and fails.
set -euo pipefail

# gcc-xtensa-lx106 (+ binutils, picolibc for math.h): the Xtensa portability check of the C cores.
packages=(gcc make cmake gcc-multilib valgrind mosquitto gcc-xtensa-lx106 binutils-xtensa-lx106 picolibc-xtensa-lx106-elf)
# Extra packages a caller needs on top (space-separated), e.g. for a single feature.
read -r -a extra <<< "${TINYSENSE_EXTRA_PACKAGES:-}"
packages+=("${extra[@]}")
# A Debian system Python needs python3-venv for `python3 -m venv`.
python3 -c "import ensurepip, venv" 2>/dev/null || packages+=(python3-venv)

missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    echo "Installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    echo "tinysense needs these Debian packages; run:" >&2
    echo "  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
