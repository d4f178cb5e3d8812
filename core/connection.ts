/**
 * `connect()` and `PipeConnection`: one pipe handle, read by a {@link PipeReader} and written by
 * a {@link PipeWriter} that share it (and its one thread-pool binding).
 *
 * @module
 */
import { PIPE_READMODE_MESSAGE } from "../ffi/kernel32.ts";
import { OverlappedPipe } from "./completion/mod.ts";
import { isPeerGone, lastError, PipeError, Win32 } from "./errors.ts";
import { describe } from "./names.ts";
import { requireNative } from "./native.ts";
import { type OpenAccess, type OpenOptions, openPipeHandle } from "./open.ts";
import {
  openSettings,
  optionsObject,
  type ReaderSettings,
  readerSettings,
  timeoutValue,
  type WriterSettings,
  writerSettings,
} from "./options.ts";
import { PipeReader, type PipeReaderOptions } from "./reader.ts";
import {
  type CloseOptions,
  type PipeWriter,
  type PipeWriterOptions,
  writerOverChannel,
} from "./writer.ts";

/** Options for {@link connect}. */
export interface ConnectOptions extends OpenOptions, PipeWriterOptions, PipeReaderOptions {
  /**
   * Which ends to open. Default "duplex". Against a one-way server end, "duplex" falls back to
   * the one way the server allows, as libuv does.
   */
  access?: OpenAccess;
}

/** Which side of the pipe a connection is. */
export type PipeSide = "client" | "server";

const CONSTRUCT = Symbol("PipeConnection.construct");

/** How a connection is made (internal): which end, which ways, and the checked settings. */
export interface ConnectionInit {
  side: PipeSide;
  read: boolean;
  write: boolean;
  reader: ReaderSettings;
  writer: WriterSettings;
}

/**
 * A connected pipe: `readable` and `writable` over one handle. `close()` flushes what was
 * written, then releases everything; byte pipes have no half-close.
 *
 * @example
 * ```ts
 * import { connect } from "@winpipe/winpipe";
 *
 * await using conn = await connect(String.raw`\\.\pipe\my-app`);
 * const w = conn.writable.getWriter();
 * await w.write(new TextEncoder().encode("ping"));
 * const { value } = await conn.readable.getReader().read();
 * ```
 */
export class PipeConnection {
  /** The pipe's name. */
  readonly path: string | undefined;
  /** Which end this is. */
  readonly side: PipeSide;
  /** The reader, when the handle may be read. */
  readonly reader: PipeReader | null;
  /** The writer, when the handle may be written. */
  readonly writer: PipeWriter | null;
  /** The other end's process id (GetNamedPipeServerProcessId / GetNamedPipeClientProcessId). */
  readonly peerProcessId: number;
  #closed: Promise<void> | undefined;
  readonly #pipe: OverlappedPipe;

  /**
   * Not public: use {@link connect} or a server's connections.
   * @ignore
   */
  constructor(token: unknown, pipe: OverlappedPipe, init: ConnectionInit) {
    if (token !== CONSTRUCT) throw new TypeError("use connect() or listen() for a PipeConnection");
    this.path = pipe.path;
    this.side = init.side;
    this.#pipe = pipe;
    const { kernel32 } = requireNative();
    const pid = new Uint32Array(1);
    const handle = pipe.handle!;
    const ok = init.side === "client"
      ? kernel32.GetNamedPipeServerProcessId(handle, pid)
      : kernel32.GetNamedPipeClientProcessId(handle, pid);
    this.peerProcessId = ok ? pid[0] : 0;
    // Everything that can fail comes before retain(): nothing is half-made.
    this.reader = init.read ? PipeReader.overChannel(pipe.readChannel(), init.reader) : null;
    this.writer = init.write ? writerOverChannel(pipe.writeChannel(), init.writer) : null;
    if (this.reader && this.writer) pipe.retain(); // two users of one handle
  }

  /**
   * The raw pipe handle while the connection is open (null after), for calls winpipe does not
   * wrap, e.g. `ImpersonateNamedPipeClient`. Do not close it.
   */
  get handle(): bigint | null {
    return this.#pipe.handle;
  }

  /** The bytes that arrive. Without read access, a stream that is already closed. */
  get readable(): ReadableStream<Uint8Array> {
    return this.reader?.readable ?? new ReadableStream({ start: (c) => c.close() });
  }

  /** The writer's stream. Without write access, a stream whose writes fail. */
  get writable(): WritableStream<Uint8Array> {
    if (this.writer) return this.writer.writable;
    return new WritableStream({
      write: () => {
        throw new PipeError({
          errno: Win32.ERROR_ACCESS_DENIED,
          syscall: "WriteFile",
          path: this.path,
          detail: "this connection was opened without write access",
        });
      },
    });
  }

  /**
   * Flushes the writer (written bytes reach the pipe before the handle closes), stops reading,
   * and releases the handle once. Never calls `DisconnectNamedPipe`, which would discard what
   * the peer has not read yet. Idempotent: every call returns the same promise, and a later call
   * may shorten the bound (the earliest holds). Also `await using`.
   *
   * The contract, as Node's `socket.end()` and Deno's `conn.close()` have it:
   * - **A peer that has gone is not an error.** When the other end closed (`ERROR_NO_DATA`,
   *   `ERROR_BROKEN_PIPE`, `ERROR_PIPE_NOT_CONNECTED`), `close()` still resolves. What could not
   *   be delivered stays readable on the writer: `conn.writer.error` says why, and
   *   `conn.writer.bytesToWrite` how many bytes were not written.
   * - **It is bounded.** The flush waits at most `timeout` ms (default: the `closeTimeout` the
   *   connection was made with, 30 s unless set). Past it, a peer that is alive but not reading
   *   has its writes stopped, and `close()` rejects with a {@link PipeError} `ERROR_TIMEOUT`
   *   (also `conn.writer.error`). Cancelled operations add at most 2 s.
   * - **Only winpipe's own failures reject:** that timeout, a failed `CancelIoEx`, or a writer
   *   that failed for another reason than the peer leaving.
   *
   * @example
   * ```ts
   * conn.writer?.write("bye\n");
   * await conn.close({ timeout: 5_000 });
   * if (conn.writer?.error) console.warn(`${conn.writer.bytesToWrite} bytes not delivered`);
   * ```
   */
  close(options: CloseOptions = {}): Promise<void> {
    const o = optionsObject(options, "close()");
    if (o.timeout !== undefined) timeoutValue(o.timeout, "timeout", "close()");
    // The writer's close() is asked every time: a later call may shorten its bound.
    const flushed = this.writer?.close(options);
    flushed?.catch(() => {}); // awaited below, once
    this.#closed ??= (async () => {
      let error: unknown;
      try {
        await flushed;
      } catch (e) {
        if (!(e instanceof PipeError && isPeerGone(e.errno))) error = e;
      }
      try {
        await this.reader?.cancel();
      } catch (e) {
        error ??= e;
      }
      if (error) throw error;
    })();
    return this.#closed;
  }

  /** `close()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** @internal */
  static wrap(pipe: OverlappedPipe, init: ConnectionInit): PipeConnection {
    return new PipeConnection(CONSTRUCT, pipe, init);
  }
}

/**
 * Connects to a named pipe server, secured like `PipeWriter.open`: `SECURITY_SQOS_PRESENT |
 * SECURITY_IDENTIFICATION`, local names only unless `allowRemote`, `ERROR_PIPE_BUSY` retried
 * until `timeout` without blocking the JS thread, and an `AbortSignal`.
 *
 * @throws {TypeError} for a malformed or remote name, or bad options.
 * @throws {PipeError} `ERROR_FILE_NOT_FOUND`, `ERROR_PIPE_BUSY` after the timeout, …
 *
 * @example Discord RPC, Docker, your own service
 * ```ts
 * import { connect } from "@winpipe/winpipe";
 *
 * const conn = await connect(String.raw`\\.\pipe\docker_engine`, { timeout: 2_000 });
 * conn.writer!.write("GET /version HTTP/1.0\r\n\r\n");
 * console.log(await new Response(conn.readable).text());
 * await conn.close();
 * ```
 */
export async function connect(name: string, options: ConnectOptions = {}): Promise<PipeConnection> {
  const where = "connect()";
  const o = optionsObject(options, where);
  const access = o.access ?? "duplex";
  if (!isAccess(access)) {
    throw new TypeError(
      `${where}: access must be "duplex", "read" or "write", got ${describe(access)}`,
    );
  }
  // Every option is checked before the pipe is opened: nothing can fail after it but the FFI.
  const open = openSettings(o, where);
  const reader = readerSettings(o, where);
  const writer = writerSettings(o, where);
  let handle: bigint | undefined;
  let opened: OpenAccess = access;
  for (const attempt of access === "duplex" ? ["duplex", "read", "write"] as const : [access]) {
    try {
      handle = await openPipeHandle(name, attempt, open);
      opened = attempt;
      break;
    } catch (e) {
      // A one-way server end refuses the other direction: fall back as libuv does.
      const last = attempt === "write" || access !== "duplex";
      if (!(e instanceof PipeError) || e.errno !== Win32.ERROR_ACCESS_DENIED || last) throw e;
    }
  }
  const pipe = OverlappedPipe.bind(handle!, { owned: true, path: name });
  try {
    if (reader.messageMode && opened !== "write") setMessageReadMode(pipe, name);
    return PipeConnection.wrap(pipe, {
      side: "client",
      read: opened !== "write",
      write: opened !== "read",
      reader,
      writer,
    });
  } catch (e) {
    await pipe.release();
    throw e;
  }
}

function isAccess(v: unknown): v is OpenAccess {
  return v === "duplex" || v === "read" || v === "write";
}

/** `SetNamedPipeHandleState(PIPE_READMODE_MESSAGE)`: reads return whole messages. */
export function setMessageReadMode(pipe: OverlappedPipe, path: string | undefined): void {
  const { kernel32 } = requireNative();
  if (
    !kernel32.SetNamedPipeHandleState(
      pipe.handle!,
      new Uint32Array([PIPE_READMODE_MESSAGE]),
      null,
      null,
    )
  ) {
    throw lastError(kernel32, { syscall: "SetNamedPipeHandleState", path });
  }
}
