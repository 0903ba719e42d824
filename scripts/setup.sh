#!/usr/bin/env bash
# Install everything podnet needs on a fresh Debian 12 machine (run as root), then the
# Python environment in .venv. Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(python3 python3-venv python3-pip nftables libnftables1 iproute2 iputils-ping
              conntrack ca-certificates)

# Benchmarks drive podnet with standard load tools and compare it with peers.
if [[ ${1:-} == --bench ]]; then
  APT_PACKAGES+=(iperf3 dnsperf dnsmasq-base)
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "podnet setup: need root to install: ${missing[*]}" >&2
    exit 1
  fi
  echo "podnet setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian's python3 (3.11 on bookworm): the venv does not depend on pyenv or any other
# Python the machine may carry.
PY=/usr/bin/python3
if [[ ! -x .venv/bin/python ]]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.podnet-installed
if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
  .venv/bin/pip install -q --upgrade pip >/dev/null 2>&1 || true
  .venv/bin/pip install -q -e ".[test]" 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/python -c "import podnet, aiohttp, kubernetes_validate, jwt, cryptography" 
  touch "$stamp"
fi
echo "podnet setup: ready (.venv/bin/podnet)" >&2
