// Model-based tests of the POSIX channel: random sequences of what a user and the runtime's socket
// do, against a PipeConnection over the real UnixSocket (posix/socket.ts), whose runtime socket
// (the Wire) is a fake the test drives. Invariants, after every step:
// - the bytes the socket took are a prefix of the bytes written, in order;
// - the bytes read are a prefix of the bytes that arrived, in order;
// - at most one error event; one write at a time; nothing written after close;
// - the socket is paused only while more than half of READ_AHEAD waits unread;
// - the socket is closed at most once, and once at the end; no promise is left pending.
// Each property runs with a fixed seed, and again with WINPIPE_SEED when it is set.
import fc from "fast-check";
import assert from "node:assert/strict";
import { test } from "node:test";
import { PipeConnection } from "../core/connection.ts";
import { readerSettings, writerSettings } from "../core/options.ts";
import { PipeError } from "../mod.ts";
import { errorWith, UnixSocket, type Wire } from "../posix/socket.ts";
import { seeds, settles } from "./property.ts";

const FIXED_SEED = 20261207;
const RUNS = 120;
const READ_AHEAD = 1024 * 1024; // posix/socket.ts
const BOUND_MS = 3_000;

/** The runtime's socket as the model drives it: Deno-like (no cancel) or Bun-like. */
class FakeWire implements Wire {
  /** Bytes the socket took; each one checked against the pattern (byte i is i & 0xff). */
  taken = 0;
  pending: { bytes: Uint8Array; onDone: (e: unknown, n: number) => void } | null = null;
  atOnce = false;
  paused = false;
  closes = 0;
  closedWrite = false;
  violations: string[] = [];
  /** Deno's pump reuses its buffers (and cannot cancel a write); Bun hands each chunk over. */
  recycle?: (data: Uint8Array) => void;
  constructor(readonly canCancel: boolean) {
    if (!canCancel) this.recycle = () => {};
  }
  resume(): void {
    this.paused = false;
  }
  pause(): void {
    this.paused = true;
  }
  write(bytes: Uint8Array, onDone: (e: unknown, n: number) => void): number | undefined {
    if (this.closes > 0) this.violations.push("a write after close()");
    if (this.closedWrite) this.violations.push("a write after closeWrite()");
    if (this.pending) this.violations.push("a second write while one is pending");
    if (this.atOnce) {
      this.#take(bytes);
      return bytes.byteLength;
    }
    // The caller's view stays valid until onDone; copy only when it completes.
    this.pending = { bytes, onDone };
    return undefined;
  }
  /** The pending write completes: whole, or with an error after `n` bytes got through. */
  complete(error?: string, n?: number): void {
    const p = this.pending;
    if (!p) return;
    this.pending = null;
    const count = error ? (n ?? 0) : p.bytes.byteLength;
    this.#take(p.bytes.subarray(0, count));
    queueMicrotask(() => p.onDone(error ? errorWith(error) : null, count));
  }
  #take(bytes: Uint8Array): void {
    const bad = checkPattern(bytes, this.taken);
    if (bad >= 0) this.violations.push(`byte ${this.taken + bad} taken out of order`);
    this.taken += bytes.byteLength;
  }
  cancelWrite(): boolean {
    if (!this.canCancel || !this.pending) return false;
    this.pending = null; // Bun drops the rest; UnixSocket reports the cancel itself
    return true;
  }
  close(): void {
    this.closes++;
    // Deno rejects a pending conn.write when the socket closes.
    const p = this.pending;
    this.pending = null;
    if (p) queueMicrotask(() => p.onDone(errorWith("EINTR"), 0));
  }
  closeWrite(): void {
    this.closedWrite = true;
  }
  ref(): void {}
  unref(): void {}
}

type Action =
  | { kind: "write"; n: number }
  | { kind: "flush" }
  | { kind: "closeWriter" }
  | { kind: "stop" }
  | { kind: "atOnce"; on: boolean }
  | { kind: "complete" }
  | { kind: "fail"; code: string; fraction: number }
  | { kind: "gone" }
  | { kind: "push"; n: number }
  | { kind: "end" }
  | { kind: "endError" }
  | { kind: "read"; n: number }
  | { kind: "readMany" }
  | { kind: "tick" };

const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant("write"), n: fc.nat({ max: 300 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("flush") }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("closeWriter") }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("stop") }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("atOnce"), on: fc.boolean() }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant("complete") }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("fail"),
      code: fc.constantFrom("EPIPE", "ECONNRESET", "EIO"),
      fraction: fc.double({ min: 0, max: 1, noNaN: true }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("gone") }) },
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant("push"),
      // Mostly small; now and then big enough to pass READ_AHEAD and pause the socket.
      n: fc.oneof({ weight: 3, arbitrary: fc.nat({ max: 300 }) }, {
        weight: 2,
        arbitrary: fc.integer({ min: 600_000, max: 1_200_000 }),
      }),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("readMany") }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("end") }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("endError") }) },
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant("read"),
      n: fc.oneof(fc.integer({ min: 1, max: 400 }), fc.integer({ min: 100_000, max: 1_100_000 })),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("tick") }) },
) as fc.Arbitrary<Action>;

const run = fc.record({
  canCancel: fc.boolean(),
  actions: fc.array(action, { minLength: 5, maxLength: 60, size: "max" }),
});

/** Bytes follow one pattern, byte i being i & 0xff: the index of the first that does not, or -1. */
function checkPattern(bytes: Uint8Array, offset: number): number {
  for (let i = 0; i < bytes.byteLength; i++) if (bytes[i] !== ((offset + i) & 0xff)) return i;
  return -1;
}

function pattern(offset: number, n: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (offset + i) & 0xff);
}

const tick = () => new Promise<void>((r) => setTimeout(r, 0));

async function runModel({ canCancel, actions }: { canCancel: boolean; actions: Action[] }) {
  const wire = new FakeWire(canCancel);
  const socket = new UnixSocket("/tmp/model.sock").attach(wire);
  const conn = PipeConnection.wrap(socket, {
    side: "client",
    read: true,
    write: true,
    reader: readerSettings({ readSize: 256 * 1024 }, "model"),
    writer: writerSettings({ highWaterMark: 100, closeTimeout: 60_000 }, "model"),
  });
  const writer = conn.writer!;
  const queue = socket.readChannel(); // for available(): the bytes the socket holds
  let accepted = 0;
  let arrived = 0;
  let got = 0;
  const problems: string[] = [];
  let errors = 0;
  let ended = false;
  let reading: Promise<unknown> | null = null;
  const promises: Promise<unknown>[] = [];
  writer.addEventListener("error", () => errors++);
  const readOnce = (n: number) => {
    const buffer = new Uint8Array(n);
    const p = conn.read(buffer).then((k) => {
      if (k === null) return;
      const bad = checkPattern(buffer.subarray(0, k), got);
      if (bad >= 0) problems.push(`byte ${got + bad} read out of order`);
      got += k;
    }, (e) => assert.ok(e instanceof PipeError, `read rejected with ${e}`));
    reading = p.finally(() => (reading = null));
    promises.push(reading);
  };
  const check = (step: string) => {
    assert.ok(wire.taken <= accepted, `${step}: more taken than written`);
    assert.ok(got <= arrived, `${step}: more read than arrived`);
    assert.deepEqual(problems, [], step);
    assert.ok(errors <= 1, `${step}: ${errors} error events`);
    assert.ok(wire.closes <= 1, `${step}: the socket closed ${wire.closes} times`);
    // What the socket holds that the reader has not taken (the reader may hold more itself).
    const unread = queue.available!();
    if (wire.paused && wire.closes === 0) {
      assert.ok(unread >= READ_AHEAD / 2, `${step}: paused with only ${unread} bytes unread`);
    }
    assert.deepEqual(wire.violations, [], step);
  };
  for (const [i, a] of actions.entries()) {
    const step = `step ${i} (${JSON.stringify(a)})`;
    switch (a.kind) {
      case "write": {
        try {
          writer.write(pattern(accepted, a.n));
          accepted += a.n;
        } catch (e) {
          assert.ok(e instanceof PipeError, `${step}: write threw ${e}`);
        }
        break;
      }
      case "flush":
        promises.push(writer.flush().catch((e) => assert.ok(e instanceof PipeError)));
        break;
      case "closeWriter":
        promises.push(writer.close().catch((e) => assert.ok(e instanceof PipeError)));
        break;
      case "stop":
        promises.push(writer.stop().catch((e) => assert.ok(e instanceof PipeError)));
        break;
      case "atOnce":
        wire.atOnce = a.on;
        break;
      case "complete":
        wire.complete();
        break;
      case "fail":
        if (wire.pending) {
          wire.complete(a.code, Math.floor(a.fraction * wire.pending.bytes.byteLength));
        }
        break;
      case "gone":
        if (!ended) socket.gone(errorWith("ECONNRESET"));
        ended = true;
        break;
      case "push": {
        if (ended || wire.paused || wire.closes > 0) break; // a paused socket delivers nothing
        socket.push(pattern(arrived, a.n));
        arrived += a.n;
        break;
      }
      case "end":
        if (!ended) socket.end();
        ended = true;
        break;
      case "endError":
        if (!ended) socket.end(errorWith("ECONNRESET"));
        ended = true;
        break;
      case "read":
        if (!reading) readOnce(a.n);
        break;
      case "readMany":
        // A reader that catches up: reads in turn while bytes are there.
        if (reading && got < arrived) await settles(reading, BOUND_MS, "a read of bytes there");
        for (let k = 0; k < 8 && !reading && arrived > got; k++) {
          readOnce(512 * 1024);
          await settles(reading!, BOUND_MS, "a read of bytes that are there");
        }
        break;
      case "tick":
        await tick();
        break;
    }
    await Promise.resolve();
    check(step);
  }
  // The end: the socket takes everything, the peer ends, and close() settles.
  wire.atOnce = true;
  wire.complete();
  if (!ended) socket.end();
  await settles(conn.close().catch((e) => assert.ok(e instanceof PipeError)), BOUND_MS, "close()");
  await settles(Promise.all(promises), BOUND_MS, "the promises");
  await tick();
  check("the end");
  assert.equal(wire.closes, 1, "the socket is closed once at the end");
}

for (const { label, seed } of seeds(FIXED_SEED)) {
  test(`the POSIX channel keeps the connection's invariants (${label})`, async () => {
    await fc.assert(fc.asyncProperty(run, runModel), {
      seed,
      numRuns: RUNS,
      // Directed: the socket paused past READ_AHEAD, then a reader that catches up.
      examples: [[{
        canCancel: false,
        actions: [{ kind: "push", n: 1_100_000 }, { kind: "readMany" }, { kind: "push", n: 10 }],
      }]],
    });
  });
}
