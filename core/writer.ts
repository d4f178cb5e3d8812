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
import { type Chunk, chunkBytes } from "./chunk.ts";
import {
  type IoFailure,
  type IoResult,
  OverlappedPipe,
  type Started,
  startFailed,
  type WriteChannel,
} from "./completion/mod.ts";
import { asPipeError, failureCode, PipeError, Win32 } from "./errors.ts";
import { type OpenOptions, openPipeHandle } from "./open.ts";
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

/** Options for a {@link PipeWriter}. */
export interface PipeWriterOptions {
  /**
   * `write()` returns false, and `writable` applies backpressure, once `bytesToWrite` reaches
   * this many bytes. Default 1 MiB (chosen by measurement; see README "Design").
   */
  highWaterMark?: number;
  /**
   * Message pipes: each `write()` is one message, written by one `WriteFile`, never merged with
   * another or split. Default false (bytes are coalesced).
   */
  messageMode?: boolean;
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
 * import { type PipeErrorEvent } from "@winpipe/winpipe";
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
/** The least a second write in flight carries (see #startNext), or one whole block if less. */
const SECOND_WRITE_MIN = 64 * 1024;

type State = "open" | "closing" | "stopping" | "closed" | "failed";

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
 * @example Write, then close (which flushes)
 * ```ts
 * import { PipeWriter } from "@winpipe/winpipe";
 *
 * await using w = await PipeWriter.open(String.raw`\\.\pipe\my-app`, { timeout: 5_000 });
 * if (!w.write("hello\n")) {
 *   await new Promise((r) => w.addEventListener("drain", r, { once: true }));
 * }
 * await w.flush();
 * ```
 *
 * @example As a WritableStream
 * ```ts
 * import { PipeWriter } from "@winpipe/winpipe";
 *
 * const w = await PipeWriter.open(String.raw`\\.\pipe\my-app`);
 * const file = await Deno.open("big.bin");
 * await file.readable.pipeTo(w.writable); // closes the writer at the end
 * ```
 */
export class PipeWriter extends EventTarget {
  readonly #channel: WriteChannel;
  readonly #queue: WriteQueue;
  readonly #highWaterMark: number;
  #state: State = "open";
  /** The writes in flight, oldest first. */
  #inFlight: InFlight[] = [];
  /** WriteFile calls made so far; the latest one's `issued`. */
  #issued = 0;
  /** How many writes may be in flight: 1, or 2 where the channel allows it in byte mode. */
  readonly #maxInFlight: number;
  readonly #secondWriteMin: number;
  #bytesToWrite = 0;
  #error: PipeError | null = null;
  #needDrain = false;
  #flushWaiters: Waiter[] = [];
  #drainWaiters: Waiter[] = [];
  #closed: Promise<void> | undefined;
  #stopped: Promise<void> | undefined;
  #released: Promise<void> | undefined;
  #emitting = false;
  /** Bytes written at once whose `byteswritten` is still to come (see #progressSoon). */
  #inlineBytes = 0;
  /** A write just completed at once; the next starts on a microtask (see #issue). */
  #cooling = false;
  #pendingEvents: Event[] = [];
  #writable: WritableStream<Uint8Array> | undefined;
  #streamError: ((e: unknown) => void) | undefined;

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
    this.#queue = new WriteQueue(maxBlock, settings.messageMode);
    this.#channel = channel;
    this.#maxInFlight = settings.messageMode ? 1 : Math.max(1, channel.writesInFlight ?? 1);
    this.#secondWriteMin = Math.min(SECOND_WRITE_MIN, maxBlock ?? MAX_BLOCK);
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
   * import { PipeWriter } from "@winpipe/winpipe";
   * const handle = BigInt(Deno.env.get("PIPE_HANDLE")!);
   * const w = PipeWriter.fromHandle(handle, { owned: true });
   * ```
   */
  static fromHandle(handle: bigint, options: FromHandleOptions = {}): PipeWriter {
    const where = "PipeWriter.fromHandle()";
    checkHandle(handle, where);
    const o = optionsObject(options, where);
    const settings = writerSettings(o, where);
    const { owned, path } = handleSettings(o, where);
    const pipe = OverlappedPipe.bind(handle, { owned, path });
    return new PipeWriter(CONSTRUCT, pipe.writeChannel(), settings);
  }

  /**
   * Bytes queued or in flight, as `QWindowsPipeWriter::bytesToWrite`. After a failure it keeps
   * the count that was never written; after `stop()` it is 0.
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

  /** The pipe's name, when it was opened by name. */
  get path(): string | undefined {
    return this.#channel.path;
  }

  /**
   * Queues a copy of `chunk` (a `Uint8Array`, another `ArrayBufferView`, an `ArrayBuffer`, or a
   * string as UTF-8) and starts writing if nothing is in flight. Returns false once
   * `bytesToWrite >= highWaterMark`: wait for `drain` before writing more.
   *
   * @throws {TypeError} for anything that is not bytes, or a detached buffer.
   * @throws {PipeError} after `close()`, `stop()`, or a failure (then the failure itself).
   *
   * @example
   * ```ts
   * import { PipeWriter } from "@winpipe/winpipe";
   * const w = await PipeWriter.open(String.raw`\\.\pipe\my-app`);
   * for (const line of ["a\n", "b\n"]) {
   *   if (!w.write(line)) await new Promise((r) => w.addEventListener("drain", r, { once: true }));
   * }
   * ```
   */
  write(chunk: Chunk): boolean {
    const bytes = chunkBytes(chunk);
    if (this.#state !== "open") throw this.#notWritable("write");
    if (bytes.byteLength > 0) {
      this.#queue.push(bytes);
      this.#bytesToWrite += bytes.byteLength;
      this.#startNext();
    }
    const below = this.#bytesToWrite < this.#highWaterMark;
    if (!below) this.#needDrain = true;
    return below;
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
    const o = optionsObject(options, "flush()");
    const signal = signalOption(o, "flush()");
    const timeout = o.timeout === undefined
      ? Infinity
      : timeoutValue(o.timeout, "timeout", "flush()");
    if (this.#error) return Promise.reject(this.#error);
    if (this.#stopped) return Promise.reject(this.#notWritable("flush"));
    if (this.#bytesToWrite === 0) return Promise.resolve();
    return this.#wait(this.#flushWaiters, signal, timeout);
  }

  /**
   * Blocks the JS thread until every queued byte is written or `timeoutMs` passes, like
   * `QWindowsPipeWriter::waitForWrite`. For exit handlers and scripts; prefer `flush()`.
   * Returns true when everything was written, false on timeout.
   *
   * @throws {PipeError} if the writer fails meanwhile, or was stopped or closed with bytes queued.
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
      if (this.#stopped) throw this.#notWritable("flushSync");
      if (this.#bytesToWrite === 0) return true;
      this.#startNext(true);
      const op = this.#inFlight[0]; // the channel waits for its oldest write
      if (!op) continue; // completed at once, or a synchronous failure: seen above
      const left = Math.max(0, deadline - performance.now());
      const result = this.#channel.waitWrite(left);
      if (!result) return false;
      this.#completed(op, result);
    }
  }

  /**
   * Flushes, then releases the handle and everything else; idempotent. Rejects with the writer's
   * {@link PipeError} if it failed (everything is still released). Also `await using`.
   *
   * @example
   * ```ts
   * import { PipeWriter } from "@winpipe/winpipe";
   * const w = await PipeWriter.open(String.raw`\\.\pipe\my-app`);
   * w.write("bye");
   * await w.close();
   * ```
   */
  close(): Promise<void> {
    if (this.#closed) return this.#closed;
    if (this.#stopped) return (this.#closed = this.#stopped);
    if (this.#state === "failed") {
      return (this.#closed = this.#release().then(() => Promise.reject(this.#error)));
    }
    this.#state = "closing";
    const flushed = this.#bytesToWrite === 0
      ? Promise.resolve()
      : this.#wait(this.#flushWaiters, undefined, Infinity);
    this.#closed = flushed.then(
      () => this.#release().then(() => this.#finish()),
      (e) => this.#release().then(() => Promise.reject(e)),
    );
    return this.#closed;
  }

  /**
   * Cancels the write in flight (`CancelIoEx`), drops the queue, and releases everything once the
   * cancelled write's completion has arrived, so its memory is never freed under the kernel. No
   * events are dispatched once it starts. Never blocks the JS thread. If `CancelIoEx` fails
   * (other than `ERROR_NOT_FOUND`, which means the write had completed), an owned handle is
   * closed to end the I/O, and the returned promise rejects with that `CancelIoEx` error after
   * everything is released. It waits at most 2 s for the cancelled write: past that it rejects
   * (only possible with a handle it does not own, which the caller can close to end the write),
   * and the write's memory stays referenced until its completion arrives.
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
    if (this.#stopped) return this.#stopped;
    if (this.#state === "closed" || this.#state === "failed") {
      return (this.#stopped = this.#release());
    }
    this.#state = "stopping";
    this.#queue.clear();
    this.#bytesToWrite = 0;
    const aborted = new PipeError({
      errno: Win32.ERROR_OPERATION_ABORTED,
      syscall: "WriteFile",
      path: this.path,
      detail: "the writer was stopped",
    });
    this.#settle(this.#flushWaiters, aborted);
    this.#settle(this.#drainWaiters, aborted);
    this.#streamError?.(aborted);
    let cancelFailed = 0;
    if (this.#inFlight.length) {
      const code = this.#channel.cancelWrite();
      if (code !== 0 && code !== Win32.ERROR_NOT_FOUND) {
        cancelFailed = code;
        this.#channel.abortHandle();
      }
    }
    // release() waits for every owed completion before it frees memory or closes the handle;
    // stop() waits for it only so long (a handle it does not own may never end the write).
    const released = this.#release();
    this.#stopped = settlesWithin(released, CANCEL_WAIT_MS).then((inTime) => {
      this.#state = "closed";
      if (!inTime) {
        throw new PipeError({
          errno: cancelFailed || Win32.ERROR_TIMEOUT,
          syscall: "CancelIoEx",
          path: this.path,
          detail: `the cancelled write had not completed after ${CANCEL_WAIT_MS} ms; its memory `
            + "stays referenced until it does (close the handle to end it)",
        });
      }
      if (cancelFailed) {
        throw new PipeError({ errno: cancelFailed, syscall: "CancelIoEx", path: this.path });
      }
    });
    return this.#stopped;
  }

  /** `close()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * A `WritableStream` over this writer, with a byte-length strategy at `highWaterMark`. Its
   * `close()` is the writer's `close()`, its `abort()` is `stop()`, and it errors when the writer
   * fails.
   *
   * @example
   * ```ts
   * import { PipeWriter } from "@winpipe/winpipe";
   * const w = await PipeWriter.open(String.raw`\\.\pipe\my-app`);
   * await ReadableStream.from(["a", "b"]).pipeThrough(new TextEncoderStream()).pipeTo(w.writable);
   * ```
   */
  get writable(): WritableStream<Uint8Array> {
    this.#writable ??= new WritableStream<Uint8Array>({
      start: (controller) => {
        this.#streamError = (e) => controller.error(e);
        if (this.#error) controller.error(this.#error);
      },
      write: (chunk) => {
        if (!this.write(chunk)) return this.#wait(this.#drainWaiters, undefined, Infinity);
      },
      close: () => this.close(),
      abort: () => this.stop(),
    }, {
      highWaterMark: this.#highWaterMark,
      size: (chunk: unknown) => (chunk as { byteLength?: number })?.byteLength ?? 1,
    });
    return this.#writable;
  }

  // ---- the state machine ----

  /**
   * Starts writes while there is room in flight and something queued; not while cooling (see
   * #issue), unless `now`. Room: one write, or two where the channel allows it (a handle winpipe
   * opened, in byte mode): the second is queued in the kernel behind the first, so the pipe
   * never waits for a completion's trip to JS.
   */
  #startNext(now = false): void {
    while (
      this.#inFlight.length < this.#maxInFlight && (!this.#cooling || now)
      && (this.#state === "open" || this.#state === "closing")
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
   * microtask, never inside `write()`; the next block then waits for a microtask too, so that what
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
        const error = asPipeError(e, "WriteFile", this.path);
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
      this.#progressSoon(started.bytes);
      // A short write: its rest goes at once, behind whatever is in flight before it.
      if (short) continue;
      if (this.#state === "open" || this.#state === "closing") this.#cool();
      return "done";
    }
  }

  #cool(): void {
    if (this.#cooling) return;
    this.#cooling = true;
    queueMicrotask(() => {
      this.#cooling = false;
      this.#startNext();
    });
  }

  /** Accounts `bytes` written from `op`. True when it was short (the rest of its block is due). */
  #account(op: InFlight, bytes: number): boolean {
    if (bytes === 0) {
      // Only a PIPE_NOWAIT pipe with a full buffer does this; writing again would spin.
      this.#fail({
        error: Win32.ERROR_WRITE_FAULT,
        syscall: "WriteFile",
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
   * Never throws: a failure here becomes the writer's error.
   */
  #completed(op: InFlight, { error, bytes, syscall }: IoResult): void {
    const i = this.#inFlight.indexOf(op);
    // A late completion for a write whose result was already taken (flushSync) is not ours.
    if (i < 0) return;
    this.#inFlight.splice(i, 1);
    if (this.#state === "stopping" || this.#state === "closed") return;
    try {
      if (error !== 0) {
        this.#fail({ error, syscall: syscall ?? "WriteFile" });
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
            syscall: "WriteFile",
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
      const error = asPipeError(e, "WriteFile", this.path);
      this.#fail({ error: error.errno, syscall: error.syscall, detail: error.detail }, e);
    }
  }

  /** `byteswritten`, `drain` when due, and flush waiters, after `bytes` were written. */
  #progressed(bytes: number): void {
    this.#emit(new CustomEvent("byteswritten", { detail: bytes }));
    if (this.#needDrain && this.#bytesToWrite < this.#highWaterMark && !this.#error) {
      this.#needDrain = false;
      this.#settle(this.#drainWaiters);
      this.#emit(new Event("drain"));
    }
    if (this.#bytesToWrite === 0 && !this.#error) this.#settle(this.#flushWaiters);
  }

  /** {@link #progressed} for writes that completed at once: one microtask for all of them. */
  #progressSoon(bytes: number): void {
    this.#inlineBytes += bytes;
    if (this.#inlineBytes !== bytes) return; // already scheduled
    queueMicrotask(() => {
      const written = this.#inlineBytes;
      this.#inlineBytes = 0;
      if (this.#state !== "stopping" && this.#state !== "closed") this.#progressed(written);
    });
  }

  #fail(failure: IoFailure, cause?: unknown): void {
    if (this.#error || this.#state === "stopping" || this.#state === "closed") return;
    const error = new PipeError({
      errno: failureCode(failure.error),
      syscall: failure.syscall,
      path: this.path,
      detail: failure.detail ?? (failure.error === 0
        ? "the call failed but reported no error code"
        : undefined),
      cause,
    });
    this.#error = error;
    this.#state = "failed";
    this.#queue.clear(); // bytesToWrite keeps the unwritten count
    this.#settle(this.#flushWaiters, error);
    this.#settle(this.#drainWaiters, error);
    this.#streamError?.(error);
    // Reported asynchronously, so that a handler never runs inside write().
    queueMicrotask(() => {
      this.#emit(new PipeErrorEvent(error));
      void this.#release().then(() => this.#emit(new Event("close")));
    });
  }

  #finish(): void {
    this.#state = "closed";
    this.#emit(new Event("close"));
  }

  #release(): Promise<void> {
    this.#released ??= this.#channel.release();
    return this.#released;
  }

  /** Dispatches in order; a handler's own events queue behind it instead of recursing. */
  #emit(event: Event): void {
    if (this.#stopped) return;
    this.#pendingEvents.push(event);
    if (this.#emitting) return;
    this.#emitting = true;
    try {
      for (let e; (e = this.#pendingEvents.shift()) && !this.#stopped;) this.dispatchEvent(e);
    } finally {
      this.#emitting = false;
      if (this.#stopped) this.#pendingEvents = [];
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

  #notWritable(what: string): PipeError {
    if (this.#error) return this.#error;
    const how = this.#state === "stopping" || this.#stopped ? "stopped" : "closed";
    return new PipeError({
      errno: Win32.ERROR_INVALID_HANDLE,
      syscall: what,
      path: this.path,
      detail: `${what} after the writer was ${how}`,
    });
  }
}

/** @internal A writer over any channel: a connection's share of its pipe, or a test's fake. */
export function writerOverChannel(
  channel: WriteChannel,
  settings: WriterSettings,
  maxBlock?: number,
): PipeWriter {
  return new PipeWriter(CONSTRUCT, channel, settings, maxBlock);
}
