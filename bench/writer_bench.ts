/// <reference lib="deno.ns" />
/**
 * `deno bench -A bench/writer_bench.ts` (under Wine: `scripts/wine.sh deno bench -A bench/writer_bench.ts`).
 *
 * - "write() cost": the writer's own CPU cost per chunk against a completion source that
 *   completes at once (any OS).
 * - "echo exchange": what a server's exchange costs in winpipe's own JavaScript: 10,000 reads
 *   (`readInto`, as `conn.read(p)` does) each echoed by a `write()`, against fake channels whose
 *   reads complete on the next turn of the event loop, as a pool callback would; the baseline is
 *   the same 10,000 turns with nothing else (any OS). The difference is per 10,000 exchanges.
 * - "pipe": 16 MiB through a real pipe into an in-process reader, by chunk size (Windows).
 * - "largest write" and "high-water mark": the measurements behind MAX_BLOCK and the default
 *   highWaterMark (Windows). The candidates derive from the chosen values, so that a change of
 *   either is measured against its neighbours; the chosen one is the baseline, named "(chosen)"
 *   (bench/render.mjs reads it from there and says when a neighbour is more than 10% faster).
 */
import type { IoResult, ReadChannel } from "../core/channel.ts";
import { openSettings, readerSettings, writerSettings } from "../core/options.ts";
import { MAX_BLOCK } from "../core/queue.ts";
import { PipeReader } from "../core/reader.ts";
import { writerOverChannel } from "../core/writer.ts";
import { isWindows } from "../ffi/runtime.ts";
import { ServerEnd, uniqueName } from "../tests/win/server_end.ts";
import type { WriteChannel } from "../windows/completion/mod.ts";
import { OverlappedPipe } from "../windows/completion/mod.ts";
import { openPipeHandle } from "../windows/open.ts";

const MiB = 1024 * 1024;
const onWindows = isWindows();

/**
 * A channel whose writes complete on the next microtask (as a pool callback would, minus the
 * trip), or at once (as with FILE_SKIP_COMPLETION_PORT_ON_SUCCESS).
 */
function instantChannel(atOnce: boolean): WriteChannel {
  return {
    path: undefined,
    startWrite(bytes, onComplete) {
      if (atOnce) return { error: 0, bytes: bytes.byteLength };
      queueMicrotask(() => onComplete({ error: 0, bytes: bytes.byteLength }));
      return undefined;
    },
    cancelWrite: () => 1168,
    waitWrite: () => undefined,
    abortHandle: () => false,
    release: () => Promise.resolve(),
  };
}

for (const [size, atOnce] of [256, 4096, 65536].flatMap((s) => [[s, false], [s, true]] as const)) {
  Deno.bench(
    `write() cost: 8 MiB in ${size} B chunks, ${atOnce ? "completing at once" : "completed later"}`,
    { group: "write() cost", n: 20 },
    async () => {
      const w = writerOverChannel(instantChannel(atOnce), writerSettings({}, "bench"));
      const chunk = new Uint8Array(size);
      for (let sent = 0; sent < 8 * MiB; sent += size) {
        if (!w.write(chunk)) {
          await new Promise((r) => w.addEventListener("drain", r, { once: true }));
        }
      }
      await w.close();
    },
  );
}

const EXCHANGES = 10_000;

Deno.bench(
  `echo exchange: ${EXCHANGES} turns of the event loop alone`,
  { group: "echo exchange", baseline: true, n: 20 },
  async () => {
    let n = 0;
    await new Promise<void>((done) => {
      const turn = () => ++n === EXCHANGES ? done() : setImmediate(turn);
      setImmediate(turn);
    });
  },
);

Deno.bench(
  `echo exchange: ${EXCHANGES} reads by readInto, each written back by write()`,
  { group: "echo exchange", n: 20 },
  async () => {
    // Every read goes pending, as a server's does, and completes with 64 B on the next turn.
    let reading: ((r: IoResult) => void) | undefined;
    const channel: ReadChannel = {
      path: undefined,
      startRead(_buffer, onComplete) {
        reading = onComplete;
        setImmediate(() => reading?.({ error: 0, bytes: 64 }));
        return undefined;
      },
      cancelRead: () => 1168,
      available: () => 0,
      abortHandle: () => false,
      release: () => Promise.resolve(),
    };
    const reader = PipeReader.overChannel(channel, readerSettings({}, "bench"));
    reader.takeForReadInto();
    const w = writerOverChannel(instantChannel(true), writerSettings({}, "bench"));
    const p = new Uint8Array(64 * 1024);
    for (let n = 0; n < EXCHANGES; n++) w.write(p.subarray(0, (await reader.readInto(p))!));
    await w.close();
  },
);

// Setup (a pipe instance and a connection, about 1 ms) is inside the timing: Deno's b.start()
// cannot follow an await. The bench functions are `async`: Deno times a plain function that
// returns a promise only up to its return.
async function transfer(
  options: { chunk: number; maxBlock?: number; highWaterMark?: number; total?: number },
) {
  const name = uniqueName("bench");
  const server = ServerEnd.create(name, {}, MiB);
  const connected = server.connect();
  const handle = await openPipeHandle(name, "write", openSettings({}, "bench"));
  await connected;
  const pipe = OverlappedPipe.bind(handle, { owned: true, path: name });
  const settings = writerSettings({ highWaterMark: options.highWaterMark }, "bench");
  const w = writerOverChannel(pipe.writeChannel(), settings, options.maxBlock);
  const chunk = new Uint8Array(options.chunk);
  const total = options.total ?? 16 * MiB;
  const reading = server.drain();
  for (let sent = 0; sent < total; sent += chunk.byteLength) {
    if (!w.write(chunk)) await new Promise((r) => w.addEventListener("drain", r, { once: true }));
  }
  await w.close();
  await reading;
  await server.close();
}

const windowsOnly = { ignore: !onWindows, n: 10, warmup: 2 };

for (const chunk of [256, 4096, 65536, MiB]) {
  Deno.bench(
    `pipe: 16 MiB in ${chunk} B chunks`,
    { ...windowsOnly, group: "pipe" },
    async () => await transfer({ chunk }),
  );
}

/** The chosen value, its half and double, and the spread around them (÷16, ÷4, ×4). */
const neighbours = (chosen: number) =>
  [1 / 16, 1 / 4, 1 / 2, 1, 2, 4].map((f) => Math.round(chosen * f));
const named = (value: number, chosen: number) =>
  `${value / 1024} KiB${value === chosen ? " (chosen)" : ""}`;

const largestWrites = neighbours(MAX_BLOCK);
for (const maxBlock of largestWrites) {
  Deno.bench(
    `largest write ${named(maxBlock, MAX_BLOCK)}: 16 MiB in 1 MiB chunks`,
    { ...windowsOnly, group: "largest write", baseline: maxBlock === MAX_BLOCK },
    // A high-water mark no smaller than any candidate, so that the largest write is what varies.
    async () => await transfer({ chunk: MiB, maxBlock, highWaterMark: Math.max(...largestWrites) }),
  );
}

// The default highWaterMark, as the writer's settings resolve it.
const defaultHighWaterMark = writerSettings({}, "bench").highWaterMark;
for (const highWaterMark of neighbours(defaultHighWaterMark)) {
  Deno.bench(
    `high-water mark ${named(highWaterMark, defaultHighWaterMark)}: 16 MiB in 256 B chunks`,
    { ...windowsOnly, group: "high-water mark", baseline: highWaterMark === defaultHighWaterMark },
    async () => await transfer({ chunk: 256, highWaterMark }),
  );
}
