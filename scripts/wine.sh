#!/usr/bin/env bash
# Runs a pinned Windows runtime under Wine 10 in the cached trixie root, with this checkout bound
# in at /winpipe (Z:\winpipe). Windows programs' output goes to files, never to a Linux pipe
# (node.exe dies with EBADF on one); the files are printed after the program exits, stdout first,
# then stderr without the known-harmless Wine and Bun lines (scripts/wine-noise.sh).
#
#   scripts/wine.sh deno|bun|node ARGS...      e.g. scripts/wine.sh deno test -A tests/win
#
# The working directory inside is Z:\winpipe. Exit status is the program's; 130 after Ctrl-C
# (SIGINT), 143 after SIGTERM, 129 after SIGHUP, which stop every Wine process in the root.
#
# Environment:
#   WINPIPE_STDIN=FILE   the program's standard input is FILE, a regular file (default: /dev/null;
#                        a pipe or a terminal is refused: node.exe dies with EBADF on a Linux pipe)
#   WINPIPE_TIMEOUT      seconds before a hung program is killed (default 1800)
#   WINPIPE_LOCK_WAIT    seconds to wait for another run on the same root (default 1800)
#   WINPIPE_WINE_NOISE=1 print stderr as it is, with the known-harmless lines
#   WINPIPE_WINE_ROOT    the root (scripts/wine-root.sh)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
if [ "$(id -u)" != 0 ]; then
  echo "[wine.sh] running under Wine needs root (chroot and bind mounts); you are uid $(id -u)" >&2
  exit 3
fi
tool=${1:?usage: scripts/wine.sh deno|bun|node ARGS...}; shift

stdin=/dev/null
if [ -n "${WINPIPE_STDIN:-}" ]; then
  # Opened here, outside the root, so any readable regular file will do.
  if [ ! -f "$WINPIPE_STDIN" ] || [ ! -r "$WINPIPE_STDIN" ]; then
    echo "[wine.sh] WINPIPE_STDIN=$WINPIPE_STDIN is not a readable regular file (a pipe or a" \
      "terminal cannot be the standard input of a program under Wine here)" >&2
    exit 2
  fi
  stdin=$WINPIPE_STDIN
fi

ROOT=$("$here/wine-root.sh" | tail -n1)
read -r DENO_VER BUN_VER NODE_VER < <(node -e '
  const v = require(process.argv[1]); console.log(v.deno, v.bun, v.node);' "$here/versions.json")

case "$tool" in
  deno) exe="/opt/winpipe/deno-$DENO_VER/deno.exe" ;;
  bun) exe="/opt/winpipe/bun-$BUN_VER/bin/bun.exe" ;;
  node) exe="/opt/winpipe/node-$NODE_VER/bin/node.exe" ;;
  *) echo "unknown runtime $tool" >&2; exit 2 ;;
esac

# One mount set per root at a time: concurrent callers wait here.
# The lock's descriptor is closed for Wine's processes (8>&- below): a straggler (a conhost.exe
# left by a killed child, say) must not hold the root locked after this script ends.
exec 8>"$ROOT.run.lock"
if ! flock -w "${WINPIPE_LOCK_WAIT:-1800}" 8; then
  echo "[wine.sh] $ROOT is still locked by another run after ${WINPIPE_LOCK_WAIT:-1800} s" >&2
  exit 75
fi
out=$(mktemp -d "$ROOT/tmp/winpipe-out.XXXXXX")
cleanup() {
  for m in "$ROOT/winpipe" "$ROOT/dev" "$ROOT/proc"; do
    if mountpoint -q "$m"; then umount -R "$m" 2>/dev/null || umount -l "$m" || true; fi
  done
  rm -rf "$out"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
mkdir -p "$ROOT/winpipe" "$ROOT/tmp/xdg-winpipe"; chmod 700 "$ROOT/tmp/xdg-winpipe"
mountpoint -q "$ROOT/dev" || mount --rbind /dev "$ROOT/dev"
mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
mountpoint -q "$ROOT/winpipe" || mount --bind "$repo" "$ROOT/winpipe"

# Wine's environment inside the root (the program gets more, below).
wine_env=(/usr/bin/env -i HOME=/root PATH=/usr/bin:/bin WINEDEBUG=-all
  WINEPREFIX=/root/.wine-winpipe WINEDLLOVERRIDES="mscoree,mshtml=" XDG_RUNTIME_DIR=/tmp/xdg-winpipe)

# Runs COMMAND in the background and waits for it, so that a signal is handled at once rather
# than when the program ends (bash runs a trap only once the foreground command has finished, and
# timeout(1) puts the program in a process group of its own, which Ctrl-C does not reach). On
# SIGINT, SIGTERM or SIGHUP it stops every Wine process of the root (wineserver -k: this run holds
# the root's lock, so they are this run's, or stragglers) and sets `interrupted` to 128 + the
# signal's number. Sets rc to the command's exit status, or to `interrupted`.
interrupted=
run_stoppable() { # STDIN-FILE LOG-FILE|"" COMMAND...
  local in=$1 log=$2 pid
  shift 2
  trap 'interrupted=130' INT
  trap 'interrupted=143' TERM
  trap 'interrupted=129' HUP
  if [ -n "$log" ]; then "$@" 8>&- <"$in" >"$log" 2>&1 & else "$@" 8>&- <"$in" & fi
  pid=$!
  rc=0
  wait "$pid" || rc=$?
  if [ -n "$interrupted" ]; then
    echo "[wine.sh] interrupted: stopping the Wine processes in $ROOT" >&2
    timeout 30 chroot "$ROOT" "${wine_env[@]}" /usr/lib/wine/wineserver -k 8>&- \
      </dev/null >/dev/null 2>&1 || true
    # The command ends soon after (timeout's --kill-after is the backstop); a second signal
    # only interrupts this wait.
    while kill -0 "$pid" 2>/dev/null; do wait "$pid" || true; done
    rc=$interrupted
  fi
  trap 'exit 130' INT
  trap 'exit 143' TERM
  trap 'exit 129' HUP
}

# Wine makes the prefix on its first run, and updates it when Wine changed (wine.inf is newer than
# the prefix's .update-timestamp), by starting wineboot next to the program: its lines would land
# in the program's stderr, some after the program's own output. Do it here instead, once, with
# its output in $ROOT.wineboot.log.
prefix_current() {
  local want have
  want=$(stat -c %Y "$ROOT/usr/share/wine/wine.inf" 2>/dev/null) || return 1
  have=$(cat "$ROOT/root/.wine-winpipe/.update-timestamp" 2>/dev/null) || return 1
  have=${have%%[[:space:]]*}
  [ "$have" = "$want" ] || [ "${have#disable}" != "$have" ]
}
if ! prefix_current; then
  echo "[wine.sh] preparing the Wine prefix (once; log: $ROOT.wineboot.log)" >&2
  run_stoppable /dev/null "$ROOT.wineboot.log" timeout --kill-after=10 300 \
    chroot "$ROOT" "${wine_env[@]}" /usr/lib/wine/wine64 wineboot -u
  if [ -n "$interrupted" ]; then exit "$interrupted"; fi
  if ! prefix_current; then
    echo "[wine.sh] warning: wineboot -u did not prepare the prefix (exit $rc; see" \
      "$ROOT.wineboot.log); Wine will try again during the run" >&2
  fi
fi

inner_out=${out#"$ROOT"}
# A hung Windows program must not hang the caller: WINPIPE_TIMEOUT seconds (default 1800).
run_stoppable "$stdin" "" timeout --kill-after=10 "${WINPIPE_TIMEOUT:-1800}" chroot "$ROOT" "${wine_env[@]}" \
  DENO_DIR='Z:\root\deno-dir' NO_COLOR=1 WINPIPE_UNDER_WINE=1 WINPIPE_NODE="Z:\opt\winpipe\node-$NODE_VER\bin\node.exe" WINPIPE_BUN="Z:\opt\winpipe\bun-$BUN_VER\bin\bun.exe" WINPIPE_DENO="Z:\opt\winpipe\deno-$DENO_VER\deno.exe" WINPIPE_DEMO_MIB="${WINPIPE_DEMO_MIB:-}" CI="${CI:-}" WINPIPE_BENCH_MIB="${WINPIPE_BENCH_MIB:-}" WINPIPE_BENCH_ROUNDS="${WINPIPE_BENCH_ROUNDS:-}" WINPIPE_BENCH_CHUNKS="${WINPIPE_BENCH_CHUNKS:-}" WINPIPE_BENCH_SINK="${WINPIPE_BENCH_SINK:-}" WINPIPE_BENCH_HTTP_CONNS="${WINPIPE_BENCH_HTTP_CONNS:-}" WINPIPE_BENCH_HTTP_SECONDS="${WINPIPE_BENCH_HTTP_SECONDS:-}" WINPIPE_CHAOS_SECONDS="${WINPIPE_CHAOS_SECONDS:-}" WINPIPE_CHAOS_SEED="${WINPIPE_CHAOS_SEED:-}" \
  /bin/sh -c 'cd /winpipe && exec /usr/lib/wine/wine64 "$0" "$@" >"'"$inner_out"'/stdout" 2>"'"$inner_out"'/stderr"' \
  "$exe" "$@"
[ $rc = 124 ] && echo "[wine.sh] $tool $* timed out after ${WINPIPE_TIMEOUT:-1800} s" >&2
cat "$out/stdout"
"$here/wine-noise.sh" <"$out/stderr" >&2
exit $rc
