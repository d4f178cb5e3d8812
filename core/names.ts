/**
 * Pipe names: `\\.\pipe\NAME` and `\\?\pipe\NAME` are local; `\\SERVER\pipe\NAME` is remote and
 * refused unless asked for. Every check runs before any system call.
 *
 * Win32 rewrites `\\.\` paths before it opens them (`GetFullPathNameW`): `.` and `..` segments
 * are resolved and trailing dots and spaces are dropped. So `\\.\pipe\..\UNC\host\pipe\x` opens
 * `\\.\UNC\host\pipe\x` (SMB, with this user's credentials), and `\\.\pipe\..\COM1` a device.
 * Names are therefore refused if any segment after `pipe\` is empty, is `.` or `..`, or ends in
 * a dot or a space, or if they contain a `/` (which Win32 reads as `\`).
 *
 * Names that mean the same endpoint on every OS ({@link pipePath}) are resolved here too.
 *
 * @module
 */
import { isWindows } from "../ffi/runtime.ts";
import { denoFlags, env, isNotCapable, lstat, platform, tmpdir, uid } from "../posix/system.ts";
import { PipeError } from "./errors.ts";
import { posixErrno } from "./posix_errors.ts";

/** Options that bear on which names are accepted. */
export interface PipeNameOptions {
  /** Accept `\\server\pipe\name` (SMB). Default false. */
  allowRemote?: boolean;
}

// Win32 limits a pipe path to 256 characters (CreateNamedPipeW, "lpName").
const MAX_PIPE_PATH = 256;
const PIPE_PATH = /^\\\\([^\\/]+)\\pipe\\(.*)$/is;

/**
 * Checks a pipe path and returns it as the NUL-terminated UTF-16 `CreateFileW` wants.
 * Throws a `TypeError` that says what is wrong. `remoteHint` names the switch that allows
 * remote names, for the message ("{ allowRemote: true }" in the API, "--allow-remote" in the CLI).
 */
export function validatePipeName(
  name: unknown,
  options: PipeNameOptions = {},
  remoteHint = "{ allowRemote: true } is given",
): Uint16Array {
  if (typeof name !== "string") {
    throw new TypeError(`pipe name must be a string like \\\\.\\pipe\\NAME, got ${describe(name)}`);
  }
  if (name.includes("\0")) throw new TypeError("pipe name must not contain NUL characters");
  const m = PIPE_PATH.exec(name);
  if (!m) {
    throw new TypeError(
      `not a pipe name: ${
        JSON.stringify(name)
      }; expected \\\\.\\pipe\\NAME (write it as String.raw\`\\\\.\\pipe\\NAME\`)`,
    );
  }
  if (name.length > MAX_PIPE_PATH) {
    throw new TypeError(`pipe name is ${name.length} characters; Windows allows ${MAX_PIPE_PATH}`);
  }
  const [, host, rest] = m;
  if (host !== "." && host !== "?") {
    if (/[. ]$/.test(host)) {
      throw new TypeError(`${JSON.stringify(name)}: the host name must not end in "." or " "`);
    }
    if (options.allowRemote !== true) {
      throw new TypeError(
        `${
          JSON.stringify(name)
        } names a pipe on the remote host "${host}"; remote pipes are refused unless ${remoteHint}`,
      );
    }
  }
  const problem = segmentProblem(rest);
  if (problem) {
    throw new TypeError(
      `${JSON.stringify(name)}: ${problem}; Windows would rewrite the name before opening it, `
        + "possibly to another host or device, so it is refused",
    );
  }
  return toWide(name);
}

/** What is wrong with the part after `pipe\`, or undefined. */
function segmentProblem(rest: string): string | undefined {
  if (rest.includes("/")) return `"/" after "pipe\\" is read as "\\"`;
  for (const segment of rest.split("\\")) {
    if (segment === "") return "an empty segment (\\\\ or a trailing \\)";
    if (segment === "." || segment === "..") return `a "${segment}" segment`;
    if (/[. ]$/.test(segment)) {
      return `the segment ${JSON.stringify(segment)} ends in "." or " ", which Windows drops`;
    }
  }
  return undefined;
}

/** True when the (already validated) name is local: `\\.\pipe\…` or `\\?\pipe\…`. */
export function isLocalPipeName(name: string): boolean {
  return /^\\\\[.?]\\/.test(name);
}

/** NUL-terminated UTF-16LE, for the `W` functions. */
export function toWide(s: string): Uint16Array {
  const out = new Uint16Array(s.length + 1);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** A short description of a value for error messages. */
export function describe(v: unknown): string {
  if (v === null) return "null";
  if (typeof v === "object") return (v as object).constructor?.name ?? "object";
  if (typeof v === "string") return `string ${JSON.stringify(v.slice(0, 40))}`;
  return `${typeof v} ${String(v)}`;
}

/** Options that bear on how a name is resolved to an address. */
export interface EndpointOptions extends PipeNameOptions {
  /**
   * Linux only: accept `@name`, a socket in the abstract namespace. No file permission protects
   * such a socket: any process in the same network namespace can connect to it, or take the
   * name first. Default false.
   */
  abstract?: boolean;
}

/** Where a name leads on this OS. */
export interface Endpoint {
  /** The address: `\\.\pipe\NAME`, a socket path, or `@name` for an abstract socket. */
  path: string;
  /** For a bare name on Linux and macOS: the private directory the socket lives in. */
  privateDir?: string;
  /** What to hand the runtime: the path, or `\0name` for an abstract socket. */
  address: string;
}

// sun_path is 108 bytes on Linux and 104 on macOS, the terminating NUL included.
const SUN_PATH: Record<string, number> = { linux: 108, darwin: 104 };
const BARE = /^[^\\/]+$/;

/**
 * Resolves a name to its address on this OS, so that a peer that is not winpipe (Node, Python,
 * Go, `socat`) can be pointed at the same place; `connect`, `listen` and `PipeWriter.open` take
 * the same names. Every check runs before any system call.
 *
 * - A bare name (`"my-app"`) means the same endpoint on every OS: `\\.\pipe\my-app` on Windows;
 *   on Linux and macOS the socket `my-app` in a directory only this user can enter,
 *   `$XDG_RUNTIME_DIR/winpipe` when `XDG_RUNTIME_DIR` is set and private, else
 *   `$TMPDIR/winpipe-UID` (`/tmp/winpipe-UID`). See docs/design.md, "Names".
 * - A full name passes through: `\\.\pipe\…` on Windows; an absolute, `./` or `../` path on
 *   Linux and macOS. The other OS's form is an error.
 * - `@name` is a Linux abstract socket, accepted only with `{ abstract: true }`.
 *
 * @throws {TypeError} naming the rule that the name breaks (the socket path's limit in bytes,
 * NUL, `.`, `..` or an empty name, the other OS's form).
 *
 * @example
 * ```ts
 * import { pipePath } from "@winpipe/winpipe";
 * // \\.\pipe\my-app on Windows; /run/user/1000/winpipe/my-app on Linux, say
 * console.log(pipePath("my-app"));
 * ```
 */
export function pipePath(name: string, options: EndpointOptions = {}): string {
  return resolveEndpoint(name, options, "pipePath()").path;
}

/** {@link pipePath}, with the private directory and the runtime's form of the address. */
export function resolveEndpoint(name: unknown, options: EndpointOptions, where: string): Endpoint {
  if (typeof name !== "string") {
    throw new TypeError(`${where}: the name must be a string, got ${describe(name)}`);
  }
  if (name.length === 0) throw new TypeError(`${where}: the name is empty`);
  if (name.includes("\0")) {
    throw new TypeError(`${where}: the name must not contain NUL characters`);
  }
  const windows = isWindows();
  if (windows) {
    if (/^(\/|\.{1,2}\/|@)/.test(name)) {
      throw new TypeError(
        `${where}: ${JSON.stringify(name)} is a Unix socket path, and this is Windows; `
          + `give a bare name ("my-app") to mean the same endpoint on every OS, or \\\\.\\pipe\\NAME`,
      );
    }
    if (name.startsWith("\\\\")) {
      validatePipeName(name, options);
      return { path: name, address: name };
    }
    bareProblem(name, where);
    const path = `\\\\.\\pipe\\${name}`;
    validatePipeName(path, options);
    return { path, address: path };
  }
  const limit = (SUN_PATH[platform()] ?? 104) - 1;
  const fits = (path: string, what: string) => {
    const bytes = new TextEncoder().encode(path).byteLength;
    if (bytes > limit) {
      throw new TypeError(
        `${where}: ${what} ${JSON.stringify(path)} is ${bytes} bytes as UTF-8; ${platformLabel()} `
          + `allows ${limit} (sun_path holds ${limit + 1} with the NUL)`,
      );
    }
  };
  if (name.startsWith("\\\\")) {
    throw new TypeError(
      `${where}: ${JSON.stringify(name)} is a Windows pipe name, and this is ${platformLabel()}; `
        + `give a bare name ("my-app") to mean the same endpoint on every OS, or a socket path`,
    );
  }
  if (name.startsWith("@")) {
    if (platform() !== "linux") {
      throw new TypeError(
        `${where}: ${JSON.stringify(name)}: abstract sockets exist only on Linux`,
      );
    }
    if (options.abstract !== true) {
      throw new TypeError(
        `${where}: ${JSON.stringify(name)} names an abstract socket, which no file permission `
          + "protects (any process in this network namespace can connect, or take the name); "
          + "pass { abstract: true } to accept that",
      );
    }
    if (name.length === 1) throw new TypeError(`${where}: the abstract name after "@" is empty`);
    fits(name, "the abstract name");
    return { path: name, address: `\0${name.slice(1)}` };
  }
  if (/^(\/|\.{1,2}\/)/.test(name)) {
    fits(name, "the socket path");
    return { path: name, address: name };
  }
  bareProblem(name, where);
  const privateDir = privateDirectory(name, where);
  const path = `${privateDir}/${name}`;
  fits(path, `the bare name ${JSON.stringify(name)} resolves to`);
  return { path, privateDir, address: path };
}

/** A bare name is one segment: not `.` or `..`, no separators, nothing Windows would rewrite. */
function bareProblem(name: string, where: string): void {
  if (name === "." || name === "..") {
    throw new TypeError(`${where}: a bare name must not be "${name}"`);
  }
  if (!BARE.test(name)) {
    throw new TypeError(
      `${where}: the bare name ${JSON.stringify(name)} contains "/" or "\\" (empty or nested `
        + "segments); a bare name is one segment, and a full path is passed through as it is",
    );
  }
  if (/[. ]$/.test(name)) {
    throw new TypeError(
      `${where}: the bare name ${JSON.stringify(name)} ends in "." or " ", which Windows drops`,
    );
  }
}

function platformLabel(): string {
  const p = platform();
  return p === "darwin" ? "macOS" : p === "linux" ? "Linux" : p;
}

/**
 * The private directory for bare names: `$XDG_RUNTIME_DIR/winpipe` when `XDG_RUNTIME_DIR` is an
 * absolute path to a directory of this user's with no group or other bits (as the XDG Base
 * Directory spec requires it to be), else `$TMPDIR/winpipe-UID`.
 */
function privateDirectory(name: string, where: string): string {
  try {
    const me = uid();
    const xdg = env("XDG_RUNTIME_DIR");
    if (xdg && xdg.startsWith("/")) {
      const st = lstat(xdg);
      if (st?.isDirectory() && st.uid === me && (st.mode & 0o077) === 0) {
        return xdgDirectory(xdg);
      }
    }
    return tmpDirectory(tmpdir(), me);
  } catch (e) {
    if (!isNotCapable(e)) throw e;
    // Deno without a flag this takes: the flags the name needs, as far as they can be told.
    const known = <T>(read: () => T): { v: T } | undefined => {
      try {
        return { v: read() };
      } catch {
        return undefined;
      }
    };
    const xdg = known(() => env("XDG_RUNTIME_DIR"));
    const tmp = known(tmpdir)?.v;
    const me = known(uid)?.v;
    const dir = !xdg
      ? undefined
      : xdg.v?.startsWith("/")
      ? xdgDirectory(xdg.v)
      : tmp !== undefined && me !== undefined
      ? tmpDirectory(tmp, me)
      : undefined;
    const flags = dir
      ? denoFlags(`${dir}/${name}`, true)
      : "--allow-env=XDG_RUNTIME_DIR,TMPDIR --allow-sys=uid, and then read and write on the "
        + "private directory and unix: net access to the socket, which the error then lists";
    throw new PipeError({
      errno: posixErrno("EACCES"),
      code: "EACCES",
      syscall: "resolve",
      path: name,
      detail: `${where}: Deno needs permissions for a bare name's socket: ${flags}`,
      cause: e,
    });
  }
}

const xdgDirectory = (xdg: string) => `${xdg.replace(/\/+$/, "")}/winpipe`;
const tmpDirectory = (tmp: string, uid: number) => `${tmp.replace(/\/+$/, "")}/winpipe-${uid}`;
