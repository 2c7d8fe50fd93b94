#!/usr/bin/env bash
# Installs the baselines the benchmarks run against (Debian packages):
# b3sum (BLAKE3 reference), nginx (static file server), wrk (HTTP load).
set -euo pipefail
need=()
for pkg in b3sum nginx wrk; do
  command -v "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -eq 0 ]; then echo "bench baselines present: b3sum nginx wrk"; exit 0; fi
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
