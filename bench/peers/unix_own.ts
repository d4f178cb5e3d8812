// The runtime's own Unix socket, used directly, as a careful user would without winpipe: Deno's
// `Deno.connect`/`Deno.listen` with `transport: "unix"`, or Bun's `Bun.connect`/`Bun.listen` with
// `unix`, whichever runtime runs this file. The "Deno.connect" and "Bun.connect" columns of
// bench/compare_unix.mjs; the same command lines and result lines as the node:net peers:
//
//   unix_own writer PATH CHUNK TOTAL            TOTAL bytes in CHUNK-byte writes, each awaited
//                                               (Deno: conn.write; Bun: the rest after drain)
//   unix_own reader PATH RESULT EXPECTED        listens, reads one client until EXPECTED bytes
//                                               (Deno: conn.read into 64 KiB); appends
//                                               {"ready":true}, then {"bytes":N,"ms":T}
//   unix_own rt-server PATH READY_FILE          echoes every byte back
//   unix_own rt-client PATH COUNT SIZE RESULT   COUNT exchanges; appends {"roundTripsPerSec":R}
import { appendFileSync, writeFileSync } from "node:fs";
import process from "node:process";

interface DenoConn {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  close(): void;
}
interface DenoApi {
  connect(o: { transport: "unix"; path: string }): Promise<DenoConn>;
  listen(o: { transport: "unix"; path: string }): AsyncIterable<DenoConn> & {
    accept(): Promise<DenoConn>;
  };
}
interface BunSocket {
  write(p: Uint8Array): number;
  end(): void;
}
interface BunHandlers {
  open?(s: BunSocket): void;
  data(s: BunSocket, d: Uint8Array): void;
  drain?(s: BunSocket): void;
  end?(s: BunSocket): void;
  close?(s: BunSocket): void;
  error?(s: BunSocket, e: unknown): void;
}
interface BunApi {
  connect(o: { unix: string; socket: BunHandlers }): Promise<BunSocket>;
  listen(o: { unix: string; socket: BunHandlers }): unknown;
}
const g = globalThis as unknown as { Deno?: DenoApi; Bun?: BunApi };

const [role, path, ...args] = process.argv.slice(2);
const record = (file: string, o: unknown) => appendFileSync(file, JSON.stringify(o) + "\n");

/** Deno: writes all of `p`, one `conn.write` after another while they are short. */
async function denoWriteAll(conn: DenoConn, p: Uint8Array): Promise<void> {
  while (p.byteLength > 0) p = p.subarray(await conn.write(p));
}

/** Bun: a write that takes all of `p` at once, or its rest after each drain. */
function bunWriter() {
  let drained: (() => void) | undefined;
  return {
    drain: () => {
      const d = drained;
      drained = undefined;
      d?.();
    },
    async writeAll(s: BunSocket, p: Uint8Array): Promise<void> {
      for (;;) {
        const n = s.write(p);
        if (n < 0) throw new Error("write: the socket is closed");
        if (n === p.byteLength) return;
        p = p.subarray(n);
        await new Promise<void>((r) => (drained = r));
      }
    },
  };
}

async function writer(chunkSize: number, total: number): Promise<void> {
  const chunk = new Uint8Array(chunkSize).fill(0x5a);
  const piece = (sent: number) =>
    total - sent >= chunkSize ? chunk : chunk.subarray(0, total - sent);
  if (g.Bun) {
    const w = bunWriter();
    const s = await g.Bun.connect({ unix: path, socket: { data() {}, drain: w.drain } });
    for (let sent = 0; sent < total; sent += chunkSize) await w.writeAll(s, piece(sent));
    s.end();
    return;
  }
  const conn = await g.Deno!.connect({ transport: "unix", path });
  for (let sent = 0; sent < total; sent += chunkSize) await denoWriteAll(conn, piece(sent));
  conn.close();
}

async function reader(result: string, expected: number): Promise<void> {
  if (g.Bun) {
    await new Promise<void>((resolve) => {
      let t0 = 0;
      let bytes = 0;
      const finish = (s: BunSocket) => {
        if (t0 < 0) return;
        record(result, { bytes, ms: performance.now() - t0 });
        t0 = -1;
        s.end();
        resolve();
      };
      g.Bun!.listen({
        unix: path,
        socket: {
          open: () => void (t0 = performance.now()),
          data: (s, d) => {
            bytes += d.byteLength;
            if (bytes >= expected) finish(s);
          },
          end: finish,
          close: finish,
        },
      });
      record(result, { ready: true });
    });
    return;
  }
  const listener = g.Deno!.listen({ transport: "unix", path });
  record(result, { ready: true });
  const conn = await listener.accept();
  const t0 = performance.now();
  const buffer = new Uint8Array(64 * 1024);
  let bytes = 0;
  while (bytes < expected) {
    const n = await conn.read(buffer);
    if (n === null) break;
    bytes += n;
  }
  record(result, { bytes, ms: performance.now() - t0 });
  conn.close();
}

async function rtServer(ready: string): Promise<void> {
  if (g.Bun) {
    const writers = new Map<BunSocket, ReturnType<typeof bunWriter>>();
    const w = (s: BunSocket) => writers.get(s) ?? writers.set(s, bunWriter()).get(s)!;
    g.Bun.listen({
      unix: path,
      socket: {
        // A copy: the data buffer is Bun's only for the callback, and a short write waits.
        data: (s, d) => void w(s).writeAll(s, d.slice()).catch(() => {}),
        drain: (s) => w(s).drain(),
        close: (s) => void writers.delete(s),
      },
    });
    writeFileSync(ready, "ready");
    return new Promise(() => {}); // serves until killed
  }
  const listener = g.Deno!.listen({ transport: "unix", path });
  writeFileSync(ready, "ready");
  for await (const conn of listener) {
    (async () => {
      const buffer = new Uint8Array(64 * 1024);
      for (let n; (n = await conn.read(buffer)) !== null;) {
        await denoWriteAll(conn, buffer.subarray(0, n));
      }
    })().catch(() => {}).finally(() => conn.close());
  }
}

async function rtClient(count: number, size: number, result: string): Promise<void> {
  const request = new Uint8Array(size).fill(0x61);
  if (g.Bun) {
    const w = bunWriter();
    let done = 0;
    let got = 0;
    let t0 = 0;
    await new Promise<void>((resolve, reject) => {
      g.Bun!.connect({
        unix: path,
        socket: {
          data: (s, d) => {
            got += d.byteLength;
            if (got < size) return;
            got -= size;
            if (++done === count) return resolve();
            w.writeAll(s, request).catch(reject);
          },
          drain: w.drain,
          error: (_s, e) => reject(e),
        },
      }).then((s) => {
        t0 = performance.now();
        return w.writeAll(s, request);
      }).catch(reject);
    });
    record(result, { roundTripsPerSec: count / ((performance.now() - t0) / 1000) });
    return;
  }
  const conn = await g.Deno!.connect({ transport: "unix", path });
  const buffer = new Uint8Array(64 * 1024);
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    await denoWriteAll(conn, request);
    for (let got = 0; got < size;) {
      const n = await conn.read(buffer);
      if (n === null) throw new Error("read: the server closed");
      got += n;
    }
  }
  record(result, { roundTripsPerSec: count / ((performance.now() - t0) / 1000) });
  conn.close();
}

try {
  if (role === "writer") await writer(Number(args[0]), Number(args[1]));
  else if (role === "reader") await reader(args[0], Number(args[1]));
  else if (role === "rt-server") await rtServer(args[0]);
  else if (role === "rt-client") await rtClient(Number(args[0]), Number(args[1]), args[2]);
  else throw new Error(`unix_own: no role ${role}`);
  process.exit(0);
} catch (e) {
  console.error(e);
  process.exit(1);
}
