/**
 * A connected Unix socket, made of the runtime's own (`Deno.connect`/`Deno.listen` with
 * `transport: "unix"`, `Bun.connect`/`Bun.listen` with `unix`), offered to the shared writer and
 * reader cores as the same {@link WriteChannel} and {@link ReadChannel} a Windows pipe offers.
 *
 * Reads: the runtime's bytes are queued here (up to {@link READ_AHEAD}, then the socket is paused)
 * and copied into the reader's buffer, so a cancelled read loses nothing: what arrives later
 * waits for the next read. A chunk copied out whole goes back to the wire (`recycle`), which may
 * read into its memory again. Writes: Bun writes synchronously as far as the socket takes, and the
 * rest goes on `drain`; Deno's `conn.write` resolves with what one write took, and the writer
 * core sends a short write's rest next.
 *
 * Errors keep the errno name the runtime gives (`EPIPE`, `ECONNRESET`); the cores see the Win32
 * code with the same meaning (peer gone, cancelled), which is what their state machines test.
 *
 * @module
 */
import type { IoFailure, IoResult, ReadChannel, Started, WriteChannel } from "../core/channel.ts";
import { PipeError, Win32 } from "../core/errors.ts";
import { posixErrno } from "../core/posix_errors.ts";
import { errorCode } from "./system.ts";

/** Bytes queued from the socket before it is paused until the reader catches up. */
const READ_AHEAD = 1024 * 1024;

/** What the cores see for an errno name: the Win32 code with the same meaning. */
function win32For(code: string): number {
  switch (code) {
    case "EPIPE":
    case "ENOTCONN":
      return Win32.ERROR_NO_DATA;
    case "ECONNRESET":
    case "ECONNABORTED":
      return Win32.ERROR_BROKEN_PIPE;
    case "EINTR":
    case "ECANCELED":
      return Win32.ERROR_OPERATION_ABORTED;
    default:
      return Win32.ERROR_GEN_FAILURE;
  }
}

/** A failure for the cores, carrying the errno-named {@link PipeError} users see. */
export function socketFailure(
  e: unknown,
  syscall: string,
  path: string,
  detail?: string,
): IoFailure & IoResult {
  const code = errorCode(e) ?? "EIO";
  const error = new PipeError({
    errno: posixErrno(code),
    code,
    syscall,
    path,
    // The runtime's own words, unless they only restate the code (Bun's "EPIPE",
    // "ECONNRESET: connection reset by peer, read") or name the OS error by number (Deno's).
    detail: detail ?? (e instanceof Error && !/os error|Failed to|^E[A-Z0-9]+\b/.test(e.message)
      ? e.message
      : undefined),
    cause: e,
  });
  return { error: win32For(code), bytes: 0, syscall, pipeError: error };
}

interface PendingRead {
  buffer: Uint8Array;
  /** The buffer is the reader's scratch: a chunk may be handed over instead (IoResult.chunk). */
  handOver: boolean;
  onComplete(result: IoResult): void;
}

/** The runtime's socket, seen through what {@link UnixSocket} needs of it. */
export interface Wire {
  /** Starts or resumes delivering data to `push` (and the end to `end`). */
  resume(): void;
  /** Stops delivering data until `resume()`. */
  pause(): void;
  /** `data`, pushed by this wire, has been copied out: its memory may be read into again. */
  recycle?(data: Uint8Array): void;
  /**
   * Writes `bytes`: all of them at once (their count is returned), or `undefined` when the write
   * is pending; then `onDone` comes later, never from inside this call, with the count taken.
   */
  write(bytes: Uint8Array, onDone: (error: unknown, bytes: number) => void): number | undefined;
  /** As much of `bytes` as the socket takes now, copied out before it returns (Bun only). */
  writeNow?(bytes: Uint8Array): number;
  /** Ends a pending write, if the runtime can (Bun: drops the rest; Deno: cannot). */
  cancelWrite(): boolean;
  /** Closes the socket; idempotent. */
  close(): void;
  /** `shutdown(SHUT_WR)`: the peer reads to its end while this side still reads. */
  closeWrite(): void;
  ref(): void;
  unref(): void;
}

/** The callbacks a {@link Wire} delivers to. */
export interface WireSink {
  /** Bytes that arrived. */
  push(data: Uint8Array): void;
  /** The read side has ended: the peer's end of stream, or a read error. */
  end(error?: unknown): void;
  /** The socket has closed under us (Bun): a write waiting for room will never get it. */
  gone(error?: unknown): void;
}

/**
 * One connected socket: a read channel and a write channel over it, closed when both have been
 * released (or when `abortHandle` ends it early).
 */
export class UnixSocket implements WireSink {
  readonly path: string;
  #wire!: Wire;
  #handsOver = false;
  #queue: Uint8Array[] = [];
  #queued = 0;
  #paused = false;
  #pending: PendingRead | null = null;
  /** Set when the socket's read side has ended: undefined while open, null for a clean end. */
  #ended: unknown = undefined;
  #users = 1;
  #closed = false;
  #released: Promise<void> | undefined;
  #writeDone: ((error: unknown, bytes: number) => void) | null = null;
  /** Called once, when the socket is closed. */
  onClose: (() => void) | undefined;

  constructor(path: string) {
    this.path = path;
  }

  /** Binds the runtime's socket; called once, before any channel is used. */
  attach(wire: Wire): this {
    this.#wire = wire;
    // A wire that reuses its buffers (Deno's pump) has its chunks copied out, never handed over.
    this.#handsOver = !wire.recycle;
    return this;
  }

  /** Another user of the socket (the reader and the writer of one connection). */
  retain(): void {
    this.#users++;
  }

  /** Always null: there is no handle to give out; the runtime owns the descriptor. */
  get handle(): null {
    return null;
  }

  ref(): void {
    this.#wire.ref();
  }

  unref(): void {
    this.#wire.unref();
  }

  // --- WireSink -------------------------------------------------------------------------------

  push(data: Uint8Array): void {
    if (data.byteLength === 0) return;
    this.#queue.push(data);
    this.#queued += data.byteLength;
    this.#serve();
    if (this.#queued >= READ_AHEAD && !this.#paused) {
      this.#paused = true;
      this.#wire.pause();
    }
  }

  end(error?: unknown): void {
    if (this.#ended !== undefined) return;
    this.#ended = error ?? null;
    this.#serve();
  }

  gone(error?: unknown): void {
    this.end(error);
    // Not on end(): a peer that has finished writing may still read (a half-close).
    // done() lets go of #writeDone itself: nulling it first here made done() take the write for
    // one already ended, so a write pending when the socket closed under us was never failed,
    // and close() waited its whole timeout (found by the chaos run, in Bun).
    this.#writeDone?.(error ?? errorWith("EPIPE"), 0);
  }

  // --- reads ----------------------------------------------------------------------------------

  /** Fills the pending read from the queue, or ends it; resumes the socket when there is room. */
  #serve(): void {
    const pending = this.#pending;
    if (!pending) return;
    const result = pending.handOver && this.#queued > 0
      ? this.#chunkResult()
      : this.#take(pending.buffer);
    if (!result) return;
    this.#pending = null;
    pending.onComplete(result);
  }

  /** The oldest chunk that arrived, handed over whole; undefined when none is waiting. */
  #takeChunk(): Uint8Array | undefined {
    const head = this.#queue.shift();
    if (!head) return undefined;
    this.#queued -= head.byteLength;
    this.#resumeIfRoom();
    // The stream takes the chunk's whole buffer (it transfers it): a view into a larger one
    // that is mostly something else is copied out first.
    const whole = head.byteOffset === 0 && head.buffer instanceof ArrayBuffer
      && head.buffer.byteLength - head.byteLength < head.byteLength;
    return whole ? head : head.slice();
  }

  #chunkResult(): IoResult {
    const chunk = this.#takeChunk()!;
    return { error: 0, bytes: chunk.byteLength, chunk };
  }

  #resumeIfRoom(): void {
    if (this.#paused && this.#queued < READ_AHEAD / 2 && !this.#closed) {
      this.#paused = false;
      this.#wire.resume();
    }
  }

  /** What a read into `buffer` gets now, or undefined when it must wait. */
  #take(buffer: Uint8Array): IoResult | undefined {
    if (this.#queued > 0) {
      let n = 0;
      while (n < buffer.byteLength && this.#queue.length > 0) {
        const head = this.#queue[0];
        const k = Math.min(head.byteLength, buffer.byteLength - n);
        buffer.set(k === head.byteLength ? head : head.subarray(0, k), n);
        n += k;
        if (k === head.byteLength) {
          this.#queue.shift();
          this.#wire.recycle?.(head);
        } else {
          this.#queue[0] = head.subarray(k);
        }
      }
      this.#queued -= n;
      this.#resumeIfRoom();
      return { error: 0, bytes: n };
    }
    if (this.#ended === undefined) return undefined;
    if (this.#ended === null) return { error: Win32.ERROR_BROKEN_PIPE, bytes: 0 };
    return socketFailure(this.#ended, "read", this.path);
  }

  readChannel(): ReadChannel {
    return {
      path: this.path,
      readCall: "read",
      startRead: (buffer, onComplete, mayHandOver = false): Started => {
        // Chunks are handed over only where the runtime gives each its own fresh buffer (Bun).
        // Deno's pump reads into buffers it reuses: copying out of those into the reader's
        // buffer was measured faster than handing them over and reading into fresh memory
        // (512 MiB in 64 KiB chunks: 450-570 ms against 590-820).
        const handOver = mayHandOver && this.#handsOver;
        if (this.#pending) {
          return {
            error: Win32.ERROR_INVALID_PARAMETER,
            syscall: "read",
            detail: "a read is already pending",
          };
        }
        const now = handOver && this.#queued > 0 ? this.#chunkResult() : this.#take(buffer);
        if (now) return now;
        if (this.#closed) {
          return socketFailure(errorWith("EBADF"), "read", this.path, "the socket was closed");
        }
        this.#pending = { buffer, onComplete, handOver };
        return undefined;
      },
      cancelRead: () => {
        const pending = this.#pending;
        if (!pending) return Win32.ERROR_NOT_FOUND;
        this.#pending = null;
        // Never synchronously: the cores expect the completion after the cancel returns.
        queueMicrotask(() =>
          pending.onComplete({ error: Win32.ERROR_OPERATION_ABORTED, bytes: 0 })
        );
        return 0;
      },
      available: () => this.#queued,
      takeChunk: () => (this.#handsOver ? this.#takeChunk() : undefined),
      abortHandle: () => {
        this.#close();
        return true;
      },
      release: () => this.#release(),
    };
  }

  // --- writes ---------------------------------------------------------------------------------

  /** Why a write cannot start: the socket was closed, or failed; undefined when it can. */
  #writeRefused(): IoFailure | undefined {
    if (this.#closed) {
      return socketFailure(errorWith("EBADF"), "write", this.path, "the socket was closed");
    }
    if (this.#ended !== undefined && this.#ended !== null) {
      return socketFailure(this.#ended, "write", this.path);
    }
    return undefined;
  }

  writeChannel(): WriteChannel {
    const wire = this.#wire;
    return {
      path: this.path,
      writesInFlight: 1,
      writeCall: "write",
      writeNow: wire.writeNow
        ? (bytes) => {
          const refused = this.#writeRefused();
          if (refused) return refused;
          try {
            return wire.writeNow!(bytes);
          } catch (e) {
            return socketFailure(e, "write", this.path);
          }
        }
        : undefined,
      startWrite: (bytes, onComplete): Started => {
        const refused = this.#writeRefused();
        if (refused) return refused;
        const done = (error: unknown, n: number) => {
          if (this.#writeDone !== done) return; // ended already (cancelled, or the socket gone)
          this.#writeDone = null;
          onComplete(
            error
              ? { ...socketFailure(error, "write", this.path), bytes: n }
              : { error: 0, bytes: n },
          );
        };
        let taken: number | undefined;
        try {
          taken = this.#wire.write(bytes, done);
        } catch (e) {
          return socketFailure(e, "write", this.path);
        }
        if (taken !== undefined) return { error: 0, bytes: taken };
        this.#writeDone = done;
        return undefined;
      },
      cancelWrite: () => {
        const done = this.#writeDone;
        if (!done) return Win32.ERROR_NOT_FOUND;
        // Bun drops the rest of the write; Deno cannot end a pending conn.write except by
        // closing the socket, which then rejects it (EINTR, reported as cancelled).
        if (this.#wire.cancelWrite()) {
          queueMicrotask(() => done(errorWith("ECANCELED"), 0));
        } else {
          this.#close();
        }
        return 0;
      },
      waitWrite: () => undefined, // no blocking wait here: flushSync() reports false
      abortHandle: () => {
        this.#close();
        return true;
      },
      // The writer is done: the peer sees the end of the stream (a half-close, as Node's
      // socket.end()) while the reader, if any, goes on.
      release: () => {
        if (this.#users > 1 && !this.#closed) {
          try {
            this.#wire.closeWrite();
          } catch {
            // the peer has gone already
          }
        }
        return this.#release();
      },
    };
  }

  // --- lifetime -------------------------------------------------------------------------------

  #release(): Promise<void> {
    if (--this.#users > 0) return Promise.resolve();
    this.#released ??= Promise.resolve().then(() => this.#close());
    return this.#released;
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.onClose?.();
    try {
      this.#wire.close();
    } catch {
      // already closed by the runtime
    }
    const pending = this.#pending;
    this.#pending = null;
    if (pending) {
      queueMicrotask(() => pending.onComplete({ error: Win32.ERROR_OPERATION_ABORTED, bytes: 0 }));
    }
  }
}

/** An Error with an errno name, for failures winpipe reports itself. */
export function errorWith(code: string): Error & { code: string } {
  return Object.assign(new Error(code), { code });
}
