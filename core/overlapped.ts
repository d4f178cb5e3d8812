/**
 * The completion path: a pipe handle bound to the Win32 thread pool with `CreateThreadpoolIo`,
 * and the overlapped operations started on it. One process-wide thread-safe callback receives
 * every completion (`IoResult` and the byte count arrive as arguments, so no `GetLastError` hop
 * across threads) and hands it to the JS thread, where it is dispatched by context and OVERLAPPED
 * address.
 *
 * Lifetimes (see README "Design"): an operation's OVERLAPPED, event and data stay referenced from
 * `#pending` until its completion callback has run in JS, whatever happened meanwhile (cancel,
 * stop, close, a synchronous wait). `release()` frees the pool object and closes the handles only
 * when nothing is owed, and then once.
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
import type { WriteChannel, WriteResult } from "./channel.ts";
import { PipeError, Win32 } from "./errors.ts";
import { requireNative } from "./native.ts";
import { securityAttributes } from "./security.ts";

const FILE_TYPE_PIPE = 3;
const WAIT_TIMEOUT = 258;

/** One overlapped operation slot: an OVERLAPPED and its event, reused after completion. */
export class Operation {
  /** OVERLAPPED in memory that never moves (a `new ArrayBuffer`), and its address. */
  readonly overlapped: Uint8Array = new Uint8Array(new ArrayBuffer(OVERLAPPED_SIZE));
  readonly address: bigint;
  readonly event: bigint;
  /** The data the kernel reads or writes; referenced until completion. */
  data: Uint8Array | null = null;
  onComplete: ((r: WriteResult) => void) | null = null;
  /** Its result was already taken synchronously (GetOverlappedResultEx); ignore the callback. */
  consumed = false;

  constructor(nat: Native, event: bigint) {
    this.address = nat.addressOf(this.overlapped);
    this.event = event;
  }

  reset(): void {
    // Internal, InternalHigh, Offset, OffsetHigh = 0; hEvent kept (WriteFile resets the event).
    this.overlapped.fill(0, 0, OVERLAPPED_HEVENT);
    new DataView(this.overlapped.buffer).setBigUint64(OVERLAPPED_HEVENT, this.event, true);
    this.consumed = false;
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
  callback ??= nat.threadSafeIoCallback((context, overlapped, ioResult, bytes) =>
    targets.get(context)?.completed(overlapped, ioResult, bytes)
  );
  boundPipes++;
  return callback;
}

function releaseCallback(): void {
  if (--boundPipes === 0 && callback) {
    callback.close();
    callback = undefined;
  }
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
  #callbackReleased = false;
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
    if (typeof handle !== "bigint" || handle <= 0n || handle >= 0xffff_ffff_ffff_ffffn) {
      throw new TypeError(`handle must be a bigint pipe handle, got ${String(handle)}`);
    }
    const nat = requireNative();
    const pipe = new OverlappedPipe(nat, handle, options);
    try {
      pipe.#bind();
      return pipe;
    } catch (e) {
      pipe.#close();
      throw e;
    }
  }

  #bind(): void {
    const k = this.#k32;
    const handle = this.#handle!;
    if (k.GetFileType(handle) !== FILE_TYPE_PIPE) {
      const code = k.GetLastError();
      throw new PipeError({
        code: code === 0 ? Win32.ERROR_INVALID_HANDLE : code,
        syscall: "GetFileType",
        path: this.path,
        detail: "the handle is not a pipe",
      });
    }
    const io = k.CreateThreadpoolIo(handle, this.#callback.address, this.#id, 0n);
    if (io === 0n) {
      const code = k.GetLastError();
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
    if (event === 0n) this.#throwLast("CreateEventW");
    this.#events.push(event);
    return new Operation(this.#nat, event);
  }

  #throwLast(syscall: string): never {
    throw new PipeError({ code: this.#k32.GetLastError(), syscall, path: this.path });
  }

  /** The handle, or null once closed. */
  get handle(): bigint | null {
    return this.#handle;
  }

  /** Operations whose completion has not been observed yet. */
  get pendingOperations(): number {
    return this.#pending.size;
  }

  /**
   * Starts an overlapped call. `call(overlappedAddress)` makes it (WriteFile, ReadFile, …) and
   * returns its BOOL. Returns the started operation, or the Win32 code of a synchronous failure.
   */
  start(
    syscall: (handle: bigint, overlapped: bigint) => number,
    data: Uint8Array | null,
    onComplete: (r: WriteResult) => void,
  ): Operation | number {
    if (this.#handle === null || this.#io === null || this.#releasing) {
      return Win32.ERROR_INVALID_HANDLE;
    }
    const op = this.#free.pop() ?? this.#newOperation();
    op.reset();
    op.data = data;
    op.onComplete = onComplete;
    const k = this.#k32;
    k.StartThreadpoolIo(this.#io);
    if (!syscall(this.#handle, op.address)) {
      const code = k.GetLastError();
      // ERROR_MORE_DATA (a message longer than the read) is a warning status: the read has
      // completed with data, and its completion is queued like a success's.
      if (code !== Win32.ERROR_IO_PENDING && code !== Win32.ERROR_MORE_DATA) {
        // No completion will be queued: the pool must be told, or it waits for one forever.
        k.CancelThreadpoolIo(this.#io);
        op.data = null;
        op.onComplete = null;
        this.#free.push(op);
        return code;
      }
    }
    // Synchronous success still queues a completion (no FILE_SKIP_COMPLETION_PORT_ON_SUCCESS).
    this.#pending.set(op.address, op);
    this.#callback.owe();
    return op;
  }

  /** CancelIoEx on one operation: 0, or the Win32 code (ERROR_NOT_FOUND: already complete). */
  cancel(op: Operation): number {
    if (this.#handle === null || !this.#pending.has(op.address)) return Win32.ERROR_NOT_FOUND;
    return this.#k32.CancelIoEx(this.#handle, op.address) ? 0 : this.#k32.GetLastError();
  }

  /** GetOverlappedResultEx with a timeout; the result, or undefined if still pending. */
  wait(op: Operation, timeoutMs: number): WriteResult | undefined {
    if (op.consumed || !this.#pending.has(op.address) || this.#handle === null) return undefined;
    const bytes = new Uint32Array(1);
    const ok = this.#k32.GetOverlappedResultEx(this.#handle, op.address, bytes, timeoutMs, 0);
    const error = ok ? 0 : this.#k32.GetLastError();
    if (error === WAIT_TIMEOUT || error === Win32.ERROR_IO_INCOMPLETE) return undefined;
    op.consumed = true; // the pool's callback will still come, and is then ignored
    return { error, bytes: bytes[0] };
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
   * One user is done. The last one releases the pool object, the events and an owned handle,
   * once every owed completion has arrived. Never blocks the JS thread.
   */
  release(): Promise<void> {
    if (this.#releasing) return this.#releasing;
    if (--this.#users > 0) return Promise.resolve();
    this.#releasing = new Promise<void>((resolve) => {
      this.#releaseNow = () => {
        this.#releaseNow = undefined;
        targets.delete(this.#id);
        const io = this.#io;
        if (io === null) return resolve(this.#close());
        // Every completion has been observed, but a pool thread may still be returning from
        // the last callback: wait for it before the pool object, then the handle, go away.
        this.#nat.waitForThreadpoolIoCallbacks(io).finally(() => resolve(this.#close()));
      };
      if (this.#pending.size === 0) this.#releaseNow();
    });
    return this.#releasing;
  }

  #close(): void {
    const k = this.#k32;
    targets.delete(this.#id);
    if (this.#io !== null) {
      k.CloseThreadpoolIo(this.#io);
      this.#io = null;
    }
    if (this.#owned) this.#closeHandle();
    this.#handle = null;
    for (const e of this.#events.splice(0)) k.CloseHandle(e);
    this.#free = [];
    if (!this.#callbackReleased) {
      this.#callbackReleased = true;
      releaseCallback();
    }
  }

  #closeHandle(): void {
    if (this.#handle === null) return;
    const h = this.#handle;
    this.#handle = null; // before the call: a handle is closed at most once, whatever happens
    this.#k32.CloseHandle(h);
  }

  /** This pipe as the writer's one-write-at-a-time channel. */
  writeChannel(): WriteChannel {
    let current: Operation | null = null;
    let idle: (() => void) | undefined;
    const k = this.#k32;
    const nat = this.#nat;
    return {
      path: this.path,
      startWrite: (bytes, onComplete) => {
        const r = this.start(
          (h, ov) => k.WriteFile(h, nat.addressOf(bytes), bytes.byteLength, null, ov),
          bytes,
          (result) => {
            current = null;
            try {
              onComplete(result);
            } finally {
              idle?.();
            }
          },
        );
        if (typeof r === "number") return r;
        current = r;
        return 0;
      },
      cancelWrite: () => (current ? this.cancel(current) : Win32.ERROR_NOT_FOUND),
      waitWrite: (timeoutMs) => {
        if (!current) return undefined;
        const r = this.wait(current, timeoutMs);
        if (r) current = null;
        return r;
      },
      abortHandle: () => this.abortHandle(),
      // The writer's share ends once its own write has completed (a shared handle's reader may
      // still have a read pending, which the last release waits for).
      release: async () => {
        if (current) await new Promise<void>((r) => (idle = r));
        return this.release();
      },
    };
  }
}
