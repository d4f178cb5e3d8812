#!/usr/bin/env bash
# Copies standard input to standard output without the lines that Wine and Bun for Windows print
# under Wine and that say nothing about the program. scripts/wine.sh passes the Windows program's
# stderr through it (never its stdout, which may be binary data). Only whole lines that match one
# of the patterns below are dropped; input with none of them passes unchanged, byte for byte.
#
#   scripts/wine-noise.sh < stderr-file
#
# WINPIPE_WINE_NOISE=1 keeps every line (to see what was dropped).
set -euo pipefail
export LC_ALL=C

# Extended regular expressions, each matched against a whole line (grep -x), with or without a
# carriage return at its end. Add a pattern only for a line known to be harmless, quoting it.
patterns=(
  # Wine, when it makes a missing prefix. (scripts/wine.sh prepares the prefix before the
  # program starts, so the program itself does not print this unless that failed.)
  "wine: created the configuration directory '[^']*'"
  # wineboot, when it has made or updated a prefix.
  "wine: configuration in (L\"[^\"]*\"|'[^']*') has been updated\\."
  # wineboot: the root has 64-bit Wine only (wine64), so the prefix's 32-bit half (syswow64) has
  # no rundll32.exe to install it with. 32-bit programs are not used.
  'wine: failed to open L"C:\\\\windows\\\\syswow64\\\\rundll32\.exe": c0000135'
  # bun.exe under Wine, at each start, once for each of package.json and tsconfig.json
  # ("You don't need to do anything, but this indicates a bug": a check of Bun's own).
  "Internal error: directory mismatch for directory \"[^\"]*\", fd [0-9]+\\[handle\\]\\. You don't need to do anything, but this indicates a bug\\."
)

if [ "${WINPIPE_WINE_NOISE:-}" = 1 ]; then exec cat; fi

args=()
for p in "${patterns[@]}"; do args+=(-e "($p)"$'\r?'); done

# Read it all first: when no line matches, it goes out untouched (grep -v would add a missing
# final newline).
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
cat >"$tmp"
if grep -a -q -x -E "${args[@]}" "$tmp"; then
  grep -a -v -x -E "${args[@]}" "$tmp" || true
else
  cat "$tmp"
fi
