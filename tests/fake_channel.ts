/**
 * A fake completion source for the Linux suites: records every write the writer starts and
 * completes it only when the test says so, so that ordering, coalescing, errors and stop() are
 * tested deterministically.
 */
import type { WriteChannel, WriteResult } from "../core/channel.ts";
import { type PipeWriterOptions, writerOverChannel } from "../core/writer.ts";

export interface StartedWrite {
  /** A copy of the bytes handed to the fake WriteFile. */
  bytes: Uint8Array;
  /** The very view the writer handed over (must stay referenced until completion). */
  view: Uint8Array;
  onComplete: (r: WriteResult) => void;
}

export class FakeChannel implements WriteChannel {
  readonly path = String.raw`\\.\pipe\fake`;
  started: StartedWrite[] = [];
  inFlight: StartedWrite | null = null;
  /** Win32 code for the next startWrite to fail with synchronously (then reset). */
  failNextStart = 0;
  /** What cancelWrite returns. */
  cancelResult = 0;
  cancelCalls = 0;
  abortHandleCalls = 0;
  releaseCalls = 0;
  released = false;
  #releaseResolve: (() => void) | undefined;
  /** Every byte the writer wrote, in order, as the fake "pipe" received it. */
  received: number[] = [];
  /** Result for the next waitWrite: undefined = timeout, "complete" = complete the write fully. */
  waitBehaviour: "complete" | "timeout" = "complete";

  startWrite(bytes: Uint8Array, onComplete: (r: WriteResult) => void): number {
    if (this.inFlight) throw new Error("fake: two writes in flight");
    if (this.released) throw new Error("fake: write after release");
    if (this.failNextStart) {
      const c = this.failNextStart;
      this.failNextStart = 0;
      return c;
    }
    const w = { bytes: bytes.slice(), view: bytes, onComplete };
    this.started.push(w);
    this.inFlight = w;
    return 0;
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

  /** complete(), without waiting for a queued start. */
  completeNow(error = 0, bytes?: number): void {
    const w = this.inFlight;
    if (!w) throw new Error("fake: nothing in flight");
    this.inFlight = null;
    const n = error === 0 ? (bytes ?? w.bytes.byteLength) : (bytes ?? 0);
    for (let i = 0; i < n; i++) this.received.push(w.bytes[i]);
    w.onComplete({ error, bytes: n });
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
    return this.inFlight ? this.cancelResult : 1168;
  }

  waitWrite(_timeoutMs: number): WriteResult | undefined {
    const w = this.inFlight;
    if (!w || this.waitBehaviour === "timeout") return undefined;
    this.inFlight = null;
    for (const b of w.bytes) this.received.push(b);
    return { error: 0, bytes: w.bytes.byteLength };
  }

  abortHandle(): boolean {
    this.abortHandleCalls++;
    return true;
  }

  release(): Promise<void> {
    this.releaseCalls++;
    return new Promise((resolve) => {
      this.#releaseResolve = () => {
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

export function fakeWriter(options: PipeWriterOptions & { maxBlock?: number } = {}) {
  const channel = new FakeChannel();
  const writer = writerOverChannel(channel, options);
  return { channel, writer };
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
