#!/usr/bin/env node
// `npm run bench`: compiles the C peers (bench/peers/*.c: the sink, the reference writer, the
// reference round-trip pair), then runs the side-by-side comparison (bench/compare_windows.ts), the
// IPC comparison (bench/ipc_windows.ts) and the deno bench files, on Windows natively or on Linux
// under Wine, then bench/RESULTS.md is written from their output. Never edit RESULTS.md by hand.
//
// Environment: WINPIPE_BENCH_MIB (default 32) and WINPIPE_BENCH_ROUNDS (default 5).
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { findRuntimes, suiteEnv } from "../scripts/windows_paths.mjs";

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

const results = JSON.parse(readFileSync(join(repo, ".tmp", "bench", "results.json"), "utf8"));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const size = (n) => (n >= 1 << 20 ? `${n >> 20} MiB` : n >= 1024 ? `${n >> 10} KiB` : `${n} B`);

const cell = {};
for (const chunk of results.chunkSizes) {
  for (const writer of results.writers) {
    const runs = results.runs.filter((r) => r.chunk === chunk && r.writer === writer);
    const ok = runs.filter((r) => r.mbps !== undefined).map((r) => r.mbps);
    cell[`${chunk}/${writer}`] = {
      median: ok.length ? median(ok) : undefined,
      min: Math.min(...ok),
      max: Math.max(...ok),
      failed: runs.length - ok.length,
      errors: [...new Set(runs.filter((r) => r.error).map((r) => r.error))],
      runs: runs.length,
    };
  }
}

/** "32 MiB at 256 B, 64 MiB at 4 KiB, …": each run's size (larger at larger chunks). */
function perChunk(r) {
  const by = r.totalMiBByChunk;
  if (!by) return `${r.totalMiB} MiB`;
  return Object.entries(by).map(([c, mib]) => `${mib} MiB at ${size(Number(c))}`).join(", ");
}

const date = new Date().toISOString().slice(0, 10);
const cWriter = "C, 2 writes in flight";
const host = onWindows ? "Windows (native)" : "Linux under Wine 10 (Debian trixie root)";
const lines = [];
lines.push("# Benchmark results", "");
lines.push(
  `Generated by \`npm run bench\` (bench/compare.mjs) on ${date}. Do not edit by hand: run it again.`,
  "",
);
lines.push(`- Machine: ${cpus().length} × ${cpus()[0]?.model ?? "?"}, ${host}`);
lines.push(
  `- Runtimes (Windows builds): ${results.versions.deno}; Bun ${results.versions.bun}; Node ${results.versions.node}`,
);
const cSink = results.sink === "C";
lines.push(
  `- Method: each writer, in its own process, writes ${perChunk(results)} in fixed-size chunks`,
  `  (honouring backpressure) into one reader process, the sink, which times each connection from`,
  `  its start to the last byte. ${results.rounds} rounds, the writers' order rotated every round.`,
  cSink
    ? "  The sink is a C program (`bench/peers/reader.c`: blocking 1 MiB reads, a 1 MiB pipe buffer),"
      + "\n  so that the reader is not what limits a writer."
    : "  The sink is Node's `net` (`bench/peers/reader.cjs`): the C sink could not be built.",
  `  Figures are medians in MB/s (10^6 bytes/s); the ratio is to node's \`net\` at the same chunk size.`,
  `  The machine is small (2 cores) and noisy: read ratios, not digits.`,
);
if (results.writers.includes(cWriter)) {
  lines.push(
    `- "${cWriter}" is the reference: \`bench/peers/writer.c\`, plain Win32 C keeping two`,
    "  overlapped `WriteFile`s of one chunk each in flight. One call per chunk, nothing gathered: at",
    "  small chunks it shows what a call costs, where winpipe and the `net`s gather small writes into",
    `  large ones. The C peers are compiled with ${results.c?.compiler ?? "?"} (-O2).`,
  );
}
if (results.c?.missing) {
  lines.push(`- **The C reference rows are missing**: ${results.c.missing}.`);
}
lines.push("");
lines.push("## Throughput by chunk size (median MB/s, ratio to node)", "");
lines.push(`| chunk | ${results.writers.join(" | ")} |`);
lines.push(`| ---: | ${results.writers.map(() => "---:").join(" | ")} |`);
for (const chunk of results.chunkSizes) {
  const node = cell[`${chunk}/node net`]?.median;
  const row = results.writers.map((w) => {
    const c = cell[`${chunk}/${w}`];
    if (c.median === undefined) return `failed (${c.failed}/${c.runs})`;
    const ratio = node ? ` (${(c.median / node).toFixed(2)}×)` : "";
    return `${c.median.toFixed(1)}${ratio}${c.failed ? ` [${c.failed} failed]` : ""}`;
  });
  lines.push(`| ${size(chunk)} | ${row.join(" | ")} |`);
}
lines.push("", "## Spread (min – max MB/s over the rounds)", "");
lines.push(`| chunk | ${results.writers.join(" | ")} |`);
lines.push(`| ---: | ${results.writers.map(() => "---:").join(" | ")} |`);
for (const chunk of results.chunkSizes) {
  const row = results.writers.map((w) => {
    const c = cell[`${chunk}/${w}`];
    return c.median === undefined ? "–" : `${c.min.toFixed(0)} – ${c.max.toFixed(0)}`;
  });
  lines.push(`| ${size(chunk)} | ${row.join(" | ")} |`);
}
const errors = Object.entries(cell).filter(([, c]) => c.errors.length);
if (errors.length) {
  lines.push("", "## Failed runs", "");
  for (const [k, c] of errors) lines.push(`- ${k.replace("/", " B, ")}: ${c.errors.join("; ")}`);
}
const ipc = JSON.parse(readFileSync(join(repo, ".tmp", "bench", "ipc.json"), "utf8"));
const ipcCell = (rows, impl, key, pick) => {
  const ok = rows.filter((r) => r.impl === impl && pick(r)).map((r) => r[key]).filter((v) =>
    v !== undefined
  );
  const all = rows.filter((r) => r.impl === impl && pick(r));
  return {
    median: ok.length ? median(ok) : undefined,
    failed: all.length - ok.length,
    n: all.length,
    min: Math.min(...ok),
    max: Math.max(...ok),
  };
};
lines.push("", "## IPC: round trips (64 B request and response, one at a time)", "");
lines.push(
  `Each implementation at both ends, each end in its own process; ${ipc.roundTrips} exchanges a run,`,
  `${ipc.rounds} rounds. Median round trips per second, the ratio to node, and the spread.`,
  ...(ipc.impls.includes("C")
    ? [
      "C is the reference: `bench/peers/rt_server.c` and `rt_client.c`, blocking reads and writes.",
    ]
    : []),
  "",
);
lines.push(
  "| | " + ipc.impls.join(" | ") + " |",
  "| --- | " + ipc.impls.map(() => "---:").join(" | ") + " |",
);
{
  const nodeRt = ipcCell(ipc.rt, "node net", "value", () => true).median;
  lines.push(
    "| round trips/s | " + ipc.impls.map((i) => {
      const c = ipcCell(ipc.rt, i, "value", () => true);
      return c.median === undefined
        ? `failed (${c.failed}/${c.n})`
        : `${c.median.toFixed(0)} (${(c.median / nodeRt).toFixed(2)}×)`;
    }).join(" | ") + " |",
  );
  lines.push(
    "| spread | " + ipc.impls.map((i) => {
      const c = ipcCell(ipc.rt, i, "value", () => true);
      return c.median === undefined ? "–" : `${c.min.toFixed(0)} – ${c.max.toFixed(0)}`;
    }).join(" | ") + " |",
  );
}
lines.push("", "## IPC: read throughput by chunk size (median MB/s, ratio to node)", "");
lines.push(
  ipc.source === cWriter
    ? `One writer, the C reference writer (two overlapped writes in flight, so that the readers are`
      + `\nwhat is measured), writes ${perChunk(ipc)} in fixed chunks into each reader in turn; the`
    : `One writer, Node's \`net\` (the C writer could not be built), writes ${
      perChunk(ipc)
    } in fixed`
      + "\nchunks into each reader in turn; the",
  "reader times its connection from start to last byte. MB/s are 10^6 bytes/s.",
  ...(ipc.impls.includes("C") ? ["C is the reference reader, the sink above."] : []),
  ...(ipc.source === cWriter
    ? [
      "At small chunks the source's own cost per `WriteFile` can be the limit: where the C reader is",
      "no faster than the others, the row measures the source rather than the readers.",
    ]
    : []),
  "",
);
lines.push(
  "| chunk | " + ipc.impls.join(" | ") + " |",
  "| ---: | " + ipc.impls.map(() => "---:").join(" | ") + " |",
);
for (const chunk of ipc.chunkSizes) {
  const nodeRead = ipcCell(ipc.reads, "node net", "mbps", (r) => r.chunk === chunk).median;
  lines.push(
    `| ${size(chunk)} | ` + ipc.impls.map((i) => {
      const c = ipcCell(ipc.reads, i, "mbps", (r) => r.chunk === chunk);
      return c.median === undefined
        ? `failed (${c.failed}/${c.n})`
        : `${c.median.toFixed(1)} (${(c.median / nodeRead).toFixed(2)}×) [${c.min.toFixed(0)}–${
          c.max.toFixed(0)
        }]`;
    }).join(" | ") + " |",
  );
}
const ipcErrors = [...ipc.rt, ...ipc.reads].filter((r) => r.error);
if (ipcErrors.length) {
  lines.push("", "IPC runs that failed:", "");
  for (const r of ipcErrors) {
    lines.push(`- ${r.impl}${r.chunk ? `, ${size(r.chunk)}` : ", round trips"}: ${r.error}`);
  }
}
lines.push("", "## `deno bench -A bench/writer_bench.ts bench/completion_path_bench.ts`", "");
lines.push(
  "The writer's own cost, a real pipe by chunk size, the measurements behind the largest single",
  "write (`MAX_BLOCK`) and the default `highWaterMark`, and the candidate completion paths on",
  "writes that fit in the pipe's buffer and on writes that wait for the reader: winpipe's",
  "(`CreateThreadpoolIo`, completing at once where it can), the same with every completion",
  "queued, a completion port of our own drained by a `nonblocking` GetQueuedCompletionStatusEx,",
  "and Qt's `CreateThreadpoolWait`.",
  "",
);
const denoText = denoBench.replace(/\x1b\[[0-9;]*m/g, "").trim().split("\n");
lines.push("```", ...denoText.filter((l) => !l.startsWith("Check ")), "```", "");
lines.push("## `bun bench/completion_path_bun.ts`", "");
lines.push(
  "The completion path candidates in Bun, on writes that wait for the reader (a 0-byte buffer):",
  "winpipe's (`CreateThreadpoolIo` and one thread-safe `JSCallback`) against a completion port",
  "of our own drained by a `Worker` blocked in GetQueuedCompletionStatusEx. Time for 1000",
  "sequential 4 KiB writes, each awaited: the median and every run, in ms.",
  "",
  "| candidate | median ms | runs |",
  "| --- | ---: | --- |",
);
for (const line of bunBench.split("\n").filter((l) => l.startsWith("{"))) {
  const r = JSON.parse(line);
  lines.push(`| ${r.candidate} | ${r.medianMs.toFixed(1)} | ${r.runsMs.join(", ")} |`);
}
lines.push("");
writeFileSync(join(repo, "bench", "RESULTS.md"), lines.join("\n"));
console.log("wrote bench/RESULTS.md");
