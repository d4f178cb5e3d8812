/**
 * A pipe handle bound to the Win32 thread pool (`CreateThreadpoolIo`), and the overlapped
 * operations started on it. The lifetime rules are in ./mod.ts.
 *
 * @module
 */
import type {
  IoFailure,
  IoResult,
  ReadChannel,
  Started,
  WriteChannel,
} from "../../core/channel.ts";
import {
  failureCode,
  isPeerGoneWin32 as isPeerGone,
  lastError,
  PipeError,
  Win32,
} from "../../core/errors.ts";
import { checkHandle } from "../../core/options.ts";
import {
  FILE_SKIP_COMPLETION_PORT_ON_SUCCESS,
  FILE_SKIP_SET_EVENT_ON_HANDLE,
  type Kernel32,
  type Native,
  type NativeCallback,
} from "../../ffi/kernel32.ts";
import { requireNative } from "../native.ts";
import { securityAttributes } from "../security.ts";
import { acquireCallback, hold, releaseCallback, reportLater, route, unroute } from "./dispatch.ts";
import { Operation } from "./operation.ts";

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
/** What {@link OverlappedPipe.bind} takes. */
export interface BindOptions {
  /** Close the handle on release (and if binding fails). */
  owned: boolean;
  /** The pipe's name, for error messages. */
  path?: string;
  /**
   * Complete at once what completes at once: `SetFileCompletionNotificationModes` with
   * FILE_SKIP_COMPLETION_PORT_ON_SUCCESS, so that a call that succeeds synchronously queues no
   * completion and its result is taken inline. Default: `owned` (the mode is the handle's for
   * good, and a caller's handle is not ours to change).
   */
  inline?: boolean;
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
  readonly #context: bigint;
  readonly #callback: NativeCallback;
  /** FILE_SKIP_COMPLETION_PORT_ON_SUCCESS is set: a synchronous success queues nothing. */
  #inline = false;
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
  /** Whether this pipe keeps the process alive (see unref()). */
  #held = true;
  /**
   * The peer was seen gone (a read or a write failed with it): nothing can come any more, so
   * the pipe no longer holds the process even while it stays open (as a Unix socket's does not
   * after its end, and a `Deno.Conn` with nothing pending does not).
   */
  #ended = false;

  private constructor(nat: Native, handle: bigint, options: BindOptions) {
    this.#nat = nat;
    this.#k32 = nat.kernel32;
    this.#owned = options.owned;
    this.path = options.path;
    this.#handle = handle;
    const { callback, context } = acquireCallback(nat);
    this.#callback = callback;
    this.#context = context;
  }

  /**
   * Binds `handle` (opened with FILE_FLAG_OVERLAPPED) to the thread pool and makes its first
   * operation slot. Either everything succeeds, or everything made here is released (and an
   * owned handle closed, once) before the error is thrown, including one from making the
   * process-wide completion callback.
   */
  static bind(handle: bigint, options: BindOptions): OverlappedPipe {
    checkHandle(handle, "bind");
    const nat = requireNative();
    let pipe: OverlappedPipe;
    try {
      pipe = new OverlappedPipe(nat, handle, options); // makes the process-wide callback if none
    } catch (e) {
      // Nothing was made: the handle is the only thing to let go of.
      if (options.owned) nat.kernel32.CloseHandle(handle);
      throw e;
    }
    try {
      pipe.#bind(options.inline ?? options.owned);
      return pipe;
    } catch (e) {
      pipe.#teardown();
      throw e;
    }
  }

  #bind(inline: boolean): void {
    const k = this.#k32;
    const handle = this.#handle!;
    const type = k.GetFileType(handle);
    if (type !== FILE_TYPE_PIPE) {
      // GetLastError means something only when GetFileType says UNKNOWN; after DISK or CHAR it
      // is whatever an earlier call left there.
      const code = type === FILE_TYPE_UNKNOWN ? k.GetLastError() : 0;
      throw new PipeError({
        errno: code || Win32.ERROR_INVALID_HANDLE,
        syscall: "GetFileType",
        path: this.path,
        detail: code
          ? "the handle cannot be used"
          : `the handle is ${FILE_TYPE_NAMES[type] ?? `of type ${type}`}, not a pipe`,
      });
    }
    const io = k.CreateThreadpoolIo(handle, this.#callback.address, this.#context, 0n);
    if (io === 0n) {
      const code = failureCode(k.GetLastError());
      throw new PipeError({
        errno: code,
        syscall: "CreateThreadpoolIo",
        path: this.path,
        // A handle is associated with one completion port for good (CreateIoCompletionPort).
        detail: code === Win32.ERROR_INVALID_PARAMETER
          ? "the handle is already bound to a completion port (a handle can be bound once), or "
            + "was opened without FILE_FLAG_OVERLAPPED"
          : undefined,
      });
    }
    this.#io = io;
    this.#free.push(this.#newOperation());
    // FILE_SKIP_SET_EVENT_ON_HANDLE: nothing waits on the handle itself (a synchronous wait uses
    // the OVERLAPPED's own event, which is still set). If the call fails, completions simply
    // keep coming through the pool for every operation.
    this.#inline = inline
      && k.SetFileCompletionNotificationModes(
          handle,
          FILE_SKIP_COMPLETION_PORT_ON_SUCCESS | FILE_SKIP_SET_EVENT_ON_HANDLE,
        ) !== 0;
    route(this.#context, this);
  }

  /** True when a synchronous success completes inline (no completion is queued for it). */
  get inline(): boolean {
    return this.#inline;
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
   * (WriteFile, ReadFile, ConnectNamedPipe) and returns its BOOL. Returns the started operation
   * (its completion comes later), its result when it completed inline (then `onComplete` is
   * never called), or the failure (then no completion will come either).
   */
  start(
    syscall: string,
    call: (handle: bigint, overlapped: bigint) => number,
    data: Uint8Array | null,
    onComplete: (r: IoResult) => void,
  ): Operation | IoResult | IoFailure {
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
      return { error: error.errno, syscall: error.syscall };
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
    const code = ok ? 0 : k.GetLastError();
    // Completed synchronously with FILE_SKIP_COMPLETION_PORT_ON_SUCCESS: nothing is queued (and
    // CancelThreadpoolIo's documentation asks for the call in exactly this case). That includes
    // ERROR_MORE_DATA, a warning status: with the mode set no packet follows it (Wine 10 and
    // Windows before 8; Windows 8 and later return ERROR_IO_PENDING for it instead). The kernel
    // is done with the OVERLAPPED and the data; the count is OVERLAPPED.InternalHigh.
    if (this.#inline && (ok || code === Win32.ERROR_MORE_DATA)) {
      k.CancelThreadpoolIo(io);
      const bytes = op.bytesTransferred;
      op.data = null;
      op.onComplete = null;
      this.#free.push(op);
      return { error: code, bytes };
    }
    if (!ok) {
      // ERROR_MORE_DATA (a message longer than the read) is a warning status: the read has
      // completed with data, and without the skip mode its completion is queued like a success's.
      if (code !== Win32.ERROR_IO_PENDING && code !== Win32.ERROR_MORE_DATA) {
        // No completion will be queued: the pool must be told, or it waits for one forever.
        k.CancelThreadpoolIo(io);
        op.data = null;
        op.onComplete = null;
        this.#free.push(op);
        this.#failedWith(code);
        return code === 0
          ? {
            error: Win32.ERROR_UNIDENTIFIED_ERROR,
            syscall,
            detail: "the call failed but GetLastError() read 0",
          }
          : { error: code, syscall };
      }
    }
    // Pending, or a synchronous success without the skip mode: a completion is queued.
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
    if (op.consumed || !this.#pending.has(op.address)) return undefined;
    if (this.#handle === null) {
      // Closed early (a failed CancelIoEx, by this or another user of the handle): the operation
      // ends with an error through the pool. Waiting cannot tell more, and "timeout" would lie.
      return {
        error: Win32.ERROR_INVALID_HANDLE,
        bytes: 0,
        syscall: "GetOverlappedResultEx",
        detail: "the pipe handle was closed to end pending I/O (after a failed CancelIoEx)",
        pending: true,
      };
    }
    const ms = timeoutMs === Infinity ? INFINITE : Math.min(Math.ceil(timeoutMs), INFINITE - 1);
    const bytes = new Uint32Array(1);
    const ok = this.#k32.GetOverlappedResultEx(this.#handle, op.address, bytes, ms, 0);
    const code = ok ? 0 : this.#k32.GetLastError();
    if (code === WAIT_TIMEOUT || code === Win32.ERROR_IO_INCOMPLETE) return undefined;
    if (!ok && op.inFlight) {
      // The wait failed, not the operation: the kernel still holds it, so it is not taken (its
      // completion still comes, and it can still be cancelled).
      return {
        error: failureCode(code),
        bytes: 0,
        syscall: "GetOverlappedResultEx",
        pending: true,
      };
    }
    // Taken: the pool's callback still comes (the memory stays referenced until it does), and
    // is then ignored.
    op.consumed = true;
    if (ok) return { error: 0, bytes: bytes[0] };
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
    if (ioResult !== 0) this.#failedWith(ioResult);
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

  /**
   * Lets the process end while this pipe waits (its pending I/O and the shared callback no
   * longer hold it), as a socket's unref() does. Idempotent; ref() undoes it.
   */
  unref(): void {
    if (!this.#held || this.#tornDown) return;
    this.#held = false;
    if (!this.#ended) hold(-1);
  }

  /** Undoes unref(). */
  ref(): void {
    if (this.#held || this.#tornDown) return;
    this.#held = true;
    if (!this.#ended) hold(1);
  }

  /** An operation failed with `code`: one that says the peer has gone ends the pipe's hold. */
  #failedWith(code: number): void {
    if (this.#ended || this.#tornDown || !isPeerGone(code)) return;
    this.#ended = true;
    if (this.#held) hold(-1);
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
        unroute(this.#context);
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
    unroute(this.#context);
    if (this.#owned) this.#closeHandle();
    this.#handle = null;
    if (this.#io !== null) {
      k.CloseThreadpoolIo(this.#io);
      this.#io = null;
    }
    for (const e of this.#events.splice(0)) k.CloseHandle(e);
    this.#free = [];
    releaseCallback(this.#held && !this.#ended);
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
    throw new PipeError({ errno: failureCode(code), syscall: "PeekNamedPipe", path: this.path });
  }

  /** This pipe as the writer's one-write-at-a-time channel. */
  writeChannel(): WriteChannel {
    const k = this.#k32;
    const nat = this.#nat;
    const share = new Share(this);
    return {
      path: this.path,
      // PIPE_WAIT pipes keep writes from one thread in order and complete each in full (Windows
      // and Wine 10): two in flight where the handle is ours, in a mode we chose.
      writesInFlight: this.#inline ? 2 : 1,
      startWrite: (bytes, onComplete) =>
        share.start(
          "WriteFile",
          (h, ov) => k.WriteFile(h, addressOf(nat, bytes), bytes.byteLength, null, ov),
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
          (h, ov) => k.ReadFile(h, addressOf(nat, buffer), buffer.byteLength, null, ov),
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
 * One user's share of a pipe, with operations of its own (the writer's writes, oldest first, or
 * the reader's read). Its release waits for its own operations, then releases its use of the
 * pipe; the pipe itself waits for every user's.
 */
class Share {
  /** Its operations in flight, oldest first. */
  current: Operation[] = [];
  #idle: (() => void) | undefined;
  #released: Promise<void> | undefined;

  constructor(readonly pipe: OverlappedPipe) {}

  start(
    syscall: string,
    call: (handle: bigint, overlapped: bigint) => number,
    data: Uint8Array,
    onComplete: (r: IoResult) => void,
  ): Started {
    if (this.#released) {
      return {
        error: Win32.ERROR_INVALID_HANDLE,
        syscall: OPERATIONS[syscall] ?? syscall,
        detail: "this end was already released",
      };
    }
    // Assigned once, after start() returns; the completion reads it later, so it cannot be const.
    // deno-lint-ignore prefer-const
    let op: Operation | undefined;
    const r = this.pipe.start(syscall, call, data, (result) => {
      this.#forget(op!);
      try {
        onComplete(result);
      } finally {
        if (this.current.length === 0) this.#idle?.();
      }
    });
    if (!(r instanceof Operation)) return r; // completed at once, or failed
    op = r;
    this.current.push(r);
    return undefined;
  }

  #forget(op: Operation): void {
    const i = this.current.indexOf(op);
    if (i >= 0) this.current.splice(i, 1);
  }

  /**
   * CancelIoEx on each operation in flight, newest first: 0, or the first failure's code. Newest
   * first, because a cancelled write leaves no hole in the stream only if nothing after it gets
   * through: while an older write is pending, none of a newer one's bytes have been read.
   */
  cancel(): number {
    if (this.current.length === 0) return Win32.ERROR_NOT_FOUND;
    let result: number = Win32.ERROR_NOT_FOUND;
    for (const op of [...this.current].reverse()) {
      const code = this.pipe.cancel(op);
      if (code === 0 && result === Win32.ERROR_NOT_FOUND) result = 0;
      else if (code !== 0 && code !== Win32.ERROR_NOT_FOUND) return code;
    }
    return result;
  }

  /** Waits for the oldest operation in flight (see {@link OverlappedPipe.wait}). */
  wait(timeoutMs: number): IoResult | undefined {
    const op = this.current[0];
    if (!op) return undefined;
    const r = this.pipe.wait(op, timeoutMs);
    if (r && !r.pending) {
      this.#forget(op); // its callback will be ignored
      if (this.current.length === 0) this.#idle?.();
    }
    return r;
  }

  release(): Promise<void> {
    this.#released ??= (async () => {
      if (this.current.length) await new Promise<void>((r) => (this.#idle = r));
      await this.pipe.release();
    })();
    return this.#released;
  }
}

/** Lent for calls of 0 bytes (an empty message): lives as long as the module. */
const NOTHING = new Uint8Array(new ArrayBuffer(1));

/** A buffer's address; an empty one has none in either runtime (Bun throws), so NOTHING's. */
function addressOf(nat: Native, view: Uint8Array): bigint {
  return nat.addressOf(view.byteLength > 0 ? view : NOTHING);
}
