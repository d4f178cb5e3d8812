/**
 * Local IPC for Deno and Bun: named pipes on Windows, over kernel32 through FFI, and Unix
 * sockets on Linux and macOS, behind one API ({@link connect}, {@link listen}).
 *
 * {@link PipeWriter} is an asynchronous, overlapped-I/O pipe writer in the spirit of Qt's
 * `QWindowsPipeWriter`: a queue drained by overlapped `WriteFile`s (one at a time, or two on the
 * handles it opens), completions inline or from the Win32 thread pool, backpressure, `flush`/`flushSync`/`close`/`stop`, and a `WritableStream`.
 *
 * Deno needs `--allow-ffi` on Windows; on Linux and macOS, `--allow-read`, `--allow-write` and
 * `--allow-net=unix:PATH` (the README's "One API on every OS" lists them). What only Windows has
 * (`fromHandle`, `messageMode`, a security descriptor) is refused elsewhere with an error that
 * names it.
 *
 * @example
 * ```ts
 * import { PipeWriter } from "@winpipe/winpipe";
 *
 * await using w = await PipeWriter.open(String.raw`\\.\pipe\my-app`);
 * w.write("hello, pipe\n");
 * await w.flush();
 * ```
 *
 * @module
 */
export type { Chunk } from "./core/chunk.ts";
export { connect, type ConnectOptions, PipeConnection, type PipeSide } from "./core/connection.ts";
export { errnoName, isPeerGone, PipeError, type PipeErrorInit, Win32 } from "./core/errors.ts";
export { type EndpointOptions, type PipeNameOptions, pipePath } from "./core/names.ts";
export {
  PipeReader,
  type PipeReaderFromHandleOptions,
  type PipeReaderOptions,
} from "./core/reader.ts";
export { listen, type ListenOptions, PipeServer } from "./core/server.ts";
export {
  type CloseOptions,
  type FlushOptions,
  type FromHandleOptions,
  PipeErrorEvent,
  PipeWriter,
  type PipeWriterOpenOptions,
  type PipeWriterOptions,
} from "./core/writer.ts";
export type { OpenAccess } from "./windows/open.ts";
export type { OpenOptions } from "./windows/open.ts";
export type { PipeSecurity } from "./windows/security_descriptor.ts";
