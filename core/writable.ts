/**
 * The `WritableStream` face of a {@link PipeWriter}: the stream contract, kept apart from the
 * writer's state machine.
 *
 * - **Backpressure has one place.** The writer's queue is the buffer: the stream's own queue is
 *   one byte deep, so it holds at most the chunk being handed over. A sink `write()` returns at
 *   once while the writer is below its `highWaterMark`, and waits for `drain` above it, so what
 *   is buffered stays within the writer's mark plus one chunk (not twice the mark).
 * - **`abort()` is `stop()` at once.** The Streams standard calls the sink's `abort()` only after
 *   the write in progress settles, and that write may be waiting for a `drain` that a peer who
 *   does not read never gives. So the controller's `signal` stops the writer as soon as
 *   `abort()` (or `pipeTo`'s signal) fires: the drain wait then rejects, and the sink's `abort()`
 *   returns the same `stop()`, bounded as `stop()` is.
 * - **Errors.** The stream errors when the writer fails or is stopped, with the writer's
 *   {@link PipeError}.
 *
 * @module
 */
import { chunkSize } from "./chunk.ts";
import type { CloseOptions } from "./writer.ts";

/** What the stream needs of its writer (internal). */
export interface WritableCore {
  /** Queues a chunk; false when at or above the high-water mark (wait for drain). */
  write(chunk: Uint8Array): boolean;
  /** Resolves at the next drain; rejects when the writer fails or is stopped. */
  drained(): Promise<void>;
  close(options?: CloseOptions): Promise<void>;
  stop(): Promise<void>;
  /** The writer's failure, if it has failed already. */
  readonly error: unknown;
  /** Registers the one callback that errors the stream when the writer fails or stops. */
  onEnd(callback: (error: unknown) => void): void;
}

/** A `WritableStream` over `core`. */
export function pipeWritable(core: WritableCore): WritableStream<Uint8Array> {
  return new WritableStream<Uint8Array>({
    start: (controller) => {
      let aborting = false;
      // Not while aborting: the stream then errors with the abort's reason, not with ours.
      core.onEnd((e) => aborting || controller.error(e));
      if (core.error) controller.error(core.error);
      // Fires at once on abort(), even while a write waits for drain (see the module's comment).
      controller.signal.addEventListener("abort", () => {
        aborting = true;
        core.stop().catch(() => {}); // the sink's abort() below reports the same promise
      }, { once: true });
    },
    write: (chunk) => {
      if (!core.write(chunk)) return core.drained();
    },
    close: () => core.close(),
    abort: () => core.stop(),
  }, { highWaterMark: 1, size: chunkSize });
}
