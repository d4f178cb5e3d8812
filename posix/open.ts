/**
 * The small pieces that `PipeWriter.open` and the `fromHandle` constructors need on Linux and
 * macOS, kept here so that the core's files do not import one another in a circle.
 *
 * @module
 */
import { PipeError } from "../core/errors.ts";
import { resolveEndpoint } from "../core/names.ts";
import type { OpenSettings } from "../core/options.ts";
import { booleanOption } from "../core/options.ts";
import { posixErrno } from "../core/posix_errors.ts";
import { isWindows, platformName } from "../ffi/runtime.ts";
import { connectSocket } from "./endpoint.ts";
import type { UnixSocket } from "./socket.ts";
import { uid } from "./system.ts";

/** Throws `ENOTSUP`, naming the call, off Windows: a HANDLE means nothing there. */
export function windowsOnly(where: string): void {
  if (isWindows()) return;
  throw new PipeError({
    errno: posixErrno("ENOTSUP"),
    code: "ENOTSUP",
    syscall: where,
    detail: `${where} wraps a Windows pipe HANDLE, and this is ${platformName()}; `
      + "use connect(), listen() or PipeWriter.open() with a name",
  });
}

/** Options that only Windows pipes have, refused here with their name (false is no request). */
const WINDOWS_ONLY = ["allowRemote", "messageMode"] as const;

/** Connects a socket for `connect()` and `PipeWriter.open` (their own options already checked). */
export function openUnix(
  name: string,
  o: Record<string, unknown>,
  open: OpenSettings,
  where: string,
): Promise<UnixSocket> {
  for (const key of WINDOWS_ONLY) {
    if (o[key] !== undefined && o[key] !== false) {
      throw new TypeError(`${where}: the option ${key} is for Windows named pipes only`);
    }
  }
  const endpoint = resolveEndpoint(
    name,
    { abstract: booleanOption(o, "abstract", where, false) },
    where,
  );
  const expectedOwner = open.expectedOwner === "self" ? uid() : open.expectedOwner as
    | number
    | undefined;
  return connectSocket(endpoint, { ...open, expectedOwner }, where);
}
