// The IPC comparison's Windows half (Deno; natively or under Wine), for bench/compare.mjs:
// - round trips: 64 B request/response exchanges, one at a time, with the same implementation at
//   both ends (each end its own process);
// - read throughput: one fast writer, the source, writes in fixed chunks into each reader in turn:
//   the C writer (bench/peers/writer.c, two overlapped writes in flight) when bench/compare.mjs
//   could compile it, so that the readers are what is measured, else Node's net.
// With the C peers built, "C" (bench/peers/rt_server.c, rt_client.c, reader.c) is a reference
// column in both. "hop alone (Deno)" and "hop alone (Bun)" (bench/peers/hop.ts at both ends) take
// part in the round trips only: the same ping-pong through the FFI callback path and nothing else,
// the ceiling each runtime sets on winpipe's round trips. Results go to .tmp/bench/ipc.json.
//
//   ipc_windows.ts [all|rt|reads]    runs both parts (the default), or the round trips or the
//                                    read throughput only (an argument rather than an environment
//                                    variable: scripts/wine.sh passes only the variables it names)
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import process from "node:process";
import { bun, cPeers, deno, jsonLines, node, sleep, startProcess } from "./windows_process.ts";

const MiB = 1024 * 1024;
const rounds = Number(process.env.WINPIPE_BENCH_ROUNDS || 5);
const totalMiB = Number(process.env.WINPIPE_BENCH_MIB || 32);
const roundTrips = 2000;
/**
 * Round-trip runs per implementation per round. A run takes about a second, and runs of the same
 * program spread by a third and more from one to the next under Wine (hop alone in Bun:
 * 1729–3298/s in one series of 6), so the medians are taken over three times the rounds.
 */
const RT_PASSES = 3;
// Absolute: Bun under Wine mis-resolves relative paths ("directory mismatch", measured).
const dir = resolve(".tmp", "bench");
mkdirSync(dir, { recursive: true });
const parts = process.argv[2] ?? "all";
if (!["all", "rt", "reads"].includes(parts)) {
  console.error(`usage: ipc_windows.ts [all|rt|reads], not ${parts}`);
  process.exit(2);
}

type Cmd = [string, string[]];
const c = cPeers();
/** The implementations: `reader` is what the read-throughput part runs; without it, rt only. */
const impls: { name: string; server: Cmd; client: Cmd; reader?: Cmd }[] = [
  {
    name: "winpipe (Deno)",
    server: [deno, ["run", "-A", "bench/peers/rt_server.ts"]],
    client: [deno, ["run", "-A", "bench/peers/rt_client.ts"]],
    reader: [deno, ["run", "-A", "bench/peers/winpipe_reader.ts"]],
  },
  {
    name: "winpipe (Bun)",
    server: [bun, ["bench/peers/rt_server.ts"]],
    client: [bun, ["bench/peers/rt_client.ts"]],
    reader: [bun, ["bench/peers/winpipe_reader.ts"]],
  },
  {
    name: "node net",
    server: [node, ["bench/peers/rt_server.cjs"]],
    client: [node, ["bench/peers/rt_client.cjs"]],
    reader: [node, ["bench/peers/reader.cjs"]],
  },
  {
    name: "Deno node:net",
    server: [deno, ["run", "-A", "bench/peers/rt_server.cjs"]],
    client: [deno, ["run", "-A", "bench/peers/rt_client.cjs"]],
    reader: [deno, ["run", "-A", "bench/peers/reader.cjs"]],
  },
  {
    name: "Bun node:net",
    server: [bun, ["bench/peers/rt_server.cjs"]],
    client: [bun, ["bench/peers/rt_client.cjs"]],
    reader: [bun, ["bench/peers/reader.cjs"]],
  },
  ...(c.built
    ? [{
      name: "C",
      server: [c.exe("rt_server"), []] as Cmd,
      client: [c.exe("rt_client"), []] as Cmd,
      reader: [c.exe("reader"), []] as Cmd,
    }]
    : []),
  {
    name: "hop alone (Deno)",
    server: [deno, ["run", "-A", "bench/peers/hop.ts", "server"]],
    client: [deno, ["run", "-A", "bench/peers/hop.ts", "client"]],
  },
  {
    name: "hop alone (Bun)",
    server: [bun, ["bench/peers/hop.ts", "server"]],
    client: [bun, ["bench/peers/hop.ts", "client"]],
  },
];
/** The read-throughput part's implementations. */
const readers = impls.flatMap(({ name, reader }) => (reader ? [{ name, reader }] : []));
const rtImpls = parts === "reads" ? [] : impls;
const source = c.built
  ? { name: "C, 2 writes in flight", cmd: [c.exe("writer"), []] as Cmd }
  : { name: "node net", cmd: [node, ["bench/peers/net_writer.cjs"]] as Cmd };
if (!c.built) console.log(`!!! no C reference column, and Node's net as the source: ${c.reason}`);

function start([cmd, args]: Cmd, extra: string[], log = "ipc-peer.log") {
  return startProcess(cmd, [...args, ...extra], join(dir, log));
}

async function waitFor(check: () => boolean, what: string) {
  for (let i = 0; !check(); i++) {
    if (i > 1500) throw new Error(`${what} did not start`);
    await sleep(20);
  }
}

const lines = jsonLines;

const rt: { impl: string; round: number; value?: number; error?: string }[] = [];
const reads: { impl: string; chunk: number; round: number; mbps?: number; error?: string }[] = [];
// WINPIPE_BENCH_CHUNKS (e.g. "65536,1048576") runs only those sizes.
const chunkSizes = process.env.WINPIPE_BENCH_CHUNKS
  ? process.env.WINPIPE_BENCH_CHUNKS.split(",").map(Number)
  : [256, 4096, 65536, MiB];
/** Bytes per read run: WINPIPE_BENCH_MIB at 256 B and 4 KiB, ×2 at 64 KiB, ×4 at 1 MiB. */
const totalFor = (chunk: number) => totalMiB * MiB * (chunk >= MiB ? 4 : chunk >= 65536 ? 2 : 1);
const readChunks = parts === "rt" ? [] : chunkSizes;
let n = 0;

for (let round = 0; round < rounds; round++) {
  for (let k = 0; k < RT_PASSES * rtImpls.length; k++) {
    const impl = rtImpls[(k + round) % rtImpls.length];
    const pipe = String.raw`\\.\pipe\winpipe-rt-${process.pid}-${++n}`;
    const ready = join(dir, "rt-ready");
    const result = join(dir, "rt-result.jsonl");
    rmSync(ready, { force: true });
    rmSync(result, { force: true });
    const server = start(impl.server, [pipe, ready]);
    try {
      await waitFor(() => existsSync(ready), `${impl.name} server`);
      const code = await start(impl.client, [pipe, String(roundTrips), "64", result]).exited;
      const r = lines(result)[0];
      const error = code !== 0 ? `exit ${code}` : r?.error ?? (r ? undefined : "no result");
      const run = round * RT_PASSES + Math.floor(k / rtImpls.length);
      rt.push({
        impl: impl.name,
        round: run,
        value: error ? undefined : r.roundTripsPerSec,
        error,
      });
      console.log(
        `round trips  ${impl.name.padEnd(21)} ${error ?? `${r.roundTripsPerSec.toFixed(0)}/s`}`,
      );
    } finally {
      server.child.kill();
      await server.exited;
    }
  }
  for (const chunk of readChunks) {
    const total = totalFor(chunk);
    for (let k = 0; k < readers.length; k++) {
      const impl = readers[(k + round) % readers.length];
      const pipe = String.raw`\\.\pipe\winpipe-read-${process.pid}-${++n}`;
      const result = join(dir, "read-result.jsonl");
      rmSync(result, { force: true });
      const reader = start(impl.reader, [pipe, result, String(total)]);
      try {
        await waitFor(() => lines(result).some((l) => l.ready), `${impl.name} reader`);
        const code = await start(source.cmd, [pipe, String(chunk), String(total)], "ipc-writer.log")
          .exited;
        const stderr = readFileSync(join(dir, "ipc-writer.log"), "utf8").trim().split("\n")[0];
        let r;
        for (let i = 0; i < 250 && !(r = lines(result).find((l) => "bytes" in l)); i++) {
          await sleep(20);
        }
        const error = code !== 0
          ? `writer exit ${code}${stderr ? `: ${stderr.slice(0, 80)}` : ""}`
          : !r
          ? "no result"
          : r.bytes !== total
          ? `${r.bytes} of ${total} bytes`
          : undefined;
        const mbps = error ? undefined : total / (r.ms / 1000) / 1e6;
        reads.push({ impl: impl.name, chunk, round, mbps, error });
        console.log(
          `read ${String(chunk).padStart(7)} B ${impl.name.padEnd(21)} ${
            error ?? `${mbps!.toFixed(1)} MB/s`
          }`,
        );
      } finally {
        reader.child.kill();
        await reader.exited;
      }
    }
  }
}

writeFileSync(
  join(dir, "ipc.json"),
  JSON.stringify(
    {
      rounds,
      rtRuns: rounds * RT_PASSES,
      roundTrips,
      totalMiB,
      totalMiBByChunk: Object.fromEntries(readChunks.map((c) => [c, totalFor(c) / MiB])),
      chunkSizes: readChunks,
      parts,
      impls: rtImpls.map((i) => i.name),
      readers: readChunks.length ? readers.map((i) => i.name) : [],
      source: source.name,
      rt,
      reads,
    },
    null,
    2,
  ),
);
