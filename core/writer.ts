/**
 * `PipeWriter`: Qt's `QWindowsPipeWriter` for Deno and Bun. A queue of writer-owned blocks is
 * drained by overlapped `WriteFile`s, one at a time (two where the channel allows it); a write
 * that completes at once is handled inline, the others' completions arrive from the thread pool,
 * and all of it is handled here, on the JS thread.
 *
 * States: `open` → `closing` (flushing, then released) → `closed`; `open`/`closing` → `stopping`
 * (cancelled, waiting for the completion) → `closed`; any → `failed` (first error kept, released).
 *
 * @module
 */
import { isWindows } from "../ffi/runtime.ts";
import { openUnix, windowsOnly } from "../posix/open.ts";
import {
  type IoFailure,
  type IoResult,
  OverlappedPipe,
  type Started,
  startFailed,
  type WriteChannel,
} from "../windows/completion/mod.ts";
import { type OpenOptions, openPipeHandle } from "../windows/open.ts";
import { type Chunk, chunkBytes } from "./chunk.ts";
import { asPipeError, failureCode, PipeError, Win32 } from "./errors.ts";
import { resolveEndpoint } from "./names.ts";
import {
  checkHandle,
  handleSettings,
  openSettings,
  optionsObject,
  signalOption,
  timeoutValue,
  type WriterSettings,
  writerSettings,
} from "./options.ts";
import { MAX_BLOCK, WriteQueue } from "./queue.ts";
import { CANCEL_WAIT_MS, longTimeout, settlesWithin, type Timer } from "./timeouts.ts";
import { later, overSlice } from "./turns.ts";
import { pipeWritable } from "./writable.ts";

/** Options for a {@link PipeWriter}. */
export interface PipeWriterOptions {
  /**
   * `write()` returns false, and `writable` applies backpressure, once `bytesToWrite` reaches
   * this many bytes; `drain` follows when it has fallen to half. Default 1 MiB (chosen by
   * measurement; see docs/design.md), widened to two of the chunks being written, up to 2 MiB,
   * where two writes can be in flight (a byte pipe whose handle winpipe owns): a second large
   * write then waits in the pipe behind the first, so a reader that reads in small pieces never
   * finds the pipe empty. A mark given here is used as given.
   */
  highWaterMark?: number;
  /**
   * Message pipes: each `write()` is one message, written by one `WriteFile`, never merged with
   * another or split; an empty `write()` is an empty message. Default false (bytes are
   * coalesced, and an empty `write()` writes nothing).
   */
  messageMode?: boolean;
  /**
   * The longest `close()` (and `await using`) waits for what is queued to be written, in
   * milliseconds; `Infinity` waits as long as it takes. Past it the writes are stopped and
   * `close()` rejects with `ERROR_TIMEOUT`. Default 30 000.
   */
  closeTimeout?: number;
}

/** Options for {@link PipeWriter.close}. */
export interface CloseOptions {
  /** This call's bound on the flush, in milliseconds (default: the writer's `closeTimeout`). */
  timeout?: number;
}

/** Options for {@link PipeWriter.open}. */
export interface PipeWriterOpenOptions extends OpenOptions, PipeWriterOptions {}

/** Options for {@link PipeWriter.fromHandle}. */
export interface FromHandleOptions extends PipeWriterOptions {
  /** Close the handle when the writer is released. Default false: the caller keeps ownership. */
  owned?: boolean;
  /** A name for error messages. */
  path?: string;
}

/** Options for {@link PipeWriter.flush}. */
export interface FlushOptions {
  /** Stop waiting (the writes go on) when this aborts. */
  signal?: AbortSignal;
  /**
   * Stop waiting after this many milliseconds (the writes go on). `Infinity`, or leaving it out,
   * waits as long as it takes; delays beyond `setTimeout`'s 2^31 − 1 ms are honoured too.
   */
  timeout?: number;
}

/**
 * The event a {@link PipeWriter} dispatches when it fails: `error` holds the {@link PipeError}.
 *
 * @example
 * ```ts
 * import { type PipeErrorEvent, PipeWriter } from "@winpipe/winpipe";
 * const writer = await PipeWriter.open(String.raw`\\.\pipe\my-app`);
 * writer.addEventListener("error", (e) => console.error((e as PipeErrorEvent).error.code));
 * ```
 */
export class PipeErrorEvent extends Event {
  /** The failure. */
  readonly error: PipeError;
  /** An "error" event carrying `error`. */
  constructor(error: PipeError) {
    super("error");
    this.error = error;
  }
}

const CONSTRUCT = Symbol("PipeWriter.construct");
/** Set by PipeWriter's static block: {@link writerDrained}'s way in. */
let drainedOf: (w: PipeWriter) => Promise<void>;
/** The least a second write in flight carries (see #startNext), or one whole block if less. */
const SECOND_WRITE_MIN = 64 * 1024;
/** The least a chunk written from the caller's memory carries (#writeNow); smaller ones coalesce. */
const DIRECT_MIN = 64 * 1024;

/**
 * The writer's one state; everything else ("may it write?", "may it start a write?", "is it
 * silent?") is read off it by the getters below, and it changes only in {@link PipeWriter#to}.
 *
 * ```text
 * open ──close()──▶ closing ──flushed, released──▶ closed
 *  │                  │
 *  ├──────────────────┴─ a failure, or close()'s bound ──▶ failed ──stop()──▶ stopped
 *  └──────────────────── stop() (from open, closing or failed) ──────────────▶ stopped
 * ```
 *
 * - `failed`: the first error is kept, the queue dropped (`bytesToWrite` keeps the count not
 *   written), writes in flight cancelled, and everything released; `error` and `close` follow.
 * - `stopped`: the queue dropped, writes in flight cancelled, everything released; no events.
 */
type State = "open" | "closing" | "closed" | "failed" | "stopped";

const NEXT: Record<State, readonly State[]> = {
  open: ["closing", "failed", "stopped"],
  closing: ["closed", "failed", "stopped"],
  failed: ["stopped"],
  stopped: [],
  closed: [],
};

/**
 * The write in flight: its block, how much of it earlier (short) completions took, and when it was
 * issued (a count of the writer's WriteFile calls).
 */
interface InFlight {
  block: Uint8Array;
  offset: number;
  issued: number;
}

interface Waiter {
  resolve(): void;
  reject(e: unknown): void;
}

/**
 * An asynchronous writer to a Windows named pipe, with a queue and backpressure.
 *
 * One overlapped `WriteFile` is in flight at a time (two on a handle it opened, in byte mode, once a
 * whole block is queued); everything written meanwhile is copied into writer-owned memory and
 * coalesced into the next write. A write that completes at once is handled inline; other
 * completions arrive from the Win32 thread pool (`CreateThreadpoolIo`), never by APC. Events:
 * `byteswritten` (a `CustomEvent<number>`), `drain`, `error` (a {@link PipeErrorEvent}) and
 * `close`.
 *
 * How it ends, and how long each way waits:
 * - `close()` flushes, then releases: at most `closeTimeout` (default 30 s) for the flush, after
 *   which the writes are stopped and it rejects with `ERROR_TIMEOUT`; plus at most 2 s for the
 *   cancelled writes' completions.
 * - `stop()` drops the queue and cancels the writes in flight: at most 2 s.
 * - A failure (the peer gone, say) cancels the writes still in flight at once, and keeps the
 *   error in `error` and the count not written in `bytesToWrite`.
 *
 * @example Write, then close (which flushes)
 * ```ts
 * import { PipeWriter } from "@winpipe/winpipe";
 *
 * await using w = await PipeWriter.open(String.raw`\\.\pipe\my-app`, { timeout: 5_000 });
 * if (!w.write("hello\n")) await w.drained();
 * await w.flush();
 * ```
 *
 * @example As a WritableStream
 * ```ts
 * import { PipeWriter } from "@winpipe/winpipe";
 *
 * import { openAsBlob } from "node:fs";
 * const w = await PipeWriter.open(String.raw`\\.\pipe\my-app`);
 * const file = await openAsBlob("big.bin");
 * await file.stream().pipeTo(w.writable); // closes the writer at the end
 * ```
 */
export class PipeWriter extends EventTarget {
  readonly #channel: WriteChannel;
  readonly #queue: WriteQueue;
  readonly #highWaterMark: number;
  readonly #closeTimeout: number;
  /** How many writes may be in flight: 1, or 2 where the channel allows it in byte mode. */
  readonly #maxInFlight: number;
  readonly #secondWriteMin: number;
  /** The mark in force: the caller's, or the default one widened for large chunks (#widen). */
  #mark: number;
  /** Room for two largest writes, where the default mark widens for large chunks; else 0. */
  readonly #wideMark: number;
  #state: State = "open";
  /** The first failure (kept through `stop()`). */
  #error: PipeError | null = null;
  /** The first CancelIoEx failure, reported by `stop()`. */
  #cancelFailed = 0;
  /** Were writes in flight cancelled (so that the release waits for their completions)? */
  #cancelled = false;
  /** The writes in flight, oldest first. */
  #inFlight: InFlight[] = [];
  /** WriteFile calls made so far; the latest one's `issued`. */
  #issued = 0;
  #bytesToWrite = 0;
  /** Message pipes: empty messages accepted and not yet written (they add no bytes). */
  #emptyMessages = 0;
  readonly #messageMode: boolean;
  #needDrain = false;
  #flushWaiters: Waiter[] = [];
  #drainWaiters: Waiter[] = [];
  /**
   * Bytes written at once whose events are due on the microtask already queued, or null when
   * none is. While it is queued the next write waits for it (see #issue).
   */
  #atOnce: number | null = null;
  /**
   * The next write waits for a later turn of the event loop: writes that complete at once had
   * held it for a whole slice (core/turns.ts). Events are not deferred, only the next write.
   */
  #yielding = false;
  #closeResult: Promise<void> | undefined;
  /** When the flush of `close()` gives up (performance.now() time), and its timer. */
  #closeBy = Infinity;
  #closeTimer: Timer | undefined;
  /** close() is waiting for the flush (the part that its timeout bounds). */
  #flushing = false;
  #stopResult: Promise<void> | undefined;
  /** stop() came after a failure: bytesToWrite still counts what is not written. */
  #countKept = false;
  #released: Promise<void> | undefined;
  #emitting = false;
  #pendingEvents: Event[] = [];
  /**
   * A `byteswritten` listener was ever added: until then the event is not made (an event per
   * write was 3% of a round trip's JS time, profiled, and nobody could have heard it).
   */
  #progressHeard = false;
  #writable: WritableStream<Uint8Array> | undefined;
  #onEnd: ((e: unknown) => void) | undefined;

  /**
   * Not public: use {@link PipeWriter.open} or {@link PipeWriter.fromHandle}.
   * @ignore
   */
  constructor(token: unknown, channel: WriteChannel, settings: WriterSettings, maxBlock?: number) {
    super();
    if (token !== CONSTRUCT) {
      throw new TypeError("use PipeWriter.open() or PipeWriter.fromHandle() to make a PipeWriter");
    }
    this.#highWaterMark = settings.highWaterMark;
    this.#closeTimeout = settings.closeTimeout;
    this.#queue = new WriteQueue(maxBlock, settings.messageMode);
    this.#messageMode = settings.messageMode;
    this.#channel = channel;
    this.#maxInFlight = settings.messageMode ? 1 : Math.max(1, channel.writesInFlight ?? 1);
    this.#secondWriteMin = Math.min(SECOND_WRITE_MIN, maxBlock ?? MAX_BLOCK);
    this.#mark = settings.highWaterMark;
    this.#wideMark = settings.defaultMark && this.#maxInFlight > 1
      ? Math.max(settings.highWaterMark, 2 * (maxBlock ?? MAX_BLOCK))
      : 0;
  }

  /**
   * Opens the client end of a named pipe for writing (`CreateFileW` with `GENERIC_WRITE`,
   * `FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION`, so the server cannot
   * impersonate you). `ERROR_PIPE_BUSY` is retried until `timeout`; a missing pipe fails at once
   * unless `wait: true`. Remote names are refused unless `allowRemote: true`.
   *
   * @throws {TypeError} for a malformed or remote name, or bad options.
   * @throws {PipeError} `ERROR_FILE_NOT_FOUND`, `ERROR_PIPE_BUSY` after the timeout,
   *   `ERROR_ACCESS_DENIED`, or `ERROR_NOT_SUPPORTED` off Windows.
   *
   * @example
   * ```ts
   * import { PipeWriter } from "@winpipe/winpipe";
   * const w = await PipeWriter.open(String.raw`\\.\pipe\my-app`, { timeout: 2_000, wait: true });
   * w.write(new TextEncoder().encode("ping"));
   * await w.close();
   * ```
   */
  static async open(name: string, options: PipeWriterOpenOptions = {}): Promise<PipeWriter> {
    const where = "PipeWriter.open()";
    const o = optionsObject(options, where);
    const open = openSettings(o, where);
    const settings = writerSettings(o, where);
    if (!isWindows()) {
      const socket = await openUnix(name, o, open, where);
      return new PipeWriter(CONSTRUCT, socket.writeChannel(), settings);
    }
    name = resolveEndpoint(name, open, where).path;
    const handle = await openPipeHandle(name, "write", open);
    const pipe = OverlappedPipe.bind(handle, { owned: true, path: name });
    return new PipeWriter(CONSTRUCT, pipe.writeChannel(), settings);
  }

  /**
   * Wraps an existing pipe handle opened with `FILE_FLAG_OVERLAPPED` (e.g. inherited). The handle
   * is bound to the thread pool (`CreateThreadpoolIo`). With `owned: true` it is closed on
   * release, also if this call fails; otherwise the caller keeps it.
   *
   * @throws {TypeError} when `handle` is not a pipe handle value.
   * @throws {PipeError} when the handle is not a pipe, or the pool binding fails.
   *
   * @example
   * ```ts
   * import process from "node:process";
   * import { PipeWriter } from "@winpipe/winpipe";
   * const handle = BigInt(process.env.PIPE_HANDLE!);
   * const w = PipeWriter.fromHandle(handle, { owned: true });
   * ```
   */
  static fromHandle(handle: bigint, options: FromHandleOptions = {}): PipeWriter {
    const where = "PipeWriter.fromHandle()";
    windowsOnly(where);
    checkHandle(handle, where);
    const o = optionsObject(options, where);
    const settings = writerSettings(o, where);
    const { owned, path } = handleSettings(o, where);
    const pipe = OverlappedPipe.bind(handle, { owned, path });
    return new PipeWriter(CONSTRUCT, pipe.writeChannel(), settings);
  }

  /**
   * Bytes queued or in flight, as `QWindowsPipeWriter::bytesToWrite`. After a failure (or a
   * `close()` that gave up) it keeps the count that was never written; after `stop()` of a
   * writer that had not failed it is 0.
   */
  get bytesToWrite(): number {
    return this.#bytesToWrite;
  }

  /** The high-water mark in bytes. */
  get highWaterMark(): number {
    return this.#highWaterMark;
  }

  /** The first failure, or null. */
  get error(): PipeError | null {
    return this.#error;
  }

  /**
   * `EventTarget.addEventListener`; a `byteswritten` listener also turns that event on (it is
   * not made while nobody listens).
   *
   * @example
   * ```ts
   * import { PipeWriter } from "@winpipe/winpipe";
   * const w = await PipeWriter.open(String.raw`\\.\pipe\my-app`);
   * w.addEventListener("byteswritten", (e) => console.log((e as CustomEvent<number>).detail));
   * ```
   */
  override addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void {
    if (type === "byteswritten") this.#progressHeard = true;
    super.addEventListener(type, listener, options);
  }

  /** The pipe's name, when it was opened by name. */
  get path(): string | undefined {
    return this.#channel.path;
  }

  /**
   * Queues a copy of `chunk` (a `Uint8Array`, another `ArrayBufferView`, an `ArrayBuffer`, or a
   * string as UTF-8) and starts writing if nothing is in flight. Returns false once
   * `bytesToWrite >= highWaterMark` (with the default mark, room for two chunks larger than half
   * of it: see {@link PipeWriterOptions.highWaterMark}): wait for {@link PipeWriter.drained}
   * (or the `drain` event: when it has fallen to half the mark) before writing more.
   *
   * @throws {TypeError} for anything that is not bytes, or a detached buffer.
   * @throws {PipeError} after `close()`, `stop()`, or a failure (then the failure itself).
   *
   * @example
   * ```ts
   * import { PipeWriter } from "@winpipe/winpipe";
   * const w = await PipeWriter.open(String.raw`\\.\pipe\my-app`);
   * for (const line of ["a\n", "b\n"]) {
   *   if (!w.write(line)) await w.drained();
   * }
   * ```
   */
  write(chunk: Chunk): boolean {
    const bytes = chunkBytes(chunk);
    if (!this.#accepting) throw this.#notWritable("write");
    // What a large chunk's direct write did not take (#writeNow), or the whole chunk.
    const rest = bytes.byteLength >= DIRECT_MIN ? this.#writeNow(bytes) : bytes;
    // On a message pipe an empty write is an empty message (a delimiter, a keep-alive): a
    // WriteFile of 0 bytes. On a byte pipe it writes nothing.
    if (rest && (rest.byteLength > 0 || this.#messageMode)) {
      this.#queue.push(rest);
      this.#bytesToWrite += rest.byteLength;
      if (rest.byteLength === 0) this.#emptyMessages++;
      this.#startNext();
    }
    if (this.#wideMark) this.#widen(bytes.byteLength);
    const below = this.#bytesToWrite < this.#mark;
    if (!below) this.#needDrain = true;
    return below;
  }

  /**
   * Waits for room after `write()` returned false: resolves when `drain` fires (`bytesToWrite`
   * has fallen to half the mark in force), and at once when the writer is below its mark
   * already. Rejects with the writer's {@link PipeError} once it fails (the peer gone, say), is
   * stopped or is closed, so a loop that waits for room never outlives the writer; a `drain`
   * listener would wait for ever then. Against a peer that stops reading it waits as long as the
   * peer does: `stop()`, `close({ timeout })` or {@link PipeWriter.addAbortSignal} end it.
   *
   * @example
   * ```ts
   * import { PipeWriter } from "@winpipe/winpipe";
   * await using w = await PipeWriter.open(String.raw`\\.\pipe\my-app`);
   * for (const line of ["a\n", "b\n"]) {
   *   if (!w.write(line)) await w.drained(); // rejects if the peer goes
   * }
   * ```
   */
  drained(): Promise<void> {
    if (this.#issuing && !this.#needDrain) return Promise.resolve();
    return this.#drained();
  }

  /**
   * Resolves when every queued byte has been written to the pipe (`bytesToWrite === 0`). Rejects
   * with the writer's {@link PipeError} if it fails or was stopped, and with the signal's reason
   * or a `TimeoutError` `DOMException` if told to stop waiting (the writes go on). `timeout` is in
   * milliseconds; `Infinity` (the default) waits as long as it takes.
   *
   * @example
   * ```ts
   * import { PipeWriter } from "@winpipe/winpipe";
   * const w = await PipeWriter.open(String.raw`\\.\pipe\my-app`);
   * w.write("report\n");
   * await w.flush({ timeout: 1_000 });
   * ```
   */
  flush(options: FlushOptions = {}): Promise<void> {
    let signal: AbortSignal | undefined;
    let timeout: number;
    try {
      const o = optionsObject(options, "flush()");
      signal = signalOption(o, "flush()");
      timeout = o.timeout === undefined ? Infinity : timeoutValue(o.timeout, "timeout", "flush()");
    } catch (e) {
      return Promise.reject(e); // bad options: a rejection, as every failure of a promise here
    }
    if (this.#error) return Promise.reject(this.#error);
    if (this.#state === "stopped") return Promise.reject(this.#notWritable("flush"));
    if (this.#written) return Promise.resolve();
    return this.#wait(this.#flushWaiters, signal, timeout);
  }

  /**
   * Blocks the JS thread until every queued byte is written or `timeoutMs` passes, like
   * `QWindowsPipeWriter::waitForWrite`. For exit handlers and scripts; prefer `flush()`.
   * Returns true when everything was written, false on timeout.
   *
   * @throws {PipeError} if the writer fails meanwhile (the wait's own failure included: then the
   *   writes in flight are cancelled), or was stopped or closed with bytes queued.
   * @throws {TypeError} for a negative or non-numeric timeout.
   *
   * @example
   * ```ts
   * import { PipeWriter } from "@winpipe/winpipe";
   * const w = await PipeWriter.open(String.raw`\\.\pipe\my-app`);
   * w.write("last words\n");
   * if (!w.flushSync(500)) console.error("pipe reader is too slow");
   * ```
   */
  flushSync(timeoutMs: number): boolean {
    timeoutValue(timeoutMs, "timeoutMs", "flushSync()");
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      if (this.#error) throw this.#error;
      // Also after a handler stopped the writer during this call: its bytes were dropped, not
      // written, so this must not report success.
      if (this.#state === "stopped") throw this.#notWritable("flushSync");
      if (this.#written) return true;
      this.#startNext(true);
      const op = this.#inFlight[0]; // the channel waits for its oldest write
      if (!op) continue; // completed at once, or a synchronous failure: seen above
      const left = Math.max(0, deadline - performance.now());
      const result = this.#channel.waitWrite(left);
      if (!result) return false;
      if (result.pending) {
        // The wait failed, not the write, which stays in flight (and is cancelled by #fail).
        this.#fail({
          error: result.error,
          syscall: result.syscall ?? "GetOverlappedResultEx",
          detail: result.detail,
        });
        continue;
      }
      this.#completed(op, result);
    }
  }

  /**
   * Flushes, then releases the handle and everything else; idempotent (every call returns the
   * same promise, and the earliest bound holds: a later call may shorten the wait). Also
   * `await using`.
   *
   * - Waits for the flush at most `timeout` ms (default: the writer's `closeTimeout`, 30 s
   *   unless set). Past it, the writes are stopped (`CancelIoEx`), and it rejects with a
   *   {@link PipeError} `ERROR_TIMEOUT` that is also the writer's `error`; `bytesToWrite` keeps
   *   the count not written.
   * - Rejects with the writer's {@link PipeError} if it failed (the peer gone, say), once
   *   everything is released; with the `stop()` error if it was stopped meanwhile.
   * - Waits at most 2 s more for cancelled writes to complete (see `stop()`).
   *
   * @example
   * ```ts
   * import { PipeWriter } from "@winpipe/winpipe";
   * const w = await PipeWriter.open(String.raw`\\.\pipe\my-app`);
   * w.write("bye");
   * await w.close({ timeout: 5_000 });
   * ```
   */
  close(options: CloseOptions = {}): Promise<void> {
    let timeout: number;
    try {
      const o = optionsObject(options, "close()");
      timeout = o.timeout === undefined
        ? this.#closeTimeout
        : timeoutValue(o.timeout, "timeout", "close()");
    } catch (e) {
      return Promise.reject(e); // bad options close nothing
    }
    if (this.#closeResult) {
      this.#closeWithin(timeout);
      return this.#closeResult;
    }
    switch (this.#state) {
      case "stopped":
        return (this.#closeResult = this.#stopResult!);
      case "failed":
        return (this.#closeResult = this.#afterFailure());
      default:
        this.#to("closing");
        return (this.#closeResult = this.#closeFlow(timeout));
    }
  }

  async #closeFlow(timeout: number): Promise<void> {
    if (!this.#written) {
      this.#flushing = true;
      this.#closeWithin(timeout);
      try {
        await this.#wait(this.#flushWaiters, undefined, Infinity);
      } catch (e) {
        if (this.#state === "stopped") {
          await this.#stopResult!.catch(() => {});
          throw e;
        }
        return this.#afterFailure();
      } finally {
        this.#flushing = false;
        this.#closeTimer?.clear();
        this.#closeTimer = undefined;
      }
    }
    await this.#releaseWithin();
    if (this.#state !== "closing") return; // stopped meanwhile, with everything written
    this.#to("closed");
    this.#emit(new Event("close"));
  }

  /**
   * Bounds the flush of a `close()` under way to `timeout` ms from now, unless an earlier bound
   * holds already (a later `close()` may shorten the wait, never lengthen it). Past it, with the
   * peer not reading, the writes are stopped and the writer fails with `ERROR_TIMEOUT`.
   */
  #closeWithin(timeout: number): void {
    const by = performance.now() + timeout;
    // Only a flush under way has a bound: a later close() during the release arms nothing (a
    // timer armed then would hold the process for closeTimeout after everything had closed).
    if (
      this.#state !== "closing" || !this.#flushing || timeout === Infinity || by >= this.#closeBy
    ) {
      return;
    }
    this.#closeBy = by;
    this.#closeTimer?.clear();
    this.#closeTimer = longTimeout(() => {
      if (this.#state !== "closing") return;
      this.#fail({
        error: Win32.ERROR_TIMEOUT,
        syscall: "close",
        detail: `close() gave up after ${timeout} ms with ${this.#bytesToWrite} bytes not `
          + "written (is the other end reading?); the writes in flight were cancelled",
      });
    }, timeout);
  }

  /** After a failure: everything released (waiting at most 2 s), then the failure. */
  async #afterFailure(): Promise<never> {
    await settlesWithin(this.#release(), CANCEL_WAIT_MS);
    throw this.#error;
  }

  /**
   * Cancels the writes in flight (`CancelIoEx`), drops the queue, and releases everything once the
   * cancelled writes' completions have arrived, so their memory is never freed under the kernel.
   * No events are dispatched once it starts. Never blocks the JS thread. Works in every state:
   * after `close()` began (which then rejects), after a failure (which it silences), and after
   * the end (a no-op).
   *
   * If `CancelIoEx` fails (other than `ERROR_NOT_FOUND`, which means the write had completed), an
   * owned handle is closed to end the I/O, and the returned promise rejects with that
   * `CancelIoEx` error after everything is released. It waits at most 2 s for the cancelled
   * writes: past that it rejects with `ERROR_TIMEOUT` (only possible with a handle it does not
   * own, which the caller can close to end the write), and the writes' memory stays referenced
   * until their completions arrive.
   *
   * @example
   * ```ts
   * import { PipeWriter } from "@winpipe/winpipe";
   * const w = await PipeWriter.open(String.raw`\\.\pipe\my-app`);
   * w.write(new Uint8Array(1 << 20));
   * await w.stop(); // nothing more is written
   * ```
   */
  stop(): Promise<void> {
    if (this.#stopResult) return this.#stopResult;
    if (this.#state === "closed") return (this.#stopResult = this.#release());
    const failed = this.#state === "failed";
    this.#to("stopped");
    this.#queue.clear();
    if (!failed) this.#bytesToWrite = this.#emptyMessages = 0;
    this.#countKept = failed;
    this.#endWaiters(
      new PipeError({
        errno: Win32.ERROR_OPERATION_ABORTED,
        syscall: this.#call,
        path: this.path,
        detail: "the writer was stopped",
      }),
    );
    this.#cancelInFlight();
    this.#stopResult = this.#releaseWithin();
    return this.#stopResult;
  }

  /**
   * Stops the writer (`stop()`) when `signal` aborts, as Node's `stream.addAbortSignal` does;
   * returns the writer. This is how a `pipeTo(w.writable, { signal })` into a peer that may not
   * read is aborted: the Streams standard has `pipeTo` wait for the write in progress before it
   * aborts the destination, and that write waits for the peer to read. Given the same signal,
   * the writer stops at once, the write in progress rejects, and `pipeTo` rejects with the
   * signal's reason. Any rejection of that `stop()` is left to a later `stop()` call to report.
   *
   * @throws {TypeError} when `signal` is not an `AbortSignal`.
   *
   * @example
   * ```ts
   * import { openAsBlob } from "node:fs";
   * import { PipeWriter } from "@winpipe/winpipe";
   * const w = await PipeWriter.open(String.raw`\\.\pipe\my-app`);
   * const signal = AbortSignal.timeout(10_000);
   * const file = await openAsBlob("big.bin");
   * await file.stream().pipeTo(w.addAbortSignal(signal).writable, { signal });
   * ```
   */
  addAbortSignal(signal: AbortSignal): this {
    const checked = signalOption({ signal }, "addAbortSignal()");
    if (!checked) throw new TypeError("addAbortSignal(): signal must be an AbortSignal");
    const stop = () => void this.stop().catch(() => {});
    if (checked.aborted) stop();
    else checked.addEventListener("abort", stop, { once: true });
    return this;
  }

  /** `close()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  static {
    drainedOf = (w) => w.#drained();
  }

  /** Settles when `bytesToWrite` is at half the mark; rejects once the writer fails, stops or closes. */
  #drained(): Promise<void> {
    return this.#issuing
      ? this.#wait(this.#drainWaiters, undefined, Infinity)
      : Promise.reject(this.#error ?? this.#notWritable("write"));
  }

  /**
   * A `WritableStream` over this writer. Its `close()` is the writer's `close()`; its `abort()`
   * is `stop()`, at once, even while a write waits for a peer that does not read; it errors when
   * the writer fails or is stopped. To abort a `pipeTo` into it with a signal, give the writer
   * the signal too ({@link PipeWriter.addAbortSignal}). Backpressure is the writer's: the
   * stream holds at most the chunk being handed over, so what is buffered stays within the
   * mark in force (see {@link PipeWriterOptions.highWaterMark}) plus one chunk.
   *
   * @example
   * ```ts
   * import { PipeWriter } from "@winpipe/winpipe";
   * const w = await PipeWriter.open(String.raw`\\.\pipe\my-app`);
   * await ReadableStream.from(["a", "b"]).pipeThrough(new TextEncoderStream()).pipeTo(w.writable);
   * ```
   */
  get writable(): WritableStream<Uint8Array> {
    // deno-lint-ignore no-this-alias
    const self = this;
    this.#writable ??= pipeWritable({
      write: (chunk) => this.write(chunk),
      // (write() may have failed the writer itself, with a start that failed at once.)
      drained: () => this.#drained(),
      close: () => this.close(),
      stop: () => this.stop(),
      get error() {
        return self.#error;
      },
      onEnd: (callback) => {
        this.#onEnd = callback;
      },
    });
    return this.#writable;
  }

  // ---- the state machine ----

  /** Is everything accepted written (every byte, and every empty message)? */
  get #written(): boolean {
    return this.#bytesToWrite === 0 && this.#emptyMessages === 0;
  }

  /** May `write()` queue bytes? */
  get #accepting(): boolean {
    return this.#state === "open";
  }

  /** The system call a write makes, for errors (`WriteFile`, or `write` on a socket). */
  get #call(): string {
    return this.#channel.writeCall ?? "WriteFile";
  }

  /**
   * With the default mark, where two writes can be in flight: room for two of the caller's
   * chunks, up to two largest writes. With room for one large chunk, one write is in flight when
   * the caller waits for `drain`, and the pipe runs dry between its completion and the next
   * `WriteFile`; a reader that drains it in small reads (Node's `net` reads 64 KiB at a time)
   * then waits through that gap. With room for two, the second waits in the pipe behind the
   * first. Measured under Wine, 1 MiB chunks into Node's `net` (docs/design.md): Bun 222 → 255
   * MB/s, Deno 249 → 265, where the C sink did not tell them apart. A mark the caller chose is
   * used as given.
   */
  #widen(chunk: number): void {
    this.#mark = Math.max(this.#highWaterMark, Math.min(2 * chunk, this.#wideMark));
  }

  /**
   * A large chunk written straight from the caller's memory, where the channel can write
   * synchronously (`writeNow`: Bun's sockets) and nothing is queued or in flight before it: what
   * the socket takes now is never copied into a block, and only the rest is. Returns what is left
   * to queue, or null when nothing is (all taken, or the writer failed). Its events come on a
   * microtask, as a write's that completed at once. Writes of every size copy through the queue
   * otherwise, and on Linux that copy was the writer's main cost: Bun, 64 KiB chunks into the C
   * sink, 3007 MB/s with it, 4525 with this, 5356 with no copy at all, `Bun.connect` 5577
   * (5 rounds, docs/design.md).
   */
  #writeNow(bytes: Uint8Array): Uint8Array | null {
    const channel = this.#channel;
    if (
      !channel.writeNow || this.#messageMode || this.#inFlight.length > 0
      || this.#queue.queuedBytes > 0 || this.#yielding
    ) return bytes;
    let taken: number | IoFailure;
    try {
      taken = channel.writeNow(bytes);
    } catch (e) {
      // A channel that throws rather than reporting (its contract): the writer fails, as from
      // startWrite, and write() does not throw past the bytes it was given.
      const error = asPipeError(e, this.#call, this.path);
      this.#fail({ error: error.errno, syscall: error.syscall, detail: error.detail }, e);
      return null;
    }
    if (typeof taken !== "number") {
      this.#fail(taken);
      return null;
    }
    if (taken > 0) this.#soon(taken);
    return taken === bytes.byteLength ? null : bytes.subarray(taken);
  }

  /** May a write be started (the queue still drains while closing)? */
  get #issuing(): boolean {
    return this.#state === "open" || this.#state === "closing";
  }

  /** Are events still dispatched? Not once `stop()` was called. */
  get #silent(): boolean {
    return this.#state === "stopped";
  }

  /** The one place the state changes; a transition not in the table is a bug. */
  #to(next: State): void {
    if (!NEXT[this.#state].includes(next)) {
      throw new Error(`PipeWriter: no transition from ${this.#state} to ${next}`);
    }
    this.#state = next;
  }

  /**
   * Starts writes while there is room in flight and something queued; not while an at-once
   * completion's microtask is due (see #issue), unless `now`. Room: one write, or two where the
   * channel allows it (a handle winpipe opened, in byte mode): the second is queued in the kernel
   * behind the first, so the pipe never waits for a completion's trip to JS.
   */
  #startNext(now = false): void {
    while (
      this.#issuing && this.#inFlight.length < this.#maxInFlight
      && ((this.#atOnce === null && !this.#yielding) || now)
      // A second write only for a large block: small writes are better coalesced behind the
      // first (each call costs more than the bytes it carries).
      && (this.#inFlight.length === 0 || this.#queue.queuedBytes >= this.#secondWriteMin)
    ) {
      const block = this.#queue.take();
      if (!block) return;
      if (this.#issue({ block, offset: 0, issued: 0 }) !== "pending") return;
    }
  }

  /**
   * Starts one write. A write that completed at once (an owned handle,
   * FILE_SKIP_COMPLETION_PORT_ON_SUCCESS) is accounted here, and its events are dispatched on a
   * microtask, never inside `write()`; the next block waits for that microtask too, so that what
   * the caller writes meanwhile (say, a loop of small writes) coalesces into it, as it would
   * behind a pending write.
   */
  #issue(op: InFlight): "pending" | "done" | "failed" {
    for (;;) {
      op.issued = ++this.#issued;
      this.#inFlight.push(op);
      let started: Started;
      let cause: unknown;
      try {
        started = this.#channel.startWrite(
          op.block.subarray(op.offset),
          (result) => this.#completed(op, result),
        );
      } catch (e) {
        // Also from inside a completion callback (the next write starts there): never thrown on.
        const error = asPipeError(e, this.#call, this.path);
        started = { error: error.errno, syscall: error.syscall, detail: error.detail };
        cause = e;
      }
      if (started === undefined) return "pending"; // #completed takes it from here
      this.#inFlight.pop();
      if (startFailed(started)) {
        this.#fail(started, cause);
        return "failed";
      }
      const short = this.#account(op, started.bytes);
      if (this.#error) return "failed";
      this.#soon(started.bytes);
      // A short write: its rest goes at once, behind whatever is in flight before it.
      if (!short) return "done";
    }
  }

  /** Events for `bytes` written at once, and the next write, on one microtask (or a later turn). */
  #soon(bytes: number): void {
    if (this.#atOnce !== null) {
      this.#atOnce += bytes;
      return;
    }
    this.#atOnce = bytes;
    queueMicrotask(() => {
      const written = this.#atOnce!;
      this.#atOnce = null;
      if (this.#state === "stopped" || this.#state === "closed") return;
      this.#progressed(written);
      if (!this.#yielding && overSlice()) {
        this.#yielding = true;
        later(() => {
          this.#yielding = false;
          this.#startNext();
        });
      }
      this.#startNext();
    });
  }

  /** Accounts `bytes` written from `op`. True when it was short (the rest of its block is due). */
  #account(op: InFlight, bytes: number): boolean {
    if (bytes === 0 && op.block.byteLength === 0) {
      this.#emptyMessages--; // an empty message, written
      return false;
    }
    if (bytes === 0) {
      // Only a PIPE_NOWAIT pipe with a full buffer does this; writing again would spin.
      this.#fail({
        error: Win32.ERROR_WRITE_FAULT,
        syscall: this.#call,
        detail: "WriteFile reported success but wrote nothing (is the pipe in PIPE_NOWAIT mode?)",
      });
      return false;
    }
    this.#bytesToWrite -= bytes;
    op.offset += bytes;
    if (op.offset < op.block.byteLength) return true;
    this.#queue.recycle(op.block);
    return false;
  }

  /**
   * A completion, on the JS thread; with two writes in flight, possibly before the earlier one's.
   * Never throws: a failure here becomes the writer's error. After a failure, a write that still
   * succeeded is counted (so `bytesToWrite` stays the count not written) and nothing more starts.
   */
  #completed(op: InFlight, { error, bytes, syscall, detail, pipeError }: IoResult): void {
    const i = this.#inFlight.indexOf(op);
    // A late completion for a write whose result was already taken (flushSync) is not ours.
    if (i < 0) return;
    this.#inFlight.splice(i, 1);
    if (this.#state === "stopped" || this.#state === "closed") {
      // Stopped after a failure, the writer keeps the count not written: a write that the
      // cancel came too late for was written all the same.
      if (this.#countKept && error === 0) this.#bytesToWrite -= bytes;
      return;
    }
    try {
      if (error !== 0) {
        this.#fail({ error, syscall: syscall ?? this.#call, detail, pipeError });
        return;
      }
      const short = this.#account(op, bytes);
      if (this.#error) return;
      if (short) {
        if (op.issued !== this.#issued) {
          // A later write is already in the pipe (in flight, or even completed at once): the rest
          // cannot go in its place. Pipes in PIPE_WAIT mode (all that winpipe opens) never do
          // this, on Windows or Wine.
          this.#fail({
            error: Win32.ERROR_WRITE_FAULT,
            syscall: this.#call,
            detail:
              `a write completed short (${bytes} of ${op.block.byteLength - op.offset + bytes}`
              + " bytes) after a later one was issued: the stream's order cannot be kept",
          });
          return;
        }
        this.#issue(op); // the rest goes next
      }
      this.#startNext();
      this.#progressed(bytes);
    } catch (e) {
      const error = asPipeError(e, this.#call, this.path);
      this.#fail({ error: error.errno, syscall: error.syscall, detail: error.detail }, e);
    }
  }

  /** `byteswritten`, `drain` when due, and flush waiters, after `bytes` were written. */
  #progressed(bytes: number): void {
    if (bytes > 0 && this.#progressHeard) {
      this.#emit(new CustomEvent("byteswritten", { detail: bytes }));
    }
    // Not as soon as it is below: a caller woken one chunk under the mark writes one chunk,
    // and each WriteFile then carries one chunk. Half the mark lets what is written next
    // coalesce (measured, 4 KiB chunks under Wine: 152 MB/s woken below the mark, 263 at half).
    if (this.#needDrain && this.#bytesToWrite <= this.#mark / 2 && !this.#error) {
      this.#needDrain = false;
      this.#settle(this.#drainWaiters);
      this.#emit(new Event("drain"));
    }
    if (this.#written && !this.#error) this.#settle(this.#flushWaiters);
  }

  /**
   * The first failure: kept, the queue dropped, waiters and the stream told, the writes still in
   * flight cancelled (a peer that does not read would otherwise hold them, and the release, for
   * ever), then `error` and, once released, `close`.
   */
  #fail(failure: IoFailure, cause?: unknown): void {
    if (!this.#issuing) return; // failed already, stopped or closed
    const error = failure.pipeError ?? new PipeError({
      errno: failureCode(failure.error),
      syscall: failure.syscall,
      path: this.path,
      detail: failure.detail ?? (failure.error === 0
        ? "the call failed but reported no error code"
        : undefined),
      cause,
    });
    this.#error = error;
    this.#to("failed");
    this.#queue.clear(); // bytesToWrite keeps the unwritten count
    this.#endWaiters(error);
    this.#cancelInFlight();
    // Reported asynchronously, so that a handler never runs inside write().
    queueMicrotask(() => {
      this.#emit(new PipeErrorEvent(error));
      void this.#release().then(() => this.#emit(new Event("close")));
    });
  }

  /** CancelIoEx on the writes in flight; a failure closes an owned handle to end them. */
  #cancelInFlight(): void {
    if (this.#inFlight.length === 0) return;
    this.#cancelled = true;
    const code = this.#channel.cancelWrite();
    if (code === 0 || code === Win32.ERROR_NOT_FOUND) return;
    this.#cancelFailed ||= code;
    this.#channel.abortHandle();
  }

  #release(): Promise<void> {
    this.#released ??= this.#channel.release();
    return this.#released;
  }

  /**
   * The release, waited for at most {@link CANCEL_WAIT_MS}: it waits for every owed completion
   * before it frees memory or closes the handle, and a handle that is not ours may never end a
   * cancelled write. Rejects when that bound passed, or when a CancelIoEx failed.
   */
  async #releaseWithin(): Promise<void> {
    const inTime = await settlesWithin(this.#release(), CANCEL_WAIT_MS);
    if (!inTime) {
      throw new PipeError({
        errno: this.#cancelFailed || Win32.ERROR_TIMEOUT,
        syscall: this.#cancelled ? "CancelIoEx" : "close",
        path: this.path,
        detail: this.#cancelled
          ? `the cancelled write had not completed after ${CANCEL_WAIT_MS} ms; its memory `
            + "stays referenced until it does (close the handle to end it)"
          : `the handle's release had not completed after ${CANCEL_WAIT_MS} ms (nothing was `
            + "cancelled: the system had not yet returned from this pipe's last completions)",
      });
    }
    if (this.#cancelFailed) {
      throw new PipeError({ errno: this.#cancelFailed, syscall: "CancelIoEx", path: this.path });
    }
  }

  /** Dispatches in order; a handler's own events queue behind it instead of recursing. */
  #emit(event: Event): void {
    if (this.#silent) return;
    this.#pendingEvents.push(event);
    if (this.#emitting) return;
    this.#emitting = true;
    try {
      for (let e; !this.#silent && (e = this.#pendingEvents.shift());) {
        this.dispatchEvent(e);
      }
    } finally {
      this.#emitting = false;
      if (this.#silent) this.#pendingEvents = [];
    }
  }

  #wait(list: Waiter[], signal: AbortSignal | undefined, timeout: number) {
    return new Promise<void>((resolve, reject) => {
      let timer: Timer | undefined;
      const onAbort = () => done(signal!.reason);
      const done = (e?: unknown) => {
        const i = list.indexOf(waiter);
        if (i >= 0) list.splice(i, 1);
        timer?.clear();
        signal?.removeEventListener("abort", onAbort);
        if (e === undefined) resolve();
        else reject(e);
      };
      const waiter: Waiter = { resolve: () => done(), reject: done };
      if (signal?.aborted) return reject(signal.reason);
      list.push(waiter);
      signal?.addEventListener("abort", onAbort, { once: true });
      if (timeout !== Infinity) {
        timer = longTimeout(
          () => done(new DOMException(`flush timed out after ${timeout} ms`, "TimeoutError")),
          timeout,
        );
      }
    });
  }

  #settle(list: Waiter[], error?: unknown): void {
    for (const w of list.splice(0)) error === undefined ? w.resolve() : w.reject(error);
  }

  /** Flush and drain waiters, and the stream, end with `error`. */
  #endWaiters(error: PipeError): void {
    this.#settle(this.#flushWaiters, error);
    this.#settle(this.#drainWaiters, error);
    this.#onEnd?.(error);
  }

  #notWritable(what: string): PipeError {
    if (this.#error) return this.#error;
    const how = this.#state === "stopped" ? "stopped" : "closed";
    return new PipeError({
      errno: Win32.ERROR_INVALID_HANDLE,
      syscall: what,
      path: this.path,
      detail: `${what} after the writer was ${how}`,
    });
  }
}

/** @internal A writer over any channel: a connection's share of its pipe, or a test's fake. */
/**
 * Settles when the writer's `drain` would fire; rejects once it fails, is stopped or has closed,
 * so a caller waiting for room never waits past the writer's end (internal).
 */
export function writerDrained(w: PipeWriter): Promise<void> {
  return drainedOf(w);
}

export function writerOverChannel(
  channel: WriteChannel,
  settings: WriterSettings,
  maxBlock?: number,
): PipeWriter {
  return new PipeWriter(CONSTRUCT, channel, settings, maxBlock);
}
