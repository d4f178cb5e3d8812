/**
 * Opening the client end of a named pipe by name: secure flags, local names only unless asked,
 * `ERROR_PIPE_BUSY` retried until a deadline without blocking the JS thread.
 *
 * @module
 */
import { failureCode, PipeError, Win32 } from "../core/errors.ts";
import { type PipeNameOptions, validatePipeName } from "../core/names.ts";
import type { OpenSettings } from "../core/options.ts";
import { retrying } from "../core/timeouts.ts";
import {
  FILE_FLAG_OVERLAPPED,
  FILE_READ_ATTRIBUTES,
  FILE_WRITE_ATTRIBUTES,
  GENERIC_READ,
  GENERIC_WRITE,
  INVALID_HANDLE_VALUE,
  OPEN_EXISTING,
  SECURITY_IDENTIFICATION,
  SECURITY_SQOS_PRESENT,
} from "../ffi/kernel32.ts";
import { requireNative } from "./native.ts";
import { checkPipeOwner } from "./owner.ts";
import { securityAttributes } from "./security.ts";

/** Options for opening a pipe by name. */
export interface OpenOptions extends PipeNameOptions {
  /**
   * How long to keep retrying while every instance is busy (`ERROR_PIPE_BUSY`), or, with
   * `wait: true`, while the pipe does not exist yet. Milliseconds; default 5000; `Infinity`
   * retries until it succeeds or `signal` aborts.
   */
  timeout?: number;
  /** Wait (until `timeout`) for a server to create the pipe. Default false: fail at once. */
  wait?: boolean;
  /** Abandons the attempt; the promise rejects with the signal's reason. */
  signal?: AbortSignal;
  /**
   * Who must own the server's end, checked before a byte is exchanged (as wireguard's
   * `namedpipe` `ExpectedOwner`), so that a pipe or socket another user put there is refused:
   * `"self"` (this process's user) on every OS; on Windows a SID string (`"S-1-5-18"`), compared
   * with the pipe's owner (note that an elevated administrator's objects are owned by
   * Administrators, `S-1-5-32-544`); on Linux and macOS a uid, compared with the socket file's
   * owner. A mismatch fails with `ERROR_ACCESS_DENIED` / `EACCES`, naming both. A bare name's
   * private directory already gives this on Linux and macOS.
   *
   * @example Refuse a squatter
   * ```ts
   * import { connect } from "@winpipe/winpipe";
   *
   * const conn = await connect("my-service", { expectedOwner: "self" });
   * await conn.close();
   * ```
   */
  expectedOwner?: "self" | string | number;
}

/** Which way the client end is opened. */
export type OpenAccess = "read" | "write" | "duplex";

// The client may read the pipe's attributes (GetNamedPipeInfo) and, when it reads, set its
// read mode (SetNamedPipeHandleState), as libuv asks for too.
// `>>> 0`: GENERIC_READ is bit 31, and `|` yields a signed 32-bit number.
const ACCESS: Record<OpenAccess, number> = {
  write: (GENERIC_WRITE | FILE_READ_ATTRIBUTES) >>> 0,
  read: (GENERIC_READ | FILE_WRITE_ATTRIBUTES) >>> 0,
  duplex: (GENERIC_READ | GENERIC_WRITE) >>> 0,
};

/**
 * `CreateFileW` on a pipe name with `FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT |
 * SECURITY_IDENTIFICATION`. The settings were checked by the caller; the name is checked here,
 * before any system call. Returns the handle, which the caller owns.
 */
export async function openPipeHandle(
  name: string,
  access: OpenAccess,
  settings: OpenSettings,
): Promise<bigint> {
  const wide = validatePipeName(name, settings);
  const { kernel32 } = requireNative();
  const sa = securityAttributes();
  // async: whatever fails, fails as a rejection, never as a throw.
  return await retrying(
    () => {
      const handle = kernel32.CreateFileW(
        wide,
        ACCESS[access],
        0,
        sa,
        OPEN_EXISTING,
        FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION,
        0n,
      );
      // A bare code: giveUp below makes the PipeError, once, when no retry is left.
      if (handle === INVALID_HANDLE_VALUE) throw failureCode(kernel32.GetLastError());
      if (settings.expectedOwner === undefined) return handle;
      try {
        checkPipeOwner(handle, String(settings.expectedOwner), name);
        return handle;
      } catch (e) {
        kernel32.CloseHandle(handle);
        throw e;
      }
    },
    settings,
    (code) =>
      code === Win32.ERROR_PIPE_BUSY
      || (code === Win32.ERROR_FILE_NOT_FOUND && settings.wait),
    (e, timedOut) =>
      typeof e === "number"
        ? new PipeError({
          errno: e,
          syscall: "CreateFileW",
          path: name,
          detail: !timedOut
            ? undefined
            : e === Win32.ERROR_PIPE_BUSY
            // Busy means instances exist, none waiting: the server is at its maxInstances, or it
            // stopped listening while connections it accepted are still open.
            ? `gave up after ${settings.timeout} ms: every instance of the pipe was busy (the `
              + "server is serving its most connections, or stopped listening with some still open)"
            : `gave up after ${settings.timeout} ms`,
        })
        : e,
  );
}
