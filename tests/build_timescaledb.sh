#!/usr/bin/env bash
# Build TimescaleDB from the vendored source and install it into this machine's PostgreSQL server, so the
# tests' servers can preload it and every [timescaledb] test variant runs (Debian 12 packages none).
#
#   tests/build_timescaledb.sh          build and install unless this version is installed already
#
# PARKMON_VENDOR_DIR: the folder holding timescaledb-<version>.tar.gz and SHA256SUMS (default: ../shared/vendor
# beside the repository). Exit 0: installed (now or before); 1: could not (the reason is printed last).
# Installs cmake, the server's headers, gcc, libc6-dev and make with apt-get when missing (sudo when not root).
set -euo pipefail

VERSION=2.28.3
repo=$(cd "$(dirname "$0")/.." && pwd)
vendor=${PARKMON_VENDOR_DIR:-$repo/../shared/vendor}
tarball=timescaledb-$VERSION.tar.gz
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

fail() { echo "!!! TimescaleDB not built: $*" >&2; exit 1; }

# the server the tests start (tests/pg_server.py): the highest major version under /usr/lib/postgresql
major=$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1)
[ -n "$major" ] || fail "no PostgreSQL server in /usr/lib/postgresql (apt-get install postgresql)"
control=/usr/share/postgresql/$major/extension/timescaledb.control
if grep -qs "^default_version = '$VERSION'" "$control"; then
  echo "    TimescaleDB $VERSION already installed ($control): build skipped"
  exit 0
fi

[ -f "$vendor/$tarball" ] || fail "$vendor/$tarball not found (set PARKMON_VENDOR_DIR to the folder holding it)"
[ -f "$vendor/SHA256SUMS" ] || fail "$vendor/SHA256SUMS not found: the tarball cannot be checked"
# refuse a tarball that is not the one the checksum names: a corrupted or swapped source
( cd "$vendor" && grep " $tarball\$" SHA256SUMS | sha256sum --check --status ) \
  || fail "$vendor/$tarball does not match its sha256 in $vendor/SHA256SUMS (corrupted or replaced): refusing to build it"

# libc6-dev: gcc only recommends it, and these installs skip recommends
missing=()
for pkg in cmake "postgresql-server-dev-$major" gcc libc6-dev make; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> apt-get install ${missing[*]} (to build TimescaleDB)"
  { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null; } || fail "could not install ${missing[*]} with apt-get"
fi
pg_config=/usr/lib/postgresql/$major/bin/pg_config
for tool in cmake gcc make "$pg_config"; do
  command -v "$tool" >/dev/null || fail "$tool not found (no compiler / build tools on this machine)"
done

work=$(mktemp -d -t parkmon-timescaledb-XXXXXX)
trap 'rm -rf "$work"' EXIT
start=$SECONDS
echo "==> building TimescaleDB $VERSION against PostgreSQL $major in $work (about 2 minutes on 2 cores)"
tar -xzf "$vendor/$tarball" -C "$work"
src=$(find "$work" -mindepth 1 -maxdepth 1 -type d | head -1)
log=$work/build.log
# progress: one line per stage; the compiler's output goes to the log, shown only when a stage fails
stage() {
  local name=$1; shift
  echo "    $name"
  "$@" >>"$log" 2>&1 || { tail -40 "$log" >&2; fail "$name failed (the end of its log is above)"; }
}
cd "$src"
stage "configure (cmake)" ./bootstrap -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF -DWARNINGS_AS_ERRORS=OFF \
  -DGENERATE_DOWNGRADE_SCRIPT=OFF -DCMAKE_BUILD_TYPE=Release -DPG_CONFIG="$pg_config"
cd build
stage "compile (make -j$(nproc))" make -j"$(nproc)"
stage "install into PostgreSQL $major's lib/ and share/extension/" $SUDO make install
grep -qs "^default_version = '$VERSION'" "$control" || fail "make install did not leave $control at $VERSION"
echo "    TimescaleDB $VERSION installed in $((SECONDS - start)) s"
