#!/usr/bin/env node
// `npm test`: every suite, in both runtimes, and one closing line for all of them.
//
// Everywhere:  .github/workflows/*.yml checked by action-validator (a schema check)
// On Linux:    the Wine root          made first (scripts/wine-root.sh; cached once made)
//              socat                  installed if missing (as root, with apt): tests/unix.test.ts
//              tests/*.test.ts        with deno and bun (from node_modules)
//              tests/win/*.test.ts    with deno.exe and bun.exe under Wine (scripts/wine.sh)
// On Windows:  tests/ (both folders)  with deno.exe and bun.exe (from node_modules), natively
// On macOS:    tests/*.test.ts        with deno and bun; the Windows suites cannot run (no Wine
//                                     root), which is loud, and a failure under CI unless the
//                                     workflow says that other jobs run them
//                                     (WINPIPE_WINDOWS_SUITES_ELSEWHERE=1, the macOS job)
//
// A Windows suite that cannot run is announced loudly; under CI (CI=true) it counts as a failure.
// Environment: WINPIPE_SKIP_WINE=1 skips Wine on purpose (still loud, still a failure in CI).
//
// On Windows no program is started through a shell but npm (npm.cmd, which only cmd.exe runs),
// and its command line is quoted here (scripts/windows_paths.mjs): Node refuses to spawn a .cmd
// without a shell (EINVAL), and with one it joins the arguments unquoted.
import { spawnSync } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { cmdLine, findRuntimes, suiteEnv } from "./windows_paths.mjs";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const ci = process.env.CI === "true" || process.env.CI === "1";
const onWindows = process.platform === "win32";
/** A runtime from node_modules/.bin (Linux: links to the executables). */
const bin = (name) => join(repo, "node_modules", ".bin", name);

const results = [];
// bun test stops a test after 5 s by default; deno test has no limit. The suites guard against
// hangs themselves (within()), and a loaded 2-core machine under Wine needs more than 5 s for the
// 1000-round stop() test.
const BUN_TIMEOUT = ["--timeout", "120000"];

function strip(s) {
  // deno-lint-ignore no-control-regex
  return s.replace(/\x1b\[[0-9;]*m/g, "");
}

/** Counts from a runner's closing lines: deno's "ok | 3 passed | 1 failed", bun's " 3 pass". */
function count(output) {
  const text = strip(output);
  const deno = [
    ...text.matchAll(
      /(?:ok|FAILED) \| (\d+) passed(?: \((\d+) steps?\))? \| (\d+) failed(?: \((\d+) steps?\))?(?: \| (\d+) ignored)?/g,
    ),
  ];
  if (deno.length) {
    const m = deno[deno.length - 1];
    return { passed: +m[1], failed: +m[3], skipped: +(m[5] ?? 0) };
  }
  const pass = text.match(/^\s*(\d+) pass\s*$/m);
  const fail = text.match(/^\s*(\d+) fail\s*$/m);
  if (pass || fail) {
    const skip = text.match(/^\s*(\d+) skip\s*$/m);
    return { passed: +(pass?.[1] ?? 0), failed: +(fail?.[1] ?? 0), skipped: +(skip?.[1] ?? 0) };
  }
  return null;
}

// deno.exe's panic in mio's Windows named pipes (docs/upstream/deno-named-pipe-panic.md):
// "thread 'main' panicked at C:\...\mio-1.0.3\src\sys\windows\named_pipe.rs:871:14:".
// tests/win/slow_child.test.ts looks for the same pattern in its child's stderr.
const MIO_PANIC =
  /panicked at [^\n]*mio-[0-9.]+[\\/]src[\\/]sys[\\/]windows[\\/]named_pipe\.rs:\d+:\d+[^\n]*/;

function reportMioPanic(label, output) {
  const m = strip(output).match(MIO_PANIC);
  if (!m) return;
  const banner = "!".repeat(78);
  console.log(
    `\n${banner}\n!!! ${label}: DENO PANICKED IN MIO'S NAMED PIPE CODE (a crash of deno.exe):\n!!!   ${
      m[0].trim()
    }\n!!! See docs/upstream/deno-named-pipe-panic.md: a Windows child process with piped stdio, or a\n!!! node:net pipe, in deno.exe (under Wine especially). Give child processes files or "ignore".\n${banner}`,
  );
}

function run(label, command, args, env = {}) {
  console.log(`\n=== ${label}: ${command} ${args.join(" ")}`);
  const t0 = Date.now();
  const r = spawnSync(command, args, {
    cwd: repo,
    env: { ...process.env, NO_COLOR: "1", ...env },
    encoding: "utf8",
    maxBuffer: 256 * 1024 * 1024,
  });
  const output = (r.stdout ?? "") + (r.stderr ?? "");
  process.stdout.write(output);
  reportMioPanic(label, output);
  const counts = count(output);
  const seconds = ((Date.now() - t0) / 1000).toFixed(1);
  if (!counts) {
    console.log(
      `!!! ${label}: no test results (exit ${r.status ?? r.signal}${
        r.error ? `, ${r.error.message}` : ""
      })`,
    );
    results.push({ label, passed: 0, failed: 1, skipped: 0, note: "no results" });
  } else {
    // A runner that exits non-zero with no failed test still failed (a crash, a type error).
    const crashed = r.status !== 0 && counts.failed === 0;
    if (crashed) console.log(`!!! ${label}: exited ${r.status ?? r.signal} though no test failed`);
    results.push({ label, ...counts, failed: counts.failed + (crashed ? 1 : 0) });
  }
  console.log(`=== ${label}: done in ${seconds} s`);
}

function notRun(label, why) {
  const banner = "!".repeat(78);
  const elsewhere = process.env.WINPIPE_WINDOWS_SUITES_ELSEWHERE === "1";
  const consequence = elsewhere
    ? "WINPIPE_WINDOWS_SUITES_ELSEWHERE=1: the workflow's Windows and Linux jobs run them."
    : ci
    ? "Under CI this is a failure."
    : "The Windows code was NOT tested.";
  console.log(`\n${banner}\n!!! ${label} DID NOT RUN: ${why}\n!!! ${consequence}\n${banner}`);
  results.push({
    label,
    passed: 0,
    failed: ci && !elsewhere ? 1 : 0,
    skipped: 1,
    note: `not run: ${why}`,
  });
}

/** A runner that is not there: a failure, CI or not (npm install brings both runtimes). */
function missing(label, why) {
  const banner = "!".repeat(78);
  console.log(`\n${banner}\n!!! ${label} DID NOT RUN: ${why}\n${banner}`);
  results.push({ label, passed: 0, failed: 1, skipped: 0, note: `not run: ${why}` });
}

/**
 * Every workflow in .github/workflows checked by action-validator (@action-validator/cli, in JS
 * and wasm, so on every OS; run with this Node, so no shell is needed): one passed or failed per
 * file, and a failure when there is none.
 */
function validateWorkflows() {
  const label = "workflows";
  const dir = join(repo, ".github", "workflows");
  const files = existsSync(dir)
    ? readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort()
    : [];
  const cli = join(repo, "node_modules", "@action-validator", "cli", "cli.mjs");
  console.log(`\n=== ${label}: action-validator on .github/workflows (${files.length} files)`);
  let passed = 0;
  let failed = 0;
  if (files.length === 0) {
    console.log(`!!! ${label}: no workflow files in .github/workflows`);
    failed++;
  }
  for (const f of files) {
    const r = spawnSync(process.execPath, [cli, join(".github", "workflows", f)], {
      cwd: repo,
      env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0" },
      encoding: "utf8",
    });
    if (r.status === 0) {
      passed++;
      console.log(`ok     ${f}`);
    } else {
      failed++;
      console.log(
        `FAILED ${f} (exit ${r.status ?? r.signal}${r.error ? `, ${r.error.message}` : ""})`,
      );
      process.stdout.write((r.stdout ?? "") + (r.stderr ?? ""));
    }
  }
  results.push({ label, passed, failed, skipped: 0 });
}

// The model-based tests (tests/model.test.ts) run with a fixed seed and with WINPIPE_SEED: a
// fresh one each run unless given, printed so that a failure can be reproduced.
const seed = process.env.WINPIPE_SEED || String(Math.floor(Math.random() * 2 ** 31));
process.env.WINPIPE_SEED = seed;
console.log(`=== model tests: WINPIPE_SEED=${seed} (set it to reproduce this run)`);

// The package as npm ships it: `npm pack` runs `prepack` (npm run build, which
// tests/win/dist.test.ts imports) and leaves the tarball in .tmp/pack for tests/win/package.test.ts.
console.log("=== npm pack (prepack: npm run build)");
const packDir = join(repo, ".tmp", "pack");
rmSync(packDir, { recursive: true, force: true });
mkdirSync(packDir, { recursive: true });
const pack = onWindows
  ? spawnSync(cmdLine("npm", ["pack", "--pack-destination", packDir], { batch: true }), {
    cwd: repo,
    stdio: ["ignore", "inherit", "inherit"],
    shell: true,
  })
  : spawnSync("npm", ["pack", "--pack-destination", packDir], {
    cwd: repo,
    stdio: ["ignore", "inherit", "inherit"],
  });
if (pack.status !== 0) {
  const note = pack.error ? pack.error.message : `exit ${pack.status ?? pack.signal}`;
  results.push({ label: "npm pack", passed: 0, failed: 1, skipped: 0, note });
}
// Under Wine, package.test.ts installs the tarball with npm for Windows: this npm's own CLI, run
// by node.exe. The copy is needed because the npm running this lives outside the Wine root.
const npmCli = process.env.npm_execpath
  ?? spawnSync("npm", ["root", "-g"], { encoding: "utf8" }).stdout?.trim() + "/npm/bin/npm-cli.js";
if (!onWindows && existsSync(npmCli)) {
  const npmHome = dirname(dirname(realpathSync(npmCli)));
  const copy = join(repo, ".tmp", "npm");
  const version = (dir) => {
    const file = join(dir, "package.json");
    return existsSync(file) ? JSON.parse(readFileSync(file, "utf8")).version : null;
  };
  // Copied once per npm version: it is thousands of files.
  if (version(copy) !== version(npmHome)) {
    rmSync(copy, { recursive: true, force: true });
    cpSync(npmHome, copy, { recursive: true, dereference: true });
  }
}

validateWorkflows();

/**
 * The Unix-socket suite (tests/unix.test.ts) talks to peers that are not winpipe: python3, socat,
 * setpriv (a child as another user) and node. On a fresh Debian machine socat may be missing: as
 * root, with apt, it is installed here (as the Wine root is made), and said so; otherwise the
 * suite's own failures say which peer is missing.
 */
function unixPeers() {
  const has = (cmd) =>
    spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0;
  if (has("socat")) return;
  if (process.getuid?.() !== 0 || !has("apt-get")) {
    console.log(
      "\n=== socat is missing: tests/unix.test.ts will fail its socat case (apt-get install socat,"
        + " or brew install socat on macOS)",
    );
    return;
  }
  console.log("\n=== socat: apt-get install socat (for tests/unix.test.ts)");
  const install = () =>
    spawnSync("apt-get", ["install", "-y", "--no-install-recommends", "socat"], {
      stdio: ["ignore", "ignore", "inherit"],
    }).status === 0;
  if (!install()) {
    spawnSync("apt-get", ["update"], { stdio: ["ignore", "ignore", "inherit"] });
    install();
  }
}

/** A folder's suites as paths from the checkout, "./" first: bun takes them as files, not filters. */
const suites = (dir) =>
  readdirSync(join(repo, dir))
    .filter((f) => f.endsWith(".test.ts"))
    .map((f) => `./${dir}/${f}`);

if (onWindows) {
  // The executables themselves, not node_modules/.bin's .cmd shims: no shell, so a checkout path
  // with spaces needs no quoting. The suites start Node, Deno and Bun as child processes by the
  // paths in WINPIPE_NODE, WINPIPE_DENO and WINPIPE_BUN (set by scripts/wine.sh under Wine).
  const found = findRuntimes(repo, process.arch, existsSync);
  const env = suiteEnv({ node: process.execPath, ...found }, process.env);
  const all = [...suites("tests"), ...suites("tests/win")];
  const why = "no executable in node_modules (run npm install, with its install scripts)";
  if (found.deno) run("deno (Windows)", found.deno, ["test", "-A", ...all], env);
  else missing("deno (Windows)", `${why}: deno.exe`);
  if (found.bun) run("bun (Windows)", found.bun, ["test", ...BUN_TIMEOUT, ...all], env);
  else missing("bun (Windows)", `${why}: bun.exe`);
} else {
  // The Wine root first, so that the first run on a new machine is the full run: the Linux suites
  // run scripts/wine.sh too (tests/wine_scripts.test.ts), which under CI fails without a root.
  const wineRoot = join(repo, "scripts", "wine-root.sh");
  let why = null;
  if (process.platform === "darwin") {
    why = "this is macOS, where winpipe's Wine root cannot be made";
  } else if (process.env.WINPIPE_SKIP_WINE === "1") why = "WINPIPE_SKIP_WINE=1";
  else if (!existsSync(wineRoot)) why = "scripts/wine-root.sh is missing";
  else {
    console.log("\n=== Wine root: scripts/wine-root.sh (made once, then cached)");
    const setup = spawnSync("bash", [wineRoot], {
      cwd: repo,
      stdio: ["ignore", "pipe", "inherit"],
    });
    if (setup.status !== 0) {
      why = setup.status === 3
        ? "making the Wine root needs root (debootstrap, chroot, mount); run as root"
        : `scripts/wine-root.sh failed (exit ${setup.status ?? setup.signal})`;
    }
  }

  unixPeers();

  // tests/*.test.ts only: tests/win needs kernel32.
  const linuxSuites = suites("tests");
  run("deno (Linux)", bin("deno"), ["test", "-A", ...linuxSuites]);
  run("bun (Linux)", bin("bun"), ["test", ...BUN_TIMEOUT, ...linuxSuites]);

  if (why) {
    notRun("deno.exe under Wine", why);
    notRun("bun.exe under Wine", why);
  } else {
    const wine = join(repo, "scripts", "wine.sh");
    run("deno.exe under Wine", "bash", [wine, "deno", "test", "-A", "tests/win/"]);
    run("bun.exe under Wine", "bash", [wine, "bun", "test", ...BUN_TIMEOUT, "tests/win/"]);
  }
}

console.log("\n=== Summary");
for (const r of results) {
  console.log(
    `${r.label.padEnd(22)} ${r.passed} passed, ${r.failed} failed${
      r.skipped ? `, ${r.skipped} skipped` : ""
    }${r.note ? `  (${r.note})` : ""}`,
  );
}
const total = (k) => results.reduce((n, r) => n + r[k], 0);
const skipped = total("skipped");
console.log(
  `${total("passed")} passed, ${total("failed")} failed${skipped ? `, ${skipped} skipped` : ""}`,
);
process.exit(total("failed") > 0 ? 1 : 0);
