/**
 * `bun bench/completion_path_bun.ts` (Windows; under Wine via scripts/wine.sh): the completion
 * path candidates in Bun, as bench/completion_path_bench.ts measures them in Deno. 1000 sequential
 * 4 KiB writes, each awaited before the next, into a pipe whose buffer is 0 bytes, so that every
 * write waits for the reader and its completion has to make the trip to JS:
 *
 * - winpipe's: `CreateThreadpoolIo` and one thread-safe `JSCallback`;
 * - a completion port of our own, drained by a `Worker` blocked in GetQueuedCompletionStatusEx,
 *   which posts each batch of completions to the main thread (Bun has no `nonblocking` FFI call).
 *
 * Prints one JSON line per run, and a summary with the medians.
 */
import process from "node:process";
import { INVALID_HANDLE_VALUE } from "../ffi/kernel32.ts";
import { isWindows, native } from "../ffi/runtime.ts";
import { connected, overlappedPipe, SIZE, WRITES } from "./completion_common.ts";

const RUNS = Number(process.env.WINPIPE_BENCH_ROUNDS || 5);

// The worker: blocks in GetQueuedCompletionStatusEx on the port it is given, posts the count of
// completions it took, and stops when it dequeues the key 0 (PostQueuedCompletionStatus).
const workerSource = `
const { dlopen } = require("bun:ffi");
const k = dlopen("kernel32.dll", {
  GetQueuedCompletionStatusEx: { args: ["u64", "ptr", "u32", "ptr", "u32", "i32"], returns: "i32" },
});
self.onmessage = ({ data: port }) => {
  const entries = new Uint8Array(32 * 16);
  const removed = new Uint32Array(1);
  const view = new DataView(entries.buffer);
  for (;;) {
    if (!k.symbols.GetQueuedCompletionStatusEx(BigInt(port), entries, 16, removed, 0xffffffff, 0)) continue;
    let stop = false;
    for (let i = 0; i < removed[0]; i++) if (view.getBigUint64(i * 32, true) === 0n) stop = true;
    postMessage(removed[0] - (stop ? 1 : 0));
    if (stop) break;
  }
};`;

async function workerPort(): Promise<number> {
  const { kernel32, addressOf } = native();
  /** The part of `bun:ffi` used here (its types are Bun's, not visible to this checker). */
  type Dlopen = (
    path: string,
    symbols: Record<string, { args: string[]; returns: string }>,
  ) => { symbols: Record<string, (...args: unknown[]) => number | bigint> };
  const { dlopen } = (import.meta as unknown as { require(id: "bun:ffi"): { dlopen: Dlopen } })
    .require("bun:ffi");
  const lib = dlopen("kernel32.dll", {
    CreateIoCompletionPort: { args: ["u64", "u64", "u64", "u32"], returns: "u64" },
    PostQueuedCompletionStatus: { args: ["u64", "u32", "u64", "u64"], returns: "i32" },
  });
  const { server, handle, reading } = await connected(0);
  const port = BigInt(lib.symbols.CreateIoCompletionPort(INVALID_HANDLE_VALUE, 0n, 0n, 1));
  lib.symbols.CreateIoCompletionPort(handle, port, 1n, 0);
  kernel32.SetFileCompletionNotificationModes(handle, 3);
  const url = URL.createObjectURL(new Blob([workerSource], { type: "application/javascript" }));
  const worker = new Worker(url);
  let arrived: (() => void) | undefined;
  let owed = 0;
  worker.onmessage = ({ data }) => {
    owed -= data as number;
    arrived?.();
  };
  worker.postMessage(Number(port));
  const overlapped = new Uint8Array(new ArrayBuffer(32));
  const data = new Uint8Array(new ArrayBuffer(SIZE));
  const t0 = performance.now();
  for (let i = 0; i < WRITES; i++) {
    overlapped.fill(0);
    if (kernel32.WriteFile(handle, addressOf(data), SIZE, null, addressOf(overlapped))) continue;
    const e = kernel32.GetLastError();
    if (e !== 997) throw new Error(`WriteFile: ${e}`);
    owed++;
    while (owed > 0) await new Promise<void>((r) => (arrived = r));
  }
  const ms = performance.now() - t0;
  lib.symbols.PostQueuedCompletionStatus(port, 0, 0n, 0n);
  await new Promise((r) => setTimeout(r, 50));
  worker.terminate();
  kernel32.CloseHandle(handle);
  kernel32.CloseHandle(port);
  await reading;
  await server.close();
  return ms;
}

if (!isWindows()) {
  console.log("bench/completion_path_bun.ts: Windows only (under Wine: scripts/wine.sh bun ...)");
  process.exit(0);
}
const results: Record<string, number[]> = {
  "winpipe: CreateThreadpoolIo": [],
  "own port + Worker": [],
};
for (let run = 0; run < RUNS; run++) {
  results["winpipe: CreateThreadpoolIo"].push(await overlappedPipe(0, true));
  results["own port + Worker"].push(await workerPort());
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
for (const [name, ms] of Object.entries(results)) {
  console.log(
    JSON.stringify({
      candidate: name,
      writes: WRITES,
      medianMs: median(ms),
      runsMs: ms.map(Math.round),
    }),
  );
}
process.exit(0);
