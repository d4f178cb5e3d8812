/**
 * What the POSIX transport asks of the system, in one place: the user id, the umask, the
 * environment, file metadata, and the names of the runtimes' errors. Everything goes through
 * `node:` modules, which Deno and Bun both provide; in Deno each call needs its permission
 * (see {@link denoFlags}).
 *
 * @module
 */
import * as fs from "node:fs";
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
 * The Deno flags a Unix socket at `path` needs, measured with Deno 2.9: read and write on its
 * directory and `unix:` net access to it. A bare name also reads the environment
 * (`XDG_RUNTIME_DIR`, `TMPDIR`) and the user id, and under `$XDG_RUNTIME_DIR` it checks that
 * directory itself (`lstat`), which takes read access to it. A server may also be given
 * `--allow-sys=umask`, so that its socket is made with its mode rather than narrowed to it right
 * after the bind; nothing needs it.
 */
export function denoFlags(path: string | undefined, bare: boolean): string {
  const where = path ?? "PATH";
  const dir = path ? path.slice(0, path.lastIndexOf("/")) || "/" : "DIR";
  // $XDG_RUNTIME_DIR/winpipe, as against $TMPDIR/winpipe-UID: the parent is checked too.
  const read = bare && dir.endsWith("/winpipe") ? dir.slice(0, -"/winpipe".length) || "/" : dir;
  const flags = [`--allow-read=${read}`, `--allow-write=${dir}`, `--allow-net=unix:${where}`];
  if (bare) flags.unshift("--allow-env=XDG_RUNTIME_DIR,TMPDIR", "--allow-sys=uid");
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

/**
 * The temp directory: `$TMPDIR`, else `/tmp`. Not `os.tmpdir()`, which also reads `TMP` and
 * `TEMP`: in Deno each variable read is a permission of its own, and one more directory rule
 * would have to be the same in every runtime for two processes to meet.
 */
export function tmpdir(): string {
  const dir = env("TMPDIR");
  return dir && dir.startsWith("/") ? dir : "/tmp";
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

/** __SO_ACCEPTCON in /proc/net/unix's Flags: the socket listens. */
const ACCEPTCON = 0x10000;

/**
 * Is a socket listening at `address` (a path, or "@name" for an abstract one)? Linux only, from
 * /proc/net/unix, matched on the address as it was bound; false where it cannot tell (no /proc,
 * no permission to read it).
 */
export function listeningAt(address: string): boolean {
  // A relative path is listed as it was bound, from whatever directory: it proves nothing.
  if (!address.startsWith("/") && !address.startsWith("@")) return false;
  let table: string;
  try {
    table = readText("/proc/net/unix");
  } catch {
    return false;
  }
  for (const line of table.split("\n")) {
    // Num RefCount Protocol Flags Type St Inode Path
    const f = line.trim().split(/\s+/);
    if (f.length >= 8 && f.slice(7).join(" ") === address && (parseInt(f[3], 16) & ACCEPTCON)) {
      return true;
    }
  }
  return false;
}

const atExit = new Set<() => void>();
let exitHooked = false;

/**
 * Runs `fn` when the process exits normally (as `process.on("exit")`, registered once), until
 * the returned function is called. It must be synchronous and must not throw.
 */
export function untilExit(fn: () => void): () => void {
  if (!exitHooked) {
    exitHooked = true;
    process.on("exit", () => {
      for (const f of atExit) f();
    });
  }
  atExit.add(fn);
  return () => void atExit.delete(fn);
}

/** "linux", "darwin", … */
export function platform(): string {
  return process.platform;
}
