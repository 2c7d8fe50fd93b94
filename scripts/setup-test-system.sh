#!/usr/bin/env bash
# System packages the test suite needs, installed from Debian's archive when
# missing: iproute2 and iptables for the network-namespace tests (NAT,
# relays, partitions), curl, and Debian's prometheus package for promtool. Idempotent and quick when everything is there; it
# needs root and apt-get to install, and without them it only says what is
# missing (the tests that need it then skip and say why).
set -euo pipefail

need=()
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v iptables >/dev/null 2>&1 || need+=(iptables)
command -v curl >/dev/null 2>&1 || need+=(curl)
# promtool, to check /metrics as Prometheus reads it (the server itself is not started)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-test-system: missing ${need[*]} (needs root and apt-get to install); the tests that use them will skip" >&2
  exit 0
fi
echo "setup-test-system: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
# packages such as prometheus start a service on install: none may run here
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
if ! apt-get install -y --no-install-recommends "${need[@]}" >/tmp/hearth-apt.log 2>&1; then
  apt-get update >>/tmp/hearth-apt.log 2>&1
  apt-get install -y --no-install-recommends "${need[@]}" >>/tmp/hearth-apt.log 2>&1 || { cat /tmp/hearth-apt.log >&2; exit 1; }
fi
