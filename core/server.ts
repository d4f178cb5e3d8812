/**
 * `listen()` and `PipeServer`: the one correct named-pipe server loop, secure by default.
 *
 * One instance is always listening: when a client connects, the next instance is created before
 * the connected one is handed out, so a client never sees `ERROR_FILE_NOT_FOUND` from a live
 * server.
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
import { type ConnectOptions, PipeConnection } from "./connection.ts";
import { PipeError, Win32 } from "./errors.ts";
import { validatePipeName } from "./names.ts";
import { requireNative } from "./native.ts";
import { type Operation, OverlappedPipe } from "./overlapped.ts";
import { securityAttributes } from "./security.ts";
import { type PipeSecurity, sddlFor, securityDescriptor } from "./security_descriptor.ts";

/** Options for {@link listen}. */
export interface ListenOptions extends Pick<ConnectOptions, "highWaterMark" | "readSize"> {
  /** Most instances at once (1-255). Default 255 (`PIPE_UNLIMITED_INSTANCES`). */
  maxInstances?: number;
  /** Input buffer size advised to Windows. Default 64 KiB. */
  inBufferSize?: number;
  /** Output buffer size advised to Windows. Default 64 KiB. */
  outBufferSize?: number;
  /** A message pipe: one write is one message, reads yield whole messages. Default false. */
  messageMode?: boolean;
  /** `PIPE_REJECT_REMOTE_CLIENTS`. Default true. */
  rejectRemoteClients?: boolean;
  /** "user" (default: this user, SYSTEM, Administrators), "default", or an SDDL string. */
  security?: PipeSecurity;
  /**
   * `FILE_FLAG_FIRST_PIPE_INSTANCE` on the first instance: if the name exists already (another
   * process squatting it), `listen` throws instead of joining it. Default true.
   */
  firstInstance?: boolean;
}

const CONSTRUCT = Symbol("PipeServer.construct");
/** How soon to try again for a listening instance when all maxInstances are connected. */
const RELISTEN_MS = 25;

/**
 * A named-pipe server: an `AsyncIterable` of {@link PipeConnection}s.
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
  readonly #options: ListenOptions;
  readonly #sd: { address: bigint; free(): void };
  #listening: { pipe: OverlappedPipe; op: Operation | null } | null = null;
  #ready: PipeConnection[] = [];
  #waiters: { resolve(c: PipeConnection | null): void; reject(e: unknown): void }[] = [];
  #error: PipeError | null = null;
  #closing = false;
  #closed: Promise<void> | undefined;
  #idle: (() => void) | undefined;
  #retry: ReturnType<typeof setTimeout> | undefined;

  /**
   * Not public: use {@link listen}.
   * @ignore
   */
  constructor(token: unknown, name: string, options: ListenOptions) {
    if (token !== CONSTRUCT) throw new TypeError("use listen() to make a PipeServer");
    this.path = name;
    this.#options = options;
    this.#wide = validatePipeName(name);
    if (!/^\\\\[.?]\\/.test(name)) throw new TypeError("a server pipe name must be local");
    if (options.firstInstance !== false) this.#refuseIfTaken();
    this.#sd = securityDescriptor(sddlFor(options.security ?? "user"));
    try {
      this.#listen(options.firstInstance !== false);
    } catch (e) {
      this.#sd.free();
      throw e;
    }
  }

  /**
   * FILE_FLAG_FIRST_PIPE_INSTANCE is the guarantee on Windows; Wine ignores it (measured here),
   * so the name is also probed first: WaitNamedPipeW(NMPWAIT_NOWAIT) answers at once, and only
   * a missing pipe says ERROR_FILE_NOT_FOUND.
   */
  #refuseIfTaken(): void {
    const { kernel32 } = requireNative();
    const NMPWAIT_NOWAIT = 1;
    const exists = kernel32.WaitNamedPipeW(this.#wide, NMPWAIT_NOWAIT) !== 0
      || kernel32.GetLastError() !== Win32.ERROR_FILE_NOT_FOUND;
    if (exists) {
      throw new PipeError({
        code: Win32.ERROR_ACCESS_DENIED,
        syscall: "CreateNamedPipeW",
        path: this.path,
        detail: "the pipe name is already in use (EADDRINUSE): another server owns it",
      });
    }
  }

  #createInstance(first: boolean): bigint {
    const { kernel32 } = requireNative();
    const o = this.#options;
    const message = o.messageMode === true;
    const handle = kernel32.CreateNamedPipeW(
      this.#wide,
      PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED | (first ? FILE_FLAG_FIRST_PIPE_INSTANCE : 0),
      (message ? PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE : PIPE_TYPE_BYTE) | PIPE_WAIT
        | (o.rejectRemoteClients === false ? 0 : PIPE_REJECT_REMOTE_CLIENTS),
      o.maxInstances ?? PIPE_UNLIMITED_INSTANCES,
      o.outBufferSize ?? 64 * 1024,
      o.inBufferSize ?? 64 * 1024,
      0,
      securityAttributes(this.#sd.address),
    );
    if (handle === INVALID_HANDLE_VALUE) {
      const code = kernel32.GetLastError();
      const squatted = first
        && (code === Win32.ERROR_ACCESS_DENIED || code === Win32.ERROR_PIPE_BUSY);
      throw new PipeError({
        code,
        syscall: "CreateNamedPipeW",
        path: this.path,
        detail: squatted
          ? "the pipe name is already in use (EADDRINUSE): another server owns it"
          : undefined,
      });
    }
    return handle;
  }

  /** Creates an instance and starts an overlapped ConnectNamedPipe on it. */
  #listen(first: boolean): void {
    const { kernel32 } = requireNative();
    const pipe = OverlappedPipe.bind(this.#createInstance(first), { owned: true, path: this.path });
    const slot: { pipe: OverlappedPipe; op: Operation | null } = { pipe, op: null };
    this.#listening = slot;
    const r = pipe.start((h, ov) => kernel32.ConnectNamedPipe(h, ov), null, ({ error }) => {
      slot.op = null;
      this.#connected(slot, error);
    });
    if (typeof r === "number") {
      // ERROR_PIPE_CONNECTED: the client came between CreateNamedPipe and ConnectNamedPipe.
      queueMicrotask(() => this.#connected(slot, r === Win32.ERROR_PIPE_CONNECTED ? 0 : r));
    } else {
      slot.op = r;
    }
  }

  #connected(slot: { pipe: OverlappedPipe }, error: number): void {
    if (this.#listening === slot) this.#listening = null;
    if (this.#closing) {
      void slot.pipe.release().then(() => this.#idle?.());
      return;
    }
    if (error === Win32.ERROR_NO_DATA) {
      // The client came and went: this instance is spent; listen on a fresh one.
      void slot.pipe.release();
      this.#relisten();
      return;
    }
    if (error !== 0 && error !== Win32.ERROR_PIPE_CONNECTED) {
      void slot.pipe.release();
      this.#fail(new PipeError({ code: error, syscall: "ConnectNamedPipe", path: this.path }));
      return;
    }
    this.#relisten(); // before handing this one out: one instance always listens
    const conn = PipeConnection.wrap(slot.pipe, {
      side: "server",
      read: true,
      write: true,
      options: { ...this.#options },
      onReleased: () => {
        // All maxInstances were connected: take the freed slot now, not at the next retry, so
        // the name does not vanish between this close and a timer.
        if (this.#retry !== undefined && !this.#listening && !this.#closing) {
          clearTimeout(this.#retry);
          this.#retry = undefined;
          this.#relisten();
        }
      },
    });
    const waiter = this.#waiters.shift();
    if (waiter) waiter.resolve(conn);
    else this.#ready.push(conn);
  }

  #relisten(): void {
    if (this.#closing) return;
    try {
      this.#listen(false);
    } catch (e) {
      if (e instanceof PipeError && e.code === Win32.ERROR_PIPE_BUSY) {
        // maxInstances are all connected: listen again once one has been closed.
        this.#retry = setTimeout(() => {
          this.#retry = undefined;
          this.#relisten();
        }, RELISTEN_MS);
        return;
      }
      this.#fail(e as PipeError);
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

  /** Connections as they come, until the server is closed: `for await (const c of server)`. */
  async *[Symbol.asyncIterator](): AsyncIterator<PipeConnection> {
    for (let c; (c = await this.accept()) !== null;) yield c;
  }

  /**
   * Stops accepting: cancels the pending `ConnectNamedPipe`, waits for its completion, then
   * releases the listening instance and the security descriptor. Connections already handed out
   * stay open; connections not yet taken are closed. Idempotent.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#closing = true;
      clearTimeout(this.#retry);
      for (const w of this.#waiters.splice(0)) w.resolve(null);
      const slot = this.#listening;
      if (slot) {
        const done = new Promise<void>((r) => (this.#idle = r));
        if (slot.op) slot.pipe.cancel(slot.op);
        await done;
      }
      await Promise.all(this.#ready.splice(0).map((c) => c.close().catch(() => {})));
      this.#sd.free();
    })();
    return this.#closed;
  }

  /** `close()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** @internal */
  static create(name: string, options: ListenOptions): PipeServer {
    return new PipeServer(CONSTRUCT, name, options);
  }
}

/**
 * Listens on a named pipe. Secure by default: `PIPE_REJECT_REMOTE_CLIENTS`, a DACL for this
 * user, SYSTEM and Administrators only, and `FILE_FLAG_FIRST_PIPE_INSTANCE` so that nobody else
 * already owns the name.
 *
 * @throws {TypeError} for a bad or remote name or bad options.
 * @throws {PipeError} `ERROR_ACCESS_DENIED` ("already in use") if another server owns the name.
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
  if (options === null || typeof options !== "object") {
    throw new TypeError("listen(name, options): options must be an object");
  }
  const n = options.maxInstances;
  if (n !== undefined && (!Number.isInteger(n) || n < 1 || n > 255)) {
    throw new TypeError(`maxInstances must be a whole number from 1 to 255, got ${n}`);
  }
  for (const k of ["inBufferSize", "outBufferSize"] as const) {
    const v = options[k];
    if (v !== undefined && (!Number.isInteger(v) || v < 0 || v > 0xffff_ffff)) {
      throw new TypeError(`${k} must be a whole number of bytes, got ${v}`);
    }
  }
  return PipeServer.create(name, options);
}
