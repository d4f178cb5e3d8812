/**
 * `PipeReader`: the reading counterpart of {@link PipeWriter}, in the spirit of Qt's
 * `QWindowsPipeReader`. One overlapped `ReadFile` at a time, into reader-owned memory, started
 * only when the `ReadableStream`'s consumer asks for data (pull), so a consumer that applies
 * backpressure stops the reads.
 *
 * @module
 */
import { windowsOnly } from "../posix/open.ts";
import {
  type IoResult,
  OverlappedPipe,
  type ReadChannel,
  type Started,
  startFailed,
} from "../windows/completion/mod.ts";
import {
  asPipeError,
  failureCode,
  isPeerGoneWin32 as isPeerGone,
  PipeError,
  Win32,
} from "./errors.ts";
import {
  checkHandle,
  handleSettings,
  optionsObject,
  type ReaderSettings,
  readerSettings,
} from "./options.ts";
import { CANCEL_WAIT_MS, settlesWithin } from "./timeouts.ts";
import { later, nextTurn, overSlice } from "./turns.ts";

/** Options for a {@link PipeReader}. */
export interface PipeReaderOptions {
  /**
   * Bytes asked of each `ReadFile` (1 to 2^32 − 1), used as given. Without it: 64 KiB, doubling
   * up to 1 MiB while reads come back full, and back to 64 KiB once they come back small.
   */
  readSize?: number;
  /**
   * Message pipes: assemble `ERROR_MORE_DATA` parts and yield whole messages, one chunk each
   * (an empty message is an empty chunk; the stream is then not a byte stream, so no BYOB).
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

const CONSTRUCT = Symbol("PipeReader.construct");
/** The largest single ReadFile into a BYOB view (a DWORD count; a sane bound per call). */
const MAX_READ = 16 * 1024 * 1024;
/** The largest read a reader without a `readSize` grows to. */
const MAX_ADAPTIVE_READ = 1024 * 1024;

/**
 * Reads a Windows named pipe as a `ReadableStream<Uint8Array>` of type `"bytes"` (BYOB readers
 * work). End of stream is `ERROR_BROKEN_PIPE` (109), and on a connected pipe `ERROR_NO_DATA`
 * (232) and `ERROR_PIPE_NOT_CONNECTED` (233) too. Any other failure errors the stream with a
 * {@link PipeError}.
 *
 * @example
 * ```ts
 * import process from "node:process";
 * import { PipeReader } from "@winpipe/winpipe";
 *
 * const handle = BigInt(process.env.PIPE_HANDLE!); // inherited from the parent
 * const reader = PipeReader.fromHandle(handle, { owned: true });
 * for await (const chunk of reader.readable) console.log(chunk.byteLength);
 * ```
 */
export class PipeReader {
  readonly #channel: ReadChannel;
  /** The reader's own read buffer (replaced when a large read is handed over). */
  #buffer: Uint8Array;
  /** Where the read in flight (or just completed) put its bytes: our buffer or a BYOB view. */
  #target: Uint8Array | null = null;
  /** The target is the consumer's BYOB view (transferred to the stream while we read). */
  #direct = false;
  /** Did the last pull end without waiting (a read that completed at once, or a held chunk)? */
  #atOnce = false;
  readonly #messageMode: boolean;
  /** The configured read size, and whether reads may grow past it (no `readSize` given). */
  readonly #readSize: number;
  readonly #adaptive: boolean;
  /** Settles when the read in flight has completed; null when none is. */
  #inFlight: Promise<unknown> | null = null;
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
  /** An exception from starting a read, to error the stream with. */
  #internalError: PipeError | undefined;
  /** `readInto`'s call being served, and the calls waiting behind it. */
  #job: ReadJob | undefined;
  #jobs: ReadJob[] = [];
  /** Bytes read for `readInto` that no call has taken yet, and the error its calls throw. */
  #held: Uint8Array | null = null;
  #heldError: unknown;
  /** Resolves `#inFlight` (a `readInto` read's). */
  #inFlightDone: (() => void) | undefined;

  /**
   * Not public: use {@link PipeReader.fromHandle} or `connect()`.
   * @ignore
   */
  constructor(token: unknown, channel: ReadChannel, buffer: Uint8Array, settings: ReaderSettings) {
    if (token !== CONSTRUCT) {
      throw new TypeError("use PipeReader.fromHandle() or connect() to make a PipeReader");
    }
    this.#channel = channel;
    this.#buffer = buffer;
    this.#messageMode = settings.messageMode;
    this.#readSize = settings.readSize;
    this.#adaptive = settings.adaptive;
  }

  /**
   * Wraps a pipe handle opened with `FILE_FLAG_OVERLAPPED` and binds it to the thread pool
   * (`CreateThreadpoolIo`). With `owned: true` it is closed on release, and also if this call
   * fails. Every option is checked, and the read buffer allocated, before the handle is touched.
   *
   * @throws {TypeError} for a bad handle value or options.
   * @throws {PipeError} when the handle is not a pipe, or was already bound once.
   *
   * @example
   * ```ts
   * import process from "node:process";
   * import { PipeReader } from "@winpipe/winpipe";
   * const reader = PipeReader.fromHandle(BigInt(process.env.PIPE_HANDLE!), { owned: true });
   * const text = await new Response(reader.readable).text();
   * ```
   */
  static fromHandle(handle: bigint, options: PipeReaderFromHandleOptions = {}): PipeReader {
    const where = "PipeReader.fromHandle()";
    windowsOnly(where);
    checkHandle(handle, where);
    const o = optionsObject(options, where);
    const settings = readerSettings(o, where);
    const { owned, path } = handleSettings(o, where);
    const buffer = readBuffer(settings);
    const pipe = OverlappedPipe.bind(handle, { owned, path });
    return new PipeReader(CONSTRUCT, pipe.readChannel(), buffer, settings);
  }

  /** Total bytes read so far. */
  get bytesRead(): number {
    return this.#bytesRead;
  }

  /**
   * Bytes that have arrived in the pipe and wait to be read, now (`PeekNamedPipe`'s
   * `lpTotalBytesAvail`), not counting what a read in flight has already taken. 0 once the
   * handle is released or the peer has gone.
   *
   * @throws {PipeError} when `PeekNamedPipe` fails for another reason.
   *
   * @example
   * ```ts
   * import { connect } from "@winpipe/winpipe";
   * const reader = (await connect("my-app")).reader!;
   * if (reader.available() === 0) await reader.cancel(); // nothing more has come
   * ```
   */
  available(): number {
    return this.#channel.available();
  }

  /**
   * The bytes as a `ReadableStream` of type `"bytes"` (BYOB reads included). Its high-water
   * mark is 0: a read starts only when the consumer asks. Asked for first after `cancel()`, it is
   * a stream that has ended. Cancelling it is {@link PipeReader.cancel}, whose bytes the stream
   * cannot deliver: call `cancel()` itself to get them.
   *
   * With `messageMode`, a stream of whole messages instead, one chunk each, an empty message as
   * an empty chunk; not a byte stream, since a byte stream can carry neither (a BYOB read would
   * split a message, and a byte stream has no chunk of 0 bytes).
   *
   * @example
   * ```ts
   * import { connect } from "@winpipe/winpipe";
   * const reader = (await connect("my-app")).reader!;
   * const r = reader.readable.getReader({ mode: "byob" });
   * const { value } = await r.read(new Uint8Array(1024));
   * ```
   */
  get readable(): ReadableStream<Uint8Array> {
    if (this.#readable) return this.#readable;
    const source = {
      start: (c: ReadableByteStreamController) => {
        this.#controller = c;
        // Asked for after cancel() (or a connection's close()): an ended stream, not one whose
        // reads wait for ever.
        if (this.#ended) c.close();
      },
      pull: (c: ReadableByteStreamController) => this.#pull(c),
      cancel: async () => {
        await this.cancel();
      },
    };
    // A message pipe's stream is one of whole messages, not of bytes: a byte stream can carry
    // neither an empty message nor a boundary (a BYOB read would split a message).
    // (Its controller has no byobRequest: the code below, written for both, finds none.)
    this.#readable = this.#messageMode
      ? new ReadableStream<Uint8Array>(
        source as unknown as UnderlyingDefaultSource<Uint8Array>,
        { highWaterMark: 0 },
      )
      : new ReadableStream({ type: "bytes", ...source }, { highWaterMark: 0 });
    return this.#readable;
  }

  /**
   * Stops reading: `CancelIoEx` on the read in flight, waits for its completion, then releases.
   * Resolves with the bytes that read had already transferred (so nothing taken from the pipe is
   * lost), or an empty array. Idempotent.
   *
   * If `CancelIoEx` fails, an owned handle is closed to end the read. The wait for the read's
   * completion is bounded (2 s): past that, `cancel()` rejects with a {@link PipeError}, the
   * read's buffer stays referenced until it completes, and what it transfers then is dropped.
   * That can only happen with a handle that is not owned, which the caller can close to end it.
   *
   * @example
   * ```ts
   * import { connect } from "@winpipe/winpipe";
   * const reader = (await connect("my-app")).reader!;
   * const rest = await reader.cancel(); // what was read and not taken
   * if (rest.byteLength) console.log(`${rest.byteLength} bytes left unread`);
   * ```
   */
  cancel(): Promise<Uint8Array> {
    this.#cancelled ??= this.#cancel();
    return this.#cancelled;
  }

  async #cancel(): Promise<Uint8Array> {
    this.#ended = true;
    const reading = this.#inFlight;
    let cancelFailed = 0;
    if (reading) {
      const code = this.#channel.cancelRead();
      if (code !== 0 && code !== Win32.ERROR_NOT_FOUND) {
        cancelFailed = code;
        this.#channel.abortHandle();
      }
      if (!(await settlesWithin(reading, CANCEL_WAIT_MS))) {
        // Released whenever the read does complete (the caller closing its handle ends it).
        void this.#release();
        const error = new PipeError({
          errno: cancelFailed || Win32.ERROR_TIMEOUT,
          syscall: "CancelIoEx",
          path: this.#channel.path,
          detail: `the cancelled read had not completed after ${CANCEL_WAIT_MS} ms; its buffer `
            + "stays referenced until it does (close the handle to end it)",
        });
        // A BYOB view the kernel may still write into is never handed back: closing would
        // return it to the consumer (respond(0)), erroring does not.
        if (this.#direct) this.#errorStream(error);
        else this.#endStream();
        // readInto's calls end too (its read was into the reader's own buffer).
        while (this.#job) this.#next(null);
        throw error;
      }
    }
    await this.#release();
    this.#endStream();
    // Bytes read for `readInto` that no call took came first; they are handed back too, not
    // served to a read() after the cancel.
    const held = this.#held;
    this.#held = null;
    return concat([...(held ? [held] : []), ...this.#leftover.splice(0), ...this.#parts.splice(0)]);
  }

  /** Pending reads of the stream reject with `error` (a BYOB view is not handed back). */
  #errorStream(error: unknown): void {
    try {
      this.#controller?.error(error);
    } catch {
      // already closed, errored or cancelled
    }
  }

  /** Pending reads of the stream end (done) rather than wait forever. */
  #endStream(): void {
    try {
      this.#controller?.close();
      this.#controller?.byobRequest?.respond(0);
    } catch {
      // already closed, errored or cancelled
    }
  }

  /** `cancel()`, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.cancel();
  }

  /** The system call a read makes, for errors (`ReadFile`, or `read` on a socket). */
  get #call(): string {
    return this.#channel.readCall ?? "ReadFile";
  }

  #release(): Promise<void> {
    this.#released ??= this.#channel.release();
    return this.#released;
  }

  /**
   * Reads until something was delivered or the stream ended: a message may take several reads,
   * a zero-byte read delivers nothing, and a byte stream does not pull again by itself.
   */
  async #pull(c: ReadableByteStreamController): Promise<void> {
    while (!this.#ended) {
      // Reads that complete at once would otherwise chain on microtasks for as long as data
      // keeps coming (core/turns.ts).
      if (this.#atOnce && overSlice()) {
        await nextTurn();
        if (this.#ended) return;
      }
      this.#atOnce = true;
      if (this.#takeWaiting(c)) return;
      const started = this.#read(c);
      // A read that completed at once (FILE_SKIP_COMPLETION_PORT_ON_SUCCESS) is taken here.
      this.#atOnce = !(started instanceof Promise);
      const result = this.#atOnce ? started as IoResult : await started;
      if (this.#completed(c, result)) return;
    }
  }

  /**
   * A chunk the channel already holds (a Unix socket's read-ahead), enqueued as it is: no copy,
   * and no buffer of the reader's to allocate. Not for a BYOB view, which is filled by a read.
   */
  #takeWaiting(c: ReadableByteStreamController): boolean {
    if (this.#messageMode || !this.#channel.takeChunk || c.byobRequest?.view) return false;
    const chunk = this.#channel.takeChunk();
    if (!chunk) return false;
    this.#bytesRead += chunk.byteLength;
    c.enqueue(chunk as Uint8Array<ArrayBuffer>);
    return true;
  }

  /**
   * Starts one read: into the consumer's BYOB view itself when there is one (byte mode), else
   * into the reader's buffer. Returns the result when it completed at once, else its completion
   * (a failure to start is reported like one, on a later turn).
   */
  #read(c: ReadableByteStreamController): IoResult | Promise<IoResult> {
    const byob = c.byobRequest?.view;
    // The view's buffer was transferred to the stream: the consumer cannot touch it until we
    // respond, and it is referenced from the operation until the completion.
    this.#direct = !!byob && !this.#messageMode;
    this.#target = byob && this.#direct
      ? new Uint8Array(byob.buffer, byob.byteOffset, Math.min(byob.byteLength, MAX_READ))
      : this.#buffer.subarray(
        0,
        byob ? Math.min(byob.byteLength, this.#buffer.byteLength) : this.#buffer.byteLength,
      );
    // The callback never comes before startRead has returned.
    let complete!: (result: IoResult) => void;
    const completion = new Promise<IoResult>((r) => (complete = r));
    try {
      const started = this.#channel.startRead(this.#target, (result) => {
        this.#inFlight = null;
        complete(result);
      }, !this.#direct && !this.#messageMode);
      if (started === undefined) {
        this.#inFlight = completion; // what cancel() waits for
        return completion;
      }
      if (!startFailed(started)) return started;
      return Promise.resolve({
        error: failureCode(started.error),
        bytes: 0,
        syscall: started.syscall,
        detail: started.detail,
        pipeError: started.pipeError,
      });
    } catch (e) {
      this.#internalError = asPipeError(e, this.#call, this.#channel.path);
      return Promise.resolve({ error: this.#internalError.errno, bytes: 0 });
    }
  }

  #completed(c: ReadableByteStreamController, result: IoResult): boolean {
    const { error, bytes } = result;
    const direct = this.#direct;
    const target = this.#target!;
    this.#direct = false;
    this.#target = null;
    try {
      if (bytes > 0) this.#bytesRead += bytes;
      if (this.#ended) {
        // Cancelled meanwhile: what the read had transferred goes to cancel()'s caller.
        if (bytes > 0) this.#leftover.push(result.chunk ?? target.slice(0, bytes));
        return false;
      }
      if (direct && (error === 0 || error === Win32.ERROR_MORE_DATA)) {
        if (bytes === 0) return false;
        const request = c.byobRequest;
        // The bytes are already in the consumer's view; without a request (it cannot go away
        // while the stream is open, but if it did) they are enqueued as a copy.
        if (request?.view) request.respond(bytes);
        else c.enqueue(target.slice(0, bytes));
        return true;
      }
      const data = result.chunk ?? (bytes > 0 ? this.#take(bytes) : null);
      if (error === 0 || error === Win32.ERROR_MORE_DATA) {
        if (this.#messageMode) {
          if (data) this.#parts.push(data);
          // A message longer than the read: the rest comes with the next read.
          if (error === Win32.ERROR_MORE_DATA) return false;
          // An empty message too (a delimiter, a keep-alive): a chunk of 0 bytes.
          c.enqueue(concat(this.#parts.splice(0)) as Uint8Array<ArrayBuffer>);
          return true;
        }
        if (!data) return false;
        this.#deliver(c, data);
        return true;
      }
      this.#ended = true;
      if (isPeerGone(error)) {
        c.close();
        c.byobRequest?.respond(0);
      } else {
        c.error(this.#failure(result));
      }
      void this.#release();
      return true;
    } catch (e) {
      this.#ended = true;
      try {
        c.error(e);
      } catch {
        // the stream was already closed or errored
      }
      void this.#release();
      return true;
    }
  }

  /** The error a failed read ends the reads with (the stream's and `readInto`'s alike). */
  #failure(result: IoResult): PipeError {
    return this.#internalError ?? result.pipeError ?? new PipeError({
      errno: failureCode(result.error),
      syscall: result.syscall ?? this.#call,
      path: this.#channel.path,
      detail: result.detail,
    });
  }

  /**
   * The first `bytes` of the reader's buffer as a chunk of their own. A large read hands the
   * buffer itself over (a new one is made for the next read), a small one is copied out.
   */
  #take(bytes: number): Uint8Array {
    const size = this.#buffer.byteLength;
    if (this.#messageMode || bytes < size / 2) {
      const data = this.#buffer.slice(0, bytes);
      const next = this.#nextReadSize(bytes, size);
      if (next !== size) this.#buffer = new Uint8Array(new ArrayBuffer(next));
      return data;
    }
    const data = this.#buffer.subarray(0, bytes);
    this.#buffer = new Uint8Array(new ArrayBuffer(this.#nextReadSize(bytes, size)));
    return data;
  }

  /**
   * The next read's size, after a read of `size` bytes gave `bytes`. One that came back full:
   * more is waiting, so twice as much (up to MAX_ADAPTIVE_READ), one call instead of several.
   * One that came back under a quarter: the default size again (a burst is over).
   */
  #nextReadSize(bytes: number, size: number): number {
    if (!this.#adaptive) return size;
    if (bytes === size) return Math.min(2 * size, MAX_ADAPTIVE_READ);
    return size > this.#readSize && bytes < size / 4 ? this.#readSize : size;
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

  /**
   * @internal For `PipeConnection.read(p)`: true when {@link PipeReader.readInto} may be used,
   * and the stream is then locked for good (its reads and `readInto`'s would take bytes from
   * each other); false when the stream was made already (it may hold bytes read ahead, which
   * only its readers can take).
   * @throws {TypeError} on a message pipe, whose messages are the chunks of `readable`.
   */
  takeForReadInto(): boolean {
    if (this.#messageMode) {
      throw new TypeError(
        "read(p) is for byte pipes: a message pipe's messages are the chunks of `readable`",
      );
    }
    if (this.#readable) return false;
    this.readable.getReader();
    return true;
  }

  /**
   * @internal `PipeConnection.read(p)`: the next bytes, up to `p.byteLength`, copied into `p`;
   * the count, or `null` at the end (the peer closed, or `cancel()`). The stream's reads with
   * no stream in between, driven by the completion itself: a byte stream's machinery (a pull, a
   * read request, awaits at each level) costs a round trip more JavaScript than the read does.
   * Reads go into the reader's own buffer, never into `p`: the caller's memory may move or
   * shrink while a read is in the kernel's hands. What `p` has no room for is kept for the next
   * call. Calls made while one waits take their turns in order.
   */
  readInto(p: Uint8Array): Promise<number | null> {
    return new Promise((resolve, reject) => {
      const job: ReadJob = { p, resolve, reject, turned: false };
      if (this.#job) this.#jobs.push(job);
      else {
        this.#job = job;
        this.#step();
      }
    });
  }

  /**
   * Serves the `readInto` calls in order, as far as it can now: each with bytes, the end or the
   * error, until one waits for a read (or for a later turn). A loop, not a recursion: any number
   * of calls may be waiting.
   */
  #step(): void {
    for (let job = this.#job; job; job = this.#job) {
      const held = this.#held;
      if (held) {
        const n = Math.min(job.p.byteLength, held.byteLength);
        job.p.set(n === held.byteLength ? held : held.subarray(0, n));
        this.#held = n === held.byteLength ? null : held.subarray(n);
        this.#next(n);
        continue;
      }
      if (this.#heldError !== undefined) {
        this.#next(undefined, this.#heldError);
        continue;
      }
      if (this.#ended) {
        this.#next(null);
        continue;
      }
      // A chain of reads that complete at once gives the event loop its turn (core/turns.ts).
      if (this.#atOnce && !job.turned && overSlice()) {
        job.turned = true;
        later(() => this.#step());
        return;
      }
      job.turned = false;
      this.#atOnce = true;
      const waiting = this.#channel.takeChunk?.();
      if (waiting) {
        this.#bytesRead += waiting.byteLength;
        this.#held = waiting;
        continue;
      }
      // A caller reading large pieces gets large reads (up to the adaptive bound).
      if (this.#adaptive && job.p.byteLength > this.#buffer.byteLength) {
        const size = Math.min(job.p.byteLength, MAX_ADAPTIVE_READ);
        if (size > this.#buffer.byteLength) this.#buffer = new Uint8Array(new ArrayBuffer(size));
      }
      this.#direct = false;
      this.#target = this.#buffer;
      let started: Started;
      try {
        started = this.#channel.startRead(this.#buffer, this.#readIntoDone, true);
      } catch (e) {
        this.#internalError = asPipeError(e, this.#call, this.#channel.path);
        started = { error: this.#internalError.errno, syscall: this.#call };
      }
      if (started === undefined) {
        this.#atOnce = false;
        this.#inFlight = new Promise<void>((r) => (this.#inFlightDone = r)); // what cancel() waits for
        return;
      }
      this.#readIntoResult(
        startFailed(started)
          ? { ...started, error: failureCode(started.error), bytes: 0 }
          : started as IoResult,
      );
    }
  }

  /** A pending `readInto` read's completion. */
  readonly #readIntoDone = (result: IoResult): void => {
    this.#inFlight = null;
    this.#inFlightDone?.();
    this.#inFlightDone = undefined;
    this.#readIntoResult(result);
    if (this.#job) this.#step();
  };

  /** What a read for `readInto` gave: bytes to hand out, the end, or the error to throw. */
  #readIntoResult(result: IoResult): void {
    const { error, bytes } = result;
    const target = this.#target!;
    this.#target = null;
    if (bytes > 0) this.#bytesRead += bytes;
    if (this.#ended) {
      // Cancelled meanwhile: what the read had transferred goes to cancel()'s caller.
      if (bytes > 0) this.#leftover.push(result.chunk ?? target.slice(0, bytes));
      return;
    }
    if (error === 0 || error === Win32.ERROR_MORE_DATA) {
      if (bytes > 0) this.#held = result.chunk ?? target.subarray(0, bytes);
      if (bytes > 0 && !result.chunk) this.#adapt(bytes, target.byteLength);
      return;
    }
    this.#ended = true;
    if (!isPeerGone(error)) {
      this.#heldError = this.#failure(result);
    }
    void this.#release();
  }

  /**
   * `readInto`'s reads grow as the stream's do (`#nextReadSize`), whatever `p`'s size, where
   * each read is a call into the system (a named pipe's `ReadFile`; under Wine, a trip through
   * the wineserver): what `p` has no room for is kept, so one large read serves many calls. The
   * kept bytes are a view of the old buffer, which lives as long as they do. Not where the
   * channel reads ahead into memory of its own (a Unix socket's `takeChunk`): there a read is a
   * copy, and a larger buffer only copies through more memory (measured in Deno on Linux: 64 KiB
   * and 1 MiB reads 0.43× and 0.55× of `Deno.connect` with growth, 0.57× and 0.61× without;
   * under Wine, growth took 1 MiB reads from 230 to 427 MB/s).
   */
  #adapt(bytes: number, size: number): void {
    if (this.#channel.takeChunk) return;
    const next = this.#nextReadSize(bytes, size);
    if (next !== size) this.#buffer = new Uint8Array(new ArrayBuffer(next));
  }

  /** Settles the current `readInto` call; the next one waiting becomes the current. */
  #next(n: number | null | undefined, error?: unknown): void {
    const job = this.#job!;
    this.#job = this.#jobs.shift();
    if (error !== undefined) job.reject(error);
    else job.resolve(n!);
  }

  /** @internal A reader over any channel: a connection's share of its pipe, or a test's fake. */
  static overChannel(channel: ReadChannel, settings: ReaderSettings): PipeReader {
    return new PipeReader(CONSTRUCT, channel, readBuffer(settings), settings);
  }
}

/** The read buffer: memory that never moves (a `new ArrayBuffer`), as the kernel writes to it. */
function readBuffer(settings: ReaderSettings): Uint8Array {
  return new Uint8Array(new ArrayBuffer(settings.readSize));
}

/** One `readInto` call: where its bytes go, and how it is settled. */
interface ReadJob {
  p: Uint8Array;
  resolve(n: number | null): void;
  reject(e: unknown): void;
  /** It gave the event loop a turn already: the next read starts without asking again. */
  turned: boolean;
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
