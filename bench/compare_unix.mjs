#!/usr/bin/env node
// The side-by-side comparison on Unix sockets, natively (Linux, macOS), for bench/compare.mjs:
// winpipe, the runtime's own socket used directly (bench/peers/unix_own.ts) and node:net, each in
// Deno and in Bun, Node's own `net`, and a C reference (bench/peers/unix_stream.c, unix_rt.c,
// compiled here with the system's C compiler into .tmp/bench/unix/).
//
// - Writes: each writer, in its own process, writes in fixed-size chunks (honouring
//   backpressure) into one C sink, which times each connection from its start to the last byte.
// - Reads: the C writer writes in fixed-size chunks into each reader in turn; the reader times.
// - Round trips: 64 B request and response, one at a time, the same implementation at both ends.
//
// The implementations run one at a time, their order rotated every round. Results go to
// .tmp/bench/unix.json (bench/render.mjs renders them); the processes' stderr to
// .tmp/bench/unix/*.log. Environment: WINPIPE_BENCH_MIB (default 32), WINPIPE_BENCH_ROUNDS
// (default 5), WINPIPE_BENCH_CHUNKS (e.g. "256,4096"), WINPIPE_BENCH_ROUNDTRIPS (default 20000),
// CC (default gcc, else cc).
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  cCompiler,
  firstLine,
  machine,
  repo,
  runtimes,
  sleep,
  startLogged,
} from "./posix_process.mjs";

const MiB = 1024 * 1024;
const env = process.env;
const totalMiB = Number(env.WINPIPE_BENCH_MIB || 32);
const rounds = Number(env.WINPIPE_BENCH_ROUNDS || 5);
const roundTrips = Number(env.WINPIPE_BENCH_ROUNDTRIPS || 20000);
const chunkSizes = env.WINPIPE_BENCH_CHUNKS
  ? env.WINPIPE_BENCH_CHUNKS.split(",").map(Number)
  : [256, 4096, 65536, MiB];
/**
 * MiB per run: WINPIPE_BENCH_MIB at 256 B, ×4 at 4 KiB, ×16 at 64 KiB, ×32 at 1 MiB, so that the
 * fastest run natively still lasts a few hundred ms (start-up and JIT warm-up do not decide it).
 */
const mibFor = (chunk) =>
  totalMiB * (chunk >= MiB ? 32 : chunk >= 65536 ? 16 : chunk >= 4096 ? 4 : 1);

const dir = join(repo, ".tmp", "bench", "unix");
mkdirSync(dir, { recursive: true });
const { deno, bun } = runtimes();
const node = process.execPath;

/** The C peers, compiled into .tmp/bench/unix/ (-O2, no warnings expected at -Wall -Wextra). */
function compile() {
  const cc = cCompiler();
  const version = spawnSync(cc, ["--version"], { encoding: "utf8" });
  if (version.status !== 0) throw new Error(`no C compiler (${cc}): set CC`);
  for (const name of ["unix_stream", "unix_rt"]) {
    const src = join(repo, "bench", "peers", `${name}.c`);
    const args = ["-O2", "-Wall", "-Wextra", "-o", join(dir, name), src];
    const r = spawnSync(cc, args, { encoding: "utf8" });
    const said = ((r.stdout ?? "") + (r.stderr ?? "")).trim();
    if (said) console.error(said);
    if (r.status !== 0) throw new Error(`${cc} failed on bench/peers/${name}.c`);
  }
  return version.stdout.split("\n")[0].trim();
}
const compiler = compile();
const cStream = join(dir, "unix_stream");
const cRt = join(dir, "unix_rt");

/** Each implementation: its runtime, its kind, and the command of each role. */
const run = (cmd, ...args) => [cmd, args];
const denoRun = (file, ...args) => run(deno, "run", "-A", `bench/peers/${file}`, ...args);
const bunRun = (file, ...args) => run(bun, `bench/peers/${file}`, ...args);
const impls = [];
for (const [runtime, js] of [["Deno", denoRun], ["Bun", bunRun]]) {
  impls.push(
    {
      name: `winpipe (${runtime})`,
      runtime,
      kind: "winpipe",
      writer: js("winpipe_writer.ts"),
      reader: js("winpipe_reader.ts"),
      rtServer: js("rt_server.ts"),
      rtClient: js("rt_client.ts"),
    },
    {
      name: `${runtime}.connect`,
      runtime,
      kind: "own",
      writer: js("unix_own.ts", "writer"),
      reader: js("unix_own.ts", "reader"),
      rtServer: js("unix_own.ts", "rt-server"),
      rtClient: js("unix_own.ts", "rt-client"),
    },
    {
      name: `${runtime} node:net`,
      runtime,
      kind: "node:net",
      writer: js("net_writer.cjs"),
      reader: js("reader.cjs"),
      rtServer: js("rt_server.cjs"),
      rtClient: js("rt_client.cjs"),
    },
  );
}
impls.push(
  {
    name: "node net",
    runtime: "Node",
    kind: "node",
    writer: run(node, "bench/peers/net_writer.cjs"),
    reader: run(node, "bench/peers/reader.cjs"),
    rtServer: run(node, "bench/peers/rt_server.cjs"),
    rtClient: run(node, "bench/peers/rt_client.cjs"),
  },
  {
    name: "C",
    runtime: "C",
    kind: "C",
    writer: run(cStream, "writer"),
    reader: run(cStream, "sink"),
    rtServer: run(cRt, "server"),
    rtClient: run(cRt, "client"),
  },
);

/** Starts `[cmd, args] extra`, stderr to a log file in .tmp/bench/unix. */
const start = ([cmd, args], extra, log, limitMs) =>
  startLogged(dir, [cmd, ...args, ...extra], log, limitMs);
const lines = (file) =>
  existsSync(file)
    ? readFileSync(file, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l))
    : [];
async function waitFor(check, what, ms = 30_000) {
  for (const t0 = Date.now(); !check();) {
    if (Date.now() - t0 > ms) throw new Error(`${what}: nothing after ${ms / 1000} s`);
    await sleep(10);
  }
}
/** The sockets live in a private directory of their own (mode 0700), removed at the end. */
const sockets = mkdtempSync(join(tmpdir(), "winpipe-bench-"));
let n = 0;
const socketPath = (what) => join(sockets, `${what}-${++n}.sock`);

const writes = [];
const reads = [];
const rt = [];
const label = (s) => s.padEnd(16);
const say = (what, name, error, figure) =>
  console.log(`${what.padEnd(22)} ${label(name)} ${error ?? figure}`);

/** One round of writes at `chunk`: every writer into one C sink. */
async function writeRound(round, chunk) {
  const total = mibFor(chunk) * MiB;
  const path = socketPath("sink");
  const result = join(dir, "sink.jsonl");
  rmSync(result, { force: true });
  const sink = start(
    impls.find((i) => i.kind === "C").reader,
    [path, result, String(total)],
    "sink.log",
  );
  try {
    await waitFor(() => lines(result).some((l) => l.ready), "the C sink");
    for (let k = 0; k < impls.length; k++) {
      const impl = impls[(k + round) % impls.length];
      const seen = lines(result).filter((l) => "bytes" in l).length;
      const w = start(impl.writer, [path, String(chunk), String(total)], "writer.log");
      const code = await w.exited;
      let r;
      for (let i = 0; i < 250 && !(r = lines(result).filter((l) => "bytes" in l)[seen]); i++) {
        await sleep(20);
      }
      const error = code !== 0
        ? `exit ${code}: ${firstLine(w.log)}`
        : !r
        ? "no connection seen by the sink"
        : r.error ?? (r.bytes !== total ? `${r.bytes} of ${total} bytes` : undefined);
      const mbps = error ? undefined : total / (r.ms / 1000) / 1e6;
      writes.push({ impl: impl.name, chunk, round, mbps, error });
      say(`round ${round + 1} write ${chunk} B`, impl.name, error, `${mbps?.toFixed(1)} MB/s`);
    }
  } finally {
    await sink.stop();
  }
}

/** One round of reads at `chunk`: the C writer into each reader in turn. */
async function readRound(round, chunk) {
  const total = mibFor(chunk) * MiB;
  const source = impls.find((i) => i.kind === "C").writer;
  for (let k = 0; k < impls.length; k++) {
    const impl = impls[(k + round) % impls.length];
    const path = socketPath("read");
    const result = join(dir, "read.jsonl");
    rmSync(result, { force: true });
    const reader = start(impl.reader, [path, result, String(total)], "reader.log");
    let error;
    let r;
    try {
      await waitFor(
        () => lines(result).some((l) => l.ready) || reader.child.exitCode !== null,
        impl.name,
      );
      const w = start(source, [path, String(chunk), String(total)], "source.log");
      const code = await w.exited;
      for (let i = 0; i < 250 && !(r = lines(result).find((l) => "bytes" in l)); i++) {
        await sleep(20);
      }
      error = code !== 0
        ? `the C writer: exit ${code}: ${firstLine(w.log)}`
        : !r
        ? `no result${reader.child.exitCode ? `: ${firstLine(reader.log)}` : ""}`
        : r.error ?? (r.bytes !== total ? `${r.bytes} of ${total} bytes` : undefined);
    } catch (e) {
      error = String(e.message ?? e);
    } finally {
      await reader.stop();
    }
    const mbps = error ? undefined : total / (r.ms / 1000) / 1e6;
    reads.push({ impl: impl.name, chunk, round, mbps, error });
    say(`round ${round + 1} read ${chunk} B`, impl.name, error, `${mbps?.toFixed(1)} MB/s`);
  }
}

/** One round of round trips: each implementation at both ends. */
async function rtRound(round) {
  for (let k = 0; k < impls.length; k++) {
    const impl = impls[(k + round) % impls.length];
    const path = socketPath("rt");
    const ready = join(dir, "rt-ready");
    const result = join(dir, "rt.jsonl");
    rmSync(ready, { force: true });
    rmSync(result, { force: true });
    const server = start(impl.rtServer, [path, ready], "rt-server.log");
    let error;
    let r;
    try {
      await waitFor(() => existsSync(ready) || server.child.exitCode !== null, impl.name);
      const client = start(
        impl.rtClient,
        [path, String(roundTrips), "64", result],
        "rt-client.log",
      );
      const code = await client.exited;
      r = lines(result)[0];
      error = code !== 0
        ? `exit ${code}: ${firstLine(client.log)}`
        : r?.error ?? (r ? undefined : "no result");
    } catch (e) {
      error = String(e.message ?? e);
    } finally {
      await server.stop();
    }
    const value = error ? undefined : r.roundTripsPerSec;
    rt.push({ impl: impl.name, round, value, error });
    say(`round ${round + 1} round trips`, impl.name, error, `${value?.toFixed(0)}/s`);
  }
}

console.log(
  `${impls.length} implementations, ${rounds} rounds: writes and reads at ${
    chunkSizes.join(", ")
  } B, ${roundTrips} round trips of 64 B`,
);
try {
  for (let round = 0; round < rounds; round++) {
    for (const chunk of chunkSizes) await writeRound(round, chunk);
    for (const chunk of chunkSizes) await readRound(round, chunk);
    await rtRound(round);
  }
} finally {
  rmSync(sockets, { recursive: true, force: true });
}

const version = (cmd, ...args) =>
  (spawnSync(cmd, args, { encoding: "utf8" }).stdout ?? "?").trim().split("\n")[0];
const out = join(repo, ".tmp", "bench", "unix.json");
writeFileSync(
  out,
  JSON.stringify(
    {
      date: new Date().toISOString().slice(0, 10),
      platform: process.platform,
      machine: machine(),
      versions: {
        deno: version(deno, "--version"),
        bun: version(bun, "--version"),
        node: process.version,
        cc: compiler,
      },
      rounds,
      roundTrips,
      roundTripSize: 64,
      chunkSizes,
      mibByChunk: Object.fromEntries(chunkSizes.map((c) => [c, mibFor(c)])),
      impls: impls.map(({ name, runtime, kind }) => ({ name, runtime, kind })),
      writes,
      reads,
      rt,
    },
    null,
    2,
  ),
);
console.log(`wrote ${out}`);
