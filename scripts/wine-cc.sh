#!/usr/bin/env bash
# Compiles plain Win32 C programs for the bench's reference rows, under Wine: the MinGW-w64 cross
# compiler (Debian's gcc-mingw-w64-x86-64) is installed into the cached Wine root on first use
# (chroot + apt-get, as scripts/wine-root.sh installs wine64), not by `npm test`.
#
#   scripts/wine-cc.sh OUTDIR SOURCE.c...     writes OUTDIR/SOURCE.exe for each source
#
# The sources are copied into the root, compiled there with -O2 -Wall -Wextra (warnings are shown;
# there should be none), and the .exe files copied out. The compiler's version is printed on the
# last line of stdout. Exit status: 0 when every program was built.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
log() { echo "[wine-cc] $*" >&2; }
if [ "$(id -u)" != 0 ]; then
  log "compiling under Wine needs root (chroot); you are uid $(id -u)"
  exit 3
fi
outdir=${1:?usage: scripts/wine-cc.sh OUTDIR SOURCE.c...}; shift
[ $# -gt 0 ] || { log "no sources given"; exit 2; }
ROOT=$("$here/wine-root.sh" | tail -n1)
CC=x86_64-w64-mingw32-gcc

# The root's mounts are wine.sh's too: take its lock, so no Wine run is using the root meanwhile.
exec 8>"$ROOT.run.lock"
if ! flock -w "${WINPIPE_LOCK_WAIT:-1800}" 8; then
  log "$ROOT is still locked by another run after ${WINPIPE_LOCK_WAIT:-1800} s"
  exit 75
fi
work=$(mktemp -d "$ROOT/tmp/winpipe-cc.XXXXXX")
cleanup() {
  for m in "$ROOT/dev" "$ROOT/proc"; do
    if mountpoint -q "$m"; then umount -R "$m" 2>/dev/null || umount -l "$m" || true; fi
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mountpoint -q "$ROOT/dev" || mount --rbind /dev "$ROOT/dev"
mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"

# (Tested inside the root: the compiler is a symbolic link through /etc/alternatives.)
if ! chroot "$ROOT" test -x "/usr/bin/$CC"; then
  log "installing gcc-mingw-w64-x86-64 inside the root (once; about a minute)"
  # dpkg --configure -a first: an install that was interrupted leaves packages half-configured.
  chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive sh -c \
    'dpkg --configure -a && apt-get update -qq \
      && apt-get install -y -qq --no-install-recommends gcc-mingw-w64-x86-64 && apt-get clean' \
    >"$ROOT.mingw-install.log" 2>&1 || {
    log "ERROR: gcc-mingw-w64-x86-64 install failed; see $ROOT.mingw-install.log"
    exit 4
  }
fi

mkdir -p "$outdir"
inner=${work#"$ROOT"}
rc=0
for src in "$@"; do
  name=$(basename "$src" .c)
  cp "$src" "$work/$name.c"
  # -municode: the programs' entry point is wmain (arguments as UTF-16, like the W calls take).
  # -static: no MinGW runtime DLL to find at run time.
  if chroot "$ROOT" /usr/bin/env -i PATH=/usr/bin:/bin "$CC" -O2 -Wall -Wextra -municode \
    -static -o "$inner/$name.exe" "$inner/$name.c" >"$work/$name.log" 2>&1; then
    cp "$work/$name.exe" "$outdir/$name.exe"
  else
    log "ERROR: $CC failed on $src"
    rc=1
  fi
  if [ -s "$work/$name.log" ]; then
    log "$CC said, on $src:"
    cat "$work/$name.log" >&2
  fi
done
chroot "$ROOT" "$CC" --version | head -n1
exit $rc
