#!/usr/bin/env node
// `npm run bench`: compiles the C peers (bench/peers/*.c: the sink, the reference writer, the
// reference round-trip pair), then runs the side-by-side comparison (bench/compare_windows.ts), the
// IPC comparison (bench/ipc_windows.ts) and the deno bench files, on Windows natively or on Linux
// under Wine, then bench/RESULTS.md is written from their output (bench/render.mjs), ending with
// the guard: where winpipe is behind the best peer, and the chosen constants against their
// neighbours, also printed. Never edit RESULTS.md by hand.
//
// Environment: WINPIPE_BENCH_MIB (default 32) and WINPIPE_BENCH_ROUNDS (default 5).
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { findRuntimes, suiteEnv } from "../scripts/windows_paths.mjs";
import { render } from "./render.mjs";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const onWindows = process.platform === "win32";
// On Windows: deno.exe and bun.exe from node_modules, started without a shell (node_modules/.bin
// has only .cmd shims), and WINPIPE_NODE/DENO/BUN for the benches' child processes
// (bench/windows_process.ts), as scripts/wine.sh sets them under Wine.
const found = onWindows ? findRuntimes(repo, process.arch, existsSync) : null;
const windowsEnv = onWindows
  ? { ...process.env, ...suiteEnv({ node: process.execPath, ...found }, process.env) }
  : undefined;

function deno(args, capture) {
  return run("deno", args, capture);
}

function run(tool, args, capture) {
  const opts = {
    cwd: repo,
    encoding: "utf8",
    maxBuffer: 64 << 20,
    stdio: capture ? "pipe" : "inherit",
  };
  if (onWindows && !found[tool]) {
    throw new Error(`no ${tool}.exe in node_modules: run npm install (with its install scripts)`);
  }
  const r = onWindows
    ? spawnSync(found[tool], args, { ...opts, env: windowsEnv })
    : spawnSync("bash", [join(repo, "scripts", "wine.sh"), tool, ...args], opts);
  if (r.status !== 0) {
    if (capture) process.stderr.write((r.stdout ?? "") + (r.stderr ?? ""));
    const why = r.error ? r.error.message : `exit ${r.status ?? r.signal}`;
    throw new Error(`${tool} ${args.join(" ")} failed (${why})`);
  }
  return r.stdout ?? "";
}

// The C peers go to .tmp/bench/peers; .tmp/bench/c-peers.json says with which compiler, or why
// they are missing (the Windows halves read it, and fall back to Node's net as sink and source).
// Under Wine: scripts/wine-cc.sh, MinGW-w64 installed into the Wine root on first use. Natively:
// gcc (MinGW-w64) or cl (MSVC) from PATH.
function buildCPeers() {
  const out = join(repo, ".tmp", "bench", "peers");
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const names = ["reader", "writer", "rt_server", "rt_client"];
  const src = (n) => join(repo, "bench", "peers", `${n}.c`);
  const exe = (n) => join(out, `${n}.exe`);
  const run = (cmd, args) =>
    spawnSync(cmd, args, { cwd: repo, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  const said = (r) => ((r.stdout ?? "") + (r.stderr ?? "")).trim();
  if (!onWindows) {
    const r = spawnSync("bash", [join(repo, "scripts", "wine-cc.sh"), out, ...names.map(src)], {
      cwd: repo,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
    });
    if (r.status !== 0) {
      const why = r.error ? r.error.message : `exit ${r.status ?? r.signal}`;
      return { built: false, reason: `scripts/wine-cc.sh failed (${why})` };
    }
    return { built: true, compiler: r.stdout.trim().split("\n").pop() };
  }
  const gcc = run("gcc", ["--version"]);
  const cl = gcc.status === 0 ? undefined : run("cl", []);
  if (gcc.status !== 0 && (!cl || cl.error)) {
    return { built: false, reason: "neither gcc (MinGW-w64) nor cl (MSVC) is on PATH" };
  }
  const compiler = gcc.status === 0
    ? gcc.stdout.split("\n")[0].trim()
    : said(cl).split("\n")[0].trim();
  for (const n of names) {
    // -municode / cl's default: the entry point is wmain. No warnings expected at -Wall -Wextra
    // or /W4; any output is shown.
    const r = gcc.status === 0
      ? run("gcc", ["-O2", "-Wall", "-Wextra", "-municode", "-static", "-o", exe(n), src(n)])
      : run("cl", ["/nologo", "/O2", "/W4", `/Fe${exe(n)}`, `/Fo${out}\\`, src(n)]);
    const text = said(r).split("\n").filter((l) => l.trim() && l.trim() !== `${n}.c`).join("\n");
    if (text) console.error(text);
    if (r.status !== 0) return { built: false, reason: `${compiler} failed on bench/peers/${n}.c` };
  }
  return { built: true, compiler };
}

console.log("=== C peers (bench/peers/*.c)");
const cBuild = buildCPeers();
writeFileSync(join(repo, ".tmp", "bench", "c-peers.json"), JSON.stringify(cBuild));
if (cBuild.built) {
  console.log(`built with ${cBuild.compiler}`);
} else {
  const bar = "!".repeat(100);
  console.error(
    `${bar}\n!!! THE C REFERENCE ROWS ARE MISSING: ${cBuild.reason}.\n!!! The sink and the`
      + ` read bench's source fall back to Node's net, which limits what is measured.\n${bar}`,
  );
}

console.log("=== side-by-side comparison (bench/compare_windows.ts)");
deno(["run", "-A", "bench/compare_windows.ts"], false);
console.log("=== IPC: round trips and read throughput (bench/ipc_windows.ts)");
deno(["run", "-A", "bench/ipc_windows.ts"], false);
console.log("=== deno bench -A bench/writer_bench.ts bench/completion_path_bench.ts");
const denoBench = deno(
  ["bench", "-A", "bench/writer_bench.ts", "bench/completion_path_bench.ts"],
  true,
);
process.stdout.write(denoBench);
console.log("=== bun bench/completion_path_bun.ts");
const bunBench = run("bun", ["bench/completion_path_bun.ts"], true);
process.stdout.write(bunBench);

// Saved, so that `node bench/render.mjs` can render RESULTS.md again from this run's output.
const dir = join(repo, ".tmp", "bench");
writeFileSync(join(dir, "deno-bench.txt"), denoBench);
writeFileSync(join(dir, "bun-bench.txt"), bunBench);
const json = (name) => JSON.parse(readFileSync(join(dir, name), "utf8"));
const { markdown, guard } = render(json("results.json"), json("ipc.json"), denoBench, bunBench);
writeFileSync(join(repo, "bench", "RESULTS.md"), markdown);
console.log("wrote bench/RESULTS.md");
console.log(guard);
