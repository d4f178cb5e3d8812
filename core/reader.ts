/**
 * `PipeReader`: the reading counterpart of {@link PipeWriter}, in the spirit of Qt's
 * `QWindowsPipeReader`. One overlapped `ReadFile` at a time, into reader-owned memory, started
 * only when the `ReadableStream`'s consumer asks for data (pull), so a consumer that applies
 * backpressure stops the reads.
 *
 * @module
 */
import { isPeerGone, PipeError, Win32 } from "./errors.ts";
import { requireNative } from "./native.ts";
import { type Operation, OverlappedPipe } from "./overlapped.ts";

/** Options for a {@link PipeReader}. */
export interface PipeReaderOptions {
  /** Bytes asked of each `ReadFile`. Default 64 KiB. */
  readSize?: number;
  /**
   * Message pipes: assemble `ERROR_MORE_DATA` parts and yield whole messages, one chunk each.
   * Default false: bytes as they come.
   */
  messageMode?: boolean;
}

/** Options for {@link PipeReader.fromHandle}. */
export interface PipeReaderFromHandleOptions extends PipeReaderOptions {
  /** Close the handle when the reader is released. Default false: the caller keeps it. */
  owned?: boolean;
  /** A name for error messages. */
  path?: string;
}

const DEFAULT_READ_SIZE = 64 * 1024;
const CONSTRUCT = Symbol("PipeReader.construct");

/**
 * Reads a Windows named pipe as a `ReadableStream<Uint8Array>` of type `"bytes"` (BYOB readers
 * work). End of stream is `ERROR_BROKEN_PIPE` (109), and on a connected pipe `ERROR_NO_DATA`
 * (232) and `ERROR_PIPE_NOT_CONNECTED` (233) too. Any other failure errors the stream with a
 * {@link PipeError}.
 *
 * @example
 * ```ts
 * import { PipeReader } from "@winpipe/winpipe";
 *
 * const reader = PipeReader.fromHandle(handle, { owned: true });
 * for await (const chunk of reader.readable) console.log(chunk.byteLength);
 * ```
 */
export class PipeReader {
  readonly #pipe: OverlappedPipe;
  readonly #buffer: Uint8Array;
  readonly #messageMode: boolean;
  #op: Operation | null = null;
  #opDone: Promise<void> | null = null;
  #bytesRead = 0;
  #released: Promise<void> | undefined;
  #cancelled: Promise<Uint8Array> | undefined;
  #readable: ReadableStream<Uint8Array> | undefined;
  #controller: ReadableByteStreamController | undefined;
  #ended = false;
  /** Bytes of a message still being assembled (message mode). */
  #parts: Uint8Array[] = [];
  /** Bytes a cancelled read had already transferred, for cancel() to hand back. */
  #leftover: Uint8Array[] = [];

  /**
   * Not public: use {@link PipeReader.fromHandle} or `connect()`.
   * @ignore
   */
  constructor(token: unknown, pipe: OverlappedPipe, options: PipeReaderOptions = {}) {
    if (token !== CONSTRUCT) {
      throw new TypeError("use PipeReader.fromHandle() or connect() to make a PipeReader");
    }
    this.#pipe = pipe;
    this.#buffer = new Uint8Array(new ArrayBuffer(validateReadSize(options.readSize)));
    this.#messageMode = options.messageMode === true;
  }

  /**
   * Wraps a pipe handle opened with `FILE_FLAG_OVERLAPPED` and binds it to the thread pool. With
   * `owned: true` it is closed on release, and also if this call fails.
   *
   * @throws {TypeError} for a bad handle value or options.
   * @throws {PipeError} when the handle is not a pipe, or was already bound once.
   *
   * @example
   * ```ts
   * import { PipeReader } from "@winpipe/winpipe";
   * const reader = PipeReader.fromHandle(BigInt(Deno.env.get("PIPE_HANDLE")!), { owned: true });
   * const text = await new Response(reader.readable).text();
   * ```
   */
  static fromHandle(handle: bigint, options: PipeReaderFromHandleOptions = {}): PipeReader {
    validateReadSize(options.readSize);
    const pipe = OverlappedPipe.bind(handle, { owned: options.owned === true, path: options.path });
    return new PipeReader(CONSTRUCT, pipe, options);
  }

  /** Total bytes read so far. */
  get bytesRead(): number {
    return this.#bytesRead;
  }

  /**
   * Bytes that have arrived in the pipe and wait to be read, now (`PeekNamedPipe`'s
   * `lpTotalBytesAvail`), not counting what a read in flight has already taken. 0 once the
   * reader is released or the peer has gone.
   *
   * @throws {PipeError} when `PeekNamedPipe` fails for another reason.
   *
   * @example
   * ```ts
   * if (reader.available() === 0) await reader.cancel(); // nothing more has come
   * ```
   */
  available(): number {
    const handle = this.#pipe.handle;
    if (handle === null) return 0;
    const { kernel32 } = requireNative();
    const total = new Uint32Array(1);
    if (kernel32.PeekNamedPipe(handle, null, 0, null, total, null)) return total[0];
    const code = kernel32.GetLastError();
    if (isPeerGone(code)) return 0;
    throw new PipeError({
      code: code === 0 ? Win32.ERROR_UNIDENTIFIED_ERROR : code,
      syscall: "PeekNamedPipe",
      path: this.#pipe.path,
    });
  }

  /**
   * The bytes as a `ReadableStream` of type `"bytes"`. Its high-water mark is 0: a read starts
   * only when the consumer asks. Cancelling it is {@link PipeReader.cancel}.
   *
   * @example
   * ```ts
   * const r = reader.readable.getReader({ mode: "byob" });
   * const { value } = await r.read(new Uint8Array(1024));
   * ```
   */
  get readable(): ReadableStream<Uint8Array> {
    this.#readable ??= new ReadableStream({
      type: "bytes",
      start: (c) => {
        this.#controller = c;
      },
      pull: (c) => this.#pull(c),
      cancel: async () => {
        await this.cancel();
      },
    }, { highWaterMark: 0 });
    return this.#readable;
  }

  /**
   * Stops reading: `CancelIoEx` on the read in flight, waits for its completion, then releases.
   * Resolves with the bytes that read had already transferred (so nothing taken from the pipe is
   * lost), or an empty array. Idempotent.
   *
   * @example
   * ```ts
   * const rest = await reader.cancel();
   * if (rest.byteLength) handle(rest);
   * ```
   */
  cancel(): Promise<Uint8Array> {
    this.#cancelled ??= (async () => {
      this.#ended = true;
      const op = this.#op;
      if (op) {
        const code = this.#pipe.cancel(op);
        if (code !== 0 && code !== Win32.ERROR_NOT_FOUND) this.#pipe.abortHandle();
        await this.#opDone;
      }
      await this.#release();
      // Pending reads of the stream end (done) rather than wait forever.
      try {
        this.#controller?.close();
        this.#controller?.byobRequest?.respond(0);
      } catch {
        // already closed, errored or cancelled
      }
      return concat([...this.#leftover.splice(0), ...this.#parts.splice(0)]);
    })();
    return this.#cancelled;
  }

  /** `cancel()`, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.cancel();
  }

  #release(): Promise<void> {
    this.#released ??= this.#pipe.release();
    return this.#released;
  }

  #pull(c: ReadableByteStreamController): Promise<void> {
    if (this.#ended) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const byob = c.byobRequest?.view;
      // Into the reader's own memory, never the consumer's view: it must not move or be
      // detached while the kernel writes to it.
      const size = byob && !this.#messageMode
        ? Math.min(byob.byteLength, this.#buffer.byteLength)
        : this.#buffer.byteLength;
      const onRead = (error: number, bytes: number) => {
        // Keep reading until something was delivered (a message may take several reads, and a
        // zero-byte read delivers nothing): a byte stream does not pull again by itself.
        if (this.#completed(c, error, bytes) || this.#ended) resolve();
        else this.#read(size, onRead);
      };
      this.#read(size, onRead);
    });
  }

  #read(size: number, done: (error: number, bytes: number) => void): void {
    const { kernel32, addressOf } = requireNative();
    const buffer = this.#buffer;
    let finish!: () => void;
    this.#opDone = new Promise<void>((r) => (finish = r));
    const r = this.#pipe.start(
      (h, ov) => kernel32.ReadFile(h, addressOf(buffer), size, null, ov),
      buffer,
      ({ error, bytes }) => {
        this.#op = null;
        finish();
        done(error, bytes);
      },
    );
    if (typeof r === "number") {
      this.#op = null;
      finish();
      queueMicrotask(() => done(r, 0)); // a synchronous failure, reported like a completion
    } else {
      this.#op = r;
    }
  }

  /** Handles one read's completion; returns true when it delivered something. */
  #completed(c: ReadableByteStreamController, error: number, bytes: number): boolean {
    const data = bytes > 0 ? this.#buffer.slice(0, bytes) : null;
    if (data) this.#bytesRead += bytes;
    if (this.#ended) {
      // Cancelled meanwhile: what the read had transferred goes to cancel()'s caller.
      if (data) this.#leftover.push(data);
      return false;
    }
    if (error === 0 || error === Win32.ERROR_MORE_DATA) {
      if (this.#messageMode) {
        if (data) this.#parts.push(data);
        // A message longer than the read: the rest comes with the next read.
        if (error === Win32.ERROR_MORE_DATA) return false;
        const message = concat(this.#parts.splice(0));
        if (message.byteLength === 0) return false;
        this.#deliver(c, message);
        return true;
      }
      if (!data) return false;
      this.#deliver(c, data);
      return true;
    }
    if (
      error === Win32.ERROR_BROKEN_PIPE || error === Win32.ERROR_NO_DATA
      || error === Win32.ERROR_PIPE_NOT_CONNECTED
    ) {
      this.#ended = true;
      c.close();
      c.byobRequest?.respond(0);
      void this.#release();
      return true;
    }
    this.#ended = true;
    c.error(new PipeError({ code: error, syscall: "ReadFile", path: this.#pipe.path }));
    void this.#release();
    return true;
  }

  #deliver(c: ReadableByteStreamController, data: Uint8Array): void {
    const byob = c.byobRequest;
    if (byob?.view && byob.view.byteLength >= data.byteLength) {
      new Uint8Array(byob.view.buffer, byob.view.byteOffset, byob.view.byteLength).set(data);
      byob.respond(data.byteLength);
    } else {
      c.enqueue(data as Uint8Array<ArrayBuffer>);
    }
  }

  /** @internal A reader sharing `pipe` (a connection's handle); it calls pipe.release() once. */
  static overPipe(pipe: OverlappedPipe, options: PipeReaderOptions = {}): PipeReader {
    return new PipeReader(CONSTRUCT, pipe, options);
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  return out;
}

function validateReadSize(v: unknown): number {
  if (v === undefined) return DEFAULT_READ_SIZE;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1 || v > 0xffff_ffff) {
    throw new TypeError(`readSize must be a whole number of bytes from 1 to 2^32-1, got ${v}`);
  }
  return v;
}
