#!/usr/bin/env bash
# Installs the Hearth daemon as a systemd service from this checkout:
#
#   sudo docker/systemd/install.sh              # build, install, daemon-reload
#   sudo systemctl enable --now hearth
#
# Safe to run again (after `git pull`, to upgrade): it rebuilds, swaps the new
# build into place, refreshes the unit and the `hearth` wrapper, and never
# touches an existing /etc/hearth/hearth.env.
#
#   --unit-only       install the unit, env file and wrapper, keep the build in place
#   HEARTH_PREFIX     where the daemon goes (default /opt/hearth)
#   DESTDIR           stage everything under this root; systemctl is then not run
#
# The checkout is copied to a temporary folder and built there (pnpm install
# compiles the SQLite and BLAKE3 addons: python3, make and g++ are needed), so
# the checkout itself is left as it was.
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
prefix=${HEARTH_PREFIX:-/opt/hearth}
destdir=${DESTDIR:-}
unit_path=/etc/systemd/system/hearth.service
env_path=/etc/hearth/hearth.env
wrapper_path=/usr/local/bin/hearth
wrapper_mark='# installed by hearth docker/systemd/install.sh'
build=1

die () { echo "install.sh: $*" >&2; exit 1; }

for arg in "$@"; do
  case $arg in
    --unit-only) build=0 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) die "unknown argument: $arg (try --help)" ;;
  esac
done

case $prefix in
  /*) ;;
  *) die "HEARTH_PREFIX must be an absolute path, got $prefix" ;;
esac
case $prefix in
  /home/*|/root/*|/run/user/*) die "HEARTH_PREFIX=$prefix is hidden from the service by ProtectHome=yes; use a path such as /opt/hearth" ;;
esac
if [ -z "$destdir" ] && [ "$(id -u)" -ne 0 ]; then
  die "run as root: sudo $0 $*"
fi

node_bin=$(command -v node) || die "Node.js 20.19 or newer is needed (no node in PATH)"
node_bin=$(readlink -f "$node_bin")
"$node_bin" -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' \
  || die "Node.js 20.19 or newer is needed (found $("$node_bin" --version))"

if [ "$build" = 1 ]; then
  command -v pnpm >/dev/null || die "pnpm 10 is needed: npm install -g pnpm@10"
  work=$(mktemp -d "${TMPDIR:-/var/tmp}/hearth-build.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  echo "==> building $src in $work"
  tar -C "$src" --exclude=node_modules --exclude=dist --exclude=.git --exclude='*.tsbuildinfo' -cf - . | tar -C "$work" -xf -
  (cd "$work" && pnpm install --frozen-lockfile && pnpm build)
  echo "==> installing into $destdir$prefix"
  mkdir -p "$(dirname "$destdir$prefix")"
  rm -rf "$destdir$prefix.new" "$destdir$prefix.old"
  (cd "$work" && pnpm --filter @hearth/node deploy --legacy --prod "$destdir$prefix.new")
  (cd "$destdir$prefix.new" && "$node_bin" -e "require('better-sqlite3')(':memory:').close(); require('@c4312/blake3-native')") \
    || die "the SQLite or BLAKE3 addon in $destdir$prefix.new does not load"
  if [ -e "$destdir$prefix" ]; then mv "$destdir$prefix" "$destdir$prefix.old"; fi
  mv "$destdir$prefix.new" "$destdir$prefix"
  rm -rf "$destdir$prefix.old"
fi
[ -f "$destdir$prefix/dist/bundle/hearth.mjs" ] || die "no daemon at $destdir$prefix/dist/bundle/hearth.mjs (run without --unit-only)"

echo "==> unit $destdir$unit_path (node: $node_bin)"
mkdir -p "$destdir$(dirname "$unit_path")"
sed -e "s#^ExecStart=/usr/bin/node /opt/hearth/#ExecStart=$node_bin $prefix/#" \
  "$src/docker/systemd/hearth.service" > "$destdir$unit_path.tmp"
chmod 0644 "$destdir$unit_path.tmp"
mv "$destdir$unit_path.tmp" "$destdir$unit_path"

if [ -e "$destdir$env_path" ]; then
  echo "==> keeping $destdir$env_path"
else
  echo "==> settings template $destdir$env_path"
  mkdir -p "$destdir$(dirname "$env_path")"
  (umask 077 && cat > "$destdir$env_path" <<'EOF'
# Hearth daemon settings, read by hearth.service: one VARIABLE=value a line.
# The README's configuration table lists every variable; an unknown HEARTH_*
# name stops the daemon (exit 2). Apply a change: systemctl restart hearth
#
# To serve other machines, listen on every interface. Writes always need the
# bearer token: set one (`openssl rand -hex 32`) or leave it unset and read the
# generated one from /var/lib/hearth/api-token.
#HEARTH_HTTP_HOST=0.0.0.0
#HEARTH_API_TOKEN=
#
# Failure-domain labels other nodes spread copies over, peers to dial:
#HEARTH_LABELS=region=eu,rack=home
#HEARTH_BOOTSTRAP=/ip4/192.168.1.20/tcp/9876
#
# Hard quota per storage layer (a layer not named is unlimited; keep the total
# below the free disk space):
#HEARTH_QUOTAS=reciprocal=200GiB,gift=50GiB,cache=5GiB
#
# libp2p port (WebSockets on the next one), LAN discovery, log level:
#P2P_PORT=9876
#DISABLE_MDNS=false
#HEARTH_LOG_LEVEL=info
#
# Keep the graceful-stop bound below the unit's TimeoutStopSec (30 s):
#HEARTH_SHUTDOWN_TIMEOUT_MS=20000
EOF
  )
fi

if [ -e "$destdir$wrapper_path" ] && ! grep -qF "$wrapper_mark" "$destdir$wrapper_path"; then
  echo "==> $destdir$wrapper_path exists and is not ours: leaving it"
else
  echo "==> CLI wrapper $destdir$wrapper_path"
  mkdir -p "$destdir$(dirname "$wrapper_path")"
  cat > "$destdir$wrapper_path.tmp" <<EOF
#!/bin/sh
$wrapper_mark
# the hearth CLI, pointed at the service's data folder (readable by root only)
HEARTH_DATA=\${HEARTH_DATA:-/var/lib/hearth} exec $node_bin $prefix/dist/bundle/hearth.mjs "\$@"
EOF
  chmod 0755 "$destdir$wrapper_path.tmp"
  mv "$destdir$wrapper_path.tmp" "$destdir$wrapper_path"
fi

if [ -z "$destdir" ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  echo
  if systemctl is-active --quiet hearth; then
    echo "hearth is running the previous build: systemctl restart hearth"
  else
    echo "Start it now and at every boot:  systemctl enable --now hearth"
  fi
else
  echo
  echo "Not reloading systemd (DESTDIR set or systemd not running). Then:"
  echo "  systemctl daemon-reload && systemctl enable --now hearth"
fi
echo "Check it:  sudo hearth status   |   journalctl -u hearth -f"
