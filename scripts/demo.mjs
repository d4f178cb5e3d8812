#!/usr/bin/env node
// `npm run demo`: on Windows, runs scripts/demo_windows.ts with Deno; on Linux, under Wine in the
// cached trixie root (made on first use; needs root).
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const args = ["run", "-A", "scripts/demo_windows.ts"];
const r = process.platform === "win32"
  ? spawnSync(join(repo, "node_modules", ".bin", "deno.cmd"), args, {
    cwd: repo,
    stdio: "inherit",
    shell: true,
  })
  : spawnSync("bash", [join(repo, "scripts", "wine.sh"), "deno", ...args], {
    cwd: repo,
    stdio: "inherit",
  });
process.exit(r.status ?? 1);
