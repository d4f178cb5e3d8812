/**
 * Fake completion sources for the Linux suites. They record every operation the writer or the
 * reader starts and complete it only when the test says so, so that ordering, coalescing,
 * errors, cancellation and release are tested deterministically. They also behave as badly as
 * the real thing may: a late callback for a write whose result `waitWrite` already took (the
 * pool's callback always comes), synchronous failures with any code, and operations that
 * complete at once (FILE_SKIP_COMPLETION_PORT_ON_SUCCESS), in full or short.
 */
import type { IoFailure, IoResult, ReadChannel, Started, WriteChannel } from "../core/channel.ts";
import { optionsObject, readerSettings, writerSettings } from "../core/options.ts";
import { PipeReader, type PipeReaderOptions } from "../core/reader.ts";
import { type PipeWriterOptions, writerOverChannel } from "../core/writer.ts";

export interface StartedWrite {
  /** A copy of the bytes handed to the fake WriteFile. */
  bytes: Uint8Array;
  /** The very view the writer handed over (must stay referenced until completion). */
  view: Uint8Array;
  onComplete: (r: IoResult) => void;
  /** Bytes the "kernel" reports written, once it has completed. */
  written?: number;
  /** It completed with an error. */
  failed?: boolean;
}

/** What the fakes saw that breaks the channel contract; a test asserts it stays empty. */
export type Violations = string[];

export class FakeChannel implements WriteChannel {
  readonly path = String.raw`\\.\pipe\fake`;
  started: StartedWrite[] = [];
  /** Writes in flight, oldest first. */
  pending: StartedWrite[] = [];
  /** How many writes the writer may keep in flight (the channel's `writesInFlight`). */
  writesInFlight = 1;
  /** Win32 code (never 0) for the next startWrite to fail with synchronously (then reset). */
  failNextStart: number | null = null;
  /**
   * The next startWrite completes at once (then reset): with this fraction of its bytes (1: all;
   * 0: none, as only a PIPE_NOWAIT pipe does; others round down to at least 1 byte).
   */
  atOnceNext: number | null = null;
  /** How many writes completed at once. */
  atOnce = 0;
  /** How many starts failed that way. */
  startFailures = 0;
  /** What cancelWrite returns. */
  cancelResult = 0;
  cancelCalls = 0;
  abortHandleCalls = 0;
  releaseCalls = 0;
  released = false;
  /** Writes whose result waitWrite took, whose pool callback has not come yet. */
  late: StartedWrite[] = [];
  /** Deliver the callback of a write that waitWrite took, later (as the real pool does). */
  lateCallbacks = false;
  violations: Violations = [];
  #releaseResolve: (() => void) | undefined;
  /**
   * Every byte the writer wrote, in order, as the fake pipe's reader gets it: the completed
   * writes' bytes, in the order they were started, up to the first one still in flight (as the
   * kernel queues writes in order).
   */
  received: number[] = [];
  #delivered = 0;
  /** Bytes of every write the kernel completed successfully, in whatever order. */
  get writtenTotal(): number {
    return this.started.reduce((n, w) => n + (w.failed ? 0 : w.written ?? 0), 0);
  }
  /**
   * Result for the next waitWrite: "complete" the write fully, "timeout", "fail" (the write
   * failed, 233), or "waitFails" (GetOverlappedResultEx itself failed, 6, with the write still
   * in flight).
   */
  waitBehaviour: "complete" | "timeout" | "fail" | "waitFails" = "complete";
  /**
   * As the kernel does: a successful CancelIoEx (`cancelResult` 0) completes every write in
   * flight with ERROR_OPERATION_ABORTED (995) on a later turn, and so does closing an owned
   * handle (`abortHandle`). Off by default, so that a test decides when each write completes.
   */
  kernelCancel = false;
  /** abortHandle() closes the handle (an owned one); false: the caller's handle, left open. */
  owned = true;
  /** The peer does not read: nothing completes but through cancellation. */
  stalled = false;

  /** The oldest write in flight. */
  get inFlight(): StartedWrite | null {
    return this.pending[0] ?? null;
  }

  startWrite(bytes: Uint8Array, onComplete: (r: IoResult) => void): Started {
    if (this.pending.length >= this.writesInFlight) {
      throw new Error(`fake: more than ${this.writesInFlight} writes in flight`);
    }
    if (this.released) {
      this.violations.push("startWrite after release");
      throw new Error("fake: write after release");
    }
    if (this.failNextStart !== null) {
      const error = this.failNextStart;
      this.failNextStart = null;
      this.startFailures++;
      return { error, syscall: "WriteFile" };
    }
    if (this.atOnceNext !== null) {
      const f = this.atOnceNext;
      const n = f === 0 ? 0 : Math.max(1, Math.floor(f * bytes.byteLength));
      this.atOnceNext = null;
      this.atOnce++;
      this.started.push({ bytes: bytes.slice(), view: bytes, onComplete, written: n });
      this.#deliver();
      return { error: 0, bytes: n };
    }
    const w: StartedWrite = { bytes: bytes.slice(), view: bytes, onComplete };
    this.started.push(w);
    this.pending.push(w);
    return undefined;
  }

  /** A write that completed at once outside startWrite (FakeSyncChannel's writeNow): `n` taken. */
  protected recordAtOnce(bytes: Uint8Array, n: number): void {
    this.started.push({ bytes: bytes.slice(), view: bytes, onComplete: () => {}, written: n });
    this.#deliver();
  }

  /**
   * Moves what completed, in start order, into `received`, up to the first write still in flight;
   * nothing after a write that failed (the stream is broken there).
   */
  #deliver(): void {
    for (; this.#delivered < this.started.length; this.#delivered++) {
      const w = this.started[this.#delivered];
      if (w.written === undefined || w.failed) return;
      for (let i = 0; i < w.written; i++) this.received.push(w.bytes[i]);
    }
  }

  /**
   * Completes the write in flight, as the pool callback would, with `bytes` transferred, after
   * letting pending reactions run (the pool callback always arrives on a later turn).
   */
  async complete(error = 0, bytes?: number): Promise<void> {
    await this.settle();
    this.completeNow(error, bytes);
  }

  /** Lets pending microtasks run. */
  async settle(): Promise<void> {
    await null;
  }

  /** complete(), without waiting for a queued start; the oldest write, or the newest. */
  completeNow(error = 0, bytes?: number, which: "oldest" | "newest" = "oldest"): void {
    const w = which === "oldest" ? this.pending.shift() : this.pending.pop();
    if (!w) throw new Error("fake: nothing in flight");
    const n = error === 0 ? (bytes ?? w.bytes.byteLength) : (bytes ?? 0);
    w.written = n;
    w.failed = error !== 0;
    this.#deliver();
    w.onComplete({ error, bytes: n });
    this.#maybeRelease();
  }

  /** Delivers the pool callbacks of writes that waitWrite already took. */
  deliverLate(): void {
    for (const w of this.late.splice(0)) w.onComplete({ error: 0, bytes: w.bytes.byteLength });
    this.#maybeRelease();
  }

  /** Completes writes until nothing is in flight (the writer keeps starting the next). */
  async drain(): Promise<void> {
    for (;;) {
      await this.settle();
      if (!this.inFlight) return;
      this.completeNow();
    }
  }

  cancelWrite(): number {
    this.cancelCalls++;
    if (!this.pending.length) return 1168;
    if (this.kernelCancel && this.cancelResult === 0) this.#abortAllLater();
    // ERROR_NOT_FOUND: they had completed, and their completions are on their way.
    if (this.kernelCancel && this.cancelResult === 1168) this.#completeAllLater();
    return this.cancelResult;
  }

  /** Every write in flight completes in full, on a later turn. */
  #completeAllLater(): void {
    setTimeout(() => {
      while (this.pending.length) this.completeNow();
    }, 0);
  }

  /** Every write in flight completes with ERROR_OPERATION_ABORTED, on a later turn. */
  #abortAllLater(): void {
    setTimeout(() => {
      while (this.pending.length) this.completeNow(995, 0);
    }, 0);
  }

  waitWrite(_timeoutMs: number): IoResult | undefined {
    const w = this.pending[0];
    if (!w || this.waitBehaviour === "timeout") return undefined;
    if (this.waitBehaviour === "waitFails") {
      return { error: 6, bytes: 0, syscall: "GetOverlappedResultEx", pending: true };
    }
    if (this.stalled) return undefined;
    this.pending.shift();
    if (this.lateCallbacks) this.late.push(w);
    w.written = this.waitBehaviour === "fail" ? 0 : w.bytes.byteLength;
    w.failed = this.waitBehaviour === "fail";
    this.#deliver();
    if (this.waitBehaviour === "fail") return { error: 233, bytes: 0 };
    return { error: 0, bytes: w.bytes.byteLength };
  }

  abortHandle(): boolean {
    this.abortHandleCalls++;
    if (!this.owned) return false;
    if (this.kernelCancel) this.#abortAllLater();
    return true;
  }

  /** Completions still owed by the fake "kernel". */
  get owed(): number {
    return this.pending.length + this.late.length;
  }

  release(): Promise<void> {
    this.releaseCalls++;
    return new Promise((resolve) => {
      this.#releaseResolve = () => {
        if (this.owed > 0) this.violations.push("released with a completion owed");
        this.released = true;
        resolve();
      };
      this.#maybeRelease();
    });
  }

  #maybeRelease() {
    if (this.owed === 0 && this.#releaseResolve) {
      const r = this.#releaseResolve;
      this.#releaseResolve = undefined;
      r();
    }
  }
}

/**
 * A channel that can also write synchronously, as Bun's sockets can (`writeNow`): the "socket"
 * takes what `takeNext` says (all by default) and copies it out before it returns.
 */
export class FakeSyncChannel extends FakeChannel {
  /** Bytes the next writeNow takes (then reset: all). */
  takeNext: number | null = null;
  /** Win32 code (never 0) for the next writeNow to fail with (then reset). */
  failNextNow: number | null = null;
  /** Every view writeNow was given, as given. */
  nowViews: Uint8Array[] = [];

  writeNow(bytes: Uint8Array): number | IoFailure {
    if (this.pending.length > 0) this.violations.push("writeNow while a write is in flight");
    if (this.failNextNow !== null) {
      const error = this.failNextNow;
      this.failNextNow = null;
      return { error, syscall: "write" };
    }
    const n = Math.min(this.takeNext ?? bytes.byteLength, bytes.byteLength);
    this.takeNext = null;
    this.nowViews.push(bytes);
    this.recordAtOnce(bytes, n);
    return n;
  }
}

export function fakeWriter(
  options: PipeWriterOptions & { maxBlock?: number; writesInFlight?: number; sync?: boolean } = {},
) {
  const { maxBlock, writesInFlight, sync, ...rest } = options;
  const channel = sync ? new FakeSyncChannel() : new FakeChannel();
  channel.writesInFlight = writesInFlight ?? 1;
  const writer = writerOverChannel(channel, writerSettings(rest, "fakeWriter()"), maxBlock);
  return { channel, writer };
}

/** A read the reader started: where the fake "kernel" writes, and whom it tells. */
interface StartedRead {
  buffer: Uint8Array;
  onComplete: (r: IoResult) => void;
}

/**
 * A fake pipe for the reader: the test writes the peer's bytes into `pipe`, then completes the
 * read in flight with some of them, an error, or the end.
 */
export class FakeReadChannel implements ReadChannel {
  readonly path = String.raw`\\.\pipe\fake-read`;
  /** Bytes the peer wrote that no read has taken yet. */
  pipe: number[] = [];
  /** Every byte the peer wrote. */
  written: number[] = [];
  inFlight: StartedRead | null = null;
  /** Win32 code (never 0) for the next startRead to fail with synchronously (then reset). */
  failNextStart: number | null = null;
  startFailures = 0;
  startFailureCodes: number[] = [];
  /** Reads complete at once while the pipe holds bytes (FILE_SKIP_COMPLETION_PORT_ON_SUCCESS). */
  atOnce = false;
  /** How many reads completed at once. */
  readsAtOnce = 0;
  cancelResult = 0;
  cancelCalls = 0;
  abortHandleCalls = 0;
  reads = 0;
  released = false;
  violations: Violations = [];
  #releaseResolve: (() => void) | undefined;

  /** The peer writes. */
  write(bytes: ArrayLike<number>): void {
    for (let i = 0; i < bytes.length; i++) {
      this.pipe.push(bytes[i]);
      this.written.push(bytes[i]);
    }
  }

  startRead(buffer: Uint8Array, onComplete: (r: IoResult) => void): Started {
    if (this.inFlight) throw new Error("fake: two reads in flight");
    if (this.released) {
      this.violations.push("startRead after release");
      throw new Error("fake: read after release");
    }
    if (this.failNextStart !== null) {
      const error = this.failNextStart;
      this.failNextStart = null;
      this.startFailures++;
      this.startFailureCodes.push(error);
      return { error, syscall: "ReadFile" };
    }
    this.reads++;
    if (this.atOnce && this.pipe.length > 0) {
      const n = Math.min(this.pipe.length, buffer.byteLength);
      buffer.set(this.pipe.splice(0, n));
      this.readsAtOnce++;
      return { error: 0, bytes: n };
    }
    this.inFlight = { buffer, onComplete };
    return undefined;
  }

  /** Completes the read in flight with up to `max` bytes from the pipe (all that fit by default). */
  completeRead(max = Infinity, error = 0): number {
    const r = this.inFlight;
    if (!r) throw new Error("fake: no read in flight");
    this.inFlight = null;
    const n = Math.min(max, this.pipe.length, r.buffer.byteLength);
    r.buffer.set(this.pipe.splice(0, n));
    r.onComplete({ error, bytes: n });
    this.#maybeRelease();
    return n;
  }

  /** Completes the read in flight with a failure (109: the peer closed). */
  failRead(error: number): void {
    const r = this.inFlight;
    if (!r) throw new Error("fake: no read in flight");
    this.inFlight = null;
    r.onComplete({ error, bytes: 0 });
    this.#maybeRelease();
  }

  cancelRead(): number {
    this.cancelCalls++;
    return this.inFlight ? this.cancelResult : 1168;
  }

  available(): number {
    return this.released ? 0 : this.pipe.length;
  }

  abortHandle(): boolean {
    this.abortHandleCalls++;
    return true;
  }

  release(): Promise<void> {
    return new Promise((resolve) => {
      this.#releaseResolve = () => {
        if (this.inFlight) this.violations.push("released with a read owed");
        this.released = true;
        resolve();
      };
      this.#maybeRelease();
    });
  }

  #maybeRelease() {
    if (!this.inFlight && this.#releaseResolve) {
      const r = this.#releaseResolve;
      this.#releaseResolve = undefined;
      r();
    }
  }
}

export function fakeReader(options: PipeReaderOptions = {}) {
  const channel = new FakeReadChannel();
  const reader = PipeReader.overChannel(
    channel,
    readerSettings(optionsObject(options, "fakeReader()"), "fakeReader()"),
  );
  return { channel, reader };
}

/** Lets pending microtasks and promise reactions run. */
export const tick = () => new Promise<void>((r) => setTimeout(r, 0));

/** Records the writer's events in order. */
export function recordEvents(target: EventTarget) {
  const events: string[] = [];
  for (const type of ["byteswritten", "drain", "error", "close"]) {
    target.addEventListener(type, () => events.push(type));
  }
  return events;
}

/** Deterministic bytes: a xorshift stream. */
export function prng(seed: number) {
  let x = seed >>> 0 || 1;
  return {
    next(): number {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      return x;
    },
    bytes(n: number): Uint8Array {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) out[i] = this.next() & 0xff;
      return out;
    },
  };
}
