/**
 * The seam between the state machines (writer, reader) and the completion path: one overlapped
 * operation at a time on a pipe. The real channels are {@link OverlappedPipe}'s; the Linux suites
 * drive the writer and the reader through fakes.
 *
 * @module
 */
import type { PipeError } from "./errors.ts";

/** How one operation ended. */
export interface IoResult {
  /** 0 for success, or the Win32 code. */
  error: number;
  /** Bytes transferred. */
  bytes: number;
  /**
   * For a failure, the call that failed when it is not the operation's own (`WriteFile`,
   * `ReadFile`): for example `GetOverlappedResultEx`, whose own failure is not the write's.
   */
  syscall?: string;
  /** Words for the message, when the code alone does not say what happened. */
  detail?: string;
  /**
   * A read's bytes as a chunk of their own, instead of in the buffer given (only when the read
   * was started with `handOver`): the caller owns it.
   */
  chunk?: Uint8Array;
  /**
   * Only from a synchronous wait ({@link WriteChannel.waitWrite}) whose own call failed: the
   * operation itself is still in the kernel's hands, and its `onComplete` still comes. The
   * caller may (and should) still cancel it.
   */
  pending?: boolean;
  /**
   * The error users see, when the channel made it itself: a socket's carries its errno name
   * (`EPIPE`), while `error` holds the Win32 code with the same meaning for the state machines.
   */
  pipeError?: PipeError;
}

/** An operation that could not be started: its completion will never come. */
export interface IoFailure {
  /** The Win32 code; never 0. */
  error: number;
  /** The call that failed. */
  syscall: string;
  /** Words for the message, e.g. "the pipe handle was already released". */
  detail?: string;
  /** As {@link IoResult.pipeError}. */
  pipeError?: PipeError;
}

/**
 * How starting an operation went: `undefined` while it is pending (its `onComplete` comes later,
 * never synchronously); an {@link IoResult} when it completed at once, with `error` 0 or
 * ERROR_MORE_DATA (a message longer than the read; then `onComplete` is never called); or an
 * {@link IoFailure} (any other code, never 0) when it could not be started (then `onComplete`
 * is never called either).
 */
export type Started = IoResult | IoFailure | undefined;

/** ERROR_MORE_DATA: a read that completed with part of a message. */
const ERROR_MORE_DATA = 234;

/** True when a start call's answer ({@link Started}, not pending) is a failure to start. */
export function startFailed(started: IoResult | IoFailure): started is IoFailure {
  return started.error !== 0 && started.error !== ERROR_MORE_DATA;
}

/** Overlapped writes, each completing at once or later, in the order they were started. */
export interface WriteChannel {
  /** The pipe's name, for error messages. */
  readonly path: string | undefined;
  /**
   * How many writes may be in flight at once (default 1). More than one only where the kernel
   * keeps them in order and completes each in full: a pipe in PIPE_WAIT mode, written from one
   * thread (see windows/completion/mod.ts).
   */
  readonly writesInFlight?: number;
  /** The system call a write makes, for errors: `WriteFile` (the default), or `write`. */
  readonly writeCall?: string;
  /**
   * Starts one write of `bytes`, which are writer-owned (over a `new ArrayBuffer`). The channel
   * keeps them referenced until the completion. See {@link Started} for what it returns.
   */
  startWrite(bytes: Uint8Array, onComplete: (result: IoResult) => void): Started;
  /**
   * Writes as much of `bytes` as the system takes at once, and returns that count (0 when it
   * takes nothing now), or a failure. The bytes taken are copied out before it returns, and
   * nothing keeps `bytes` afterwards, so the caller's own memory may be given. Only where a
   * write can be made synchronously (Bun's sockets); only while no write is in flight.
   */
  writeNow?(bytes: Uint8Array): number | IoFailure;
  /**
   * `CancelIoEx` on every write in flight: 0, or the first Win32 code (1168: they had already
   * completed).
   */
  cancelWrite(): number;
  /**
   * Blocks up to `timeoutMs` (`Infinity`: no limit) for the oldest write in flight. Returns its
   * result, after which its `onComplete` is not called; `undefined` on timeout; or, when the wait
   * itself failed while the write is still in flight, a failure with `pending: true` (then
   * `onComplete` still comes, and the write can still be cancelled).
   */
  waitWrite(timeoutMs: number): IoResult | undefined;
  /**
   * Ends pending I/O the hard way, by closing an owned handle now (when `CancelIoEx` failed).
   * Memory stays referenced until the completion. Returns false when the handle is not owned.
   */
  abortHandle(): boolean;
  /** Releases the writer's share once its own writes have completed; idempotent. */
  release(): Promise<void>;
}

/** One overlapped read at a time, into memory the reader owns. */
export interface ReadChannel {
  /** The pipe's name, for error messages. */
  readonly path: string | undefined;
  /** The system call a read makes, for errors: `ReadFile` (the default), or `read`. */
  readonly readCall?: string;
  /**
   * Starts one read into `buffer` (over an ArrayBuffer that nobody else can detach or reuse
   * meanwhile), which the channel keeps referenced until the completion. See {@link Started}.
   */
  startRead(
    buffer: Uint8Array,
    onComplete: (result: IoResult) => void,
    handOver?: boolean,
  ): Started;
  /** `CancelIoEx` on the read in flight: 0, or the Win32 code (1168: it had already completed). */
  cancelRead(): number;
  /** Bytes waiting in the pipe now (`PeekNamedPipe`); 0 once released or the peer has gone. */
  available(): number;
  /**
   * A chunk that has already arrived, handed over whole (the caller owns it from then on), or
   * undefined when none is waiting. Only channels that read ahead into memory of their own have
   * it (a Unix socket); the reader then enqueues the chunk itself, with no copy and no buffer of
   * its own to allocate.
   */
  takeChunk?(): Uint8Array | undefined;
  /*
   * (`handOver` above: the buffer is the reader's own scratch, so a channel that reads ahead may
   * complete with a `chunk` it already holds rather than copy into the buffer.)
   */
  /** As {@link WriteChannel.abortHandle}. */
  abortHandle(): boolean;
  /** Releases the reader's share once its own read has completed; idempotent. */
  release(): Promise<void>;
}
