// The side-by-side comparison's Windows half (Deno; natively or under Wine). One reader process,
// the sink: the C reader (bench/peers/reader.c) when bench/compare.mjs could compile it, so that
// the reader is not what limits the writers, else Node's `net` (bench/peers/reader.cjs). Each
// writer runs in its own process, one at a time, in an order rotated every round; the reader
// times each connection. Results go to .tmp/bench/results.json for bench/compare.mjs.
import { spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { bun, cPeers, deno, jsonLines, node, sleep, startProcess } from "./windows_process.ts";

const MiB = 1024 * 1024;
const totalMiB = Number(process.env.WINPIPE_BENCH_MIB || 32);
const rounds = Number(process.env.WINPIPE_BENCH_ROUNDS || 5);
// WINPIPE_BENCH_CHUNKS (e.g. "65536,1048576") runs only those sizes.
const chunkSizes = process.env.WINPIPE_BENCH_CHUNKS
  ? process.env.WINPIPE_BENCH_CHUNKS.split(",").map(Number)
  : [256, 4096, 65536, MiB];
const c = cPeers();
const writers: { name: string; cmd: string; args: string[] }[] = [
  { name: "winpipe (Deno)", cmd: deno, args: ["run", "-A", "bench/peers/winpipe_writer.ts"] },
  { name: "winpipe (Bun)", cmd: bun, args: ["bench/peers/winpipe_writer.ts"] },
  { name: "node net", cmd: node, args: ["bench/peers/net_writer.cjs"] },
  { name: "Deno node:net", cmd: deno, args: ["run", "-A", "bench/peers/net_writer.cjs"] },
  { name: "Bun node:net", cmd: bun, args: ["bench/peers/net_writer.cjs"] },
  ...(c.built ? [{ name: "C, 2 writes in flight", cmd: c.exe("writer"), args: [] }] : []),
];
// WINPIPE_BENCH_SINK=node makes Node's net the sink even where the C sink is built: a reader that
// takes 64 KiB at a time, as most programs' readers do, where the C sink takes 1 MiB.
const sinkChoice = process.env.WINPIPE_BENCH_SINK || "c";
if (!["c", "node"].includes(sinkChoice)) {
  console.error(
    `WINPIPE_BENCH_SINK is "c" (the default) or "node", not ${JSON.stringify(sinkChoice)}`,
  );
  process.exit(2);
}
const nodeSink = { name: "node net", cmd: node, args: ["bench/peers/reader.cjs"] };
const sink = c.built && sinkChoice === "c"
  ? { name: "C", cmd: c.exe("reader"), args: [] as string[] }
  : nodeSink;
if (!c.built) {
  console.log(`!!! no C reference writer, and Node's net reader as the sink: ${c.reason}`);
}

const dir = join(".tmp", "bench");
mkdirSync(dir, { recursive: true });
const readerLog = join(dir, "reader.jsonl");
rmSync(readerLog, { force: true });
const pipe = String.raw`\\.\pipe\winpipe-bench-${process.pid}`;
const lines = () => jsonLines(readerLog);

function run(cmd: string, args: string[], log: string): Promise<number> {
  return startProcess(cmd, args, log).exited;
}

/**
 * Bytes per run: WINPIPE_BENCH_MIB at 256 B, and more at larger chunks (×2 at 4 KiB, ×4 at
 * 64 KiB, ×8 at 1 MiB), so that a fast run still lasts long enough (a few hundred ms) for
 * start-up costs not to decide it.
 */
const totalFor = (chunk: number) =>
  totalMiB * MiB * (chunk >= MiB ? 8 : chunk >= 65536 ? 4 : chunk >= 4096 ? 2 : 1);

// The sink runs for one chunk size at a time (it closes each connection once it has that many
// bytes); its stderr goes to a file (never a pipe).
let readerErr = -1;
let reader: ReturnType<typeof spawn> | undefined;
const readerGone = () =>
  reader && (reader.exitCode !== null || reader.signalCode !== null)
    ? `the reader exited: ${readFileSync(join(dir, "reader.log"), "utf8").trim().slice(0, 80)}`
    : undefined;
async function startSink(which: typeof sink, total: number) {
  await stopSink();
  rmSync(readerLog, { force: true });
  readerErr = openSync(join(dir, "reader.log"), "w");
  reader = spawn(which.cmd, [...which.args, pipe, readerLog, String(total)], {
    stdio: ["ignore", "ignore", readerErr],
  });
  for (let i = 0; !lines().some((l) => l.ready); i++) {
    if (i > 300 || readerGone()) throw new Error(readerGone() ?? "the reader did not start");
    await sleep(50);
  }
}
async function stopSink() {
  if (!reader) return;
  const r = reader;
  reader = undefined;
  if (r.exitCode === null && r.signalCode === null) {
    const gone = new Promise((resolve) => r.on("exit", resolve));
    r.kill();
    await gone;
  }
  closeSync(readerErr);
}

type Run = { writer: string; chunk: number; round: number; mbps?: number; error?: string };

/** One writer's run at `chunk` into the sink that is running; its result goes to `into`. */
async function measure(w: (typeof writers)[number], chunk: number, round: number, into: Run[]) {
  const total = totalFor(chunk);
  const before = lines().filter((l) => "bytes" in l || "error" in l).length;
  const code = await run(
    w.cmd,
    [...w.args, pipe, String(chunk), String(total)],
    join(dir, "writer.log"),
  );
  let result: { bytes?: number; ms?: number; error?: string } | undefined;
  for (let i = 0; i < 100 && !result; i++) {
    result = lines().filter((l) => "bytes" in l || "error" in l)[before];
    if (!result) await sleep(20);
  }
  const stderr = readFileSync(join(dir, "writer.log"), "utf8").trim().split("\n")[0];
  const error = code !== 0
    ? `exit ${code}${stderr ? `: ${stderr.slice(0, 80)}` : ""}`
    : !result
    ? readerGone() ?? "no connection seen by the reader"
    : result.error
      ?? (result.bytes !== total ? `${result.bytes} of ${total} bytes` : undefined);
  const mbps = error ? undefined : total / (result!.ms! / 1000) / 1e6;
  into.push({ writer: w.name, chunk, round, mbps, error });
  return error ?? `${mbps!.toFixed(1)} MB/s`;
}

const runs: Run[] = [];
console.log(
  `${writers.length} writers x ${chunkSizes.length} chunk sizes x ${rounds} rounds, ${totalMiB} MiB each`,
);
for (let round = 0; round < rounds; round++) {
  for (const chunk of chunkSizes) {
    await startSink(sink, totalFor(chunk));
    for (let k = 0; k < writers.length; k++) {
      const w = writers[(k + round) % writers.length];
      const said = await measure(w, chunk, round, runs);
      console.log(
        `round ${round + 1} ${String(chunk).padStart(7)} B  ${w.name.padEnd(21)} ${said}`,
      );
    }
  }
}

// The slow reader: 1 MiB chunks into Node's net, which reads 64 KiB at a time, as most programs'
// readers do. A pipe that runs dry between two writes shows there, where the C sink's 1 MiB
// reads hide it (docs/design.md: the default mark's room for two large chunks).
const slowWriters = writers.filter((w) => w.name.startsWith("winpipe") || w.name === "node net");
const slowRuns: Run[] = [];
if (sink !== nodeSink && chunkSizes.includes(MiB)) {
  for (let round = 0; round < rounds; round++) {
    await startSink(nodeSink, totalFor(MiB));
    for (let k = 0; k < slowWriters.length; k++) {
      const w = slowWriters[(k + round) % slowWriters.length];
      const said = await measure(w, MiB, round, slowRuns);
      console.log(`round ${round + 1} ${MiB} B into node net  ${w.name.padEnd(21)} ${said}`);
    }
  }
}
await stopSink();

const versions = {
  deno: await output(deno, ["--version"]),
  bun: await output(bun, ["--version"]),
  node: await output(node, ["--version"]),
};
writeFileSync(
  join(dir, "results.json"),
  JSON.stringify(
    {
      totalMiB,
      totalMiBByChunk: Object.fromEntries(chunkSizes.map((c) => [c, totalFor(c) / MiB])),
      rounds,
      chunkSizes,
      writers: writers.map((w) => w.name),
      sink: sink.name,
      sinkChosen: sinkChoice === "node",
      slowSink: slowRuns.length ? { name: nodeSink.name, chunk: MiB, runs: slowRuns } : undefined,
      c: c.built ? { compiler: c.compiler } : { missing: c.reason },
      versions,
      runs,
    },
    null,
    2,
  ),
);

function output(cmd: string, args: string[]): Promise<string> {
  const file = join(dir, "version.txt");
  return new Promise((resolve) => {
    // Output to a file, never a pipe (node.exe under Wine dies with EBADF on one).
    const fd = openSync(file, "w");
    const child = spawn(cmd, args, { stdio: ["ignore", fd, "ignore"] });
    child.on("exit", () => {
      closeSync(fd);
      resolve(readFileSync(file, "utf8").trim().split("\n")[0]);
    });
    child.on("error", () => resolve("?"));
  });
}
