/**
 * The completion path: a pipe handle bound to the Win32 thread pool with `CreateThreadpoolIo`,
 * and the overlapped operations started on it. One process-wide thread-safe callback receives
 * every completion (`IoResult` and the byte count arrive as arguments, so no `GetLastError` hop
 * across threads) and hands it to the JS thread, where it is dispatched by context and OVERLAPPED
 * address.
 *
 * Lifetimes (see README "Design"):
 * - an operation's OVERLAPPED, event and data stay referenced from `#pending` until its
 *   completion callback has run in JS, whatever happened meanwhile (cancel, stop, close, a
 *   synchronous wait, a handle closed early);
 * - `release()` runs only when nothing is owed, and then once, in the order `CloseThreadpoolIo`
 *   asks for: close the (owned) file handle, wait for the pool's callbacks, close the pool
 *   object, then the events;
 * - a handle that is not owned stays open, and stays bound to the pool's completion port for
 *   good (Windows has no unbinding): see README "Handles you own".
 *
 * @module
 */
import {
  type Kernel32,
  type Native,
  type NativeCallback,
  OVERLAPPED_HEVENT,
  OVERLAPPED_SIZE,
} from "../ffi/kernel32.ts";
import type { IoFailure, IoResult, ReadChannel, WriteChannel } from "./channel.ts";
import { failureCode, isPeerGone, lastError, PipeError, Win32 } from "./errors.ts";
import { requireNative } from "./native.ts";
import { checkHandle } from "./options.ts";
import { securityAttributes } from "./security.ts";

const FILE_TYPE_UNKNOWN = 0;
const FILE_TYPE_PIPE = 3;
const FILE_TYPE_NAMES: Record<number, string> = {
  1: "a disk file",
  2: "a character device",
  0x8000: "a remote file",
};
const WAIT_TIMEOUT = 258;
const INFINITE = 0xffff_ffff;
/** winpipe's name for each overlapped call, for a failure where the call was never made. */
const OPERATIONS: Record<string, string> = {
  WriteFile: "write",
  ReadFile: "read",
  ConnectNamedPipe: "accept",
};
/** OVERLAPPED.Internal holds STATUS_PENDING while the I/O is in flight. */
const STATUS_PENDING = 0x103n;

/** One overlapped operation slot: an OVERLAPPED and its event, reused after completion. */
export class Operation {
  /** OVERLAPPED in memory that never moves (a `new ArrayBuffer`), and its address. */
  readonly overlapped: Uint8Array = new Uint8Array(new ArrayBuffer(OVERLAPPED_SIZE));
  readonly address: bigint;
  readonly event: bigint;
  /** The data the kernel reads or writes; referenced until completion. */
  data: Uint8Array | null = null;
  onComplete: ((r: IoResult) => void) | null = null;
  /** Its result was already taken synchronously (GetOverlappedResultEx); ignore the callback. */
  consumed = false;

  constructor(nat: Native, event: bigint) {
    this.address = nat.addressOf(this.overlapped);
    this.event = event;
  }

  reset(): void {
    // Internal, InternalHigh, Offset, OffsetHigh = 0; hEvent kept (each call resets the event).
    this.overlapped.fill(0, 0, OVERLAPPED_HEVENT);
    new DataView(this.overlapped.buffer).setBigUint64(OVERLAPPED_HEVENT, this.event, true);
    this.consumed = false;
  }

  /** True while the kernel has not completed it (OVERLAPPED.Internal is STATUS_PENDING). */
  get inFlight(): boolean {
    return new DataView(this.overlapped.buffer).getBigUint64(0, true) === STATUS_PENDING;
  }
}

/**
 * The callback generation: one thread-safe callback shared by every bound pipe, made when the
 * first pipe is bound and closed when the last one has closed its pool object (after waiting for
 * its callbacks), so that no pool object can ever call a closed callback (Bun crashes if one
 * does). While it lives, the process stays alive, as with an open socket.
 */
let callback: NativeCallback | undefined;
let boundPipes = 0;
const targets = new Map<bigint, OverlappedPipe>();
let nextId = 1n;

function acquireCallback(nat: Native): NativeCallback {
  callback ??= nat.threadSafeIoCallback((context, overlapped, ioResult, bytes) => {
    // Nothing may be thrown out of a native callback (Deno: "Illegal unhandled exception in
    // nonblocking callback"). Owners turn their own failures into errors; this is the backstop.
    try {
      targets.get(context)?.completed(overlapped, ioResult, bytes);
    } catch (e) {
      reportLater(e);
    }
  });
  boundPipes++;
  return callback;
}

function releaseCallback(): void {
  if (--boundPipes === 0 && callback) {
    callback.close();
    callback = undefined;
  }
}

/** An internal error that no owner caught: raised on a later turn, outside the native callback. */
function reportLater(e: unknown): void {
  setTimeout(() => {
    throw e;
  }, 0);
}

/** What {@link OverlappedPipe.bind} takes. */
export interface BindOptions {
  /** Close the handle on release (and if binding fails). */
  owned: boolean;
  /** The pipe's name, for error messages. */
  path?: string;
}

/** A pipe handle bound to the thread pool. */
export class OverlappedPipe {
  readonly path: string | undefined;
  /**
   * Called just before an owned handle is closed, whatever closes it (release, or an abort
   * after a failed `CancelIoEx`): the server creates its next instance there, so that the pipe
   * name always has an instance of ours.
   */
  onHandleClosing: (() => void) | undefined;
  readonly #nat: Native;
  readonly #k32: Kernel32;
  readonly #owned: boolean;
  readonly #id: bigint;
  readonly #callback: NativeCallback;
  #handle: bigint | null = null;
  #io: bigint | null = null;
  #pending = new Map<bigint, Operation>();
  #free: Operation[] = [];
  #events: bigint[] = [];
  #releasing: Promise<void> | undefined;
  #releaseNow: (() => void) | undefined;
  #tornDown = false;
  /** Users sharing the handle (a connection's reader and writer); the last release frees it. */
  #users = 1;

  private constructor(nat: Native, handle: bigint, options: BindOptions) {
    this.#nat = nat;
    this.#k32 = nat.kernel32;
    this.#owned = options.owned;
    this.path = options.path;
    this.#handle = handle;
    this.#id = nextId++;
    this.#callback = acquireCallback(nat);
  }

  /**
   * Binds `handle` (opened with FILE_FLAG_OVERLAPPED) to the thread pool and makes its first
   * operation slot. Either everything succeeds, or everything made here is released (and an
   * owned handle closed) before the PipeError is thrown.
   */
  static bind(handle: bigint, options: BindOptions): OverlappedPipe {
    checkHandle(handle, "bind");
    const nat = requireNative();
    const pipe = new OverlappedPipe(nat, handle, options);
    try {
      pipe.#bind();
      return pipe;
    } catch (e) {
      pipe.#teardown();
      throw e;
    }
  }

  #bind(): void {
    const k = this.#k32;
    const handle = this.#handle!;
    const type = k.GetFileType(handle);
    if (type !== FILE_TYPE_PIPE) {
      // GetLastError means something only when GetFileType says UNKNOWN; after DISK or CHAR it
      // is whatever an earlier call left there.
      const code = type === FILE_TYPE_UNKNOWN ? k.GetLastError() : 0;
      throw new PipeError({
        code: code || Win32.ERROR_INVALID_HANDLE,
        syscall: "GetFileType",
        path: this.path,
        detail: code
          ? "the handle cannot be used"
          : `the handle is ${FILE_TYPE_NAMES[type] ?? `of type ${type}`}, not a pipe`,
      });
    }
    const io = k.CreateThreadpoolIo(handle, this.#callback.address, this.#id, 0n);
    if (io === 0n) {
      const code = failureCode(k.GetLastError());
      throw new PipeError({
        code,
        syscall: "CreateThreadpoolIo",
        path: this.path,
        // A handle is associated with one completion port for good (CreateIoCompletionPort).
        detail: code === Win32.ERROR_INVALID_PARAMETER
          ? "the handle is already bound to a completion port (a handle can be bound once)"
          : undefined,
      });
    }
    this.#io = io;
    this.#free.push(this.#newOperation());
    targets.set(this.#id, this);
  }

  #newOperation(): Operation {
    // Unnamed, manual-reset, never inheritable: it only lets a synchronous wait single out one
    // operation (GetOverlappedResultEx waits on hEvent).
    const event = this.#k32.CreateEventW(securityAttributes(), 1, 0, null);
    if (event === 0n) throw lastError(this.#k32, { syscall: "CreateEventW", path: this.path });
    this.#events.push(event);
    return new Operation(this.#nat, event);
  }

  /** The handle, or null once closed (or forgotten, when not owned). */
  get handle(): bigint | null {
    return this.#handle;
  }

  /** Operations whose completion has not been observed yet. */
  get pendingOperations(): number {
    return this.#pending.size;
  }

  /**
   * Starts an overlapped call named `syscall`. `call(handle, overlappedAddress)` makes it
   * (WriteFile, ReadFile, ConnectNamedPipe) and returns its BOOL. Returns the started operation,
   * or the failure (then no completion will come).
   */
  start(
    syscall: string,
    call: (handle: bigint, overlapped: bigint) => number,
    data: Uint8Array | null,
    onComplete: (r: IoResult) => void,
  ): Operation | IoFailure {
    if (this.#handle === null || this.#io === null || this.#releasing) {
      // No call was made: name the operation, not a system call that never ran.
      return {
        error: Win32.ERROR_INVALID_HANDLE,
        syscall: OPERATIONS[syscall] ?? syscall,
        detail: "the pipe handle was already closed",
      };
    }
    let op: Operation;
    try {
      op = this.#free.pop() ?? this.#newOperation();
    } catch (e) {
      const error = e as PipeError;
      return { error: error.code, syscall: error.syscall };
    }
    op.reset();
    op.data = data;
    op.onComplete = onComplete;
    const k = this.#k32;
    const io = this.#io;
    k.StartThreadpoolIo(io);
    let ok: number;
    try {
      ok = call(this.#handle, op.address);
    } catch (e) {
      // Thrown before the call was made (an FFI argument): no completion will come either.
      k.CancelThreadpoolIo(io);
      op.data = null;
      op.onComplete = null;
      this.#free.push(op);
      throw e;
    }
    if (!ok) {
      const code = k.GetLastError();
      // ERROR_MORE_DATA (a message longer than the read) is a warning status: the read has
      // completed with data, and its completion is queued like a success's.
      if (code !== Win32.ERROR_IO_PENDING && code !== Win32.ERROR_MORE_DATA) {
        // No completion will be queued: the pool must be told, or it waits for one forever.
        k.CancelThreadpoolIo(io);
        op.data = null;
        op.onComplete = null;
        this.#free.push(op);
        return code === 0
          ? {
            error: Win32.ERROR_UNIDENTIFIED_ERROR,
            syscall,
            detail: "the call failed but GetLastError() read 0",
          }
          : { error: code, syscall };
      }
    }
    // Synchronous success still queues a completion (no FILE_SKIP_COMPLETION_PORT_ON_SUCCESS).
    this.#pending.set(op.address, op);
    this.#callback.owe();
    return op;
  }

  /** CancelIoEx on one operation: 0, or the Win32 code (ERROR_NOT_FOUND: already complete). */
  cancel(op: Operation): number {
    if (!this.#pending.has(op.address)) return Win32.ERROR_NOT_FOUND;
    if (this.#handle === null) return Win32.ERROR_INVALID_HANDLE;
    return this.#k32.CancelIoEx(this.#handle, op.address)
      ? 0
      : failureCode(this.#k32.GetLastError());
  }

  /**
   * GetOverlappedResultEx with a timeout (`Infinity`: none): the result, or undefined if still
   * pending. A failure of the wait itself is told apart from the operation's own failure by
   * OVERLAPPED.Internal, and reported as `GetOverlappedResultEx`'s.
   */
  wait(op: Operation, timeoutMs: number): IoResult | undefined {
    if (op.consumed || !this.#pending.has(op.address) || this.#handle === null) return undefined;
    const ms = timeoutMs === Infinity ? INFINITE : Math.min(Math.ceil(timeoutMs), INFINITE - 1);
    const bytes = new Uint32Array(1);
    const ok = this.#k32.GetOverlappedResultEx(this.#handle, op.address, bytes, ms, 0);
    const code = ok ? 0 : this.#k32.GetLastError();
    if (code === WAIT_TIMEOUT || code === Win32.ERROR_IO_INCOMPLETE) return undefined;
    // Taken: the pool's callback still comes (the memory stays referenced until it does), and
    // is then ignored.
    op.consumed = true;
    if (ok) return { error: 0, bytes: bytes[0] };
    if (op.inFlight) {
      return { error: failureCode(code), bytes: 0, syscall: "GetOverlappedResultEx" };
    }
    return { error: failureCode(code), bytes: bytes[0] };
  }

  /** Called on the JS thread by the process-wide callback. */
  completed(overlapped: bigint, ioResult: number, bytes: number): void {
    const op = this.#pending.get(overlapped);
    if (!op) return;
    this.#pending.delete(overlapped);
    this.#callback.paid();
    const { onComplete, consumed } = op;
    op.data = null;
    op.onComplete = null;
    this.#free.push(op);
    try {
      if (!consumed) onComplete?.({ error: ioResult, bytes });
    } finally {
      if (this.#pending.size === 0) this.#releaseNow?.();
    }
  }

  /** Closes an owned handle now, to end pending I/O when CancelIoEx failed. */
  abortHandle(): boolean {
    if (!this.#owned || this.#handle === null) return false;
    this.#closeHandle();
    return true;
  }

  /** One more user of the handle: each user calls release() once. */
  retain(): this {
    if (this.#releasing) throw new Error("OverlappedPipe.retain() after release");
    this.#users++;
    return this;
  }

  /**
   * One user is done. The last one releases the handle (if owned), the pool object and the
   * events, once every owed completion has arrived. Never blocks the JS thread.
   */
  release(): Promise<void> {
    if (this.#releasing) return this.#releasing;
    if (--this.#users > 0) return Promise.resolve();
    this.#releasing = new Promise<void>((resolve) => {
      this.#releaseNow = () => {
        this.#releaseNow = undefined;
        targets.delete(this.#id);
        // CloseThreadpoolIo's rule: close the file handle and let outstanding I/O finish first
        // (nothing is owed here), then wait for callbacks, then close the pool object.
        if (this.#owned) this.#closeHandle();
        const io = this.#io;
        if (io === null) {
          this.#teardown();
          return resolve();
        }
        // A pool thread may still be returning from the last callback.
        this.#nat.waitForThreadpoolIoCallbacks(io).finally(() => {
          this.#teardown();
          resolve();
        });
      };
      if (this.#pending.size === 0) this.#releaseNow();
    });
    return this.#releasing;
  }

  /** Frees what is left; once. The handle, if owned, is closed first. */
  #teardown(): void {
    if (this.#tornDown) return;
    this.#tornDown = true;
    const k = this.#k32;
    targets.delete(this.#id);
    if (this.#owned) this.#closeHandle();
    this.#handle = null;
    if (this.#io !== null) {
      k.CloseThreadpoolIo(this.#io);
      this.#io = null;
    }
    for (const e of this.#events.splice(0)) k.CloseHandle(e);
    this.#free = [];
    releaseCallback();
  }

  #closeHandle(): void {
    const h = this.#handle;
    if (h === null) return;
    this.#handle = null; // before anything else: a handle is closed at most once
    try {
      this.onHandleClosing?.();
    } catch (e) {
      reportLater(e);
    } finally {
      this.#k32.CloseHandle(h);
    }
  }

  /** `PeekNamedPipe`: bytes waiting to be read now; 0 once closed or when the peer has gone. */
  available(): number {
    const handle = this.#handle;
    if (handle === null) return 0;
    const total = new Uint32Array(1);
    if (this.#k32.PeekNamedPipe(handle, null, 0, null, total, null)) return total[0];
    const code = this.#k32.GetLastError();
    if (isPeerGone(code)) return 0;
    throw new PipeError({ code: failureCode(code), syscall: "PeekNamedPipe", path: this.path });
  }

  /** This pipe as the writer's one-write-at-a-time channel. */
  writeChannel(): WriteChannel {
    const k = this.#k32;
    const nat = this.#nat;
    const share = new Share(this);
    return {
      path: this.path,
      startWrite: (bytes, onComplete) =>
        share.start(
          "WriteFile",
          (h, ov) => k.WriteFile(h, nat.addressOf(bytes), bytes.byteLength, null, ov),
          bytes,
          onComplete,
        ),
      cancelWrite: () => share.cancel(),
      waitWrite: (timeoutMs) => share.wait(timeoutMs),
      abortHandle: () => this.abortHandle(),
      release: () => share.release(),
    };
  }

  /** This pipe as the reader's one-read-at-a-time channel. */
  readChannel(): ReadChannel {
    const k = this.#k32;
    const nat = this.#nat;
    const share = new Share(this);
    return {
      path: this.path,
      startRead: (buffer, onComplete) =>
        share.start(
          "ReadFile",
          (h, ov) => k.ReadFile(h, nat.addressOf(buffer), buffer.byteLength, null, ov),
          buffer,
          onComplete,
        ),
      cancelRead: () => share.cancel(),
      available: () => this.available(),
      abortHandle: () => this.abortHandle(),
      release: () => share.release(),
    };
  }
}

/**
 * One user's share of a pipe, with one operation of its own at a time (the writer's writes, or
 * the reader's reads). Its release waits for its own operation, then releases its use of the
 * pipe; the pipe itself waits for every user's.
 */
class Share {
  current: Operation | null = null;
  #idle: (() => void) | undefined;
  #released: Promise<void> | undefined;

  constructor(readonly pipe: OverlappedPipe) {}

  start(
    syscall: string,
    call: (handle: bigint, overlapped: bigint) => number,
    data: Uint8Array,
    onComplete: (r: IoResult) => void,
  ): IoFailure | undefined {
    if (this.#released) {
      return {
        error: Win32.ERROR_INVALID_HANDLE,
        syscall: OPERATIONS[syscall] ?? syscall,
        detail: "this end was already released",
      };
    }
    const r = this.pipe.start(syscall, call, data, (result) => {
      this.current = null;
      try {
        onComplete(result);
      } finally {
        if (!this.current) this.#idle?.();
      }
    });
    if (!(r instanceof Operation)) return r;
    this.current = r;
    return undefined;
  }

  cancel(): number {
    return this.current ? this.pipe.cancel(this.current) : Win32.ERROR_NOT_FOUND;
  }

  wait(timeoutMs: number): IoResult | undefined {
    if (!this.current) return undefined;
    const r = this.pipe.wait(this.current, timeoutMs);
    if (r) this.current = null;
    return r;
  }

  release(): Promise<void> {
    this.#released ??= (async () => {
      if (this.current) await new Promise<void>((r) => (this.#idle = r));
      await this.pipe.release();
    })();
    return this.#released;
  }
}
