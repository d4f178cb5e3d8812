/**
 * `connect()` and `PipeConnection`: one pipe handle, read by a {@link PipeReader} and written by
 * a {@link PipeWriter} that share it (and its one thread-pool binding).
 *
 * @module
 */
import { PIPE_READMODE_MESSAGE } from "../ffi/kernel32.ts";
import { isWindows } from "../ffi/runtime.ts";
import { openUnix } from "../posix/open.ts";
import { OverlappedPipe } from "../windows/completion/mod.ts";
import { requireNative } from "../windows/native.ts";
import { type OpenAccess, type OpenOptions, openPipeHandle } from "../windows/open.ts";
import { processUserSid } from "../windows/owner.ts";
import type { ReadChannel, WriteChannel } from "./channel.ts";
import { lastError, PipeError, Win32 } from "./errors.ts";
import { describe, type EndpointOptions, resolveEndpoint } from "./names.ts";
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
  writerDrained,
  writerOverChannel,
} from "./writer.ts";

/** Options for {@link connect}. */
export interface ConnectOptions
  extends OpenOptions, PipeWriterOptions, PipeReaderOptions, Pick<EndpointOptions, "abstract">
{
  /**
   * Which ends to open. Default "duplex". Against a one-way server end, "duplex" falls back to
   * the one way the server allows, as libuv does.
   */
  access?: OpenAccess;
}

/**
 * What a connection is made over: a Windows pipe ({@link OverlappedPipe}) or a Unix socket.
 * @internal
 */
export interface Transport {
  readonly path: string | undefined;
  readonly handle: bigint | null;
  readChannel(): ReadChannel;
  writeChannel(): WriteChannel;
  retain(): void;
  ref(): void;
  unref(): void;
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
  /**
   * The other end's process id: `GetNamedPipeServerProcessId` / `GetNamedPipeClientProcessId`
   * on Windows. `undefined` on Linux and macOS: Deno and Bun give no access to the socket's
   * descriptor, which `SO_PEERCRED` / `LOCAL_PEERPID` need, and winpipe never guesses.
   */
  readonly peerProcessId: number | undefined;
  #closed: Promise<void> | undefined;
  #peerUser: { sid: string | undefined } | undefined;
  readonly #connectedAt = Date.now();
  readonly #pipe: Transport;
  #byob: ReadableStreamBYOBReader | undefined;
  /** `read(p)` reads with no stream in between (decided at its first call). */
  #direct: boolean | undefined;
  #scratch: ArrayBuffer | undefined;

  /**
   * Not public: use {@link connect} or a server's connections.
   * @ignore
   */
  constructor(token: unknown, pipe: Transport, init: ConnectionInit) {
    if (token !== CONSTRUCT) throw new TypeError("use connect() or listen() for a PipeConnection");
    this.path = pipe.path;
    this.side = init.side;
    this.#pipe = pipe;
    this.peerProcessId = pipe instanceof OverlappedPipe ? windowsPeer(pipe, init.side) : undefined;
    // Everything that can fail comes before retain(): nothing is half-made.
    this.reader = init.read ? PipeReader.overChannel(pipe.readChannel(), init.reader) : null;
    this.writer = init.write ? writerOverChannel(pipe.writeChannel(), init.writer) : null;
    if (this.reader && this.writer) pipe.retain(); // two users of one handle
  }

  /**
   * The other end's user, so that a server can authorize by user: on Windows its SID
   * (`"S-1-5-21-…"`), read from the peer process's token on first use, and `undefined` when
   * that process is gone or runs as a user whose token this one may not query (an elevated or
   * system process, for a normal user). `undefined` on Linux and macOS, for the reason
   * `peerProcessId` gives; there, a bare name's private directory already admits only your user.
   *
   * @example Log who connects
   * ```ts
   * import { listen } from "@winpipe/winpipe";
   *
   * await using server = listen("my-service");
   * for await (const conn of server) {
   *   console.log(`process ${conn.peerProcessId} runs as ${conn.peerUser ?? "(unknown)"}`);
   *   await conn.close();
   * }
   * ```
   */
  get peerUser(): string | undefined {
    if (this.#peerUser === undefined) {
      const pid = this.peerProcessId;
      this.#peerUser = {
        sid: pid !== undefined && this.#pipe instanceof OverlappedPipe
          ? processUserSid(pid, this.#connectedAt)
          : undefined,
      };
    }
    return this.#peerUser.sid;
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
          syscall: isWindows() ? "WriteFile" : "write",
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
   * import { connect } from "@winpipe/winpipe";
   * const conn = await connect("my-app");
   * conn.writer?.write("bye\n");
   * await conn.close({ timeout: 5_000 });
   * if (conn.writer?.error) console.warn(`${conn.writer.bytesToWrite} bytes not delivered`);
   * ```
   */
  close(options: CloseOptions = {}): Promise<void> {
    try {
      const o = optionsObject(options, "close()");
      if (o.timeout !== undefined) timeoutValue(o.timeout, "timeout", "close()");
    } catch (e) {
      return Promise.reject(e); // bad options close nothing
    }
    // The writer's close() is asked every time: a later call may shorten its bound.
    const flushed = this.writer?.close(options);
    flushed?.catch(() => {}); // awaited below, once
    this.#closed ??= (async () => {
      let error: unknown;
      try {
        await flushed;
      } catch (e) {
        if (!(e instanceof PipeError && e.peerGone)) error = e;
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

  /**
   * Reads into `p`, as `Deno.Conn.read` does: the count read, or `null` at the end. It waits until
   * bytes arrive, the peer closes, or this connection is closed (then `null`). Takes the
   * `readable`'s lock for good on first use: do not mix it with readers of `readable`. Without
   * read access, `null` (as `readable` is a stream that has ended). Calls made before an earlier
   * one has settled take their turns in order. Byte pipes only: on a message pipe, read
   * `readable`, whose chunks are whole messages. With no stream in between, it is the fastest
   * way to read in Deno (in Bun, `readable` hands chunks over without a copy).
   *
   * @example
   * ```ts
   * import { connect } from "@winpipe/winpipe";
   * const conn = await connect("my-app");
   * const buf = new Uint8Array(1024);
   * const n = await conn.read(buf); // null once the peer has closed
   * ```
   */
  read(p: Uint8Array): Promise<number | null> {
    if (!(p instanceof Uint8Array)) {
      return Promise.reject(new TypeError(`read(): p must be a Uint8Array, got ${describe(p)}`));
    }
    const reader = this.reader;
    if (!reader) return Promise.resolve(null); // as `readable`: no read access, no bytes
    if (p.byteLength === 0) return Promise.resolve(0);
    try {
      // No stream in between, unless it was used before (then it may hold bytes read ahead).
      this.#direct ??= reader.takeForReadInto();
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#direct ? reader.readInto(p) : this.#readThroughStream(p);
  }

  async #readThroughStream(p: Uint8Array): Promise<number | null> {
    this.#byob ??= this.readable.getReader({ mode: "byob" });
    // The view is transferred to the stream and comes back as `value`: its buffer serves the
    // next read too, so a loop of reads allocates nothing.
    const scratch = this.#scratch && this.#scratch.byteLength >= p.byteLength
      ? this.#scratch
      : new ArrayBuffer(p.byteLength);
    this.#scratch = undefined;
    const { value, done } = await this.#byob.read(new Uint8Array(scratch, 0, p.byteLength));
    if (value) this.#scratch = value.buffer as ArrayBuffer;
    if (done || !value) return null;
    p.set(value);
    return value.byteLength;
  }

  /**
   * Writes `p`, as `Deno.Conn.write` does, and resolves with its length once the writer is below
   * its high-water mark (all of `p` is queued, and written in order). Against a peer that does
   * not read it waits as long as the peer does not read, and no longer than the writer lives:
   * it rejects with the writer's error once the writer fails, is stopped, or `close()` gives up
   * (its `timeout`).
   *
   * @example
   * ```ts
   * import { connect } from "@winpipe/winpipe";
   * const conn = await connect("my-app");
   * await conn.write(new TextEncoder().encode("ping\n"));
   * ```
   */
  async write(p: Uint8Array): Promise<number> {
    if (!(p instanceof Uint8Array)) {
      throw new TypeError(`write(): p must be a Uint8Array, got ${describe(p)}`);
    }
    const writer = this.writer;
    if (!writer) {
      throw new PipeError({
        errno: Win32.ERROR_ACCESS_DENIED,
        syscall: "write",
        path: this.path,
        detail: "this connection was opened without write access",
      });
    }
    if (writer.error) throw writer.error;
    if (!writer.write(p)) await writerDrained(writer);
    return p.byteLength;
  }

  /**
   * Lets the process exit while this connection is open (as `Deno.Conn.unref()` and Node's
   * `socket.unref()`): its pending reads and writes no longer keep it alive. On Windows the
   * pipe's share of the process-wide completion callback is let go; on Linux and macOS the
   * runtime's socket is unref'ed. Without it, an open connection holds the process until it is
   * closed or its peer is seen gone (a read reached the end, or a write found the peer gone; on
   * Linux and macOS the runtime reads ahead and sees it by itself, while on Windows a connection
   * that is neither read nor closed holds the process).
   * One exception, Deno's own: on Linux and macOS a write still waiting for room (a peer that
   * does not read) holds the process all the same, because `Deno.Conn.unref()` covers reads
   * only; `close({ timeout })` or `writer.stop()` ends such a write.
   *
   * @example
   * ```ts
   * import { connect } from "@winpipe/winpipe";
   * const conn = await connect("my-app");
   * conn.unref(); // a background connection that must not hold the process
   * ```
   */
  unref(): void {
    this.#pipe.unref();
  }

  /** Undoes {@link PipeConnection.unref}. */
  ref(): void {
    this.#pipe.ref();
  }

  /** @internal */
  static wrap(pipe: Transport, init: ConnectionInit): PipeConnection {
    return new PipeConnection(CONSTRUCT, pipe, init);
  }
}

/**
 * Connects to a server by name (see {@link pipePath}: a bare name means the same endpoint on
 * every OS). On Windows a named pipe, secured like `PipeWriter.open`: `SECURITY_SQOS_PRESENT |
 * SECURITY_IDENTIFICATION`, local names only unless `allowRemote`. On Linux and macOS a Unix
 * socket, through the runtime's own client; a bare name's private directory is checked first.
 *
 * How long it waits: a busy server (`ERROR_PIPE_BUSY`, `EAGAIN`) and, with `wait: true`, a
 * server not there yet (`ERROR_FILE_NOT_FOUND`, `ENOENT`, `ECONNREFUSED`) are retried until
 * `timeout` (default 5 s) without blocking the JS thread; `signal` abandons it at once.
 *
 * @throws {TypeError} for a malformed or remote name, or bad options.
 * @throws {PipeError} `ERROR_FILE_NOT_FOUND` / `ENOENT`, `ERROR_PIPE_BUSY` after the timeout,
 * `ECONNREFUSED`, `EACCES` (a private directory that is not private, or `expectedOwner`), …
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
  if (!isWindows()) {
    return connectUnix(name, o, where, access, { open, reader, writer });
  }
  name = resolveEndpoint(name, open, where).path;
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

/** The peer's process id on Windows; 0 when the call fails. */
function windowsPeer(pipe: OverlappedPipe, side: PipeSide): number {
  const { kernel32 } = requireNative();
  const pid = new Uint32Array(1);
  const handle = pipe.handle!;
  const ok = side === "client"
    ? kernel32.GetNamedPipeServerProcessId(handle, pid)
    : kernel32.GetNamedPipeClientProcessId(handle, pid);
  return ok ? pid[0] : 0;
}

/** connect() on Linux and macOS: a Unix socket, through the runtime's own client. */
export async function connectUnix(
  name: string,
  o: Record<string, unknown>,
  where: string,
  access: OpenAccess,
  s: { open: ReturnType<typeof openSettings>; reader: ReaderSettings; writer: WriterSettings },
): Promise<PipeConnection> {
  const socket = await openUnix(name, o, s.open, where);
  return PipeConnection.wrap(socket, {
    side: "client",
    read: access !== "write",
    write: access !== "read",
    reader: s.reader,
    writer: s.writer,
  });
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
    const error = lastError(kernel32, { syscall: "SetNamedPipeHandleState", path });
    // A byte pipe cannot be read in message mode: say so, not only "the parameter is incorrect".
    if (error.errno !== Win32.ERROR_INVALID_PARAMETER) throw error;
    throw new PipeError({
      errno: error.errno,
      syscall: error.syscall,
      path,
      detail: "messageMode needs a message pipe, and the server made a byte pipe",
    });
  }
}
