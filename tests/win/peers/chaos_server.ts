/**
 * The chaos run's process (started by tests/win/chaos.test.ts): one `listen()` server that checks
 * every byte it is sent, and, for a bounded time, clients that connect, write, cancel, close and
 * die mid-stream (modes in chaos_protocol.ts). In-process clients run in LANES at once; clients
 * that die are separate processes (chaos_writer.ts) killed by their pid, CHILD_LANES at once.
 *
 * It first runs a warm-up session (one client of each kind, then everything closed) and takes
 * the handle count as the baseline; then the timed session; then, with everything closed, the
 * count again. It writes a JSON result (statistics and failures) and must then exit by itself:
 * it never calls process.exit, so a handle, pipe or timer left behind keeps it alive, and the
 * test reports that.
 *
 *   <runtime> tests/win/peers/chaos_server.ts RESULT_FILE SEED SECONDS
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import {
  connect,
  listen,
  type ListenOptions,
  type PipeConnection,
  PipeError,
  type PipeErrorEvent,
  type PipeServer,
  type PipeWriter,
} from "../../../mod.ts";
import {
  countByType,
  describeHandle,
  type HandleEntry,
  handleTable,
  nameTypes,
  newHandles,
  RUNTIME_OWNED_TYPES,
  typeDifferences,
} from "../handle_table.ts";
import { processHandleCount } from "../handles.ts";
import { sleep, uniqueName, within } from "../server_end.ts";
import {
  ByteStream,
  decodeHeader,
  DIE_ECHO,
  encodeHeader,
  type Header,
  HEADER_SIZE,
  type Mismatch,
  mix,
  type Mode,
  MODES,
  Rng,
} from "./chaos_protocol.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
/** In-process clients at once. */
const LANES = 6;
/** Dying client processes at once (each is a whole runtime starting under Wine). */
const CHILD_LANES = 2;
/**
 * Fewer instances than clients at once: now and then every instance is connected, clients wait
 * out ERROR_PIPE_BUSY, and the server listens again when a connection is closed.
 */
const MAX_INSTANCES = 6;
/**
 * A second server with small pipe buffers (and fewer instances), where writes wait for the
 * reader far more often: more stop() and cancel() calls meet an operation in flight.
 */
const SMALL_BUFFERS = { maxInstances: 3, inBufferSize: 4 * KiB, outBufferSize: 4 * KiB };
const MAX_CHUNK = 256 * KiB;
/** Any one step (connect, a flush, a read, a close) must finish within this. */
const STEP_MS = 15_000;
/** Either side of one connection must be done within this. */
const CONNECTION_MS = 30_000;
/** serverDrop: the most a client writes before it must have seen the server go. */
const DROP_LIMIT = 64 * MiB;
/** After the deadline, the run must have closed everything within this; else it reports. */
const END_MS = 45_000;
/** Bounds on the number of clients, whatever the clock says. */
const MAX_CLIENTS = 100_000;
const MAX_CHILDREN = 1_000;
/** Client ids: in-process 1.., children from CHILD_IDS, warm-up from WARMUP_IDS. */
const CHILD_IDS = 200_000;
const WARMUP_IDS = 900_000;

const [resultFile, seedArg, secondsArg] = process.argv.slice(2);
const SEED = Number(seedArg) >>> 0;
const SECONDS = Number(secondsArg);
const started = Date.now();
const runtime = "Deno" in globalThis
  ? `deno ${process.versions.deno}`
  : `bun ${process.versions.bun}`;
/** How to start a script in this runtime: `deno run -A script` or `bun script`. */
const runArgs = "Deno" in globalThis ? ["run", "-A"] : [];
const writerScript = fileURLToPath(new URL("./chaos_writer.ts", import.meta.url).href);
const tmp = mkdtempSync(join(tmpdir(), "winpipe-chaos-"));

// ---- what the run found ----

const failures: string[] = [];
/** The run's counters, fresh: the timed session's count alone (the warm-up's are dropped). */
const counters = () => ({
  clients: Object.fromEntries(MODES.map((m) => [m, 0])) as Record<Mode, number>,
  /** In-process clients of the server with small buffers. */
  smallBufferClients: 0,
  server: {
    connections: 0,
    /** Connections that ended before any byte (flash clients, children killed early). */
    empty: 0,
    byMode: Object.fromEntries(MODES.map((m) => [m, 0])) as Record<Mode, number>,
    bytesVerified: 0,
    bytesEchoed: 0,
    drops: 0,
    dropsWithReadInFlight: 0,
    cancelLeftoverBytes: 0,
  },
  clientSide: {
    bytesWritten: 0,
    echoBytesVerified: 0,
    readerCancelLeftoverBytes: 0,
    /** serverDrop clients whose pending read ended (EOF) when the server went. */
    readsEndedByDrop: 0,
  },
  children: {
    spawned: 0,
    killed: 0,
    killedBeforeHeader: 0,
    killedMidStream: 0,
    bytesBeforeDeath: 0,
    /** Children the server echoed to (its writes in flight when they died). */
    withEcho: 0,
  },
  /** Expected errors, by where and errno (peer-gone errors of the modes that cause them). */
  errors: {} as Record<string, number>,
});

const stats = {
  warmupClients: 0,
  ...counters(),
  handles: {
    /** processHandleCount() after the warm-up, and after the run (each reading). */
    baseline: 0,
    end: [] as number[],
    /** By object type, at the baseline and at the last reading. */
    baselineByType: {} as Record<string, number>,
    endByType: {} as Record<string, number>,
    /** Per type, what differs at the last reading (runtime-owned types left out); [] is a pass. */
    difference: [] as string[],
    notCompared: RUNTIME_OWNED_TYPES,
    /** Handles that were not there at the baseline, at the first reading that differed. */
    newSinceBaseline: [] as string[],
  },
};

function fail(what: string): void {
  if (failures.length < 100) failures.push(`${what} [seed ${SEED}, ${runtime}]`);
}

function describe(e: unknown): string {
  if (e instanceof PipeError) return `${e.errno} (${e.code}) from ${e.syscall}: ${e.message}`;
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

/** Counts an expected error by where and errno. */
function expected(where: string, e: unknown): void {
  const key = `${where}: ${e instanceof PipeError ? e.errno : describe(e)}`;
  stats.errors[key] = (stats.errors[key] ?? 0) + 1;
}

/**
 * `p`, or undefined after `ms`. The timer is cleared either way: a timer left running would keep
 * this process alive after the run, which is exactly what the test checks for.
 */
function atMost<T>(ms: number, p: Promise<T>): Promise<T | undefined> {
  return within(ms, p).catch(() => undefined);
}

const peerGone = (e: unknown) => e instanceof PipeError && e.peerGone;

function mismatch(who: string, m: Mismatch, what = "byte"): string {
  const hex = (b: number) => b < 0 ? "?" : `0x${b.toString(16).padStart(2, "0")}`;
  return `${who}: ${what} ${m.position} is ${hex(m.got)}, expected ${hex(m.expected)}`;
}

/** What is under way now, for the report of a run that does not finish: who → doing what. */
const active = new Map<string, () => string>();

process.on("unhandledRejection", (e) => fail(`unhandled rejection: ${describe(e)}`));
process.on("uncaughtException", (e) => fail(`uncaught exception: ${describe(e)}`));

// ---- meeting points between a client and the server side of its connection ----

class Meeting<T> {
  #entries = new Map<number, { promise: Promise<T>; resolve(v: T): void }>();
  #arrived = new Set<number>();
  #entry(id: number) {
    let e = this.#entries.get(id);
    if (!e) {
      let resolve!: (v: T) => void;
      const promise = new Promise<T>((r) => (resolve = r));
      e = { promise, resolve };
      this.#entries.set(id, e);
    }
    return e;
  }
  wait(id: number): Promise<T> {
    return this.#entry(id).promise;
  }
  arrived(id: number): boolean {
    return this.#arrived.has(id);
  }
  arrive(id: number, v: T): void {
    this.#arrived.add(id);
    this.#entry(id).resolve(v);
  }
  forget(id: number): void {
    this.#entries.delete(id);
    this.#arrived.delete(id);
  }
}

interface ServerOutcome {
  header: Header;
  /** Verified bytes after the header. */
  received: number;
  /** The stream ended (EOF) rather than being dropped by the server. */
  eof: boolean;
  dropped: boolean;
  /** A byte differed (already reported): the counts say nothing more. */
  corrupt: boolean;
}

/** The server parsed a client's header. */
const headerSeen = new Meeting<Header>();
/** The server side of a client's connection is done. */
const serverDone = new Meeting<ServerOutcome>();

// ---- the server ----

type Read = () => Promise<Uint8Array | null>;

/** A server on a fresh name, and a way to stop it once every client is done. */
function startServer(options: ListenOptions) {
  const name = uniqueName("chaos");
  const server: PipeServer = listen(name, options);
  const serving = new Set<Promise<void>>();
  const accepting = (async () => {
    try {
      for await (const conn of server) {
        const p = serve(conn).finally(() => serving.delete(p));
        serving.add(p);
      }
    } catch (e) {
      fail(`server: accept failed: ${describe(e)}`);
    }
  })();
  return {
    name,
    async stop() {
      try {
        await within(CONNECTION_MS, Promise.all(serving), "the server sides of the connections");
      } catch (e) {
        fail(`server: ${describe(e)}; ${serving.size} connection(s) still open`);
      }
      await within(STEP_MS, server.close(), "server.close()").catch((e) => fail(describe(e)));
      await within(STEP_MS, accepting, "the accept loop").catch((e) => fail(describe(e)));
    },
  };
}

async function serve(conn: PipeConnection): Promise<void> {
  const key = `server connection ${++stats.server.connections}`;
  const state = { who: `server side of connection ${stats.server.connections}`, received: 0 };
  active.set(key, () => `${state.who}, ${state.received} bytes verified`);
  try {
    await within(CONNECTION_MS, serveConnection(conn, state), state.who);
  } catch (e) {
    fail(`${state.who}: ${describe(e)} (${state.received} bytes verified so far)`);
    await conn.close().catch(() => {});
  } finally {
    active.delete(key);
  }
}

async function serveConnection(
  conn: PipeConnection,
  state: { who: string; received: number },
): Promise<void> {
  // The header, through a default reader.
  const first = conn.readable.getReader();
  let head: Uint8Array = new Uint8Array(0);
  while (head.byteLength < HEADER_SIZE) {
    const r = await first.read();
    if (r.done) break;
    head = concat(head, r.value);
  }
  if (head.byteLength === 0) {
    stats.server.empty++; // a client that came and went
    await conn.close();
    return;
  }
  if (head.byteLength < HEADER_SIZE) {
    fail(`${state.who}: EOF after ${head.byteLength} bytes, inside the ${HEADER_SIZE}-byte header`);
    await conn.close();
    return;
  }
  const header = decodeHeader(head);
  const who = `server side of client #${header.clientId} (${header.mode})`;
  state.who = who;
  stats.server.byMode[header.mode]++;
  headerSeen.arrive(header.clientId, header);
  const outcome: ServerOutcome = {
    header,
    received: 0,
    eof: false,
    dropped: false,
    corrupt: false,
  };
  const stream = new ByteStream(header.seed);
  const echo = header.mode === "echo" || header.mode === "echoCancel"
    || (header.mode === "die" && (header.variant & DIE_ECHO) !== 0);
  /** The client goes while the echo flows: a peer-gone failure of the echo is expected. */
  const goesWhileEchoed = header.mode === "echoCancel" || header.mode === "die";
  const writer = conn.writer!;
  let corrupt = false;
  let echoing = echo;

  // The rest through the default reader, or (variant bit 0) a BYOB reader of random sizes.
  let read: Read;
  if (header.variant & 1) {
    first.releaseLock();
    const byob = conn.readable.getReader({ mode: "byob" });
    const sizes = new Rng(mix(header.seed, 0xb10b));
    read = async () => {
      const r = await byob.read(new Uint8Array(sizes.size(128 * KiB)));
      return r.done ? null : r.value!;
    };
  } else {
    read = async () => {
      const r = await first.read();
      return r.done ? null : r.value;
    };
  }

  const take = async (bytes: Uint8Array) => {
    if (bytes.byteLength === 0) return;
    if (!corrupt) {
      const bad = stream.check(bytes);
      if (bad) {
        corrupt = outcome.corrupt = true;
        fail(mismatch(who, bad));
      } else {
        outcome.received += bytes.byteLength;
        state.received = outcome.received;
        stats.server.bytesVerified += bytes.byteLength;
      }
    }
    if (echoing) {
      try {
        if (!writer.write(bytes)) await within(CONNECTION_MS, writer.flush(), `${who}: echo flush`);
        stats.server.bytesEchoed += bytes.byteLength;
      } catch (e) {
        echoing = false;
        // The client of echoCancel stops reading and goes, a dying one is killed: the echo's
        // peer-gone failure is expected.
        if (goesWhileEchoed && peerGone(e)) expected(`server echo write (${header.mode})`, e);
        else fail(`${who}: echo write failed: ${describe(e)}`);
      }
    }
  };

  await take(head.subarray(HEADER_SIZE));
  for (;;) {
    if (header.mode === "serverDrop" && outcome.received >= header.cut) {
      await drop(conn, header, read, take, who);
      outcome.dropped = true;
      break;
    }
    const bytes = await read();
    if (bytes === null) {
      outcome.eof = true;
      break;
    }
    await take(bytes);
  }
  if (outcome.eof && header.total !== null && outcome.received !== header.total && !corrupt) {
    fail(`${who}: ${outcome.received} bytes arrived before EOF, ${header.total} were declared`);
  }
  try {
    await within(STEP_MS, conn.close(), `${who}: close()`);
  } catch (e) {
    // The client goes while echo bytes may still be queued or in flight: close() flushes them,
    // and rejects with the writer's peer-gone failure, as documented.
    if (goesWhileEchoed && peerGone(e)) expected(`server close() after echo (${header.mode})`, e);
    else fail(`${who}: close() failed: ${describe(e)}`);
  }
  serverDone.arrive(header.clientId, outcome);
}

/** serverDrop: the server closes its end while the client still writes. */
async function drop(
  conn: PipeConnection,
  header: Header,
  read: Read,
  take: (b: Uint8Array) => Promise<void>,
  who: string,
): Promise<void> {
  stats.server.drops++;
  if (header.variant & 2) {
    // With a read in flight: cancel() hands back what that read had transferred, in order.
    stats.server.dropsWithReadInFlight++;
    const pending = read();
    pending.catch(() => {}); // awaited below; not an unhandled rejection meanwhile
    await sleep(header.variant & 4 ? 1 : 0);
    const rest = await within(STEP_MS, conn.reader!.cancel(), `${who}: reader.cancel()`);
    const last = await within(STEP_MS, pending, `${who}: the read pending at cancel()`);
    if (last) await take(last);
    stats.server.cancelLeftoverBytes += rest.byteLength;
    await take(rest);
  }
  await within(STEP_MS, conn.close(), `${who}: close() to drop the client`);
}

// ---- in-process clients ----

const IN_PROCESS: [Mode, number][] = [
  ["graceful", 3],
  ["stop", 2],
  ["echo", 2],
  ["echoCancel", 2],
  ["flash", 1],
  ["serverDrop", 2],
];

interface Spec {
  id: number;
  mode: Mode;
  seed: number;
  rng: Rng;
  chunks: number;
  highWaterMark: number;
  readSize: number;
  variant: number;
  cut: number;
  /** Which server: 0 the default, 1 the one with small buffers. */
  server: number;
}

/** Client `id`'s choices depend on the seed and the id only, not on timing. */
function specFor(id: number, mode?: Mode): Spec {
  const rng = new Rng(mix(SEED, id));
  let pick = rng.int(1, IN_PROCESS.reduce((n, [, w]) => n + w, 0));
  const chosen = IN_PROCESS.find(([, w]) => (pick -= w) <= 0)![0];
  return {
    id,
    mode: mode ?? chosen,
    seed: rng.next(),
    rng,
    chunks: rng.int(1, 24),
    highWaterMark: rng.pick([16 * KiB, 64 * KiB, 256 * KiB, MiB]),
    readSize: rng.pick([512, 4 * KiB, 64 * KiB]),
    variant: rng.int(0, 255),
    cut: rng.size(MiB) - 1,
    server: rng.chance(0.3) ? 1 : 0,
  };
}

interface ClientOutcome {
  /** Data bytes handed to write() (after the header). */
  queued: number;
  /** Data bytes the writer reported written (byteswritten), i.e. in the pipe. */
  accepted: number;
  /** Echo bytes received and verified. */
  echoed: number;
}

/** Resolves on `drain`, rejects on `error`. */
function drained(w: PipeWriter): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = new AbortController();
    const { signal } = done;
    w.addEventListener("drain", () => (done.abort(), resolve()), { signal });
    w.addEventListener("error", (e) => (done.abort(), reject((e as PipeErrorEvent).error)), {
      signal,
    });
  });
}

async function runClient(spec: Spec): Promise<void> {
  const who = `client #${spec.id} (${spec.mode})`;
  let doing = "connect";
  active.set(who, () => `${who}: ${doing}`);
  try {
    await clientSteps(spec, who, (what) => (doing = what));
  } finally {
    active.delete(who);
  }
}

async function clientSteps(spec: Spec, who: string, now: (what: string) => void): Promise<void> {
  const conn = await within(
    STEP_MS,
    connect(names[spec.server], {
      timeout: STEP_MS,
      highWaterMark: spec.highWaterMark,
      readSize: spec.readSize,
    }),
    `${who}: connect`,
  );
  try {
    await drive(spec, who, now, conn);
  } catch (e) {
    // Whatever failed, this connection goes now, so that its server side ends and the test
    // leaves nothing open itself: the failure is reported as what it is, not as a hang or a leak
    // after it. (If the library hangs here too, that shows as well.)
    await within(STEP_MS, conn.writer!.stop().then(() => conn.close()), `${who}: abandon`)
      .catch(() => {});
    throw e;
  }
}

/** The client's mode, over its connection. */
async function drive(
  spec: Spec,
  who: string,
  now: (what: string) => void,
  conn: PipeConnection,
): Promise<void> {
  const w = conn.writer!;
  const o: ClientOutcome = { queued: 0, accepted: -HEADER_SIZE, echoed: 0 };
  w.addEventListener("byteswritten", (e) => (o.accepted += (e as CustomEvent<number>).detail));
  const step = <T>(p: Promise<T>, what: string) => {
    now(what);
    return within(STEP_MS, p, `${who}: ${what}`);
  };
  const stream = new ByteStream(spec.seed);
  const scratch = new Uint8Array(MAX_CHUNK);
  const sizes = Array.from({ length: spec.chunks }, () => spec.rng.size(MAX_CHUNK));
  const total = sizes.reduce((a, b) => a + b, 0);
  /** write(); the bytes count as queued once write() has taken them (it throws after a failure). */
  const put = (n: number): boolean => {
    const below = w.write(stream.next(n, scratch));
    o.queued += n;
    return below;
  };
  const sendHeader = async (total: number | null) => {
    w.write(encodeHeader({ ...spec, clientId: spec.id, total }));
    await step(w.flush(), "header flush");
  };

  switch (spec.mode) {
    case "flash": {
      if (spec.variant & 1) await step(w.stop(), "writer.stop()");
      await step(conn.close(), "close()");
      return;
    }
    case "graceful": {
      await sendHeader(total);
      if (spec.variant & 2) {
        // Through the WritableStream face; its close() is the writer's.
        const sw = conn.writable.getWriter();
        for (const n of sizes) {
          o.queued += n;
          await step(sw.write(stream.next(n)), "writable.write()");
        }
        await step(sw.close(), "writable.close()");
      } else {
        for (const n of sizes) {
          if (!put(n)) await step(drained(w), "drain");
        }
      }
      await step(conn.close(), "close()");
      writtenOnce(o, w, who);
      break;
    }
    case "stop": {
      await sendHeader(null);
      // Queue without waiting, so that writes are in flight and queued when stop() comes.
      for (const n of sizes.slice(0, spec.rng.int(1, sizes.length))) {
        put(n);
      }
      if (spec.variant & 2) await sleep(spec.rng.int(0, 20));
      await step(w.stop(), "writer.stop()");
      if (w.bytesToWrite !== 0) fail(`${who}: bytesToWrite is ${w.bytesToWrite} after stop()`);
      try {
        w.write("after stop");
        fail(`${who}: write() after stop() did not throw`);
      } catch (e) {
        if (!(e instanceof PipeError)) fail(`${who}: write() after stop(): ${describe(e)}`);
      }
      await step(conn.close(), "close() after stop()");
      break;
    }
    case "echo": {
      await sendHeader(total);
      const reading = readEcho(conn, spec, o, total, who);
      reading.catch(() => {}); // awaited below; not an unhandled rejection meanwhile
      for (const n of sizes) {
        if (!put(n)) await step(drained(w), "drain");
      }
      now("reading the echo");
      await within(CONNECTION_MS, reading, `${who}: reading the echo`);
      await step(conn.close(), "close()");
      writtenOnce(o, w, who);
      break;
    }
    case "echoCancel": {
      await sendHeader(null);
      const cancelAt = spec.rng.int(0, total - 1);
      let stopping = false;
      const writing = (async () => {
        for (const n of sizes) {
          if (stopping) return;
          try {
            // flush, not drain: stop() settles flush() waiters, and dispatches no more events.
            if (!put(n)) await w.flush();
          } catch (e) {
            if (stopping) return;
            throw e;
          }
        }
      })();
      writing.catch(() => {}); // awaited below; not an unhandled rejection meanwhile
      now("reading the echo, then reader.cancel()");
      const rest = await readEcho(conn, spec, o, cancelAt, who, true);
      stats.clientSide.readerCancelLeftoverBytes += rest;
      stopping = true;
      await step(w.stop(), "writer.stop()");
      await step(writing, "the writing loop after stop()");
      await step(conn.close(), "close()");
      break;
    }
    case "serverDrop": {
      await sendHeader(null);
      // The server never writes: a read pending here must end (EOF) when the server goes.
      const reading = spec.variant & 16 ? conn.readable.getReader().read() : undefined;
      reading?.catch(() => {}); // awaited below; not an unhandled rejection meanwhile
      let error: unknown;
      const end = Date.now() + CONNECTION_MS / 2;
      try {
        while (o.queued < DROP_LIMIT && Date.now() < end) {
          if (!put(spec.rng.size(MAX_CHUNK))) await step(w.flush(), "flush");
        }
      } catch (e) {
        error = e;
      }
      if (error === undefined) {
        fail(`${who}: wrote ${o.queued} bytes and never saw the server go (cut at ${spec.cut})`);
      } else if (!peerGone(error)) {
        fail(`${who}: writing after the server went: ${describe(error)}, not a peer-gone error`);
      } else {
        expected("client write after server drop", error);
        // After a failure, bytesToWrite keeps the count that was never written.
        if (w.bytesToWrite !== o.queued - o.accepted) {
          fail(
            `${who}: bytesToWrite is ${w.bytesToWrite} after the failure; ${o.queued} bytes were `
              + `handed to write() and ${o.accepted} reported written (byteswritten)`,
          );
        }
      }
      if (reading) {
        const r = await step(reading, "the read pending when the server went");
        if (!r.done) {
          fail(`${who}: read ${r.value?.byteLength} bytes from a server that wrote none`);
        }
        stats.clientSide.readsEndedByDrop++;
      }
      try {
        await step(conn.close(), "close() after the server went");
        if (error !== undefined) fail(`${who}: close() resolved though the writer had failed`);
      } catch (e) {
        if (e !== error) {
          fail(`${who}: close() rejected with ${describe(e)}, not the writer's error`);
        }
      }
      break;
    }
    default:
      throw new Error(`no in-process client for ${spec.mode}`);
  }
  stats.clientSide.bytesWritten += o.queued;
  await crossCheck(spec, o, total, who);
}

/** After a graceful close: every byte handed to write() was reported written once, none is left. */
function writtenOnce(o: ClientOutcome, w: PipeWriter, who: string): void {
  if (o.accepted !== o.queued || w.bytesToWrite !== 0) {
    fail(
      `${who}: after close(), ${o.accepted} bytes reported written (byteswritten) of ${o.queued} `
        + `handed to write(), bytesToWrite ${w.bytesToWrite}`,
    );
  }
}

/**
 * Reads the echo until `until` bytes, verifying it. With `cancel`, then cancels the reader with a
 * read in flight and verifies what cancel() hands back too; returns that byte count.
 */
async function readEcho(
  conn: PipeConnection,
  spec: Spec,
  o: ClientOutcome,
  until: number,
  who: string,
  cancel = false,
): Promise<number> {
  const echo = new ByteStream(spec.seed);
  const byob = (spec.variant & 4) !== 0;
  const reader = byob ? conn.readable.getReader({ mode: "byob" }) : conn.readable.getReader();
  const sizes = new Rng(mix(spec.seed, 0xec));
  const read = async () => {
    const r = byob
      ? await (reader as ReadableStreamBYOBReader).read(new Uint8Array(sizes.size(64 * KiB)))
      : await (reader as ReadableStreamDefaultReader<Uint8Array>).read();
    return r.done ? null : r.value!;
  };
  const verify = (bytes: Uint8Array | null) => {
    if (!bytes || bytes.byteLength === 0) return;
    const bad = echo.check(bytes);
    if (bad) throw new Error(mismatch(`${who}: echo`, bad));
    o.echoed += bytes.byteLength;
    stats.clientSide.echoBytesVerified += bytes.byteLength;
  };
  while (o.echoed < until) {
    const bytes = await within(STEP_MS, read(), `${who}: echo read at ${o.echoed}`);
    if (bytes === null) throw new Error(`${who}: echo ended at ${o.echoed} of ${until} bytes`);
    verify(bytes);
  }
  if (!cancel) {
    if (o.echoed !== until) fail(`${who}: ${o.echoed} echo bytes, ${until} expected`);
    reader.releaseLock();
    return 0;
  }
  const pending = read();
  pending.catch(() => {}); // awaited below; not an unhandled rejection meanwhile
  await sleep(spec.variant & 8 ? 1 : 0);
  const rest = await within(STEP_MS, conn.reader!.cancel(), `${who}: reader.cancel()`);
  verify(await within(STEP_MS, pending, `${who}: the read pending at cancel()`));
  verify(rest);
  return rest.byteLength;
}

/** What the client wrote and what the server received agree. */
async function crossCheck(spec: Spec, o: ClientOutcome, total: number, who: string) {
  const s = await within(STEP_MS, serverDone.wait(spec.id), `${who}: the server side to finish`)
    .catch((e) => (fail(describe(e)), null));
  serverDone.forget(spec.id);
  headerSeen.forget(spec.id);
  if (!s || s.corrupt) return;
  const range = (lo: number, hi: number, what: string) => {
    if (s.received < lo || s.received > hi) {
      fail(`${who}: the server received ${s.received} bytes; ${what} [${lo}, ${hi}]`);
    }
  };
  switch (spec.mode) {
    case "graceful":
    case "echo":
      range(total, total, "the declared total is");
      if (!s.eof) fail(`${who}: the server side did not see EOF`);
      break;
    case "stop":
      // Every byte the writer reported written is in the pipe; nothing not handed to write().
      range(o.accepted, o.queued, "written (byteswritten) to queued is");
      if (!s.eof) fail(`${who}: the server side did not see EOF`);
      break;
    case "echoCancel":
      range(o.echoed, o.queued, "echoed back to queued is");
      break;
    case "serverDrop":
      range(Math.min(spec.cut, o.queued), o.queued, "the cut to queued is");
      if (!s.dropped) fail(`${who}: the server side did not drop the client`);
      break;
  }
}

// ---- clients that die: separate processes, killed by their pid ----

async function runChild(id: number): Promise<void> {
  const who = `dying client #${id}`;
  let doing = "starting";
  active.set(who, () => `${who}: ${doing}`);
  try {
    await childSteps(id, who, (what) => (doing = what));
  } finally {
    active.delete(who);
  }
}

async function childSteps(id: number, who: string, now: (what: string) => void): Promise<void> {
  const rng = new Rng(mix(SEED, id));
  const seed = rng.next();
  const early = rng.chance(0.2); // killed at a random time from its start, maybe before connecting
  const delay = early ? rng.int(0, 3000) : rng.int(0, 1500);
  const echo = rng.chance(0.5);
  const log = join(tmp, `child-${id}.log`);
  stats.children.spawned++;
  stats.clients.die++;
  if (echo) stats.children.withEcho++;
  const child = spawn(
    process.execPath,
    [...runArgs, writerScript, names[0], String(id), String(seed), echo ? "1" : "0", log],
    // detached (DETACHED_PROCESS): no console, so Wine starts no conhost.exe for it. When a
    // child with a console is killed, its conhost is now and then left running (measured with
    // deno.exe: after 3 of 8 runs of 30 kills; detached, after none of 7), and it keeps the
    // wineserver alive, and with it scripts/wine.sh's lock on the Wine root, for good.
    { stdio: "ignore", detached: true },
  );
  let exit: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.on("exit", (code, signal) => (exit = `code ${code}, signal ${signal}`, resolve()));
    child.on("error", (e) => (exit = `spawn error: ${describe(e)}`, resolve()));
  });
  if (!early) {
    now("waiting for its header to arrive");
    await atMost(CONNECTION_MS / 2, Promise.race([headerSeen.wait(id), exited]));
  }
  now(`${delay} ms before the kill`);
  await sleep(delay);
  if (exit !== undefined) {
    let text = "";
    try {
      text = readFileSync(log, "utf8");
    } catch { /* no log */ }
    fail(`${who}: exited by itself (${exit}) before it was killed: ${text || "no log"}`);
  } else {
    const mid = headerSeen.arrived(id);
    now(`killed (pid ${child.pid}), waiting for its exit and the server's EOF`);
    process.kill(child.pid!);
    stats.children.killed++;
    await within(STEP_MS, exited, `${who}: exit after kill`).catch((e) => fail(describe(e)));
    // Its bytes may still be in the pipe: give the server a moment to reach its header.
    const s = await atMost(2_000, serverDone.wait(id));
    if (s) {
      stats.children.killedMidStream++;
      stats.children.bytesBeforeDeath += s.received;
      if (!s.eof) fail(`${who}: the server side did not see EOF after the kill`);
    } else if (mid) {
      // The header arrived, so EOF must follow; the server's own time limit reports a hang.
      stats.children.killedMidStream++;
    } else {
      stats.children.killedBeforeHeader++;
    }
  }
  serverDone.forget(id);
  headerSeen.forget(id);
}

// ---- sessions ----

/** The session's pipe names: the default server, and the one with small buffers. */
let names: string[] = [];

/** One session: both servers; stop() stops them once every client is done. */
function startServers() {
  const servers = [startServer({ maxInstances: MAX_INSTANCES }), startServer(SMALL_BUFFERS)];
  names = servers.map((s) => s.name);
  return { stop: () => Promise.all(servers.map((s) => s.stop())) };
}

async function guarded(what: string, p: () => Promise<void>): Promise<void> {
  try {
    await within(2 * CONNECTION_MS, p(), what);
  } catch (e) {
    fail(`${what}: ${describe(e)}`);
  }
}

/**
 * One of each kind on each server, one after another, and a dying client: the thread pool and
 * the runtime make what they keep.
 */
async function warmUp(): Promise<void> {
  const servers = startServers();
  let id = WARMUP_IDS;
  for (const server of [0, 1]) {
    for (const mode of IN_PROCESS.map(([m]) => m)) {
      const spec = { ...specFor(++id, mode), server };
      stats.warmupClients++;
      await guarded(`warm-up client #${spec.id} (${mode})`, () => runClient(spec));
    }
  }
  stats.warmupClients++;
  await guarded("warm-up dying client", () => runChild(++id));
  await servers.stop();
  Object.assign(stats, counters());
}

async function chaos(deadline: number): Promise<void> {
  const servers = startServers();
  let nextClient = 0;
  let nextChild = CHILD_IDS;
  const lane = async () => {
    while (Date.now() < deadline && nextClient < MAX_CLIENTS) {
      const spec = specFor(++nextClient);
      stats.clients[spec.mode]++;
      stats.smallBufferClients += spec.server;
      await guarded(`client #${spec.id} (${spec.mode})`, () => runClient(spec));
    }
  };
  const childLane = async () => {
    while (Date.now() < deadline && nextChild < CHILD_IDS + MAX_CHILDREN) {
      const id = ++nextChild;
      await guarded(`dying client #${id}`, () => runChild(id));
    }
  };
  await Promise.all([
    ...Array.from({ length: LANES }, lane),
    ...Array.from({ length: CHILD_LANES }, childLane),
  ]);
  await servers.stop();
}

let baselineTable: HandleEntry[] = [];

/**
 * The handles, compared with the baseline type by type: readings 300 ms after the run, then
 * every 500 ms for a few seconds while any type differs (a close may still be on its way). Both
 * the baseline and the first reading come right after pool activity, so Wine's thread pool has
 * its workers in both: it drops them after 5 s idle, and with them one handle of its own (type
 * index 0, which NtQueryObject does not name), measured.
 */
async function compareHandles(): Promise<void> {
  for (let i = 0; i < 10; i++) {
    await sleep(i === 0 ? 300 : 500);
    const total = processHandleCount();
    const table = handleTable();
    stats.handles.end.push(total);
    if (!table) {
      // No per-type table: the total is all there is to compare.
      stats.handles.difference = total === stats.handles.baseline
        ? []
        : [`total ${total - stats.handles.baseline}`];
    } else {
      stats.handles.endByType = countByType(table);
      stats.handles.difference = typeDifferences(
        stats.handles.baselineByType,
        stats.handles.endByType,
      );
      if (stats.handles.difference.length && !stats.handles.newSinceBaseline.length) {
        stats.handles.newSinceBaseline = newHandles(baselineTable, table).map((e) =>
          describeHandle(e, table)
        );
      }
    }
    if (stats.handles.difference.length === 0) return;
  }
  fail(
    `handles after the run differ from the baseline: ${stats.handles.difference.join(", ")} `
      + `(totals: ${stats.handles.baseline} at the baseline, then ${
        stats.handles.end.join(", ")
      }; new since the baseline: ${stats.handles.newSinceBaseline.join(", ") || "none"})`,
  );
}

/** The behaviours the run exists for, each of which must have happened at least once. */
function neverRan(): string[] {
  const counts: [string, number][] = [
    ...MODES.map((m): [string, number] => [m, stats.clients[m]]),
    ["a client on small buffers", stats.smallBufferClients],
    ["a serverDrop with a read in flight", stats.server.dropsWithReadInFlight],
    ["a client's read ended by a serverDrop", stats.clientSide.readsEndedByDrop],
    ["a dying client killed mid-stream", stats.children.killedMidStream],
    ["a dying client reading an echo", stats.children.withEcho],
  ];
  return counts.filter(([, n]) => n === 0).map(([what]) => what);
}

function writeResult(): void {
  const behaviours = neverRan();
  const result = {
    ok: failures.length === 0 && behaviours.length === 0,
    seed: SEED,
    seconds: SECONDS,
    runtime,
    elapsedMs: Date.now() - started,
    neverRan: behaviours,
    ...stats,
    failures,
  };
  writeFileSync(resultFile, JSON.stringify(result, null, 2));
}

const deadline = started + SECONDS * 1000;
// A run that hangs still reports: what was under way, and the statistics so far.
const watchdog = setTimeout(() => {
  const doing = [...active.values()].map((f) => f());
  fail(
    `the run did not finish within ${END_MS / 1000} s after its deadline; still under way: ${
      doing.join("; ") || "nothing (then the end-of-run closing hung)"
    }`,
  );
  writeResult();
}, deadline + END_MS - Date.now());

try {
  await warmUp();
  await sleep(200);
  nameTypes(handleTable() ?? []); // NtQueryObject bound and asked before the baseline
  stats.handles.baseline = processHandleCount();
  baselineTable = handleTable() ?? [];
  stats.handles.baselineByType = countByType(baselineTable);
  await chaos(deadline);
  await compareHandles();
} catch (e) {
  fail(`the run itself failed: ${(e as Error)?.stack ?? e}`);
} finally {
  clearTimeout(watchdog);
  rmSync(tmp, { recursive: true, force: true });
  writeResult();
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a);
  out.set(b, a.byteLength);
  return out;
}
