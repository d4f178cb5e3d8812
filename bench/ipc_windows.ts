// The IPC comparison's Windows half (Deno; natively or under Wine), for bench/compare.mjs:
// - round trips: 64 B request/response exchanges, one at a time, with the same implementation at
//   both ends (each end its own process);
// - read throughput: one writer (Node's net) writes in fixed chunks into each reader in turn.
// Results go to .tmp/bench/ipc.json.
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import process from "node:process";
import { bun, deno, jsonLines, node, sleep, startProcess } from "./windows_process.ts";

const MiB = 1024 * 1024;
const rounds = Number(process.env.WINPIPE_BENCH_ROUNDS || 5);
const totalMiB = Number(process.env.WINPIPE_BENCH_MIB || 32);
const roundTrips = 2000;
// Absolute: Bun under Wine mis-resolves relative paths ("directory mismatch", measured).
const dir = resolve(".tmp", "bench");
mkdirSync(dir, { recursive: true });

type Cmd = [string, string[]];
const impls: { name: string; server: Cmd; client: Cmd; reader: Cmd }[] = [
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
];

function start([cmd, args]: Cmd, extra: string[]) {
  return startProcess(cmd, [...args, ...extra], join(dir, "ipc-peer.log"));
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
const chunkSizes = [256, 4096, 65536, MiB];
const total = totalMiB * MiB;
let n = 0;

for (let round = 0; round < rounds; round++) {
  for (let k = 0; k < impls.length; k++) {
    const impl = impls[(k + round) % impls.length];
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
      rt.push({ impl: impl.name, round, value: error ? undefined : r.roundTripsPerSec, error });
      console.log(
        `round trips  ${impl.name.padEnd(15)} ${error ?? `${r.roundTripsPerSec.toFixed(0)}/s`}`,
      );
    } finally {
      server.child.kill();
      await server.exited;
    }
  }
  for (const chunk of chunkSizes) {
    for (let k = 0; k < impls.length; k++) {
      const impl = impls[(k + round) % impls.length];
      const pipe = String.raw`\\.\pipe\winpipe-read-${process.pid}-${++n}`;
      const result = join(dir, "read-result.jsonl");
      rmSync(result, { force: true });
      const reader = start(impl.reader, [pipe, result, String(total)]);
      try {
        await waitFor(() => lines(result).some((l) => l.ready), `${impl.name} reader`);
        const code = await start([node, ["bench/peers/net_writer.cjs"]], [
          pipe,
          String(chunk),
          String(total),
        ])
          .exited;
        let r;
        for (let i = 0; i < 250 && !(r = lines(result).find((l) => "bytes" in l)); i++) {
          await sleep(20);
        }
        const error = code !== 0
          ? `writer exit ${code}`
          : !r
          ? "no result"
          : r.bytes !== total
          ? `${r.bytes} of ${total} bytes`
          : undefined;
        const mbps = error ? undefined : total / (r.ms / 1000) / 1e6;
        reads.push({ impl: impl.name, chunk, round, mbps, error });
        console.log(
          `read ${String(chunk).padStart(7)} B ${impl.name.padEnd(15)} ${
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
      roundTrips,
      totalMiB,
      chunkSizes,
      impls: impls.map((i) => i.name),
      rt,
      reads,
    },
    null,
    2,
  ),
);
