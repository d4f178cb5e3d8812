/**
 * `listen()` and `PipeServer`: the one correct named-pipe server loop, secure by default.
 *
 * The name is owned for the server's whole life: from the first instance (made with
 * `FILE_FLAG_FIRST_PIPE_INSTANCE`, and checked to be the only one) until `close()`, one of the
 * server's instances is always open. While there is room, one is listening: when a client
 * connects, the next instance is created before the connected one is handed out, so a client
 * never sees `ERROR_FILE_NOT_FOUND` from a live server. When every slot is taken and a
 * connection closes, the next instance is created just before that connection's handle is
 * closed (`OverlappedPipe.onHandleClosing`), so the name never lapses for another process to
 * take.
 *
 * @module
 */
import {
  FILE_FLAG_FIRST_PIPE_INSTANCE,
  FILE_FLAG_OVERLAPPED,
  INVALID_HANDLE_VALUE,
  PIPE_ACCESS_DUPLEX,
  PIPE_READMODE_MESSAGE,
  PIPE_REJECT_REMOTE_CLIENTS,
  PIPE_TYPE_BYTE,
  PIPE_TYPE_MESSAGE,
  PIPE_UNLIMITED_INSTANCES,
  PIPE_WAIT,
} from "../ffi/kernel32.ts";
import { isWindows } from "../ffi/runtime.ts";
import { listenSocket, type SocketListener } from "../posix/endpoint.ts";
import type { UnixSocket } from "../posix/socket.ts";
import { type IoResult, Operation, OverlappedPipe } from "../windows/completion/mod.ts";
import { requireNative } from "../windows/native.ts";
import { pipeLocalInformation } from "../windows/pipe_info.ts";
import { securityAttributes } from "../windows/security.ts";
import { type PipeSecurity, sddlFor, securityDescriptor } from "../windows/security_descriptor.ts";
import { type ConnectOptions, PipeConnection } from "./connection.ts";
import { asPipeError, failureCode, PipeError, Win32 } from "./errors.ts";
import {
  describe,
  type Endpoint,
  isLocalPipeName,
  resolveEndpoint,
  validatePipeName,
} from "./names.ts";
import {
  booleanOption,
  integerOption,
  optionsObject,
  type ReaderSettings,
  readerSettings,
  type WriterSettings,
  writerSettings,
} from "./options.ts";
import { CANCEL_WAIT_MS, settlesWithin } from "./timeouts.ts";

/** Options for {@link listen}. */
export interface ListenOptions
  extends Pick<ConnectOptions, "highWaterMark" | "readSize" | "closeTimeout">
{
  /**
   * Most connections at once (1-255; 255 means no limit). Default 255. The server enforces it
   * by listening only while fewer are connected: a client that comes when all are taken gets
   * `ERROR_PIPE_BUSY`, and `connect()` retries it until its timeout.
   */
  maxInstances?: number;
  /** Input buffer size advised to Windows. Default 64 KiB. */
  inBufferSize?: number;
  /** Output buffer size advised to Windows. Default 64 KiB. */
  outBufferSize?: number;
  /** A message pipe: one write is one message, reads yield whole messages. Default false. */
  messageMode?: boolean;
  /**
   * Linux and macOS: the socket file's permission bits. Default `0o600`, this user only. A bare
   * name's socket lives in a directory only this user can enter whatever its mode; to let others
   * in, give a full path in a directory they can reach and, say, `0o660`.
   */
  mode?: number;
  /** Linux: accept an abstract name (`@name`), which no file permission protects. Default false. */
  abstract?: boolean;
  /** `PIPE_REJECT_REMOTE_CLIENTS`. Default true. */
  rejectRemoteClients?: boolean;
  /** "user" (default: this user, SYSTEM, Administrators), "default", or an SDDL string. */
  security?: PipeSecurity;
  /**
   * Refuse a name that already exists (another process serving it): `FILE_FLAG_FIRST_PIPE_INSTANCE`
   * on the first instance, which is also checked to be the name's only instance. Default true.
   * With false, the server joins an existing pipe of that name.
   */
  firstInstance?: boolean;
}

/** The checked, normalised options of a server. */
interface ServerSettings {
  maxConnections: number;
  inBufferSize: number;
  outBufferSize: number;
  messageMode: boolean;
  rejectRemoteClients: boolean;
  security: PipeSecurity;
  firstInstance: boolean;
  reader: ReaderSettings;
  writer: WriterSettings;
}

const CONSTRUCT = Symbol("PipeServer.construct");
const IN_USE = "the pipe name is already in use (EADDRINUSE): another server owns it, or"
  + " connections of a closed server are still open (a name stays taken until its last instance"
  + " is closed)";

/** The instance waiting for a client, and its ConnectNamedPipe. */
interface Listener {
  pipe: OverlappedPipe;
  op: Operation | null;
}

/**
 * A named-pipe server: an `AsyncIterable` of {@link PipeConnection}s. Leaving a `for await`
 * over it closes it.
 *
 * @example The server loop
 * ```ts
 * import { listen } from "@winpipe/winpipe";
 *
 * await using server = listen(String.raw`\\.\pipe\my-app`);
 * for await (const conn of server) {
 *   (async () => {
 *     await conn.readable.pipeTo(conn.writable); // echo, then close
 *   })().catch(console.error);
 * }
 * ```
 */
export class PipeServer implements AsyncIterable<PipeConnection> {
  /** The pipe's name. */
  readonly path: string;
  readonly #wide: Uint16Array;
  readonly #settings: ServerSettings;
  readonly #sd: { address: bigint; free(): void };
  #listener: Listener | null = null;
  /** The server ends of connections not yet closed: their handles keep the name owned too. */
  readonly #connected = new Set<OverlappedPipe>();
  #ready: PipeConnection[] = [];
  #waiters: { resolve(c: PipeConnection | null): void; reject(e: unknown): void }[] = [];
  #error: PipeError | null = null;
  #closing = false;
  #closed: Promise<void> | undefined;
  #listenerGone: (() => void) | undefined;
  /** The listening Unix socket, on Linux and macOS. */
  #unix: SocketListener | undefined;
  /** False after unref(): the instance waiting for a client does not hold the process. */
  #held = true;
  #unixOpen = 0;

  /**
   * Not public: use {@link listen}.
   * @ignore
   */
  constructor(
    token: unknown,
    name: string,
    wide: Uint16Array,
    settings: ServerSettings,
    unix?: { endpoint: Endpoint; mode: number },
  ) {
    if (token !== CONSTRUCT) throw new TypeError("use listen() to make a PipeServer");
    this.path = name;
    this.#wide = wide;
    this.#settings = settings;
    if (unix) {
      this.#sd = { address: 0n, free() {} };
      this.#unix = listenSocket(
        unix.endpoint,
        unix.mode,
        "listen()",
        (socket) => this.#unixConnection(socket),
        (e) => this.#fail(e),
      );
      this.#unix.ready.catch((e) => this.#fail(asPipeError(e, "listen", this.path)));
      return;
    }
    this.#sd = securityDescriptor(sddlFor(settings.security));
    try {
      this.#listen(settings.firstInstance);
    } catch (e) {
      this.#sd.free();
      throw e;
    }
  }

  #createInstance(first: boolean): bigint {
    const { kernel32 } = requireNative();
    const s = this.#settings;
    const handle = kernel32.CreateNamedPipeW(
      this.#wide,
      PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED | (first ? FILE_FLAG_FIRST_PIPE_INSTANCE : 0),
      (s.messageMode ? PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE : PIPE_TYPE_BYTE) | PIPE_WAIT
        | (s.rejectRemoteClients ? PIPE_REJECT_REMOTE_CLIENTS : 0),
      // maxInstances is enforced by the server, not by Windows, so that the next instance can
      // always be created before the last open one closes (see the module's comment).
      PIPE_UNLIMITED_INSTANCES,
      s.outBufferSize,
      s.inBufferSize,
      0,
      securityAttributes(this.#sd.address),
    );
    if (handle === INVALID_HANDLE_VALUE) {
      const code = failureCode(kernel32.GetLastError());
      const taken = first
        && (code === Win32.ERROR_ACCESS_DENIED || code === Win32.ERROR_PIPE_BUSY);
      throw new PipeError({
        errno: code,
        syscall: "CreateNamedPipeW",
        path: this.path,
        detail: taken ? IN_USE : undefined,
      });
    }
    if (first) {
      // Windows refuses with ERROR_ACCESS_DENIED above; Wine ignores the flag (measured), and
      // would have joined the other server's pipe. Either way, ours must be the only instance.
      const instances = pipeLocalInformation(handle)?.currentInstances;
      if (instances !== undefined && instances > 1) {
        kernel32.CloseHandle(handle);
        throw new PipeError({
          errno: Win32.ERROR_ACCESS_DENIED,
          syscall: "CreateNamedPipeW",
          path: this.path,
          detail: `${IN_USE} (the new instance joined ${instances - 1} that already existed)`,
        });
      }
    }
    return handle;
  }

  /** Creates an instance and starts an overlapped ConnectNamedPipe on it. */
  #listen(first: boolean): void {
    const { kernel32 } = requireNative();
    const pipe = OverlappedPipe.bind(this.#createInstance(first), { owned: true, path: this.path });
    if (!this.#held) pipe.unref();
    const listener: Listener = { pipe, op: null };
    let r;
    try {
      r = pipe.start("ConnectNamedPipe", (h, ov) => kernel32.ConnectNamedPipe(h, ov), null, (
        result,
      ) => {
        listener.op = null;
        this.#connectDone(listener, result);
      });
    } catch (e) {
      // Not started (no completion will come): the instance goes. Its closing hook is not set
      // yet, so this does not listen again from inside #listen.
      void pipe.release();
      throw e;
    }
    // Set once started: a completion (a callback or a microtask, always later) finds both.
    pipe.onHandleClosing = () => this.#instanceClosing(pipe);
    this.#listener = listener;
    if (r instanceof Operation) {
      listener.op = r;
    } else {
      // Connected at once, or ERROR_PIPE_CONNECTED: the client came between CreateNamedPipe and
      // ConnectNamedPipe.
      const result: IoResult = r.error === 0 || r.error === Win32.ERROR_PIPE_CONNECTED
        ? { error: 0, bytes: 0 }
        : { error: failureCode(r.error), bytes: 0, syscall: r.syscall };
      queueMicrotask(() => this.#connectDone(listener, result));
    }
  }

  /** A ConnectNamedPipe has ended. Never throws: a failure becomes the server's error. */
  #connectDone(listener: Listener, { error, syscall }: IoResult): void {
    const { pipe } = listener;
    if (this.#listener === listener) this.#listener = null;
    try {
      if (this.#closing || this.#error) {
        void pipe.release().then(() => this.#listenerGone?.());
        return;
      }
      if (error === Win32.ERROR_NO_DATA) {
        // The client came and went: this instance is spent. The next one first, then this one
        // goes, so the name always has an instance.
        this.#listenIfRoom();
        void pipe.release();
        return;
      }
      if (error !== 0 && error !== Win32.ERROR_PIPE_CONNECTED) {
        this.#fail(
          new PipeError({
            errno: failureCode(error),
            syscall: syscall ?? "ConnectNamedPipe",
            path: this.path,
          }),
        );
        void pipe.release();
        return;
      }
      this.#connected.add(pipe);
      pipe.ref(); // a connection holds the process, whatever its server does
      this.#listenIfRoom(); // before handing this one out: an instance listens while there is room
      const conn = PipeConnection.wrap(pipe, {
        side: "server",
        read: true,
        write: true,
        reader: this.#settings.reader,
        writer: this.#settings.writer,
      });
      this.#handOut(conn);
    } catch (e) {
      this.#fail(asPipeError(e, "ConnectNamedPipe", this.path));
      void pipe.release();
    }
  }

  /** A Unix socket accepted: a connection, or, past `maxInstances`, closed at once. */
  #unixConnection(socket: UnixSocket): void {
    if (this.#closing || this.#error || this.#unixOpen >= this.#settings.maxConnections) {
      void socket.readChannel().release();
      return;
    }
    this.#unixOpen++;
    socket.onClose = () => this.#unixOpen--;
    const conn = PipeConnection.wrap(socket, {
      side: "server",
      read: true,
      write: true,
      reader: this.#settings.reader,
      writer: this.#settings.writer,
    });
    this.#handOut(conn);
  }

  /** To the oldest accept() waiting, or into the queue for the next one. */
  #handOut(conn: PipeConnection): void {
    const waiter = this.#waiters.shift();
    if (waiter) waiter.resolve(conn);
    else this.#ready.push(conn);
  }

  /**
   * Lets the process exit while the server waits for connections (as `Deno.Listener.unref()`
   * and Node's `server.unref()`). The connections it hands out are ref'ed, as Node's are; unref
   * them one by one. On Windows the waiting instance's share of the completion callback is let
   * go; on Linux and macOS the runtime's listener is unref'ed.
   *
   * @example
   * ```ts
   * const server = listen("my-app");
   * server.unref(); // the process may end although the server is open
   * ```
   */
  unref(): void {
    this.#held = false;
    if (this.#unix) this.#unix.unref();
    else this.#listener?.pipe.unref();
  }

  /** Undoes {@link PipeServer.unref}: the server keeps the process alive again. */
  ref(): void {
    this.#held = true;
    if (this.#unix) this.#unix.ref();
    else this.#listener?.pipe.ref();
  }

  /** An instance's handle is about to be closed (it is still open). */
  #instanceClosing(pipe: OverlappedPipe): void {
    this.#connected.delete(pipe);
    if (this.#listener?.pipe === pipe) this.#listener = null;
    this.#listenIfRoom();
  }

  /** Starts listening on a new instance, unless one listens or every slot is taken. */
  #listenIfRoom(): void {
    if (this.#closing || this.#error || this.#listener) return;
    if (this.#connected.size >= this.#settings.maxConnections) return;
    try {
      // Not the first instance: one of ours is open (the caller's), so this joins our pipe.
      this.#listen(false);
    } catch (e) {
      this.#fail(asPipeError(e, "CreateNamedPipeW", this.path));
    }
  }

  #fail(error: PipeError): void {
    this.#error ??= error;
    for (const w of this.#waiters.splice(0)) w.reject(error);
  }

  /**
   * The next connection; `null` once the server is closed.
   *
   * @example
   * ```ts
   * import { listen } from "@winpipe/winpipe";
   * const server = listen("my-app");
   * const conn = await server.accept();
   * if (conn) conn.writer!.write("welcome\n");
   * ```
   *
   * @throws {PipeError} if listening failed (e.g. CreateNamedPipeW for the next instance).
   */
  accept(): Promise<PipeConnection | null> {
    const ready = this.#ready.shift();
    if (ready) return Promise.resolve(ready);
    if (this.#error) return Promise.reject(this.#error);
    if (this.#closing) return Promise.resolve(null);
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /**
   * Connections as they come, until the server is closed: `for await (const c of server)`.
   * Leaving the loop early (`break`, `return` or a throw) closes the server, as a
   * `Deno.Listener` does; connections already handed out stay open.
   */
  async *[Symbol.asyncIterator](): AsyncIterator<PipeConnection> {
    try {
      for (let c; (c = await this.accept()) !== null;) yield c;
    } finally {
      await this.close();
    }
  }

  /**
   * Stops accepting. On Linux and macOS: closes the listening socket, waits until the runtime has
   * let it go (Deno removes the socket file a tick later), and removes only our own socket file;
   * it never rejects. On Windows: cancels the pending `ConnectNamedPipe`, waits for its
   * completion, then releases the listening instance and the security descriptor. Connections already handed out
   * stay open; connections not yet taken are closed. Idempotent.
   *
   * If `CancelIoEx` fails, the listening handle is closed to end the `ConnectNamedPipe`, and
   * `close()` rejects with that error once everything is released. It never waits more than
   * 2 s for the cancelled operation: past that it rejects, and the instance's memory stays
   * referenced until the operation completes.
   *
   * @example
   * ```ts
   * const server = listen(String.raw`\\.\pipe\my-app`);
   * setTimeout(() => server.close(), 60_000); // the for-await loop below then ends
   * for await (const conn of server) await conn.close();
   * ```
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#closing = true;
      for (const w of this.#waiters.splice(0)) w.resolve(null);
      if (this.#unix) {
        await this.#unix.close();
        await Promise.all(this.#ready.splice(0).map((c) => c.close().catch(() => {})));
        return;
      }
      let problem: PipeError | undefined;
      const listener = this.#listener;
      if (listener) {
        const gone = new Promise<void>((r) => (this.#listenerGone = r));
        if (listener.op) {
          const code = listener.pipe.cancel(listener.op);
          if (code !== 0 && code !== Win32.ERROR_NOT_FOUND) {
            problem = new PipeError({ errno: code, syscall: "CancelIoEx", path: this.path });
            listener.pipe.abortHandle(); // closing the handle ends the ConnectNamedPipe
          }
        }
        if (!(await settlesWithin(gone, CANCEL_WAIT_MS))) {
          problem = new PipeError({
            errno: problem?.errno ?? Win32.ERROR_TIMEOUT,
            syscall: "CancelIoEx",
            path: this.path,
            detail: `the cancelled ConnectNamedPipe had not completed after ${CANCEL_WAIT_MS} ms; `
              + "its memory stays referenced until it does",
          });
        }
      }
      await Promise.all(this.#ready.splice(0).map((c) => c.close().catch(() => {})));
      this.#sd.free();
      if (problem) throw problem;
    })();
    return this.#closed;
  }

  /** `close()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** @internal */
  static create(name: string, wide: Uint16Array, settings: ServerSettings): PipeServer {
    return new PipeServer(CONSTRUCT, name, wide, settings);
  }

  /** @internal */
  static createUnix(endpoint: Endpoint, mode: number, settings: ServerSettings): PipeServer {
    return new PipeServer(CONSTRUCT, endpoint.path, new Uint16Array(0), settings, {
      endpoint,
      mode,
    });
  }
}

/**
 * Listens by name (a bare name means the same endpoint on every OS). Every option is checked
 * before any system call. The server lives until `close()`, or until a `for await` over it is
 * left. Secure by default:
 *
 * - Windows: a named pipe with `PIPE_REJECT_REMOTE_CLIENTS`, a DACL for this user, SYSTEM and
 *   Administrators only, and `FILE_FLAG_FIRST_PIPE_INSTANCE` so that nobody else already owns
 *   the name.
 * - Linux and macOS: a Unix socket, 0600 (`mode` widens it), a bare name's in a 0700 directory
 *   checked with `lstat`; a live server is never displaced, a stale socket file is replaced, and
 *   a path that is not a socket is never deleted. Telling a stale file from a live server can
 *   take a connect (asynchronous): then the server binds a moment later, and `accept()` rejects
 *   with `EADDRINUSE` if someone answered. See docs/unix.md.
 *
 * @throws {TypeError} for a bad or remote name or bad options (and, on Linux and macOS, an
 * option only Windows has).
 * @throws {PipeError} `ERROR_ACCESS_DENIED` ("already in use") on Windows, `EADDRINUSE`
 * elsewhere, if another server owns the name; `EACCES` for a private directory that is not.
 *
 * @example
 * ```ts
 * import { listen } from "@winpipe/winpipe";
 *
 * const server = listen(String.raw`\\.\pipe\my-app`, { maxInstances: 16 });
 * for await (const conn of server) {
 *   conn.writer!.write(`hello, process ${conn.peerProcessId}\n`);
 *   await conn.close();
 * }
 * ```
 */
export function listen(name: string, options: ListenOptions = {}): PipeServer {
  const where = "listen()";
  const o = optionsObject(options, where);
  if (!isWindows()) return listenUnix(name, o, where);
  if (typeof name === "string" && /^\\\\/.test(name) && !isLocalPipeName(name)) {
    throw new TypeError(
      `${where}: a server creates a local pipe, \\\\.\\pipe\\NAME; got ${JSON.stringify(name)}`,
    );
  }
  name = resolveEndpoint(name, {}, where).path;
  const wide = validatePipeName(name);
  const maxInstances = integerOption(o, "maxInstances", where, { min: 1, max: 255, fallback: 255 });
  const buffer = { min: 0, max: 0xffff_ffff, fallback: 64 * 1024, unit: "bytes" };
  const security = o.security ?? "user";
  if (typeof security !== "string" || security.length === 0) {
    throw new TypeError(
      `${where}: security must be "user", "default" or an SDDL string, got ${describe(security)}`,
    );
  }
  const settings: ServerSettings = {
    maxConnections: maxInstances === PIPE_UNLIMITED_INSTANCES ? Infinity : maxInstances,
    inBufferSize: integerOption(o, "inBufferSize", where, buffer),
    outBufferSize: integerOption(o, "outBufferSize", where, buffer),
    messageMode: booleanOption(o, "messageMode", where, false),
    rejectRemoteClients: booleanOption(o, "rejectRemoteClients", where, true),
    security,
    firstInstance: booleanOption(o, "firstInstance", where, true),
    reader: readerSettings(o, where),
    writer: writerSettings(o, where),
  };
  return PipeServer.create(name, wide, settings);
}

/**
 * Windows-only options, refused on Linux and macOS with a message that names them, except at the
 * values that mean what a Unix socket does anyway (so portable code may spell out the defaults).
 */
const WINDOWS_ONLY: Record<string, unknown> = {
  security: "user",
  rejectRemoteClients: true,
  firstInstance: true,
  inBufferSize: undefined,
  outBufferSize: undefined,
  messageMode: false,
};

function listenUnix(name: string, o: Record<string, unknown>, where: string): PipeServer {
  for (const [key, same] of Object.entries(WINDOWS_ONLY)) {
    if (o[key] !== undefined && o[key] !== same) {
      throw new TypeError(
        `${where}: the option ${key} is for Windows named pipes; a Unix socket has no such thing`
          + (key === "security" ? " (mode sets the socket file's permissions)" : ""),
      );
    }
  }
  const endpoint = resolveEndpoint(
    name,
    { abstract: booleanOption(o, "abstract", where, false) },
    where,
  );
  const mode = integerOption(o, "mode", where, { min: 0, max: 0o777, fallback: 0o600 });
  const maxInstances = integerOption(o, "maxInstances", where, { min: 1, max: 255, fallback: 255 });
  const settings: ServerSettings = {
    maxConnections: maxInstances === PIPE_UNLIMITED_INSTANCES ? Infinity : maxInstances,
    inBufferSize: 0,
    outBufferSize: 0,
    messageMode: false,
    rejectRemoteClients: true,
    security: "user",
    firstInstance: true,
    reader: readerSettings(o, where),
    writer: writerSettings(o, where),
  };
  return PipeServer.createUnix(endpoint, mode, settings);
}
