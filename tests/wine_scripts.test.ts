// The Linux side of the Wine runs: scripts/wine-noise.sh (the known-harmless lines dropped from a
// Windows program's stderr) everywhere but Windows, and scripts/wine.sh itself (WINPIPE_STDIN, the
// filtered stderr) when this is root and the Wine root is ready. Under CI (CI=true) the wine.sh
// tests that cannot run fail instead of skipping, unless WINPIPE_SKIP_WINE=1 (which npm test
// already counts as a failure there).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
/** scripts/wine.sh and its helpers are Linux scripts: Windows and macOS skip them. */
const notLinux = process.platform !== "linux";

function noise(input: string | Uint8Array, env: Record<string, string> = {}): Buffer {
  const r = spawnSync("bash", [join(repo, "scripts", "wine-noise.sh")], {
    input,
    env: { ...process.env, ...env },
  });
  assert.equal(r.status, 0, String(r.stderr));
  return r.stdout;
}

// Lines seen under Wine 10 with deno.exe, bun.exe and node.exe.
const HARMLESS = [
  "wine: created the configuration directory '/root/.wine-winpipe'",
  String.raw`wine: failed to open L"C:\\windows\\syswow64\\rundll32.exe": c0000135`,
  String.raw`wine: configuration in L"/root/.wine-winpipe" has been updated.`,
  String
    .raw`Internal error: directory mismatch for directory "Z:\winpipe\package.json", fd 56[handle]. You don't need to do anything, but this indicates a bug.`,
  String
    .raw`Internal error: directory mismatch for directory "Z:\winpipe\tsconfig.json", fd 60[handle]. You don't need to do anything, but this indicates a bug.`,
];
// Lines like them that may be real trouble, and must stay.
const REAL = [
  String.raw`wine: failed to open L"C:\\windows\\system32\\rundll32.exe": c0000135`,
  String.raw`wine: failed to open L"Z:\\opt\\winpipe\\deno-2.9.5\\deno.exe": c0000135`,
  "wine: could not load kernel32.dll, status c0000135",
  String
    .raw`Internal error: directory mismatch for directory "Z:\winpipe\package.json", fd 56[handle].`,
  String
    .raw`error: Internal error: directory mismatch for directory "Z:\winpipe\package.json", fd 56[handle]. You don't need to do anything, but this indicates a bug.`,
  "error: Uncaught (in promise) PipeError: CreateFileW failed",
];

test("wine-noise.sh drops the known-harmless lines and keeps everything else, in order", {
  skip: notLinux ? "a Linux script (scripts/wine.sh runs it)" : false,
}, () => {
  const lines = ["first", ...HARMLESS.slice(0, 2), ...REAL, ...HARMLESS.slice(2), "last"];
  const out = noise(lines.join("\n") + "\n").toString();
  assert.equal(out, ["first", ...REAL, "last"].join("\n") + "\n");
  // Windows line ends.
  assert.equal(noise(HARMLESS.join("\r\n") + "\r\nkept\r\n").toString(), "kept\r\n");
  // Only the harmless lines: nothing at all.
  assert.equal(noise(HARMLESS.join("\n") + "\n").length, 0);
});

test("wine-noise.sh passes input without those lines through byte for byte", {
  skip: notLinux ? "a Linux script (scripts/wine.sh runs it)" : false,
}, () => {
  const bytes = new Uint8Array(4096).map((_, i) => (i * 7919) & 0xff);
  assert.deepEqual(new Uint8Array(noise(bytes)), bytes);
  assert.equal(noise("no final newline").toString(), "no final newline");
  assert.equal(noise("").length, 0);
});

test("WINPIPE_WINE_NOISE=1 keeps every line", {
  skip: notLinux ? "a Linux script (scripts/wine.sh runs it)" : false,
}, () => {
  const all = HARMLESS.join("\n") + "\n";
  assert.equal(noise(all, { WINPIPE_WINE_NOISE: "1" }).toString(), all);
});

// scripts/wine.sh runs Wine: only as root (chroot, mounts) and on a root made already (making one
// takes minutes and downloads: `npm test` makes it before it runs this file).
const ci = process.env.CI === "true" || process.env.CI === "1";
const skipWine = process.env.WINPIPE_SKIP_WINE === "1";

/** Why wine.sh cannot run here (`wineRoot`: Wine itself, so the Wine root too), or false. */
function wineUnavailable(wineRoot: boolean): string | false {
  if (notLinux) return "scripts/wine.sh is for Linux";
  if (wineRoot && skipWine) return "WINPIPE_SKIP_WINE=1";
  if (process.getuid?.() !== 0) return "scripts/wine.sh needs root";
  if (!wineRoot) return false;
  const v = JSON.parse(readFileSync(join(repo, "scripts", "versions.json"), "utf8"));
  const root = process.env.WINPIPE_WINE_ROOT || "/var/cache/winpipe/wine-trixie";
  const stamp = join(root, `.winpipe-ready-deno-${v.deno}-bun-${v.bun}-node-${v.node}`);
  return existsSync(stamp) ? false : `no ready Wine root at ${root} (npm test makes it)`;
}

/**
 * A test of scripts/wine.sh (`wineRoot`: one that runs Wine). Skipped on Windows, and with
 * WINPIPE_SKIP_WINE=1 if it runs Wine. Elsewhere, when it cannot run (not root, no ready Wine
 * root): skipped, but failed under CI, where `npm test` makes the root before it runs this file.
 */
function wineTest(name: string, wineRoot: boolean, fn: () => void) {
  const why = wineUnavailable(wineRoot);
  const fail = why !== false && ci && !notLinux && !(wineRoot && skipWine);
  test(name, { skip: fail ? false : why, timeout: 600_000 }, () => {
    if (fail) {
      assert.fail(`${why}; under CI this test must run (WINPIPE_SKIP_WINE=1 skips it on purpose)`);
    }
    fn();
  });
}

function wine(args: string[], env: Record<string, string> = {}) {
  return spawnSync("bash", [join(repo, "scripts", "wine.sh"), ...args], {
    cwd: repo,
    env: { ...process.env, WINPIPE_STDIN: "", ...env },
    maxBuffer: 64 << 20,
  });
}

wineTest("wine.sh: WINPIPE_STDIN is the program's standard input, byte for byte", true, () => {
  const dir = mkdtempSync(join(tmpdir(), "winpipe-stdin-"));
  try {
    const input = join(dir, "in.bin");
    const bytes = new Uint8Array(1 << 20).map((_, i) => (i * 2654435761) >>> 24);
    writeFileSync(input, bytes);
    const r = wine(["node", "-e", "process.stdin.pipe(process.stdout)"], {
      WINPIPE_STDIN: input,
    });
    assert.equal(r.status, 0, String(r.stderr));
    assert.equal(r.stdout.length, bytes.length);
    assert.ok(Buffer.from(bytes).equals(r.stdout), "the bytes differ");
    // Without it, standard input is empty (/dev/null).
    const none = wine([
      "node",
      "-e",
      "let n=0;process.stdin.on('data',d=>n+=d.length).on('end',()=>console.log(n))",
    ]);
    assert.equal(none.status, 0, String(none.stderr));
    assert.equal(none.stdout.toString().trim(), "0");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

wineTest(
  "wine.sh refuses a WINPIPE_STDIN that is not a regular file, before running anything",
  false,
  () => {
    for (const path of ["/dev/stdin", "/nonexistent/file", tmpdir()]) {
      const r = wine(["node", "-e", "1"], { WINPIPE_STDIN: path });
      assert.equal(r.status, 2, `${path}: ${r.stderr}`);
      assert.match(String(r.stderr), /WINPIPE_STDIN=.* is not a readable regular file/);
    }
  },
);

wineTest("wine.sh: bun.exe's stderr comes without Bun's directory-mismatch lines", true, () => {
  const r = wine(["bun", "-e", "console.error('to stderr'); console.log('to stdout')"]);
  assert.equal(r.status, 0, String(r.stderr));
  assert.equal(r.stdout.toString(), "to stdout\n");
  assert.equal(r.stderr.toString(), "to stderr\n");
});
