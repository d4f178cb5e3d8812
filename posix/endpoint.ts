/**
 * Connecting to and listening on a Unix socket, secure by default: the private directory for
 * bare names, the socket file made 0600 (umask set around the bind, so it is never wider), a live
 * server never displaced, a stale socket replaced, a path that is not a socket never deleted, and
 * on close only our own socket file removed (compared by device and inode).
 *
 * @module
 */
import { PipeError } from "../core/errors.ts";
import type { Endpoint } from "../core/names.ts";
import { posixErrno } from "../core/posix_errors.ts";
import { retrying } from "../core/timeouts.ts";
import { ensurePrivateDir } from "./private_dir.ts";
import type { UnixSocket } from "./socket.ts";
import {
  chmod,
  denoFlags,
  errorCode,
  isNotCapable,
  link,
  listeningAt,
  lstat,
  rename,
  umask,
  unlink,
  untilExit,
} from "./system.ts";
import { wireConnect, wireListen, type WireListener } from "./wire.ts";

/**
 * A PipeError for a runtime's or the system's error `e` from `syscall` on `path`; a Deno
 * permission denial lists the flags that the socket at `socketPath` needs.
 */
export function posixError(
  e: unknown,
  syscall: string,
  path: string,
  detail?: string,
  bare = false,
  socketPath = path,
): PipeError {
  if (e instanceof PipeError) return e;
  const code = errorCode(e) ?? "EIO";
  const denied = isNotCapable(e)
    ? `Deno needs permissions for Unix sockets: ${denoFlags(socketPath, bare)}`
    : undefined;
  return new PipeError({
    errno: posixErrno(code),
    code,
    syscall,
    path,
    detail: [detail, denied].filter(Boolean).join("; ") || undefined,
    cause: e,
  });
}

/** How a client connects. */
export interface SocketConnectSettings {
  timeout: number;
  wait: boolean;
  signal: AbortSignal | undefined;
  /** The uid the socket file must belong to, if given. */
  expectedOwner: number | undefined;
}

/**
 * Connects, retrying `EAGAIN` (the server's backlog is full) and, with `wait`, `ENOENT` and
 * `ECONNREFUSED` (no server yet) until the timeout, without blocking the JS thread. Bun reports
 * a full backlog as `ECONNREFUSED`: where a socket is seen listening at the address, that is
 * retried as `EAGAIN` is.
 */
export async function connectSocket(
  endpoint: Endpoint,
  settings: SocketConnectSettings,
  where: string,
): Promise<UnixSocket> {
  const { path } = endpoint;
  const bare = endpoint.privateDir !== undefined;
  // async: whatever fails, fails as a rejection, never as a throw.
  return await retrying(
    async () => {
      if (endpoint.privateDir) ensurePrivateDir(endpoint.privateDir, false, where);
      if (settings.expectedOwner !== undefined && !path.startsWith("@")) {
        checkOwner(path, settings.expectedOwner, where);
      }
      return await wireConnect(endpoint.address);
    },
    settings,
    (e) => {
      if (e instanceof PipeError) return false;
      const code = errorCode(e);
      if (code === "EAGAIN") return true;
      if (settings.wait && (code === "ENOENT" || code === "ECONNREFUSED")) return true;
      return code === "ECONNREFUSED" && listeningAt(endpoint.address);
    },
    (e, timedOut) =>
      posixError(
        e,
        "connect",
        path,
        timedOut ? `gave up after ${settings.timeout} ms` : undefined,
        bare,
      ),
  );
}

function checkOwner(path: string, expected: number, where: string): void {
  const st = lstat(path);
  if (!st) return; // connect() reports ENOENT
  if (st.uid !== expected) {
    throw new PipeError({
      errno: posixErrno("EACCES"),
      code: "EACCES",
      syscall: "connect",
      path,
      detail: `${where}: the socket belongs to uid ${st.uid}, not to the expected owner `
        + `${expected}; refusing to connect`,
    });
  }
}

/** A socket file we made: its identity, so that we never remove a successor's. */
interface Made {
  dev: number;
  ino: number;
}

/** A listening socket, and how to put it away. */
export interface SocketListener {
  /**
   * Settles once the socket is bound: at once, except when a socket file was already there and
   * nobody could be seen listening on it, which takes an asynchronous connect to tell.
   */
  ready: Promise<void>;
  /** Stops listening and removes our socket file (never a successor's); never rejects. */
  close(): Promise<void>;
  ref(): void;
  unref(): void;
}

/**
 * Listens at the endpoint. Throws a {@link PipeError}: `EADDRINUSE` for a live server (never
 * displaced) or a path that is not a socket (never deleted), `EACCES` for a private directory
 * that is not private. When a socket file is there and the system cannot say at once whether
 * anyone listens on it, `ready` rejects instead (with `EADDRINUSE`), or resolves once the stale
 * file has been replaced.
 */
export function listenSocket(
  endpoint: Endpoint,
  mode: number,
  where: string,
  onConnection: (socket: UnixSocket) => void,
  onError: (error: PipeError) => void,
): SocketListener {
  const { path, address } = endpoint;
  const bare = endpoint.privateDir !== undefined;
  const abstract = path.startsWith("@");
  try {
    if (endpoint.privateDir) ensurePrivateDir(endpoint.privateDir, true, where);
  } catch (e) {
    throw posixError(e, "mkdir", endpoint.privateDir!, undefined, true, path);
  }
  let closed = false;
  let listener: WireListener | undefined;
  let made: Made | undefined;
  let forget = () => {};
  let unref = false;
  const bind = () => {
    const l = withUmask(
      mode,
      () => wireListen(address, onConnection, (e) => onError(posixError(e, "accept", path))),
    );
    if (unref) l.unref();
    if (abstract) return l;
    try {
      chmod(path, mode); // the umask made it no wider; this makes it exactly `mode`
      const st = lstat(path);
      made = st ? { dev: st.dev, ino: st.ino } : undefined;
    } catch (e) {
      l.close();
      throw posixError(e, "chmod", path, undefined, bare);
    }
    // A process that exits with the server open takes its socket file away, as Deno does by
    // itself (Bun left it; the next listen() replaced it, but a client saw ECONNREFUSED there).
    const mine = made;
    forget = untilExit(() => {
      try {
        const st = lstat(path);
        if (mine && st && st.dev === mine.dev && st.ino === mine.ino) unlink(path);
      } catch {
        // exiting: nothing to report to
      }
    });
    return l;
  };
  const face = (ready: Promise<void>): SocketListener => ({
    ready,
    close: () => {
      closed = true;
      forget();
      return listener ? closeListener(listener, path, made) : Promise.resolve();
    },
    ref: () => {
      unref = false;
      listener?.ref();
    },
    unref: () => {
      unref = true;
      listener?.unref();
    },
  });
  try {
    listener = bind();
    return face(Promise.resolve());
  } catch (e) {
    if (errorCode(e) !== "EADDRINUSE" || abstract) {
      throw posixError(e, "listen", path, undefined, bare);
    }
    const st = lstat(path);
    if (st && !st.isSocket()) {
      throw posixError(
        e,
        "listen",
        path,
        "the path exists and is not a socket; winpipe never deletes it",
        bare,
      );
    }
    // Only a positive answer is trusted (a server may have bound another spelling of the path);
    // anything else is left to refusesConnections().
    if (st && listeningAt(path)) {
      throw posixError(e, "listen", path, "a live server is listening there", bare);
    }
    // Is anyone there? Only a connect can tell for sure, and the runtimes' connect is async.
    const ready = (async () => {
      if (st && !(await refusesConnections(path))) {
        throw posixError(e, "listen", path, "a live server is listening there", bare);
      }
      const again = lstat(path);
      if (st && again && again.ino === st.ino && again.dev === st.dev) unlink(path);
      if (closed) return;
      try {
        listener = bind();
      } catch (e2) {
        throw posixError(e2, "listen", path, undefined, bare);
      }
    })();
    return face(ready);
  }
}

/** Runs `bind` with a umask that leaves at most `mode`'s bits; both runtimes bind synchronously. */
function withUmask<T>(mode: number, bind: () => T): T {
  let old: number | undefined;
  try {
    old = umask(~mode & 0o777);
  } catch (e) {
    // Deno without --allow-sys=umask: the chmod right after the bind still narrows it.
    if (!isNotCapable(e)) throw e;
  }
  try {
    return bind();
  } finally {
    if (old !== undefined) umask(old);
  }
}

/** True when a connect to `path` is refused (nobody listens); false when someone answers. */
async function refusesConnections(path: string): Promise<boolean> {
  try {
    const probe = await wireConnect(path);
    await probe.readChannel().release();
    return false;
  } catch (e) {
    const code = errorCode(e);
    return code === "ECONNREFUSED" || code === "ENOENT";
  }
}

async function closeListener(
  listener: WireListener,
  path: string,
  made: Made | undefined,
): Promise<void> {
  // Both runtimes unlink the listener's path when it closes, whoever's socket is there by then.
  // If it is no longer ours, the successor's is moved aside for the moment of the close and put
  // back (link() fails rather than replace a third socket made meanwhile).
  const st = lstat(path);
  const ours = !st || (made !== undefined && st.dev === made.dev && st.ino === made.ino);
  if (ours) {
    listener.close();
    await listener.closed;
    return;
  }
  const aside = `${path}.winpipe-${Math.random().toString(36).slice(2, 8)}`;
  try {
    rename(path, aside);
  } catch {
    listener.close();
    return await listener.closed;
  }
  try {
    listener.close();
    await listener.closed;
  } finally {
    try {
      link(aside, path);
      unlink(aside);
    } catch {
      // a third socket took the name meanwhile; the successor's file stays at `aside`
    }
  }
}
