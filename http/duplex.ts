/**
 * A {@link PipeConnection} as the `node:stream` `Duplex` that `node:http` reads and writes: the
 * runtime's own HTTP/1.1 parser and writer (Deno's and Bun's `node:http`) then work over a named
 * pipe or a Unix socket. The methods `node:http` calls on a `net.Socket` are given too.
 *
 * @module
 */
import { Duplex } from "node:stream";
import type { PipeConnection } from "../core/connection.ts";

/** What `connectionDuplex` adds to a `Duplex`: the socket methods node:http calls. */
export interface PipeSocket extends Duplex {
  /** Accepted and ignored: a pipe or a socket file has no keep-alive probes. */
  setKeepAlive(enable?: boolean, delay?: number): this;
  /** Accepted and ignored: there is no Nagle's algorithm to turn off. */
  setNoDelay(noDelay?: boolean): this;
  /** Emits `timeout` after `ms` without bytes either way (0 turns it off), as `net.Socket`. */
  setTimeout(ms: number, callback?: () => void): this;
  /** The connection keeps the process alive (the default). */
  ref(): this;
  /** The connection does not keep the process alive. */
  unref(): this;
  /** Always undefined: a local endpoint has no network address. */
  readonly remoteAddress: undefined;
  /** The connection, once there is one. */
  readonly connection: PipeConnection | undefined;
}

/** Corked writes up to this many bytes in all are copied into one. */
const GATHER_LIMIT = 64 * 1024;

function gather(chunks: { chunk: Uint8Array }[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const { chunk } of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}

/**
 * What a {@link connectionDuplex} tells its owner.
 *
 * @example
 * ```ts
 * import { connect } from "@winpipe/winpipe";
 * import { connectionDuplex } from "@winpipe/winpipe/http";
 * let received = 0;
 * const socket = connectionDuplex(await connect("my-app"), {
 *   onBytes: (chunk) => (received += chunk.byteLength),
 * });
 * ```
 */
export interface DuplexHooks {
  /** Called for each chunk read from the connection, before it is pushed to the stream. */
  onBytes?: (chunk: Uint8Array) => void;
}

/**
 * A `Duplex` over a connection that may still be on its way (`conn` a promise: the client opens
 * it when node:http asks for a socket, which it must have at once). Writes wait for it; a failed
 * connect destroys the stream with that error.
 *
 * @example node:http's client over a pipe or a socket
 * ```ts
 * import http from "node:http";
 * import { connect } from "@winpipe/winpipe";
 * import { connectionDuplex } from "@winpipe/winpipe/http";
 *
 * http.get({ path: "/version", createConnection: () => connectionDuplex(connect("my-app")) });
 * ```
 */
export function connectionDuplex(
  conn: PipeConnection | Promise<PipeConnection>,
  hooks: DuplexHooks = {},
): PipeSocket {
  const { onBytes } = hooks;
  let current: PipeConnection | undefined;
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  let pumping = false;
  let idle: { ms: number; timer: ReturnType<typeof setTimeout> | undefined } | undefined;
  let lastActive = 0;
  let held = true;
  const ready = Promise.resolve(conn).then((c) => {
    current = c;
    if (!held) c.unref();
    return c;
  });
  // One timer per connection, not one per chunk: it looks at the last activity when it fires,
  // and waits again for what is left.
  const arm = (ms: number) => {
    idle!.timer = setTimeout(() => {
      idle!.timer = undefined;
      const quiet = performance.now() - lastActive;
      if (idle!.ms <= 0) return;
      if (quiet >= idle!.ms) d.emit("timeout");
      else arm(idle!.ms - quiet);
    }, ms);
  };
  const touch = () => {
    if (!idle) return;
    lastActive = performance.now();
    if (idle.timer === undefined && idle.ms > 0) arm(idle.ms);
  };
  const d = new Duplex({
    // As node:http's own sockets: the peer's end ends ours too, and the stream closes, so that a
    // pool never hands out a connection the peer has closed.
    allowHalfOpen: false,
    read() {
      if (pumping) return;
      pumping = true;
      void (async () => {
        try {
          const c = await ready;
          reader ??= c.readable.getReader();
          for (;;) {
            const r = await reader.read();
            if (r.done) {
              d.push(null);
              return;
            }
            touch();
            onBytes?.(r.value);
            // Past the high-water mark: wait for the next read() call.
            if (!d.push(r.value)) return;
          }
        } catch (e) {
          d.destroy(e as Error);
        } finally {
          pumping = false;
        }
      })();
    },
    write(chunk: Uint8Array, _encoding, callback) {
      touch();
      ready.then((c) => c.write(chunk)).then(() => callback(), callback);
    },
    // What node:http writes while corked (a response's head, body and end) comes here at once:
    // one write for it all when it is small (one system call instead of one a piece), else
    // queued in one go.
    writev(chunks: { chunk: Uint8Array }[], callback) {
      touch();
      const total = chunks.reduce((n, { chunk }) => n + chunk.byteLength, 0);
      const parts = total > GATHER_LIMIT
        ? chunks.map(({ chunk }) => chunk)
        : [gather(chunks, total)];
      ready.then((c) => Promise.all(parts.map((part) => c.write(part))))
        .then(() => callback(), callback);
    },
    final(callback) {
      // The end of our side: a half-close on a socket, a flush on a pipe.
      ready.then((c) => c.writer?.close()).then(() => callback(), callback);
    },
    destroy(error, callback) {
      if (idle) clearTimeout(idle.timer);
      ready.then((c) => c.close()).then(() => callback(error), () => callback(error));
    },
  });
  Object.defineProperty(d, "connection", { get: () => current });
  return Object.assign(d, {
    setKeepAlive() {
      return d;
    },
    setNoDelay() {
      return d;
    },
    setTimeout(ms: number, callback?: () => void) {
      idle ??= { ms, timer: undefined };
      idle.ms = ms;
      clearTimeout(idle.timer); // a new bound: counted from now
      idle.timer = undefined;
      if (callback) d.once("timeout", callback);
      touch();
      return d;
    },
    ref() {
      held = true;
      current?.ref();
      return d;
    },
    unref() {
      held = false;
      current?.unref();
      return d;
    },
    remoteAddress: undefined,
  }) as unknown as PipeSocket;
}

/**
 * @internal Resolves at the stream's next `drain`, or when it closes. Both listeners go once
 * either fires: a long body waits for drain many times.
 */
export function drainOrClose(stream: {
  once(event: string, f: () => void): unknown;
  off(event: string, f: () => void): unknown;
}): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      stream.off("drain", done);
      stream.off("close", done);
      resolve();
    };
    stream.once("drain", done);
    stream.once("close", done);
  });
}
