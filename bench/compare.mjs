#!/usr/bin/env node
// `npm run bench`, in three parts, each a section of bench/RESULTS.md with its own date:
//
// - windows: compiles the Windows C peers (bench/peers/*.c: the sink, the reference writer, the
//   reference round-trip pair), then runs the side-by-side comparison (bench/compare_windows.ts),
//   the IPC comparison (bench/ipc_windows.ts) and the deno bench files, on Windows natively or on
//   Linux under Wine;
// - unix (Linux and macOS): the Unix-socket comparison natively (bench/compare_unix.mjs, with
//   node_modules/.bin/deno and bun, and the C peers it compiles with the system's compiler);
// - http (Linux and macOS): requests per second over Unix sockets, serve() against the runtimes'
//   own servers and Node's http (bench/compare_http.mjs).
//
// Then bench/RESULTS.md is written from their output (bench/render.mjs), the part that did not
// run kept as it was, and the guard is printed: where winpipe is behind (the best peer on
// Windows, the goals on Unix sockets), and the chosen constants against their neighbours. Never
// edit RESULTS.md by hand.
//
// Environment: WINPIPE_BENCH_PART (windows, unix, http, a list of them such as "unix,http", or
// both, which is windows and unix; by default Linux runs all three, Windows the windows part,
// macOS unix and http), WINPIPE_BENCH_MIB (default 32) and WINPIPE_BENCH_ROUNDS (default 5).
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
// deno lint sees "sloppy" here (the module has a .d.mts beside it); Node resolves it as written.
// deno-lint-ignore no-sloppy-imports
import { findRuntimes, suiteEnv } from "../scripts/windows_paths.mjs";
import { assemble, render, renderHttp, renderUnix } from "./render.mjs";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const onWindows = process.platform === "win32";
const part = process.env.WINPIPE_BENCH_PART
  || (onWindows ? "windows" : process.platform === "darwin" ? "unix,http" : "windows,unix,http");
const parts = new Set(part.split(",").flatMap((p) => (p === "both" ? ["windows", "unix"] : [p])));
for (const p of parts) {
  if (!["windows", "unix", "http"].includes(p)) {
    throw new Error(
      `WINPIPE_BENCH_PART is windows, unix, http, both, or a list of them, not ${part}`,
    );
  }
}
if (onWindows && (parts.has("unix") || parts.has("http"))) {
  throw new Error("the unix and http parts run on Linux and macOS");
}
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

/** The Windows part: its section of RESULTS.md and its guard. */
function windowsPart() {
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
  return render(json("results.json"), json("ipc.json"), denoBench, bunBench);
}

/** The Unix part: bench/compare_unix.mjs natively, then its section of RESULTS.md and guard. */
function unixPart() {
  console.log("=== Unix sockets, natively (bench/compare_unix.mjs)");
  const r = spawnSync(process.execPath, [join(repo, "bench", "compare_unix.mjs")], {
    cwd: repo,
    stdio: "inherit",
  });
  if (r.status !== 0) {
    throw new Error(`bench/compare_unix.mjs failed (${r.error?.message ?? `exit ${r.status}`})`);
  }
  const unix = JSON.parse(readFileSync(join(repo, ".tmp", "bench", "unix.json"), "utf8"));
  return renderUnix(unix);
}

/** The HTTP part: bench/compare_http.mjs natively, then its section of RESULTS.md and guard. */
function httpPart() {
  console.log("=== HTTP on Unix sockets, natively (bench/compare_http.mjs)");
  const r = spawnSync(process.execPath, [join(repo, "bench", "compare_http.mjs")], {
    cwd: repo,
    stdio: "inherit",
  });
  if (r.status !== 0) {
    throw new Error(`bench/compare_http.mjs failed (${r.error?.message ?? `exit ${r.status}`})`);
  }
  return renderHttp(JSON.parse(readFileSync(join(repo, ".tmp", "bench", "http.json"), "utf8")));
}

const windows = parts.has("windows") ? windowsPart() : undefined;
const unix = parts.has("unix") ? unixPart() : undefined;
const http = parts.has("http") ? httpPart() : undefined;
const results = join(repo, "bench", "RESULTS.md");
const previous = existsSync(results) ? readFileSync(results, "utf8") : "";
writeFileSync(
  results,
  assemble({ windows: windows?.markdown, unix: unix?.markdown, http: http?.markdown }, previous),
);
console.log(`wrote bench/RESULTS.md (${[...parts].join(", ")}; any other part kept)`);
for (const p of [windows, unix, http]) if (p) console.log(p.guard);
