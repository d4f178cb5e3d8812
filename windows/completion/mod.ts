/**
 * The completion path: how an overlapped `WriteFile`, `ReadFile` or `ConnectNamedPipe` on a pipe
 * handle is started, and how its completion reaches the JS thread.
 *
 * ## Lifetime rules
 *
 * Who keeps which memory, and until when:
 * - **OVERLAPPED** ({@link Operation}): in a `new ArrayBuffer` (never moves), owned by its pipe.
 *   From the call until the completion is observed it is in the pipe's pending map, whatever
 *   happens meanwhile (cancel, stop, close, a synchronous wait that took the result, a handle
 *   closed early); only then is it reused or dropped.
 * - **Data** (the bytes of a write, the buffer of a read): referenced from the operation for the
 *   same span. A write's bytes are writer-owned copies; a read's buffer is the reader's own, or a
 *   BYOB view that the stream has transferred to us (the consumer cannot touch it until we
 *   respond, and a cancelled stream never hands it back while the read is owed).
 * - **Writes in flight**: at most two per writer, both referenced until each one's completion;
 *   the pipe keeps them in issue order (PIPE_WAIT, one issuing thread), so the second's bytes
 *   are never read before the first's, and a cancel goes newest first.
 * - **A completion at once**: with FILE_SKIP_COMPLETION_PORT_ON_SUCCESS (owned handles), a call
 *   that returns TRUE has completed, nothing is queued for it, the kernel is done with the
 *   OVERLAPPED and the data, and the pool is told with `CancelThreadpoolIo`. The result is
 *   handed back from the start call itself; its callback never runs.
 * - **Handle**: an owned handle is closed exactly once: on release, or early to end pending I/O
 *   when `CancelIoEx` failed (its operations still complete, with an error, and are still owed).
 *   A handle that is not owned stays open and bound to the pool's completion port for good
 *   (Windows has no unbinding).
 * - **Release**: only when nothing is owed, and once, in the order `CloseThreadpoolIo` asks for:
 *   close the owned handle, wait for the pool's callbacks (off the JS thread in Deno), close the
 *   pool object, then the events. The process-wide callback is closed after the last pool object.
 *
 * The files: `channel.ts` (the seam the writer and reader use), `operation.ts` (one OVERLAPPED),
 * `overlapped_pipe.ts` (a bound handle, its operations and its release), `dispatch.ts` (the one
 * thread-safe callback and the routing of completions to pipes).
 *
 * @module
 */
export {
  type IoFailure,
  type IoResult,
  type ReadChannel,
  type Started,
  startFailed,
  type WriteChannel,
} from "../../core/channel.ts";
export { strayCompletions } from "./dispatch.ts";
export { Operation } from "./operation.ts";
export { type BindOptions, OverlappedPipe } from "./overlapped_pipe.ts";
