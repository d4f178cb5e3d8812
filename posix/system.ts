/**
 * What the POSIX transport asks of the system, in one place: the user id, the umask, the
 * environment, file metadata, and the names of the runtimes' errors. Everything goes through
 * `node:` modules, which Deno and Bun both provide; in Deno each call needs its permission
 * (see {@link denoFlags}).
 *
 * @module
 */
import * as fs from "node:fs";
import * as os from "node:os";
import process from "node:process";

/** Deno's error class names, and the errno each stands for. */
const DENO_NAMES: Record<string, string> = {
  NotFound: "ENOENT",
  PermissionDenied: "EACCES",
  ConnectionRefused: "ECONNREFUSED",
  ConnectionReset: "ECONNRESET",
  ConnectionAborted: "ECONNABORTED",
  NotConnected: "ENOTCONN",
  AddrInUse: "EADDRINUSE",
  AlreadyExists: "EEXIST",
  BrokenPipe: "EPIPE",
  Interrupted: "EINTR",
  BadResource: "EBADF",
  TimedOut: "ETIMEDOUT",
  InvalidData: "EINVAL",
  NotADirectory: "ENOTDIR",
  IsADirectory: "EISDIR",
  FilesystemLoop: "ELOOP",
};

/** The errno name of a runtime's error (`code`, or Deno's class name), if it has one. */
export function errorCode(e: unknown): string | undefined {
  if (e === null || typeof e !== "object") return undefined;
  const { code, name } = e as { code?: unknown; name?: unknown };
  if (typeof code === "string" && /^E[A-Z0-9]+$/.test(code)) return code;
  if (typeof name === "string" && name in DENO_NAMES) return DENO_NAMES[name];
  if (name === "NotCapable") return "EACCES";
  return undefined;
}

/** True for Deno's missing-permission error. */
export function isNotCapable(e: unknown): boolean {
  return (e as { name?: unknown } | null)?.name === "NotCapable";
}

/**
 * The Deno flags a Unix socket at `path` needs, measured with Deno 2.9: the socket itself needs
 * read, write and `unix:` net access; a bare name also reads the environment
 * (`XDG_RUNTIME_DIR`, `TMPDIR`) and the user id, and a server sets the umask.
 */
export function denoFlags(path: string | undefined, bare: boolean): string {
  const where = path ?? "PATH";
  const dir = path ? path.slice(0, path.lastIndexOf("/")) || "/" : "DIR";
  const flags = [
    `--allow-read=${dir}`,
    `--allow-write=${dir}`,
    `--allow-net=unix:${where}`,
    "--allow-sys=uid,umask",
  ];
  if (bare) flags.unshift("--allow-env=XDG_RUNTIME_DIR,TMPDIR");
  return flags.join(" ");
}

/** This process's user id. */
export function uid(): number {
  return process.getuid!();
}

/** Sets the umask, returning the old one. */
export function umask(mask: number): number {
  return process.umask(mask);
}

/** An environment variable, or undefined. */
export function env(name: string): string | undefined {
  return process.env[name];
}

/** The temp directory (`$TMPDIR`, else `/tmp`). */
export function tmpdir(): string {
  return os.tmpdir();
}

/** `lstat`, or undefined when nothing is there. */
export function lstat(path: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(path);
  } catch (e) {
    if (errorCode(e) === "ENOENT") return undefined;
    throw e;
  }
}

export const readText = (path: string): string => fs.readFileSync(path, "utf8");
export const mkdir = (path: string, mode: number): void => fs.mkdirSync(path, { mode });
export const chmod = (path: string, mode: number): void => fs.chmodSync(path, mode);
export const unlink = (path: string): void => fs.unlinkSync(path);
export const rename = (from: string, to: string): void => fs.renameSync(from, to);
export const link = (from: string, to: string): void => fs.linkSync(from, to);

/** "linux", "darwin", … */
export function platform(): string {
  return process.platform;
}
