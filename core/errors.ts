/**
 * `PipeError`: a failure with its name (`code`: Win32's `ERROR_*` on Windows, the errno name such
 * as `ECONNREFUSED` on Linux and macOS), its number (`errno`), the call that failed, the pipe or
 * socket it concerns and the system's own text.
 *
 * @module
 */
import { isWindows } from "../ffi/runtime.ts";
import { posixErrno, posixMessage } from "./posix_errors.ts";
import { systemMessage } from "./system_message.ts";

/**
 * The Win32 codes winpipe names and handles.
 *
 * @example
 * ```ts
 * import { connect, PipeError, Win32 } from "@winpipe/winpipe";
 * try {
 *   await connect(String.raw`\\.\pipe\my-app`, { timeout: 0 });
 * } catch (error) {
 *   if (error instanceof PipeError && error.errno === Win32.ERROR_PIPE_BUSY) {
 *     console.log("every instance is busy");
 *   }
 * }
 * ```
 */
export const Win32 = {
  ERROR_SUCCESS: 0,
  ERROR_INVALID_FUNCTION: 1,
  ERROR_FILE_NOT_FOUND: 2,
  ERROR_PATH_NOT_FOUND: 3,
  ERROR_ACCESS_DENIED: 5,
  ERROR_INVALID_HANDLE: 6,
  ERROR_NOT_ENOUGH_MEMORY: 8,
  ERROR_OUTOFMEMORY: 14,
  ERROR_WRITE_FAULT: 29,
  ERROR_GEN_FAILURE: 31,
  ERROR_NOT_SUPPORTED: 50,
  ERROR_BAD_NETPATH: 53,
  ERROR_NETNAME_DELETED: 64,
  ERROR_BAD_NET_NAME: 67,
  ERROR_INVALID_PARAMETER: 87,
  ERROR_BROKEN_PIPE: 109,
  ERROR_SEM_TIMEOUT: 121,
  ERROR_INVALID_NAME: 123,
  ERROR_BAD_PATHNAME: 161,
  ERROR_ALREADY_EXISTS: 183,
  ERROR_PIPE_BUSY: 231,
  ERROR_NO_DATA: 232,
  ERROR_PIPE_NOT_CONNECTED: 233,
  ERROR_MORE_DATA: 234,
  ERROR_WAIT_TIMEOUT: 258,
  ERROR_PIPE_CONNECTED: 535,
  ERROR_PIPE_LISTENING: 536,
  ERROR_OPERATION_ABORTED: 995,
  ERROR_IO_INCOMPLETE: 996,
  ERROR_IO_PENDING: 997,
  ERROR_NOT_FOUND: 1168,
  ERROR_UNIDENTIFIED_ERROR: 1287,
  ERROR_LOGON_FAILURE: 1326,
  ERROR_BAD_IMPERSONATION_LEVEL: 1346,
  ERROR_NO_SYSTEM_RESOURCES: 1450,
  ERROR_TIMEOUT: 1460,
} as const;

const names = new Map<number, string>(Object.entries(Win32).map(([k, v]) => [v, k]));

/**
 * The `ERROR_*` name of a Win32 code, or `WIN32_ERROR_<n>` for a code winpipe does not name.
 *
 * @example
 * ```ts
 * import { errnoName } from "@winpipe/winpipe";
 * errnoName(232); // "ERROR_NO_DATA"
 * ```
 */
export function errnoName(code: number): string {
  return names.get(code) ?? `WIN32_ERROR_${code}`;
}

/**
 * True when an error number means the other end has gone: expected on a pipe or socket, and
 * never warned about. On Windows 109, 232 and 233 (`ERROR_BROKEN_PIPE`, `ERROR_NO_DATA`,
 * `ERROR_PIPE_NOT_CONNECTED`); on Linux and macOS `EPIPE`, `ECONNRESET` and `ENOTCONN`. A
 * {@link PipeError}'s `peerGone` says the same on every OS.
 *
 * @example
 * ```ts
 * import { isPeerGone, type PipeErrorEvent, PipeWriter } from "@winpipe/winpipe";
 * const writer = await PipeWriter.open("my-app");
 * writer.addEventListener("error", (e) => {
 *   const { error } = e as PipeErrorEvent;
 *   if (!isPeerGone(error.errno)) console.error(error);
 * });
 * ```
 */
export function isPeerGone(code: number): boolean {
  if (!isWindows()) return PEER_GONE.has(posixName(code) ?? "");
  return isPeerGoneWin32(code);
}

/** The Win32 test, which the shared cores use on every OS (their channels speak Win32 codes). */
export function isPeerGoneWin32(code: number): boolean {
  return code === Win32.ERROR_BROKEN_PIPE || code === Win32.ERROR_NO_DATA
    || code === Win32.ERROR_PIPE_NOT_CONNECTED;
}

const PEER_GONE = new Set([
  "ERROR_BROKEN_PIPE",
  "ERROR_NO_DATA",
  "ERROR_PIPE_NOT_CONNECTED",
  "EPIPE",
  "ECONNRESET",
  "ENOTCONN",
]);

function posixName(errno: number): string | undefined {
  for (const name of ["EPIPE", "ECONNRESET", "ENOTCONN"]) {
    if (posixErrno(name) === errno) return name;
  }
  return undefined;
}

/** What a {@link PipeError} is built from. */
export interface PipeErrorInit {
  /** The error number: Win32's (`GetLastError`, a completion's status), or errno with `code`. */
  errno: number;
  /**
   * On Linux and macOS, the errno name (`ECONNREFUSED`); `errno` is then that OS's number for it.
   * Left out, `errno` is a Win32 code and `code` its `ERROR_*` name.
   */
  code?: string;
  /** The call that failed, e.g. "WriteFile". */
  syscall: string;
  /** The pipe's name, when there is one. */
  path?: string;
  /** Words to put before the system text, e.g. "write after close". */
  detail?: string;
  /** The error that led to this one, if any. */
  cause?: unknown;
}

/**
 * A failure on a pipe or a socket, with the same shape on every OS.
 *
 * `code` is the name and `errno` the number (Node's and Deno's convention): on Windows the
 * `ERROR_*` name and the Win32 number, on Linux and macOS the errno name (`ENOENT`,
 * `ECONNREFUSED`, `EADDRINUSE`) and that OS's number. `syscall` is the call that failed, `path`
 * the pipe or socket, and `message` says all of that plus the system's text.
 *
 * @example
 * ```ts
 * import { PipeError, PipeWriter } from "@winpipe/winpipe";
 *
 * try {
 *   await PipeWriter.open(String.raw`\\.\pipe\nobody-listens`);
 * } catch (e) {
 *   if (e instanceof PipeError && e.code === "ERROR_FILE_NOT_FOUND") {
 *     console.error("no server:", e.message);
 *   }
 * }
 * ```
 */
export class PipeError extends Error {
  /**
   * The name: `ERROR_*` on Windows, e.g. "ERROR_NO_DATA" (`WIN32_ERROR_<n>` for a number winpipe
   * does not name); the errno name on Linux and macOS, e.g. "ECONNREFUSED".
   */
  readonly code: string;
  /** The number, e.g. 232 (Win32) or 111 (`ECONNREFUSED` on Linux). */
  readonly errno: number;
  /** The call that failed, e.g. "WriteFile". */
  readonly syscall: string;
  /** The pipe's name, when known. */
  readonly path: string | undefined;
  /** The system's text for `errno` (`FormatMessageW`, or `strerror`'s), without a trailing newline. */
  readonly systemMessage: string;
  /** winpipe's words on what happened, when there are any (e.g. "the writer was stopped"). */
  readonly detail: string | undefined;

  /** Makes the error; the message is built from `init` and the system's text. */
  constructor(init: PipeErrorInit) {
    const code = init.code ?? errnoName(init.errno);
    const text = init.code ? posixMessage(init.code) : systemMessage(init.errno);
    const where = init.path === undefined ? "" : ` on ${init.path}`;
    const detail = init.detail ? `${init.detail}: ` : "";
    super(`${detail}${init.syscall} failed${where}: ${code} (${init.errno}): ${text}`, {
      cause: init.cause,
    });
    this.name = "PipeError";
    this.code = code;
    this.errno = init.errno;
    this.syscall = init.syscall;
    this.path = init.path;
    this.systemMessage = text;
    this.detail = init.detail || undefined;
  }

  /** True when the other end has gone: 109, 232 and 233 on Windows; `EPIPE`, `ECONNRESET`, `ENOTCONN` elsewhere. */
  get peerGone(): boolean {
    return PEER_GONE.has(this.code);
  }
}

/**
 * A failure's code: a call that failed must never read as success, so a `GetLastError` of 0
 * after a failed call becomes `ERROR_UNIDENTIFIED_ERROR` (1287).
 */
export function failureCode(code: number): number {
  return code === 0 ? Win32.ERROR_UNIDENTIFIED_ERROR : code;
}

/**
 * The {@link PipeError} for a call that has just failed on this thread, from `GetLastError`
 * (read at once, before any other call can overwrite it). A reading of 0 is reported as
 * `ERROR_UNIDENTIFIED_ERROR` and says so.
 */
export function lastError(
  kernel32: { GetLastError(): number },
  init: Omit<PipeErrorInit, "errno">,
): PipeError {
  const code = kernel32.GetLastError();
  if (code !== 0) return new PipeError({ ...init, errno: code });
  const zero = "the call failed but GetLastError() read 0";
  return new PipeError({
    ...init,
    errno: Win32.ERROR_UNIDENTIFIED_ERROR,
    detail: init.detail ? `${init.detail} (${zero})` : zero,
  });
}

/**
 * What an unexpected exception becomes where it must not escape (a completion callback): a
 * PipeError stays itself; anything else is `ERROR_GEN_FAILURE`, "internal error", with the
 * exception as its cause.
 */
export function asPipeError(e: unknown, syscall: string, path: string | undefined): PipeError {
  if (e instanceof PipeError) return e;
  return new PipeError({
    errno: Win32.ERROR_GEN_FAILURE,
    syscall,
    path,
    detail: `internal error: ${e instanceof Error ? e.message : String(e)}`,
    cause: e,
  });
}
