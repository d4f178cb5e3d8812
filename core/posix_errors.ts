/**
 * errno names, their numbers on Linux and macOS, and `strerror`'s texts, for {@link PipeError}s
 * on those systems. The runtimes report a name (`ENOENT`) and not always the number (Deno gives
 * none; Bun gives it negated for some calls), so the name is what winpipe goes by.
 *
 * @module
 */
import { platformName } from "../ffi/runtime.ts";

// [Linux, macOS, text]
const TABLE: Record<string, [number, number, string]> = {
  EPERM: [1, 1, "Operation not permitted"],
  ENOENT: [2, 2, "No such file or directory"],
  EINTR: [4, 4, "Interrupted system call"],
  EIO: [5, 5, "Input/output error"],
  EBADF: [9, 9, "Bad file descriptor"],
  EAGAIN: [11, 35, "Resource temporarily unavailable"],
  ENOMEM: [12, 12, "Cannot allocate memory"],
  EACCES: [13, 13, "Permission denied"],
  EEXIST: [17, 17, "File exists"],
  ENOTDIR: [20, 20, "Not a directory"],
  EISDIR: [21, 21, "Is a directory"],
  EINVAL: [22, 22, "Invalid argument"],
  EMFILE: [24, 24, "Too many open files"],
  ENOSPC: [28, 28, "No space left on device"],
  EROFS: [30, 30, "Read-only file system"],
  EPIPE: [32, 32, "Broken pipe"],
  ENAMETOOLONG: [36, 63, "File name too long"],
  ELOOP: [40, 62, "Too many levels of symbolic links"],
  ENOTSOCK: [88, 38, "Socket operation on non-socket"],
  ENOTSUP: [95, 45, "Operation not supported"],
  EADDRINUSE: [98, 48, "Address already in use"],
  ECONNABORTED: [103, 53, "Software caused connection abort"],
  ECONNRESET: [104, 54, "Connection reset by peer"],
  ENOTCONN: [107, 57, "Transport endpoint is not connected"],
  ETIMEDOUT: [110, 60, "Connection timed out"],
  ECONNREFUSED: [111, 61, "Connection refused"],
  ECANCELED: [125, 89, "Operation canceled"],
};

function column(): 0 | 1 {
  return platformName() === "darwin" ? 1 : 0;
}

/** This OS's number for an errno name; 0 for a name not in the table. */
export function posixErrno(name: string): number {
  return TABLE[name]?.[column()] ?? 0;
}

/** `strerror`'s text for an errno name. */
export function posixMessage(name: string): string {
  return TABLE[name]?.[2] ?? `Unknown error ${name}`;
}

/** True for a name the table knows. */
export function isPosixErrorName(name: unknown): name is string {
  return typeof name === "string" && name in TABLE;
}
