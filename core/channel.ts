/**
 * The seam between the writer's state machine and the completion path: one overlapped write at
 * a time on a pipe. The real channel is {@link OverlappedPipe}'s; the Linux suites drive the
 * writer through a fake one.
 *
 * @module
 */

/** How one write ended: a Win32 code (0 for success) and the bytes transferred. */
export interface WriteResult {
  error: number;
  bytes: number;
}

/** One overlapped write at a time, with its completion delivered asynchronously. */
export interface WriteChannel {
  /** The pipe's name, for error messages. */
  readonly path: string | undefined;
  /**
   * Starts one write of `bytes`, which are writer-owned (over a `new ArrayBuffer`). The channel
   * keeps them referenced until the completion. Returns 0 when `onComplete` will be called
   * later (never synchronously), or the Win32 code of a synchronous failure (then it never is).
   */
  startWrite(bytes: Uint8Array, onComplete: (result: WriteResult) => void): number;
  /** `CancelIoEx` on the write in flight: 0, or the Win32 code (1168: it had already completed). */
  cancelWrite(): number;
  /**
   * Blocks up to `timeoutMs` for the write in flight. Returns its result, after which its
   * `onComplete` is not called; or `undefined` on timeout.
   */
  waitWrite(timeoutMs: number): WriteResult | undefined;
  /**
   * Ends pending I/O the hard way, by closing an owned handle now (when `CancelIoEx` failed).
   * Memory stays referenced until the completion. Returns false when the handle is not owned.
   */
  abortHandle(): boolean;
  /** Releases everything once every owed completion has arrived; idempotent. */
  release(): Promise<void>;
}
