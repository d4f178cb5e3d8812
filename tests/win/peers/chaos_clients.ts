/**
 * The chaos run's in-process clients, one mode each (chaos_protocol.ts): what each does over its
 * connection, what it checks itself (the echo, its writer's counts), and how its numbers must
 * agree with what the server side received.
 */
import { MAX_BLOCK } from "../../../core/queue.ts";
import {
  connect,
  type PipeConnection,
  PipeError,
  type PipeErrorEvent,
  type PipeWriter,
} from "../../../mod.ts";
import { sleep, within } from "../server_end.ts";
import { ByteStream, encodeHeader, HEADER_SIZE, mix, type Mode, Rng } from "./chaos_protocol.ts";
import {
  acceptedOn,
  active,
  CONNECTION_MS,
  describe,
  expected,
  fail,
  headerSeen,
  KiB,
  MAX_CHUNK,
  MiB,
  mismatch,
  peerGone,
  serverDone,
  stats,
  STEP_MS,
} from "./chaos_report.ts";

/** serverDrop: the most a client writes before it must have seen the server go. */
const DROP_LIMIT = 64 * MiB;

/** The in-process modes, and how often each is chosen (weights). */
export const IN_PROCESS: [Mode, number][] = [
  ["graceful", 3],
  ["stop", 2],
  ["echo", 2],
  ["echoCancel", 2],
  ["flash", 1],
  ["serverDrop", 2],
];

export interface Spec {
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
export function specFor(seed: number, id: number, mode?: Mode): Spec {
  const rng = new Rng(mix(seed, id));
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

/** Runs client `spec` against the pipe `name`: its failures go to the report, and it throws. */
export async function runClient(spec: Spec, name: string): Promise<void> {
  const who = `client #${spec.id} (${spec.mode})`;
  let doing = "connect";
  active.set(who, () => `${who}: ${doing}`);
  try {
    await clientSteps(spec, name, who, (what) => (doing = what));
  } finally {
    active.delete(who);
  }
}

async function clientSteps(
  spec: Spec,
  name: string,
  who: string,
  now: (what: string) => void,
): Promise<void> {
  const conn = await connectFairly(spec, name, who);
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

/**
 * connect(), waiting out ERROR_PIPE_BUSY for as long as the server keeps accepting others. With
 * fewer instances than clients, a freed instance goes to whichever client's CreateFileW comes
 * first, and one client can lose that race for longer than STEP_MS while the server serves the
 * others (measured: busy for 15 s on the 3-instance server while it accepted a connection every
 * few hundred ms). What must not happen is a server that stops listening: a whole STEP_MS with
 * no connection accepted on that pipe fails the client.
 */
async function connectFairly(spec: Spec, name: string, who: string): Promise<PipeConnection> {
  for (;;) {
    const before = acceptedOn.get(name) ?? 0;
    try {
      return await within(
        STEP_MS,
        connect(name, {
          timeout: STEP_MS,
          highWaterMark: spec.highWaterMark,
          readSize: spec.readSize,
        }),
        `${who}: connect`,
      );
    } catch (e) {
      const served = (acceptedOn.get(name) ?? 0) - before;
      if (!(e instanceof PipeError && e.code === "ERROR_PIPE_BUSY") || served === 0) throw e;
      stats.clientSide.busyRetries++;
    }
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
        // After a failure, bytesToWrite keeps the count that was never written. A write in
        // flight when the failure came may still complete with success, and is then counted
        // without an event (the writer's contract): at most the two writes in flight.
        const unreported = o.queued - o.accepted - w.bytesToWrite;
        if (unreported < 0 || unreported > 2 * MAX_BLOCK) {
          fail(
            `${who}: bytesToWrite is ${w.bytesToWrite} after the failure; ${o.queued} bytes were `
              + `handed to write() and ${o.accepted} reported written (byteswritten)`,
          );
        }
        if (unreported > 0) stats.clientSide.lateSuccessBytes += unreported;
      }
      if (reading) {
        const r = await step(reading, "the read pending when the server went");
        if (!r.done) {
          fail(`${who}: read ${r.value?.byteLength} bytes from a server that wrote none`);
        }
        stats.clientSide.readsEndedByDrop++;
      }
      // A peer that left is not the caller's failure: close() resolves, and what was not
      // delivered stays readable on the writer (its error, and bytesToWrite).
      try {
        await step(conn.close(), "close() after the server went");
      } catch (e) {
        fail(`${who}: close() after the server went rejected with ${describe(e)}`);
      }
      if (error !== undefined && w.error !== error) {
        const kept = describe(w.error);
        fail(`${who}: after close(), the writer's error is ${kept}, not ${describe(error)}`);
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
