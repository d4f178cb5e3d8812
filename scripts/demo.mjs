#!/usr/bin/env node
// `npm run demo`: on Windows, runs scripts/demo_windows.ts with Deno; on Linux, under Wine in the
// cached trixie root (made on first use; needs root).
//
// On Windows deno.exe is started from node_modules itself, not through node_modules/.bin's
// deno.cmd (which would need a shell, and quoting for a checkout path with spaces), and the demo
// gets WINPIPE_NODE, WINPIPE_DENO and WINPIPE_BUN: bun.exe is not on PATH, only npm's shims are.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { findRuntimes, suiteEnv } from "./windows_paths.mjs";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const args = ["run", "-A", "scripts/demo_windows.ts"];
let r;
if (process.platform === "win32") {
  const found = findRuntimes(repo, process.arch, existsSync);
  if (!found.deno) {
    console.error("npm run demo: no deno.exe in node_modules; run npm install (with its scripts)");
    process.exit(1);
  }
  r = spawnSync(found.deno, args, {
    cwd: repo,
    stdio: "inherit",
    env: { ...process.env, ...suiteEnv({ node: process.execPath, ...found }, process.env) },
  });
} else {
  r = spawnSync("bash", [join(repo, "scripts", "wine.sh"), "deno", ...args], {
    cwd: repo,
    stdio: "inherit",
  });
}
if (r.error) console.error(`npm run demo: ${r.error.message}`);
process.exit(r.status ?? 1);
